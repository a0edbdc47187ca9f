//! The eventfd: a kernel counter one side signals and the other waits on or
//! polls in an event loop.

use core::fmt;
use core::time::Duration;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::Instant;

use rustix::event::{EventfdFlags, PollFlags};
use rustix::fs::{Mode, OFlags};
use rustix::io::{Errno, IoSliceMut, ReadWriteFlags};

use super::WaitError;
use crate::linux::SysError;
use crate::linux::poll::{deadline_after, poll_fd, poll_now};

/// An eventfd in counter mode, non-blocking: one side [`signal`](Self::signal)s,
/// the other [`wait`](Self::wait)s or polls it in an event loop
/// ([eventfd(2)](https://man7.org/linux/man-pages/man2/eventfd.2.html)).
///
/// Each signal adds 1 to a kernel counter; a read returns the counter and
/// resets it, so one read consumes any number of signals. The wake-up protocol
/// re-checks the ring after every wake, so a count is all it needs.
#[derive(Debug)]
pub struct EventFd {
    fd: OwnedFd,
}

impl EventFd {
    /// Creates an eventfd with a zero counter:
    /// `eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)`
    /// ([eventfd(2)](https://man7.org/linux/man-pages/man2/eventfd.2.html)).
    ///
    /// # Errors
    /// The failed `eventfd` call (e.g. `EMFILE`: out of fds).
    #[doc(alias = "eventfd")]
    pub fn new() -> Result<Self, SysError> {
        let fd = rustix::event::eventfd(0, EventfdFlags::NONBLOCK | EventfdFlags::CLOEXEC)
            .map_err(SysError::from_call("eventfd"))?;
        Ok(Self { fd })
    }

    /// Adopts an eventfd received from a peer, after checking that it is one
    /// and is in counter mode: reads `/proc/thread-self/fdinfo/<fd>`
    /// ([proc_pid_fdinfo(5)](https://man7.org/linux/man-pages/man5/proc_pid_fdinfo.5.html)).
    ///
    /// # Without `/proc`
    /// Where the fdinfo cannot be opened (a sandbox without `/proc`), the
    /// check falls back to what needs none: `fstatfs` must find an anonymous
    /// inode (`ANON_INODE_FS_MAGIC`: not a pipe, socket, file or device), and
    /// an 8-byte `write` of zero must succeed, which of the anonymous-inode
    /// fds a peer can hand over (timerfd, signalfd, epoll, inotify, pidfd,
    /// userfaultfd, ...) only an eventfd accepts (it adds nothing to the
    /// counter; a sleeper on it sees one spurious wake). Semaphore mode is
    /// invisible there: a consumer that sleeps on an eventfd from an
    /// untrusted peer may then be woken until the peer's count runs out. A
    /// producer, such as the handshake's client, only writes to the fd,
    /// which the mode does not change.
    ///
    /// # Errors
    /// [`EventFdError::NotEventFd`] for any other fd;
    /// [`EventFdError::Semaphore`] for an eventfd made with `EFD_SEMAPHORE`
    /// (if the kernel shows the mode in fdinfo; older ones do not, and such
    /// eventfds pass unchecked); [`EventFdError::Sys`] if the fdinfo opened
    /// but could not be read, or `fstatfs` failed.
    #[doc(alias("fdinfo", "fstatfs"))]
    pub fn from_fd(fd: OwnedFd) -> Result<Self, EventFdError> {
        let path = format!("/proc/thread-self/fdinfo/{}", fd.as_raw_fd());
        let Ok(info) = rustix::fs::open(
            path.as_str(),
            OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        ) else {
            check_without_proc(fd.as_fd())?;
            return Ok(Self { fd });
        };
        // An eventfd's fdinfo is about 130 bytes.
        let mut buf = [0; 4096];
        let mut len = 0;
        while let Some(rest) = buf.get_mut(len..).filter(|rest| !rest.is_empty()) {
            match rustix::io::retry_on_intr(|| rustix::io::read(&info, &mut *rest)) {
                Ok(0) => break,
                Ok(read) => len += read,
                Err(errno) => return Err(SysError::new("read(fdinfo)", errno).into()),
            }
        }
        check_fdinfo(buf.get(..len).unwrap_or_default())?;
        Ok(Self { fd })
    }

    /// Adopts `fd` without checking it. An fd that is not a non-blocking
    /// counter-mode eventfd makes [`signal`](Self::signal),
    /// [`wait`](Self::wait) and [`drain`](Self::drain) fail (`EINVAL`, `EBADF`)
    /// or misbehave (a pipe would carry the counter's bytes as data), never
    /// cause undefined behaviour.
    pub fn from_fd_trusted(fd: OwnedFd) -> Self {
        Self { fd }
    }

    /// Signals the other side: `write` of 1 to the counter
    /// ([write(2)](https://man7.org/linux/man-pages/man2/write.2.html)).
    ///
    /// A counter already at its maximum (`EAGAIN`) means the other side has a
    /// signal pending: that is success.
    ///
    /// # Errors
    /// The failed `write` (e.g. `EBADF` for an fd that is not writable).
    #[doc(alias = "write")]
    pub fn signal(&self) -> Result<(), SysError> {
        match rustix::io::retry_on_intr(|| rustix::io::write(&self.fd, &1_u64.to_ne_bytes())) {
            Ok(_) | Err(Errno::AGAIN) => Ok(()),
            Err(errno) => Err(SysError::new("write", errno)),
        }
    }

    /// Waits until signalled, then [drains](Self::drain) the counter: `poll`
    /// for `POLLIN`, then `read`
    /// ([poll(2)](https://man7.org/linux/man-pages/man2/poll.2.html)).
    ///
    /// `timeout` `None` waits for ever (as does one too long to represent).
    /// Returns `Ok` when signalled, and also when another reader drained the
    /// counter between the `poll` and the `read` (a spurious wake: the caller
    /// re-checks its condition anyway). An interrupted `poll` (`EINTR`) is
    /// retried with the time left.
    ///
    /// # Errors
    /// [`WaitError::TimedOut`] if nothing came in time; [`WaitError::Sys`]
    /// if `poll` or `read` failed.
    #[doc(alias("poll", "read"))]
    pub fn wait(&self, timeout: Option<Duration>) -> Result<(), WaitError> {
        self.poll_until(deadline_after(timeout))?;
        self.drain()?;
        Ok(())
    }

    /// Waits until the counter is non-zero, leaving it as it is: `poll`.
    /// Polls once even if `deadline` has passed.
    pub(super) fn poll_until(&self, deadline: Option<Instant>) -> Result<(), WaitError> {
        if poll_fd(self.fd.as_fd(), PollFlags::IN, deadline)?.is_empty() {
            return Err(WaitError::TimedOut);
        }
        Ok(())
    }

    /// Takes all pending signals without waiting: `preadv2(RWF_NOWAIT)` (or
    /// `read` on older kernels, whose eventfds refuse that)
    /// ([preadv2(2)](https://man7.org/linux/man-pages/man2/preadv2.2.html)).
    /// Returns the counter, 0 if nothing was pending.
    ///
    /// An event loop calls it when the fd polls readable, before re-checking
    /// its rings.
    ///
    /// # Errors
    /// The failed `read` (e.g. `EBADF`, `EINVAL` for an fd that is not an
    /// eventfd).
    #[doc(alias("read", "preadv2"))]
    pub fn drain(&self) -> Result<u64, SysError> {
        let mut count = [0; 8];
        match read_nowait(self.fd.as_fd(), &mut count) {
            Ok(_) => Ok(u64::from_ne_bytes(count)),
            Err(Errno::AGAIN) => Ok(0),
            Err(errno) => Err(SysError::new("read", errno)),
        }
    }

    /// Another fd for the same eventfd, e.g. for the other side in this
    /// process: `fcntl(F_DUPFD_CLOEXEC)`
    /// ([fcntl(2)](https://man7.org/linux/man-pages/man2/fcntl.2.html)).
    ///
    /// # Errors
    /// The failed `fcntl` (e.g. `EMFILE`).
    #[doc(alias("dup", "fcntl"))]
    pub fn try_clone(&self) -> Result<Self, SysError> {
        rustix::io::fcntl_dupfd_cloexec(&self.fd, 0)
            .map(Self::from_fd_trusted)
            .map_err(SysError::from_call("fcntl"))
    }

    /// The fd, to send to the peer or keep elsewhere.
    pub fn into_fd(self) -> OwnedFd {
        self.fd
    }
}

impl AsFd for EventFd {
    /// The eventfd, to register with `epoll` (readable while signals are
    /// pending) or send to a peer (e.g. with `SCM_RIGHTS`).
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for EventFd {
    /// The eventfd's number, for event loops that take one.
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl From<EventFd> for OwnedFd {
    fn from(eventfd: EventFd) -> Self {
        eventfd.fd
    }
}

/// Reads without blocking even if the fd's shared `O_NONBLOCK` flag was
/// cleared (the peer shares it and may clear it): `preadv2(fd, buf, -1,
/// RWF_NOWAIT)`, or where the kernel (older ones, for eventfds) or a seccomp
/// filter refuses that, a zero-timeout `poll` and a plain `read` only if it
/// says readable (this process is the only reader, so the `read` then finds
/// data).
fn read_nowait(fd: BorrowedFd<'_>, buf: &mut [u8]) -> Result<usize, Errno> {
    let nowait = rustix::io::preadv2(
        fd,
        &mut [IoSliceMut::new(&mut *buf)],
        // The current position, which an eventfd does not have.
        u64::MAX,
        ReadWriteFlags::NOWAIT,
    );
    match nowait {
        Err(Errno::OPNOTSUPP | Errno::NOSYS | Errno::PERM) => {
            if poll_now(fd, PollFlags::IN)
                .map_err(|err| err.errno)?
                .is_empty()
            {
                return Err(Errno::AGAIN);
            }
            rustix::io::retry_on_intr(|| rustix::io::read(fd, &mut *buf))
        }
        other => other,
    }
}

/// `ANON_INODE_FS_MAGIC` from `<linux/magic.h>`: the filesystem of
/// anonymous-inode fds (eventfd, timerfd, signalfd, epoll, ...).
const ANON_INODE_FS_MAGIC: u64 = 0x0904_1934;

/// The check of [`EventFd::from_fd`] that needs no `/proc`: an anonymous
/// inode that accepts an 8-byte write of zero. `fstatfs`, `write`.
fn check_without_proc(fd: BorrowedFd<'_>) -> Result<(), EventFdError> {
    let fs = rustix::fs::fstatfs(fd).map_err(SysError::from_call("fstatfs"))?;
    // `f_type` is a signed `long` on some targets; the magic is positive.
    #[allow(
        clippy::useless_conversion,
        reason = "`f_type`'s type differs by target"
    )]
    if u64::try_from(fs.f_type).ok() != Some(ANON_INODE_FS_MAGIC) {
        return Err(EventFdError::NotEventFd);
    }
    // An eventfd adds the value to its counter: zero changes nothing, and a
    // write of zero never blocks. Every other anonymous-inode fd refuses an
    // 8-byte write of zeros (most have no `write` at all).
    match rustix::io::retry_on_intr(|| rustix::io::write(fd, &0_u64.to_ne_bytes())) {
        Ok(8) => Ok(()),
        _ => Err(EventFdError::NotEventFd),
    }
}

/// Checks an fd's `/proc/.../fdinfo` text for a counter-mode eventfd.
pub(super) fn check_fdinfo(info: &[u8]) -> Result<(), EventFdError> {
    let mut eventfd = false;
    for line in info.split(|&byte| byte == b'\n') {
        if line.starts_with(b"eventfd-count:") {
            eventfd = true;
        } else if let Some(semaphore) = line.strip_prefix(b"eventfd-semaphore:")
            && semaphore.trim_ascii() != b"0"
        {
            return Err(EventFdError::Semaphore);
        }
    }
    if eventfd {
        Ok(())
    } else {
        Err(EventFdError::NotEventFd)
    }
}

/// Why an eventfd received from a peer was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EventFdError {
    /// A system call failed (transparent: prints, and has the source of,
    /// the [`SysError`]).
    Sys(SysError),
    /// The fd is not an eventfd.
    NotEventFd,
    /// The eventfd is in semaphore mode (`EFD_SEMAPHORE`), where a read takes
    /// one signal instead of all.
    Semaphore,
}

impl From<SysError> for EventFdError {
    fn from(err: SysError) -> Self {
        Self::Sys(err)
    }
}

impl fmt::Display for EventFdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sys(err) => fmt::Display::fmt(err, f),
            Self::NotEventFd => f.write_str("the fd is not an eventfd"),
            Self::Semaphore => f.write_str("the eventfd is in semaphore mode (EFD_SEMAPHORE)"),
        }
    }
}

impl core::error::Error for EventFdError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Sys(err) => err.source(),
            Self::NotEventFd | Self::Semaphore => None,
        }
    }
}
