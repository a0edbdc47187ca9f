//! The producing side of a ring.

use core::{cell::Cell, fmt, marker::PhantomData};

use super::{Corrupted, PushError, Ring, stamp};
use crate::payload::{self, Pod};
use crate::sync::{self, Ordering};
use crate::wait::{Event, SleepError};

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
    /// Pushes that found the ring full, wrapping; the authoritative copy of
    /// the shared `full`.
    full: u32,
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

/// Where a new producer starts: after what a producer that died between
/// stamping slots and publishing `head` left behind. The consumer may have
/// popped past `head` already (resume at `tail`), and slots stamped beyond it
/// hold elements that producer wrote: they are adopted, and `head` published
/// to cover them. At most a ring's worth; a corrupt `head` is left for the
/// first push to report.
fn adopt<T: Pod>(ring: &Ring<'_, T>, head: u32, tail: u32) -> u32 {
    let mut start = if ring.published(head, tail) == Ok(0) {
        tail
    } else {
        head
    };
    while ring
        .distance(start, tail)
        .is_ok_and(|used| used < ring.capacity())
        && ring.stamp(start).load(Ordering::Acquire) == stamp(start)
    {
        start = start.wrapping_add(1);
    }
    if start != head {
        ring.head.store(start, Ordering::Release);
    }
    start
}

impl<'a, T: Pod, K> Producer<'a, T, K> {
    pub(super) fn new(ring: Ring<'a, T>, keeper: K) -> Self {
        // Acquire: a producer resuming a ring (a restarted process) sees what
        // the last one published and the consumer released.
        let head = ring.head.load(Ordering::Acquire);
        let tail = ring.tail.load(Ordering::Acquire);
        let head = adopt(&ring, head, tail);
        Self {
            ring,
            head,
            full: ring.full.load(Ordering::Relaxed),
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
        let tail = self.ring.tail.load(Ordering::Acquire);
        let used = self.ring.distance(self.head, tail)?;
        self.cached_tail = tail;
        Ok(cap - used)
    }

    /// Stamps the slot at `position` as holding it. `Release`: pairs with the
    /// consumer's `Acquire` load of the stamp, so whoever sees the stamp sees
    /// the payload stored before it; without it the consumer could copy a
    /// half-written slot.
    #[inline]
    fn stamp(&self, position: u32) {
        self.ring
            .stamp(position)
            .store(stamp(position), Ordering::Release);
    }

    /// Publishes `count` stamped slots in the shared `head`. `Release`: pairs
    /// with the `Acquire` loads of `head` (the consumer's slow path, `len`,
    /// a peer attaching), which then see the stamps stored before it.
    #[inline]
    fn publish(&mut self, count: u32) {
        self.head = self.head.wrapping_add(count);
        self.ring.head.store(self.head, Ordering::Release);
    }

    /// Counts a push that found the ring full.
    #[cold]
    fn count_full(&mut self) {
        self.full = self.full.wrapping_add(1);
        self.ring.full.store(self.full, Ordering::Relaxed);
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
            Ok(0) => {
                self.count_full();
                Err(PushError::Full(value))
            }
            Ok(_) => {
                payload::store(self.ring.payload(self.head), &value);
                self.stamp(self.head);
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
            let position = self.head.wrapping_add(offset);
            payload::store(self.ring.payload(position), item);
            self.stamp(position);
        }
        if count > 0 {
            self.publish(count);
        } else if want > 0 {
            self.count_full();
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
            Ok(0) => {
                self.count_full();
                Err(PushError::Full(()))
            }
            Ok(_) => Ok(Grant { producer: self }),
            Err(Corrupted) => Err(PushError::Corrupted(())),
        }
    }

    /// Whether the consumer has announced it is going to sleep, after a push:
    /// if so the caller must wake it (an eventfd write, a futex wake on
    /// [`peer_event`](Self::peer_event)). The announcement is consumed, so
    /// each sleep costs one wake.
    ///
    /// Costs a `SeqCst` fence and a load from a line the consumer writes only
    /// when it goes to sleep: no system call while the consumer is awake.
    #[inline]
    #[must_use = "a true result consumed the announcement: the consumer sleeps until woken"]
    pub fn wake_needed(&self) -> bool {
        self.ring.ready.needs_wake()
    }

    /// The event the consumer sleeps on: the one to wake it through.
    pub fn peer_event(&self) -> &Event {
        self.ring.ready
    }

    /// The event this producer sleeps on while the ring is full (see
    /// [`prepare_to_sleep`](Self::prepare_to_sleep)).
    pub fn event(&self) -> &Event {
        self.ring.space
    }

    /// Announces that the producer is about to sleep until a slot frees, and
    /// checks the ring once more (see [`crate::wait`]).
    ///
    /// `Ok(Some(epoch))`: still full; sleep until woken (the consumer calls
    /// [`Consumer::wake_needed`](super::Consumer::wake_needed) after it pops).
    /// `Ok(None)`: a slot freed meanwhile; push (the announcement is
    /// withdrawn).
    ///
    /// # Errors
    /// [`Corrupted`] if the consumer's counter is ahead of the producer's; the
    /// announcement is withdrawn.
    pub fn prepare_to_sleep(&mut self) -> Result<Option<u32>, Corrupted> {
        let event = self.ring.space;
        let epoch = event.announce();
        match self.free(1) {
            Ok(0) => Ok(Some(epoch)),
            other => {
                event.withdraw();
                other.map(|_| None)
            }
        }
    }

    /// Pushes `value`, first trying once and retrying `spins` times, then
    /// sleeping through `sleep` until a slot frees: the mirror of
    /// [`Consumer::pop_or_sleep`](super::Consumer::pop_or_sleep).
    ///
    /// # Errors
    /// [`SleepError::Sleep`] with what `sleep` returned, and
    /// [`SleepError::Corrupted`] as for [`try_push`](Self::try_push): both
    /// hand `value` back.
    pub fn push_or_sleep<E>(
        &mut self,
        value: T,
        spins: u32,
        mut sleep: impl FnMut(&Event, u32) -> Result<(), E>,
    ) -> Result<(), (T, SleepError<E>)> {
        let mut value = value;
        for _ in 0..=spins {
            match self.try_push(value) {
                Ok(()) => return Ok(()),
                Err(PushError::Full(back)) => {
                    value = back;
                    sync::spin_loop();
                }
                Err(PushError::Corrupted(back)) => return Err((back, SleepError::Corrupted)),
            }
        }
        loop {
            match self.prepare_to_sleep() {
                Err(Corrupted) => return Err((value, SleepError::Corrupted)),
                Ok(None) => match self.try_push(value) {
                    Ok(()) => return Ok(()),
                    Err(PushError::Full(back)) => value = back,
                    Err(PushError::Corrupted(back)) => {
                        return Err((back, SleepError::Corrupted));
                    }
                },
                Ok(Some(epoch)) => {
                    if let Err(err) = sleep(self.event(), epoch) {
                        self.event().withdraw();
                        return Err((value, SleepError::Sleep(err)));
                    }
                }
            }
        }
    }

    /// Pushes that found the ring full since the ring was created (wrapping):
    /// a counter for operators, kept in shared memory where a third process
    /// can read it.
    pub fn full_count(&self) -> u32 {
        self.full
    }

    /// What keeps the ring's memory alive: `()` for borrowed memory, the
    /// owner (e.g. a shared-memory segment) for owned memory.
    pub fn keeper(&self) -> &K {
        &self.keeper
    }

    /// Elements waiting to be popped (at most the capacity, which is also what
    /// a corrupt consumer counter shows as).
    pub fn len(&self) -> usize {
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
        self.capacity() - self.len()
    }

    /// Number of slots.
    pub fn capacity(&self) -> usize {
        self.ring.capacity() as usize
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
        payload::store(self.producer.ring.payload(self.producer.head), value);
    }

    /// Writes `bytes` at byte `offset` of the value, leaving the rest as it is.
    ///
    /// # Errors
    /// [`OutOfBounds`] if the bytes reach past the element; nothing is written.
    pub fn write_bytes(&mut self, offset: usize, bytes: &[u8]) -> Result<(), OutOfBounds> {
        let size = core::mem::size_of::<T>();
        match offset.checked_add(bytes.len()) {
            Some(end) if end <= size => {
                payload::store_bytes(
                    self.producer.ring.payload(self.producer.head),
                    offset,
                    bytes,
                );
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
        self.producer.stamp(self.producer.head);
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
