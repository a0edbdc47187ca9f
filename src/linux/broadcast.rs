//! Wake-ups for the [broadcast ring](crate::broadcast): a publish that wakes
//! sleeping readers, a receive that sleeps, and a receive that stops when the
//! writer is gone.
//!
//! A reader with nothing to read announces itself on the ring's doorbell and
//! sleeps; the writer, after publishing, asks
//! [`Writer::wake_needed`] and makes a system call only if a reader
//! announced. [`Writer::publish_notify`] and [`Reader::recv_blocking`] do both
//! halves.
//!
//! # Futex only
//! Every sleeping reader, in every process, sleeps in `futex_wait` on one
//! word, the doorbell's epoch, and one `futex(FUTEX_WAKE)` wakes them all: the
//! writer makes one system call however many readers sleep, and none while
//! they are awake. An eventfd does not fit one writer and many readers: a
//! wake is a count that the first reader to read it takes from the others,
//! and one eventfd per reader would make the writer know its readers. So
//! these receives take no [`Wakeup`](super::wake::Wakeup): the futex is the
//! only way, and an event loop cannot wait on it (a reader driven by `epoll`
//! polls the ring on its own timer instead).
//!
//! ```
//! use core::time::Duration;
//! use std::thread;
//!
//! use ipc_primitives::broadcast::{Broadcast, Start};
//! use ipc_primitives::linux::shm::Segment;
//! use ipc_primitives::linux::wake::SpinThenBlock;
//!
//! let len = Broadcast::<u64>::required_size(64).ok_or("ring too large")?;
//! let segment = Segment::memfd("ticks", len)?;
//! let mut writer = Broadcast::<u64>::create(segment.region()?, 64)?.into_writer();
//! let readers = [writer.reader(Start::Next), writer.reader(Start::Next)];
//!
//! thread::scope(|s| {
//!     for mut reader in readers {
//!         s.spawn(move || {
//!             let timeout = Some(Duration::from_secs(10));
//!             for tick in 0..32 {
//!                 let got = reader.recv_blocking(SpinThenBlock::default(), timeout);
//!                 assert_eq!(got, Ok(tick));
//!             }
//!         });
//!     }
//!     // 32 messages in 64 slots: no reader can be lapped.
//!     for tick in 0..32 {
//!         writer.publish_notify(&tick).expect("futex wake");
//!     }
//! });
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Knowing the writer is gone
//! A reader of a named segment can ask whether the segment's creator still
//! holds it ([`Segment::creator_alive`]): that is the writer, if the writer
//! created it. [`Reader::recv_blocking_watching`] asks every
//! [`LIVENESS_CHECK`] while it sleeps and stops with
//! `Sleep(`[`WaitError::PeerGone`]`)` once the creator is gone and every
//! message it published has been received. A segment that cannot tell
//! ([`Liveness::Unknown`]: one mapped from a received fd) never reports the
//! writer gone; its socket is the liveness signal.
//!
//! # Trust
//! A peer with write access can wake the readers as often as it likes (by
//! changing the epoch) or never; readers that must not depend on it pass a
//! timeout, which bounds every wait here. A reader with write access can
//! announce itself without sleeping, costing the writer one `futex` call per
//! notifying publish.

use core::time::Duration;
use std::time::Instant;

use super::SysError;
#[cfg(doc)]
use super::shm::Liveness;
use super::shm::Segment;
use super::wake::wakeup::Channel;
use super::wake::watch::{Peer, Watch};
use super::wake::{SpinThenBlock, WaitError, futex_wake};
use crate::Pod;
use crate::broadcast::{BlockingError, Reader, RecvError, Writer};
use crate::event::Event;

/// How often [`Reader::recv_blocking_watching`] asks, while it sleeps,
/// whether the writer is alive.
pub use super::wake::LIVENESS_CHECK;

/// Publishes that wake sleeping readers, for a broadcast writer in a Linux
/// process.
impl<T: Pod, K> Writer<'_, T, K> {
    /// Publishes `value`, then wakes every sleeping reader if one announced
    /// itself ([`Writer::wake_needed`]): no system call while readers are
    /// awake.
    ///
    /// # Errors
    /// The `futex(FUTEX_WAKE)` call failed. The message *was* published, but
    /// sleeping readers may stay asleep until their timeout or the next wake:
    /// retry with [`notify`](Self::notify).
    #[doc(alias("futex", "FUTEX_WAKE"))]
    #[inline]
    pub fn publish_notify(&mut self, value: &T) -> Result<(), SysError> {
        self.publish(value);
        self.notify()
    }

    /// Publishes each of `values` in order, then wakes every sleeping reader
    /// if one announced itself: one check, and at most one wake, per batch.
    ///
    /// # Errors
    /// As for [`publish_notify`](Self::publish_notify): every message was
    /// published.
    #[doc(alias("futex", "FUTEX_WAKE"))]
    pub fn publish_slice_notify(&mut self, values: &[T]) -> Result<(), SysError> {
        self.publish_slice(values);
        if values.is_empty() {
            return Ok(());
        }
        self.notify()
    }

    /// Wakes every sleeping reader if one announced itself:
    /// `futex(FUTEX_WAKE)` on the doorbell's epoch, only if
    /// [`Writer::wake_needed`] says so.
    ///
    /// # Errors
    /// The `futex` call failed.
    #[doc(alias("futex", "FUTEX_WAKE"))]
    pub fn notify(&self) -> Result<(), SysError> {
        if self.wake_needed() {
            futex_wake(self.doorbell())?;
        }
        Ok(())
    }
}

/// Blocking receives, for a broadcast reader in a Linux process.
impl<T: Pod, K> Reader<'_, T, K> {
    /// Receives the next message, waiting for one: retries
    /// `strategy.spins` times, then sleeps on the doorbell's futex until the
    /// writer wakes it (see [`Reader::recv_or_sleep`]).
    ///
    /// `timeout` `None` waits for ever (as does one too long to represent).
    /// The writer must wake readers, e.g. with
    /// [`Writer::publish_notify`].
    ///
    /// # Errors
    /// `Sleep(`[`WaitError::TimedOut`]`)` once `timeout` has passed, and
    /// `Sleep(`[`WaitError::Sys`]`)` if `futex` failed;
    /// [`BlockingError::Lagged`], [`BlockingError::Corrupted`] and
    /// [`BlockingError::ReadOnly`] as for [`Reader::recv_or_sleep`].
    #[doc(alias("futex", "FUTEX_WAIT"))]
    pub fn recv_blocking(
        &mut self,
        strategy: SpinThenBlock,
        timeout: Option<Duration>,
    ) -> Result<T, BlockingError<WaitError>> {
        let deadline = deadline(timeout);
        self.recv_or_sleep(strategy.spins, |event, epoch| sleep(event, epoch, deadline))
    }

    /// [`recv_blocking`](Self::recv_blocking), which also stops once the
    /// writer is gone: while asleep it asks `segment` (the segment this
    /// reader's ring lies in, opened by name) every [`LIVENESS_CHECK`]
    /// whether its creator still holds it.
    ///
    /// The messages the writer published before it went are received first;
    /// only then does this report it gone.
    ///
    /// # Errors
    /// `Sleep(`[`WaitError::PeerGone`]`)` once `segment`'s creator is gone
    /// ([`Liveness::Gone`]) and nothing is left to receive; otherwise as for
    /// [`recv_blocking`](Self::recv_blocking).
    #[doc(alias("futex", "FUTEX_WAIT", "F_OFD_GETLK"))]
    pub fn recv_blocking_watching(
        &mut self,
        segment: &Segment,
        strategy: SpinThenBlock,
        timeout: Option<Duration>,
    ) -> Result<T, BlockingError<WaitError>> {
        let deadline = deadline(timeout);
        let mut watch = Watch::new(Peer::Creator(segment));
        let received = self.recv_or_sleep(strategy.spins, |event, epoch| {
            watch.sleep(Channel::Futex, event, epoch, deadline)
        });
        match received {
            // Gone for good: whatever it published before it went is all
            // there will be, and the ring was empty when it was found gone,
            // unless a last message landed since the look before the sleep.
            Err(BlockingError::Sleep(WaitError::PeerGone)) => match self.try_recv() {
                Ok(value) => Ok(value),
                Err(RecvError::Empty) => Err(BlockingError::Sleep(WaitError::PeerGone)),
                Err(RecvError::Lagged { missed }) => Err(BlockingError::Lagged { missed }),
                Err(RecvError::Corrupted) => Err(BlockingError::Corrupted),
            },
            other => other,
        }
    }
}

/// `now + timeout`, or `None` for ever (also when that is not representable).
fn deadline(timeout: Option<Duration>) -> Option<Instant> {
    timeout.and_then(|timeout| Instant::now().checked_add(timeout))
}

/// Sleeps on the doorbell's futex while its epoch is `epoch`, until
/// `deadline` (see [`Wakeup::sleep`](super::wake::Wakeup::sleep)).
fn sleep(event: &Event, epoch: u32, deadline: Option<Instant>) -> Result<(), WaitError> {
    Channel::Futex.sleep(event, epoch, deadline)
}

#[cfg(test)]
mod tests;
