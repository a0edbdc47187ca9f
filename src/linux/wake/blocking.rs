//! The blocking methods of a ring's sides in a Linux process: a pop that
//! sleeps through a [`Wakeup`] until an element comes, a push that sleeps
//! until a slot frees, and pushes and pops that wake the other side.

use core::fmt;
use core::time::Duration;

use super::wakeup::Channel;
use super::watch::{Peer, Watch};
use super::{WaitError, Wakeup};
use crate::event::Event;
use crate::linux::SysError;
use crate::linux::poll::deadline_after;
use crate::linux::shm::Segment;
use crate::spsc::{BlockingError, Consumer, PopError, Producer, PushError};
use crate::{Corrupted, Pod};

/// How long a blocking pop or push retries before it sleeps.
///
/// Each spin is one [`Consumer::try_pop`] (or [`Producer::try_push`]) and a spin-loop hint: about 25 ns on
/// the reference machine (AMD EPYC, see the README's benchmarks), where a blocking
/// wake-up takes about 5 us one way. Spinning for about as long as a sleep and
/// wake cost is the classic spin-then-block rule: if the element comes during
/// the spin, the wake-up latency is saved; if not, the spin wasted at most what
/// the sleep costs anyway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SpinThenBlock {
    /// Pops (pushes) to retry after the first look finds the ring empty
    /// (full), before sleeping; 0 sleeps at once.
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

/// Wakes the side sleeping on `event` through `channel` if `needed` (its
/// announcement was just consumed). If the wake fails, the announcement is
/// put back, so that the next wake-up check (the next pop or push) tries
/// again: a failed wake is never forgotten.
pub(crate) fn wake_if(needed: bool, channel: Channel<'_>, event: &Event) -> Result<(), SysError> {
    if needed && let Err(err) = channel.wake(event) {
        // Announces on the sleeper's behalf: `waiting` again, and the
        // sleeper's epoch already moved, so it sleeps no longer than before.
        let _ = event.announce();
        return Err(err);
    }
    Ok(())
}

/// Blocking pops, for a ring's consumer in a Linux process.
impl<T: Pod, K> Consumer<'_, T, K> {
    /// Pops the oldest element, waiting for one if the ring is empty: retries
    /// `strategy.spins` times, then sleeps through `wakeup` until the producer
    /// wakes it (see [`Consumer::pop_or_sleep`] and [`Wakeup::sleep`]:
    /// [poll(2)](https://man7.org/linux/man-pages/man2/poll.2.html) on an eventfd, [futex(2)](https://man7.org/linux/man-pages/man2/futex.2.html)).
    /// Then wakes the producer if it waits for space
    /// ([`notify`](Self::notify)): a `SeqCst` fence, and a system call only
    /// if the producer sleeps. If that wake fails, the element is returned
    /// all the same and the producer stays announced, so that the next pop
    /// or [`notify`](Self::notify) wakes it (and `notify` reports a failure).
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
        self.pop_watching(wakeup, strategy, timeout, Peer::Unwatched)
    }

    /// [`pop_blocking`](Self::pop_blocking), which also stops once the
    /// producer is gone, for a ring in a named segment the producer created:
    /// while asleep it asks `segment` (this ring's, opened by name) every
    /// [`LIVENESS_CHECK`](super::LIVENESS_CHECK) whether its creator still
    /// holds it ([`Segment::creator_alive`]: `fcntl(F_OFD_GETLK)`).
    ///
    /// The elements the producer pushed before it went are popped first;
    /// only then does this report it gone.
    ///
    /// # Errors
    /// `Sleep(`[`WaitError::PeerGone`]`)` once `segment`'s creator is gone
    /// and the ring is empty; otherwise as for
    /// [`pop_blocking`](Self::pop_blocking).
    #[doc(alias("poll", "futex", "F_OFD_GETLK"))]
    pub fn pop_blocking_watching(
        &mut self,
        wakeup: &Wakeup,
        segment: &Segment,
        strategy: SpinThenBlock,
        timeout: Option<Duration>,
    ) -> Result<T, BlockingError<WaitError>> {
        self.pop_watching(wakeup, strategy, timeout, Peer::Creator(segment))
    }

    /// The blocking pop, its sleeps watching `peer`.
    pub(crate) fn pop_watching(
        &mut self,
        wakeup: &Wakeup,
        strategy: SpinThenBlock,
        timeout: Option<Duration>,
        peer: Peer<'_>,
    ) -> Result<T, BlockingError<WaitError>> {
        let deadline = deadline_after(timeout);
        let mut watch = Watch::new(peer);
        let channel = wakeup.ready();
        let popped = self.pop_or_sleep(strategy.spins, |event, epoch| {
            watch.sleep(channel, event, epoch, deadline)
        });
        let popped = match popped {
            // Gone for good: what it pushed before it went is all there will
            // be, and the ring was empty when it was found gone, unless a
            // last element landed since the look before the sleep.
            // A producer that closed before it went (a handle dropped before
            // its socket) closed the ring: that is what it reports.
            Err(BlockingError::Sleep(WaitError::PeerGone)) => {
                self.try_pop().map_err(|err| match err {
                    PopError::Empty if self.is_abandoned() => BlockingError::Closed,
                    PopError::Empty => BlockingError::Sleep(WaitError::PeerGone),
                    PopError::Corrupted => BlockingError::Corrupted,
                })
            }
            other => other,
        };
        if popped.is_ok() {
            // A failure stays announced for the next pop (see above).
            let _ = self.notify(wakeup);
        }
        popped
    }

    /// Wakes the producer through `wakeup` if it announced it waits for
    /// space ([`Consumer::wake_needed`]; [`Wakeup::wake_producer`]:
    /// [write(2)](https://man7.org/linux/man-pages/man2/write.2.html) to the
    /// `space` eventfd, [futex(2)](https://man7.org/linux/man-pages/man2/futex.2.html)):
    /// a `SeqCst` fence, and a system call only if the producer sleeps. Call
    /// it after popping with [`try_pop`](Consumer::try_pop) or
    /// [`pop_slice`](Consumer::pop_slice) from a ring whose producer may wait
    /// for space ([`Producer::push_blocking`]); once per batch is enough.
    ///
    /// # Errors
    /// The failed `write` or `futex` call. The producer stays announced: the
    /// next `notify` (or blocking pop) tries again.
    #[doc(alias("write", "futex"))]
    pub fn notify(&self, wakeup: &Wakeup) -> Result<(), SysError> {
        wake_if(self.wake_needed(), wakeup.space(), self.peer_event())
    }

    /// Closes the ring's consuming side ([`Consumer::close`]) and wakes the
    /// producer if it sleeps waiting for space ([`Wakeup::wake_producer`]),
    /// so that its [`push_blocking`](Producer::push_blocking) ends with
    /// [`BlockingError::Closed`] at once rather than at its timeout.
    ///
    /// # Errors
    /// The failed `write` or `futex` call; the ring is closed all the same.
    #[doc(alias("write", "futex"))]
    pub fn close_notify(self, wakeup: &Wakeup) -> Result<(), SysError> {
        self.close_and_wake(|event| wakeup.wake_producer(event))
    }
}

/// Pushes that wake a sleeping consumer, and pushes that wait for space, for a
/// ring's producer in a Linux process.
impl<T: Pod, K> Producer<'_, T, K> {
    /// Pushes `value`, waiting for a slot if the ring is full: retries
    /// `strategy.spins` times, then sleeps through `wakeup` until the
    /// consumer frees one and wakes it (see [`Producer::push_or_sleep`] and
    /// [`Wakeup::sleep_producer`]:
    /// [poll(2)](https://man7.org/linux/man-pages/man2/poll.2.html) on the
    /// `space` eventfd, [futex(2)](https://man7.org/linux/man-pages/man2/futex.2.html)).
    /// Then wakes the consumer if it sleeps, as
    /// [`push_notify`](Self::push_notify) does. If that wake fails, the
    /// value stays pushed and the consumer stays announced, so that the next
    /// push wakes it ([`push_notify`](Self::push_notify) reports a failure).
    ///
    /// The consumer must wake this producer after its pops, through the same
    /// kind of [`Wakeup`]: [`Consumer::pop_blocking`] does, and so does
    /// [`Consumer::notify`] after other pops. `timeout` `None` waits for ever
    /// (as does one too long to represent).
    ///
    /// ```
    /// use core::time::Duration;
    /// use std::thread;
    ///
    /// use ipc_primitives::linux::wake::{SpinThenBlock, Wakeup};
    /// use ipc_primitives::spsc::StaticSpsc;
    ///
    /// // 4 slots for 100 values: the producer waits for space again and again.
    /// let mut ring = StaticSpsc::<u64, 4>::new();
    /// let (mut tx, mut rx) = ring.split();
    /// let wakeup = Wakeup::eventfds()?; // or `Wakeup::Futex`
    /// let timeout = Some(Duration::from_secs(10));
    ///
    /// thread::scope(|s| {
    ///     let wakeup = &wakeup;
    ///     s.spawn(move || {
    ///         for seq in 0..100 {
    ///             tx.push_blocking(seq, wakeup, SpinThenBlock::new(0), timeout)
    ///                 .map_err(|(_, err)| err)
    ///                 .expect("push");
    ///         }
    ///     });
    ///     for seq in 0..100 {
    ///         assert_eq!(rx.pop_blocking(wakeup, SpinThenBlock::new(0), timeout)?, seq);
    ///     }
    ///     Ok::<(), Box<dyn std::error::Error>>(())
    /// })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// All hand `value` back, not pushed: [`BlockingError::Sleep`] with
    /// [`WaitError::TimedOut`] once the timeout has passed with the ring
    /// still full, or with [`WaitError::Sys`] if sleeping failed;
    /// [`BlockingError::Corrupted`] if the consumer's counter is ahead of the
    /// producer's.
    #[doc(alias("poll", "futex"))]
    pub fn push_blocking(
        &mut self,
        value: T,
        wakeup: &Wakeup,
        strategy: SpinThenBlock,
        timeout: Option<Duration>,
    ) -> Result<(), (T, BlockingError<WaitError>)> {
        self.push_watching(value, wakeup, strategy, timeout, Peer::Unwatched)
    }

    /// [`push_blocking`](Self::push_blocking), which also stops once the
    /// consumer is gone, for a ring in a named segment the consumer created:
    /// while asleep it asks `segment` (this ring's, opened by name) every
    /// [`LIVENESS_CHECK`](super::LIVENESS_CHECK) whether its creator still
    /// holds it ([`Segment::creator_alive`]: `fcntl(F_OFD_GETLK)`). No one
    /// will ever drain a ring whose consumer is gone.
    ///
    /// # Errors
    /// `Sleep(`[`WaitError::PeerGone`]`)` once `segment`'s creator is gone
    /// and the ring is still full; otherwise as for
    /// [`push_blocking`](Self::push_blocking). All hand `value` back.
    #[doc(alias("poll", "futex", "F_OFD_GETLK"))]
    pub fn push_blocking_watching(
        &mut self,
        value: T,
        wakeup: &Wakeup,
        segment: &Segment,
        strategy: SpinThenBlock,
        timeout: Option<Duration>,
    ) -> Result<(), (T, BlockingError<WaitError>)> {
        self.push_watching(value, wakeup, strategy, timeout, Peer::Creator(segment))
    }

    /// The blocking push, its sleeps watching `peer`.
    pub(crate) fn push_watching(
        &mut self,
        value: T,
        wakeup: &Wakeup,
        strategy: SpinThenBlock,
        timeout: Option<Duration>,
        peer: Peer<'_>,
    ) -> Result<(), (T, BlockingError<WaitError>)> {
        let deadline = deadline_after(timeout);
        let mut watch = Watch::new(peer);
        let channel = wakeup.space();
        self.push_or_sleep(value, strategy.spins, |event, epoch| {
            watch.sleep(channel, event, epoch, deadline)
        })
        .map_err(|(value, err)| match err {
            // A consumer that closed before it went (a handle dropped before
            // its socket) closed the ring: that is what it reports.
            BlockingError::Sleep(WaitError::PeerGone) if self.is_abandoned() => {
                (value, BlockingError::Closed)
            }
            err => (value, err),
        })?;
        // A failure stays announced for the next push (see above).
        let _ = wake_if(self.wake_needed(), wakeup.ready(), self.peer_event());
        Ok(())
    }

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
    #[inline(always)]
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

    /// Closes the ring's producing side ([`Producer::close`]) and wakes the
    /// consumer if it sleeps ([`Wakeup::wake`]), so that its
    /// [`pop_blocking`](Consumer::pop_blocking) ends with
    /// [`BlockingError::Closed`] at once (after popping what is left) rather
    /// than at its timeout.
    ///
    /// # Errors
    /// The failed `write` or `futex` call; the ring is closed all the same.
    #[doc(alias("write", "futex"))]
    pub fn close_notify(self, wakeup: &Wakeup) -> Result<(), SysError> {
        self.close_and_wake(|event| wakeup.wake(event))
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
