//! The listening socket.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use rustix::event::PollFlags;
use rustix::fs::Mode;
use rustix::io::Errno;
use rustix::net::SocketFlags;

use super::bind::{BoundPath, bind_path};
use super::{AddrError, SeqpacketStream, UdsError, UnixAddr, seqpacket_socket};
use crate::linux::SysError;
use crate::linux::poll::poll_fd;

/// Backlog passed to `listen` (the kernel caps it at `somaxconn`).
const BACKLOG: i32 = 128;

/// A listening `SOCK_SEQPACKET` socket.
///
/// The listening fd is non-blocking: [`try_accept`](Self::try_accept) never
/// waits, and [`accept`](Self::accept) waits in `poll`.
///
/// By default the socket file of a path address is left in place on drop:
/// a fd handed to a successor process may still be listening on it, and the
/// next [`bind`](Self::bind) replaces a stale file anyway. Call
/// [`set_unlink_on_drop`](Self::set_unlink_on_drop) to remove it.
///
/// # The socket's directory
/// Binding a path never removes or replaces anything but a socket file it
/// proved stale, and never blocks on what is there (see
/// [`bind`](Self::bind)). That holds against other users who can create
/// files in the directory, provided they cannot rename or remove this
/// process's entries in it: the directory is writable only by this user, or
/// is sticky (as `/tmp` and `/run/user/<uid>` are). In a directory where
/// they can, nothing can stop them from replacing the socket anyway.
#[derive(Debug)]
pub struct SeqpacketListener {
    fd: OwnedFd,
    addr: UnixAddr,
    bound: Option<BoundPath>,
}

impl SeqpacketListener {
    /// Binds to `addr` and listens: `socket`, `bind`, `listen`
    /// ([bind(2)](https://man7.org/linux/man-pages/man2/bind.2.html),
    /// [listen(2)](https://man7.org/linux/man-pages/man2/listen.2.html)). A
    /// path's socket file gets mode `0o777` less the umask, as `bind` makes
    /// it; see [`bind_with_mode`](Self::bind_with_mode) to choose.
    ///
    /// A path is bound in two steps: the socket is bound to a fresh
    /// temporary name in the same directory (a dot and 8 hex digits, so the
    /// directory's path must leave room for it in
    /// [`MAX_PATH_LEN`](super::MAX_PATH_LEN)), starts listening there, then
    /// is renamed onto the path without replacing anything
    /// (`renameat2(RENAME_NOREPLACE)`,
    /// [rename(2)](https://man7.org/linux/man-pages/man2/rename.2.html)). If
    /// the path is taken:
    /// - by a socket file nobody listens on (a non-blocking `connect` probe
    ///   is refused), that stale file is swapped out atomically
    ///   (`renameat2(RENAME_EXCHANGE)`) and unlinked only if it is the very
    ///   file probed (same device and inode); anything else found there is
    ///   swapped back and the probe repeated;
    /// - by a live listener (the probe connects, or finds its backlog full):
    ///   an error. The listener sees the probe as a client that connects and
    ///   hangs up at once;
    /// - by a socket file the probe may not connect to, or by anything but a
    ///   socket: an error, and it is not touched.
    ///
    /// On a filesystem without `renameat2` flags, the socket is linked into
    /// place (`link`, which never replaces either) and a stale file is
    /// unlinked after comparing its device and inode with the probed one,
    /// which leaves a window between the two for a process that can rename
    /// entries of the directory (see [the socket's
    /// directory](Self#the-sockets-directory)).
    ///
    /// # Errors
    /// An [`AddrError`] naming `addr`, holding [`UdsError::AddrInUse`] for a
    /// live listener, [`UdsError::ProbeFailed`] for a socket file the probe
    /// may not connect to, [`UdsError::NotASocket`] for anything else at the
    /// path, [`UdsError::PathChanged`] if what is there kept changing,
    /// [`UdsError::AddrTooLong`] if the temporary name does not fit, and
    /// [`UdsError::Sys`] for a failed call.
    #[doc(alias("socket", "listen", "renameat2"))]
    pub fn bind(addr: &UnixAddr) -> Result<Self, AddrError> {
        Self::bind_as(addr, None).map_err(|err| AddrError::new(addr, err))
    }

    /// [`bind`](Self::bind), giving the socket file `mode` (at most
    /// `0o777`) before it listens: `fchmodat` on the temporary name, which
    /// no client can reach yet
    /// ([chmod(2)](https://man7.org/linux/man-pages/man2/chmod.2.html)).
    /// (`fchmod` on the socket's fd would not do: on Linux it changes the
    /// socket's own inode, not the file's, and connecting checks the file's.)
    ///
    /// `mode` decides who may connect: `0o600` only this user, `0o666`
    /// anyone who can reach the directory.
    ///
    /// # Errors
    /// As for [`bind`](Self::bind); also [`UdsError::InvalidMode`] for a
    /// mode outside `0o777`, and [`UdsError::ModeOfAbstract`] for an
    /// abstract address, which has no file.
    #[doc(alias("fchmodat", "chmod"))]
    pub fn bind_with_mode(addr: &UnixAddr, mode: Mode) -> Result<Self, AddrError> {
        if mode.bits() & !0o777 != 0 {
            let mode = mode.bits();
            return Err(AddrError::new(addr, UdsError::InvalidMode { mode }));
        }
        Self::bind_as(addr, Some(mode)).map_err(|err| AddrError::new(addr, err))
    }

    fn bind_as(addr: &UnixAddr, mode: Option<Mode>) -> Result<Self, UdsError> {
        let fd = seqpacket_socket()?;
        let bound = match addr.as_path() {
            Some(path) => Some(bind_path(fd.as_fd(), path, mode)?),
            None if mode.is_some() => return Err(UdsError::ModeOfAbstract),
            None => {
                rustix::net::bind(&fd, &addr.0).map_err(bind_err)?;
                listen(fd.as_fd())?;
                None
            }
        };
        Ok(Self {
            fd,
            addr: addr.clone(),
            bound,
        })
    }

    /// The address the listener is bound to.
    pub fn addr(&self) -> &UnixAddr {
        &self.addr
    }

    /// Accepts a connection, close-on-exec, waiting for one if none is
    /// pending: `accept4(SOCK_CLOEXEC)`, and `poll` while there is none
    /// ([accept4(2)](https://man7.org/linux/man-pages/man2/accept4.2.html)).
    /// Signals (`EINTR`) do not end the wait.
    ///
    /// # Errors
    /// As for [`try_accept`](Self::try_accept), and [`UdsError::Sys`] if
    /// `poll` fails.
    #[doc(alias("accept4", "poll"))]
    pub fn accept(&self) -> Result<SeqpacketStream, UdsError> {
        loop {
            if let Some(stream) = self.try_accept()? {
                return Ok(stream);
            }
            poll_fd(self.fd.as_fd(), PollFlags::IN, None)?;
        }
    }

    /// Accepts a pending connection, close-on-exec, without waiting:
    /// `accept4(SOCK_CLOEXEC)`
    /// ([accept4(2)](https://man7.org/linux/man-pages/man2/accept4.2.html)).
    /// `None` if no client is waiting (`EAGAIN`).
    ///
    /// The accepted socket is blocking, whatever the listener's mode.
    ///
    /// # Errors
    /// [`UdsError::Sys`] with the failed `accept4`: `EMFILE` and `ENFILE`
    /// (out of fds; the connection stays queued), `ECONNABORTED` (the client
    /// hung up first), `ENOMEM`, `ENOBUFS`.
    #[doc(alias = "accept4")]
    pub fn try_accept(&self) -> Result<Option<SeqpacketStream>, UdsError> {
        match rustix::io::retry_on_intr(|| rustix::net::accept_with(&self.fd, SocketFlags::CLOEXEC))
        {
            Ok(fd) => Ok(Some(SeqpacketStream::from_accepted(fd))),
            Err(Errno::AGAIN) => Ok(None),
            Err(errno) => Err(SysError::new("accept4", errno).into()),
        }
    }

    /// Whether drop removes the socket file (`unlink`,
    /// [unlink(2)](https://man7.org/linux/man-pages/man2/unlink.2.html)), and only if the path still names the socket
    /// this listener bound. No effect for an abstract name.
    #[doc(alias = "unlink")]
    pub fn set_unlink_on_drop(&mut self, unlink: bool) {
        if let Some(bound) = &mut self.bound {
            bound.unlink_on_drop = unlink;
        }
    }

    /// The listening fd (non-blocking); the socket file is then never
    /// removed on drop.
    pub fn into_fd(mut self) -> OwnedFd {
        self.set_unlink_on_drop(false);
        self.fd
    }
}

impl AsFd for SeqpacketListener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for SeqpacketListener {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl From<SeqpacketListener> for OwnedFd {
    fn from(listener: SeqpacketListener) -> Self {
        listener.into_fd()
    }
}

/// `bind`'s error: [`UdsError::AddrInUse`] for `EADDRINUSE`.
pub(super) fn bind_err(errno: Errno) -> UdsError {
    match errno {
        Errno::ADDRINUSE => UdsError::AddrInUse,
        errno => SysError::new("bind", errno).into(),
    }
}

/// `listen(fd, BACKLOG)`.
pub(super) fn listen(fd: BorrowedFd<'_>) -> Result<(), UdsError> {
    rustix::net::listen(fd, BACKLOG).map_err(SysError::from_call("listen"))?;
    Ok(())
}
