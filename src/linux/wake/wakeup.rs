//! The choice between the two wake-ups: how a ring's consumer sleeps and its
//! producer wakes it, and how a producer waiting for space sleeps and its
//! consumer wakes it.

use std::time::Instant;

use super::{EventFd, WaitError, futex_wait, futex_wake};
use crate::event::Event;
use crate::linux::SysError;

/// How a ring's two sides sleep and wake each other. Both sides must use the
/// same kind; see [Eventfd or futex](super#eventfd-or-futex).
///
/// A ring has two directions: the consumer sleeps until an element arrives
/// (on the ring's `ready` event) and the producer wakes it after a push; a
/// producer that waits for space sleeps (on the `space` event) until the
/// consumer wakes it after a pop. [`wake`](Self::wake) and
/// [`sleep`](Self::sleep) are the first direction,
/// [`wake_producer`](Self::wake_producer) and
/// [`sleep_producer`](Self::sleep_producer) the second.
#[derive(Debug)]
#[non_exhaustive]
pub enum Wakeup {
    /// The consumer sleeps in `poll` on the eventfd and the producer wakes
    /// it by writing to it; a producer waiting for space sleeps in
    /// `futex_wait` on the `space` event (it needs no fd). Each side holds
    /// its own [`EventFd`] for the same kernel object (one side received the
    /// fd from the other).
    EventFd(EventFd),
    /// One eventfd per direction, so that either side can wait in an event
    /// loop: the consumer sleeps on `ready` (the producer writes it), the
    /// producer on `space` (the consumer writes it). What the handshake
    /// hands out.
    EventFds {
        /// The consumer's: readable after a push to a ring whose consumer
        /// announced it sleeps.
        ready: EventFd,
        /// The producer's: readable after a pop from a ring whose producer
        /// announced it waits for space.
        space: EventFd,
    },
    /// Sleep in `futex_wait` on the event's epoch; wake with `futex_wake`.
    Futex,
}

/// One direction of a [`Wakeup`]: how one side sleeps and the other wakes it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Channel<'a> {
    /// Sleep in `poll` on the eventfd; wake by writing to it.
    EventFd(&'a EventFd),
    /// Sleep in `futex_wait` on the event's epoch; wake with `futex_wake`.
    Futex,
}

impl Channel<'_> {
    /// Wakes the side sleeping on `event` through this channel.
    pub(crate) fn wake(self, event: &Event) -> Result<(), SysError> {
        match self {
            Self::EventFd(eventfd) => eventfd.signal(),
            Self::Futex => futex_wake(event).map(drop),
        }
    }

    /// Sleeps on `event`, announced at `epoch`, until woken, spuriously, or
    /// `deadline` (see [`Wakeup::sleep`]).
    pub(crate) fn sleep(
        self,
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
                if drained_a_wake(eventfd, event, epoch)? {
                    return Ok(());
                }
                eventfd.poll_until(deadline)
            }
            Self::Futex => futex_wait(event, epoch, timeout),
        }
    }
}

/// Drains what earlier wakes left in `eventfd`, and says whether the epoch of
/// `event` has moved since `epoch` (the drain may have taken this sleep's
/// wake: return at once). Otherwise the caller polls, leaving the wake that
/// ends the poll in the counter for the next sleep to drain. That keeps the
/// `read` off the path from the waker's write to the sleeper's pop: one
/// system call there, as for a blocking `read`. The drain sees a wake only
/// after the waker advanced the epoch (it advances it before it writes), so a
/// drained wake always shows in the epoch.
pub(crate) fn drained_a_wake(
    eventfd: &EventFd,
    event: &Event,
    epoch: u32,
) -> Result<bool, SysError> {
    eventfd.drain()?;
    Ok(event.epoch() != epoch)
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

    /// An eventfd wake-up for each direction ([`Wakeup::EventFds`]) on two
    /// new eventfds: [`EventFd::new`] twice.
    ///
    /// # Errors
    /// As for [`EventFd::new`]; the first is closed if the second fails.
    pub fn eventfds() -> Result<Self, SysError> {
        Ok(Self::EventFds {
            ready: EventFd::new()?,
            space: EventFd::new()?,
        })
    }

    /// The same wake-up through fds of its own ([`EventFd::try_clone`]),
    /// for the other side of a ring in this process.
    ///
    /// # Errors
    /// As for [`EventFd::try_clone`]; those already made are closed.
    #[doc(alias("dup", "fcntl"))]
    pub fn try_clone(&self) -> Result<Self, SysError> {
        Ok(match self {
            Self::EventFd(ready) => Self::EventFd(ready.try_clone()?),
            Self::EventFds { ready, space } => Self::EventFds {
                ready: ready.try_clone()?,
                space: space.try_clone()?,
            },
            Self::Futex => Self::Futex,
        })
    }

    /// The consumer's eventfd, for an epoll set; `None` for a futex, which
    /// has no fd.
    pub fn as_eventfd(&self) -> Option<&EventFd> {
        match self {
            Self::EventFd(fd) | Self::EventFds { ready: fd, .. } => Some(fd),
            Self::Futex => None,
        }
    }

    /// The eventfd a producer waiting for space sleeps on, for an epoll set;
    /// `None` unless there is one ([`Wakeup::EventFds`]).
    pub fn as_space_eventfd(&self) -> Option<&EventFd> {
        match self {
            Self::EventFds { space, .. } => Some(space),
            Self::EventFd(_) | Self::Futex => None,
        }
    }

    /// The direction in which the consumer sleeps and the producer wakes it.
    pub(crate) fn ready(&self) -> Channel<'_> {
        self.as_eventfd().map_or(Channel::Futex, Channel::EventFd)
    }

    /// The direction in which the producer sleeps for space and the consumer
    /// wakes it.
    pub(crate) fn space(&self) -> Channel<'_> {
        self.as_space_eventfd()
            .map_or(Channel::Futex, Channel::EventFd)
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
        self.ready().wake(event)
    }

    /// Wakes the producer waiting for space on `event` (the ring's `space`
    /// event): [`EventFd::signal`] on the `space` eventfd, or [`futex_wake`].
    /// Call it when
    /// [`Consumer::wake_needed`](crate::spsc::Consumer::wake_needed) returns
    /// `true`, or use [`Consumer::notify`](crate::spsc::Consumer::notify).
    ///
    /// # Errors
    /// The failed `write` or `futex` call.
    #[doc(alias("write", "futex", "FUTEX_WAKE"))]
    pub fn wake_producer(&self, event: &Event) -> Result<(), SysError> {
        self.space().wake(event)
    }

    /// Sleeps on `event` until woken, having announced itself at `epoch` (the
    /// `sleep` of [`Consumer::pop_or_sleep`](crate::spsc::Consumer::pop_or_sleep),
    /// which [`Consumer::pop_blocking`](crate::spsc::Consumer::pop_blocking)
    /// uses): `poll` on the consumer's eventfd, or `futex(FUTEX_WAIT)`
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
        self.ready().sleep(event, epoch, deadline)
    }

    /// Sleeps until a slot frees, as [`sleep`](Self::sleep) does for the
    /// consumer (the `sleep` of
    /// [`Producer::push_or_sleep`](crate::spsc::Producer::push_or_sleep),
    /// which [`Producer::push_blocking`](crate::spsc::Producer::push_blocking)
    /// uses): `poll` on the `space` eventfd of [`Wakeup::EventFds`], otherwise
    /// `futex(FUTEX_WAIT)` on `event` (the ring's `space` event).
    ///
    /// # Errors
    /// As for [`sleep`](Self::sleep).
    #[doc(alias("poll", "read", "futex", "FUTEX_WAIT"))]
    pub fn sleep_producer(
        &self,
        event: &Event,
        epoch: u32,
        deadline: Option<Instant>,
    ) -> Result<(), WaitError> {
        self.space().sleep(event, epoch, deadline)
    }
}

impl From<EventFd> for Wakeup {
    fn from(eventfd: EventFd) -> Self {
        Self::EventFd(eventfd)
    }
}
