//! A single-producer single-consumer ring of fixed-size elements.
//!
//! The fast path between two threads, an interrupt handler and a main loop, or
//! two processes. The producer and consumer each keep their own index and a
//! cached copy of the other's, so a push or pop touches the other side's cache
//! line only when the cached copy says the ring looks full (or empty).
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
//! Two shared counters, each written by one side only: `head`, the elements
//! ever pushed (the producer's), and `tail`, the elements ever popped (the
//! consumer's), both `u32` and wrapping. Element `i` lives in slot
//! `i & (capacity - 1)`; the slots of `tail .. head` belong to the consumer
//! (written, not yet read), the others to the producer. Each side keeps its
//! own counter in its handle (the shared one is the copy it publishes) and a
//! cached copy of the other's, re-read only when the cache says the ring is
//! full (or empty). Payloads are copied in and out as relaxed atomic words.
//!
//! | access | ordering | pairs with | without it |
//! |---|---|---|---|
//! | producer publishes `head` | `Release` | the consumer's load of `head` | the consumer could copy a slot before the payload stores reach it: a stale or torn element |
//! | consumer loads `head` | `Acquire` | the producer's store of `head` | as above |
//! | consumer publishes `tail` | `Release` | the producer's load of `tail` | the producer could overwrite a slot the consumer is still copying out |
//! | producer loads `tail` | `Acquire` | the consumer's store of `tail` | as above |
//! | a new side loads its own counter | `Acquire` | its predecessor's store of that counter | see below |
//!
//! A side made after an earlier one (a ring split again, a process that
//! attaches to take a side over) loads its own counter with `Acquire`, so that
//! the `Release` stores it makes later carry its predecessor's slot accesses
//! to the peer. Happens-before passes through an acquire followed by a release
//! in one thread, but a plain store by another thread does not continue a
//! release sequence: without it, a consumer that only ever sees the new
//! producer's `head` could copy elements the old producer wrote without those
//! writes happening before its reads (and a producer could overwrite slots the
//! old consumer was still copying). A new producer also loads `tail` with
//! `Acquire`: it frees slots on that cached value without loading it again.
//!
//! Creating a ring zeroes the counters and slots with relaxed stores; the
//! region's header, stored last with `Release` and loaded with `Acquire` by
//! `attach`, publishes them. Blocking adds the [`event`](crate::event)
//! protocol on `ready`: the consumer announces itself and re-checks `head`,
//! the producer asks after each publish; its two `SeqCst` fences are
//! explained there. Each ordering site in `producer.rs` and `consumer.rs`
//! names its pair; `tests/loom.rs` and `tests/loom_wait.rs` model-check them.
//!
//! # Trust
//! The peer may be another process that writes anything into the ring at any
//! time. Every index is masked; a consumer that sees more elements than slots, or
//! a producer that sees the consumer ahead of it, reports [`Corrupted`]. A
//! hostile producer can make the consumer read garbage *values* (any bit pattern
//! is a valid payload), never cause undefined behaviour, a panic or a hang.
//!
//! # Layout
//! | offset | size               | what                                      |
//! |--------|--------------------|-------------------------------------------|
//! | 0      | 128                | [header](crate::layout)                   |
//! | 128    | 128                | `head`: `u32`, elements pushed (producer) |
//! | 256    | 128                | `tail`: `u32`, elements popped (consumer) |
//! | 384    | 128                | `ready`: [`Event`] the consumer sleeps on |
//! | 512    | capacity x slot    | slots, each `size_of::<T>()` rounded to 8 |

mod consumer;
mod producer;

use core::{fmt, marker::PhantomData};

pub use consumer::Consumer;
pub use producer::{Grant, OutOfBounds, Producer};

use crate::Corrupted;
use crate::event::Event;
use crate::header::Fingerprint;
use crate::layout::{ElementLayout, Kind, LINE};
use crate::payload::{Pod, slot_words};
use crate::region::{Memory, Region, Structure, required_size};
use crate::storage::StaticMemory;
use crate::sync::{AtomicU32, Ordering, SlotWord, WordCell, const_fn_unless_loom, if_take_flag};
use crate::{AttachError, CreateError};

/// The largest capacity: counters are `u32` and wrap, so capacity <= 2^31 keeps
/// `head - tail` unambiguous.
pub const MAX_CAPACITY: u32 = 1 << 31;

/// Whether a ring may have `capacity` slots: a power of two up to
/// [`MAX_CAPACITY`]. One rule for `create`, `attach` and `required_size`.
const fn capacity_ok(capacity: u32) -> bool {
    capacity.is_power_of_two() && capacity <= MAX_CAPACITY
}

/// Byte offset of `head`.
const HEAD: usize = 128;
/// Byte offset of `tail`.
const TAIL: usize = 256;
/// Byte offset of the consumer's wake-up event.
const READY: usize = 384;
/// Byte offset of the first slot.
const SLOTS: usize = 512;

/// A validated view of a ring: its shared words and its local geometry.
///
/// Geometry is read once, when the view is made, and never re-read from shared
/// memory.
pub(crate) struct Ring<'a, T> {
    /// Elements ever pushed, wrapping. Written only by the producer (`Release`);
    /// in `tail ..= tail + capacity` unless the producer is corrupt.
    head: &'a AtomicU32,
    /// Elements ever popped, wrapping. Written only by the consumer (`Release`);
    /// in `head - capacity ..= head` unless the consumer is corrupt.
    tail: &'a AtomicU32,
    /// The consumer announces here that it will sleep until `head` moves.
    ready: &'a Event,
    /// `capacity * slot_words::<T>()` words.
    slots: &'a [SlotWord],
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

// SAFETY: the view holds references to atomics (and, under loom, to cells whose
// accesses loom checks); the ring's protocol gives each slot to one side at a
// time, and a hostile peer's writes are atomic accesses, never data races here.
#[cfg(loom)]
unsafe impl<T> Send for Ring<'_, T> {}

/// The ring as a kind of structure in a region.
struct Shape<T>(PhantomData<T>);

// SAFETY: `Structure`'s conditions, by number:
// 1. `view` reaches `head` at 128..132, `tail` at 256..260, `ready` at
//    384..392 and the slots at `SLOTS .. SLOTS + capacity * stride`, which is
//    `required_size` (`SLOT_OVERHEAD` is 0); `assertions` pins `SLOTS` and
//    `required_size` for two element types.
// 2. Only through `u32_at`, `event_at` and `slot_words_at`, at offsets that
//    are multiples of 128 and so aligned, in bounds by 1; no other reference.
// 3. The three control words lie on three separate lines, and the slots after
//    them.
// 4. `CONTROL` = `SLOTS` = 4 lines (`const_assert_eq!(SLOTS, 4 * LINE)`);
//    `elem` is always `ElementLayout::of::<T>()` (`create`, `attach`,
//    `StaticSpsc`), whose stride is a multiple of 8.
// 5. Offsets are constants or `SLOTS + (index & mask) * stride`, with `mask`
//    from the `capacity` the view was made for (`Ring::slot`), never re-read.
unsafe impl<T: Pod> Structure for Shape<T> {
    type View<'a> = Ring<'a, T>;
    const KIND: Kind = Kind::Spsc;
    const CONTROL: usize = SLOTS;
    const SLOT_OVERHEAD: usize = 0;

    fn capacity_ok(capacity: u32) -> bool {
        capacity_ok(capacity)
    }

    unsafe fn view(memory: Memory<'_>, elem: ElementLayout, capacity: u32) -> Ring<'_, T> {
        let bytes = capacity as usize * elem.stride as usize;
        // SAFETY: the memory is aligned and holds `SLOTS + bytes` bytes (the
        // caller's guarantee); each offset is aligned for its type.
        unsafe {
            Ring {
                head: memory.u32_at(HEAD),
                tail: memory.u32_at(TAIL),
                ready: memory.event_at(READY),
                slots: memory.slot_words_at(SLOTS, bytes),
                mask: capacity - 1,
                _t: PhantomData,
            }
        }
    }

    fn init(ring: &Ring<'_, T>) {
        // Relaxed: the header, stored after this with `Release`, publishes
        // the zeroes to an attacher, whose `Acquire` load of it pairs with it.
        ring.head.store(0, Ordering::Relaxed);
        ring.tail.store(0, Ordering::Relaxed);
        ring.ready.reset();
        for word in ring.slots {
            word.set(0);
        }
    }
}

impl<'a, T: Pod> Ring<'a, T> {
    fn capacity(&self) -> u32 {
        self.mask + 1
    }

    /// The words of the slot for counter value `index` (masked).
    #[inline]
    fn slot(&self, index: u32) -> &'a [SlotWord] {
        let words = slot_words::<T>();
        let start = (index & self.mask) as usize * words;
        // In bounds: `slots` holds `capacity * words` words and the masked index
        // is below `capacity`; `get` keeps a corrupt geometry from panicking.
        self.slots.get(start..start + words).unwrap_or(&[])
    }

    /// Elements between `tail` and `head` if that is a possible count.
    #[inline]
    fn distance(&self, head: u32, tail: u32) -> Result<u32, Corrupted> {
        let used = head.wrapping_sub(tail);
        if used > self.capacity() {
            Err(Corrupted)
        } else {
            Ok(used)
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
        let (ring, keeper) = region.attach::<Shape<T>>(ElementLayout::of::<T>(), 0)?;
        // Only checked here, never used to reach a slot: the sides load the
        // counters again when they are made. `Acquire` (pairing with the
        // sides' `Release` stores) as everywhere the counters are read.
        let head = ring.head.load(Ordering::Acquire);
        let tail = ring.tail.load(Ordering::Acquire);
        ring.distance(head, tail)
            .map_err(|Corrupted| AttachError::Corrupted)?;
        Ok(Spsc { ring, keeper })
    }
}

impl<'a, T: Pod, K> Spsc<'a, T, K> {
    /// Number of slots.
    pub fn capacity(&self) -> u32 {
        self.ring.capacity()
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
/// Its bytes are those of a region holding a ring of capacity `N`. A new ring
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
    memory: StaticMemory<T, N, { SLOTS / LINE }>,
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
                    "capacity must be a power of two up to 2^31"
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

/// Why a push failed; the value is handed back.
#[derive(Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PushError<T> {
    /// Every slot is taken.
    Full(T),
    /// The consumer's counter is impossible; see [`Corrupted`] (whose text
    /// this prints).
    Corrupted(T),
}

impl<T> PushError<T> {
    /// The value that was not pushed.
    pub fn into_inner(self) -> T {
        match self {
            Self::Full(value) | Self::Corrupted(value) => value,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Self::Full(_) => "Full",
            Self::Corrupted(_) => "Corrupted",
        }
    }
}

impl<T> fmt::Debug for PushError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}(..)", self.kind())
    }
}

impl<T> fmt::Display for PushError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full(_) => f.write_str("ring is full"),
            Self::Corrupted(_) => fmt::Display::fmt(&Corrupted, f),
        }
    }
}

impl<T> core::error::Error for PushError<T> {}

#[cfg(feature = "defmt")]
impl<T> defmt::Format for PushError<T> {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "{=str}(..)", self.kind())
    }
}

/// Why a pop failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum PopError {
    /// No element is waiting.
    Empty,
    /// The producer's counter is impossible; see [`Corrupted`] (whose text
    /// this prints).
    Corrupted,
}

impl fmt::Display for PopError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("ring is empty"),
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

/// Why a blocking pop ([`Consumer::pop_or_sleep`], and the Linux adapters'
/// `pop_blocking`) returned without an element: the ring is corrupt, or the
/// sleeper gave up with `E` (a timeout, a failed system call).
///
/// Transparent: each variant prints, and has the [`source`] of, what it holds.
///
/// [`source`]: core::error::Error::source
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum BlockingPopError<E> {
    /// The producer's counter is impossible; see [`Corrupted`].
    Corrupted,
    /// The sleeper gave up: what it returned.
    Sleep(E),
}

impl<E: fmt::Display> fmt::Display for BlockingPopError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Corrupted => fmt::Display::fmt(&Corrupted, f),
            Self::Sleep(err) => fmt::Display::fmt(err, f),
        }
    }
}

impl<E: core::error::Error> core::error::Error for BlockingPopError<E> {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Corrupted => None,
            Self::Sleep(err) => err.source(),
        }
    }
}

impl<E> From<Corrupted> for BlockingPopError<E> {
    fn from(Corrupted: Corrupted) -> Self {
        Self::Corrupted
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
        match Spsc::<[u8; 3]>::required_size(4) {
            Some(size) => size,
            None => 0,
        },
        512 + 4 * 8
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
