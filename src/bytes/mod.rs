//! A single-producer single-consumer ring of variable-length records.
//!
//! For data whose length varies, such as log lines: a record costs its own
//! length (a 42-byte record moves 6 payload words and a header word), not a
//! fixed maximum. The producer reserves room for up to `n` bytes, writes them
//! in place and commits (or drops the grant, and nothing was sent); the
//! consumer copies each record out, into a buffer, a [`heapless::Vec`] or a
//! closure's view of a copy, never a reference into shared memory.
//!
//! ```
//! use ipc_primitives::bytes::{PopError, RecordRing};
//! use ipc_primitives::{Line, Region};
//! use zerocopy::IntoBytes;
//!
//! let words = 64; // 512 bytes of records; the largest is 248 bytes
//! let mut mem = vec![Line::ZERO; Line::count_for(RecordRing::required_size(words).unwrap())];
//! let (mut tx, mut rx) = RecordRing::create(Region::new(mem.as_mut_bytes()), words)?.split();
//!
//! tx.push(b"hello")?;
//! let mut grant = tx.reserve(100)?; // in place, up to 100 bytes
//! grant.write(0, b"written ")?;
//! grant.write(8, b"in place")?;
//! grant.commit(16);
//!
//! let mut buf = [0; 248]; // `rx.max_record()` bytes: every record fits
//! assert_eq!(rx.pop_into(&mut buf), Ok(5));
//! assert_eq!(&buf[..5], b"hello");
//! let line = rx.pop_vec::<64>()?;
//! assert_eq!(line.as_slice(), b"written in place");
//! assert_eq!(rx.pop_into(&mut buf), Err(PopError::Empty));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Records
//! Positions count 8-byte *words* and wrap at 2^32. A record is a header word
//! followed by `ceil(len / 8)` payload words. The header's bytes 0..4 hold
//! `len`, the payload's bytes, with bit 31 set for *padding*; bytes 4..8
//! hold the *seal*, `position | 1 << 31`: a header is published when its
//! seal names the position it is at. Zeroes are never a seal. A record
//! never straddles the end of the ring: one that does not fit before the
//! end is preceded by padding that fills the rest of the ring, and starts
//! at word 0; both are published together.
//!
//! The largest payload is [`max_record`] `= (capacity / 2 - 1) * 8` bytes
//! (half the ring, with its header), enforced by [`Producer::reserve`]
//! ([`ReserveError::TooLarge`]). A reserve also needs the word after the
//! record free, for the marker below, so one word of the ring always stays
//! free. With records at most half the ring, padding, a record and the
//! marker fit in an empty ring, so [`ReserveError::Full`] always clears
//! once the consumer catches up.
//!
//! # Protocol
//! The consumer polls the header at its position, beside the payload: a
//! small record crosses in the cache line that holds both, without a load
//! of the producer's counter.
//!
//! | access | ordering | pairs with | without it |
//! |--------|----------|------------|------------|
//! | producer writes the *marker* (a zero header, never a seal) at the word after the record | `Relaxed`, before the seal | the consumer's load of that header, after it acquires this record's seal | payload bytes left there by an earlier lap could read as a sealed header: forged records |
//! | producer seals the record's header | `Release`, after the payload | the consumer's `Acquire` load of the header | the consumer could copy the payload before the producer's stores reach it |
//! | producer seals the padding before a record, after the record's seal | `Release` | the consumer's `Acquire` load of the padding | the consumer could skip the padding and find the record unsealed: `Corrupted` |
//! | producer publishes `head`, after the seals | `Release` | the consumer's `Acquire` load of `head` when it finds no seal | a consumer that finds `head` counting a record could still read its old header and call the ring corrupt |
//! | consumer publishes `tail`, after copying | `Release` | the producer's `Acquire` load of `tail` | the producer could rewrite words the consumer is still copying |
//!
//! - The producer keeps its position `head` locally and a cached copy of the
//!   consumer's `tail`, refreshed only when the cached copy shows too little
//!   room. A grant's payload goes to shared memory at once; nothing is
//!   visible until the commit seals it, so a grant dropped uncommitted was
//!   never visible.
//! - The consumer keeps `tail` locally. When the header at `tail` is not
//!   sealed, it loads `head`: counting nothing beyond `tail`, the ring is
//!   empty; counting words, the header is read once more (the load of
//!   `head` made the seal visible), and still unsealed it is `Corrupted`.
//! - `create` zeroes the data words: a marker in every word.
//! - A producer that died between sealing and publishing `head` leaves
//!   records the consumer may already have popped (it follows seals, not
//!   `head`); a new producer starts after every record sealed in sequence
//!   from `head` and publishes `head` to cover them.
//! - Wake-ups are those of [`crate::event`]: the consumer announces on `ready`
//!   ([`Consumer::prepare_to_sleep`]); the producer checks after publishing
//!   ([`Producer::wake_needed`]). `crate::linux::bytes` adds a blocking pop
//!   and notifying pushes on Linux.
//!
//! # Trust
//! The peer may be another process writing anything at any time. Before
//! copying anything, the consumer checks that a padding is sealed for its
//! position, ends exactly at the end of the ring and is followed by a record
//! sealed for its own; that a record's length is at most [`max_record`] and
//! its words lie before the end; and, when nothing is sealed, that `head`
//! counts at most the capacity beyond `tail` (or up to a ring behind it, a
//! producer that died before publishing). Anything else is [`Corrupted`],
//! which leaves the ring as it is. It reads each header once into a local
//! and copies only within the checked words: never an out-of-bounds read, a
//! huge copy or a panic. A producer that sees `tail` ahead of `head`, or
//! more than the capacity behind, reports [`Corrupted`] too. A hostile peer
//! can make the other side read garbage bytes, never cause undefined
//! behaviour or a hang.
//!
//! # Layout
//! | offset | size         | what                                                       |
//! |--------|--------------|------------------------------------------------------------|
//! | 0      | 128          | [header](crate::layout): kind `Bytes`, element 8 bytes in 8-byte slots, capacity in words |
//! | 128    | 4            | `head`: `u32`, words published (producer)                  |
//! | 132    | 124          | `full`: `u32`, reserves that found the ring full (producer; a counter for operators) |
//! | 256    | 128          | `tail`: `u32`, words consumed (consumer)                   |
//! | 384    | 8            | `ready`: [`Event`] the consumer sleeps on                   |
//! | 392    | 120          | `space`: [`Event`] a producer waiting for room sleeps on (the Linux handshake's blocking push) |
//! | 512    | capacity x 8 | data words: record headers (`len \| padding << 31: u32`, then the seal `position \| 1 << 31: u32`, native-endian) and payload bytes |

mod consumer;
mod producer;

use core::fmt;

pub use consumer::Consumer;
#[cfg(any(loom, target_has_atomic = "32"))]
pub(crate) use consumer::Cursor;
pub use producer::{Grant, OutOfBounds, Producer};

use crate::Corrupted;
use crate::payload;

use crate::event::Event;
use crate::header::Fingerprint;
use crate::layout::{ElementLayout, Kind, LINE};
use crate::region::{Memory, ReadRegion, Region, Structure, required_size as region_size};
use crate::storage::StaticMemory;
use crate::sync::{
    AtomicU32, Ordering, SlotWord, WORD_BYTES, Word, WordInt, const_fn_unless_loom, if_take_flag,
};
use crate::{AttachError, CreateError};

/// The smallest capacity, in words: a record of up to 8 bytes.
pub const MIN_CAPACITY: u32 = 4;
/// The largest capacity, in words (4 GiB of records): the largest record's
/// length, [`max_record`], then fits the header's `u32` length.
pub const MAX_CAPACITY: u32 = 1 << 29;

/// Bytes in a ring word: a record header, or 8 payload bytes.
pub(crate) const WORD: usize = 8;
/// Shim words ([`SlotWord`]) per ring word: 1 on 64-bit targets, 2 elsewhere.
const PER_WORD: usize = WORD / WORD_BYTES;

/// Byte offset of `head`.
const HEAD: usize = 128;
/// Byte offset of `tail`.
const TAIL: usize = 256;
/// Byte offset of the consumer's wake-up event.
const READY: usize = 384;
/// Byte offset of the event a producer waiting for room sleeps on, in the
/// rest of `ready`'s line (both events are written by both sides).
const SPACE: usize = 392;
/// Byte offset of the first data word.
const DATA: usize = 512;

/// The bit of a header's first `u32` that marks padding up to the end of
/// the ring; the other 31 bits hold the length.
const PADDING: u32 = 1 << 31;
/// The bit set in every seal: zeroes, and the marker (a zero header), are
/// never a seal.
const SEALED: u32 = 1 << 31;

/// The seal of a header at `pos`: the position, with [`SEALED`] set.
const fn seal_of(pos: u32) -> u32 {
    pos | SEALED
}

/// The element layout the header records: 8-byte words.
const ELEM: ElementLayout = ElementLayout::of::<[u8; WORD]>();

/// Whether `words` is a capacity a record ring allows: a power of two from
/// [`MIN_CAPACITY`] to [`MAX_CAPACITY`].
pub(crate) const fn capacity_ok(words: u32) -> bool {
    words.is_power_of_two() && words >= MIN_CAPACITY && words <= MAX_CAPACITY
}

/// The largest payload, in bytes, a ring of `words` words takes:
/// `(words / 2 - 1) * 8`, or 0 if `words` is not a valid capacity.
pub const fn max_record(words: u32) -> usize {
    if capacity_ok(words) {
        (words as usize / 2 - 1) * WORD
    } else {
        0
    }
}

/// A record ring's shared words and its local geometry: the ring in a
/// region of its own, or a lane of [`crate::lanes`] at its offsets.
///
/// Geometry is fixed when the view is made and never re-read from shared
/// memory.
pub(crate) struct Ring<'a> {
    /// Words published, wrapping. Written only by the producer (`Release`);
    /// in `tail ..= tail + capacity` unless the producer is corrupt.
    head: &'a AtomicU32,
    /// Reserves that found the ring full, wrapping: a counter for operators.
    /// Written only by the producer.
    full: &'a AtomicU32,
    /// Words consumed, wrapping. Written only by the consumer (`Release`);
    /// in `head - capacity ..= head` unless the consumer is corrupt.
    tail: &'a AtomicU32,
    /// `capacity * PER_WORD` shim words, for payload: copied by the side
    /// the protocol gives them to.
    data: &'a [SlotWord],
    /// The same words as atomics, for record headers, which the consumer
    /// polls while the producer writes them. In real builds these are the
    /// very atomics of `data`; under loom a parallel set (see
    /// [`LoomMemory`](crate::LoomMemory)), so that payload stays
    /// causality-checked.
    headers: &'a [Word],
    /// `capacity - 1`; the capacity is a power of two.
    mask: u32,
}

impl Clone for Ring<'_> {
    fn clone(&self) -> Self {
        *self
    }
}

impl Copy for Ring<'_> {}

// SAFETY: the view holds references to atomics (and, under loom, to cells
// whose accesses loom checks); the protocol gives each data word to one side
// at a time, and a hostile peer's writes are atomic accesses, never data
// races here.
#[cfg(loom)]
unsafe impl Send for Ring<'_> {}

/// What the consumer found at its position: a record, validated.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Found {
    /// Payload bytes.
    pub(crate) len: usize,
    /// Index in `data` of the first payload word.
    first: usize,
    /// Words to release once copied: any padding, the header, the payload.
    release: u32,
}

// The paths a push and a pop take are `#[inline(always)]`, here and in the
// producer and consumer: left to `#[inline]`, LLVM kept `find`, `Cursor::pop`
// and `Producer::push` out of line, and a 64-byte record's round trip between
// two processes took 195 ns against 156 inlined (the bench's `varlen_rtt`,
// 21 rounds each, 2026-11-28), 1.29 times the SPSC ring's against 1.03.
impl<'a> Ring<'a> {
    /// The view of a ring whose `head` and `tail` are the `u32`s at byte
    /// offsets `head` and `tail` of `memory`, and whose `capacity` data words
    /// start at byte offset `data`.
    ///
    /// # Safety
    /// `memory` is aligned; `head` and `tail` are multiples of 4 with 4
    /// bytes each in bounds, and so are the 4 bytes after `head` (`full`); `data` is a multiple of 8 with `capacity * 8`
    /// bytes in bounds; none of these overlap each other or anything else
    /// viewed with another type; `capacity` satisfies [`capacity_ok`].
    pub(crate) unsafe fn new(
        memory: Memory<'a>,
        head: usize,
        tail: usize,
        data: usize,
        capacity: u32,
    ) -> Self {
        // SAFETY: the caller's guarantee, offset by offset.
        unsafe {
            Self {
                head: memory.u32_at(head),
                full: memory.u32_at(head + 4),
                tail: memory.u32_at(tail),
                data: memory.slot_words_at(data, capacity as usize * WORD),
                headers: memory.words_at(data, capacity as usize * WORD),
                mask: capacity - 1,
            }
        }
    }

    /// Capacity in words.
    pub(crate) fn capacity(&self) -> u32 {
        self.mask + 1
    }

    /// The largest payload in bytes: [`max_record`] of the capacity, which
    /// the view was made for and so is valid.
    pub(crate) fn max_record(&self) -> usize {
        (self.capacity() as usize / 2 - 1) * WORD
    }

    /// Resets positions and data to an empty ring: all zeroes, the
    /// [marker](Self::mark) in every word.
    pub(crate) fn init(&self) {
        self.head.store(0, Ordering::Relaxed);
        self.full.store(0, Ordering::Relaxed);
        self.tail.store(0, Ordering::Relaxed);
        for word in self.headers {
            word.store(0, Ordering::Relaxed);
        }
    }

    /// Counts a reserve that found the ring full (producer only).
    #[cold]
    pub(crate) fn count_full(&self) {
        // Relaxed: a counter only this side writes; readers want a figure,
        // not an ordering.
        let full = self.full.load(Ordering::Relaxed);
        self.full.store(full.wrapping_add(1), Ordering::Relaxed);
    }

    /// Reserves that found the ring full, wrapping.
    pub(crate) fn full_count(&self) -> u32 {
        self.full.load(Ordering::Relaxed)
    }

    /// The counters as they are now, with `ready` the event the consumer
    /// sleeps on.
    /// The counters and whether they count a possible number of words: what
    /// [`crate::inspect`] shows of a ring or a lane.
    pub(crate) fn inspect(&self, ready: &Event) -> (Counters, bool) {
        let counters = self.counters(ready);
        let possible = self
            .published(counters.published, counters.consumed)
            .is_ok();
        (counters, possible)
    }

    pub(crate) fn counters(&self, ready: &Event) -> Counters {
        Counters {
            published: self.head.load(Ordering::Relaxed),
            consumed: self.tail.load(Ordering::Relaxed),
            full: self.full_count(),
            wakes: ready.epoch(),
            consumer_asleep: ready.has_sleeper(),
        }
    }

    /// Words between `tail` and `head`, if that is a possible count.
    #[inline(always)]
    fn distance(&self, head: u32, tail: u32) -> Result<u32, Corrupted> {
        let used = head.wrapping_sub(tail);
        if used > self.capacity() {
            Err(Corrupted)
        } else {
            Ok(used)
        }
    }

    /// Words the shared `head` counts beyond `tail`, if possible: as
    /// [`distance`](Self::distance), except that `tail` may be ahead of
    /// `head` by up to a ring's worth (none counted then), because the
    /// producer seals records before it publishes `head`, and the consumer
    /// pops what is sealed.
    #[inline(always)]
    fn published(&self, head: u32, tail: u32) -> Result<u32, Corrupted> {
        match self.distance(head, tail) {
            Err(Corrupted) if tail.wrapping_sub(head) <= self.capacity() => Ok(0),
            counted => counted,
        }
    }

    /// Index in `data` of the first shim word of ring word `pos` (masked).
    #[inline(always)]
    fn index(&self, pos: u32) -> usize {
        (pos & self.mask) as usize * PER_WORD
    }

    /// Words from `pos` to the end of the ring, at least 1.
    #[inline(always)]
    fn words_to_end(&self, pos: u32) -> u32 {
        self.capacity() - (pos & self.mask)
    }

    /// Writes the header word at `pos`: `first` in bytes 0..4, `seal` in
    /// bytes 4..8, the shim word holding the seal last, with `order`.
    #[inline(always)]
    fn set_header(&self, pos: u32, first: u32, seal: u32, order: Ordering) {
        let mut raw = [0; WORD];
        raw[..4].copy_from_slice(&first.to_ne_bytes());
        raw[4..].copy_from_slice(&seal.to_ne_bytes());
        let at = self.index(pos);
        for (i, (word, chunk)) in self.headers[at..at + PER_WORD]
            .iter()
            .zip(raw.chunks(WORD_BYTES))
            .enumerate()
        {
            let mut bytes = [0; WORD_BYTES];
            bytes.copy_from_slice(chunk);
            let order = if i + 1 == PER_WORD {
                order
            } else {
                Ordering::Relaxed
            };
            word.store(WordInt::from_ne_bytes(bytes), order);
        }
    }

    /// Seals the record (or padding, `padding`) of `len` bytes at `pos`: its
    /// header, with `Release` (pairs with the consumer's `Acquire` load in
    /// [`sealed`](Self::sealed): the payload and the marker written before
    /// are visible once the seal is).
    #[inline(always)]
    fn seal(&self, pos: u32, len: u32, padding: bool) {
        let kind = if padding { PADDING } else { 0 };
        self.set_header(pos, len | kind, seal_of(pos), Ordering::Release);
    }

    /// Writes the marker at `pos`, the word after a record about to be
    /// sealed: a zero header, never a seal, so that the consumer reaching
    /// `pos` finds nothing published, never bytes an earlier lap left there.
    /// Relaxed: the seal that follows releases it.
    #[inline(always)]
    fn mark(&self, pos: u32) {
        self.set_header(pos, 0, 0, Ordering::Relaxed);
    }

    /// The header at `pos` if it is sealed for `pos`: `(len, padding)`.
    /// Reads the shim word holding the seal first, with `Acquire` (pairs
    /// with [`seal`](Self::seal)'s `Release`: what the producer wrote
    /// before sealing, the payload and the record after a padding, is
    /// visible; without it a copy could see an older payload).
    #[inline(always)]
    fn sealed(&self, pos: u32) -> Option<(u32, bool)> {
        let mut raw = [0; WORD];
        let at = self.index(pos);
        for (i, (chunk, word)) in raw
            .chunks_mut(WORD_BYTES)
            .zip(&self.headers[at..at + PER_WORD])
            .enumerate()
            .rev()
        {
            let order = if i + 1 == PER_WORD {
                Ordering::Acquire
            } else {
                Ordering::Relaxed
            };
            chunk.copy_from_slice(&word.load(order).to_ne_bytes());
        }
        let [l0, l1, l2, l3, s0, s1, s2, s3] = raw;
        let first = u32::from_ne_bytes([l0, l1, l2, l3]);
        (u32::from_ne_bytes([s0, s1, s2, s3]) == seal_of(pos))
            .then_some((first & !PADDING, first & PADDING != 0))
    }

    /// The shim words of `payload_words` payload words after the header at
    /// word `pos`, which the caller has checked lie before the end.
    #[inline(always)]
    fn payload(&self, pos: u32, payload_words: u32) -> &'a [SlotWord] {
        let first = self.index(pos) + PER_WORD;
        let count = payload_words as usize * PER_WORD;
        // In bounds for a record that does not straddle the end; `get` keeps
        // a broken invariant from panicking.
        self.data.get(first..first + count).unwrap_or(&[])
    }

    /// Validates what is sealed at `pos`: at most one padding, then a record
    /// (see [Trust](self#trust)). `Ok(None)` if nothing is sealed there.
    #[inline(always)]
    fn find(&self, pos: u32) -> Result<Option<Found>, Corrupted> {
        let Some((mut len, padding)) = self.sealed(pos) else {
            return Ok(None);
        };
        let mut pos = pos;
        let mut skipped = 0;
        if padding {
            let to_end = self.words_to_end(pos);
            // Padding fills the rest of the ring exactly (never all of it),
            // and the record after it was sealed before it.
            if u64::from(len) != u64::from(to_end - 1) * WORD as u64 || to_end == self.capacity() {
                return Err(Corrupted);
            }
            pos = pos.wrapping_add(to_end);
            skipped = to_end;
            len = match self.sealed(pos) {
                Some((len, false)) => len,
                _ => return Err(Corrupted),
            };
        }
        if len as usize > self.max_record() {
            return Err(Corrupted);
        }
        // At most half the ring: no overflow.
        let words = 1 + len.div_ceil(WORD as u32);
        if words > self.words_to_end(pos) {
            return Err(Corrupted);
        }
        Ok(Some(Found {
            len: len as usize,
            first: self.index(pos) + PER_WORD,
            release: skipped + words,
        }))
    }

    /// Copies the payload of `found` into `out`, which holds exactly
    /// `found.len` bytes: only the words that hold them.
    #[inline(always)]
    fn copy_out(&self, found: Found, out: &mut [u8]) {
        payload::load_bytes(self.data.get(found.first..).unwrap_or(&[]), out);
    }
}

/// The record ring as a kind of structure in a region.
struct Shape;

// SAFETY: `Structure`'s conditions, by number:
// 1. `view` reaches `head` at 128..132, `full` at 132..136, `tail` at 256..260, `ready` at
//    384..392, `space` at 392..400 and `capacity * 8` bytes of data words from `DATA` = 512:
//    exactly `required_size` (8-byte elements, `SLOT_OVERHEAD` 0).
// 2. Only through `u32_at`, `event_at`, `slot_words_at` and `words_at` (in
//    `Ring::new`), at constant offsets aligned for their types, in bounds by 1.
// 3. The control words and the data lie in disjoint ranges; every data word
//    is accessed as atomics of one size, headers (`words_at`: `Word`) and
//    payload (`slot_words_at`: `SlotWord`, which is `Word` outside loom)
//    alike.
// 4. `CONTROL` = `DATA` = 4 lines (`const_assert_eq!(DATA, 4 * LINE)`); a
//    slot is one 8-byte word.
// 5. Offsets are constants or `DATA + (position & mask) * 8`, with `mask`
//    from the `capacity` the view was made for, never re-read.
unsafe impl Structure for Shape {
    type View<'a> = (Ring<'a>, &'a Event, &'a Event);
    const KIND: Kind = Kind::Bytes;
    const CONTROL: usize = DATA;
    const SLOT_OVERHEAD: usize = 0;

    fn capacity_ok(capacity: u32) -> bool {
        capacity_ok(capacity)
    }

    unsafe fn view(memory: Memory<'_>, _: ElementLayout, capacity: u32) -> Self::View<'_> {
        // SAFETY: the memory is aligned and holds `DATA + capacity * 8`
        // bytes (the caller's guarantee); the offsets are disjoint and
        // aligned; `capacity` passed `capacity_ok` before any view is made.
        unsafe {
            (
                Ring::new(memory, HEAD, TAIL, DATA, capacity),
                memory.event_at(READY),
                memory.event_at(SPACE),
            )
        }
    }

    fn init((ring, ready, space): &Self::View<'_>) {
        ring.init();
        ready.reset();
        space.reset();
    }
}

/// A record ring in a [`Region`], not yet split into its two sides.
///
/// `K` keeps the region's memory alive, as for [`Spsc`](crate::spsc::Spsc):
/// each side holds it (or a clone).
pub struct RecordRing<'a, K = ()> {
    ring: Ring<'a>,
    ready: &'a Event,
    /// Where a producer waiting for room sleeps; only the Linux handshake's
    /// sides use it.
    #[cfg_attr(
        not(all(feature = "linux", target_os = "linux", not(loom))),
        allow(dead_code)
    )]
    space: &'a Event,
    keeper: K,
}

impl<K> fmt::Debug for RecordRing<'_, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordRing")
            .field("capacity", &self.ring.capacity())
            .finish_non_exhaustive()
    }
}

impl<'a> RecordRing<'a> {
    /// Bytes a region needs for a ring of `words` words (`words * 8` bytes
    /// of records), or `None` if `words` is not a valid capacity (a power of
    /// two from [`MIN_CAPACITY`] to [`MAX_CAPACITY`]) or the size overflows
    /// `usize`.
    pub const fn required_size(words: u32) -> Option<usize> {
        if capacity_ok(words) {
            region_size::<Shape>(ELEM, words)
        } else {
            None
        }
    }

    /// Creates an empty ring of `words` words in `region`, overwriting what
    /// it held. Nobody may be using the region meanwhile; the header is
    /// published last, so a peer attaching meanwhile sees
    /// [`AttachError::NotInitialized`].
    ///
    /// # Errors
    /// [`CreateError::InvalidCapacity`] unless `words` is a power of two
    /// from [`MIN_CAPACITY`] to [`MAX_CAPACITY`]; [`CreateError::Fit`] if the
    /// region is misaligned or shorter than
    /// [`required_size`](Self::required_size).
    pub fn create<K>(region: Region<'a, K>, words: u32) -> Result<RecordRing<'a, K>, CreateError> {
        let ((ring, ready, space), keeper) = region.create::<Shape>(Fingerprint {
            kind: Kind::Bytes,
            elem: ELEM,
            capacity: words,
            tag: 0,
        })?;
        Ok(RecordRing {
            ring,
            ready,
            space,
            keeper,
        })
    }

    /// Attaches to a ring another process (or mapping) created in `region`,
    /// checking its header and its counters.
    ///
    /// # Errors
    /// The first mismatch found, as an [`AttachError`]; `Corrupted` if the
    /// counters claim more words than the ring holds.
    pub fn attach<K>(region: Region<'a, K>) -> Result<RecordRing<'a, K>, AttachError> {
        let ((ring, ready, space), keeper) = region.attach::<Shape>(ELEM)?;
        // Pairs with the sides' `Release` stores: counters as published.
        let head = ring.head.load(Ordering::Acquire);
        let tail = ring.tail.load(Ordering::Acquire);
        ring.published(head, tail)
            .map_err(|Corrupted| AttachError::Corrupted)?;
        Ok(RecordRing {
            ring,
            ready,
            space,
            keeper,
        })
    }
}

impl<'a, K> RecordRing<'a, K> {
    /// Capacity in 8-byte words.
    pub fn capacity(&self) -> usize {
        self.ring.capacity() as usize
    }

    /// The largest record, in bytes: [`max_record`] of the capacity.
    pub fn max_record(&self) -> usize {
        self.ring.max_record()
    }

    /// The ring's shared counters, read without making a side (so without
    /// writing anything): what an inspect tool shows.
    pub fn counters(&self) -> Counters {
        self.ring.counters(self.ready)
    }

    /// The event a producer waiting for room sleeps on and the consumer
    /// wakes it through (the Linux handshake's blocking push).
    #[cfg(all(feature = "linux", target_os = "linux", not(loom)))]
    pub(crate) fn space(&self) -> &'a Event {
        self.space
    }

    /// The producing side. One producer per ring, across all processes (as
    /// for [`Spsc::into_producer`](crate::spsc::Spsc::into_producer)).
    pub fn into_producer(self) -> Producer<'a, K> {
        Producer::new(self.ring, self.ready, self.keeper)
    }

    /// The consuming side. One consumer per ring, across all processes.
    pub fn into_consumer(self) -> Consumer<'a, K> {
        Consumer::new(self.ring, self.ready, self.keeper)
    }

    /// Both sides, for two threads of this process.
    pub fn split(self) -> (Producer<'a, K>, Consumer<'a, K>)
    where
        K: Clone,
    {
        (
            Producer::new(self.ring, self.ready, self.keeper.clone()),
            Consumer::new(self.ring, self.ready, self.keeper),
        )
    }
}

/// The counters of the record ring in `region`, and whether they count a
/// possible number of words: for [`crate::inspect`]. Validates the header
/// as [`RecordRing::attach`] does; reads only.
pub(crate) fn inspect(region: ReadRegion<'_>) -> Result<(Counters, bool), AttachError> {
    let ((ring, ready, _space), ()) = region.attach::<Shape>(ELEM)?;
    Ok(ring.inspect(ready))
}

/// A record ring and its data words in one value, for a `static` or a local.
///
/// `WORDS` is the capacity in words, a power of two from [`MIN_CAPACITY`] to
/// [`MAX_CAPACITY`] (checked at compile time). All zeroes when new, so a
/// `static` one lives in `.bss`; its bytes are those of a region holding a
/// ring of `WORDS` words.
///
/// ```
/// use ipc_primitives::bytes::StaticRecordRing;
///
/// static LOG: StaticRecordRing<256> = StaticRecordRing::new();
///
/// let mut tx = LOG.take_producer().expect("first take");
/// let mut rx = LOG.take_consumer().expect("first take");
/// tx.push(b"boot ok").unwrap();
/// assert_eq!(rx.pop_vec::<32>().unwrap().as_slice(), b"boot ok");
/// ```
///
/// Taking needs an atomic swap, as for [`StaticSpsc`](crate::spsc::StaticSpsc).
pub struct StaticRecordRing<const WORDS: usize> {
    memory: StaticMemory<[u8; WORD], WORDS, { DATA / LINE }, 0>,
}

impl<const WORDS: usize> fmt::Debug for StaticRecordRing<WORDS> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticRecordRing")
            .field("capacity", &WORDS)
            .finish_non_exhaustive()
    }
}

impl<const WORDS: usize> StaticRecordRing<WORDS> {
    const_fn_unless_loom! {
        /// An empty ring: all zeroes.
        pub fn new() -> Self {
            const {
                assert!(
                    WORDS <= MAX_CAPACITY as usize && capacity_ok(WORDS as u32),
                    "capacity must be a power of two from 4 to 2^29 words"
                );
            }
            Self {
                memory: StaticMemory::zeroed(),
            }
        }
    }

    /// The ring's view, its header written (idempotently).
    fn view(&self) -> (Ring<'_>, &Event) {
        // SAFETY: the memory is aligned and holds the control lines and
        // `WORDS` words (`StaticMemory`'s guarantee); `WORDS` is a valid
        // capacity (checked at compile time in `new`); all zeroes is an
        // empty ring.
        let (ring, ready, _space) = unsafe {
            self.memory.region().describe::<Shape>(Fingerprint {
                kind: Kind::Bytes,
                elem: ELEM,
                capacity: WORDS as u32,
                tag: 0,
            })
        };
        (ring, ready)
    }

    /// The two sides. They borrow the ring; splitting again later resumes
    /// where the last pair stopped.
    pub fn split(&mut self) -> (Producer<'_>, Consumer<'_>) {
        let (ring, ready) = self.view();
        (
            Producer::new(ring, ready, ()),
            Consumer::new(ring, ready, ()),
        )
    }
}

if_take_flag! {
    impl<const WORDS: usize> StaticRecordRing<WORDS> {
        /// The producing side, the first time it is asked for; `None` after.
        pub fn take_producer(&self) -> Option<Producer<'_>> {
            self.memory.take(0).then(|| {
                let (ring, ready) = self.view();
                Producer::new(ring, ready, ())
            })
        }

        /// The consuming side, the first time it is asked for; `None` after.
        pub fn take_consumer(&self) -> Option<Consumer<'_>> {
            self.memory.take(1).then(|| {
                let (ring, ready) = self.view();
                Consumer::new(ring, ready, ())
            })
        }
    }
}

impl<const WORDS: usize> Default for StaticRecordRing<WORDS> {
    fn default() -> Self {
        Self::new()
    }
}

/// A snapshot of a record ring's shared counters, for a third process (an
/// inspect tool attaches and reads them without making a side: it writes
/// nothing) or for either side. Each field is read once, `Relaxed`: exact when
/// read, not a consistent cut, and anything at all if a peer is hostile, so
/// for display only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct Counters {
    /// Words published (`head`: headers, payloads, padding), wrapping.
    pub published: u32,
    /// Words consumed (`tail`), wrapping.
    pub consumed: u32,
    /// Reserves that found the ring full, wrapping.
    pub full: u32,
    /// Wake-ups sent to the consumer (its event's epoch), wrapping. In a lane
    /// set, the shared doorbell's.
    pub wakes: u32,
    /// Whether the consumer is announced asleep.
    pub consumer_asleep: bool,
}

impl Counters {
    /// Words in use: `published - consumed`, wrapping. More than the capacity
    /// only if a side is corrupt, or (wrapped below zero) for a while after a
    /// producer died between sealing records and counting them in
    /// `published`: the consumer pops what is sealed, and the next producer
    /// counts them.
    #[must_use]
    pub fn used_words(&self) -> u32 {
        self.published.wrapping_sub(self.consumed)
    }
}

/// Why [`Producer::reserve`] (or [`Producer::push`]) failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ReserveError {
    /// The record is longer than any this ring takes; it never will fit.
    TooLarge {
        /// Bytes asked for.
        len: usize,
        /// The ring's [`max_record`].
        max: usize,
    },
    /// Not enough room now: the consumer has not caught up.
    Full,
    /// The consumer's counter is impossible; see [`Corrupted`].
    Corrupted,
}

impl fmt::Display for ReserveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::TooLarge { len, max } => write!(
                f,
                "record of {len} bytes is larger than the ring's largest, {max} bytes"
            ),
            Self::Full => f.write_str("ring is full"),
            Self::Corrupted => fmt::Display::fmt(&Corrupted, f),
        }
    }
}

impl core::error::Error for ReserveError {}

impl From<Corrupted> for ReserveError {
    fn from(Corrupted: Corrupted) -> Self {
        Self::Corrupted
    }
}

/// Why a pop returned no record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum PopError {
    /// No record is waiting.
    Empty,
    /// The next record is longer than the buffer; it stays in the ring.
    TooSmall {
        /// The record's length in bytes.
        needed: usize,
    },
    /// The producer's counter or a record header is impossible; see
    /// [`Corrupted`]. The ring is left as it is.
    Corrupted,
}

impl fmt::Display for PopError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Empty => f.write_str("ring is empty"),
            Self::TooSmall { needed } => {
                write!(f, "buffer too small for the next record of {needed} bytes")
            }
            Self::Corrupted => fmt::Display::fmt(&Corrupted, f),
        }
    }
}

impl core::error::Error for PopError {}

impl From<Corrupted> for PopError {
    fn from(Corrupted: Corrupted) -> Self {
        Self::Corrupted
    }
}

/// Why a blocking pop ([`Consumer::wait_or_sleep`], and the Linux adapters'
/// `pop_blocking`) returned no record: what [`PopError`] says (never
/// `Empty`), or the sleeper gave up with `E` (a timeout, a failed system
/// call).
///
/// Transparent: each variant prints, and has the [`source`] of, what it holds.
///
/// [`source`]: core::error::Error::source
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum BlockingError<E> {
    /// The next record is longer than the buffer; it stays in the ring. Never
    /// from `wait_or_sleep`, which copies nothing.
    TooSmall {
        /// The record's length in bytes.
        needed: usize,
    },
    /// See [`PopError::Corrupted`].
    Corrupted,
    /// The sleeper gave up: what it returned.
    Sleep(E),
}

impl<E: fmt::Display> fmt::Display for BlockingError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooSmall { needed } => {
                fmt::Display::fmt(&PopError::TooSmall { needed: *needed }, f)
            }
            Self::Corrupted => fmt::Display::fmt(&Corrupted, f),
            Self::Sleep(err) => fmt::Display::fmt(err, f),
        }
    }
}

impl<E: core::error::Error> core::error::Error for BlockingError<E> {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Sleep(err) => err.source(),
            Self::TooSmall { .. } | Self::Corrupted => None,
        }
    }
}

#[cfg(not(loom))]
mod assertions {
    use static_assertions::{assert_impl_all, assert_not_impl_any, const_assert_eq};

    use super::{Consumer, Producer, RecordRing, StaticRecordRing};

    const_assert_eq!(super::DATA, 4 * crate::layout::LINE);
    // `space` follows `ready` in its line, before the data.
    const_assert_eq!(
        super::SPACE,
        super::READY + core::mem::size_of::<super::Event>()
    );
    static_assertions::const_assert!(super::SPACE + 8 <= super::DATA);
    const_assert_eq!(super::max_record(4), 8);
    const_assert_eq!(super::max_record(super::MAX_CAPACITY), (1 << 31) - 8);
    const_assert_eq!(
        match RecordRing::required_size(64) {
            Some(size) => size,
            None => 0,
        },
        512 + 64 * 8
    );

    assert_impl_all!(Producer<'static>: Send);
    assert_impl_all!(Consumer<'static>: Send);
    assert_not_impl_any!(Producer<'static>: Sync, Clone);
    assert_not_impl_any!(Consumer<'static>: Sync, Clone);
    assert_impl_all!(StaticRecordRing<4>: Send, Sync);
}

#[cfg(all(test, not(loom)))]
mod tests;
