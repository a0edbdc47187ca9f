//! A single-producer single-consumer ring of fixed-size elements.
//!
//! The fast path between two threads, an interrupt handler and a main loop, or
//! two processes. Each side keeps its own index; the producer caches the
//! consumer's and touches its cache line only when the ring looks full. A
//! small element crosses in the cache line of its slot alone (see
//! [Protocol](#protocol)).
//!
//! Two ways to have one:
//! - [`StaticSpsc`]: the ring and its slots in one value, built by a `const fn`,
//!   for a `static` or a local; capacity is a const generic.
//! - [`Spsc::create`] / [`Spsc::attach`]: the ring in a caller's [`Region`]
//!   (a buffer, an `mmap`), with a runtime capacity recorded in the header.
//!
//! Both hand out the same [`Producer`] and [`Consumer`].
//!
//! ```
//! use ipc_primitives::spsc::StaticSpsc;
//!
//! let mut ring = StaticSpsc::<u64, 8>::new();
//! let (mut tx, mut rx) = ring.split();
//! tx.try_push(7).unwrap();
//! assert_eq!(rx.try_pop(), Ok(7));
//! ```
//!
//! # Protocol
//! Element `i` (positions count pushes, `u32`, wrapping) lives in slot
//! `i & (capacity - 1)`. Two shared counters, each written by one side
//! only, say who owns which slot: `head`, the elements published (the
//! producer's), and `tail`, the elements popped (the consumer's). The slots
//! of `tail .. head` belong to the consumer, the others to the producer. Each
//! side keeps its own counter in its handle (the shared one is the copy it
//! publishes); the producer caches `tail`, re-read only when the cache says
//! the ring is full. Payloads are copied in and out as relaxed atomic words.
//!
//! How the consumer learns that an element is there depends on its size,
//! chosen by the element type (its stride, `size_of::<T>()` rounded up to
//! 8), the same on every target:
//! - **Stamped slots, for strides up to 56 bytes.** The producer writes an
//!   element's payload, then the slot's stamp, `(i + 1) | 1 << 31`, then
//!   `head`; the consumer pops position `i` once that stamp is there. A
//!   stamp and such a payload share a 64-byte cache line, so the element
//!   crosses in one line transfer. The consumer reads `head` only when the
//!   stamp it expects is missing, to tell an empty ring from a corrupt one.
//! - **The index protocol, for larger elements.** Slots are the payload
//!   alone. The producer writes payloads, then `head`; the consumer caches
//!   `head` and pops the slots behind it, reloading it only when the cache
//!   counts fewer elements than it wants. An element of more than 56 bytes
//!   spans two lines either way; without stamps the slots are dense (a
//!   64-byte element fills one line) and the consumer never polls a line
//!   the producer is writing, which doubles the throughput of 64-byte
//!   elements (`bench`, `spsc_tput`).
//!
//! | access | ordering | pairs with | without it |
//! |---|---|---|---|
//! | producer stores a stamp (stamped slots) | `Release` | the consumer's load of that stamp | the consumer could copy the slot before the payload stores reach it: a stale or torn element |
//! | consumer loads a stamp (stamped slots) | `Acquire` | the producer's store of it | as above |
//! | producer publishes `head`, after the payloads (and stamps) | `Release` | the consumer's, `len`'s and `attach`'s loads of `head` | index protocol: the consumer could copy a slot before its payload arrived; stamped: a consumer that finds `head` counting an element could still read its old stamp and call the ring corrupt |
//! | consumer loads `head` | `Acquire` | the producer's store of `head` | as above |
//! | consumer publishes `tail` | `Release` | the producer's load of `tail` | the producer could overwrite a slot the consumer is still copying out |
//! | producer loads `tail` | `Acquire` | the consumer's store of `tail` | as above |
//! | a new side loads its own counter | `Acquire` | its predecessor's store of that counter | see below |
//!
//! In a stamped ring, when the stamp at `tail` is missing but `head` counts
//! the element, the consumer reads the stamp once more: `head`'s `Acquire` load makes the
//! stamp stored before it visible, so a stamp still missing means a corrupt
//! producer, not a late one.
//!
//! A side made after an earlier one (a ring split again, a process that
//! attaches to take a side over) loads its own counter with `Acquire`, so that
//! the `Release` stores it makes later carry its predecessor's slot accesses
//! to the peer. Happens-before passes through an acquire followed by a release
//! in one thread, but a plain store by another thread does not continue a
//! release sequence: without it, a producer could overwrite slots the old
//! consumer was still copying (`tests/loom.rs` fails if `Consumer::new`'s
//! load is `Relaxed`). A new producer needs it less, since the consumer
//! acquires each element's own stamp, but keeps it for `len` and the stamps
//! it adopts. A new producer also loads `tail` with `Acquire`: it frees slots
//! on that cached value without loading it again.
//! A producer of stamped slots that died between stamping them and
//! publishing `head` leaves elements the consumer may already have popped
//! (it follows stamps, not `head`); a new producer starts after every slot
//! stamped in sequence from `head` (or from `tail`, if the consumer is
//! ahead), at most a ring's worth, and publishes `head` to match, so nothing
//! is pushed twice or lost. In the index protocol nothing is popped before
//! `head` counts it, and a new producer starts at `head`.
//!
//! Creating a ring zeroes the counters, stamps and slots with relaxed stores;
//! the region's header, stored last with `Release` and loaded with `Acquire`
//! by `attach`, publishes them. Blocking adds the [`event`](crate::event)
//! protocol twice: on `ready` the consumer announces itself and re-checks the
//! ring, and the producer asks after each publish; on `space` the producer
//! announces itself while the ring is full, and the consumer asks after it
//! frees slots. The two `SeqCst` fences are explained there. Each ordering
//! site in `producer.rs` and `consumer.rs` names its pair; `tests/loom.rs`
//! and `tests/loom_wait.rs` model-check them, the slot accesses
//! causality-checked.
//!
//! # Trust
//! The peer may be another process that writes anything into the ring at any
//! time. Every index is masked; a consumer pops only a slot stamped with the
//! position it expects (or, in the index protocol, counted by a `head` it
//! checked), and reports [`Corrupted`] where the producer's `head` counts an
//! element whose slot is not stamped, or more elements than slots, and in
//! the index protocol where `head` is behind `tail`; a producer that sees
//! the consumer ahead of it reports [`Corrupted`]. A
//! hostile producer can make the consumer read garbage *values* (any bit
//! pattern is a valid payload), or find the ring empty, never cause
//! undefined behaviour, a panic or a hang.
//!
//! # Layout
//! Counters and stamps are native-endian `u32`s; payload bytes are the
//! element's own bytes.
//!
//! | offset | size | what |
//! |---|---|---|
//! | 0 | 128 | [header](crate::layout) |
//! | 128 | 4 | `head`: elements pushed (producer) |
//! | 132 | 4 | `full`: pushes that found the ring full (producer; a counter for operators) |
//! | 256 | 4 | `tail`: elements popped (consumer) |
//! | 384 | 8 | `ready`: [`Event`] the consumer sleeps on |
//! | 392 | 8 | `space`: [`Event`] the producer sleeps on while the ring is full |
//! | 400 | 4 | `producer_closed`: bit 0 set once the producer closed the ring; bits 1 to 31 number its openings (by `create` and by each new producer), so a replaced handle cannot close its successor's side (producer) |
//! | 404 | 4 | `consumer_closed`: the same for the consumer (consumer) |
//! | 512 | capacity × (8 + stride) | stride up to 56: slots of a stamp (`u32`), 4 unused bytes, then the payload, `size_of::<T>()` rounded up to 8 |
//! | 512 | capacity × stride | stride over 56: slots of the payload alone |
//!
//! A slot's stamp is `(position + 1) | 1 << 31` once the element at
//! `position` is in it (0 before any), written last with `Release`. The
//! consumer polls the stamp of the slot it expects, beside the payload: a
//! small element crosses from producer to consumer in one cache-line
//! transfer (a stamp and up to 56 bytes of payload share a 64-byte line). It
//! reads `head` only when the stamp says nothing is there.

mod consumer;
mod counters;
mod error;
mod producer;
mod side;

use core::{fmt, marker::PhantomData};

pub use consumer::Consumer;
pub use counters::Counters;
pub(crate) use counters::inspect;
pub use error::{BlockingError, ChunkError, PopError, PushError};
pub use producer::{Grant, OutOfBounds, Producer, SlotWriter, WriteChunk};
use side::Side;

use crate::Corrupted;
use crate::event::Event;
use crate::header::Fingerprint;
use crate::layout::{ElementLayout, Kind, LINE, STAMPED_STRIDE};
use crate::payload::Pod;
use crate::region::{Memory, Region, Structure, required_size, slot_bytes};
use crate::storage::StaticMemory;
use crate::sync::{AtomicU32, Ordering, SlotWord, WordCell, const_fn_unless_loom, if_take_flag};
use crate::{AttachError, CreateError};

/// The largest capacity: counters are `u32` and wrap, and a slot's stamp keeps
/// 31 bits of its position, so capacity <= 2^30 keeps both unambiguous.
pub const MAX_CAPACITY: u32 = 1 << 30;

/// Whether a ring may have `capacity` slots: a power of two up to
/// [`MAX_CAPACITY`]. One rule for `create`, `attach` and `required_size`.
const fn capacity_ok(capacity: u32) -> bool {
    capacity.is_power_of_two() && capacity <= MAX_CAPACITY
}

/// Byte offset of `head`.
const HEAD: usize = 128;
/// Byte offset of `full`.
const FULL: usize = 132;
/// Byte offset of `tail`.
const TAIL: usize = 256;
/// Byte offset of the event the consumer sleeps on.
const READY: usize = 384;
/// Byte offset of the event the producer sleeps on, waiting for space.
const SPACE: usize = 392;
/// Byte offset of the producer's closed flag (on the events' line, which
/// the sides write only to sleep, wake and close: polling it costs no
/// transfer while they run).
const PRODUCER_CLOSED: usize = 400;
/// Byte offset of the consumer's closed flag.
const CONSUMER_CLOSED: usize = 404;
/// Byte offset of the first slot.
const SLOTS: usize = 512;
/// Bytes of a stamped slot before its payload: the stamp and 4 unused bytes.
const STAMP_BYTES: usize = 8;
/// Set in every stamp, so that a slot never written (all zeroes) never looks
/// published.
const STAMPED: u32 = 1 << 31;

/// The stamp of the slot holding the element at `position`: its position plus
/// one, in 31 bits, marked.
#[inline]
const fn stamp(position: u32) -> u32 {
    position.wrapping_add(1) | STAMPED
}

/// A validated view of a ring: its shared words and its local geometry.
///
/// Geometry is read once, when the view is made, and never re-read from shared
/// memory.
pub(crate) struct Ring<'a, T> {
    /// Elements ever pushed, wrapping. Written only by the producer (`Release`,
    /// after the slots' payloads and stamps); in `tail ..= tail + capacity`
    /// unless the producer is corrupt. The consumer reads it when a slot's
    /// stamp says nothing is there, or, without stamps, when its cached copy
    /// counts nothing more (and for `len`).
    head: &'a AtomicU32,
    /// Pushes that found the ring full, wrapping: a counter for operators.
    /// Written only by the producer.
    full: &'a AtomicU32,
    /// Elements ever popped, wrapping. Written only by the consumer (`Release`);
    /// in `head - capacity ..= head` unless the consumer is corrupt.
    tail: &'a AtomicU32,
    /// The consumer announces here that it will sleep until an element comes.
    ready: &'a Event,
    /// The producer announces here that it will sleep until a slot frees.
    space: &'a Event,
    /// Bit 0 set once the producer closed the ring (`Release`); the bits
    /// above number the producers that opened it. Written only by the
    /// producer (see `side`).
    producer_closed: &'a AtomicU32,
    /// The same for the consumer. Written only by the consumer.
    consumer_closed: &'a AtomicU32,
    /// The slots: `capacity` of `slot_bytes` each, from byte `SLOTS`.
    memory: Memory<'a>,
    /// Bytes per slot: the stamp (if [`stamped`](Self::stamped)), then the
    /// element's stride.
    slot_bytes: usize,
    /// `capacity - 1`; capacity is a power of two.
    mask: u32,
    _t: PhantomData<T>,
}

impl<T> Clone for Ring<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Ring<'_, T> {}

// SAFETY: the view holds references to atomics and the region's `Memory`
// (under loom, references to cells whose accesses loom checks); the ring's
// protocol gives each slot's payload to one side at a time, and a hostile
// peer's writes are atomic accesses, never data races here.
#[cfg(loom)]
unsafe impl<T> Send for Ring<'_, T> {}

/// The ring as a kind of structure in a region.
struct Shape<T>(PhantomData<T>);

// SAFETY: `Structure`'s conditions, by number:
// 1. `view` reaches `head` at 128..132, `full` at 132..136, `tail` at
//    256..260, `ready` at 384..392, `space` at 392..400, the closed flags
//    at 400..404 and 404..408, and the slots at
//    `SLOTS .. SLOTS + capacity * slot_bytes`, which is `required_size`
//    (`slot_bytes` is `region::slot_bytes`: `STAMP_BYTES + stride` up to
//    `STAMPED_STRIDE`, the stride alone above); `assertions` pins `SLOTS`
//    and `required_size` for element types of both kinds.
// 2. Only through `u32_at`, `event_at` and `slot_words_at`, at offsets that
//    are aligned for their type (the control words' are constants; a slot's
//    stamp and payload start at multiples of 8), in bounds by 1; no other
//    reference.
// 3. `head` and `full`, `tail`, `ready`, `space` and the flags, and each
//    slot's stamp and payload occupy disjoint ranges; the 4 bytes after a
//    stamp are never accessed. `Ring::stamped` (of `T`) and `slot_bytes` (of
//    `elem`) agree, since `elem`'s stride is on the same side of
//    `STAMPED_STRIDE` as `T`'s (see 4), so a slot has a stamp exactly when
//    `Ring::stamp` reaches one: without stamps, the payload starts at the
//    slot and no `u32` covers it.
// 4. `CONTROL` = `SLOTS` = 4 lines (`const_assert_eq!(SLOTS, 4 * LINE)`);
//    `elem` is `ElementLayout::of::<T>()` (`create`, `attach`,
//    `StaticSpsc`), whose stride is a multiple of 8, as `STAMP_BYTES` is,
//    or a header's layout with such a stride, for a `T` chosen stamped
//    exactly when that stride is (`counters::inspect`).
// 5. Offsets are constants or `SLOTS + (index & mask) * slot_bytes`, with
//    `mask`, `slot_bytes` and `stamped` from the `capacity` and `elem` the
//    view was made for (`Ring::slot_offset`), never re-read.
unsafe impl<T: Pod> Structure for Shape<T> {
    type View<'a> = Ring<'a, T>;
    const KIND: Kind = Kind::Spsc;
    const CONTROL: usize = SLOTS;
    const SLOT_OVERHEAD: usize = STAMP_BYTES;
    const OVERHEAD_UP_TO: u32 = STAMPED_STRIDE;

    fn capacity_ok(capacity: u32) -> bool {
        capacity_ok(capacity)
    }

    unsafe fn view(memory: Memory<'_>, elem: ElementLayout, capacity: u32) -> Ring<'_, T> {
        // SAFETY: the memory is aligned and holds the control block (the
        // caller's guarantee); each offset is aligned for its type.
        unsafe {
            Ring {
                head: memory.u32_at(HEAD),
                full: memory.u32_at(FULL),
                tail: memory.u32_at(TAIL),
                ready: memory.event_at(READY),
                space: memory.event_at(SPACE),
                producer_closed: memory.u32_at(PRODUCER_CLOSED),
                consumer_closed: memory.u32_at(CONSUMER_CLOSED),
                memory,
                slot_bytes: slot_bytes::<Self>(elem),
                mask: capacity - 1,
                _t: PhantomData,
            }
        }
    }

    fn init(ring: &Ring<'_, T>) {
        // Relaxed: the header, stored after this with `Release`, publishes
        // the zeroes to an attacher, whose `Acquire` load of it pairs with it.
        ring.head.store(0, Ordering::Relaxed);
        ring.full.store(0, Ordering::Relaxed);
        ring.tail.store(0, Ordering::Relaxed);
        ring.ready.reset();
        ring.space.reset();
        // Open, under new numbers: handles left from before a re-create
        // cannot close the new ring's sides.
        Side::open(ring.producer_closed);
        Side::open(ring.consumer_closed);
        for index in 0..ring.capacity() {
            if let Some(stamp) = ring.stamp(index) {
                stamp.store(0, Ordering::Relaxed);
            }
            for word in ring.payload(index) {
                word.set(0);
            }
        }
    }
}

impl<'a, T: Pod> Ring<'a, T> {
    /// Whether slots are stamped (elements up to [`STAMPED_STRIDE`]); if
    /// not, the ring takes the index protocol (see [Protocol](self#protocol)).
    /// A constant of the element type, so each side's code has one protocol.
    #[inline(always)]
    const fn stamped(&self) -> bool {
        ElementLayout::of::<T>().stamped()
    }

    fn capacity(&self) -> u32 {
        self.mask + 1
    }

    /// Byte offset of the slot for counter value `index` (masked).
    #[inline]
    fn slot_offset(&self, index: u32) -> usize {
        SLOTS + (index & self.mask) as usize * self.slot_bytes
    }

    /// The stamp of the slot for counter value `index` (masked), if slots
    /// are stamped: `0` never written, else [`stamp`] of the position it
    /// last held.
    #[inline]
    fn stamp(&self, index: u32) -> Option<&'a AtomicU32> {
        if !self.stamped() {
            return None;
        }
        // SAFETY: the masked index is below `capacity`, so the slot lies
        // within `required_size` (see the `Structure` impl); a stamped slot's
        // stamp is its first `u32`, 8-aligned as every slot is (`slot_bytes`
        // and `SLOTS` are multiples of 8), and no payload word covers it.
        Some(unsafe { self.memory.u32_at(self.slot_offset(index)) })
    }

    /// Whether the slot for `position` is stamped as holding it (`Acquire`,
    /// pairing with the producer's `Release` store of the stamp, so the
    /// payload copied next is the one stamped); never, for unstamped slots.
    #[inline]
    fn holds(&self, position: u32) -> bool {
        self.stamp(position)
            .is_some_and(|word| word.load(Ordering::Acquire) == stamp(position))
    }

    /// The payload words of the slot for counter value `index` (masked).
    #[inline]
    fn payload(&self, index: u32) -> &'a [SlotWord] {
        let stamp = if self.stamped() { STAMP_BYTES } else { 0 };
        // SAFETY: as for `stamp`: the payload is the slot's last
        // `slot_bytes - stamp` bytes (the stride), 8-aligned, within the slot.
        unsafe {
            self.memory
                .slot_words_at(self.slot_offset(index) + stamp, self.slot_bytes - stamp)
        }
    }

    /// Elements between `tail` and `head` if that is a possible count, for
    /// a side whose `head` is exact (the producer's own).
    #[inline]
    fn distance(&self, head: u32, tail: u32) -> Result<u32, Corrupted> {
        let used = head.wrapping_sub(tail);
        if used > self.capacity() {
            Err(Corrupted)
        } else {
            Ok(used)
        }
    }

    /// Elements the shared `head` counts beyond `tail`, if possible: as
    /// [`distance`](Self::distance), except that in a stamped ring `tail`
    /// may be ahead of the shared `head` by up to a ring's worth (none
    /// counted then), because the producer stamps slots before it publishes
    /// `head`, and the consumer pops what is stamped.
    #[inline]
    fn published(&self, head: u32, tail: u32) -> Result<u32, Corrupted> {
        match self.distance(head, tail) {
            Err(Corrupted) if self.stamped() && tail.wrapping_sub(head) <= self.capacity() => Ok(0),
            counted => counted,
        }
    }
}

/// A ring in a [`Region`], not yet split into its two sides.
///
/// `K` is what keeps the region's memory alive, if the region was given one
/// ([`Region::from_raw_parts_owned`]; `()` otherwise): each side holds it (or
/// a clone), so sides of a ring in owned memory own their memory.
pub struct Spsc<'a, T, K = ()> {
    ring: Ring<'a, T>,
    keeper: K,
}

impl<T, K> fmt::Debug for Spsc<'_, T, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Spsc")
            .field("capacity", &(u64::from(self.ring.mask) + 1))
            .finish_non_exhaustive()
    }
}

impl<'a, T: Pod> Spsc<'a, T> {
    /// Bytes a region needs for a ring of `capacity` elements of `T`; `None`
    /// for a capacity [`create`](Self::create) refuses (not a power of two up
    /// to [`MAX_CAPACITY`]) and for a size that overflows `usize`.
    pub const fn required_size(capacity: u32) -> Option<usize> {
        if !capacity_ok(capacity) {
            return None;
        }
        required_size::<Shape<T>>(ElementLayout::of::<T>(), capacity)
    }

    /// Creates an empty ring with zeroed slots in `region`, overwriting what it
    /// held.
    ///
    /// `capacity` must be a power of two from 1 to [`MAX_CAPACITY`]. Nobody may
    /// be using the region while it is created; the header is published last,
    /// so a peer attaching meanwhile sees [`AttachError::NotInitialized`].
    ///
    /// # Errors
    /// [`CreateError::InvalidCapacity`] for a capacity that is not a power of
    /// two up to [`MAX_CAPACITY`]; [`CreateError::Fit`] if the region is
    /// misaligned or shorter than [`required_size`](Self::required_size).
    pub fn create<K>(region: Region<'a, K>, capacity: u32) -> Result<Spsc<'a, T, K>, CreateError> {
        let (ring, keeper) = region.create::<Shape<T>>(Fingerprint {
            kind: Kind::Spsc,
            elem: ElementLayout::of::<T>(),
            capacity,
            tag: 0,
        })?;
        Ok(Spsc { ring, keeper })
    }

    /// Attaches to a ring another process (or another mapping) created in
    /// `region`, checking its header against `T` and the region's length.
    ///
    /// # Errors
    /// The first mismatch between the region's header and a ring of `T`, or
    /// between the header and the region's length; [`AttachError::Corrupted`]
    /// if the counters claim more elements than slots ([`AttachError`]).
    pub fn attach<K>(region: Region<'a, K>) -> Result<Spsc<'a, T, K>, AttachError> {
        let (ring, keeper) = region.attach::<Shape<T>>(ElementLayout::of::<T>())?;
        // Only checked here, never used to reach a slot: the sides load the
        // counters again when they are made. `Acquire` (pairing with the
        // sides' `Release` stores) as everywhere the counters are read.
        let head = ring.head.load(Ordering::Acquire);
        let tail = ring.tail.load(Ordering::Acquire);
        ring.published(head, tail)
            .map_err(|Corrupted| AttachError::Corrupted)?;
        Ok(Spsc { ring, keeper })
    }
}

impl<'a, T: Pod, K> Spsc<'a, T, K> {
    /// Number of slots.
    pub fn capacity(&self) -> u32 {
        self.ring.capacity()
    }

    /// The ring's shared counters, read without making a side (so without
    /// writing anything): what an inspect tool shows.
    pub fn counters(&self) -> Counters {
        self.ring.counters()
    }

    /// The producing side. Only one producer may use a ring at a time, across
    /// all processes: in this process the region, taken by value, holds one
    /// ring, so a second producer needs a second mapping (which is a peer);
    /// the ring cannot enforce it for other processes.
    pub fn into_producer(self) -> Producer<'a, T, K> {
        Producer::new(self.ring, self.keeper)
    }

    /// The consuming side. Only one consumer may use a ring at a time, across
    /// all processes (as for [`into_producer`](Self::into_producer)).
    pub fn into_consumer(self) -> Consumer<'a, T, K> {
        Consumer::new(self.ring, self.keeper)
    }

    /// Both sides, for use by two threads of this process.
    pub fn split(self) -> (Producer<'a, T, K>, Consumer<'a, T, K>)
    where
        K: Clone,
    {
        (
            Producer::new(self.ring, self.keeper.clone()),
            Consumer::new(self.ring, self.keeper),
        )
    }
}

/// A ring and its slots in one value, for a `static` or a local.
///
/// `N` must be a power of two up to [`MAX_CAPACITY`] (checked at compile time).
/// Its bytes are those of a region holding a ring of capacity `N`, with up
/// to 7 bytes per slot to spare, and 8 more for elements over 56 bytes,
/// whose slots have no stamp (the storage's size is a const expression of
/// `N` that stable Rust cannot make depend on the element's size). A new ring
/// is all zeroes, so a `static` one lives in `.bss` (no flash image, no copy at
/// start-up); its header is written when it is first split or taken.
///
/// Two ways to get its sides:
/// - [`split`](Self::split) through `&mut self`, for a local (or a `static`
///   held by `static_cell`);
/// - [`take_producer`](Self::take_producer) and
///   [`take_consumer`](Self::take_consumer) through a shared reference, each
///   once, for a plain `static`: no `unsafe`, no `static mut`, and each
///   context (an interrupt handler, the main loop) takes its own side.
///
/// ```
/// use ipc_primitives::spsc::StaticSpsc;
///
/// static RING: StaticSpsc<u32, 16> = StaticSpsc::new();
///
/// // In the interrupt handler (e.g. in a handler-local `static mut Option<_>`):
/// let mut tx = RING.take_producer().expect("first take");
/// // In the main loop:
/// let mut rx = RING.take_consumer().expect("first take");
/// assert!(RING.take_producer().is_none(), "one producer");
///
/// tx.try_push(7).unwrap();
/// assert_eq!(rx.try_pop(), Ok(7));
/// ```
///
/// Taking needs an atomic swap: native on targets with compare-and-swap, and
/// with the `portable-atomic` feature elsewhere (`thumbv6m-none-eabi`,
/// `riscv32imc-unknown-none-elf`; see the crate's feature docs).
pub struct StaticSpsc<T, const N: usize> {
    memory: StaticMemory<T, N, { SLOTS / LINE }, STAMP_BYTES>,
}

impl<T, const N: usize> fmt::Debug for StaticSpsc<T, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticSpsc")
            .field("capacity", &N)
            .finish_non_exhaustive()
    }
}

impl<T: Pod, const N: usize> StaticSpsc<T, N> {
    const_fn_unless_loom! {
        /// An empty ring: all zeroes.
        pub fn new() -> Self {
            const {
                assert!(
                    N <= MAX_CAPACITY as usize && capacity_ok(N as u32),
                    "capacity must be a power of two up to 2^30"
                );
            }
            Self {
                memory: StaticMemory::zeroed(),
            }
        }
    }

    /// The ring's view, its header written (idempotently: every caller writes
    /// the same values, and no other state is touched).
    fn ring(&self) -> Ring<'_, T> {
        // SAFETY: the memory is aligned to 128 and holds the control lines and
        // `N` slots of `T` (`StaticMemory`'s guarantee), and `N` is a valid
        // capacity (checked at compile time in `new`).
        unsafe {
            self.memory.region().describe::<Shape<T>>(Fingerprint {
                kind: Kind::Spsc,
                elem: ElementLayout::of::<T>(),
                capacity: N as u32,
                tag: 0,
            })
        }
    }

    /// The two sides. They borrow the ring, so it cannot be split twice at once;
    /// splitting again later resumes where the last pair stopped.
    pub fn split(&mut self) -> (Producer<'_, T>, Consumer<'_, T>) {
        let ring = self.ring();
        (Producer::new(ring, ()), Consumer::new(ring, ()))
    }
}

if_take_flag! {
    impl<T: Pod, const N: usize> StaticSpsc<T, N> {
        /// The producing side, the first time it is asked for; `None` after.
        pub fn take_producer(&self) -> Option<Producer<'_, T>> {
            self.memory.take(0).then(|| Producer::new(self.ring(), ()))
        }

        /// The consuming side, the first time it is asked for; `None` after.
        pub fn take_consumer(&self) -> Option<Consumer<'_, T>> {
            self.memory.take(1).then(|| Consumer::new(self.ring(), ()))
        }
    }
}

impl<T: Pod, const N: usize> Default for StaticSpsc<T, N> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(not(loom))]
mod assertions {
    use static_assertions::{assert_impl_all, assert_not_impl_any, const_assert_eq};

    use super::{Consumer, Producer, Spsc, StaticSpsc};

    const_assert_eq!(align_of::<Producer<'static, u64>>(), 128);
    const_assert_eq!(align_of::<Consumer<'static, u64>>(), 128);
    const_assert_eq!(super::SLOTS, 4 * crate::layout::LINE);
    const_assert_eq!(
        match Spsc::<[u64; 8]>::required_size(4) {
            Some(size) => size,
            None => 0,
        },
        512 + 4 * 64
    );
    const_assert_eq!(
        match Spsc::<[u64; 7]>::required_size(4) {
            Some(size) => size,
            None => 0,
        },
        512 + 4 * (8 + 56)
    );
    const_assert_eq!(
        match Spsc::<[u8; 3]>::required_size(4) {
            Some(size) => size,
            None => 0,
        },
        512 + 4 * (8 + 8)
    );

    assert_impl_all!(Producer<'static, u64>: Send);
    assert_impl_all!(Consumer<'static, u64>: Send);
    assert_not_impl_any!(Producer<'static, u64>: Sync, Clone);
    assert_not_impl_any!(Consumer<'static, u64>: Sync, Clone);
    assert_impl_all!(StaticSpsc<u64, 4>: Send, Sync);
    assert_not_impl_any!(crate::Region<'static>: Clone);
}

#[cfg(all(test, not(loom)))]
mod tests;
