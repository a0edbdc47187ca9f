//! The producing side of a ring.

use core::{cell::Cell, fmt, marker::PhantomData};

use super::{PushError, Ring};
use crate::Corrupted;
use crate::event::Event;
use crate::payload::{self, Pod};
use crate::sync::Ordering;

/// Pushes into a ring. One per ring; `Send` but not `Sync` or `Clone`.
///
/// Aligned to its own 128-byte line: it writes its index on every operation,
/// and two handles sharing a line (both kept in one struct, say) would bounce
/// that line between the producing and consuming cores.
#[repr(align(128))]
pub struct Producer<'a, T, K = ()> {
    ring: Ring<'a, T>,
    /// Next counter value to write; the authoritative copy of the shared `head`.
    head: u32,
    /// The consumer's `tail` when last read; at or behind the real one.
    cached_tail: u32,
    /// Keeps the ring's memory alive (see [`Spsc`](super::Spsc)).
    keeper: K,
    _not_sync: PhantomData<Cell<()>>,
}

impl<T, K> fmt::Debug for Producer<'_, T, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Producer")
            .field("head", &self.head)
            .field("cached_tail", &self.cached_tail)
            .finish_non_exhaustive()
    }
}

impl<'a, T: Pod, K> Producer<'a, T, K> {
    pub(super) fn new(ring: Ring<'a, T>, keeper: K) -> Self {
        // Pairs with the previous producer's `Release` store of `head`
        // (`publish`): its payload stores happen before this producer's
        // `Release` stores, so a consumer that acquires only those sees them
        // too ("a new side", in the module's `# Protocol`).
        let head = ring.head.load(Ordering::Acquire);
        // Pairs with the consumer's `Release` store of `tail` (`release`):
        // `free` writes slots on this cached value without loading it again,
        // so the consumer's copies out of them must happen before.
        let tail = ring.tail.load(Ordering::Acquire);
        Self {
            ring,
            head,
            // A corrupt tail is caught on the first push, not trusted here.
            cached_tail: if ring.distance(head, tail).is_ok() {
                tail
            } else {
                head.wrapping_sub(ring.capacity())
            },
            keeper,
            _not_sync: PhantomData,
        }
    }

    /// Free slots, re-reading the consumer's counter only if the cached one
    /// shows fewer than `want`.
    #[inline]
    fn free(&mut self, want: u32) -> Result<u32, Corrupted> {
        let cap = self.ring.capacity();
        let free = cap - self.head.wrapping_sub(self.cached_tail);
        if free >= want {
            return Ok(free);
        }
        // Pairs with the consumer's `Release` store of `tail` (`release`): its
        // copies out of the slots it released happen before this producer
        // overwrites them. Without it, a push could overwrite an element the
        // consumer is still copying.
        let tail = self.ring.tail.load(Ordering::Acquire);
        let used = self.ring.distance(self.head, tail)?;
        self.cached_tail = tail;
        Ok(cap - used)
    }

    /// Publishes everything written up to `head`.
    #[inline]
    fn publish(&mut self, count: u32) {
        self.head = self.head.wrapping_add(count);
        // Pairs with the consumer's `Acquire` loads of `head` (`ready`): the
        // payload stores before it happen before the consumer's copies.
        // Without it, a pop could copy a slot before its payload arrived.
        self.ring.head.store(self.head, Ordering::Release);
    }

    /// Pushes `value`, or hands it back if the ring is full or corrupt.
    ///
    /// # Errors
    /// [`PushError::Full`] if every slot is taken; [`PushError::Corrupted`] if
    /// the consumer's counter is ahead of the producer's. Either hands `value`
    /// back.
    #[inline]
    pub fn try_push(&mut self, value: T) -> Result<(), PushError<T>> {
        match self.free(1) {
            Ok(0) => Err(PushError::Full(value)),
            Ok(_) => {
                payload::store(self.ring.slot(self.head), &value);
                self.publish(1);
                Ok(())
            }
            Err(Corrupted) => Err(PushError::Corrupted(value)),
        }
    }

    /// Pushes as many of `items` as fit, in order, publishing them at once.
    /// Returns how many were pushed (0 if the ring is full).
    ///
    /// # Errors
    /// [`Corrupted`] as for [`try_push`](Self::try_push); nothing is pushed.
    pub fn push_slice(&mut self, items: &[T]) -> Result<usize, Corrupted> {
        let want = u32::try_from(items.len()).unwrap_or(u32::MAX);
        let count = self.free(want)?.min(want);
        for (offset, item) in (0..count).zip(items) {
            payload::store(self.ring.slot(self.head.wrapping_add(offset)), item);
        }
        if count > 0 {
            self.publish(count);
        }
        Ok(count as usize)
    }

    /// Reserves the next slot for writing in place; nothing is visible to the
    /// consumer until [`Grant::commit`]. Dropping the grant abandons it.
    ///
    /// # Errors
    /// As for [`try_push`](Self::try_push).
    pub fn grant(&mut self) -> Result<Grant<'_, 'a, T, K>, PushError<()>> {
        match self.free(1) {
            Ok(0) => Err(PushError::Full(())),
            Ok(_) => Ok(Grant { producer: self }),
            Err(Corrupted) => Err(PushError::Corrupted(())),
        }
    }

    /// Whether the consumer has announced it is going to sleep, after a push:
    /// if so the caller must wake it (an eventfd write, a futex wake on
    /// [`event`](Self::event)). The announcement is consumed, so each sleep
    /// costs one wake.
    ///
    /// Costs a `SeqCst` fence and a load from a line the consumer writes only
    /// when it goes to sleep: no system call while the consumer is awake.
    #[inline]
    #[must_use = "a true result consumed the announcement: the consumer sleeps until woken"]
    pub fn wake_needed(&self) -> bool {
        // `needs_wake` begins with a `SeqCst` fence, ordering the `publish`
        // before the load of the announcement; it pairs with the fence that
        // ends the consumer's `announce` (`Consumer::prepare_to_sleep`).
        self.ring.ready.needs_wake()
    }

    /// The event the consumer sleeps on.
    pub fn event(&self) -> &Event {
        self.ring.ready
    }

    /// What keeps the ring's memory alive: `()` for borrowed memory, the
    /// owner (e.g. a shared-memory segment) for owned memory.
    pub fn keeper(&self) -> &K {
        &self.keeper
    }

    /// Elements waiting to be popped (at most the capacity, which is also what
    /// a corrupt consumer counter shows as).
    pub fn len(&self) -> usize {
        // Only counted, never used to reach a slot; `Acquire` as everywhere
        // `tail` is read.
        let tail = self.ring.tail.load(Ordering::Acquire);
        self.ring
            .distance(self.head, tail)
            .unwrap_or(self.ring.capacity()) as usize
    }

    /// Whether nothing is waiting to be popped.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Slots free for pushing.
    pub fn free_slots(&self) -> usize {
        self.capacity() as usize - self.len()
    }

    /// Number of slots.
    pub fn capacity(&self) -> u32 {
        self.ring.capacity()
    }
}

/// A reserved slot, written in place and published by [`commit`](Self::commit).
///
/// The slot is not cleared: bytes not written keep whatever an earlier message
/// left there.
pub struct Grant<'p, 'a, T, K = ()> {
    producer: &'p mut Producer<'a, T, K>,
}

impl<T, K> fmt::Debug for Grant<'_, '_, T, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Grant")
            .field("index", &self.producer.head)
            .finish_non_exhaustive()
    }
}

impl<T: Pod, K> Grant<'_, '_, T, K> {
    /// Writes a whole value into the slot.
    pub fn write(&mut self, value: &T) {
        payload::store(self.producer.ring.slot(self.producer.head), value);
    }

    /// Writes `bytes` at byte `offset` of the value, leaving the rest as it is.
    ///
    /// # Errors
    /// [`OutOfBounds`] if the bytes reach past the element; nothing is written.
    pub fn write_bytes(&mut self, offset: usize, bytes: &[u8]) -> Result<(), OutOfBounds> {
        let size = core::mem::size_of::<T>();
        match offset.checked_add(bytes.len()) {
            Some(end) if end <= size => {
                payload::store_bytes(self.producer.ring.slot(self.producer.head), offset, bytes);
                Ok(())
            }
            _ => Err(OutOfBounds {
                offset,
                len: bytes.len(),
                size,
            }),
        }
    }

    /// Publishes the slot to the consumer.
    pub fn commit(self) {
        self.producer.publish(1);
    }
}

/// A write reached past the end of the element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct OutOfBounds {
    /// Byte offset of the write.
    pub offset: usize,
    /// Bytes written.
    pub len: usize,
    /// Size of the element.
    pub size: usize,
}

impl fmt::Display for OutOfBounds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "write of {} bytes at offset {} exceeds the {}-byte element",
            self.len, self.offset, self.size
        )
    }
}

impl core::error::Error for OutOfBounds {}
