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

use crate::layout::{CacheLine, ElementLayout, Fingerprint, Header, Kind};
use crate::payload::{Pod, slot_words};
use crate::region::{Control, Placed, Region, required_size};
use crate::storage::InlineSlots;
use crate::sync::{AtomicU32, Ordering, Word, const_fn_unless_loom};
use crate::wait::Event;
use crate::{AttachError, CreateError};

/// The largest capacity: counters are `u32` and wrap, so capacity <= 2^31 keeps
/// `head - tail` unambiguous.
pub const MAX_CAPACITY: u32 = 1 << 31;

/// The shared control block.
#[repr(C)]
pub(crate) struct SpscControl {
    header: Header,
    /// Elements ever pushed, wrapping. Written only by the producer (`Release`);
    /// in `tail ..= tail + capacity` unless the producer is corrupt.
    head: CacheLine<AtomicU32>,
    /// Elements ever popped, wrapping. Written only by the consumer (`Release`);
    /// in `head - capacity ..= head` unless the consumer is corrupt.
    tail: CacheLine<AtomicU32>,
    /// The consumer announces here that it will sleep until `head` moves.
    ready: CacheLine<Event>,
}

// SAFETY: `#[repr(C)]`, a `Header`, two `CacheLine<AtomicU32>` and a
// `CacheLine<Event>` (two `AtomicU32`): only atomics, size 512 (a multiple of
// 128), alignment 128.
unsafe impl Control for SpscControl {
    const KIND: Kind = Kind::Spsc;

    fn capacity_ok(capacity: u32) -> bool {
        capacity.is_power_of_two() && capacity <= MAX_CAPACITY
    }

    fn header(&self) -> &Header {
        &self.header
    }

    fn reset(&self) {
        self.head.0.store(0, Ordering::Relaxed);
        self.tail.0.store(0, Ordering::Relaxed);
        self.ready.0.reset();
    }
}

/// A validated view of a ring: control block, slots and local geometry.
///
/// Geometry is read once, when the view is made, and never re-read from shared
/// memory.
pub(crate) struct Ring<'a, T> {
    control: &'a SpscControl,
    slots: &'a [Word],
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

impl<'a, T: Pod> Ring<'a, T> {
    fn new(control: &'a SpscControl, slots: &'a [Word], capacity: u32) -> Self {
        debug_assert_eq!(slots.len(), capacity as usize * slot_words::<T>());
        Self {
            control,
            slots,
            mask: capacity - 1,
            _t: PhantomData,
        }
    }

    fn capacity(&self) -> u32 {
        self.mask + 1
    }

    /// The words of the slot for counter value `index` (masked).
    #[inline]
    fn slot(&self, index: u32) -> &'a [Word] {
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
pub struct Spsc<'a, T> {
    ring: Ring<'a, T>,
}

impl<T> fmt::Debug for Spsc<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Spsc")
            .field("capacity", &(self.ring.mask as u64 + 1))
            .finish_non_exhaustive()
    }
}

impl<'a, T: Pod> Spsc<'a, T> {
    /// Bytes a region needs for a ring of `capacity` elements of `T`, or `None`
    /// if that overflows `usize`.
    pub const fn required_size(capacity: u32) -> Option<usize> {
        required_size::<SpscControl>(ElementLayout::of::<T>(), capacity)
    }

    /// Creates an empty ring with zeroed slots in `region`, overwriting what it
    /// held.
    ///
    /// `capacity` must be a power of two from 1 to [`MAX_CAPACITY`]. Nobody may
    /// be using the region while it is created; the header is published last,
    /// so a peer attaching meanwhile sees [`AttachError::NotInitialized`].
    pub fn create(region: Region<'a>, capacity: u32) -> Result<Self, CreateError> {
        let Placed {
            control,
            slots,
            capacity,
        } = region.create::<SpscControl, T>(capacity)?;
        Ok(Self {
            ring: Ring::new(control, slots, capacity),
        })
    }

    /// Attaches to a ring another thread or process created in `region`,
    /// checking its header against `T` and the region's length.
    pub fn attach(region: Region<'a>) -> Result<Self, AttachError> {
        let Placed {
            control,
            slots,
            capacity,
        } = region.attach::<SpscControl, T>()?;
        let ring = Ring::new(control, slots, capacity);
        let head = control.head.0.load(Ordering::Acquire);
        let tail = control.tail.0.load(Ordering::Acquire);
        ring.distance(head, tail)
            .map_err(|Corrupted| AttachError::Corrupted)?;
        Ok(Self { ring })
    }

    /// Number of slots.
    pub fn capacity(&self) -> usize {
        self.ring.capacity() as usize
    }

    /// The producing side. Only one producer may use a ring at a time, across
    /// all processes; the ring cannot enforce that for other processes.
    pub fn into_producer(self) -> Producer<'a, T> {
        Producer::new(self.ring)
    }

    /// The consuming side. Only one consumer may use a ring at a time, across
    /// all processes.
    pub fn into_consumer(self) -> Consumer<'a, T> {
        Consumer::new(self.ring)
    }

    /// Both sides, for use by two threads of this process.
    pub fn split(self) -> (Producer<'a, T>, Consumer<'a, T>) {
        (Producer::new(self.ring), Consumer::new(self.ring))
    }
}

/// A ring and its slots in one value, for a `static` or a local.
///
/// `N` must be a power of two up to [`MAX_CAPACITY`] (checked at compile time).
/// Its bytes are those of a region holding a ring of capacity `N`.
///
/// ```
/// use ipc_primitives::spsc::StaticSpsc;
///
/// // Firmware keeps it in a `static` (e.g. via `static_cell`) and splits it once;
/// // here a local does.
/// let mut ring: StaticSpsc<[u8; 16], 4> = StaticSpsc::new();
/// let (mut tx, mut rx) = ring.split();
/// assert_eq!(tx.push_slice(&[[1; 16], [2; 16]]), Ok(2));
/// let mut out = [[0; 16]; 4];
/// assert_eq!(rx.pop_into(&mut out), Ok(2));
/// assert_eq!(out[1], [2; 16]);
/// ```
#[repr(C)]
pub struct StaticSpsc<T, const N: usize> {
    control: SpscControl,
    slots: InlineSlots<T, N>,
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
        /// An empty ring with zeroed slots.
        pub fn new() -> Self {
            const {
                assert!(
                    N.is_power_of_two() && N <= MAX_CAPACITY as usize,
                    "capacity must be a power of two up to 2^31"
                );
            }
            Self {
                control: SpscControl {
                    header: Header::new(Fingerprint {
                        kind: Kind::Spsc,
                        elem: ElementLayout::of::<T>(),
                        capacity: N as u32,
                    }),
                    head: CacheLine(AtomicU32::new(0)),
                    tail: CacheLine(AtomicU32::new(0)),
                    ready: CacheLine(Event::new()),
                },
                slots: InlineSlots::zeroed(),
            }
        }
    }

    /// The two sides. They borrow the ring, so it cannot be split twice at once;
    /// splitting again later resumes where the last pair stopped.
    pub fn split(&mut self) -> (Producer<'_, T>, Consumer<'_, T>) {
        let ring = Ring::new(&self.control, self.slots.words(), N as u32);
        (Producer::new(ring), Consumer::new(ring))
    }
}

impl<T: Pod, const N: usize> Default for StaticSpsc<T, N> {
    fn default() -> Self {
        Self::new()
    }
}

/// The peer left the ring's counters in a state no correct peer produces
/// (more elements than slots, or the consumer ahead of the producer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Corrupted;

impl fmt::Display for Corrupted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ring counters are corrupted: the peer is faulty or hostile")
    }
}

impl core::error::Error for Corrupted {}

/// Why a push failed; the value is handed back.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum PushError<T> {
    /// Every slot is taken.
    Full(T),
    /// The consumer's counter is impossible; see [`Corrupted`].
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
pub enum PopError {
    /// No element is waiting.
    Empty,
    /// The producer's counter is impossible; see [`Corrupted`].
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

#[cfg(not(loom))]
mod assertions {
    use core::mem::{align_of, offset_of, size_of};

    use static_assertions::{assert_impl_all, assert_not_impl_any, const_assert_eq};

    use super::{Consumer, InlineSlots, Producer, SpscControl, StaticSpsc};

    const_assert_eq!(align_of::<Producer<'static, u64>>(), 128);
    const_assert_eq!(align_of::<Consumer<'static, u64>>(), 128);

    const_assert_eq!(size_of::<SpscControl>(), 512);
    const_assert_eq!(offset_of!(SpscControl, head), 128);
    const_assert_eq!(offset_of!(SpscControl, tail), 256);
    const_assert_eq!(offset_of!(SpscControl, ready), 384);
    const_assert_eq!(offset_of!(StaticSpsc<[u64; 8], 4>, slots), 512);
    const_assert_eq!(size_of::<InlineSlots<[u64; 8], 4>>(), 4 * 64);
    const_assert_eq!(size_of::<InlineSlots<[u8; 3], 4>>(), 4 * 8);
    const_assert_eq!(size_of::<InlineSlots<u128, 2>>(), 2 * 16);

    assert_impl_all!(Producer<'static, u64>: Send);
    assert_impl_all!(Consumer<'static, u64>: Send);
    assert_not_impl_any!(Producer<'static, u64>: Sync, Clone);
    assert_not_impl_any!(Consumer<'static, u64>: Sync, Clone);
    assert_impl_all!(StaticSpsc<u64, 4>: Send, Sync);
}

#[cfg(all(test, not(loom)))]
mod tests;
