//! The choice between the two wake-ups: how a ring's consumer sleeps and its
//! producer wakes it.

use std::time::Instant;

use super::{EventFd, WaitError, futex_wait, futex_wake};
use crate::event::Event;
use crate::linux::SysError;

/// How a ring's consumer sleeps and its producer wakes it. Both sides must use
/// the same kind; see [Eventfd or futex](super#eventfd-or-futex).
#[derive(Debug)]
#[non_exhaustive]
pub enum Wakeup {
    /// Sleep in `poll` on the eventfd; wake by writing to it. Each side holds
    /// its own [`EventFd`] for the same kernel object (one side received the
    /// fd from the other).
    EventFd(EventFd),
    /// Sleep in `futex_wait` on the event's epoch; wake with `futex_wake`.
    Futex,
}

impl Wakeup {
    /// An eventfd wake-up on a new eventfd: [`EventFd::new`], which calls
    /// `eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)`
    /// ([eventfd(2)](https://man7.org/linux/man-pages/man2/eventfd.2.html)).
    ///
    /// # Errors
    /// As for [`EventFd::new`].
    pub fn eventfd() -> Result<Self, SysError> {
        EventFd::new().map(Self::EventFd)
    }

    /// The eventfd, for an epoll set; `None` for a futex, which has no fd.
    pub fn as_eventfd(&self) -> Option<&EventFd> {
        match self {
            Self::EventFd(fd) => Some(fd),
            Self::Futex => None,
        }
    }

    /// Wakes the consumer sleeping on `event`: [`EventFd::signal`] or
    /// [`futex_wake`] ([write(2)](https://man7.org/linux/man-pages/man2/write.2.html), [futex(2)](https://man7.org/linux/man-pages/man2/futex.2.html)). Call it when
    /// [`Producer::wake_needed`](crate::spsc::Producer::wake_needed) returns
    /// `true` (at any other time it is a harmless, wasted system call).
    ///
    /// # Errors
    /// The failed `write` or `futex` call.
    #[doc(alias("write", "futex", "FUTEX_WAKE"))]
    pub fn wake(&self, event: &Event) -> Result<(), SysError> {
        match self {
            Self::EventFd(eventfd) => eventfd.signal(),
            Self::Futex => futex_wake(event).map(drop),
        }
    }

    /// Sleeps on `event` until woken, having announced itself at `epoch` (the
    /// `sleep` of [`Consumer::pop_or_sleep`](crate::spsc::Consumer::pop_or_sleep),
    /// which [`Consumer::pop_blocking`](crate::spsc::Consumer::pop_blocking)
    /// uses): `poll` on the eventfd, or `futex(FUTEX_WAIT)`
    /// ([poll(2)](https://man7.org/linux/man-pages/man2/poll.2.html),
    /// [futex(2)](https://man7.org/linux/man-pages/man2/futex.2.html)).
    ///
    /// Returns `Ok` when woken or spuriously (the caller re-checks). `EINTR`
    /// is a spurious wake for a futex and retried for an eventfd.
    ///
    /// `epoch` must be the one the announcement returned, and an eventfd must
    /// serve one ring's consumer only: a sleep drains what earlier wakes left
    /// in the counter, and another sleeper's drain could take this one's
    /// wake. The fd stays readable after a wake until the next sleep or
    /// [`EventFd::drain`]: an event loop that also watches it drains it
    /// itself.
    ///
    /// # Errors
    /// [`WaitError::TimedOut`] once `deadline` has passed (without a system
    /// call if it already had); [`WaitError::Sys`] if a call failed.
    #[doc(alias("poll", "read", "futex", "FUTEX_WAIT"))]
    pub fn sleep(
        &self,
        event: &Event,
        epoch: u32,
        deadline: Option<Instant>,
    ) -> Result<(), WaitError> {
        let timeout = match deadline {
            None => None,
            Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => Some(left),
                _ => return Err(WaitError::TimedOut),
            },
        };
        match self {
            Self::EventFd(eventfd) => {
                // Drain what earlier wakes left, then return at once if the
                // epoch has moved (the drain took this sleep's wake), and
                // otherwise poll, leaving the wake that ends the poll in the
                // counter for the next sleep to drain. That keeps the `read`
                // off the path from the producer's wake to the consumer's
                // pop: one system call there, as for a blocking `read`. The
                // drain sees a wake only after the producer advanced the
                // epoch (it advances it before it writes), so a drained wake
                // always shows in the epoch.
                eventfd.drain()?;
                if event.epoch() != epoch {
                    return Ok(());
                }
                eventfd.poll_until(deadline)
            }
            Self::Futex => futex_wait(event, epoch, timeout),
        }
    }
}

impl From<EventFd> for Wakeup {
    fn from(eventfd: EventFd) -> Self {
        Self::EventFd(eventfd)
    }
}
