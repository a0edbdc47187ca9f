//! The producing side of a record ring.

use core::{cell::Cell, fmt, marker::PhantomData};

use super::{ReserveError, Ring, WORD};
use crate::Corrupted;
use crate::event::Event;
use crate::payload;
use crate::sync::Ordering;

/// Writes records into a ring. One per ring; `Send` but not `Sync` or
/// `Clone`.
///
/// Aligned to its own 128-byte line, as the SPSC ring's
/// [`Producer`](crate::spsc::Producer) is.
#[repr(align(128))]
pub struct Producer<'a, K = ()> {
    ring: Ring<'a>,
    /// Where the consumer sleeps (the ring's `ready`, or a lane set's
    /// doorbell).
    ready: &'a Event,
    /// Next word to write; the authoritative copy of the shared `head`.
    head: u32,
    /// The consumer's `tail` when last read and found valid: in
    /// `head - capacity ..= head`, at or behind the real one.
    cached_tail: u32,
    /// Keeps the ring's memory alive.
    keeper: K,
    _not_sync: PhantomData<Cell<()>>,
}

impl<K> fmt::Debug for Producer<'_, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Producer")
            .field("head", &self.head)
            .field("cached_tail", &self.cached_tail)
            .finish_non_exhaustive()
    }
}

/// Where a producer taking over a ring starts: after the records a
/// predecessor that died between sealing and publishing `head` left behind.
/// The consumer may have popped past `head` already (resume at `tail`), and
/// records sealed beyond it are the predecessor's: they are adopted, and
/// `head` published to cover them. At most a ring's worth; a corrupt `head`
/// is left for the first reserve to report.
fn adopt(ring: &Ring<'_>, head: u32, tail: u32) -> u32 {
    let mut start = if ring.published(head, tail) == Ok(0) {
        tail
    } else {
        head
    };
    while ring
        .distance(start, tail)
        .is_ok_and(|used| used < ring.capacity())
    {
        match ring.find(start) {
            Ok(Some(found)) => start = start.wrapping_add(found.release),
            Ok(None) | Err(Corrupted) => break,
        }
    }
    if start != head {
        ring.head.store(start, Ordering::Release);
    }
    start
}

impl<'a, K> Producer<'a, K> {
    pub(crate) fn new(ring: Ring<'a>, ready: &'a Event, keeper: K) -> Self {
        // `Acquire` on its own counter too: a producer taking over from an
        // earlier one (a restarted process, a re-claimed lane) sees the
        // words its predecessor published as written.
        let head = ring.head.load(Ordering::Acquire);
        // Pairs with the consumer's `Release` store of `tail`: `free` writes
        // words on this cached value without loading it again.
        let tail = ring.tail.load(Ordering::Acquire);
        let head = adopt(&ring, head, tail);
        Self {
            ring,
            ready,
            head,
            // A corrupt tail is caught on the first reserve, not trusted here:
            // this one shows the ring full, forcing a re-read.
            cached_tail: if ring.distance(head, tail).is_ok() {
                tail
            } else {
                head.wrapping_sub(ring.capacity())
            },
            keeper,
            _not_sync: PhantomData,
        }
    }

    /// Free words, re-reading the consumer's counter only if the cached one
    /// shows fewer than `want`.
    #[inline(always)]
    fn free(&mut self, want: u32) -> Result<u32, Corrupted> {
        let cap = self.ring.capacity();
        let free = cap - self.head.wrapping_sub(self.cached_tail);
        if free >= want {
            return Ok(free);
        }
        // Pairs with the consumer's `Release` store of `tail`: its copies
        // out of the words it released are done before this side rewrites
        // them.
        let tail = self.ring.tail.load(Ordering::Acquire);
        let used = self.ring.distance(self.head, tail)?;
        self.cached_tail = tail;
        Ok(cap - used)
    }

    /// Reserves room for a record of up to `len` bytes, to write in place;
    /// nothing is visible to the consumer until [`Grant::commit`]. Dropping
    /// the grant abandons it. One grant at a time (it borrows the producer).
    ///
    /// Takes `1 + ceil(len / 8)` words, plus padding to the end of the ring
    /// when the record would straddle it, and needs one word more free: the
    /// next record's header, which the commit marks as not yet published.
    ///
    /// # Errors
    /// [`ReserveError::TooLarge`] if `len` exceeds
    /// [`max_record`](Self::max_record) (it never fits);
    /// [`ReserveError::Full`] if the consumer has not freed enough room yet;
    /// [`ReserveError::Corrupted`] if the consumer's counter is impossible.
    #[inline(always)]
    pub fn reserve(&mut self, len: usize) -> Result<Grant<'_, 'a, K>, ReserveError> {
        match self.room(len)? {
            Some(pad) => Ok(Grant {
                producer: self,
                pad,
                len,
            }),
            None => {
                self.ring.count_full();
                Err(ReserveError::Full)
            }
        }
    }

    /// The padding a record of `len` bytes needs before it if it fits now,
    /// `None` if the ring is too full; counts nothing (a blocking push asks
    /// again and again while it waits).
    #[inline(always)]
    pub(crate) fn room(&mut self, len: usize) -> Result<Option<u32>, ReserveError> {
        let max = self.ring.max_record();
        if len > max {
            return Err(ReserveError::TooLarge { len, max });
        }
        // At most half the ring: the word counts fit `u32`.
        let words = 1 + len.div_ceil(WORD) as u32;
        let to_end = self.ring.words_to_end(self.head);
        let pad = if words > to_end { to_end } else { 0 };
        // The word after the record gets the marker: it must not be the
        // header at the consumer's `tail`.
        let need = pad + words + 1;
        Ok((self.free(need)? >= need).then_some(pad))
    }

    /// Reserves that found the ring full since it was created (wrapping): a
    /// counter for operators, kept in shared memory where a third process
    /// can read it.
    pub fn full_count(&self) -> u32 {
        self.ring.full_count()
    }

    /// The ring's shared counters ([`Counters`](super::Counters)).
    pub fn counters(&self) -> super::Counters {
        self.ring.counters(self.ready)
    }

    /// Sends `record`: [`reserve`](Self::reserve), copy, commit.
    ///
    /// # Errors
    /// As for [`reserve`](Self::reserve); nothing was sent.
    #[inline(always)]
    pub fn push(&mut self, record: &[u8]) -> Result<(), ReserveError> {
        let mut grant = self.reserve(record.len())?;
        grant.fill(record);
        grant.commit(record.len());
        Ok(())
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

    /// Whether the consumer has announced it is going to sleep, after a
    /// commit: if so the caller must wake it (see
    /// [`spsc::Producer::wake_needed`](crate::spsc::Producer::wake_needed);
    /// on Linux `push_notify` does both). The announcement is consumed, so
    /// each sleep costs one wake.
    #[inline(always)]
    #[must_use = "a true result consumed the announcement: the consumer sleeps until woken"]
    pub fn wake_needed(&self) -> bool {
        self.ready.needs_wake()
    }

    /// The event the consumer sleeps on.
    pub fn event(&self) -> &Event {
        self.ready
    }

    /// What keeps the ring's memory alive: `()` for borrowed memory, the
    /// owner (e.g. a shared-memory segment) for owned memory.
    pub fn keeper(&self) -> &K {
        &self.keeper
    }
}

/// Room for one record, reserved by [`Producer::reserve`], written in place
/// and published by [`commit`](Self::commit); dropping it abandons it.
///
/// Writes go to shared memory at once, as relaxed atomic word stores
/// (never through a `&mut [u8]` into shared memory), but nothing is visible
/// to the consumer before the commit. Bytes not written keep whatever an
/// earlier record left there.
pub struct Grant<'p, 'a, K = ()> {
    producer: &'p mut Producer<'a, K>,
    /// Padding words before the record (0, or the words to the end).
    pad: u32,
    /// Bytes reserved.
    len: usize,
}

impl<K> fmt::Debug for Grant<'_, '_, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Grant")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

impl<K> Grant<'_, '_, K> {
    /// Bytes reserved: the most [`commit`](Self::commit) may publish.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the grant has room for no byte (a zero-length record).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Word position of the record's header.
    fn start(&self) -> u32 {
        self.producer.head.wrapping_add(self.pad)
    }

    /// Copies `bytes` (the whole record, which the caller checked fits) to
    /// offset 0; the rest of its last word is zeroed.
    fn fill(&mut self, bytes: &[u8]) {
        let ring = &self.producer.ring;
        let payload = ring.payload(self.start(), self.len.div_ceil(WORD) as u32);
        payload::store_padded(payload, bytes);
    }

    /// Writes `bytes` at byte `offset` of the record, leaving the rest as it
    /// is.
    ///
    /// # Errors
    /// [`OutOfBounds`] (and nothing written) if the write reaches past the
    /// bytes reserved.
    pub fn write(&mut self, offset: usize, bytes: &[u8]) -> Result<(), OutOfBounds> {
        match offset.checked_add(bytes.len()) {
            Some(end) if end <= self.len => {
                let ring = &self.producer.ring;
                let payload = ring.payload(self.start(), self.len.div_ceil(WORD) as u32);
                payload::store_bytes(payload, offset, bytes);
                Ok(())
            }
            _ => Err(OutOfBounds {
                offset,
                len: bytes.len(),
                reserved: self.len,
            }),
        }
    }

    /// Publishes the first `len` bytes as a record, with the padding before
    /// it if any: the consumer sees both at once.
    ///
    /// # Panics
    /// If `len` exceeds the bytes reserved ([`len`](Self::len)).
    pub fn commit(self, len: usize) {
        self.commit_returning(len);
    }
}

impl<'p, 'a, K> Grant<'p, 'a, K> {
    /// [`commit`](Self::commit), handing the producer back (to wake the
    /// consumer).
    pub(crate) fn commit_returning(self, len: usize) -> &'p mut Producer<'a, K> {
        assert!(
            len <= self.len,
            "commit of {len} bytes in a grant of {}",
            self.len
        );
        let producer = self.producer;
        let ring = &producer.ring;
        let start = producer.head.wrapping_add(self.pad);
        let next = start.wrapping_add(1 + len.div_ceil(WORD) as u32);
        // In order: the marker where the consumer looks next, then the
        // record's seal (`Release`: the payload and the marker are visible
        // with it), then any padding's seal, last (`Release`: the record is
        // visible with it), so the consumer sees both or neither.
        ring.mark(next);
        // At most the ring's largest record: fits in 31 bits.
        ring.seal(start, len as u32, false);
        if self.pad > 0 {
            // Less than the capacity, at most 2^29 words: fits.
            ring.seal(producer.head, (self.pad - 1) * WORD as u32, true);
        }
        producer.head = next;
        // Pairs with the consumer's `Acquire` load of `head` (told empty from
        // corrupt by it), `len` and a later producer's: the seals above are
        // visible with it.
        ring.head.store(next, Ordering::Release);
        producer
    }
}

/// A write reached past the bytes a grant reserved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct OutOfBounds {
    /// Byte offset of the write.
    pub offset: usize,
    /// Bytes written.
    pub len: usize,
    /// Bytes reserved.
    pub reserved: usize,
}

impl fmt::Display for OutOfBounds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "write of {} bytes at offset {} exceeds the {} bytes reserved",
            self.len, self.offset, self.reserved
        )
    }
}

impl core::error::Error for OutOfBounds {}
