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
use std::ffi::OsStr;
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{FileType, Stat};
use rustix::io::Errno;
use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags,
    SendAncillaryBuffer, SendAncillaryMessage, SendFlags, SocketAddrUnix, SocketFlags, SocketType,
};
use rustix::process::{Gid, Pid, Uid};

use super::SysError;

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

/// `socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC)`.
fn seqpacket_socket() -> Result<OwnedFd, UdsError> {
    let fd = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )
    .map_err(SysError::from_call("socket"))?;
    Ok(fd)
}

/// A listening `SOCK_SEQPACKET` socket.
///
/// By default the socket file of a path address is left in place on drop:
/// a fd handed to a successor process may still be listening on it, and the
/// next [`bind`](Self::bind) replaces a stale file anyway. Call
/// [`set_unlink_on_drop`](Self::set_unlink_on_drop) to remove it.
#[derive(Debug)]
pub struct SeqpacketListener {
    fd: OwnedFd,
    bound: Option<BoundPath>,
}

impl SeqpacketListener {
    /// Binds to `addr` and listens: `socket`, `bind`, `listen`.
    ///
    /// If a path address is taken by a socket file nobody listens on (a
    /// connect probe is refused), the file is unlinked and the bind retried.
    /// A live listener gives [`UdsError::AddrInUse`]; a file that is not a
    /// socket gives [`UdsError::NotASocket`] and is never removed.
    ///
    /// A live listener sees the probe as a client that connects and hangs
    /// up at once. Between the probe and the unlink, another process could
    /// replace the stale file with a live socket; processes that may race to
    /// bind one path need a lock of their own.
    #[doc(alias("socket", "listen"))]
    pub fn bind(addr: &UnixAddr) -> Result<Self, UdsError> {
        let fd = seqpacket_socket()?;
        let bound = match addr.as_path() {
            Some(path) => Some(bind_path(&fd, addr, path)?),
            None => {
                rustix::net::bind(&fd, &addr.0).map_err(bind_err)?;
                None
            }
        };
        rustix::net::listen(&fd, BACKLOG).map_err(SysError::from_call("listen"))?;
        Ok(Self { fd, bound })
    }

    /// Accepts a connection, close-on-exec: `accept4(SOCK_CLOEXEC)`.
    #[doc(alias = "accept4")]
    pub fn accept(&self) -> Result<SeqpacketStream, UdsError> {
        let fd = rustix::net::accept_with(&self.fd, SocketFlags::CLOEXEC)
            .map_err(SysError::from_call("accept4"))?;
        Ok(SeqpacketStream { fd })
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

    /// The listening fd; the socket file is then never removed on drop.
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

/// Maps a `bind` error; `EADDRINUSE` becomes [`UdsError::AddrInUse`].
fn bind_err(errno: Errno) -> UdsError {
    match errno {
        Errno::ADDRINUSE => UdsError::AddrInUse,
        _ => UdsError::Sys(SysError::new("bind", errno)),
    }
}

/// Binds `fd` to a path, replacing a stale socket file once.
fn bind_path(fd: &OwnedFd, addr: &UnixAddr, path: &Path) -> Result<BoundPath, UdsError> {
    match rustix::net::bind(fd, &addr.0) {
        Err(Errno::ADDRINUSE) => {
            remove_stale(addr, path)?;
            rustix::net::bind(fd, &addr.0).map_err(bind_err)?;
        }
        other => other.map_err(bind_err)?,
    }
    let stat = rustix::fs::lstat(path).map_err(SysError::from_call("lstat"))?;
    Ok(BoundPath {
        path: path.to_owned(),
        stat,
        unlink_on_drop: false,
    })
}

/// Unlinks `path` if it is a socket nobody listens on.
fn remove_stale(addr: &UnixAddr, path: &Path) -> Result<(), UdsError> {
    let stat = match rustix::fs::lstat(path) {
        Err(Errno::NOENT) => return Ok(()),
        other => other.map_err(SysError::from_call("lstat"))?,
    };
    if FileType::from_raw_mode(stat.st_mode) != FileType::Socket {
        return Err(UdsError::NotASocket {
            path: path.to_owned(),
        });
    }
    let probe = seqpacket_socket()?;
    if rustix::net::connect(&probe, &addr.0) != Err(Errno::CONNREFUSED) {
        return Err(UdsError::AddrInUse);
    }
    match rustix::fs::unlink(path) {
        Err(Errno::NOENT) => Ok(()),
        other => Ok(other.map_err(SysError::from_call("unlink"))?),
    }
}

/// The socket file a listener bound, as it was right after `bind`.
#[derive(Debug)]
struct BoundPath {
    path: PathBuf,
    stat: Stat,
    unlink_on_drop: bool,
}

impl Drop for BoundPath {
    fn drop(&mut self) {
        if !self.unlink_on_drop {
            return;
        }
        // Only remove the file if it is still ours; errors are ignored, as
        // a drop cannot report them and a stale file is replaced by `bind`.
        if let Ok(now) = rustix::fs::lstat(&self.path)
            && now.st_dev == self.stat.st_dev
            && now.st_ino == self.stat.st_ino
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
    /// Connects to a listener: `socket`, `connect`.
    #[doc(alias = "socket")]
    pub fn connect(addr: &UnixAddr) -> Result<Self, UdsError> {
        let fd = seqpacket_socket()?;
        rustix::net::connect(&fd, &addr.0).map_err(SysError::from_call("connect"))?;
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

    #[test]
    fn errors_display_and_source() {
        use core::error::Error;
        let sys = UdsError::Sys(SysError::new("bind", Errno::ACCESS));
        assert!(sys.to_string().starts_with("bind: "));
        assert!(sys.source().is_some());
        assert!(UdsError::AddrInUse.source().is_none());
    }
}
