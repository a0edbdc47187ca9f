//! A producer's claim on a lane.

use core::fmt;
use core::ops::{Deref, DerefMut};

use super::{CLOSING, STATE_MASK};
use crate::bytes::Producer;
use crate::event::Event;
use crate::sync::{AtomicU32, Ordering};

/// A claimed lane: a [record ring producer](Producer) (through `Deref`:
/// [`reserve`](Producer::reserve), [`push`](Producer::push),
/// [`wake_needed`](Producer::wake_needed) on the lane set's doorbell, and on
/// Linux `push_notify`), released when dropped.
///
/// Releasing marks the lane `CLOSING`: the consumer delivers what is left in
/// it, then frees it for another claim. A producer that never releases (its
/// process died) leaves its lane claimed until the consumer
/// [reclaims](super::LanesConsumer::reclaim) it.
pub struct LaneProducer<'a, K = ()> {
    producer: Producer<'a, K>,
    /// The lane's state word.
    state: &'a AtomicU32,
    /// The value this claim stored in it: `CLAIMED` (or `LOCKED`) and its
    /// generation.
    claimed: u32,
    lane: usize,
    /// The lane set's doorbell (also the producer's event).
    doorbell: &'a Event,
}

impl<K> fmt::Debug for LaneProducer<'_, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LaneProducer")
            .field("lane", &self.lane)
            .field("generation", &(self.claimed >> 2))
            .field("producer", &self.producer)
            .finish()
    }
}

impl<'a, K> LaneProducer<'a, K> {
    pub(super) fn new(
        producer: Producer<'a, K>,
        doorbell: &'a Event,
        state: &'a AtomicU32,
        claimed: u32,
        lane: usize,
    ) -> Self {
        Self {
            producer,
            state,
            claimed,
            lane,
            doorbell,
        }
    }

    /// The lane's index in the lane set.
    pub fn lane(&self) -> usize {
        self.lane
    }

    /// The lane's generation: how many claims it has had, this one
    /// included (wrapping at 2^30).
    pub fn generation(&self) -> u32 {
        self.claimed >> 2
    }

    /// Releases the lane (as dropping it does) and reports whether the
    /// consumer sleeps and must be woken to free it soon (see
    /// [`Producer::wake_needed`]); otherwise it frees the lane on its next
    /// scan.
    #[must_use = "a true result consumed the announcement: the consumer sleeps until woken"]
    pub fn release(self) -> bool {
        self.release_in_place()
    }

    /// Marks the lane closing, keeping the handle (which must not be used
    /// for records any more), and reports whether the consumer must be
    /// woken.
    pub(crate) fn release_in_place(&self) -> bool {
        self.close();
        self.doorbell.needs_wake()
    }

    /// Swaps the lane from this claim to `CLOSING`. Only the first call
    /// swaps: after it the state is no longer this claim's.
    fn close(&self) {
        let closing = (self.claimed & !STATE_MASK) | CLOSING;
        // `Release`: orders every `head` store of this claim before the
        // consumer's `Acquire` load that sees the lane closing. A failed
        // swap means the lane was released or reclaimed already.
        let _ = self.state.compare_exchange(
            self.claimed,
            closing,
            Ordering::Release,
            Ordering::Relaxed,
        );
    }
}

impl<K> Drop for LaneProducer<'_, K> {
    fn drop(&mut self) {
        self.close();
    }
}

impl<'a, K> Deref for LaneProducer<'a, K> {
    type Target = Producer<'a, K>;

    fn deref(&self) -> &Self::Target {
        &self.producer
    }
}

impl<K> DerefMut for LaneProducer<'_, K> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.producer
    }
}
