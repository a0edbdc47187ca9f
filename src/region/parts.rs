//! Several structures in one region, without `unsafe`: a [`Plan`] of parts,
//! a directory in the region that the peer validates, and each part handed
//! out once.
//!
//! A market-data publisher that keeps a seqlock per instrument and a ring of
//! ticks in one named segment plans the parts, sizes the segment from the
//! plan, and creates each structure in its part; a reader makes the same plan
//! and attaches, which checks the directory the creator wrote (the kind,
//! offset and length of every part) before handing any part out:
//!
//! ```
//! use ipc_primitives::parts::Plan;
//! use ipc_primitives::seqlock::SeqLock;
//! use ipc_primitives::spsc::Spsc;
//! use ipc_primitives::{Kind, Line, Region};
//! use zerocopy::IntoBytes;
//!
//! type Quote = [u64; 2];
//! let mut plan = Plan::<4>::new();
//! for _ in 0..3 {
//!     plan.add(Kind::SeqLock, SeqLock::<Quote>::required_size().ok_or("size")?)?;
//! }
//! plan.add(Kind::Spsc, Spsc::<u64>::required_size(64).ok_or("size")?)?;
//!
//! let mut mem = vec![Line::ZERO; Line::count_for(plan.size().ok_or("size")?)];
//! let mut parts = plan.create(Region::new(mem.as_mut_bytes()))?;
//! let mut quotes = Vec::new();
//! for _ in 0..3 {
//!     quotes.push(SeqLock::<Quote>::create(parts.next().ok_or("planned")?)?.into_writer());
//! }
//! let mut ticks = Spsc::<u64>::create(parts.next().ok_or("planned")?, 64)?.into_producer();
//! assert!(parts.next().is_none(), "each part is handed out once");
//!
//! quotes[1].write(&[100, 101]);
//! ticks.try_push(7)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! In another process, `plan.attach(region)` (or `attach_read` on a
//! read-only mapping) validates the directory and hands out the same parts,
//! in which each structure attaches as usual and validates its own header.
//!
//! # Layout
//! The directory comes first, then the parts, each starting on a 128-byte
//! line, in the order they were planned:
//!
//! | offset | size | what |
//! |---|---|---|
//! | 0 | 128 | header: kind [`Kind::Layout`], element 16 bytes, capacity = number of parts |
//! | 128 | 16 per part | entries: kind `u32`, offset `u32` and length `u32` in 128-byte lines from the region's start, 4 unused bytes |
//! | line after the entries | parts | each part's structure, its length rounded up to a line |
//!
//! # Trust
//! A peer can rewrite the directory at any time. Attaching reads it once and
//! checks it against the plan; the parts handed out come from the plan, never
//! from the directory, so no offset a peer wrote is ever used.

use core::fmt;

use crate::header::Fingerprint;
use crate::layout::{ElementLayout, Kind, LINE};
use crate::region::{
    AttachError, CreateError, FitError, Memory, PartInfo, ReadRegion, Region, Structure,
};
use crate::sync::{AtomicU32, Ordering};

/// The most parts a plan may hold: directory entries are `u32`-indexed, and
/// this keeps the directory within 1 MiB.
pub const MAX_PARTS: usize = 1 << 16;

/// Bytes of one directory entry.
const ENTRY: usize = 16;

/// The parts of a region, in order: at most `N` of them (`heapless`, so a
/// plan needs no allocator).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan<const N: usize> {
    /// Each part's kind and length in lines.
    parts: heapless::Vec<(Kind, u32), N>,
    /// Lines of every part together.
    part_lines: u64,
}

impl<const N: usize> Default for Plan<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Plan<N> {
    /// A plan with no parts.
    pub const fn new() -> Self {
        Self {
            parts: heapless::Vec::new(),
            part_lines: 0,
        }
    }

    /// Adds a part of `len` bytes (the structure's `required_size`) for a
    /// structure of `kind`, after the parts added before; returns its index.
    ///
    /// The directory records `kind`, and the part handed out for it takes
    /// only a structure of that kind: creating or attaching another there
    /// is [`CreateError::PlannedFor`] or [`AttachError::PlannedFor`] (a
    /// nested plan is a part of [`Kind::Layout`]).
    ///
    /// # Errors
    /// [`PlanError::Empty`] for a part of no bytes;
    /// [`PlanError::Full`] if the plan holds `N` (or [`MAX_PARTS`]) parts;
    /// [`PlanError::TooLarge`] if the region would pass 2^32 lines (512 GiB).
    pub fn add(&mut self, kind: Kind, len: usize) -> Result<usize, PlanError> {
        if len == 0 {
            return Err(PlanError::Empty);
        }
        let max = N.min(MAX_PARTS);
        if self.parts.len() >= max {
            return Err(PlanError::Full { max });
        }
        let len_lines = u32::try_from(lines(len)).map_err(|_| PlanError::TooLarge)?;
        let part_lines = self.part_lines + u64::from(len_lines);
        if directory_lines(self.parts.len() + 1) as u64 + part_lines > u64::from(u32::MAX) {
            return Err(PlanError::TooLarge);
        }
        self.parts
            .push((kind, len_lines))
            .map_err(|_| PlanError::Full { max })?;
        self.part_lines = part_lines;
        Ok(self.parts.len() - 1)
    }

    /// Parts planned.
    pub fn len(&self) -> usize {
        self.parts.len()
    }

    /// Whether no part is planned.
    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }

    /// Bytes a region needs for the directory and every part, if that fits in
    /// `usize`.
    pub fn size(&self) -> Option<usize> {
        let lines = directory_lines(self.parts.len()) as u64 + self.part_lines;
        usize::try_from(lines).ok()?.checked_mul(LINE)
    }

    /// Every part in place, with its kind: after the directory, each after
    /// the one before.
    fn placed(&self) -> heapless::Vec<(Kind, PartInfo), N> {
        // Within `u32`: `add` keeps the directory and all parts below 2^32
        // lines.
        let mut offset = directory_lines(self.parts.len()) as u32;
        self.parts
            .iter()
            .map(|&(kind, len_lines)| {
                let part = PartInfo {
                    kind: kind as u32,
                    offset_lines: offset,
                    len_lines,
                };
                offset += len_lines;
                (kind, part)
            })
            .collect()
    }

    fn count(&self) -> u32 {
        // At most `MAX_PARTS` (checked in `add`).
        self.parts.len() as u32
    }

    /// Writes the directory into `region` and hands out the parts, in the
    /// order they were planned.
    ///
    /// # Errors
    /// A [`CreateError`] if the region is misaligned, too small for the plan,
    /// or the plan is empty (`InvalidCapacity`).
    pub fn create<'a, K: Clone>(
        &self,
        region: Region<'a, K>,
    ) -> Result<Parts<'a, K, N>, CreateError> {
        let fp = Fingerprint {
            kind: Kind::Layout,
            elem: DIRECTORY_ENTRY,
            capacity: self.count(),
            tag: 0,
        };
        super::create_as_planned(region.planned, Kind::Layout)?;
        let needed = self.size().unwrap_or(usize::MAX);
        if needed > region.len() {
            return Err(FitError::TooSmall {
                needed,
                actual: region.len(),
            }
            .into());
        }
        let placed = self.placed();
        let (memory, keeper) = region.into_parts();
        // SAFETY: `memory` was a region's, and is only used here, by the
        // directory, before any part is handed out.
        let directory = unsafe { Region::from_memory(memory, ()) };
        directory.create_with::<Directory>(fp, |view| {
            for (index, (_, part)) in placed.iter().enumerate() {
                // SAFETY: the directory was created with one entry per part.
                unsafe { view.write(index, part) };
            }
        })?;
        Ok(Parts::new(memory, keeper, placed))
    }

    /// Checks the directory a peer wrote in `region` against this plan and
    /// hands out the parts, in order.
    ///
    /// # Errors
    /// The [`AttachError`] of the directory's header (not initialised, wrong
    /// kind...), [`AttachError::WrongPartCount`] or
    /// [`AttachError::WrongPart`] where the directory differs from the plan,
    /// or [`AttachError::Fit`] if the region is too small for the plan.
    pub fn attach<'a, K: Clone>(
        &self,
        region: Region<'a, K>,
    ) -> Result<Parts<'a, K, N>, AttachError> {
        super::attach_as_planned(region.planned, Kind::Layout)?;
        let (memory, keeper) = region.into_parts();
        let placed = self.check(memory)?;
        Ok(Parts::new(memory, keeper, placed))
    }

    /// [`attach`](Self::attach) on memory this process may only read: the
    /// parts are [`ReadRegion`]s, for readers that never write.
    ///
    /// # Errors
    /// As for [`attach`](Self::attach).
    pub fn attach_read<'a, K: Clone>(
        &self,
        region: ReadRegion<'a, K>,
    ) -> Result<ReadParts<'a, K, N>, AttachError> {
        super::attach_as_planned(region.planned, Kind::Layout)?;
        let (memory, keeper) = region.into_parts();
        let placed = self.check(memory)?;
        Ok(ReadParts(Parts::new(memory, keeper, placed)))
    }

    /// Validates the directory in `memory` against the plan, reading only;
    /// returns the parts as planned.
    fn check(&self, memory: Memory<'_>) -> Result<heapless::Vec<(Kind, PartInfo), N>, AttachError> {
        // SAFETY: `memory` was a region's, and is only read here, by the
        // directory, before any part is handed out.
        let directory = unsafe { ReadRegion::from_memory(memory, ()) };
        let (view, ()) = directory.attach::<Directory>(DIRECTORY_ENTRY)?;
        if view.count != self.count() {
            return Err(AttachError::WrongPartCount {
                expected: self.count(),
                found: view.count,
            });
        }
        let placed = self.placed();
        for (index, (_, expected)) in placed.iter().enumerate() {
            // SAFETY: the directory holds `view.count` entries, which equals
            // the number of parts planned (checked above).
            let found = unsafe { view.read(index) };
            if found != *expected {
                return Err(AttachError::WrongPart {
                    // At most `MAX_PARTS`.
                    part: index as u32,
                    expected: *expected,
                    found,
                });
            }
        }
        let needed = self.size().unwrap_or(usize::MAX);
        if needed > memory.len() {
            return Err(FitError::TooSmall {
                needed,
                actual: memory.len(),
            }
            .into());
        }
        Ok(placed)
    }
}

/// 128-byte lines that hold `bytes` bytes.
const fn lines(bytes: usize) -> usize {
    bytes.div_ceil(LINE)
}

/// Lines the directory of `count` parts takes.
const fn directory_lines(count: usize) -> usize {
    lines(LINE + count * ENTRY)
}

/// What the directory records as its element: one 16-byte entry.
const DIRECTORY_ENTRY: ElementLayout = ElementLayout {
    size: ENTRY as u32,
    stride: ENTRY as u32,
};

/// The directory as a kind of structure.
struct Directory;

/// The directory's entries.
struct DirectoryView<'a> {
    memory: Memory<'a>,
    count: u32,
}

impl DirectoryView<'_> {
    /// The `u32` field `field` (0..4) of entry `index`.
    ///
    /// # Safety
    /// `index < self.count` and `field < 4`.
    unsafe fn field(&self, index: usize, field: usize) -> &AtomicU32 {
        // SAFETY: the entry lies at `LINE + index * ENTRY`, within
        // `required_size` (`LINE + count * ENTRY`) for `index < count`, and
        // its fields at 4-aligned offsets inside it.
        unsafe { self.memory.u32_at(LINE + index * ENTRY + field * 4) }
    }

    /// Writes entry `index`.
    ///
    /// # Safety
    /// `index < self.count`.
    unsafe fn write(&self, index: usize, part: &PartInfo) {
        let fields = [part.kind, part.offset_lines, part.len_lines, 0];
        for (field, value) in fields.into_iter().enumerate() {
            // SAFETY: the caller's guarantee; four fields.
            unsafe { self.field(index, field) }.store(value, Ordering::Relaxed);
        }
    }

    /// Reads entry `index`.
    ///
    /// # Safety
    /// `index < self.count`.
    unsafe fn read(&self, index: usize) -> PartInfo {
        // SAFETY: the caller's guarantee; fields 0 to 2.
        let field = |field| unsafe { self.field(index, field) }.load(Ordering::Relaxed);
        PartInfo {
            kind: field(0),
            offset_lines: field(1),
            len_lines: field(2),
        }
    }
}

const _: () = assert!(DIRECTORY_ENTRY.stride as usize == ENTRY);

// SAFETY: `Structure`'s conditions, by number:
// 1. `view` keeps the memory and the count; entries are reached at
//    `LINE + index * ENTRY` for `index < count`, within `required_size`
//    (`CONTROL + count * ENTRY`: the directory is made and attached with
//    `DIRECTORY_ENTRY`, whose stride is `ENTRY`, asserted below).
// 2. Only through `u32_at`, at 4-aligned offsets in bounds by 1.
// 3. Entries follow one another, four `u32` fields each.
// 4. `CONTROL` = `LINE`; a slot is `ENTRY` = 16 bytes.
// 5. Offsets come from the index, checked against the count the view was
//    made for, never from the directory's bytes.
unsafe impl Structure for Directory {
    type View<'a> = DirectoryView<'a>;
    const KIND: Kind = Kind::Layout;
    const CONTROL: usize = LINE;
    const SLOT_OVERHEAD: usize = 0;

    fn capacity_ok(capacity: u32) -> bool {
        (1..=MAX_PARTS as u32).contains(&capacity)
    }

    unsafe fn view(memory: Memory<'_>, _: ElementLayout, capacity: u32) -> DirectoryView<'_> {
        DirectoryView {
            memory,
            count: capacity,
        }
    }

    /// Nothing: [`Plan::create`] writes every entry (through
    /// `create_with`) before the header is published.
    fn init(_: &DirectoryView<'_>) {}
}

/// The parts of a region, handed out once each, in plan order: an iterator of
/// [`Region`]s (each kept alive by a clone of the region's keeper).
pub struct Parts<'a, K, const N: usize> {
    memory: Memory<'a>,
    keeper: K,
    parts: heapless::Vec<(Kind, PartInfo), N>,
    next: usize,
}

impl<K, const N: usize> fmt::Debug for Parts<'_, K, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Parts")
            .field("parts", &self.parts.len())
            .field("next", &self.next)
            .finish_non_exhaustive()
    }
}

impl<'a, K: Clone, const N: usize> Parts<'a, K, N> {
    fn new(memory: Memory<'a>, keeper: K, parts: heapless::Vec<(Kind, PartInfo), N>) -> Self {
        Self {
            memory,
            keeper,
            parts,
            next: 0,
        }
    }

    /// The next part's memory and the kind planned for it, if any is left.
    fn next_memory(&mut self) -> Option<(Memory<'a>, K, Kind)> {
        let (kind, part) = *self.parts.get(self.next)?;
        self.next += 1;
        let offset = part.offset_lines as usize * LINE;
        let len = part.len_lines as usize * LINE;
        // SAFETY: the plan places part `next` at `offset .. offset + len`,
        // after the directory and before the next part (offsets grow with
        // each `add`), within `size()`, which the caller checked against
        // the memory's length; each index is handed out once (`next` only
        // grows), so no two parts, and no part and the directory, overlap.
        let memory = unsafe { self.memory.sub(offset, len) };
        Some((memory, self.keeper.clone(), kind))
    }
}

impl<'a, K: Clone, const N: usize> Iterator for Parts<'a, K, N> {
    type Item = Region<'a, K>;

    fn next(&mut self) -> Option<Region<'a, K>> {
        let (memory, keeper, kind) = self.next_memory()?;
        // SAFETY: a range of this region's memory handed out once (see
        // `next_memory`), kept alive by a clone of its keeper.
        Some(unsafe { Region::from_memory(memory, keeper) }.planned(kind))
    }
}

/// The parts of a region this process may only read: an iterator of
/// [`ReadRegion`]s.
pub struct ReadParts<'a, K, const N: usize>(Parts<'a, K, N>);

impl<K, const N: usize> fmt::Debug for ReadParts<'_, K, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ReadParts").field(&self.0).finish()
    }
}

impl<'a, K: Clone, const N: usize> Iterator for ReadParts<'a, K, N> {
    type Item = ReadRegion<'a, K>;

    fn next(&mut self) -> Option<ReadRegion<'a, K>> {
        let (memory, keeper, kind) = self.0.next_memory()?;
        // SAFETY: as in `Parts::next`.
        Some(unsafe { ReadRegion::from_memory(memory, keeper) }.planned(kind))
    }
}

/// The parts a region's directory lists, read without a plan: what
/// [`crate::inspect`] shows of a region laid out by a [`Plan`]. Each entry is
/// read once; a part is handed out only where a plan would have placed it
/// (right after the directory or the part before, inside the region), so no
/// two parts, and no part and the directory, overlap, whatever a peer wrote.
pub(crate) struct Listing<'a> {
    memory: Memory<'a>,
    view: DirectoryView<'a>,
    /// The next entry to read.
    next: u32,
    /// The line where that entry's part must start; `None` once an entry
    /// was impossible, after which no offset can be trusted.
    start: Option<u32>,
}

/// The directory in `region`, its header validated as [`Plan::attach`]
/// does (kind, version, a part count up to [`MAX_PARTS`], the entries inside
/// the region).
pub(crate) fn list(region: ReadRegion<'_>) -> Result<Listing<'_>, AttachError> {
    let (memory, ()) = region.into_parts();
    // SAFETY: `memory` was a region's; the directory only reads it, and the
    // parts `Listing` hands out lie after the directory's lines.
    let directory = unsafe { ReadRegion::from_memory(memory, ()) };
    let (view, ()) = directory.attach::<Directory>(DIRECTORY_ENTRY)?;
    // At most `MAX_PARTS` entries: a few lines, within `u32`.
    let start = Some(directory_lines(view.count as usize) as u32);
    Ok(Listing {
        memory,
        view,
        next: 0,
        start,
    })
}

impl<'a> Listing<'a> {
    /// Parts the directory lists.
    pub(crate) fn listed(&self) -> u32 {
        self.view.count
    }

    /// The index of the next entry.
    pub(crate) fn position(&self) -> u32 {
        self.next
    }

    /// The memory of the part `info` lists, if a plan could have placed it
    /// there; else what is wrong with the entry.
    fn place(&mut self, info: PartInfo) -> Result<ReadRegion<'a>, &'static str> {
        let start = self.start.take().ok_or("comes after an impossible entry")?;
        if info.offset_lines != start {
            return Err("does not start where the part before it ends");
        }
        if info.len_lines == 0 {
            return Err("has no lines");
        }
        let end = start
            .checked_add(info.len_lines)
            .filter(|&end| {
                (end as usize)
                    .checked_mul(LINE)
                    .is_some_and(|end| end <= self.memory.len())
            })
            .ok_or("ends past the region")?;
        self.start = Some(end);
        let (offset, len) = (start as usize * LINE, info.len_lines as usize * LINE);
        // SAFETY: `offset + len` is `end * LINE`, within the memory (checked
        // above). Each part starts where the one before ended (the first
        // after the directory's lines), so the parts handed out, and the
        // directory, never overlap: every byte is read as one structure's.
        let memory = unsafe { self.memory.sub(offset, len) };
        // SAFETY: a range of the region's memory that nothing else in this
        // listing reaches (see above); only read.
        Ok(unsafe { ReadRegion::from_memory(memory, ()) })
    }
}

impl<'a> Iterator for Listing<'a> {
    /// An entry as listed, and its part's memory or what is wrong with it.
    type Item = (PartInfo, Result<ReadRegion<'a>, &'static str>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.next >= self.view.count {
            return None;
        }
        // SAFETY: `next < count`.
        let info = unsafe { self.view.read(self.next as usize) };
        self.next += 1;
        Some((info, self.place(info)))
    }
}

/// Why a part could not be added to a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum PlanError {
    /// The plan holds as many parts as it can.
    Full {
        /// The most parts it holds.
        max: usize,
    },
    /// The region would be larger than 2^32 lines (512 GiB).
    TooLarge,
    /// A part of no bytes: every structure takes at least its header.
    Empty,
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full { max } => write!(f, "the plan already holds its {max} parts"),
            Self::TooLarge => f.write_str("the planned region would pass 512 GiB"),
            Self::Empty => f.write_str("a part of 0 bytes: every structure takes its header"),
        }
    }
}

impl core::error::Error for PlanError {}

#[cfg(all(test, not(loom)))]
mod tests;
