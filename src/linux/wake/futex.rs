//! Futex wake-ups: sleeping in the kernel on the event's epoch word itself,
//! in the shared memory, shared between processes.

use core::time::Duration;

use rustix::event::Timespec;
use rustix::io::Errno;
use rustix::thread::futex;

use super::WaitError;
use crate::event::Event;
use crate::linux::SysError;

/// `futex_wake` count that wakes every waiter: the kernel reads it as an `int`.
const WAKE_ALL: u32 = i32::MAX as u32;

/// Sleeps on `event`'s epoch word while it still holds `epoch`:
/// `futex(FUTEX_WAIT)` on the word, shared between processes
/// ([futex(2)](https://man7.org/linux/man-pages/man2/futex.2.html)).
///
/// Returns `Ok` when woken by [`futex_wake`], when the epoch is no longer
/// `epoch` (`EAGAIN`: a wake came first), and when interrupted (`EINTR`): the
/// caller re-checks its condition in every case. `timeout` `None` waits for
/// ever, as does one too long to represent.
///
/// # Errors
/// [`WaitError::TimedOut`] after `timeout`; [`WaitError::Sys`] if the call
/// failed otherwise.
#[doc(alias("futex", "FUTEX_WAIT"))]
pub fn futex_wait(event: &Event, epoch: u32, timeout: Option<Duration>) -> Result<(), WaitError> {
    let word = event.futex_word();
    let timeout = timeout.and_then(|timeout| Timespec::try_from(timeout).ok());
    // No `Flags::PRIVATE`: the word is in memory other processes map, at other
    // addresses; only a shared futex is keyed by the memory itself.
    match futex::wait(word, futex::Flags::empty(), epoch, timeout.as_ref()) {
        Ok(()) | Err(Errno::AGAIN | Errno::INTR) => Ok(()),
        Err(Errno::TIMEDOUT) => Err(WaitError::TimedOut),
        Err(errno) => Err(SysError::new("futex(FUTEX_WAIT)", errno).into()),
    }
}

/// Wakes every thread, in any process, sleeping in [`futex_wait`] on `event`:
/// `futex(FUTEX_WAKE)`
/// ([futex(2)](https://man7.org/linux/man-pages/man2/futex.2.html)). Returns
/// how many woke.
///
/// Call it after the epoch changed, as
/// [`Producer::wake_needed`](crate::spsc::Producer::wake_needed) does when it
/// returns `true`; a sleeper that has not yet gone to sleep then sees the new
/// epoch and does not.
///
/// # Errors
/// The failed call (`EFAULT`, `EINVAL`: not expected for a word in mapped
/// memory).
#[doc(alias("futex", "FUTEX_WAKE"))]
pub fn futex_wake(event: &Event) -> Result<usize, SysError> {
    let word = event.futex_word();
    futex::wake(word, futex::Flags::empty(), WAKE_ALL)
        .map_err(SysError::from_call("futex(FUTEX_WAKE)"))
}
