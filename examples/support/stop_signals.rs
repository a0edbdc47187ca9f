//! `SIGINT` and `SIGTERM` as events a process takes when it is ready, not
//! handlers that interrupt it.
//!
//! libc, not rustix: rustix has signal masks and `sigtimedwait` only in its
//! experimental `runtime` module, and no `signalfd`.

use std::mem::MaybeUninit;
use std::os::fd::{FromRawFd, OwnedFd};
use std::time::Duration;

use ipc_primitives::linux::SysError;
use rustix::io::Errno;

/// `SIGINT` and `SIGTERM`, blocked in this (single-threaded) process so that
/// they wait in the kernel until [`next`](Self::next) takes one: a clock and
/// the stop signal in one call, no handler.
pub(crate) struct StopSignals {
    set: libc::sigset_t,
}

impl StopSignals {
    /// Blocks the two signals: `sigemptyset`, `sigaddset`, `pthread_sigmask`.
    pub(crate) fn block() -> Result<Self, SysError> {
        let mut set = MaybeUninit::<libc::sigset_t>::uninit();
        // SAFETY: `sigemptyset` initialises the set behind the pointer, which
        // is valid for writes of a `sigset_t`; it cannot fail for a valid
        // pointer.
        unsafe { libc::sigemptyset(set.as_mut_ptr()) };
        // SAFETY: initialised by `sigemptyset` just above.
        let mut set = unsafe { set.assume_init() };
        for signal in [libc::SIGINT, libc::SIGTERM] {
            // SAFETY: `set` is an initialised `sigset_t`, and the signals are
            // valid, so this cannot fail.
            unsafe { libc::sigaddset(&mut set, signal) };
        }
        // SAFETY: `set` is initialised; a null old set asks for none back.
        let failed = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
        if failed != 0 {
            return Err(SysError::new(
                "pthread_sigmask",
                Errno::from_raw_os_error(failed),
            ));
        }
        Ok(Self { set })
    }

    /// Waits up to `timeout` (zero: not at all) for one of the signals and
    /// takes it: `sigtimedwait`. `None` when the time is up (or a stop and
    /// continue interrupted the wait).
    pub(crate) fn next(&self, timeout: Duration) -> Result<Option<&'static str>, SysError> {
        #[allow(
            clippy::unnecessary_fallible_conversions,
            reason = "infallible where `c_long` has 64 bits, not on 32-bit targets \
                      (nanoseconds, below 10^9, fit either way)"
        )]
        let timeout = libc::timespec {
            tv_sec: libc::time_t::try_from(timeout.as_secs()).unwrap_or(libc::time_t::MAX),
            tv_nsec: libc::c_long::try_from(timeout.subsec_nanos()).unwrap_or(0),
        };
        // SAFETY: `set` and `timeout` are initialised and outlive the call; a
        // null `info` asks for no details.
        let signal = unsafe { libc::sigtimedwait(&self.set, std::ptr::null_mut(), &timeout) };
        match signal {
            libc::SIGINT => Ok(Some("SIGINT")),
            libc::SIGTERM => Ok(Some("SIGTERM")),
            _ => match Errno::from_io_error(&std::io::Error::last_os_error()) {
                Some(Errno::AGAIN | Errno::INTR) | None => Ok(None),
                Some(errno) => Err(SysError::new("sigtimedwait", errno)),
            },
        }
    }

    /// An fd that is readable while one of the signals waits, to sleep on in
    /// `epoll` beside other fds; [`next`](Self::next) with a zero timeout
    /// then takes it. `signalfd`.
    #[allow(dead_code, reason = "only the examples that sleep in epoll use it")]
    pub(crate) fn fd(&self) -> Result<OwnedFd, SysError> {
        // SAFETY: `set` is initialised; -1 asks for a new fd.
        let fd = unsafe { libc::signalfd(-1, &self.set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC) };
        if fd < 0 {
            let errno = Errno::from_io_error(&std::io::Error::last_os_error());
            return Err(SysError::new("signalfd", errno.unwrap_or(Errno::IO)));
        }
        // SAFETY: `signalfd` returned a new fd that nothing else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }
}
