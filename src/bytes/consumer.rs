//! The consuming side of a record ring.

use core::{cell::Cell, fmt, marker::PhantomData};

use super::{BlockingError, Found, PopError, Ring};
use crate::Corrupted;
use crate::event::Event;
use crate::sync::{self, Ordering};

/// A consumer's position in a ring, kept locally: the ring's own
/// [`Consumer`] holds one, and so does a lane set's consumer for each lane.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Cursor {
    /// Next word to read; the authoritative copy of the shared `tail`.
    tail: u32,
}

impl Cursor {
    /// A cursor at the ring's `tail`.
    pub(crate) fn new(ring: &Ring<'_>) -> Self {
        // `Acquire` on its own counter: a consumer taking over from an
        // earlier one sees the state its predecessor left.
        Self {
            tail: ring.tail.load(Ordering::Acquire),
        }
    }

    /// The next record, validated (see [Trust](super#trust)), without
    /// taking it: the header sealed at `tail`, and only when there is none,
    /// the producer's `head`.
    ///
    /// A seal missing while `head` (`Acquire`, pairing with the producer's
    /// `Release` store after sealing) counts words beyond `tail` can be a
    /// stale read of the header, so it is read once more; missing again, the
    /// producer is corrupt.
    #[inline(always)]
    pub(crate) fn next(&self, ring: &Ring<'_>) -> Result<Found, PopError> {
        if let Some(found) = ring.find(self.tail)? {
            return Ok(found);
        }
        let head = ring.head.load(Ordering::Acquire);
        if ring.published(head, self.tail)? == 0 {
            return Err(PopError::Empty);
        }
        ring.find(self.tail)?.ok_or(PopError::Corrupted)
    }

    /// Whether a record is waiting, validated as [`next`](Self::next) does.
    #[inline(always)]
    pub(crate) fn ready(&self, ring: &Ring<'_>) -> Result<bool, Corrupted> {
        match self.next(ring) {
            Ok(_) => Ok(true),
            Err(PopError::Empty) => Ok(false),
            Err(_) => Err(Corrupted),
        }
    }

    /// Takes `found`, the record [`next`](Self::next) returned: copies it
    /// into `out` (exactly `found.len` bytes) and releases its words.
    #[inline(always)]
    pub(crate) fn take(&mut self, ring: &Ring<'_>, found: Found, out: &mut [u8]) {
        ring.copy_out(found, out);
        self.tail = self.tail.wrapping_add(found.release);
        // Pairs with the producer's `Acquire` load of `tail`: the copy above
        // is done before it rewrites these words.
        ring.tail.store(self.tail, Ordering::Release);
    }

    /// Pops the next record into the slice `dest(len)` returns for its
    /// length `len`, which must be exactly `len` bytes (`None`: too small,
    /// and the record stays). Everything is validated before the copy.
    #[inline(always)]
    pub(crate) fn pop<'b>(
        &mut self,
        ring: &Ring<'_>,
        dest: impl FnOnce(usize) -> Option<&'b mut [u8]>,
    ) -> Result<usize, PopError> {
        let found = self.next(ring)?;
        let out = dest(found.len).ok_or(PopError::TooSmall { needed: found.len })?;
        self.take(ring, found, out);
        Ok(found.len)
    }

    /// Makes the ring empty at this cursor: the marker at `tail`, and `head`
    /// back to `tail`. Only for a ring no producer owns (a freed lane whose
    /// producer left it corrupt), so its next producer starts clean.
    #[cfg(any(loom, target_has_atomic = "32"))]
    pub(crate) fn reset(&mut self, ring: &Ring<'_>) {
        ring.mark(self.tail);
        ring.head.store(self.tail, Ordering::Relaxed);
    }

    /// Words published and not yet consumed (the capacity for a corrupt
    /// `head`), from a fresh load of `head`.
    pub(crate) fn used(&self, ring: &Ring<'_>) -> u32 {
        let head = ring.head.load(Ordering::Acquire);
        ring.published(head, self.tail).unwrap_or(ring.capacity())
    }
}

/// Reads records from a ring. One per ring; `Send` but not `Sync` or
/// `Clone`.
///
/// Every pop copies the record out; nothing hands out a reference into
/// memory the producer can write. Give it a buffer of
/// [`max_record`](Self::max_record) bytes and every record fits.
///
/// Aligned to its own 128-byte line, as the SPSC ring's
/// [`Consumer`](crate::spsc::Consumer) is.
#[repr(align(128))]
pub struct Consumer<'a, K = ()> {
    ring: Ring<'a>,
    ready: &'a Event,
    cursor: Cursor,
    /// Keeps the ring's memory alive.
    keeper: K,
    _not_sync: PhantomData<Cell<()>>,
}

impl<K> fmt::Debug for Consumer<'_, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Consumer")
            .field("tail", &self.cursor.tail)
            .finish_non_exhaustive()
    }
}

impl<'a, K> Consumer<'a, K> {
    pub(crate) fn new(ring: Ring<'a>, ready: &'a Event, keeper: K) -> Self {
        Self {
            ring,
            ready,
            cursor: Cursor::new(&ring),
            keeper,
            _not_sync: PhantomData,
        }
    }

    /// Pops the next record into the start of `buf`; returns its length.
    ///
    /// # Errors
    /// [`PopError::Empty`] if no record is waiting; [`PopError::TooSmall`]
    /// (the record stays) if `buf` is shorter than the record;
    /// [`PopError::Corrupted`] if the producer's counter or the record's
    /// header is impossible.
    #[inline(always)]
    pub fn pop_into(&mut self, buf: &mut [u8]) -> Result<usize, PopError> {
        self.cursor.pop(&self.ring, |len| buf.get_mut(..len))
    }

    /// Pops the next record into a new [`heapless::Vec`] of up to `N` bytes.
    ///
    /// # Errors
    /// As for [`pop_into`](Self::pop_into); `TooSmall` if the record is
    /// longer than `N`.
    pub fn pop_vec<const N: usize>(&mut self) -> Result<heapless::Vec<u8, N>, PopError> {
        let mut record = heapless::Vec::new();
        let out = &mut record;
        self.cursor.pop(&self.ring, move |len| {
            out.resize(len, 0).ok()?;
            Some(out.as_mut_slice())
        })?;
        Ok(record)
    }

    /// Pops the next record, copying it into `buf`, and returns what `f`
    /// makes of the copy (exactly the record's bytes).
    ///
    /// # Errors
    /// As for [`pop_into`](Self::pop_into); `f` is not called.
    pub fn pop_with<R>(
        &mut self,
        buf: &mut [u8],
        f: impl FnOnce(&[u8]) -> R,
    ) -> Result<R, PopError> {
        let len = self.pop_into(buf)?;
        Ok(f(&buf[..len]))
    }

    /// Announces that the consumer is about to sleep and checks the ring once
    /// more (see [`crate::event`]).
    ///
    /// `Ok(Some(epoch))`: still empty; sleep until woken (the producer wakes
    /// the consumer after its next commit). `Ok(None)`: something arrived
    /// meanwhile; pop it (the announcement is withdrawn).
    ///
    /// # Errors
    /// [`Corrupted`] if the producer's counter is impossible (the
    /// announcement is withdrawn).
    pub fn prepare_to_sleep(&mut self) -> Result<Option<u32>, Corrupted> {
        let epoch = self.ready.announce();
        match self.cursor.ready(&self.ring) {
            Ok(false) => Ok(Some(epoch)),
            other => {
                self.ready.withdraw();
                other.map(|_| None)
            }
        }
    }

    /// Waits until a record is ready to pop: looks once, retries `spins`
    /// times, then sleeps through `sleep` (as
    /// [`spsc::Consumer::pop_or_sleep`](crate::spsc::Consumer::pop_or_sleep)
    /// does) until the producer publishes. A record already there is found
    /// without announcing anything.
    ///
    /// `sleep(event, epoch)` returns when woken, when the epoch is no longer
    /// `epoch`, or spuriously (the ring is checked again), and `Err` to give
    /// up. The producer must call [`Producer::wake_needed`](super::Producer::wake_needed)
    /// after each commit and wake the consumer when it says so.
    ///
    /// # Errors
    /// [`BlockingError::Corrupted`] if the producer's counter is impossible;
    /// [`BlockingError::Sleep`] with what `sleep` returned.
    pub fn wait_or_sleep<E>(
        &mut self,
        spins: u32,
        mut sleep: impl FnMut(&Event, u32) -> Result<(), E>,
    ) -> Result<(), BlockingError<E>> {
        for _ in 0..=spins {
            match self.cursor.ready(&self.ring) {
                Ok(false) => sync::spin_loop(),
                Ok(true) => return Ok(()),
                Err(Corrupted) => return Err(BlockingError::Corrupted),
            }
        }
        loop {
            match self.prepare_to_sleep() {
                Err(Corrupted) => return Err(BlockingError::Corrupted),
                Ok(None) => return Ok(()),
                Ok(Some(epoch)) => {
                    if let Err(err) = sleep(self.ready, epoch) {
                        self.ready.withdraw();
                        return Err(BlockingError::Sleep(err));
                    }
                }
            }
        }
    }

    /// Whether no record is waiting (a corrupt producer counts as
    /// something waiting: the next pop reports it).
    pub fn is_empty(&self) -> bool {
        self.cursor.ready(&self.ring) == Ok(false)
    }

    /// Words published and not yet popped, headers and padding included (at
    /// most the capacity, which is also what a corrupt counter shows as).
    pub fn used_words(&self) -> usize {
        self.cursor.used(&self.ring) as usize
    }

    /// The largest record, in bytes: [`max_record`](super::max_record) of
    /// the capacity.
    pub fn max_record(&self) -> usize {
        self.ring.max_record()
    }

    /// Capacity in words.
    pub fn capacity(&self) -> usize {
        self.ring.capacity() as usize
    }

    /// The event the consumer sleeps on.
    pub fn event(&self) -> &Event {
        self.ready
    }

    /// The ring's shared counters ([`Counters`](super::Counters)).
    pub fn counters(&self) -> super::Counters {
        self.ring.counters(self.ready)
    }

    /// What keeps the ring's memory alive.
    pub fn keeper(&self) -> &K {
        &self.keeper
    }
}
