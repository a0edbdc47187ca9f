//! The producing side of a ring.

use core::{cell::Cell, fmt, marker::PhantomData};

use super::side::{self, Side};
use super::{BlockingError, ChunkError, PushError, Ring, stamp};
use crate::Corrupted;
use crate::event::Event;
use crate::payload::{self, Pod};
use crate::sync::{self, Ordering, SlotWord};

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
    /// This handle's hold on its side's closed word.
    side: Side<'a>,
    /// Keeps the ring's memory alive (see [`Spsc`](super::Spsc)).
    keeper: K,
    _not_sync: PhantomData<Cell<()>>,
}

/// Dropping the producer closes the ring's producing side (see
/// [`Producer::close`]).
impl<T, K> Drop for Producer<'_, T, K> {
    fn drop(&mut self) {
        self.side.close();
    }
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
        && ring.holds(start)
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
        // Pairs with the consumer's `Release` store of `tail` (`release`):
        // `free` writes slots on this cached value without loading it again,
        // so the consumer's copies out of them must happen before.
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
            side: Side::open(ring.producer_closed),
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

    /// Stamps the slot at `position` as holding it. `Release`: pairs with the
    /// consumer's `Acquire` load of the stamp, so whoever sees the stamp sees
    /// the payload stored before it; without it the consumer could copy a
    /// half-written slot.
    /// Unstamped slots are published by `head` alone.
    #[inline]
    fn stamp(&self, position: u32) {
        if let Some(word) = self.ring.stamp(position) {
            word.store(stamp(position), Ordering::Release);
        }
    }

    /// A writer of the slot `offset` positions after `head` (which the
    /// caller reserved: `free` counted it).
    #[inline]
    fn slot(&mut self, offset: u32) -> SlotWriter<'_, T> {
        SlotWriter {
            payload: self.ring.payload(self.head.wrapping_add(offset)),
            _t: PhantomData,
        }
    }

    /// Publishes `count` stamped slots in the shared `head`. `Release`: pairs
    /// with the `Acquire` loads of `head` (the consumer's slow path, `len`,
    /// a peer attaching), which then see the stamps stored before it.
    #[inline]
    fn publish(&mut self, count: u32) {
        self.head = self.head.wrapping_add(count);
        // Pairs with the consumer's `Acquire` loads of `head` (`ready`): the
        // payload stores before it happen before the consumer's copies.
        // Without it, a pop could copy a slot before its payload arrived.
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
        let pushed = self.push_uncounted(value);
        if matches!(pushed, Err(PushError::Full(_))) {
            self.count_full();
        }
        pushed
    }

    /// [`try_push`](Self::try_push) without counting a full ring: for the
    /// retries of a blocking push, which counts one full ring per wait.
    #[inline]
    fn push_uncounted(&mut self, value: T) -> Result<(), PushError<T>> {
        match self.free(1) {
            Ok(0) => Err(PushError::Full(value)),
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

    /// Pushes all of `items`, in order, publishing them at once, or none if
    /// fewer slots are free.
    ///
    /// # Errors
    /// [`ChunkError::TooFewSlots`] with the free slots if they are fewer than
    /// `items` (counted as a push that found the ring full);
    /// [`ChunkError::Corrupted`] as for [`try_push`](Self::try_push).
    /// Nothing is pushed.
    pub fn push_all(&mut self, items: &[T]) -> Result<(), ChunkError> {
        let mut chunk = self.write_chunk(items.len())?;
        for (index, item) in items.iter().enumerate() {
            chunk.write_at(index, item);
        }
        chunk.commit_all();
        Ok(())
    }

    /// Reserves the next `len` slots for writing in place, all or none:
    /// nothing is visible to the consumer until the chunk is committed, and
    /// dropping it abandons it. rtrb's `write_chunk`, for `Pod` elements.
    ///
    /// ```
    /// use ipc_primitives::spsc::StaticSpsc;
    ///
    /// let mut ring = StaticSpsc::<[u32; 4], 8>::new();
    /// let (mut tx, mut rx) = ring.split();
    /// let mut chunk = tx.write_chunk(3)?;
    /// for (index, value) in [[1; 4], [2; 4], [3; 4]].iter().enumerate() {
    ///     chunk.slot(index).expect("in the chunk").write(value);
    /// }
    /// chunk.commit(2); // the first two; the third slot is not sent
    /// assert_eq!((rx.try_pop(), rx.try_pop()), (Ok([1; 4]), Ok([2; 4])));
    /// assert!(rx.is_empty());
    /// # Ok::<(), ipc_primitives::spsc::ChunkError>(())
    /// ```
    ///
    /// # Errors
    /// [`ChunkError::TooFewSlots`] with the free slots if they are fewer than
    /// `len` (counted as a push that found the ring full);
    /// [`ChunkError::Corrupted`] as for [`try_push`](Self::try_push).
    pub fn write_chunk(&mut self, len: usize) -> Result<WriteChunk<'_, 'a, T, K>, ChunkError> {
        let want = u32::try_from(len).unwrap_or(u32::MAX);
        let free = self.free(want)?;
        if free < want {
            self.count_full();
            return Err(ChunkError::TooFewSlots(free as usize));
        }
        Ok(WriteChunk {
            producer: self,
            len: want,
        })
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
        // `needs_wake` begins with a `SeqCst` fence, ordering the `publish`
        // before the load of the announcement; it pairs with the fence that
        // ends the consumer's `announce` (`Consumer::prepare_to_sleep`).
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
    /// checks the ring once more (see [`crate::event`]).
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
    /// [`Consumer::pop_or_sleep`](super::Consumer::pop_or_sleep). A wait
    /// counts one push that found the ring full
    /// ([`full_count`](Self::full_count)), however many times it retries.
    ///
    /// # Errors
    /// [`BlockingError::Sleep`] with what `sleep` returned;
    /// [`BlockingError::Closed`] if the ring is full and the consumer closed
    /// it ([`is_abandoned`](Self::is_abandoned)); [`BlockingError::Corrupted`]
    /// as for [`try_push`](Self::try_push). Each hands `value` back.
    pub fn push_or_sleep<E>(
        &mut self,
        value: T,
        spins: u32,
        mut sleep: impl FnMut(&Event, u32) -> Result<(), E>,
    ) -> Result<(), (T, BlockingError<E>)> {
        let mut value = value;
        for attempt in 0..=spins {
            let pushed = if attempt == 0 {
                self.try_push(value)
            } else {
                self.push_uncounted(value)
            };
            match pushed {
                Ok(()) => return Ok(()),
                Err(PushError::Full(back)) => {
                    value = back;
                    sync::spin_loop();
                }
                Err(PushError::Corrupted(back)) => return Err((back, BlockingError::Corrupted)),
            }
        }
        loop {
            match self.prepare_to_sleep() {
                Err(Corrupted) => return Err((value, BlockingError::Corrupted)),
                Ok(None) => match self.push_uncounted(value) {
                    Ok(()) => return Ok(()),
                    Err(PushError::Full(back)) => value = back,
                    Err(PushError::Corrupted(back)) => {
                        return Err((back, BlockingError::Corrupted));
                    }
                },
                Ok(Some(epoch)) => {
                    // After the announcement's fence: either the consumer's
                    // `close` sees the announcement, or this sees its flag.
                    if self.is_abandoned() {
                        self.event().withdraw();
                        return Err((value, BlockingError::Closed));
                    }
                    if let Err(err) = sleep(self.event(), epoch) {
                        self.event().withdraw();
                        return Err((value, BlockingError::Sleep(err)));
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

    /// Whether every slot is taken: a push now would find the ring full.
    pub fn is_full(&self) -> bool {
        self.free_slots() == 0
    }

    /// Whether the consumer closed the ring ([`Consumer::close`], or dropped
    /// its handle): nothing pushed now will be popped, unless a new consumer
    /// takes over. rtrb's `is_abandoned`. A consumer whose process died
    /// without closing is not seen here: the Linux adapters watch the socket
    /// or the segment's creator for that.
    ///
    /// [`Consumer::close`]: super::Consumer::close
    pub fn is_abandoned(&self) -> bool {
        // Pairs with the consumer's `Release` store of its flag (`close`).
        side::is_closed(self.ring.consumer_closed)
    }

    /// Closes the ring's producing side: the consumer sees
    /// [`is_abandoned`](super::Consumer::is_abandoned) at once, can still pop
    /// everything pushed before, and its blocking pop ends with
    /// [`BlockingError::Closed`] once it has. Returns whether the consumer sleeps and
    /// must be woken (through [`peer_event`](Self::peer_event)) to learn it.
    /// Dropping the producer closes too, without that answer.
    #[must_use = "a true result: the consumer sleeps until woken"]
    pub fn close(self) -> bool {
        let mut needed = false;
        let _ = self.close_and_wake(|_| {
            needed = true;
            Ok::<(), ()>(())
        });
        needed
    }

    /// [`close`](Self::close), then `wake` the consumer through
    /// [`peer_event`](Self::peer_event) if it sleeps, while this handle still
    /// keeps the ring's memory (an owned handle's keeper goes after): what
    /// the Linux adapters' `close_notify` does. Returns what `wake` returned,
    /// or `Ok` if nothing sleeps.
    ///
    /// # Errors
    /// What `wake` returned.
    pub fn close_and_wake<E>(self, wake: impl FnOnce(&Event) -> Result<(), E>) -> Result<(), E> {
        self.side.close();
        // `needs_wake` begins with a `SeqCst` fence, ordering the flag's
        // store before the load of the announcement; it pairs with the fence
        // that ends the consumer's `announce`, after which it reads the flag.
        if self.ring.ready.needs_wake() {
            wake(self.ring.ready)
        } else {
            Ok(())
        }
    }

    /// The ring's shared counters ([`Counters`](super::Counters)).
    pub fn counters(&self) -> super::Counters {
        self.ring.counters()
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
        self.producer.slot(0).write(value);
    }

    /// Writes `bytes` at byte `offset` of the value, leaving the rest as it is.
    ///
    /// # Errors
    /// [`OutOfBounds`] if the bytes reach past the element; nothing is written.
    pub fn write_bytes(&mut self, offset: usize, bytes: &[u8]) -> Result<(), OutOfBounds> {
        self.producer.slot(0).write_bytes(offset, bytes)
    }

    /// Publishes the slot to the consumer.
    pub fn commit(self) {
        self.producer.stamp(self.producer.head);
        self.producer.publish(1);
    }
}

/// Several reserved slots ([`Producer::write_chunk`]), written in place
/// through [`slot`](Self::slot) and published by [`commit`](Self::commit) or
/// [`commit_all`](Self::commit_all). Dropping it publishes nothing.
///
/// The slots are not cleared: bytes not written keep whatever an earlier
/// message left there.
pub struct WriteChunk<'p, 'a, T, K = ()> {
    producer: &'p mut Producer<'a, T, K>,
    len: u32,
}

impl<T, K> fmt::Debug for WriteChunk<'_, '_, T, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriteChunk")
            .field("index", &self.producer.head)
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

impl<T: Pod, K> WriteChunk<'_, '_, T, K> {
    /// Slots in the chunk.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether the chunk has no slots.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The chunk's slot `index` (from 0), to write; `None` past the chunk.
    pub fn slot(&mut self, index: usize) -> Option<SlotWriter<'_, T>> {
        let index = u32::try_from(index)
            .ok()
            .filter(|&index| index < self.len)?;
        Some(self.producer.slot(index))
    }

    /// Writes `value` into slot `index`, which is in the chunk.
    pub(super) fn write_at(&mut self, index: usize, value: &T) {
        if let Some(mut slot) = self.slot(index) {
            slot.write(value);
        }
    }

    /// Publishes the chunk's first `count` slots (all of them if `count` is
    /// larger) to the consumer, in order, at once.
    pub fn commit(self, count: usize) {
        let count = u32::try_from(count).map_or(self.len, |count| count.min(self.len));
        let head = self.producer.head;
        for offset in 0..count {
            self.producer.stamp(head.wrapping_add(offset));
        }
        if count > 0 {
            self.producer.publish(count);
        }
    }

    /// Publishes every slot of the chunk.
    pub fn commit_all(self) {
        let len = self.len as usize;
        self.commit(len);
    }
}

/// Writes one reserved slot in place: a [`WriteChunk`]'s.
pub struct SlotWriter<'s, T> {
    payload: &'s [SlotWord],
    _t: PhantomData<T>,
}

impl<T> fmt::Debug for SlotWriter<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlotWriter").finish_non_exhaustive()
    }
}

impl<T: Pod> SlotWriter<'_, T> {
    /// Writes a whole value into the slot.
    pub fn write(&mut self, value: &T) {
        payload::store(self.payload, value);
    }

    /// Writes `bytes` at byte `offset` of the value, leaving the rest as it is.
    ///
    /// # Errors
    /// [`OutOfBounds`] if the bytes reach past the element; nothing is written.
    pub fn write_bytes(&mut self, offset: usize, bytes: &[u8]) -> Result<(), OutOfBounds> {
        let size = core::mem::size_of::<T>();
        match offset.checked_add(bytes.len()) {
            Some(end) if end <= size => {
                payload::store_bytes(self.payload, offset, bytes);
                Ok(())
            }
            _ => Err(OutOfBounds {
                offset,
                len: bytes.len(),
                size,
            }),
        }
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
