//! One fd registered with tokio's reactor, and the two waits on it: for an
//! eventfd's wake, and for a socket's hang-up.

use core::task::{Context, Poll, ready};
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};

use rustix::io::Errno;
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

use crate::linux::SysError;
use crate::linux::poll::hung_up;
use crate::linux::wake::{EventFd, WaitError};

/// An fd number that something else owns. Only [`Readiness`] holds one, and
/// the struct holding that `Readiness` owns the fd and declares it after the
/// `Readiness`, so that the registration goes before the fd closes.
#[derive(Debug)]
struct FdNumber(RawFd);

impl AsRawFd for FdNumber {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

/// An fd's one registration with tokio's reactor, for reading (which
/// includes hang-up).
#[derive(Debug)]
pub(super) struct Readiness(AsyncFd<FdNumber>);

impl Readiness {
    /// Registers `fd` for reading (`epoll_ctl(EPOLL_CTL_ADD)`, in the current
    /// tokio runtime's reactor).
    ///
    /// # Safety
    /// `fd` must stay open, the same open file, until the `Readiness` is
    /// dropped: the caller owns it and drops it after.
    ///
    /// # Panics
    /// Outside a tokio runtime with I/O enabled (as tokio does).
    pub(super) unsafe fn register(fd: BorrowedFd<'_>) -> Result<Self, SysError> {
        // SAFETY: the caller keeps `fd` open, the same file, for as long as
        // this registration lives; `FdNumber` always returns that number.
        let registered = unsafe {
            AsyncFd::register_with_interest(FdNumber(fd.as_raw_fd()), Interest::READABLE)
        };
        registered
            .map(Self)
            .map_err(|err| sys_error("epoll_ctl", &err.into_parts().1))
    }

    /// Ready once `eventfd` (the one registered) was signalled: drains it,
    /// then clears the readiness (a signal after the drain keeps it set, as
    /// tokio clears only the readiness it reported).
    pub(super) fn poll_woken(
        &self,
        cx: &mut Context<'_>,
        eventfd: &EventFd,
    ) -> Poll<Result<(), WaitError>> {
        let mut guard = ready!(self.0.poll_read_ready(cx)).map_err(reactor_failed)?;
        eventfd.drain()?;
        guard.clear_ready();
        Poll::Ready(Ok(()))
    }

    /// Ready with [`WaitError::PeerGone`] once `socket` (the one registered)
    /// hung up; other readiness (a message the peer sent) is cleared and
    /// waited past.
    pub(super) fn poll_hung_up(
        &self,
        cx: &mut Context<'_>,
        socket: BorrowedFd<'_>,
    ) -> Poll<WaitError> {
        loop {
            let mut guard = match ready!(self.0.poll_read_ready(cx)) {
                Ok(guard) => guard,
                Err(err) => return Poll::Ready(reactor_failed(err)),
            };
            match hung_up(socket) {
                Ok(true) => return Poll::Ready(WaitError::PeerGone),
                Ok(false) => guard.clear_ready(),
                Err(err) => return Poll::Ready(err.into()),
            }
        }
    }

    /// Ready with what `attempt` returns once it returns `Some`: it is
    /// called each time the fd is reported readable, and `None` (nothing
    /// there after all: `EAGAIN`) clears that readiness and waits for the
    /// next.
    pub(super) fn poll_until<R>(
        &self,
        cx: &mut Context<'_>,
        mut attempt: impl FnMut() -> Option<R>,
    ) -> Poll<Result<R, SysError>> {
        loop {
            let mut guard = match ready!(self.0.poll_read_ready(cx)) {
                Ok(guard) => guard,
                Err(err) => return Poll::Ready(Err(sys_error("epoll_wait", &err))),
            };
            match attempt() {
                Some(done) => return Poll::Ready(Ok(done)),
                None => guard.clear_ready(),
            }
        }
    }
}

/// The reactor failed (it shut down, or `epoll_wait` failed).
fn reactor_failed(err: std::io::Error) -> WaitError {
    WaitError::Sys(sys_error("epoll_wait", &err))
}

/// `err` from tokio as the crate's [`SysError`], naming `call`; `EIO` for an
/// error without an errno (tokio's "reactor gone").
fn sys_error(call: &'static str, err: &std::io::Error) -> SysError {
    SysError::new(call, Errno::from_io_error(err).unwrap_or(Errno::IO))
}
