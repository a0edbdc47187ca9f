//! Unix domain sockets: seqpacket streams, fd passing, peer credentials.
//!
//! The socket is how a daemon finds its clients, checks who they are
//! ([`SeqpacketStream::peer_credentials`]) and hands them memory and wake-up
//! fds ([`SeqpacketStream::send_with_fds`]). Everything here is
//! `SOCK_SEQPACKET`: connection-oriented, reliable, and it keeps message
//! boundaries, so one `send` is one `recv`.
//!
//! - Every fd this module creates or receives is close-on-exec.
//! - A received message that did not fit (data or fds) is an error, never a
//!   silent cut; fds that did arrive are [`OwnedFd`]s and are closed with the
//!   error, so nothing leaks.
//! - Both types implement [`AsFd`], so they can be registered with
//!   `poll`/`epoll`.
//!
//! # Example
//!
//! ```
//! use std::io::{Read, Write};
//! use std::os::fd::AsFd;
//!
//! use ipc_primitives::linux::uds::SeqpacketStream;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let (daemon, client) = SeqpacketStream::pair()?;
//!
//! // The daemon hands over the write end of a pipe with a message.
//! let (mut reader, writer) = std::io::pipe()?;
//! daemon.send_with_fds(b"ring 0", &[writer.as_fd()])?;
//! drop(writer);
//!
//! // The client gets the bytes and its own fd for the same pipe.
//! let mut buf = [0; 64];
//! let (len, fds) = client.recv_with_fds(&mut buf, 1)?;
//! assert_eq!(&buf[..len], b"ring 0");
//! let mut received = std::fs::File::from(fds.into_iter().next().unwrap());
//! received.write_all(b"hello")?;
//! drop(received);
//! let mut text = String::new();
//! reader.read_to_string(&mut text)?;
//! assert_eq!(text, "hello");
//!
//! // Each side can check who is at the other end.
//! let creds = daemon.peer_credentials()?;
//! assert_eq!(creds.pid, Some(rustix::process::getpid()));
//! assert_eq!(creds.uid, rustix::process::geteuid());
//! # Ok(())
//! # }
//! ```

use core::fmt;
use core::mem::MaybeUninit;
use core::time::Duration;
use std::ffi::OsStr;
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use rustix::event::PollFlags;
use rustix::fs::{AtFlags, CWD, FileType, Mode, RenameFlags, Stat};
use rustix::io::Errno;
use rustix::net::sockopt::Timeout;
use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags,
    SendAncillaryBuffer, SendAncillaryMessage, SendFlags, SocketAddrUnix, SocketFlags, SocketType,
};
use rustix::process::{Gid, Pid, Uid};

use super::SysError;
use super::poll::{deadline_after, poll_fd};

/// Most fds one message can carry (the kernel's `SCM_MAX_FD`).
pub const MAX_FDS: usize = 253;

/// Size of `sun_path`: the most bytes a filesystem address can have.
pub const MAX_PATH_LEN: usize = 108;

/// Most bytes an abstract name can have (`sun_path` minus its leading NUL).
pub const MAX_ABSTRACT_LEN: usize = MAX_PATH_LEN - 1;

/// Backlog passed to `listen` (the kernel caps it at `somaxconn`).
const BACKLOG: i32 = 128;

/// Errors of the Unix socket adapters.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum UdsError {
    /// A system call failed; the kernel's error is kept.
    Sys(SysError),
    /// The address does not fit in `sun_path`.
    AddrTooLong {
        /// Length of the given path or name, in bytes.
        len: usize,
        /// The most this kind of address allows.
        max: usize,
    },
    /// The socket path is empty or contains a NUL byte.
    InvalidPath,
    /// The address is taken: a listener is live on it.
    AddrInUse,
    /// The path exists and is not a socket; it was left untouched.
    NotASocket {
        /// The path that was to be bound.
        path: PathBuf,
    },
    /// A socket file is at the path, but connecting to it to learn whether
    /// a listener is live failed (e.g. `EACCES`: this process may not
    /// connect to it); it was left untouched.
    ProbeFailed {
        /// The path that was to be bound.
        path: PathBuf,
        /// Why the probing `connect` failed.
        errno: Errno,
    },
    /// What was at the path kept changing while a stale socket was being
    /// replaced; whatever is there was left in place.
    PathChanged {
        /// The path that was to be bound.
        path: PathBuf,
    },
    /// A socket file mode with bits outside `0o777`.
    InvalidMode {
        /// The mode asked for.
        mode: u32,
    },
    /// A mode for an abstract address, which has no file to carry one.
    ModeOfAbstract,
    /// The listener's backlog stayed full until the timeout.
    TimedOut,
    /// The message did not fit the buffer; the kernel dropped the rest.
    Truncated {
        /// Length of the message as sent, in bytes.
        len: usize,
        /// Size of the buffer it was received into.
        capacity: usize,
    },
    /// The message carried more ancillary data (fds) than there was room
    /// for; the kernel closed what did not fit, the rest were closed here.
    ControlTruncated,
    /// A message carried more fds than allowed; all of them were closed.
    TooManyFds {
        /// Fds in the message.
        count: usize,
        /// The most allowed.
        max: usize,
    },
    /// Sending an empty message: the receiver could not tell it from a
    /// hang-up.
    EmptyMessage,
    /// The peer closed its end (end of stream, `EPIPE` or `ECONNRESET`).
    PeerClosed,
}

impl fmt::Display for UdsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sys(err) => write!(f, "{err}"),
            Self::AddrTooLong { len, max } => {
                write!(f, "socket address is {len} bytes, at most {max} fit")
            }
            Self::InvalidPath => f.write_str("socket path is empty or contains a NUL byte"),
            Self::AddrInUse => f.write_str("socket address is in use by a live listener"),
            Self::NotASocket { path } => write!(
                f,
                "{} exists and is not a socket; not removing it",
                path.display()
            ),
            Self::ProbeFailed { path, errno } => write!(
                f,
                "a socket file is at {}, but connecting to it to see whether it is live failed ({errno}); not removing it",
                path.display()
            ),
            Self::PathChanged { path } => write!(
                f,
                "{} kept changing while its stale socket was being replaced; leaving it",
                path.display()
            ),
            Self::InvalidMode { mode } => {
                write!(f, "socket file mode {mode:#o} has bits outside 0o777")
            }
            Self::ModeOfAbstract => f.write_str("an abstract socket address has no file mode"),
            Self::TimedOut => f.write_str("the listener's backlog stayed full until the timeout"),
            Self::Truncated { len, capacity } => write!(
                f,
                "message of {len} bytes truncated to the {capacity}-byte buffer"
            ),
            Self::ControlTruncated => {
                f.write_str("message carried more fds than there was room for")
            }
            Self::TooManyFds { count, max } => {
                write!(f, "message carries {count} fds, at most {max} allowed")
            }
            Self::EmptyMessage => f.write_str("cannot send an empty message"),
            Self::PeerClosed => f.write_str("peer closed the connection"),
        }
    }
}

impl core::error::Error for UdsError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Sys(err) => Some(err),
            _ => None,
        }
    }
}

impl From<SysError> for UdsError {
    fn from(err: SysError) -> Self {
        Self::Sys(err)
    }
}

/// Like [`SysError::from_call`], but a hang-up by the peer becomes
/// [`UdsError::PeerClosed`].
fn io_err(call: &'static str) -> impl Fn(Errno) -> UdsError {
    move |errno| match errno {
        Errno::PIPE | Errno::CONNRESET => UdsError::PeerClosed,
        _ => UdsError::Sys(SysError::new(call, errno)),
    }
}

/// A Unix socket address: a filesystem path or an abstract name.
///
/// Lengths are checked when the address is made, so binding and connecting
/// never fail for a malformed address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UnixAddr(SocketAddrUnix);

impl UnixAddr {
    /// A filesystem address: at most [`MAX_PATH_LEN`] bytes, not empty, no NUL.
    pub fn path(path: impl AsRef<Path>) -> Result<Self, UdsError> {
        let bytes = path.as_ref().as_os_str().as_bytes();
        if bytes.is_empty() || bytes.contains(&0) {
            return Err(UdsError::InvalidPath);
        }
        // With no NUL inside, the only failure left is the length.
        SocketAddrUnix::new(bytes)
            .map(Self)
            .map_err(|_| too_long(bytes.len(), MAX_PATH_LEN))
    }

    /// An abstract-namespace address (Linux): any bytes, at most
    /// [`MAX_ABSTRACT_LEN`]. It has no file and vanishes with its socket.
    pub fn abstract_name(name: impl AsRef<[u8]>) -> Result<Self, UdsError> {
        let name = name.as_ref();
        // The only failure is the length.
        SocketAddrUnix::new_abstract_name(name)
            .map(Self)
            .map_err(|_| too_long(name.len(), MAX_ABSTRACT_LEN))
    }

    /// The filesystem path, or `None` for an abstract name.
    pub fn as_path(&self) -> Option<&Path> {
        self.0
            .path_bytes()
            .map(|bytes| Path::new(OsStr::from_bytes(bytes)))
    }
}

fn too_long(len: usize, max: usize) -> UdsError {
    UdsError::AddrTooLong { len, max }
}

/// Who is at the other end of a connection, as the kernel saw it when the
/// connection was made (`SO_PEERCRED`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Credentials {
    /// Process id of the peer, as this process's pid namespace numbers it;
    /// `None` when the peer lives in a pid namespace this one cannot see (a
    /// client on the host talking to a daemon in a container: the kernel
    /// reports pid 0).
    pub pid: Option<Pid>,
    /// Effective user id of the peer. A peer whose uid has no mapping in this
    /// process's user namespace shows as the overflow uid
    /// (`/proc/sys/kernel/overflowuid`, usually 65534, `nobody`).
    pub uid: Uid,
    /// Effective group id of the peer.
    pub gid: Gid,
}

/// `getsockopt(SO_PEERCRED)` into plain integers.
///
/// This is the one call the adapters make through libc: rustix's
/// `socket_peercred` reads into a `UCred` whose `pid` is a non-zero `Pid`, and
/// the kernel writes pid 0 for a peer in a pid namespace this process cannot
/// see, which would make that value invalid.
fn so_peercred(fd: BorrowedFd<'_>) -> Result<libc::ucred, SysError> {
    const CALL: &str = "getsockopt(SO_PEERCRED)";
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    const SIZE: usize = size_of::<libc::ucred>();
    // The kernel's `struct ucred`: pid, uid, gid, 32 bits each.
    const _: () = assert!(SIZE == 12);
    let mut len = SIZE as libc::socklen_t;
    // SAFETY: `fd` is borrowed, so it stays open for the call. `cred` is a live,
    // writable `ucred` of exactly `len` bytes, and `len` a live `socklen_t`; the
    // kernel writes at most `len` bytes to the one (its `struct ucred`, whose
    // layout `libc::ucred` mirrors) and a length to the other. `ucred` is three
    // plain integers, so whatever bytes the kernel writes leave it a valid
    // value, and it was initialised before the call.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&raw mut cred).cast(),
            &raw mut len,
        )
    };
    if rc != 0 {
        let errno = std::io::Error::last_os_error()
            .raw_os_error()
            .map_or(Errno::IO, Errno::from_raw_os_error);
        return Err(SysError::new(CALL, errno));
    }
    if (len as usize) < SIZE {
        // Linux always writes a whole `ucred`; refuse a partial one regardless.
        return Err(SysError::new(CALL, Errno::INVAL));
    }
    Ok(cred)
}

/// `socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC)`.
fn seqpacket_socket() -> Result<OwnedFd, UdsError> {
    let fd = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
        None,
    )
    .map_err(SysError::from_call("socket"))?;
    Ok(fd)
}

/// `connect` on a non-blocking socket, retrying `EINTR`. `EAGAIN` means the
/// listener's backlog is full; Unix sockets never answer `EINPROGRESS`.
fn connect_nonblocking(fd: BorrowedFd<'_>, addr: &UnixAddr) -> Result<(), Errno> {
    rustix::io::retry_on_intr(|| rustix::net::connect(fd, &addr.0))
}

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
    bound: Option<BoundPath>,
}

impl SeqpacketListener {
    /// Binds to `addr` and listens: `socket`, `bind`, `listen`. A path's
    /// socket file gets mode `0o777` less the umask, as `bind` makes it; see
    /// [`bind_with_mode`](Self::bind_with_mode) to choose.
    ///
    /// A path is bound in two steps: the socket is bound to a fresh
    /// temporary name in the same directory (a dot and 8 hex digits, so the
    /// directory's path must leave room for it in [`MAX_PATH_LEN`]), starts
    /// listening there, then is renamed onto the path without replacing
    /// anything (`renameat2(RENAME_NOREPLACE)`). If the path is taken:
    /// - by a socket file nobody listens on (a non-blocking `connect` probe
    ///   is refused), that stale file is swapped out atomically
    ///   (`renameat2(RENAME_EXCHANGE)`) and unlinked only if it is the very
    ///   file probed (same device and inode); anything else found there is
    ///   swapped back and the probe repeated;
    /// - by a live listener (the probe connects, or finds its backlog full),
    ///   [`UdsError::AddrInUse`]. The listener sees the probe as a client
    ///   that connects and hangs up at once;
    /// - by a socket file the probe may not connect to,
    ///   [`UdsError::ProbeFailed`]; by anything but a socket,
    ///   [`UdsError::NotASocket`]. Neither is touched.
    ///
    /// On a filesystem without `renameat2` flags, the socket is linked into
    /// place (`link`, which never replaces either) and a stale file is
    /// unlinked after comparing its device and inode with the probed one,
    /// which leaves a window between the two for a process that can rename
    /// entries of the directory (see [the socket's
    /// directory](Self#the-sockets-directory)).
    #[doc(alias("socket", "listen", "renameat2"))]
    pub fn bind(addr: &UnixAddr) -> Result<Self, UdsError> {
        Self::bind_as(addr, None)
    }

    /// [`bind`](Self::bind), giving the socket file `mode` (at most
    /// `0o777`) before it listens: `fchmodat` on the temporary name, which
    /// no client can reach yet. (`fchmod` on the socket's fd would not do:
    /// on Linux it changes the socket's own inode, not the file's, and
    /// connecting checks the file's.)
    ///
    /// `mode` decides who may connect: `0o600` only this user, `0o666`
    /// anyone who can reach the directory. An abstract address has no file:
    /// [`UdsError::ModeOfAbstract`].
    #[doc(alias("fchmodat", "chmod"))]
    pub fn bind_with_mode(addr: &UnixAddr, mode: Mode) -> Result<Self, UdsError> {
        if mode.bits() & !0o777 != 0 {
            return Err(UdsError::InvalidMode { mode: mode.bits() });
        }
        Self::bind_as(addr, Some(mode))
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
        Ok(Self { fd, bound })
    }

    /// Accepts a connection, close-on-exec, waiting for one if none is
    /// pending: `accept4(SOCK_CLOEXEC)`, and `poll` while there is none.
    /// Signals (`EINTR`) do not end the wait.
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
    /// `accept4(SOCK_CLOEXEC)`. `None` if no client is waiting (`EAGAIN`).
    ///
    /// The accepted socket is blocking, whatever the listener's mode.
    #[doc(alias = "accept4")]
    pub fn try_accept(&self) -> Result<Option<SeqpacketStream>, UdsError> {
        match rustix::io::retry_on_intr(|| rustix::net::accept_with(&self.fd, SocketFlags::CLOEXEC))
        {
            Ok(fd) => Ok(Some(SeqpacketStream { fd })),
            Err(Errno::AGAIN) => Ok(None),
            Err(errno) => Err(SysError::new("accept4", errno).into()),
        }
    }

    /// Whether drop removes the socket file (`unlink`), and only if the path
    /// still names the socket this listener bound. No effect for an abstract
    /// name.
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

impl From<SeqpacketListener> for OwnedFd {
    fn from(listener: SeqpacketListener) -> Self {
        listener.into_fd()
    }
}

fn bind_err(errno: Errno) -> UdsError {
    match errno {
        Errno::ADDRINUSE => UdsError::AddrInUse,
        errno => SysError::new("bind", errno).into(),
    }
}

/// `listen(fd, BACKLOG)`.
fn listen(fd: BorrowedFd<'_>) -> Result<(), UdsError> {
    rustix::net::listen(fd, BACKLOG).map_err(SysError::from_call("listen"))?;
    Ok(())
}

/// Rounds of probing and swapping before a path that keeps changing is
/// given up on.
const REPLACE_ATTEMPTS: usize = 4;

/// Binds `fd` to `path` through a temporary name, gives it `mode`, listens,
/// and moves it into place, replacing only a socket file proved stale (see
/// [`SeqpacketListener::bind`]).
fn bind_path(fd: BorrowedFd<'_>, path: &Path, mode: Option<Mode>) -> Result<BoundPath, UdsError> {
    let temp = bind_temporary(fd, path)?;
    if let Some(mode) = mode {
        rustix::fs::chmodat(CWD, &temp.path, mode, AtFlags::empty())
            .map_err(SysError::from_call("fchmodat"))?;
    }
    listen(fd)?;
    for _ in 0..REPLACE_ATTEMPTS {
        match place(&temp.path, path) {
            Ok(()) => return Ok(temp.moved_to(path)),
            Err(Errno::EXIST) => {}
            Err(errno) => return Err(SysError::new("renameat2(RENAME_NOREPLACE)", errno).into()),
        }
        if let Some(stale) = probe(path)? {
            match swap_out(&temp.path, path, &stale)? {
                Swapped::Stale => return Ok(temp.moved_to(path)),
                Swapped::Other => {}
            }
        }
    }
    Err(UdsError::PathChanged {
        path: path.to_owned(),
    })
}

/// Fresh temporary names tried before giving up: a collision of random
/// names is rare, several in a row mean someone squats them.
const TEMPORARY_NAMES: usize = 4;

/// Binds `fd` to a fresh temporary name beside `path`: `.` and 8 random hex
/// digits. The name is unlinked on drop unless it was moved into place.
fn bind_temporary(fd: BorrowedFd<'_>, path: &Path) -> Result<BoundPath, UdsError> {
    use core::hash::{BuildHasher, Hasher};
    let dir = path.parent().unwrap_or(Path::new(""));
    for _ in 0..TEMPORARY_NAMES {
        // `RandomState` is seeded from the OS per instance: unpredictable.
        let random = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        let temp = dir.join(format!(".{:08x}", random as u32));
        let addr = UnixAddr::path(&temp)?;
        match rustix::net::bind(fd, &addr.0) {
            Ok(()) => {
                let stat = rustix::fs::lstat(&temp).map_err(SysError::from_call("lstat"))?;
                return Ok(BoundPath {
                    path: temp,
                    stat,
                    unlink_on_drop: true,
                });
            }
            Err(Errno::ADDRINUSE) => {}
            Err(errno) => return Err(bind_err(errno)),
        }
    }
    Err(SysError::new("bind", Errno::ADDRINUSE).into())
}

/// Renames `temp` to `path` unless something is there (`EEXIST`):
/// `renameat2(RENAME_NOREPLACE)`, or `link` then `unlink` where the
/// filesystem lacks the flag.
fn place(temp: &Path, path: &Path) -> Result<(), Errno> {
    match rustix::fs::renameat_with(CWD, temp, CWD, path, RenameFlags::NOREPLACE) {
        Err(Errno::INVAL | Errno::NOSYS) => {
            rustix::fs::link(temp, path)?;
            // The socket is in place; a temporary name left behind is only
            // litter, and `BoundPath::moved_to` stops tracking it.
            let _ = rustix::fs::unlink(temp);
            Ok(())
        }
        other => other,
    }
}

/// What is at `path`: `Ok(Some(stat))` for a socket file nobody listens on
/// (the `lstat` of it, identical before and after the probe), `Ok(None)` if
/// it vanished or changed under the probe, and the error to report for
/// anything else. `lstat`, `socket`, non-blocking `connect`.
fn probe(path: &Path) -> Result<Option<Stat>, UdsError> {
    let Some(before) = lstat_if_any(path)? else {
        return Ok(None);
    };
    if FileType::from_raw_mode(before.st_mode) != FileType::Socket {
        return Err(UdsError::NotASocket {
            path: path.to_owned(),
        });
    }
    let probe = seqpacket_socket()?;
    match connect_nonblocking(probe.as_fd(), &UnixAddr::path(path)?) {
        // Connected, a full backlog, or a listener of another socket type.
        Ok(()) | Err(Errno::AGAIN | Errno::PROTOTYPE) => Err(UdsError::AddrInUse),
        Err(Errno::CONNREFUSED) => {
            let after = lstat_if_any(path)?;
            Ok(after.filter(|after| same_file(after, &before)))
        }
        Err(Errno::NOENT) => Ok(None),
        Err(errno) => Err(UdsError::ProbeFailed {
            path: path.to_owned(),
            errno,
        }),
    }
}

/// `lstat(path)`, `None` if nothing is there.
fn lstat_if_any(path: &Path) -> Result<Option<Stat>, UdsError> {
    match rustix::fs::lstat(path) {
        Ok(stat) => Ok(Some(stat)),
        Err(Errno::NOENT) => Ok(None),
        Err(errno) => Err(SysError::new("lstat", errno).into()),
    }
}

fn same_file(a: &Stat, b: &Stat) -> bool {
    a.st_dev == b.st_dev && a.st_ino == b.st_ino
}

/// What [`swap_out`] found at the path.
enum Swapped {
    /// The stale socket, now unlinked; the new socket is in place.
    Stale,
    /// Something else, now back in place; the new socket is at its
    /// temporary name.
    Other,
}

/// Puts the socket at `temp` in place of the stale socket `stale` at `path`:
/// `renameat2(RENAME_EXCHANGE)`, then `lstat` what came out, and `unlink` it
/// only if it is `stale`; otherwise swaps back. Where the filesystem lacks
/// the flag: compares, then unlinks `path`, and reports `Other` so that the
/// caller places the socket again.
fn swap_out(temp: &Path, path: &Path, stale: &Stat) -> Result<Swapped, UdsError> {
    const EXCHANGE: &str = "renameat2(RENAME_EXCHANGE)";
    match rustix::fs::renameat_with(CWD, temp, CWD, path, RenameFlags::EXCHANGE) {
        Ok(()) => {}
        // It vanished: place the socket again.
        Err(Errno::NOENT) => return Ok(Swapped::Other),
        Err(Errno::INVAL | Errno::NOSYS) => {
            if lstat_if_any(path)?.is_some_and(|now| same_file(&now, stale)) {
                match rustix::fs::unlink(path) {
                    Ok(()) | Err(Errno::NOENT) => {}
                    Err(errno) => return Err(SysError::new("unlink", errno).into()),
                }
            }
            return Ok(Swapped::Other);
        }
        Err(errno) => return Err(SysError::new(EXCHANGE, errno).into()),
    }
    // `temp` now names what was at `path`.
    if lstat_if_any(temp)?.is_some_and(|out| same_file(&out, stale)) {
        rustix::fs::unlink(temp).map_err(SysError::from_call("unlink"))?;
        return Ok(Swapped::Stale);
    }
    rustix::fs::renameat_with(CWD, temp, CWD, path, RenameFlags::EXCHANGE)
        .map_err(SysError::from_call(EXCHANGE))?;
    Ok(Swapped::Other)
}

/// A socket file a listener bound, as it was right after `bind`.
#[derive(Debug)]
struct BoundPath {
    path: PathBuf,
    stat: Stat,
    unlink_on_drop: bool,
}

impl BoundPath {
    /// The same socket file, now at `path` (renamed there), kept on drop.
    fn moved_to(mut self, path: &Path) -> Self {
        self.path = path.to_owned();
        self.unlink_on_drop = false;
        self
    }
}

impl Drop for BoundPath {
    fn drop(&mut self) {
        if !self.unlink_on_drop {
            return;
        }
        // Only remove the file if it is still ours; errors are ignored, as
        // a drop cannot report them and a stale file is replaced by `bind`.
        if let Ok(now) = rustix::fs::lstat(&self.path)
            && same_file(&now, &self.stat)
        {
            let _ = rustix::fs::unlink(&self.path);
        }
    }
}

/// A connected `SOCK_SEQPACKET` socket: each send is received as one
/// message, whole or not at all.
#[derive(Debug)]
pub struct SeqpacketStream {
    fd: OwnedFd,
}

impl SeqpacketStream {
    /// Connects to a listener: `socket`, `connect`. If the listener's
    /// backlog is full, waits until it accepts a connection; signals
    /// (`EINTR`) do not end the wait.
    #[doc(alias = "socket")]
    pub fn connect(addr: &UnixAddr) -> Result<Self, UdsError> {
        Self::connect_until(addr, None)
    }

    /// [`connect`](Self::connect), waiting at most `timeout` for room in a
    /// full backlog: [`UdsError::TimedOut`] after that.
    ///
    /// The connect is tried without blocking first. A full backlog makes a
    /// Unix socket's `connect` fail with `EAGAIN` rather than go on in the
    /// background (no `EINPROGRESS`, and `poll` cannot wait for room), so
    /// the wait is a blocking `connect` bounded by the time left, set as the
    /// socket's send timeout (`SO_SNDTIMEO`), which the kernel applies to
    /// exactly that wait; the timeout is cleared afterwards.
    #[doc(alias("connect", "SO_SNDTIMEO"))]
    pub fn connect_timeout(addr: &UnixAddr, timeout: Duration) -> Result<Self, UdsError> {
        Self::connect_until(addr, deadline_after(Some(timeout)))
    }

    /// [`connect`](Self::connect) with a deadline (`None`: none).
    pub(crate) fn connect_until(
        addr: &UnixAddr,
        deadline: Option<Instant>,
    ) -> Result<Self, UdsError> {
        const CALL: &str = "connect";
        let fd = seqpacket_socket()?;
        match connect_nonblocking(fd.as_fd(), addr) {
            Ok(()) => {}
            Err(Errno::AGAIN) => connect_blocking(fd.as_fd(), addr, deadline)?,
            Err(errno) => return Err(SysError::new(CALL, errno).into()),
        }
        // Streams block: `recv` waits for a message.
        rustix::io::ioctl_fionbio(&fd, false).map_err(SysError::from_call("ioctl(FIONBIO)"))?;
        Ok(Self { fd })
    }

    /// Two connected ends, close-on-exec:
    /// `socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC)`.
    #[doc(alias = "socketpair")]
    pub fn pair() -> Result<(Self, Self), UdsError> {
        let (a, b) = rustix::net::socketpair(
            AddressFamily::UNIX,
            SocketType::SEQPACKET,
            SocketFlags::CLOEXEC,
            None,
        )
        .map_err(SysError::from_call("socketpair"))?;
        Ok((Self { fd: a }, Self { fd: b }))
    }

    /// Sends `data` as one message: `sendmsg(MSG_NOSIGNAL)`.
    ///
    /// An empty `data` is [`UdsError::EmptyMessage`]; a closed peer is
    /// [`UdsError::PeerClosed`] (no `SIGPIPE`).
    #[doc(alias = "sendmsg")]
    pub fn send(&self, data: &[u8]) -> Result<(), UdsError> {
        self.send_with_fds(data, &[])
    }

    /// Sends `data` and duplicates of `fds` as one message:
    /// `sendmsg(MSG_NOSIGNAL)` with `SCM_RIGHTS`.
    ///
    /// At most [`MAX_FDS`] fds ([`UdsError::TooManyFds`] otherwise). The
    /// message is sent whole or not at all.
    #[doc(alias("sendmsg", "SCM_RIGHTS"))]
    pub fn send_with_fds(&self, data: &[u8], fds: &[BorrowedFd<'_>]) -> Result<(), UdsError> {
        if data.is_empty() {
            return Err(UdsError::EmptyMessage);
        }
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        // The length check comes first: it keeps `push` from overflowing.
        if fds.len() > MAX_FDS
            || (!fds.is_empty() && !control.push(SendAncillaryMessage::ScmRights(fds)))
        {
            return Err(UdsError::TooManyFds {
                count: fds.len(),
                max: MAX_FDS,
            });
        }
        let iov = [IoSlice::new(data)];
        rustix::net::sendmsg(&self.fd, &iov, &mut control, SendFlags::NOSIGNAL)
            .map_err(io_err("sendmsg"))?;
        Ok(())
    }

    /// Receives one message into `buf`: `recvmsg`. Returns its length.
    ///
    /// A message carrying fds is [`UdsError::ControlTruncated`] (the kernel
    /// closes them); see [`recv_with_fds`](Self::recv_with_fds) for the
    /// other errors.
    #[doc(alias = "recvmsg")]
    pub fn recv(&self, buf: &mut [u8]) -> Result<usize, UdsError> {
        self.recv_with_fds(buf, 0).map(|(len, _)| len)
    }

    /// Receives one message into `buf` and up to `max_fds` fds with it:
    /// `recvmsg(MSG_CMSG_CLOEXEC | MSG_TRUNC)`. Returns the message length
    /// and the fds, owned and close-on-exec.
    ///
    /// `max_fds` above [`MAX_FDS`] is treated as [`MAX_FDS`]. Every error
    /// consumes the message and closes any fds it carried:
    /// - [`UdsError::Truncated`]: the message was longer than `buf`;
    /// - [`UdsError::ControlTruncated`]: more fds came than the control
    ///   buffer (sized for `max_fds`, rounded up) holds;
    /// - [`UdsError::TooManyFds`]: more than `max_fds` came, within that
    ///   rounding;
    /// - [`UdsError::PeerClosed`]: end of stream (the peer hung up).
    #[doc(alias("recvmsg", "SCM_RIGHTS"))]
    pub fn recv_with_fds(
        &self,
        buf: &mut [u8],
        max_fds: usize,
    ) -> Result<(usize, Vec<OwnedFd>), UdsError> {
        let max_fds = max_fds.min(MAX_FDS);
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
        let mut control = RecvAncillaryBuffer::new(&mut space[..control_len(max_fds)]);
        let capacity = buf.len();
        let mut iov = [IoSliceMut::new(buf)];
        let flags = RecvFlags::CMSG_CLOEXEC | RecvFlags::TRUNC;
        let msg = rustix::net::recvmsg(&self.fd, &mut iov, &mut control, flags)
            .map_err(io_err("recvmsg"))?;
        let fds = take_fds(&mut control);
        if msg.flags.contains(ReturnFlags::TRUNC) {
            return Err(UdsError::Truncated {
                len: msg.bytes,
                capacity,
            });
        }
        if msg.flags.contains(ReturnFlags::CTRUNC) {
            return Err(UdsError::ControlTruncated);
        }
        if fds.len() > max_fds {
            return Err(UdsError::TooManyFds {
                count: fds.len(),
                max: max_fds,
            });
        }
        if msg.bytes == 0 {
            return Err(UdsError::PeerClosed);
        }
        Ok((msg.bytes, fds))
    }

    /// The peer's pid, uid and gid when it connected: `getsockopt(SO_PEERCRED)`.
    #[doc(alias("getsockopt", "SO_PEERCRED"))]
    pub fn peer_credentials(&self) -> Result<Credentials, UdsError> {
        let cred = so_peercred(self.fd.as_fd())?;
        Ok(Credentials {
            // The kernel never reports a negative pid; 0 means "not visible".
            pid: if cred.pid > 0 {
                Pid::from_raw(cred.pid)
            } else {
                None
            },
            uid: Uid::from_raw(cred.uid),
            gid: Gid::from_raw(cred.gid),
        })
    }

    /// The socket's fd.
    pub fn into_fd(self) -> OwnedFd {
        self.fd
    }
}

impl AsFd for SeqpacketStream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl From<SeqpacketStream> for OwnedFd {
    fn from(stream: SeqpacketStream) -> Self {
        stream.into_fd()
    }
}

/// Waits in a blocking `connect` for room in the listener's full backlog,
/// until `deadline`: the time left is the socket's `SO_SNDTIMEO`, after which
/// the kernel gives up with `EAGAIN`. `EINTR` is retried with the time left.
fn connect_blocking(
    fd: BorrowedFd<'_>,
    addr: &UnixAddr,
    deadline: Option<Instant>,
) -> Result<(), UdsError> {
    const SNDTIMEO: &str = "setsockopt(SO_SNDTIMEO)";
    rustix::io::ioctl_fionbio(fd, false).map_err(SysError::from_call("ioctl(FIONBIO)"))?;
    loop {
        // An `SO_SNDTIMEO` of zero would mean no timeout at all: what is
        // left is rounded up to at least a microsecond.
        let left = match deadline {
            None => None,
            Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => Some(left.max(Duration::from_micros(1))),
                _ => return Err(UdsError::TimedOut),
            },
        };
        rustix::net::sockopt::set_socket_timeout(fd, Timeout::Send, left)
            .map_err(SysError::from_call(SNDTIMEO))?;
        match rustix::net::connect(fd, &addr.0) {
            Ok(()) => break,
            // Interrupted, or the timeout (rounded to the kernel's ticks) ran
            // out: the loop decides with the clock.
            Err(Errno::INTR | Errno::AGAIN) => {}
            Err(errno) => return Err(SysError::new("connect", errno).into()),
        }
    }
    rustix::net::sockopt::set_socket_timeout(fd, Timeout::Send, None)
        .map_err(SysError::from_call(SNDTIMEO))?;
    Ok(())
}

/// Control buffer bytes for `max_fds` fds; none at all for zero.
const fn control_len(max_fds: usize) -> usize {
    if max_fds == 0 {
        0
    } else {
        rustix::cmsg_space!(ScmRights(max_fds))
    }
}

/// Takes ownership of every fd in `control`; other messages are dropped.
fn take_fds(control: &mut RecvAncillaryBuffer<'_>) -> Vec<OwnedFd> {
    control
        .drain()
        .filter_map(|msg| match msg {
            RecvAncillaryMessage::ScmRights(fds) => Some(fds),
            _ => None,
        })
        .flatten()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::thread;

    use rustix::io::FdFlags;
    use rustix::pipe::PipeFlags;

    /// A fresh directory under the temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(test: &str) -> Self {
            let name = format!("ipc-uds-{}-{test}", std::process::id());
            let dir = std::env::temp_dir().join(name);
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir(&dir).unwrap();
            Self(dir)
        }

        fn addr(&self) -> UnixAddr {
            UnixAddr::path(self.0.join("sock")).unwrap()
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn abstract_addr(test: &str) -> UnixAddr {
        let name = format!("ipc-primitives-test-{}-{test}", std::process::id());
        UnixAddr::abstract_name(name).unwrap()
    }

    /// A non-blocking pipe: (read end, write end).
    fn pipe() -> (OwnedFd, OwnedFd) {
        rustix::pipe::pipe_with(PipeFlags::CLOEXEC | PipeFlags::NONBLOCK).unwrap()
    }

    /// Whether every copy of the pipe's write end is closed: the read end
    /// sees end of file rather than `EAGAIN`. Unlike counting
    /// `/proc/self/fd`, this is not disturbed by tests running alongside.
    fn writers_closed(reader: &OwnedFd) -> bool {
        rustix::io::read(reader, &mut [0u8; 1]) == Ok(0)
    }

    fn check_connected(a: &SeqpacketStream, b: &SeqpacketStream) {
        a.send(b"ping").unwrap();
        let mut buf = [0; 8];
        assert_eq!(b.recv(&mut buf).unwrap(), 4);
        assert_eq!(&buf[..4], b"ping");
    }

    #[test]
    fn pair_keeps_message_boundaries() {
        let (a, b) = SeqpacketStream::pair().unwrap();
        a.send(b"first").unwrap();
        a.send(b"second!").unwrap();
        let mut buf = [0; 64];
        assert_eq!(b.recv(&mut buf).unwrap(), 5);
        assert_eq!(&buf[..5], b"first");
        assert_eq!(b.recv(&mut buf).unwrap(), 7);
        assert_eq!(&buf[..7], b"second!");
    }

    #[test]
    fn path_listener_accepts() {
        let dir = TempDir::new("accept");
        let addr = dir.addr();
        let listener = SeqpacketListener::bind(&addr).unwrap();
        let client = SeqpacketStream::connect(&addr).unwrap();
        let server = listener.accept().unwrap();
        check_connected(&client, &server);
        check_connected(&server, &client);
        let flags = rustix::io::fcntl_getfd(&server).unwrap();
        assert!(flags.contains(FdFlags::CLOEXEC));
    }

    #[test]
    fn abstract_listener_accepts_and_refuses_second_bind() {
        let addr = abstract_addr("abstract");
        let listener = SeqpacketListener::bind(&addr).unwrap();
        let client = SeqpacketStream::connect(&addr).unwrap();
        let server = listener.accept().unwrap();
        check_connected(&client, &server);
        let err = SeqpacketListener::bind(&addr).unwrap_err();
        assert_eq!(err, UdsError::AddrInUse);
    }

    #[test]
    fn passes_the_same_object_close_on_exec() {
        let (a, b) = SeqpacketStream::pair().unwrap();
        let (reader, writer) = pipe();
        a.send_with_fds(b"fd", &[writer.as_fd()]).unwrap();
        drop(writer);
        let mut buf = [0; 8];
        let (len, fds) = b.recv_with_fds(&mut buf, 1).unwrap();
        assert_eq!(&buf[..len], b"fd");
        assert_eq!(fds.len(), 1);
        let flags = rustix::io::fcntl_getfd(&fds[0]).unwrap();
        assert!(flags.contains(FdFlags::CLOEXEC));
        assert_eq!(rustix::io::write(&fds[0], b"through").unwrap(), 7);
        let mut out = [0; 16];
        assert_eq!(rustix::io::read(&reader, &mut out).unwrap(), 7);
        assert_eq!(&out[..7], b"through");
        drop(fds);
        assert!(writers_closed(&reader));
    }

    #[test]
    fn control_truncation_is_an_error_and_closes_fds() {
        let (a, b) = SeqpacketStream::pair().unwrap();
        let (reader, writer) = pipe();
        a.send_with_fds(b"many", &[writer.as_fd(); 16]).unwrap();
        drop(writer);
        assert!(!writers_closed(&reader), "fds in flight hold the pipe");
        let err = b.recv_with_fds(&mut [0; 8], 1).unwrap_err();
        assert_eq!(err, UdsError::ControlTruncated);
        assert!(writers_closed(&reader));
    }

    #[test]
    fn plain_recv_rejects_fds_and_closes_them() {
        let (a, b) = SeqpacketStream::pair().unwrap();
        let (reader, writer) = pipe();
        a.send_with_fds(b"fd", &[writer.as_fd()]).unwrap();
        drop(writer);
        assert_eq!(b.recv(&mut [0; 8]), Err(UdsError::ControlTruncated));
        assert!(writers_closed(&reader));
    }

    #[test]
    fn more_fds_than_expected_is_an_error_and_closes_them() {
        let (a, b) = SeqpacketStream::pair().unwrap();
        let (reader, writer) = pipe();
        a.send_with_fds(b"two", &[writer.as_fd(), writer.as_fd()])
            .unwrap();
        drop(writer);
        let err = b.recv_with_fds(&mut [0; 8], 1).unwrap_err();
        assert_eq!(err, UdsError::TooManyFds { count: 2, max: 1 });
        assert!(writers_closed(&reader));
    }

    #[test]
    fn message_truncation_is_an_error_and_closes_fds() {
        let (a, b) = SeqpacketStream::pair().unwrap();
        let (reader, writer) = pipe();
        a.send_with_fds(b"0123456789", &[writer.as_fd()]).unwrap();
        drop(writer);
        let err = b.recv_with_fds(&mut [0; 4], 1).unwrap_err();
        let expected = UdsError::Truncated {
            len: 10,
            capacity: 4,
        };
        assert_eq!(err, expected);
        assert!(writers_closed(&reader));
    }

    #[test]
    fn send_limits() {
        let (a, b) = SeqpacketStream::pair().unwrap();
        assert_eq!(a.send(b""), Err(UdsError::EmptyMessage));
        let fds = [a.as_fd(); MAX_FDS + 1];
        let err = a.send_with_fds(b"x", &fds).unwrap_err();
        let expected = UdsError::TooManyFds {
            count: MAX_FDS + 1,
            max: MAX_FDS,
        };
        assert_eq!(err, expected);
        drop(b);
        assert_eq!(a.send(b"x"), Err(UdsError::PeerClosed));
        assert_eq!(a.recv(&mut [0; 4]), Err(UdsError::PeerClosed));
    }

    #[test]
    fn stale_socket_file_is_replaced() {
        let dir = TempDir::new("stale");
        let addr = dir.addr();
        drop(SeqpacketListener::bind(&addr).unwrap());
        assert!(dir.0.join("sock").exists(), "kept on drop by default");
        let listener = SeqpacketListener::bind(&addr).unwrap();
        let client = SeqpacketStream::connect(&addr).unwrap();
        check_connected(&client, &listener.accept().unwrap());
    }

    #[test]
    fn live_listener_path_is_in_use() {
        let dir = TempDir::new("live");
        let addr = dir.addr();
        let listener = SeqpacketListener::bind(&addr).unwrap();
        let err = SeqpacketListener::bind(&addr).unwrap_err();
        assert_eq!(err, UdsError::AddrInUse);
        // The first listener still works.
        let client = SeqpacketStream::connect(&addr).unwrap();
        let _probe = listener.accept().unwrap();
        check_connected(&client, &listener.accept().unwrap());
    }

    #[test]
    fn regular_file_is_never_removed() {
        let dir = TempDir::new("regular");
        let path = dir.0.join("sock");
        std::fs::write(&path, b"keep me").unwrap();
        let err = SeqpacketListener::bind(&dir.addr()).unwrap_err();
        assert_eq!(err, UdsError::NotASocket { path: path.clone() });
        assert!(err.to_string().contains("not a socket"));
        assert_eq!(std::fs::read(&path).unwrap(), b"keep me");
    }

    #[test]
    fn unlink_on_drop_removes_only_its_own_file() {
        let dir = TempDir::new("unlink");
        let path = dir.0.join("sock");
        let mut listener = SeqpacketListener::bind(&dir.addr()).unwrap();
        listener.set_unlink_on_drop(true);
        drop(listener);
        assert!(!path.exists());

        let mut listener = SeqpacketListener::bind(&dir.addr()).unwrap();
        listener.set_unlink_on_drop(true);
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, b"someone else's").unwrap();
        drop(listener);
        assert_eq!(std::fs::read(&path).unwrap(), b"someone else's");
    }

    #[test]
    fn peer_credentials_on_both_ends() {
        let me = Credentials {
            pid: Some(rustix::process::getpid()),
            uid: rustix::process::geteuid(),
            gid: rustix::process::getegid(),
        };
        let (a, b) = SeqpacketStream::pair().unwrap();
        assert_eq!(a.peer_credentials().unwrap(), me);
        assert_eq!(b.peer_credentials().unwrap(), me);

        let addr = abstract_addr("creds");
        let listener = SeqpacketListener::bind(&addr).unwrap();
        let client = SeqpacketStream::connect(&addr).unwrap();
        let server = listener.accept().unwrap();
        assert_eq!(client.peer_credentials().unwrap(), me);
        assert_eq!(server.peer_credentials().unwrap(), me);
    }

    #[test]
    fn address_validation() {
        let long = "x".repeat(MAX_PATH_LEN + 1);
        let err = UnixAddr::path(&long).unwrap_err();
        let expected = UdsError::AddrTooLong {
            len: MAX_PATH_LEN + 1,
            max: MAX_PATH_LEN,
        };
        assert_eq!(err, expected);
        assert!(UnixAddr::path("x".repeat(MAX_PATH_LEN)).is_ok());
        assert_eq!(UnixAddr::path(""), Err(UdsError::InvalidPath));
        assert_eq!(UnixAddr::path("a\0b"), Err(UdsError::InvalidPath));

        let name = vec![0u8; MAX_ABSTRACT_LEN];
        assert!(UnixAddr::abstract_name(&name).is_ok());
        let err = UnixAddr::abstract_name([0u8; MAX_ABSTRACT_LEN + 1]).unwrap_err();
        let expected = UdsError::AddrTooLong {
            len: MAX_ABSTRACT_LEN + 1,
            max: MAX_ABSTRACT_LEN,
        };
        assert_eq!(err, expected);
        assert_eq!(UnixAddr::abstract_name("n").unwrap().as_path(), None);
    }

    /// A listener at `addr` with a backlog of 0 and one connection waiting,
    /// so its backlog is full: the next `connect` would block. Returns the
    /// listener and the waiting connection.
    fn full_backlog(addr: &UnixAddr) -> (OwnedFd, SeqpacketStream) {
        let listener = rustix::net::socket_with(
            AddressFamily::UNIX,
            SocketType::SEQPACKET,
            SocketFlags::CLOEXEC,
            None,
        )
        .unwrap();
        rustix::net::bind(&listener, &addr.0).unwrap();
        rustix::net::listen(&listener, 0).unwrap();
        let waiting = SeqpacketStream::connect(addr).unwrap();
        (listener, waiting)
    }

    /// Runs `f` on a thread and returns what it returns; panics if it has
    /// not returned within a generous bound (a call that blocks for ever).
    fn returns<R: Send + 'static>(what: &str, f: impl FnOnce() -> R + Send + 'static) -> R {
        let (send, recv) = std::sync::mpsc::channel();
        thread::spawn(move || send.send(f()));
        recv.recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("{what} blocked"))
    }

    /// Runs `f` on a thread whose uid, gid and groups are `nobody`'s (the
    /// raw system calls change the calling thread only); `None`, saying why,
    /// if this process is not root.
    fn as_nobody<R: Send>(f: impl FnOnce() -> R + Send) -> Option<R> {
        if !rustix::process::geteuid().is_root() {
            eprintln!("skipped: dropping to nobody needs root");
            return None;
        }
        let nobody = (Uid::from_raw(65534), Gid::from_raw(65534));
        Some(thread::scope(|s| {
            s.spawn(|| {
                rustix::thread::set_thread_groups(&[]).unwrap();
                rustix::thread::set_thread_res_gid(nobody.1, nobody.1, nobody.1).unwrap();
                rustix::thread::set_thread_res_uid(nobody.0, nobody.0, nobody.0).unwrap();
                f()
            })
            .join()
            .unwrap()
        }))
    }

    fn names_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn bind_does_not_block_on_a_listener_with_a_full_backlog() {
        let dir = TempDir::new("squatter");
        let addr = dir.addr();
        let (_squatter, _waiting) = full_backlog(&addr);
        let bound = returns("bind", move || SeqpacketListener::bind(&addr).map(drop));
        assert_eq!(bound, Err(UdsError::AddrInUse));
        assert_eq!(names_in(&dir.0), ["sock"], "no temporary name left");
    }

    #[test]
    fn connect_timeout_bounds_a_full_backlog() {
        let addr = abstract_addr("full-backlog");
        let (_listener, _waiting) = full_backlog(&addr);
        let timeout = Duration::from_millis(50);
        let start = Instant::now();
        let connected = returns("connect_timeout", move || {
            SeqpacketStream::connect_timeout(&addr, timeout).map(drop)
        });
        assert_eq!(connected, Err(UdsError::TimedOut));
        assert!(start.elapsed() >= timeout);
    }

    #[test]
    fn connect_waits_for_room_in_a_full_backlog() {
        let addr = abstract_addr("room");
        let (listener, _waiting) = full_backlog(&addr);
        let client = thread::spawn({
            let addr = addr.clone();
            move || SeqpacketStream::connect_timeout(&addr, Duration::from_secs(20))
        });
        // Accepting the waiting connection makes room for the client's.
        let _first = rustix::net::accept(&listener).unwrap();
        let client = client.join().unwrap().unwrap();
        let server = SeqpacketStream {
            fd: rustix::net::accept(&listener).unwrap(),
        };
        check_connected(&client, &server);
        // The stream blocks, and its send timeout was cleared.
        let flags = rustix::fs::fcntl_getfl(&client).unwrap();
        assert!(!flags.contains(rustix::fs::OFlags::NONBLOCK));
        let timeout = rustix::net::sockopt::socket_timeout(&client, Timeout::Send).unwrap();
        assert_eq!(timeout, None);
    }

    #[test]
    fn try_accept_does_not_wait() {
        let addr = abstract_addr("try-accept");
        let listener = SeqpacketListener::bind(&addr).unwrap();
        assert!(listener.try_accept().unwrap().is_none());
        let client = SeqpacketStream::connect(&addr).unwrap();
        let server = listener.try_accept().unwrap().expect("a client waits");
        check_connected(&client, &server);
        let flags = rustix::fs::fcntl_getfl(&server).unwrap();
        assert!(
            !flags.contains(rustix::fs::OFlags::NONBLOCK),
            "accepted sockets block"
        );
    }

    #[test]
    fn a_stale_socket_that_cannot_be_probed_is_reported_as_such() {
        let dir = TempDir::new("unprobeable");
        let addr = dir.addr();
        let path = dir.0.join("sock");
        drop(SeqpacketListener::bind_with_mode(&addr, Mode::from_raw_mode(0o600)).unwrap());
        // Others may create their temporary name here, not connect to root's socket.
        rustix::fs::chmod(&dir.0, Mode::from_raw_mode(0o777)).unwrap();
        let Some(bound) = as_nobody(|| SeqpacketListener::bind(&addr).map(drop)) else {
            return;
        };
        let err = bound.unwrap_err();
        assert_eq!(
            err,
            UdsError::ProbeFailed {
                path: path.clone(),
                errno: Errno::ACCESS
            }
        );
        assert!(err.to_string().contains("not removing it"), "{err}");
        assert!(is_socket(&path), "the stale socket is left in place");
        assert_eq!(names_in(&dir.0), ["sock"], "no temporary name left");
    }

    fn is_socket(path: &Path) -> bool {
        rustix::fs::lstat(path)
            .is_ok_and(|stat| FileType::from_raw_mode(stat.st_mode) == FileType::Socket)
    }

    #[test]
    fn bind_with_mode_sets_the_socket_file_mode() {
        let dir = TempDir::new("mode");
        let path = dir.0.join("sock");
        for mode in [0o600, 0o666, 0o640] {
            let listener =
                SeqpacketListener::bind_with_mode(&dir.addr(), Mode::from_raw_mode(mode)).unwrap();
            let stat = rustix::fs::lstat(&path).unwrap();
            assert_eq!(stat.st_mode & 0o7777, mode, "{mode:#o}");
            let connected = as_nobody(|| SeqpacketStream::connect(&dir.addr()).map(drop));
            match (mode, connected) {
                (_, None) => {}
                (0o666, Some(connected)) => connected.unwrap(),
                (_, Some(connected)) => assert_eq!(
                    connected,
                    Err(UdsError::Sys(SysError::new("connect", Errno::ACCESS))),
                    "{mode:#o}"
                ),
            }
            drop(listener);
        }
        assert_eq!(names_in(&dir.0), ["sock"], "no temporary name left");
    }

    #[test]
    fn bind_with_mode_refuses_what_cannot_be_set() {
        let dir = TempDir::new("bad-mode");
        let err = SeqpacketListener::bind_with_mode(&dir.addr(), Mode::from_raw_mode(0o4777))
            .unwrap_err();
        assert_eq!(err, UdsError::InvalidMode { mode: 0o4777 });
        let err =
            SeqpacketListener::bind_with_mode(&abstract_addr("mode"), Mode::RUSR).unwrap_err();
        assert_eq!(err, UdsError::ModeOfAbstract);
        assert!(names_in(&dir.0).is_empty());
    }

    /// The step that replaces a stale socket, with another file swapped onto
    /// the path between the probe and the replacement: the file is put back,
    /// never unlinked.
    #[test]
    fn a_file_swapped_in_after_the_probe_is_put_back() {
        let dir = TempDir::new("swap");
        let path = dir.0.join("sock");
        drop(SeqpacketListener::bind(&dir.addr()).unwrap());
        let stale = probe(&path).unwrap().expect("a stale socket");

        let evil = dir.0.join("evil");
        std::fs::write(&evil, b"someone else's").unwrap();
        std::fs::rename(&evil, &path).unwrap();

        let fd = seqpacket_socket().unwrap();
        let temp = bind_temporary(fd.as_fd(), &path).unwrap();
        assert!(matches!(
            swap_out(&temp.path, &path, &stale),
            Ok(Swapped::Other)
        ));
        assert_eq!(std::fs::read(&path).unwrap(), b"someone else's");
        assert!(
            is_socket(&temp.path),
            "the new socket is back at its temporary name"
        );
        drop(temp);
        assert_eq!(names_in(&dir.0), ["sock"]);
    }

    /// An attacker swaps a regular file onto the path while `bind` replaces
    /// the stale socket there, again and again: whatever `bind` returns, the
    /// attacker's file is never unlinked.
    #[test]
    fn replacing_a_stale_socket_never_unlinks_a_file_swapped_in() {
        // The check-then-unlink this replaced lost the file within 100 rounds.
        const ROUNDS: usize = 500;
        let dir = TempDir::new("race");
        let addr = dir.addr();
        let path = dir.0.join("sock");
        let keep = dir.0.join("keep");
        let mut swapped_in = 0;
        for round in 0..ROUNDS {
            let _ = std::fs::remove_file(&path);
            drop(SeqpacketListener::bind(&addr).unwrap());
            let _ = std::fs::remove_file(&keep);
            let barrier = std::sync::Barrier::new(2);
            let (swapped, bound) = thread::scope(|s| {
                let attacker = s.spawn(|| {
                    let staged = dir.0.join("staged");
                    std::fs::write(&staged, b"attacker").unwrap();
                    std::fs::hard_link(&staged, &keep).unwrap();
                    barrier.wait();
                    for _ in 0..round % 97 * 20 {
                        core::hint::spin_loop();
                    }
                    std::fs::rename(&staged, &path).is_ok()
                });
                barrier.wait();
                let bound = SeqpacketListener::bind(&addr);
                (attacker.join().unwrap(), bound)
            });
            drop(bound);
            if swapped {
                swapped_in += 1;
                let links = rustix::fs::lstat(&keep).unwrap().st_nlink;
                assert_eq!(links, 2, "round {round}: bind unlinked the attacker's file");
            }
        }
        assert!(swapped_in > 0);
    }

    #[test]
    fn errors_display_and_source() {
        use core::error::Error;
        let sys = UdsError::Sys(SysError::new("bind", Errno::ACCESS));
        assert!(sys.to_string().starts_with("bind: "));
        assert!(sys.source().is_some());
        assert!(UdsError::AddrInUse.source().is_none());
    }
}
