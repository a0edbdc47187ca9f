//! The connected socket: messages, fds, credentials.

use core::mem::MaybeUninit;
use core::time::Duration;
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::Instant;

use rustix::io::Errno;
use rustix::net::sockopt::Timeout;
use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags,
    SendAncillaryBuffer, SendAncillaryMessage, SendFlags, SocketFlags, SocketType,
};

use super::{
    AddrError, Credentials, MAX_FDS, UdsError, UnixAddr, connect_nonblocking, seqpacket_socket,
};
use crate::linux::SysError;
use crate::linux::poll::deadline_after;

/// A connected `SOCK_SEQPACKET` socket: each send is received as one
/// message, whole or not at all.
#[derive(Debug)]
pub struct SeqpacketStream {
    fd: OwnedFd,
}

impl SeqpacketStream {
    /// A stream on a socket `accept4` returned.
    pub(super) fn from_accepted(fd: OwnedFd) -> Self {
        Self { fd }
    }

    /// Connects to a listener: `socket`, `connect`
    /// ([connect(2)](https://man7.org/linux/man-pages/man2/connect.2.html)).
    /// If the listener's backlog is full, waits until it accepts a
    /// connection; signals (`EINTR`) do not end the wait.
    ///
    /// # Errors
    /// An [`AddrError`] naming `addr`, holding [`UdsError::Sys`] with the
    /// failed call (`connect` with `ENOENT`: nothing at the path;
    /// `ECONNREFUSED`: nobody listens; `EACCES`: the socket file's mode
    /// refuses this user).
    #[doc(alias = "socket")]
    pub fn connect(addr: &UnixAddr) -> Result<Self, AddrError> {
        Self::connect_until(addr, None).map_err(|err| AddrError::new(addr, err))
    }

    /// [`connect`](Self::connect), waiting at most `timeout` for room in a
    /// full backlog.
    ///
    /// The connect is tried without blocking first. A full backlog makes a
    /// Unix socket's `connect` fail with `EAGAIN` rather than go on in the
    /// background (no `EINPROGRESS`, and `poll` cannot wait for room), so
    /// the wait is a blocking `connect` bounded by the time left, set as the
    /// socket's send timeout (`SO_SNDTIMEO`,
    /// [socket(7)](https://man7.org/linux/man-pages/man7/socket.7.html)),
    /// which the kernel applies to exactly that wait; the timeout is cleared
    /// afterwards.
    ///
    /// # Errors
    /// As for [`connect`](Self::connect), and [`UdsError::TimedOut`] once
    /// `timeout` has passed with the backlog still full.
    #[doc(alias("connect", "SO_SNDTIMEO"))]
    pub fn connect_timeout(addr: &UnixAddr, timeout: Duration) -> Result<Self, AddrError> {
        Self::connect_until(addr, deadline_after(Some(timeout)))
            .map_err(|err| AddrError::new(addr, err))
    }

    /// [`connect`](Self::connect) with a deadline (`None`: none); the error
    /// does not name `addr`, for callers that name it themselves.
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
    /// `socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC)`
    /// ([socketpair(2)](https://man7.org/linux/man-pages/man2/socketpair.2.html)).
    ///
    /// # Errors
    /// [`UdsError::Sys`] with the failed `socketpair` (e.g. `EMFILE`).
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

    /// Sends `data` as one message: `sendmsg(MSG_NOSIGNAL)`
    /// ([sendmsg(2)](https://man7.org/linux/man-pages/man2/sendmsg.2.html)).
    ///
    /// # Errors
    /// [`UdsError::EmptyMessage`] for an empty `data`;
    /// [`UdsError::PeerClosed`] if the peer has closed its end (no
    /// `SIGPIPE`); [`UdsError::Sys`] for another failure of `sendmsg`.
    #[doc(alias = "sendmsg")]
    pub fn send(&self, data: &[u8]) -> Result<(), UdsError> {
        self.send_with_fds(data, &[])
    }

    /// Sends `data` and duplicates of `fds` as one message:
    /// `sendmsg(MSG_NOSIGNAL)` with `SCM_RIGHTS`
    /// ([unix(7)](https://man7.org/linux/man-pages/man7/unix.7.html)). The
    /// message is sent whole or not at all.
    ///
    /// # Errors
    /// As for [`send`](Self::send), and [`UdsError::TooManyFds`] for more
    /// than [`MAX_FDS`] fds.
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

    /// Receives one message into `buf`: `recvmsg`
    /// ([recvmsg(2)](https://man7.org/linux/man-pages/man2/recvmsg.2.html)).
    /// Returns its length.
    ///
    /// # Errors
    /// A message carrying fds is [`UdsError::ControlTruncated`] (the kernel
    /// closes them); the others as for
    /// [`recv_with_fds`](Self::recv_with_fds).
    #[doc(alias = "recvmsg")]
    pub fn recv(&self, buf: &mut [u8]) -> Result<usize, UdsError> {
        self.recv_with_fds(buf, 0).map(|(len, _)| len)
    }

    /// Receives one message into `buf` and up to `max_fds` fds with it:
    /// `recvmsg(MSG_CMSG_CLOEXEC | MSG_TRUNC)`
    /// ([recvmsg(2)](https://man7.org/linux/man-pages/man2/recvmsg.2.html)).
    /// Returns the message length and the fds, owned and close-on-exec.
    ///
    /// `max_fds` above [`MAX_FDS`] is treated as [`MAX_FDS`].
    ///
    /// # Errors
    /// Every error consumes the message and closes any fds it carried:
    /// - [`UdsError::Truncated`]: the message was longer than `buf`;
    /// - [`UdsError::ControlTruncated`]: more fds came than the control
    ///   buffer (sized for `max_fds`, rounded up) holds;
    /// - [`UdsError::TooManyFds`]: more than `max_fds` came, within that
    ///   rounding;
    /// - [`UdsError::PeerClosed`]: end of stream (the peer hung up);
    /// - [`UdsError::Sys`]: `recvmsg` failed.
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

    /// The peer's pid, uid and gid when it connected:
    /// `getsockopt(SO_PEERCRED)`
    /// ([unix(7)](https://man7.org/linux/man-pages/man7/unix.7.html)).
    ///
    /// # Errors
    /// [`UdsError::Sys`] with the failed `getsockopt`.
    #[doc(alias("getsockopt", "SO_PEERCRED"))]
    pub fn peer_credentials(&self) -> Result<Credentials, UdsError> {
        Ok(Credentials::of_peer(self.fd.as_fd())?)
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

impl AsRawFd for SeqpacketStream {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl From<SeqpacketStream> for OwnedFd {
    fn from(stream: SeqpacketStream) -> Self {
        stream.into_fd()
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
