//! The writing side of a broadcast ring.

use core::{cell::Cell, fmt, marker::PhantomData};

use super::{Reader, Ring, Start};
use crate::event::Event;
use crate::payload::{self, Pod};
use crate::sync::{Ordering, fence};

/// Publishes messages to every reader. One per ring; `Send` but not `Sync`
/// or `Clone`.
///
/// Never waits and never fails: a reader that does not keep up is lapped and
/// told so, the writer never learns of it.
///
/// Aligned to its own 128-byte line: it writes its position on every
/// publish, and a reader sharing the line would pull it away each time.
#[repr(align(128))]
pub struct Writer<'a, T, K = ()> {
    ring: Ring<'a, T>,
    /// Messages published, wrapping: the authoritative copy of the shared
    /// `published`, never read back from it.
    position: u32,
    /// With counted slots, the last `intent` stored: messages up to it may
    /// be written without storing `intent` again.
    announced: u32,
    /// Keeps the ring's memory alive (see [`Broadcast`](super::Broadcast)).
    keeper: K,
    _not_sync: PhantomData<Cell<()>>,
}

impl<T, K> fmt::Debug for Writer<'_, T, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Writer")
            .field("position", &self.position)
            .finish_non_exhaustive()
    }
}

impl<'a, T: Pod, K> Writer<'a, T, K> {
    pub(super) fn new(ring: Ring<'a, T>, keeper: K) -> Self {
        // Pairs with the last writer's `Release` stores: continue after the
        // last message it published. One it died writing (a busy stamp past
        // `published`) is simply written again.
        let mut position = ring.published.load(Ordering::Acquire);
        // One it finished but died before publishing (its stamp whole, at
        // `published`) is published now: readers follow stamps, so some may
        // have received it, and writing another message at its position
        // would be lost to them. At most one: each message is published
        // before the next is begun. (Counted slots are read only as far as
        // `published` counts.)
        let next = position.wrapping_add(1);
        if ring
            .stamp(position)
            .is_some_and(|stamp| stamp.load(Ordering::Relaxed) == next)
        {
            ring.published.store(next, Ordering::Release);
            position = next;
        }
        Self {
            ring,
            position,
            announced: position,
            keeper,
            _not_sync: PhantomData,
        }
    }

    /// Publishes `value`. Never waits for readers.
    ///
    /// Readers that sleep are not woken: call [`wake_needed`](Self::wake_needed)
    /// after a message or a batch (the Linux adapters' `publish_notify` does).
    #[inline]
    pub fn publish(&mut self, value: &T) {
        let position = self.position;
        let next = position.wrapping_add(1);
        let message = self.ring.message(position);
        match self.ring.stamp(position) {
            Some(stamp) => {
                // Busy. `Release`, so that a reader whose stamp load sees it
                // (then fences) also sees `published` at `position`: a
                // reader looking for an older message of this slot then
                // finds itself lapped, not a corrupt ring.
                stamp.store(!next, Ordering::Release);
                // Orders the busy stamp before the message stores: a reader
                // whose copy saw any of them re-reads the stamp as busy or
                // later (pairs with the reader's `Acquire` fence after its
                // copy). Without it a reader could accept a torn copy.
                fence(Ordering::Release);
                payload::store(message, value);
                // Whole: whoever sees this stamp (then fences) sees the
                // message.
                stamp.store(next, Ordering::Release);
            }
            None => {
                if self.announced == position {
                    // Begun, with the next few. `Release`, so that a reader
                    // whose `intent` load sees it (then fences) also sees
                    // `published` at `position`, and can count the messages
                    // it lost.
                    self.announced = position.wrapping_add(self.ring.announce());
                    self.ring.intent.store(self.announced, Ordering::Release);
                    // Orders `intent` before the message stores of this
                    // message and the next announced: a reader whose copy
                    // saw any of them loads `intent` as this or later (pairs
                    // with the reader's `Acquire` fence after its copy), so
                    // it drops a copy of a message they overwrite.
                    fence(Ordering::Release);
                }
                payload::store(message, value);
            }
        }
        // Published, after every message (not once per batch): with stamps,
        // `published` bounds the slot being rewritten, which is how readers
        // tell a lap; without, readers learn of the message only here.
        self.ring.published.store(next, Ordering::Release);
        self.position = next;
    }

    /// Publishes each of `values` in order. Never waits for readers.
    ///
    /// Check [`wake_needed`](Self::wake_needed) once after the batch.
    pub fn publish_slice(&mut self, values: &[T]) {
        for value in values {
            self.publish(value);
        }
    }

    /// Whether a reader announced it is going to sleep: if so the caller must
    /// wake the sleepers (a futex wake of all on [`doorbell`](Self::doorbell)'s
    /// epoch). The announcement is consumed and the epoch advanced, so one
    /// wake serves every reader asleep.
    ///
    /// Costs a `SeqCst` fence and a load from a line readers write only when
    /// they go to sleep: no system call while they are awake.
    #[inline]
    #[must_use = "a true result consumed the announcement: readers sleep until woken"]
    pub fn wake_needed(&self) -> bool {
        self.ring.doorbell.needs_wake()
    }

    /// The event readers sleep on.
    pub fn doorbell(&self) -> &Event {
        self.ring.doorbell
    }

    /// Messages published so far, wrapping (what readers see as
    /// [`Reader::published`]).
    pub fn published(&self) -> u32 {
        self.position
    }

    /// A reader joining at `start`, which may sleep: for readers in this
    /// process.
    pub fn reader(&self, start: Start) -> Reader<'a, T, K>
    where
        K: Clone,
    {
        Reader::new(self.ring, start, true, self.keeper.clone())
    }

    /// Number of slots.
    pub fn capacity(&self) -> usize {
        self.ring.capacity() as usize
    }

    /// How many of the latest messages the ring always keeps whole (see
    /// [`Reader::retained`]).
    pub fn retained(&self) -> usize {
        self.ring.retained() as usize
    }

    /// What keeps the ring's memory alive: `()` for borrowed memory.
    pub fn keeper(&self) -> &K {
        &self.keeper
    }
}
