//! The consuming side of a ring.

use core::{cell::Cell, fmt, marker::PhantomData};

use super::{BlockingPopError, PopError, Ring};
use crate::Corrupted;
use crate::event::Event;
use crate::payload::{self, Pod};
use crate::sync::{self, Ordering};

/// Pops from a ring. One per ring; `Send` but not `Sync` or `Clone`.
///
/// Pops copy out of the slot; nothing hands out a reference into memory the
/// producer can write.
///
/// Aligned to its own 128-byte line: it writes its index on every operation,
/// and two handles sharing a line (both kept in one struct, say) would bounce
/// that line between the producing and consuming cores.
#[repr(align(128))]
pub struct Consumer<'a, T, K = ()> {
    ring: Ring<'a, T>,
    /// Next counter value to read; the authoritative copy of the shared `tail`.
    tail: u32,
    /// The producer's `head` when last read and found valid: in
    /// `tail ..= tail + capacity`, at or behind the real one.
    cached_head: u32,
    /// Keeps the ring's memory alive (see [`Spsc`](super::Spsc)).
    keeper: K,
    _not_sync: PhantomData<Cell<()>>,
}

impl<T, K> fmt::Debug for Consumer<'_, T, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Consumer")
            .field("tail", &self.tail)
            .field("cached_head", &self.cached_head)
            .finish_non_exhaustive()
    }
}

impl<'a, T: Pod, K> Consumer<'a, T, K> {
    pub(super) fn new(ring: Ring<'a, T>, keeper: K) -> Self {
        // Pairs with the previous consumer's `Release` store of `tail`
        // (`release`): its copies out of the slots happen before this
        // consumer's `Release` stores, so a producer that acquires only those
        // does not overwrite a slot the previous consumer was still copying
        // ("a new side", in the module's `# Protocol`). `cached_head` starts
        // at `tail`, so the first pop loads `head` itself.
        let tail = ring.tail.load(Ordering::Acquire);
        Self {
            ring,
            tail,
            cached_head: tail,
            keeper,
            _not_sync: PhantomData,
        }
    }

    /// Elements ready, re-reading the producer's counter only when the cached
    /// one shows fewer than `want`.
    #[inline]
    fn ready(&mut self, want: u32) -> Result<u32, Corrupted> {
        let ready = self.cached_head.wrapping_sub(self.tail);
        if ready >= want {
            return Ok(ready);
        }
        // Pairs with the producer's `Release` store of `head` (`publish`): the
        // payload stores of every element up to `head` happen before this
        // consumer copies them. Without it, a pop could copy a slot before
        // its payload arrived: a stale or torn element.
        let head = self.ring.head.load(Ordering::Acquire);
        let ready = self.ring.distance(head, self.tail)?;
        self.cached_head = head;
        Ok(ready)
    }

    /// Releases `count` slots to the producer.
    #[inline]
    fn release(&mut self, count: u32) {
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
        if self.ready(1)? == 0 {
            return Err(PopError::Empty);
        }
        let value = payload::load(self.ring.slot(self.tail));
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
        let count = self.ready(want)?.min(want);
        for (offset, item) in (0..count).zip(out.iter_mut()) {
            *item = payload::load(self.ring.slot(self.tail.wrapping_add(offset)));
        }
        if count > 0 {
            self.release(count);
        }
        Ok(count as usize)
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
        match self.ready(1) {
            Ok(0) => Ok(Some(epoch)),
            other => {
                event.withdraw();
                other.map(|_| None)
            }
        }
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
    /// [`BlockingPopError::Sleep`] with what `sleep` returned, the
    /// announcement withdrawn; [`BlockingPopError::Corrupted`] as for
    /// [`try_pop`](Self::try_pop).
    pub fn pop_or_sleep<E>(
        &mut self,
        spins: u32,
        mut sleep: impl FnMut(&Event, u32) -> Result<(), E>,
    ) -> Result<T, BlockingPopError<E>> {
        for _ in 0..=spins {
            match self.try_pop() {
                Err(PopError::Empty) => sync::spin_loop(),
                done => return done.map_err(|_| BlockingPopError::Corrupted),
            }
        }
        loop {
            match self.prepare_to_sleep() {
                Err(Corrupted) => return Err(BlockingPopError::Corrupted),
                Ok(None) => return self.try_pop().map_err(|_| BlockingPopError::Corrupted),
                Ok(Some(epoch)) => {
                    if let Err(err) = sleep(self.event(), epoch) {
                        self.event().withdraw();
                        return Err(BlockingPopError::Sleep(err));
                    }
                }
            }
        }
    }

    /// Elements ready to pop (at most the capacity, which is also what a
    /// corrupt producer counter shows as).
    pub fn len(&self) -> usize {
        // Only counted, never used to reach a slot; `Acquire` as everywhere
        // `head` is read.
        let head = self.ring.head.load(Ordering::Acquire);
        self.ring
            .distance(head, self.tail)
            .unwrap_or(self.ring.capacity()) as usize
    }

    /// Whether nothing is ready to pop.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of slots.
    pub fn capacity(&self) -> u32 {
        self.ring.capacity()
    }
}
