//! The blocking methods of a ring's sides in a Linux process: a pop that
//! sleeps through a [`Wakeup`], and pushes that wake a sleeping consumer.

use core::fmt;
use core::time::Duration;

use super::{WaitError, Wakeup};
use crate::linux::SysError;
use crate::linux::poll::deadline_after;
use crate::spsc::{BlockingError, Consumer, Producer, PushError};
use crate::{Corrupted, Pod};

/// How long a blocking pop retries before it sleeps.
///
/// Each spin is one [`Consumer::try_pop`] and a spin-loop hint: about 25 ns on
/// the reference machine (AMD EPYC, see `BASELINES.md`), where a blocking
/// wake-up takes about 5 us one way. Spinning for about as long as a sleep and
/// wake cost is the classic spin-then-block rule: if the element comes during
/// the spin, the wake-up latency is saved; if not, the spin wasted at most what
/// the sleep costs anyway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SpinThenBlock {
    /// Pops to retry after the first look finds the ring empty, before
    /// sleeping; 0 sleeps at once.
    ///
    /// Keep it low when threads outnumber cores: a spinning consumer may be
    /// holding the core its producer needs.
    pub spins: u32,
}

impl SpinThenBlock {
    /// The default spin budget: 200 spins, about 5 us on the reference
    /// machine, the cost of a sleep and wake.
    pub const DEFAULT_SPINS: u32 = 200;

    /// Retries `spins` times, then sleeps.
    pub const fn new(spins: u32) -> Self {
        Self { spins }
    }
}

impl Default for SpinThenBlock {
    /// [`DEFAULT_SPINS`](Self::DEFAULT_SPINS) spins.
    fn default() -> Self {
        Self::new(Self::DEFAULT_SPINS)
    }
}

/// Blocking pops, for a ring's consumer in a Linux process.
impl<T: Pod, K> Consumer<'_, T, K> {
    /// Pops the oldest element, waiting for one if the ring is empty: retries
    /// `strategy.spins` times, then sleeps through `wakeup` until the producer
    /// wakes it (see [`Consumer::pop_or_sleep`] and [`Wakeup::sleep`]:
    /// [poll(2)](https://man7.org/linux/man-pages/man2/poll.2.html) on an eventfd, [futex(2)](https://man7.org/linux/man-pages/man2/futex.2.html)).
    ///
    /// `timeout` `None` waits for ever (as does one too long to represent).
    /// The producer must wake through the same kind of [`Wakeup`], e.g. with
    /// [`Producer::push_notify`].
    ///
    /// # Errors
    /// [`BlockingError::Sleep`] with [`WaitError::TimedOut`] once the
    /// timeout has passed with the ring still empty, or with
    /// [`WaitError::Sys`] if sleeping failed; [`BlockingError::Corrupted`]
    /// if the producer's counter claims more elements than slots.
    #[doc(alias("poll", "futex"))]
    pub fn pop_blocking(
        &mut self,
        wakeup: &Wakeup,
        strategy: SpinThenBlock,
        timeout: Option<Duration>,
    ) -> Result<T, BlockingError<WaitError>> {
        let deadline = deadline_after(timeout);
        self.pop_or_sleep(strategy.spins, |event, epoch| {
            wakeup.sleep(event, epoch, deadline)
        })
    }
}

/// Pushes that wake a sleeping consumer, for a ring's producer in a Linux
/// process.
impl<T: Pod, K> Producer<'_, T, K> {
    /// Pushes `value`, then wakes the consumer through `wakeup` if it is
    /// asleep ([`Producer::wake_needed`]; [`Wakeup::wake`]:
    /// [write(2)](https://man7.org/linux/man-pages/man2/write.2.html) to an eventfd, [futex(2)](https://man7.org/linux/man-pages/man2/futex.2.html)): no
    /// system call while it is awake.
    ///
    /// # Errors
    /// [`PushNotifyError::Push`]: nothing was pushed, and the [`PushError`]
    /// hands the value back. [`PushNotifyError::Wake`]: the value *was*
    /// pushed, but waking the consumer failed, and it may stay asleep until
    /// its timeout or the next wake: retry with `wakeup.wake(producer.event())`.
    #[doc(alias("write", "futex"))]
    #[inline]
    pub fn push_notify(
        &mut self,
        value: T,
        wakeup: &Wakeup,
    ) -> Result<(), PushNotifyError<PushError<T>>> {
        self.try_push(value).map_err(PushNotifyError::Push)?;
        if self.wake_needed() {
            wakeup
                .wake(self.peer_event())
                .map_err(|error| PushNotifyError::Wake { pushed: 1, error })?;
        }
        Ok(())
    }

    /// Pushes as many of `items` as fit ([`Producer::push_slice`]), then wakes
    /// the consumer if it is asleep ([`Wakeup::wake`]): one check, and at
    /// most one wake, per batch. Returns how many were pushed (0 if the ring is full, in which
    /// case there is no check).
    ///
    /// # Errors
    /// [`PushNotifyError::Push`] with [`Corrupted`]: nothing was pushed, as
    /// for [`Producer::push_slice`]. [`PushNotifyError::Wake`]: the items were
    /// pushed, but the consumer may stay asleep, as for
    /// [`push_notify`](Self::push_notify).
    #[doc(alias("write", "futex"))]
    pub fn push_slice_notify(
        &mut self,
        items: &[T],
        wakeup: &Wakeup,
    ) -> Result<usize, PushNotifyError<Corrupted>> {
        let pushed = self.push_slice(items).map_err(PushNotifyError::Push)?;
        if pushed > 0 && self.wake_needed() {
            wakeup
                .wake(self.peer_event())
                .map_err(|error| PushNotifyError::Wake { pushed, error })?;
        }
        Ok(pushed)
    }
}

/// Why a push that wakes the consumer ([`Producer::push_notify`],
/// [`Producer::push_slice_notify`]) failed: the push, or the wake after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushNotifyError<E> {
    /// Nothing was pushed: the push's error, which for
    /// [`push_notify`](Producer::push_notify) hands the value back
    /// (transparent: prints, and has the source of, `E`).
    Push(E),
    /// `pushed` elements were pushed, but waking the consumer failed
    /// (contextual: the source is the failed call).
    Wake {
        /// How many elements were pushed.
        pushed: usize,
        /// The failed wake.
        error: SysError,
    },
}

impl<E: fmt::Display> fmt::Display for PushNotifyError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Push(err) => fmt::Display::fmt(err, f),
            Self::Wake { pushed, .. } => {
                write!(f, "pushed {pushed}, but waking the consumer failed")
            }
        }
    }
}

impl<E: core::error::Error> core::error::Error for PushNotifyError<E> {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Push(err) => err.source(),
            Self::Wake { error, .. } => Some(error),
        }
    }
}
