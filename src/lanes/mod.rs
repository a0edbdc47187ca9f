//! Fan-in: single-producer record lanes into one consumer.
//!
//! For a daemon that takes records from many clients, such as a logging
//! daemon: each producer [claims](Lanes::claim) a lane of its own (a
//! [record ring](crate::bytes) without header or event), writes records into
//! it without ever meeting another producer, and [releases](LaneProducer)
//! it when done. The consumer scans the lanes fairly and sleeps on one
//! doorbell that every producer rings. Not a multi-producer queue: a
//! producer that dies mid-write wedges only its own lane (a record is
//! published by one store), which the consumer reclaims once the owner is
//! known to be dead (on Linux, a lock the owner holds says so:
//! `crate::linux::lanes`).
//!
//! ```
//! use ipc_primitives::lanes::{Delivery, Lanes, PopError};
//! use ipc_primitives::{Line, Region};
//! use zerocopy::IntoBytes;
//!
//! let size = Lanes::required_size(4, 64).unwrap(); // 4 lanes of 64 words
//! let mut mem = vec![Line::ZERO; Line::count_for(size)];
//! let lanes = Lanes::create(Region::new(mem.as_mut_bytes()), 4, 64)?;
//!
//! // Each client claims a lane (here both in this process).
//! let mut alice = lanes.claim().expect("a free lane");
//! let mut bob = lanes.claim().expect("a free lane");
//! let mut daemon = lanes.into_consumer();
//!
//! alice.push(b"alice: hello")?;
//! bob.push(b"bob: hi")?;
//! alice.push(b"alice: bye")?;
//! drop(alice); // released: the consumer frees the lane once it has drained it
//!
//! let mut buf = vec![0; daemon.max_record()];
//! let mut lines = Vec::new();
//! while let Ok(Delivery { lane, len }) = daemon.pop_into(&mut buf) {
//!     lines.push((lane, String::from_utf8_lossy(&buf[..len]).into_owned()));
//! }
//! assert_eq!(lines.len(), 3);
//! assert_eq!(daemon.pop_into(&mut buf), Err(PopError::Empty));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Lanes
//! Each lane has a state word: `FREE`, `CLAIMED`, `LOCKED` or `CLOSING`,
//! with a generation counted up at each claim.
//! - [`Lanes::claim`] swaps a `FREE` lane to `CLAIMED` (compare-and-swap, so
//!   two producers never both win it); the new owner continues from the
//!   lane's positions, which are equal once the lane was drained.
//! - `LOCKED` is `CLAIMED` by an owner that holds a lock saying it is alive
//!   (on Linux, `claim_locked`): only such a claim is ever reclaimed by
//!   asking the lock (`reclaim_dead`). [`LaneState::Claimed`] shows both,
//!   with `locked` telling them apart.
//! - Releasing (dropping the [`LaneProducer`], or
//!   [`release`](LaneProducer::release)) sets `CLOSING`; the consumer
//!   delivers what is left and then sets `FREE`.
//! - [`LanesConsumer::reclaim`] sets `CLOSING` for a lane whose owner is
//!   known to be dead; its last committed records are still delivered (a
//!   record half written when the owner died was never published).
//!
//! Claiming needs compare-and-swap, so this module exists only on targets
//! that have it (`target_has_atomic = "32"`; not `thumbv6m-none-eabi`).
//!
//! # Fairness
//! The consumer serves the lanes round-robin: it takes records from the
//! current lane until it has taken the [budget](LanesConsumer::set_budget)
//! (8 by default) or the lane is empty, then moves on to the next lane. So a
//! lane with records waiting gets its next turn after at most `lanes - 1`
//! turns of other lanes, each at most `budget` records: one producer keeping
//! its lane full never starves another.
//!
//! # Protocol
//! Each lane is a record ring (see [`crate::bytes`] for the orderings of
//! its seals, `head` and `tail`). Around it:
//! - A claim's compare-and-swap is `Acquire` on success: it pairs with the
//!   consumer's `Release` swap to `FREE`, after which the lane's `head` and
//!   `tail` are final, so the new producer reads them as the consumer left
//!   them.
//! - Release swaps `CLAIMED` (or `LOCKED`) to `CLOSING` with `Release`, after the last
//!   seal and `head` store; the consumer loads the state with `Acquire`
//!   before it looks at the lane, so when it sees `CLOSING` and finds the
//!   lane empty, the lane is drained for good and it frees it.
//! - The doorbell is one [`Event`] for every producer: the consumer
//!   announces before its last scan ([`LanesConsumer::prepare_to_sleep`]);
//!   each producer checks it after each commit
//!   ([`wake_needed`](crate::bytes::Producer::wake_needed)). With several
//!   notifiers, any change of the epoch wakes the sleeper
//!   (`tests/loom_lanes.rs` checks two producers).
//!
//! # Trust
//! A producer can write anything into the region: its lane, but also other
//! lanes, the state words and the doorbell (give each producer its own
//! segment where that matters). The consumer validates each lane on its
//! own, as a record ring's consumer does, and *quarantines* a lane it finds
//! corrupt ([`PopError::Corrupted`] names it once; the lane is skipped
//! afterwards until it is released or reclaimed, when its positions are
//! reset). Every state word decodes to some state; a forged one makes the
//! consumer read, skip or free that lane, nothing worse. A producer can
//! suppress wake-ups (by clearing the doorbell): consumers of untrusted
//! producers sleep with a timeout and scan again after it. Nothing a
//! producer writes causes undefined behaviour, a panic, an out-of-bounds
//! access or a hang in the consumer.
//!
//! # Layout
//! | offset           | size         | what                                                       |
//! |------------------|--------------|------------------------------------------------------------|
//! | 0                | 128          | [header](crate::layout): kind `Lanes`, element 8 bytes in 8-byte slots, capacity `lanes << 16 \| log2(words)` |
//! | 128              | 128          | `doorbell`: [`Event`] the consumer sleeps on                |
//! | 256              | 256          | lane table: one `u32` state per lane, [`MAX_LANES`] slots: bits 0-1 `FREE` 0, `CLAIMED` 1, `CLOSING` 2, `LOCKED` 3 (claimed, its owner holds a lock); bits 2-31 the generation |
//! | 512 + i x stride | 128          | lane `i`'s `head`: `u32`, words published (its producer)   |
//! | + 128            | 128          | lane `i`'s `tail`: `u32`, words consumed (the consumer)    |
//! | + 256            | words x 8    | lane `i`'s data words, as in [`crate::bytes`]              |
//!
//! `stride` is `256 + words * 8` rounded up to 128, so every lane starts on
//! its own line.

mod consumer;
mod producer;

use core::fmt;

pub use consumer::{Delivery, LanesConsumer};
pub use producer::LaneProducer;

use crate::bytes::{self, Ring};
use crate::event::Event;
use crate::header::Fingerprint;
use crate::layout::{ElementLayout, Kind, LINE};
use crate::region::{Memory, ReadRegion, Region, Structure};
use crate::sync::{AtomicU32, Ordering};
use crate::{AttachError, CreateError};

/// The most lanes a lane set has.
pub const MAX_LANES: usize = 64;

/// Byte offset of the doorbell.
const DOORBELL: usize = 128;
/// Byte offset of the lane table.
const TABLE: usize = 256;
/// Byte offset of the first lane.
const FIRST_LANE: usize = 512;

/// The element layout the header records: 8-byte words.
const ELEM: ElementLayout = ElementLayout::of::<[u8; 8]>();

/// A lane's state: bits 0-1 of its state word.
const STATE_MASK: u32 = 3;
/// No producer; the lane is drained.
const FREE: u32 = 0;
/// A producer owns the lane.
const CLAIMED: u32 = 1;
/// The producer is gone; the consumer drains the lane, then frees it.
const CLOSING: u32 = 2;
/// A producer owns the lane and holds a lock that says it is alive (see
/// `crate::linux::lanes`): `CLAIMED`, reclaimable by asking the lock.
const LOCKED: u32 = 3;
/// One generation: bits 2-31.
const GENERATION: u32 = 4;

/// Whether state word `state` shows a claim, `CLAIMED` or `LOCKED`.
const fn is_claimed(state: u32) -> bool {
    matches!(state & STATE_MASK, CLAIMED | LOCKED)
}

/// The header's capacity field for `lanes` lanes of `words` words, if both
/// are valid.
const fn pack(lanes: usize, words: u32) -> Option<u32> {
    if lanes == 0 || lanes > MAX_LANES || !bytes::capacity_ok(words) {
        return None;
    }
    // At most 64 << 16: fits.
    Some((lanes as u32) << 16 | words.trailing_zeros())
}

/// The lane count and words per lane a header's capacity field packs, if
/// valid.
const fn unpack(capacity: u32) -> Option<(usize, u32)> {
    let lanes = (capacity >> 16) as usize;
    let log = capacity & 0xffff;
    if log >= 32 {
        return None;
    }
    let words = 1 << log;
    if lanes == 0 || lanes > MAX_LANES || !bytes::capacity_ok(words) {
        return None;
    }
    Some((lanes, words))
}

/// Bytes from one lane to the next for lanes of `words` words.
const fn lane_stride(words: u32) -> usize {
    2 * LINE + (words as usize * bytes::WORD).next_multiple_of(LINE)
}

/// Bytes a lane set of `lanes` lanes of `words` words takes, if that fits in
/// `usize`.
const fn size(lanes: usize, words: u32) -> Option<usize> {
    match lane_stride(words).checked_mul(lanes) {
        Some(all) => all.checked_add(FIRST_LANE),
        None => None,
    }
}

/// A lane set's view: its memory and geometry, checked when the view was
/// made. Lanes are viewed on demand.
#[derive(Clone, Copy)]
pub(crate) struct View<'a> {
    memory: Memory<'a>,
    doorbell: &'a Event,
    lanes: usize,
    words: u32,
}

// SAFETY: as for the record ring's view: atomics, and (under loom) cells
// whose accesses loom checks.
#[cfg(loom)]
unsafe impl Send for View<'_> {}

impl<'a> View<'a> {
    /// Lane `lane`'s ring, `lane < self.lanes`.
    fn ring(&self, lane: usize) -> Ring<'a> {
        assert!(lane < self.lanes, "lane {lane} of {}", self.lanes);
        let base = FIRST_LANE + lane * lane_stride(self.words);
        // SAFETY: the memory holds `size(lanes, words)` bytes (the view's
        // invariant) and `lane < lanes`, so the lane's two lines and data
        // words are in bounds; each is aligned (lines of 128) and used with
        // one type only.
        unsafe { Ring::new(self.memory, base, base + LINE, base + 2 * LINE, self.words) }
    }

    /// The address of the lane set's first byte, and its length in bytes.
    #[cfg(all(feature = "linux", target_os = "linux", not(loom)))]
    pub(crate) fn span(&self) -> (usize, usize) {
        (self.memory.as_ptr().as_ptr().addr(), self.memory.len())
    }

    /// Lanes, and words per lane.
    pub(crate) fn geometry(&self) -> (usize, u32) {
        (self.lanes, self.words)
    }

    /// Lane `lane`'s state as its word shows it now (`None` past the last
    /// lane).
    pub(crate) fn lane_state(&self, lane: usize) -> Option<LaneState> {
        (lane < self.lanes).then(|| LaneState::of(self.state(lane).load(Ordering::Acquire)))
    }

    /// Lane `lane`'s state, counters, and whether they count a possible
    /// number of words (`None` past the last lane): what
    /// [`crate::inspect`] shows. Reads only.
    pub(crate) fn inspect_lane(&self, lane: usize) -> Option<(LaneState, bytes::Counters, bool)> {
        let state = self.lane_state(lane)?;
        let (counters, possible) = self.ring(lane).inspect(self.doorbell);
        Some((state, counters, possible))
    }

    /// Lane `lane`'s state word, `lane < self.lanes`.
    fn state(&self, lane: usize) -> &'a AtomicU32 {
        assert!(lane < self.lanes, "lane {lane} of {}", self.lanes);
        // SAFETY: the table holds `MAX_LANES >= lanes` `u32`s within the
        // control lines.
        unsafe { self.memory.u32_at(TABLE + 4 * lane) }
    }
}

/// The lane set as a kind of structure in a region.
struct Shape;

// SAFETY: `Structure`'s conditions, by number:
// 1. `view` reaches the doorbell at 128..136 and, through `View`, the lane
//    table at `TABLE .. FIRST_LANE` and `lanes` lanes of `lane_stride(words)`
//    bytes from `FIRST_LANE` = 512: exactly `size(lanes, words)`, which
//    `Self::size` reports for the packed capacity (`assertions` pins it).
// 2. Only through `event_at`, `u32_at` (`View::state`) and the record ring's
//    `Ring::new` (`View::ring`), at offsets aligned for their types: the
//    table's `u32`s at `TABLE + 4 * lane`, each lane's lines at multiples of
//    128, in bounds by 1.
// 3. The doorbell, the table and each lane's `head`, `tail` and data lie in
//    disjoint ranges (`lane_stride` covers a lane's two lines and its data).
// 4. `CONTROL` = `FIRST_LANE` = 4 lines, and `size` is overridden: each lane
//    starts at a multiple of 128 (`lane_stride` is rounded up to a line), so
//    its data words are 8-aligned.
// 5. Offsets come from `lanes` and `words`, unpacked from the capacity the
//    view was made for, and constants; never re-read.
unsafe impl Structure for Shape {
    type View<'a> = View<'a>;
    const KIND: Kind = Kind::Lanes;
    const CONTROL: usize = FIRST_LANE;
    const SLOT_OVERHEAD: usize = 0;

    fn capacity_ok(capacity: u32) -> bool {
        unpack(capacity).is_some()
    }

    fn size(_: ElementLayout, capacity: u32) -> Option<usize> {
        let (lanes, words) = unpack(capacity)?;
        size(lanes, words)
    }

    unsafe fn view(memory: Memory<'_>, _: ElementLayout, capacity: u32) -> View<'_> {
        // `capacity_ok` passed before any view is made.
        let (lanes, words) = unpack(capacity).unwrap_or((0, 0));
        View {
            // SAFETY: the memory is aligned and holds at least the control
            // lines (the caller's guarantee).
            doorbell: unsafe { memory.event_at(DOORBELL) },
            memory,
            lanes,
            words,
        }
    }

    fn init(view: &View<'_>) {
        view.doorbell.reset();
        for lane in 0..view.lanes {
            view.state(lane).store(FREE, Ordering::Relaxed);
            view.ring(lane).init();
        }
    }
}

/// The view of the lane set in `region`, its header validated as
/// [`Lanes::attach`] does: for [`crate::inspect`], which only reads.
pub(crate) fn inspect(region: ReadRegion<'_>) -> Result<View<'_>, AttachError> {
    region.attach::<Shape>(ELEM).map(|(view, ())| view)
}

/// A lane set in a [`Region`]: claim lanes from it, or turn it into the
/// consumer.
///
/// `K` keeps the region's memory alive, as for
/// [`Spsc`](crate::spsc::Spsc); every lane producer holds a clone.
pub struct Lanes<'a, K = ()> {
    pub(crate) view: View<'a>,
    keeper: K,
}

impl<K> fmt::Debug for Lanes<'_, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lanes")
            .field("lanes", &self.view.lanes)
            .field("capacity", &self.view.words)
            .finish_non_exhaustive()
    }
}

impl<'a> Lanes<'a> {
    /// Bytes a region needs for `lanes` lanes of `words` words each, or
    /// `None` if `lanes` is not from 1 to [`MAX_LANES`], `words` not a valid
    /// [record ring capacity](crate::bytes::MIN_CAPACITY), or the size
    /// overflows `usize`.
    pub const fn required_size(lanes: usize, words: u32) -> Option<usize> {
        match pack(lanes, words) {
            Some(_) => size(lanes, words),
            None => None,
        }
    }

    /// Creates `lanes` free, empty lanes of `words` words each in `region`,
    /// overwriting what it held. Nobody may be using the region meanwhile.
    ///
    /// # Errors
    /// [`CreateError::InvalidCapacity`] with `lanes` if it is not from 1 to
    /// [`MAX_LANES`], or with `words` if it is not a power of two from
    /// [`bytes::MIN_CAPACITY`] to [`bytes::MAX_CAPACITY`];
    /// [`CreateError::Fit`] if the region is misaligned or shorter than
    /// [`required_size`](Self::required_size).
    pub fn create<K>(
        region: Region<'a, K>,
        lanes: usize,
        words: u32,
    ) -> Result<Lanes<'a, K>, CreateError> {
        if lanes == 0 || lanes > MAX_LANES {
            return Err(CreateError::InvalidCapacity {
                capacity: u32::try_from(lanes).unwrap_or(u32::MAX),
            });
        }
        let capacity =
            pack(lanes, words).ok_or(CreateError::InvalidCapacity { capacity: words })?;
        let (view, keeper) = region.create::<Shape>(Fingerprint {
            kind: Kind::Lanes,
            elem: ELEM,
            capacity,
            tag: 0,
        })?;
        Ok(Lanes { view, keeper })
    }

    /// Attaches to a lane set another process (or mapping) created in
    /// `region`, checking its header against the region's length. Lanes are
    /// not checked here: the consumer checks each as it reads it.
    ///
    /// # Errors
    /// The first mismatch found, as an [`AttachError`].
    pub fn attach<K>(region: Region<'a, K>) -> Result<Lanes<'a, K>, AttachError> {
        let (view, keeper) = region.attach::<Shape>(ELEM)?;
        Ok(Lanes { view, keeper })
    }
}

impl<'a, K> Lanes<'a, K> {
    /// Number of lanes.
    pub fn lanes(&self) -> usize {
        self.view.lanes
    }

    /// Capacity of each lane, in words.
    pub fn capacity(&self) -> usize {
        self.view.words as usize
    }

    /// The largest record, in bytes: [`bytes::max_record`] of a lane's
    /// capacity.
    pub fn max_record(&self) -> usize {
        bytes::max_record(self.view.words)
    }

    /// The state of lane `lane` as its state word shows it now (`None` past
    /// the last lane).
    pub fn state(&self, lane: usize) -> Option<LaneState> {
        self.view.lane_state(lane)
    }

    /// Lane `lane`'s shared counters (`None` past the last lane), read
    /// without claiming it (so without writing anything): what an inspect tool
    /// shows. Their `wakes` are the shared doorbell's.
    pub fn lane_counters(&self, lane: usize) -> Option<bytes::Counters> {
        (lane < self.view.lanes).then(|| self.view.ring(lane).counters(self.view.doorbell))
    }

    /// Claims the first free lane: its producer, or `None` if every lane is
    /// taken.
    pub fn claim(&self) -> Option<LaneProducer<'a, K>>
    where
        K: Clone,
    {
        (0..self.view.lanes).find_map(|lane| self.claim_lane(lane))
    }

    /// Claims lane `lane` if it is free: its producer, or `None` if it is
    /// taken (or past the last lane).
    pub fn claim_lane(&self, lane: usize) -> Option<LaneProducer<'a, K>>
    where
        K: Clone,
    {
        self.claim_lane_as(lane, false)
    }

    /// Claims lane `lane` if it is free, as `LOCKED` if `locked` (the
    /// caller already holds the lane's lock), else as `CLAIMED`.
    pub(crate) fn claim_lane_as(&self, lane: usize, locked: bool) -> Option<LaneProducer<'a, K>>
    where
        K: Clone,
    {
        let mark = if locked { LOCKED } else { CLAIMED };
        if lane >= self.view.lanes {
            return None;
        }
        let word = self.view.state(lane);
        let seen = word.load(Ordering::Relaxed);
        if seen & STATE_MASK != FREE {
            return None;
        }
        let claimed = (seen & !STATE_MASK).wrapping_add(GENERATION) | mark;
        // `Acquire`: pairs with the consumer's `Release` swap to `FREE`, after
        // which the lane's positions are final.
        word.compare_exchange(seen, claimed, Ordering::Acquire, Ordering::Relaxed)
            .ok()?;
        Some(LaneProducer::new(
            bytes::Producer::new(
                self.view.ring(lane),
                self.view.doorbell,
                self.keeper.clone(),
            ),
            self.view.doorbell,
            word,
            claimed,
            lane,
        ))
    }

    /// The consumer of every lane. One per lane set, across all processes.
    pub fn into_consumer(self) -> LanesConsumer<'a, K> {
        LanesConsumer::new(self.view, self.keeper)
    }

    /// The doorbell the consumer sleeps on.
    pub fn doorbell(&self) -> &Event {
        self.view.doorbell
    }

    /// What keeps the region's memory alive.
    pub fn keeper(&self) -> &K {
        &self.keeper
    }
}

/// What a lane's state word shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum LaneState {
    /// No producer; the lane is drained.
    Free {
        /// Claims of the lane so far (wrapping at 2^30).
        generation: u32,
    },
    /// A producer owns the lane.
    Claimed {
        /// Claims of the lane so far, this one included.
        generation: u32,
        /// Whether the owner claimed it holding a lock that says it is alive
        /// (on Linux, `claim_locked`; state `LOCKED`): only such a lane is
        /// reclaimed when the lock is free (`reclaim_dead`).
        locked: bool,
    },
    /// The producer released the lane (or was reclaimed); the consumer
    /// drains it, then frees it.
    Closing {
        /// Claims of the lane so far.
        generation: u32,
    },
}

impl LaneState {
    fn of(word: u32) -> Self {
        let generation = word >> 2;
        match word & STATE_MASK {
            FREE => Self::Free { generation },
            CLOSING => Self::Closing { generation },
            mark => Self::Claimed {
                generation,
                locked: mark == LOCKED,
            },
        }
    }
}

/// Why [`LanesConsumer::pop_into`] returned no record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum PopError {
    /// No lane has a record waiting.
    Empty,
    /// The next record of `lane` is longer than the buffer; it stays there,
    /// and the next pop tries it again.
    TooSmall {
        /// The lane.
        lane: usize,
        /// The record's length in bytes.
        needed: usize,
    },
    /// Lane `lane`'s producer broke the protocol (see
    /// [`Corrupted`](crate::Corrupted)); the lane is quarantined until it is
    /// released or [reclaimed](LanesConsumer::reclaim).
    Corrupted {
        /// The lane.
        lane: usize,
    },
}

impl fmt::Display for PopError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Empty => f.write_str("every lane is empty"),
            Self::TooSmall { lane, needed } => write!(
                f,
                "buffer too small for the next record of lane {lane}, of {needed} bytes"
            ),
            Self::Corrupted { lane } => write!(
                f,
                "lane {lane} is corrupted: its producer is faulty or hostile"
            ),
        }
    }
}

impl core::error::Error for PopError {}

/// Why a blocking pop (the Linux adapters' `pop_blocking`) returned no
/// record: what [`PopError`] says (never `Empty`), or the sleeper gave up
/// with `E` (a timeout, a failed system call).
///
/// Transparent: each variant prints, and has the [`source`] of, what it holds.
///
/// [`source`]: core::error::Error::source
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum BlockingError<E> {
    /// See [`PopError::TooSmall`].
    TooSmall {
        /// The lane.
        lane: usize,
        /// The record's length in bytes.
        needed: usize,
    },
    /// See [`PopError::Corrupted`].
    Corrupted {
        /// The lane.
        lane: usize,
    },
    /// The sleeper gave up: what it returned.
    Sleep(E),
}

impl<E: fmt::Display> fmt::Display for BlockingError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooSmall { lane, needed } => fmt::Display::fmt(
                &PopError::TooSmall {
                    lane: *lane,
                    needed: *needed,
                },
                f,
            ),
            Self::Corrupted { lane } => fmt::Display::fmt(&PopError::Corrupted { lane: *lane }, f),
            Self::Sleep(err) => fmt::Display::fmt(err, f),
        }
    }
}

impl<E: core::error::Error> core::error::Error for BlockingError<E> {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Sleep(err) => err.source(),
            Self::TooSmall { .. } | Self::Corrupted { .. } => None,
        }
    }
}

#[cfg(not(loom))]
mod assertions {
    use static_assertions::{assert_impl_all, assert_not_impl_any, const_assert_eq};

    use super::{LaneProducer, Lanes, LanesConsumer};

    // The lane table fills the two lines before the first lane.
    const_assert_eq!(super::TABLE + 4 * super::MAX_LANES, super::FIRST_LANE);
    const_assert_eq!(super::lane_stride(4), 384);
    const_assert_eq!(super::lane_stride(16), 384);
    const_assert_eq!(super::lane_stride(64), 768);
    const_assert_eq!(
        match Lanes::required_size(4, 64) {
            Some(size) => size,
            None => 0,
        },
        512 + 4 * 768
    );

    assert_impl_all!(LaneProducer<'static>: Send);
    assert_impl_all!(LanesConsumer<'static>: Send);
    assert_not_impl_any!(LaneProducer<'static>: Sync, Clone);
    assert_not_impl_any!(LanesConsumer<'static>: Sync, Clone);
}

#[cfg(all(test, not(loom)))]
mod tests;
