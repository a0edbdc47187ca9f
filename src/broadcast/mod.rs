//! A one-writer, many-reader broadcast ring: each reader receives every
//! message, in order, unless it falls a whole ring behind, and then it is told
//! exactly how many it missed. The writer never waits for readers, never reads
//! their state, and is never slowed by a slow, stopped or dead one.
//!
//! The market-data case: a publisher fans ticks out to reader processes. Each
//! reader keeps its own cursor, in its own memory; readers that only poll
//! never write shared memory, so they can map it read-only
//! ([`Broadcast::attach_reader`]) and cannot disturb the writer or each other.
//!
//! ```
//! use ipc_primitives::broadcast::{Broadcast, RecvError, Start};
//! use ipc_primitives::{Line, Region};
//! use zerocopy::IntoBytes;
//!
//! let len = Broadcast::<u64>::required_size(4).ok_or("ring too large")?;
//! let mut memory = vec![Line::ZERO; Line::count_for(len)];
//! let mut writer = Broadcast::<u64>::create(Region::new(memory.as_mut_bytes()), 4)?
//!     .into_writer();
//! let mut early = writer.reader(Start::Oldest);
//! for tick in 1..=3 {
//!     writer.publish(&tick);
//! }
//! // A late joiner starts at the newest message.
//! let mut late = writer.reader(Start::Newest);
//! assert_eq!(late.try_recv(), Ok(3));
//! assert_eq!(early.try_recv(), Ok(1));
//!
//! // Three more: the ring keeps the last 3 whole, so `early` (about to read
//! // tick 2 of 6) has lost ticks 2 and 3, and is told so.
//! for tick in 4..=6 {
//!     writer.publish(&tick);
//! }
//! assert_eq!(early.try_recv(), Err(RecvError::Lagged { missed: 2 }));
//! assert_eq!((early.try_recv(), early.try_recv()), (Ok(4), Ok(5)));
//! assert_eq!((early.try_recv(), early.try_recv()), (Ok(6), Err(RecvError::Empty)));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Joining and losing messages
//! A reader joins at a [`Start`]: the newest message published, the oldest
//! still whole in the ring, or only what comes next. The ring holds
//! `capacity` slots, and keeps the last [`retained`](Reader::retained)
//! messages whole: `capacity - 1` with stamped slots (the writer may be
//! rewriting the slot of the one after), and with counted slots (elements
//! over 56 bytes) `capacity - k`, `k` = min(16, capacity / 2), the writer
//! announcing `k` messages at a time (see [Protocol](#protocol)). A reader
//! that falls further behind gets [`RecvError::Lagged`] with the exact number
//! of messages it skips, and resumes at the oldest message still whole (or,
//! as [`Reader::on_lag`] asks, at the newest, or at the next one). No loss
//! is ever silent: every gap in what a reader receives is reported by
//! `Lagged` results whose counts add up to it (one, unless the writer
//! laps the reader again while it resumes).
//!
//! Positions are `u32` and wrap. A reader stopped for more than 2^31
//! messages can no longer tell a lap from a writer that went backwards: it
//! reports [`RecvError::Corrupted`] and resumes after the newest message.
//!
//! # Protocol
//! Two protocols, chosen by the element's stride, as in the
//! [SPSC ring](crate::spsc#protocol). Up to 56 bytes, each slot carries a
//! stamp beside the message, in the same 64-byte line: a reader learns from
//! the line it copies whether the copy is whole, so a message costs one line
//! transfer. A larger message spans two lines whatever is added to it; its
//! slots carry no stamp, and readers validate their copies against the
//! writer's `intent` counter instead, once per batch (the way Aeron's
//! broadcast buffer does): a reader that drains many messages loads one
//! control line per batch rather than one stamp per message.
//!
//! ## Stamped slots (stride up to 56)
//! Each slot has a `stamp`: `p + 1` once it holds message `p` whole, and
//! `!(p + 1)` while message `p` is being written into it (never a whole
//! stamp of a message of that slot, because the capacity is even).
//!
//! The writer, for message `p` (its position is its own, never read back):
//! 1. stores the busy stamp `!(p + 1)` with `Release`: a reader that sees it
//!    then sees `published` at `p` or later (pairs with the reader's
//!    `Acquire` fence after a stamp load), so it knows it was lapped;
//! 2. issues a `Release` fence: a reader whose copy saw any word stored
//!    below re-reads the stamp as busy or later (pairs with the reader's
//!    `Acquire` fence after its copy);
//! 3. stores the payload words, relaxed;
//! 4. stores the stamp `p + 1` with `Release` (pairs with the reader's
//!    `Acquire` fence after its first stamp load: the copy sees the payload),
//!    then `published = p + 1` with `Release` (pairs with the reader's
//!    `Acquire` fence after loading it: its next stamp load sees `p + 1` or
//!    later);
//! 5. with [`Writer::wake_needed`], after a message or a batch: a `SeqCst`
//!    fence and a look at the doorbell (the [event](crate::event) protocol).
//!
//! A reader at cursor `c` (its own), in [`Reader::try_recv`]:
//! 1. loads the stamp (relaxed, then an `Acquire` fence); if it is `c + 1`,
//!    copies the payload, issues an `Acquire` fence and loads the stamp
//!    again: still `c + 1` means the copy is whole;
//! 2. otherwise loads `published` (relaxed, then an `Acquire` fence):
//!    nothing new (`published` at `c`, or at `c - 1`: a reader that received
//!    message `c - 1` through its stamp may load `published` from before
//!    the writer stored it) is `Empty`; at least `capacity` ahead is a lap
//!    (`Lagged`); further behind the reader, or more than 2^31 ahead, is
//!    `Corrupted`; otherwise message `c` is published and not being
//!    rewritten, so step 1 runs once more, and a stamp still not `c + 1`
//!    after it (with `published` not showing a lap) is `Corrupted`.
//!
//! At most two passes. `published` is stored after every message (batches
//! included), so that it always bounds the slot the writer may be
//! rewriting. [`Reader::recv_slice`] receives message by message.
//!
//! ## Counted slots (stride above 56)
//! The writer, for message `p`:
//! 1. stores `intent = p + 1` with `Release`: a reader that sees it then
//!    sees `published` at `p` or later (pairs with the reader's `Acquire`
//!    fence after an `intent` load), so it can say how far it was lapped;
//! 2. issues a `Release` fence: a reader whose copy saw any word stored
//!    below then loads `intent` as `p + 1` or later (pairs with the reader's
//!    `Acquire` fence after its copy);
//! 3. stores the payload words, relaxed;
//! 4. stores `published = p + 1` with `Release` (pairs with the reader's
//!    `Acquire` fence after loading it: its copies of messages before
//!    `p + 1` see their payloads);
//! 5. as step 5 above.
//!
//! A reader at cursor `c` keeps `seen`, the last `published` it loaded (its
//! own, like the cursor). In [`Reader::try_recv`] and
//! [`Reader::recv_slice`]:
//! 1. if `seen` counts nothing after `c`, it loads `published` (relaxed,
//!    then an `Acquire` fence) into `seen`; the count is judged as above:
//!    none is `Empty`, `capacity` or more a lap, behind `c` or more than
//!    2^31 `Corrupted`;
//! 2. it copies messages `c`, `c + 1`, ... as far as `seen` counts (one for
//!    `try_recv`, as many as fit for `recv_slice`), issues an `Acquire`
//!    fence and loads `intent` once. The slot of message `c` is rewritten
//!    only for message `c + capacity`, whose intent is `c + capacity + 1`:
//!    `intent - c` at most `capacity` means no copy was overwritten, and all
//!    are received. More is a lap: after another `Acquire` fence,
//!    `published` is at least `intent - 1`, so it shows the lap, and the
//!    copies are dropped. An `intent` behind what `seen` counted, or a
//!    `published` that does not show the lap `intent` showed, is
//!    `Corrupted`.
//!
//! Two loads of shared control words per batch, three on a lap.
//! Without stamps a joining reader reads only `published`: in the
//! `capacity` messages after the count wraps past 2^32, a reader joining at
//! [`Start::Oldest`] starts at message 0 of the new count, and in the first
//! one a reader joining at [`Start::Newest`] waits for the next message.
//!
//! Every call returns after bounded work. Readers make only relaxed loads and
//! fences: a reader works on a read-only mapping.
//!
//! # Sleeping
//! A reader with nothing to read may sleep ([`Reader::recv_or_sleep`]; the
//! Linux adapters' `recv_blocking` sleeps on a futex): it announces itself on
//! the ring's doorbell, looks once more, and sleeps on the doorbell's epoch.
//! The writer checks the doorbell after publishing and, if anyone announced,
//! advances the epoch and wakes every sleeper at once (one futex wake, however
//! many readers sleep). A reader never withdraws its announcement (another
//! reader's may be the same word, and withdrawing would hide it): an
//! announcement that turned out unneeded costs the writer one spurious wake.
//! The doorbell's `waiting` word is the only one a reader writes, so a reader
//! that sleeps needs a writable mapping; read-only readers poll.
//!
//! # Trust
//! The writer trusts nobody: it reads only the doorbell's `waiting` word,
//! which a reader with write access can set at will, costing the writer one
//! wake (a system call) per notifying publish; readers that must not be able
//! to do that, or to write anything else, map the segment read-only.
//!
//! Readers trust nobody either: geometry is read once at attach; every slot
//! index is masked; `published` and `intent` are judged against the reader's
//! own cursor; a
//! writer that stores anything anywhere yields garbage values (any bit
//! pattern is a valid payload), `Lagged` with a count of at most 2^31, or
//! `Corrupted`, never undefined behaviour, a panic, or an endless loop.
//!
//! # Counters
//! A third process can watch a ring without disturbing it, through a reader
//! on a read-only mapping: [`Reader::published`] (messages published) and
//! [`Reader::wakes`] (wake-ups the writer sent).
//!
//! # Layout
//! | offset | size                   | what                                                      |
//! |--------|------------------------|-----------------------------------------------------------|
//! | 0      | 128                    | [header](crate::layout) (kind `Broadcast`)                |
//! | 128    | 4                      | `published`: `u32`, messages published (writer)           |
//! | 132    | 4                      | `intent`: `u32`, messages begun (writer; counted slots)   |
//! | 136    | 120                    | unused                                                    |
//! | 256    | 128                    | `doorbell`: [`Event`], readers that sleep announce here   |
//! | 384    | capacity x (8 + slot)  | stamped slots: `stamp: u32`, 4 unused bytes, the message  |
//! | 384    | capacity x slot        | counted slots: the message                                |
//!
//! `slot` is `size_of::<T>()` rounded up to 8 (the stride); slots are stamped
//! up to a stride of 56, counted above. `intent` stays 0 in a ring of stamped
//! slots. The capacity is a power of two from 2 to 2^30. Words are
//! native-endian.

mod reader;
mod writer;

use core::{fmt, marker::PhantomData};

pub use reader::Reader;
pub use writer::Writer;

pub use crate::Corrupted;

use crate::event::Event;
use crate::header::Fingerprint;
use crate::layout::{ElementLayout, Kind, STAMPED_STRIDE};
use crate::payload::Pod;
use crate::region::{Memory, ReadRegion, Region, Structure, required_size, slot_bytes};
use crate::sync::{AtomicU32, Ordering, WORD_BYTES, Word, WordCell};
use crate::{AttachError, CreateError};

/// The smallest capacity: the capacity must be even, so that a busy stamp
/// never equals a whole one.
pub const MIN_CAPACITY: u32 = 2;
/// The largest capacity: positions are `u32` and wrap, so a distance below
/// 2^31 is unambiguous, and a lap (a distance of at least the capacity) must
/// be one.
pub const MAX_CAPACITY: u32 = 1 << 30;

/// Byte offset of `published`.
const PUBLISHED: usize = 128;
/// Byte offset of `intent`, on `published`'s line: a reader that loaded
/// `published` then finds `intent` in its cache unless the writer has begun
/// another message since.
const INTENT: usize = 132;
/// Byte offset of the doorbell.
const DOORBELL: usize = 256;
/// Byte offset of the doorbell's epoch (see [`Event`]'s layout).
const DOORBELL_EPOCH: usize = DOORBELL + 4;
/// Byte offset of the first slot.
const SLOTS: usize = 384;
/// How many messages ahead a writer of counted slots announces in `intent`
/// at most (half the capacity, if less): it stores `intent` once per this
/// many messages, not once per message.
const ANNOUNCE: u32 = 16;
/// Bytes of a stamped slot before its message: the stamp and 4 unused bytes,
/// so the message starts 8-aligned.
const STAMP: usize = 8;

/// A validated view of a broadcast ring: the region's memory, its shared
/// control words, and its local geometry (read once, never re-read).
pub(crate) struct Ring<'a, T> {
    memory: Memory<'a>,
    /// Messages published, wrapping. Written only by the writer (`Release`).
    published: &'a AtomicU32,
    /// Messages begun, wrapping: stored (`Release`) before each message's
    /// payload in a ring of counted slots, never in one of stamped slots.
    intent: &'a AtomicU32,
    /// Readers that sleep announce themselves here.
    doorbell: &'a Event,
    /// `capacity - 1`; the capacity is a power of two in
    /// `MIN_CAPACITY ..= MAX_CAPACITY`.
    mask: u32,
    /// Bytes of a slot: `STAMP` (if [`stamped`](Self::stamped)) plus the
    /// element's stride.
    slot: usize,
    /// The element's stride: bytes of a slot's message.
    stride: usize,
    _t: PhantomData<T>,
}

impl<T> Clone for Ring<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Ring<'_, T> {}

/// The ring as a kind of structure in a region.
struct Shape<T>(PhantomData<T>);

// SAFETY: `Structure`'s conditions:
// - `view` reaches `published` at 128..132, `intent` at 132..136 and the
//   doorbell at 256..264 (within `CONTROL` = 384), and each slot only
//   through `Ring::stamp` and `Ring::message`, at `SLOTS + index * slot` for
//   a masked index below the capacity, with `slot` = `region::slot_bytes`
//   (`STAMP + stride` up to `STAMPED_STRIDE`, the stride alone above): all
//   within `required_size`; offsets come from `elem` and `capacity`, never
//   from the region.
// - Every offset is aligned for its type: the control words' are constants,
//   and `SLOTS`, `STAMP` and the stride are multiples of 8.
// - The ranges are disjoint: `Ring::stamped` (of `T`) and `slot_bytes` (of
//   `elem`) agree, since `elem`'s stride is on the same side of
//   `STAMPED_STRIDE` as `T`'s (`elem` is `ElementLayout::of::<T>()`, or for
//   `inspect` a header's layout and a stand-in `T` chosen on its side), so
//   a slot has a stamp exactly when `Ring::stamp` reaches one; without
//   stamps the message starts at the slot and no `u32` covers it.
unsafe impl<T: Pod> Structure for Shape<T> {
    type View<'a> = Ring<'a, T>;
    const KIND: Kind = Kind::Broadcast;
    const CONTROL: usize = SLOTS;
    const SLOT_OVERHEAD: usize = STAMP;
    const OVERHEAD_UP_TO: u32 = STAMPED_STRIDE;

    fn capacity_ok(capacity: u32) -> bool {
        capacity.is_power_of_two() && (MIN_CAPACITY..=MAX_CAPACITY).contains(&capacity)
    }

    unsafe fn view(memory: Memory<'_>, elem: ElementLayout, capacity: u32) -> Ring<'_, T> {
        // SAFETY: the memory is aligned and holds `SLOTS` bytes and more (the
        // caller's guarantee); each offset is aligned for its type.
        unsafe {
            Ring {
                memory,
                published: memory.u32_at(PUBLISHED),
                intent: memory.u32_at(INTENT),
                doorbell: memory.event_at(DOORBELL),
                mask: capacity - 1,
                slot: slot_bytes::<Self>(elem),
                stride: elem.stride as usize,
                _t: PhantomData,
            }
        }
    }

    fn init(ring: &Ring<'_, T>) {
        ring.published.store(0, Ordering::Relaxed);
        ring.intent.store(0, Ordering::Relaxed);
        ring.doorbell.reset();
        for index in 0..=ring.mask {
            // Slot `index` says it holds nothing: a whole stamp there is
            // `c + 1` for a position `c` of the slot, so congruent to
            // `index + 1`, never to `index` (the capacity is at least 2).
            if let Some(stamp) = ring.stamp(index) {
                stamp.store(index, Ordering::Relaxed);
            }
            for word in ring.message(index) {
                word.set(0);
            }
        }
    }
}

impl<'a, T: Pod> Ring<'a, T> {
    /// Whether slots are stamped (elements up to [`STAMPED_STRIDE`]) or
    /// counted (see [Protocol](self#protocol)). A constant of the element
    /// type, so each side's code has one protocol.
    #[inline(always)]
    const fn stamped(&self) -> bool {
        ElementLayout::of::<T>().stamped()
    }

    fn capacity(&self) -> u32 {
        self.mask + 1
    }

    /// How many messages a writer of counted slots announces at once: at
    /// most [`ANNOUNCE`], and half the capacity, so that at least half the
    /// ring is always whole.
    fn announce(&self) -> u32 {
        ANNOUNCE.min(self.capacity() / 2)
    }

    /// How many of the latest messages are always whole: all but the slot
    /// the writer may be rewriting, or, with counted slots, all but those
    /// it may have announced.
    fn retained(&self) -> u32 {
        if self.stamped() {
            self.capacity() - 1
        } else {
            self.capacity() - self.announce()
        }
    }

    /// The oldest message still whole when `published` was loaded (after an
    /// `Acquire` fence): `capacity - 1` back (the writer may be rewriting
    /// the slot of `published`), or, with counted slots, fewer as far as
    /// `intent` announces messages past `published` (clamped to the ring,
    /// so a corrupt `intent` yields a garbage position, nothing worse).
    fn oldest(&self, published: u32) -> u32 {
        let announced = if self.stamped() {
            1
        } else {
            let intent = self.intent.load(Ordering::Relaxed);
            intent.wrapping_sub(published).clamp(1, self.capacity() - 1)
        };
        published
            .wrapping_sub(self.capacity())
            .wrapping_add(announced)
    }

    /// Byte offset of the slot of `position`.
    #[inline]
    fn slot_offset(&self, position: u32) -> usize {
        SLOTS + (position & self.mask) as usize * self.slot
    }

    /// The stamp of the slot of `position`, if slots are stamped.
    #[inline]
    fn stamp(&self, position: u32) -> Option<&'a AtomicU32> {
        // SAFETY: the masked index is below the capacity, so the slot lies
        // within `required_size`, which the view's memory holds; `SLOTS` and
        // `slot` are multiples of 8, so the stamp is aligned; stamped slots
        // begin with their stamp (counted ones get none: no `u32` there).
        self.stamped()
            .then(|| unsafe { self.memory.u32_at(self.slot_offset(position)) })
    }

    /// The message words of the slot of `position`: atomics, because readers
    /// copy them while the writer may rewrite them (that is the protocol).
    #[inline]
    fn message(&self, position: u32) -> &'a [Word] {
        debug_assert!(self.stride.is_multiple_of(WORD_BYTES));
        let stamp = if self.stamped() { STAMP } else { 0 };
        // SAFETY: as in `stamp`, for the `stride` bytes after the stamp (if
        // any), which end where the slot does; the offset and `stride` are
        // multiples of 8.
        unsafe {
            self.memory
                .words_at(self.slot_offset(position) + stamp, self.stride)
        }
    }

    /// `published`, with an `Acquire` fence after the (relaxed) load: sound
    /// on a read-only mapping.
    #[inline]
    fn published(&self) -> u32 {
        let published = self.published.load(Ordering::Relaxed);
        crate::sync::fence(Ordering::Acquire);
        published
    }

    /// Wake-ups sent: the doorbell's epoch, loaded relaxed (sound on a
    /// read-only mapping, unlike [`Event::epoch`]'s `Acquire` load).
    fn wakes(&self) -> u32 {
        // SAFETY: `DOORBELL_EPOCH` is the `epoch` word of the doorbell
        // (`Event` is `#[repr(C)]`, `waiting` then `epoch`), within `CONTROL`
        // and aligned; it is an `AtomicU32` there as well, so every access
        // to those bytes is a `u32` atomic one.
        unsafe { self.memory.u32_at(DOORBELL_EPOCH) }.load(Ordering::Relaxed)
    }
}

/// Messages published and wake-ups sent by the writer of the ring in
/// `region`, whatever its element type: for [`crate::inspect`], which
/// passes the header's own `elem` (its stride checked to be a multiple of
/// 8). Validates the header as [`Broadcast::attach`] does; reads only, no
/// slot.
pub(crate) fn inspect(
    region: ReadRegion<'_>,
    elem: ElementLayout,
) -> Result<(u32, u32), AttachError> {
    // A stand-in element type on the same side of `STAMPED_STRIDE` as the
    // header's, so that the view's slots are the ring's.
    if elem.stamped() {
        inspect_as::<u8>(region, elem)
    } else {
        inspect_as::<[u8; STAMPED_STRIDE as usize + 1]>(region, elem)
    }
}

fn inspect_as<T: Pod>(
    region: ReadRegion<'_>,
    elem: ElementLayout,
) -> Result<(u32, u32), AttachError> {
    let (ring, ()) = region.attach::<Shape<T>>(elem)?;
    Ok((ring.published(), ring.wakes()))
}

/// A broadcast ring in a [`Region`], not yet turned into its writer or a
/// reader.
///
/// `K` is what keeps the region's memory alive, as for
/// [`Spsc`](crate::spsc::Spsc): the writer and every reader hold it (or a
/// clone).
pub struct Broadcast<'a, T, K = ()> {
    ring: Ring<'a, T>,
    keeper: K,
}

impl<T, K> fmt::Debug for Broadcast<'_, T, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Broadcast")
            .field("capacity", &(u64::from(self.ring.mask) + 1))
            .finish_non_exhaustive()
    }
}

impl<'a, T: Pod> Broadcast<'a, T> {
    /// Bytes a region needs for a ring of `capacity` messages of `T`, or
    /// `None` if that overflows `usize`.
    pub const fn required_size(capacity: u32) -> Option<usize> {
        required_size::<Shape<T>>(ElementLayout::of::<T>(), capacity)
    }

    /// Creates an empty ring in `region`, overwriting what it held.
    ///
    /// Nobody may be using the region while it is created; the header is
    /// published last, so a peer attaching meanwhile sees
    /// [`AttachError::NotInitialized`].
    ///
    /// # Errors
    /// [`CreateError::InvalidCapacity`] unless `capacity` is a power of two
    /// from [`MIN_CAPACITY`] to [`MAX_CAPACITY`]; [`CreateError::Fit`] if the
    /// region is misaligned or shorter than
    /// [`required_size`](Self::required_size).
    pub fn create<K>(
        region: Region<'a, K>,
        capacity: u32,
    ) -> Result<Broadcast<'a, T, K>, CreateError> {
        let (ring, keeper) = region.create::<Shape<T>>(Fingerprint {
            kind: Kind::Broadcast,
            elem: ElementLayout::of::<T>(),
            capacity,
            tag: 0,
        })?;
        Ok(Broadcast { ring, keeper })
    }

    /// Attaches to a ring another process (or another mapping) created in
    /// `region`, checking its header against `T` and the region's length:
    /// for a restarting writer, or readers that may sleep.
    ///
    /// # Errors
    /// The first mismatch between the header and a ring of `T`, or the
    /// region's length ([`AttachError`]).
    pub fn attach<K>(region: Region<'a, K>) -> Result<Broadcast<'a, T, K>, AttachError> {
        let (ring, keeper) = region.attach::<Shape<T>>(ElementLayout::of::<T>())?;
        Ok(Broadcast { ring, keeper })
    }

    /// A reader of a ring in memory this process may only read (a
    /// `PROT_READ` mapping), joining at `start`: it polls
    /// ([`Reader::try_recv`]) and never writes; it cannot sleep, which needs
    /// a write to the doorbell (see [Sleeping](self#sleeping)).
    ///
    /// # Errors
    /// As for [`attach`](Self::attach).
    pub fn attach_reader<K>(
        region: ReadRegion<'a, K>,
        start: Start,
    ) -> Result<Reader<'a, T, K>, AttachError> {
        let (ring, keeper) = region.attach::<Shape<T>>(ElementLayout::of::<T>())?;
        Ok(Reader::new(ring, start, false, keeper))
    }
}

impl<'a, T: Pod, K> Broadcast<'a, T, K> {
    /// Number of slots.
    pub fn capacity(&self) -> usize {
        self.ring.capacity() as usize
    }

    /// How many of the latest messages the ring always keeps whole (see
    /// [`Reader::retained`]).
    pub fn retained(&self) -> usize {
        self.ring.retained() as usize
    }

    /// A reader joining at `start`, which may sleep.
    pub fn reader(&self, start: Start) -> Reader<'a, T, K>
    where
        K: Clone,
    {
        Reader::new(self.ring, start, true, self.keeper.clone())
    }

    /// The ring as one reader joining at `start`, which may sleep.
    pub fn into_reader(self, start: Start) -> Reader<'a, T, K> {
        Reader::new(self.ring, start, true, self.keeper)
    }

    /// The writer, continuing after the last message published. There must
    /// be one writer at a time across all processes (the creator, or a
    /// publisher restarting after one died); the ring cannot enforce it for
    /// other processes.
    ///
    /// A message the last writer stamped whole but died before publishing
    /// is published first: readers follow stamps, so some may already have
    /// received it.
    pub fn into_writer(self) -> Writer<'a, T, K> {
        Writer::new(self.ring, self.keeper)
    }
}

/// Where a reader starts, or resumes after a lap ([`Reader::on_lag`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Start {
    /// At the newest message published, if any: the first message received
    /// is the latest one.
    Newest,
    /// At the oldest message still whole in the ring (at least
    /// [`retained`](Reader::retained) back, once that many were published).
    Oldest,
    /// After everything published so far: only later messages are received.
    Next,
}

/// Why [`Reader::try_recv`] returned no message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum RecvError {
    /// No message was published since the last one received.
    Empty,
    /// The writer lapped the reader: `missed` messages were overwritten
    /// before the reader got to them. The reader has skipped them and
    /// resumes as [`Reader::on_lag`] says.
    Lagged {
        /// Messages skipped, from the one the reader was due to receive; at
        /// least 1.
        missed: u64,
    },
    /// The writer broke the protocol (a stamp no writer writes, `published`
    /// or `intent` behind the reader), or the reader was stopped for more than 2^31
    /// messages; see [`Corrupted`]. The reader resumes after the newest
    /// message.
    Corrupted,
}

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("no new message in the broadcast ring"),
            Self::Lagged { missed } => {
                write!(f, "lapped by the writer: {missed} messages lost")
            }
            Self::Corrupted => fmt::Display::fmt(&Corrupted, f),
        }
    }
}

impl core::error::Error for RecvError {}

/// Why a blocking receive ([`Reader::recv_or_sleep`], and the Linux
/// adapters' `recv_blocking`) returned no message.
///
/// `Sleep` is transparent: it prints, and has the [`source`] of, what it
/// holds.
///
/// [`source`]: core::error::Error::source
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum BlockingError<E> {
    /// The writer lapped the reader; see [`RecvError::Lagged`].
    Lagged {
        /// Messages skipped; at least 1.
        missed: u64,
    },
    /// See [`RecvError::Corrupted`].
    Corrupted,
    /// The reader was attached through a read-only region
    /// ([`Broadcast::attach_reader`]), so it cannot announce itself on the
    /// doorbell; it can only poll.
    ReadOnly,
    /// The sleeper gave up (a timeout, a failed system call, the writer
    /// gone): what it returned.
    Sleep(E),
}

impl<E: fmt::Display> fmt::Display for BlockingError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Lagged { missed } => fmt::Display::fmt(&RecvError::Lagged { missed: *missed }, f),
            Self::Corrupted => fmt::Display::fmt(&Corrupted, f),
            Self::ReadOnly => {
                f.write_str("a reader on a read-only mapping cannot sleep: it can only poll")
            }
            Self::Sleep(err) => fmt::Display::fmt(err, f),
        }
    }
}

impl<E: core::error::Error> core::error::Error for BlockingError<E> {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Sleep(err) => err.source(),
            Self::Lagged { .. } | Self::Corrupted | Self::ReadOnly => None,
        }
    }
}

#[cfg(not(loom))]
mod assertions {
    use core::mem::align_of;

    use static_assertions::{assert_impl_all, assert_not_impl_any, const_assert_eq};

    use super::{Broadcast, Reader, Writer};

    const_assert_eq!(align_of::<Writer<'static, u64>>(), 128);
    const_assert_eq!(align_of::<Reader<'static, u64>>(), 128);
    const_assert_eq!(super::SLOTS, 3 * crate::layout::LINE);
    const_assert_eq!(super::DOORBELL_EPOCH, 256 + 4);
    const_assert_eq!(
        match Broadcast::<[u64; 8]>::required_size(4) {
            Some(size) => size,
            None => 0,
        },
        384 + 4 * 64
    );
    const_assert_eq!(
        match Broadcast::<[u8; 3]>::required_size(2) {
            Some(size) => size,
            None => 0,
        },
        384 + 2 * (8 + 8)
    );
    const_assert_eq!(
        match Broadcast::<[u64; 7]>::required_size(2) {
            Some(size) => size,
            None => 0,
        },
        384 + 2 * (8 + 56)
    );
    const_assert_eq!(
        match Broadcast::<[u8; 57]>::required_size(2) {
            Some(size) => size,
            None => 0,
        },
        384 + 2 * 64
    );

    assert_impl_all!(Writer<'static, u64>: Send);
    assert_not_impl_any!(Writer<'static, u64>: Sync, Clone);
    assert_impl_all!(Reader<'static, u64>: Send, Sync, Clone);
    assert_impl_all!(Broadcast<'static, u64>: Send, Sync);
}

#[cfg(all(test, not(loom)))]
mod tests;
