//! The consuming side of a ring.

use core::{cell::Cell, fmt, marker::PhantomData};

use super::side::{self, Side};
use super::{BlockingError, ChunkError, PopError, Ring};
use crate::Corrupted;
use crate::event::Event;
use crate::payload::{self, Pod};
use crate::sync::{self, Ordering};

/// Pops from a ring. One per ring; `Send` but not `Sync` or `Clone`.
///
/// Pops copy out of the slot; nothing hands out a reference into memory the
/// producer can write. A pop reads the slot's stamp and payload, one cache
/// line for an element of up to 56 bytes, and the producer's `head` only
/// when the stamp says nothing is there; for larger elements, the slot and
/// a cached `head`, reloaded when it counts nothing more.
///
/// Aligned to its own 128-byte line: it writes its index on every operation,
/// and two handles sharing a line (both kept in one struct, say) would bounce
/// that line between the producing and consuming cores.
#[repr(align(128))]
pub struct Consumer<'a, T, K = ()> {
    ring: Ring<'a, T>,
    /// Next counter value to read; the authoritative copy of the shared `tail`.
    tail: u32,
    /// Unstamped rings: the producer's `head` when last read, validated
    /// then; `tail ..= cached_head` are published.
    cached_head: Cell<u32>,
    /// This handle's hold on its side's closed word.
    side: Side<'a>,
    /// Keeps the ring's memory alive (see [`Spsc`](super::Spsc)).
    keeper: K,
    _not_sync: PhantomData<Cell<()>>,
}

/// Dropping the consumer closes the ring's consuming side (see
/// [`Consumer::close`]).
impl<T, K> Drop for Consumer<'_, T, K> {
    fn drop(&mut self) {
        self.side.close();
    }
}

impl<T, K> fmt::Debug for Consumer<'_, T, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Consumer")
            .field("tail", &self.tail)
            .finish_non_exhaustive()
    }
}

impl<'a, T: Pod, K> Consumer<'a, T, K> {
    pub(super) fn new(ring: Ring<'a, T>, keeper: K) -> Self {
        // Acquire: a consumer resuming a ring (a restarted process) sees the
        // slots the last one released as released.
        let tail = ring.tail.load(Ordering::Acquire);
        Self {
            ring,
            tail,
            cached_head: Cell::new(tail),
            side: Side::open(ring.consumer_closed),
            keeper,
            _not_sync: PhantomData,
        }
    }

    /// Whether the element at `tail` is there. Stamped: its stamp, and only
    /// when the stamp says no, the producer's `head`. Unstamped: the cached
    /// `head`, reloaded when it counts nothing more.
    ///
    /// A stamp missing while `head` (`Acquire`, pairing with the producer's
    /// `Release`) counts the element can be a stale read of the stamp, so the
    /// stamp is read once more; missing again, the producer is corrupt.
    #[inline]
    fn ready(&self) -> Result<bool, Corrupted> {
        if !self.ring.stamped() {
            return Ok(self.counted(1)? > 0);
        }
        if self.ring.holds(self.tail) {
            return Ok(true);
        }
        let head = self.ring.head.load(Ordering::Acquire);
        match self.ring.published(head, self.tail)? {
            0 => Ok(false),
            _ if self.ring.holds(self.tail) => Ok(true),
            _ => Err(Corrupted),
        }
    }

    /// Unstamped rings: elements published from `tail` on, by the cached
    /// `head`, which is reloaded (`Acquire`, pairing with the producer's
    /// `Release` store after the payloads: the copies that follow see them)
    /// only when it counts fewer than `want`.
    #[inline]
    fn counted(&self, want: u32) -> Result<u32, Corrupted> {
        // At most a capacity: `cached_head - tail` was checked when cached,
        // and `tail` has moved only over elements it counted.
        let cached = self.cached_head.get().wrapping_sub(self.tail);
        if cached >= want {
            return Ok(cached);
        }
        let head = self.ring.head.load(Ordering::Acquire);
        let published = self.ring.published(head, self.tail)?;
        self.cached_head.set(head);
        Ok(published)
    }

    /// Releases `count` slots to the producer. `Release`: pairs with the
    /// producer's `Acquire` load of `tail`, so it rewrites a slot only after
    /// this side's copy of it; without it the producer could overwrite a slot
    /// still being copied (the loom models catch it).
    #[inline]
    fn release(&mut self, count: u32) {
        if count == 0 {
            return;
        }
        self.tail = self.tail.wrapping_add(count);
        // Pairs with the producer's `Acquire` loads of `tail` (`free`, and
        // `Producer::new`): the copies out of these slots happen before the
        // producer overwrites them. Without it, a push could overwrite an
        // element this consumer is still copying.
        self.ring.tail.store(self.tail, Ordering::Release);
    }

    /// Pops the oldest element.
    ///
    /// # Errors
    /// [`PopError::Empty`] if nothing is waiting; [`PopError::Corrupted`] if
    /// the producer's counter claims more elements than slots.
    #[inline]
    pub fn try_pop(&mut self) -> Result<T, PopError> {
        if !self.ready()? {
            return Err(PopError::Empty);
        }
        let value = payload::load(self.ring.payload(self.tail));
        self.release(1);
        Ok(value)
    }

    /// Pops up to `out.len()` elements into `out`, releasing their slots at once.
    /// Returns how many were popped (0 if the ring is empty).
    ///
    /// # Errors
    /// [`Corrupted`] if the producer's counter claims more elements than
    /// slots; nothing is popped.
    pub fn pop_slice(&mut self, out: &mut [T]) -> Result<usize, Corrupted> {
        let want = u32::try_from(out.len()).unwrap_or(u32::MAX);
        // The elements are there while their stamps say so (at most a ring's
        // worth: the producer stamps no more).
        let count = self.waiting(want)?;
        for (offset, item) in (0..count).zip(out.iter_mut()) {
            *item = payload::load(self.ring.payload(self.tail.wrapping_add(offset)));
        }
        self.release(count);
        Ok(count as usize)
    }

    /// A copy of the oldest element, left in the ring: the next pop returns
    /// it too (unless a hostile producer rewrote its slot meanwhile). A copy,
    /// not a reference: nothing hands out memory the producer can write.
    ///
    /// # Errors
    /// As for [`try_pop`](Self::try_pop).
    pub fn peek(&self) -> Result<T, PopError> {
        if !self.ready()? {
            return Err(PopError::Empty);
        }
        Ok(payload::load(self.ring.payload(self.tail)))
    }

    /// Pops exactly `out.len()` elements into `out`, releasing their slots at
    /// once, or none if fewer are waiting.
    ///
    /// # Errors
    /// [`ChunkError::TooFewSlots`] with how many are waiting, if fewer than
    /// `out.len()`; [`ChunkError::Corrupted`] as for
    /// [`pop_slice`](Self::pop_slice). Nothing is popped.
    pub fn pop_exact(&mut self, out: &mut [T]) -> Result<(), ChunkError> {
        let want = u32::try_from(out.len()).unwrap_or(u32::MAX);
        let waiting = self.waiting(want)?;
        if waiting < want {
            return Err(ChunkError::TooFewSlots(waiting as usize));
        }
        for (offset, item) in (0..want).zip(out.iter_mut()) {
            *item = payload::load(self.ring.payload(self.tail.wrapping_add(offset)));
        }
        self.release(want);
        Ok(())
    }

    /// How many elements are there from `tail` on, counting up to `want`
    /// (and no more than the capacity): their stamps, in order, or the
    /// cached `head`.
    fn waiting(&self, want: u32) -> Result<u32, Corrupted> {
        if want == 0 {
            return Ok(0);
        }
        if !self.ring.stamped() {
            return Ok(self.counted(want)?.min(want));
        }
        if !self.ready()? {
            return Ok(0);
        }
        let limit = want.min(self.ring.capacity());
        let mut count = 1;
        while count < limit && self.ring.holds(self.tail.wrapping_add(count)) {
            count += 1;
        }
        Ok(count)
    }

    /// Announces that the consumer is about to sleep and checks the ring once
    /// more (see [`event`](crate::event)).
    ///
    /// `Ok(Some(epoch))`: still empty; sleep until woken, e.g. in `epoll_wait` on
    /// the ring's eventfd or a futex wait on the event's `epoch`. The producer
    /// will wake the consumer after its next push. `Ok(None)`: elements arrived
    /// meanwhile; pop them (the announcement is withdrawn).
    ///
    /// # Errors
    /// [`Corrupted`] as for [`try_pop`](Self::try_pop); the announcement is
    /// withdrawn.
    pub fn prepare_to_sleep(&mut self) -> Result<Option<u32>, Corrupted> {
        let event = self.ring.ready;
        // `announce` ends with a `SeqCst` fence, ordering the announcement
        // before the re-check of `head` below; it pairs with the fence that
        // begins the producer's `needs_wake` (`Producer::wake_needed`), after
        // its `publish`: either the producer sees the announcement and wakes
        // this consumer, or this re-check sees the element (`crate::event`).
        let epoch = event.announce();
        match self.ready() {
            Ok(false) => Ok(Some(epoch)),
            other => {
                event.withdraw();
                other.map(|_| None)
            }
        }
    }

    /// Whether the producer has announced it is going to sleep until a slot
    /// frees, after a pop: if so the caller must wake it (through
    /// [`peer_event`](Self::peer_event)). The announcement is consumed.
    ///
    /// Costs a `SeqCst` fence: call it after the pops of a batch, and only on
    /// rings whose producer may wait for space
    /// ([`Producer::push_or_sleep`](super::Producer::push_or_sleep)).
    #[inline]
    #[must_use = "a true result consumed the announcement: the producer sleeps until woken"]
    pub fn wake_needed(&self) -> bool {
        self.ring.space.needs_wake()
    }

    /// The event the producer sleeps on while the ring is full: the one to
    /// wake it through.
    pub fn peer_event(&self) -> &Event {
        self.ring.space
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

    /// Pops, first looking once and retrying `spins` times, then sleeping
    /// through `sleep` until an element arrives. An element already there is
    /// popped without announcing anything (no fence).
    ///
    /// `sleep(event, epoch)` should return when woken, when the event's epoch is
    /// no longer `epoch`, or spuriously (all are fine: the ring is checked
    /// again), and `Err` to give up, e.g. on a timeout. The producer must call
    /// [`Producer::wake_needed`](super::Producer::wake_needed) after publishing
    /// and wake the consumer when it says so.
    ///
    /// ```
    /// use ipc_primitives::spsc::StaticSpsc;
    ///
    /// let mut ring = StaticSpsc::<u32, 4>::new();
    /// let (mut tx, mut rx) = ring.split();
    /// std::thread::scope(|s| {
    ///     s.spawn(move || {
    ///         tx.try_push(5).unwrap();
    ///         // A real producer makes a system call here (eventfd, futex).
    ///         let _woke_it = tx.wake_needed();
    ///     });
    ///     // A sleeper that waits for the epoch to move; the Linux adapters
    ///     // sleep in the kernel instead (`Consumer::pop_blocking`).
    ///     let popped = rx.pop_or_sleep(100, |event, epoch| -> Result<(), ()> {
    ///         while event.epoch() == epoch {
    ///             std::thread::yield_now();
    ///         }
    ///         Ok(())
    ///     });
    ///     assert_eq!(popped, Ok(5));
    /// });
    /// ```
    ///
    /// # Errors
    /// [`BlockingError::Sleep`] with what `sleep` returned, the
    /// announcement withdrawn; [`BlockingError::Closed`] once the ring is
    /// empty and the producer closed it ([`is_abandoned`](Self::is_abandoned));
    /// [`BlockingError::Corrupted`] as for [`try_pop`](Self::try_pop).
    pub fn pop_or_sleep<E>(
        &mut self,
        spins: u32,
        mut sleep: impl FnMut(&Event, u32) -> Result<(), E>,
    ) -> Result<T, BlockingError<E>> {
        for _ in 0..=spins {
            match self.try_pop() {
                Err(PopError::Empty) => sync::spin_loop(),
                done => return done.map_err(|_| BlockingError::Corrupted),
            }
        }
        loop {
            match self.prepare_to_sleep() {
                Err(Corrupted) => return Err(BlockingError::Corrupted),
                Ok(None) => return self.try_pop().map_err(|_| BlockingError::Corrupted),
                Ok(Some(epoch)) => {
                    // After the announcement's fence: either the producer's
                    // `close` sees the announcement, or this sees its flag;
                    // and what it published before is visible then.
                    if self.is_abandoned() {
                        self.event().withdraw();
                        return match self.try_pop() {
                            Ok(value) => Ok(value),
                            Err(PopError::Empty) => Err(BlockingError::Closed),
                            Err(_) => Err(BlockingError::Corrupted),
                        };
                    }
                    if let Err(err) = sleep(self.event(), epoch) {
                        self.event().withdraw();
                        return Err(BlockingError::Sleep(err));
                    }
                }
            }
        }
    }

    /// Whether the producer closed the ring ([`Producer::close`], or dropped
    /// its handle): once the ring is empty, nothing more will come, unless a
    /// new producer takes over. rtrb's `is_abandoned`. Elements pushed before
    /// the close are still there to pop: pop until empty after seeing it. A
    /// producer whose process died without closing is not seen here: the
    /// Linux adapters watch the socket or the segment's creator for that.
    ///
    /// [`Producer::close`]: super::Producer::close
    pub fn is_abandoned(&self) -> bool {
        // Pairs with the producer's `Release` store of its flag (`close`):
        // everything it published before is visible after this.
        side::is_closed(self.ring.producer_closed)
    }

    /// Closes the ring's consuming side: the producer sees
    /// [`is_abandoned`](super::Producer::is_abandoned), and its blocking push
    /// into a full ring ends with [`BlockingError::Closed`]. Returns whether
    /// the producer sleeps waiting for space and must be woken (through
    /// [`peer_event`](Self::peer_event)) to learn it. Dropping the consumer
    /// closes too, without that answer.
    #[must_use = "a true result: the producer sleeps until woken"]
    pub fn close(self) -> bool {
        let mut needed = false;
        let _ = self.close_and_wake(|_| {
            needed = true;
            Ok::<(), ()>(())
        });
        needed
    }

    /// [`close`](Self::close), then `wake` the producer through
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
        // that ends the producer's `announce`, after which it reads the flag.
        if self.ring.space.needs_wake() {
            wake(self.ring.space)
        } else {
            Ok(())
        }
    }

    /// Elements ready to pop (at most the capacity, which is also what a
    /// corrupt producer counter shows as).
    pub fn len(&self) -> usize {
        // Only counted, never used to reach a slot; `Acquire` as everywhere
        // `head` is read.
        let head = self.ring.head.load(Ordering::Acquire);
        self.ring
            .published(head, self.tail)
            .unwrap_or(self.ring.capacity()) as usize
    }

    /// Whether nothing is ready to pop.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
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
