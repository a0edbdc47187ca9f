//! A span of memory a structure lives in, and creating or attaching to a
//! structure there.
//!
//! # One structure per region
//! A [`Region`] is neither `Copy` nor `Clone`, and a structure's `create` or
//! `attach` takes it by value: in one process, safe code cannot have two
//! structures live over the same bytes (two structures of different kinds
//! would access the same bytes as atomics of different sizes, which is
//! undefined behaviour). Where memory holds several structures, it is split
//! into disjoint regions first.
//!
//! What no type system can stop is another process (or a second mapping of the
//! same memory in this one) creating something else over a live structure: to
//! this process that is a peer corrupting shared memory, and it yields typed
//! errors or garbage values, never undefined behaviour.
//!
//! # No references over shared bytes
//! Nothing here makes a reference to a byte of a region that is not inside an
//! atomic: structures reach their words through references to individual
//! atomics (or, for the header, to a `#[repr(C)]` run of atomics without
//! padding), so a peer writing any byte at any time, padding included, is no
//! undefined behaviour in this process.

mod error;
mod memory;
pub mod parts;

use core::fmt;
#[cfg(not(loom))]
use core::ptr::NonNull;

pub use error::{AttachError, CreateError, FitError, PartInfo};
#[cfg(loom)]
pub use memory::LoomMemory;
pub(crate) use memory::Memory;

use crate::header::{FIELDS_LEN, Fingerprint, Snapshot};
use crate::layout::{ElementLayout, Kind, LINE};

/// Memory that may be shared with another thread or process and is only ever
/// accessed through atomics.
///
/// A `Region` is where a structure is [created](crate::spsc::Spsc::create) or
/// [attached](crate::spsc::Spsc::attach): a buffer, a `static`, or an `mmap`
/// shared with another process. It must start on a 128-byte boundary
/// ([`Line`](crate::Line) helps); structures check that, and the length, and
/// report what is wrong. The structure takes the region by value, so one
/// region holds one structure:
///
/// ```compile_fail,E0382
/// use ipc_primitives::{seqlock::SeqLock, spsc::Spsc, Line, Region};
/// use zerocopy::IntoBytes;
///
/// let mut mem = vec![Line::ZERO; 8];
/// let region = Region::new(mem.as_mut_bytes());
/// let ring = Spsc::<u64>::create(region, 4).unwrap();
/// let lock = SeqLock::<u64>::create(region).unwrap(); // `region` was moved
/// ```
pub struct Region<'a, K = ()> {
    memory: Memory<'a>,
    /// What keeps the memory alive, handed on to the structure made here
    /// (see [`from_raw_parts_owned`](Region::from_raw_parts_owned)).
    keeper: K,
    /// The type tag a structure created here records, and one attached here
    /// must have ([`with_tag`](Region::with_tag)); 0 by default.
    tag: u64,
    /// The kind a [`Plan`](crate::parts::Plan) planned this region for, if
    /// it is a part of one: the only kind created or attached here.
    planned: Option<Kind>,
}

impl<K> fmt::Debug for Region<'_, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Region")
            .field("len", &self.memory.len())
            .finish_non_exhaustive()
    }
}

#[cfg(not(loom))]
impl<'a> Region<'a> {
    /// A region over memory this process owns for `'a`.
    ///
    /// The exclusive borrow guarantees nothing else reads or writes the bytes
    /// while a structure in the region is in use.
    pub fn new(bytes: &'a mut [u8]) -> Self {
        let len = bytes.len();
        // SAFETY: `Memory::new` asks for `from_raw_parts`'s contract: the
        // exclusive borrow makes the bytes valid, initialised and reached
        // only through this region for `'a`.
        let memory = unsafe { Memory::new(NonNull::from(bytes).cast(), len) };
        Self {
            memory,
            keeper: (),
            tag: 0,
            planned: None,
        }
    }

    /// A region over memory this process did not allocate, such as an `mmap`
    /// shared with another process or a fixed RAM address on a microcontroller.
    ///
    /// # Safety
    /// For all of `'a`:
    /// 1. the `len` bytes at `ptr` are valid for reads and writes;
    /// 2. they are initialised;
    /// 3. this process accesses them only through structures of this crate,
    ///    which access them through atomics: no references to them, no
    ///    non-atomic reads or writes. Several regions over the same bytes
    ///    (as threads standing in for processes in a test have) must hold the
    ///    same kind of structure, so that every byte is always accessed as
    ///    atomics of one size.
    ///
    /// Other processes may write them in any way: that is what the structures
    /// are built to survive. (A second mapping of the same memory, at another
    /// address, is another process's view as far as this process is concerned.)
    pub unsafe fn from_raw_parts(ptr: NonNull<u8>, len: usize) -> Self {
        // SAFETY: the caller's guarantee, for `'a`.
        unsafe { Region::from_raw_parts_owned(ptr, len, ()) }
    }
}

#[cfg(not(loom))]
impl<K> Region<'_, K> {
    /// A region over memory that `keeper` keeps alive, such as a mapping
    /// owned by an `Arc`: the structure made in the region holds `keeper`
    /// (its sides each hold a clone), so its handles own their memory and can
    /// be stored anywhere, with `'a = 'static`.
    ///
    /// # Safety
    /// As for [`from_raw_parts`](Region::from_raw_parts), for as long as
    /// `keeper` or any clone of it lives and `'a` lasts, whichever ends first;
    /// moving `keeper` must not move the bytes.
    pub unsafe fn from_raw_parts_owned(ptr: NonNull<u8>, len: usize, keeper: K) -> Self {
        Self {
            // SAFETY: the caller's guarantee.
            memory: unsafe { Memory::new(ptr, len) },
            keeper,
            tag: 0,
            planned: None,
        }
    }

    /// The first byte of the region.
    pub const fn as_ptr(&self) -> NonNull<u8> {
        self.memory.as_ptr()
    }
}

#[cfg(loom)]
impl<'a> Region<'a> {
    /// A region over loom-modelled memory.
    pub fn loom(mem: &'a LoomMemory) -> Self {
        Self {
            memory: Memory::loom(mem),
            keeper: (),
            tag: 0,
            planned: None,
        }
    }
}

impl<'a, K> Region<'a, K> {
    /// The region's length in bytes.
    pub const fn len(&self) -> usize {
        self.memory.len()
    }

    /// Whether the region has no bytes.
    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The region with a type tag: a fingerprint of the element type that the
    /// user chooses (a `const` per payload type and version, say). A
    /// structure created here records it in its header, and one attached
    /// here must have it, so that a type of the same size and alignment but
    /// another meaning does not attach. Regions have tag 0 unless given one.
    ///
    /// ```
    /// use ipc_primitives::spsc::Spsc;
    /// use ipc_primitives::{AttachError, Line, Region};
    /// use zerocopy::IntoBytes;
    ///
    /// /// Prices in cents, layout version 2.
    /// const PRICE_V2: u64 = 0x5052_4943_4500_0002;
    ///
    /// let mut memory = vec![Line::ZERO; Line::count_for(Spsc::<u64>::required_size(4).unwrap())];
    /// let ring = Spsc::<u64>::create(Region::new(memory.as_mut_bytes()).with_tag(PRICE_V2), 4)?;
    /// drop(ring);
    /// // Another tag (here none) is refused, naming both.
    /// let err = Spsc::<u64>::attach(Region::new(memory.as_mut_bytes())).unwrap_err();
    /// assert!(matches!(err, AttachError::WrongTag { expected: 0, found: PRICE_V2 }));
    /// let ring = Spsc::<u64>::attach(Region::new(memory.as_mut_bytes()).with_tag(PRICE_V2))?;
    /// # drop(ring);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn with_tag(self, tag: u64) -> Self {
        Self { tag, ..self }
    }

    /// The region's type tag ([`with_tag`](Self::with_tag)).
    pub const fn tag(&self) -> u64 {
        self.tag
    }

    /// The memory and the keeper, apart.
    pub(crate) fn into_parts(self) -> (Memory<'a>, K) {
        (self.memory, self.keeper)
    }

    /// A region over `memory`, kept alive by `keeper`.
    ///
    /// # Safety
    /// `memory` is a range of a region's memory that nothing else will reach
    /// (handed out once), and `keeper` keeps that region's memory alive.
    pub(crate) unsafe fn from_memory(memory: Memory<'a>, keeper: K) -> Self {
        Self {
            memory,
            keeper,
            tag: 0,
            planned: None,
        }
    }

    /// Checks that the region is aligned and holds `needed` bytes (`None`: a
    /// size that overflows `usize`).
    fn fit(&self, needed: Option<usize>) -> Result<(), FitError> {
        fit(self.memory, needed)
    }

    /// The region as a part planned for `kind` (see [`Parts`](crate::parts::Parts)).
    pub(crate) fn planned(self, kind: Kind) -> Self {
        Self {
            planned: Some(kind),
            ..self
        }
    }

    /// Creates an `S`: checks the capacity and the fit, then writes the header
    /// (`fp`, with the region's tag) and the structure's initial state, and
    /// publishes both. Returns the structure's view and the region's keeper.
    pub(crate) fn create<S: Structure>(
        self,
        fp: Fingerprint,
    ) -> Result<(S::View<'a>, K), CreateError> {
        self.create_with::<S>(fp, S::init)
    }

    /// [`create`](Self::create), with `init` writing the initial state.
    pub(crate) fn create_with<S: Structure>(
        self,
        fp: Fingerprint,
        init: impl FnOnce(&S::View<'a>),
    ) -> Result<(S::View<'a>, K), CreateError> {
        let fp = Fingerprint {
            tag: self.tag,
            ..fp
        };
        create_as_planned(self.planned, S::KIND)?;
        if !S::capacity_ok(fp.capacity) {
            return Err(CreateError::InvalidCapacity {
                capacity: fp.capacity,
            });
        }
        self.fit(S::size(fp.elem, fp.capacity))?;
        // SAFETY: aligned, and holds the header and every slot (checked above).
        let (header, view) = unsafe {
            (
                self.memory.header(),
                S::view(self.memory, fp.elem, fp.capacity),
            )
        };
        header.create(fp, || init(&view));
        Ok((view, self.keeper))
    }

    /// Validates the header against an `S` of `elem` with the region's tag,
    /// and against the region's real length, and returns the structure's
    /// view and the region's keeper. Reads only (relaxed loads), so
    /// [`ReadRegion::attach`] shares it.
    pub(crate) fn attach<S: Structure>(
        self,
        elem: ElementLayout,
    ) -> Result<(S::View<'a>, K), AttachError> {
        attach_as_planned(self.planned, S::KIND)?;
        let capacity = snapshot(self.memory)?.validate(S::KIND, elem, self.tag, S::capacity_ok)?;
        self.fit(S::size(elem, capacity))?;
        // SAFETY: aligned, and holds every slot the header records (checked).
        let view = unsafe { S::view(self.memory, elem, capacity) };
        Ok((view, self.keeper))
    }

    /// The view of an `S` of a capacity known to be valid, its header written
    /// (without touching its state, idempotently): for memory whose geometry
    /// is fixed at compile time and whose initial all-zero state is already
    /// that of an empty `S`.
    ///
    /// # Safety
    /// The region is aligned and holds `S::size(fp.elem,
    /// fp.capacity)` bytes, and `fp.capacity` is valid for `S`.
    pub(crate) unsafe fn describe<S: Structure>(&self, fp: Fingerprint) -> S::View<'a> {
        // SAFETY: the caller's guarantee covers the header and the view.
        unsafe {
            self.memory.header().create(fp, || {});
            S::view(self.memory, fp.elem, fp.capacity)
        }
    }
}

/// Memory this process may only read, such as a `PROT_READ` mapping of shared
/// memory: readers that never write (a [seqlock](crate::seqlock)'s, a
/// broadcast's) attach to a structure here.
///
/// Such readers use relaxed atomic loads only (and fences), which
/// `core::sync::atomic` guarantees not to write ("Atomic accesses to read-only
/// memory"): on some targets an `Acquire` or a wide load may be a
/// compare-and-swap, which faults on a read-only page. Any [`Region`] can be
/// read too ([`From`]).
pub struct ReadRegion<'a, K = ()> {
    memory: Memory<'a>,
    keeper: K,
    /// As for [`Region`].
    tag: u64,
    /// As for [`Region`].
    planned: Option<Kind>,
}

impl<K> fmt::Debug for ReadRegion<'_, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadRegion")
            .field("len", &self.memory.len())
            .finish_non_exhaustive()
    }
}

impl<'a, K> From<Region<'a, K>> for ReadRegion<'a, K> {
    fn from(region: Region<'a, K>) -> Self {
        Self {
            memory: region.memory,
            keeper: region.keeper,
            tag: region.tag,
            planned: region.planned,
        }
    }
}

#[cfg(not(loom))]
impl<K> ReadRegion<'_, K> {
    /// A read-only region over memory that `keeper` keeps alive (`()` for
    /// none: then for `'a`).
    ///
    /// # Safety
    /// As for [`Region::from_raw_parts_owned`], except that the bytes need
    /// only be valid for reads: nothing reached through a `ReadRegion`
    /// writes them.
    pub unsafe fn from_raw_parts_owned(ptr: NonNull<u8>, len: usize, keeper: K) -> Self {
        Self {
            // SAFETY: the caller's guarantee; nothing made from a
            // `ReadRegion` writes.
            memory: unsafe { Memory::new(ptr, len) },
            keeper,
            tag: 0,
            planned: None,
        }
    }
}

impl<'a, K> ReadRegion<'a, K> {
    /// The region's length in bytes.
    pub const fn len(&self) -> usize {
        self.memory.len()
    }

    /// Whether the region has no bytes.
    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The region with a type tag a structure attached here must have (see
    /// [`Region::with_tag`]).
    #[must_use]
    pub fn with_tag(self, tag: u64) -> Self {
        Self { tag, ..self }
    }

    /// The region's type tag.
    pub const fn tag(&self) -> u64 {
        self.tag
    }

    /// The memory and the keeper, apart.
    pub(crate) fn into_parts(self) -> (Memory<'a>, K) {
        (self.memory, self.keeper)
    }

    /// A read region over `memory`, kept alive by `keeper`.
    ///
    /// # Safety
    /// As for [`Region::from_memory`].
    pub(crate) unsafe fn from_memory(memory: Memory<'a>, keeper: K) -> Self {
        Self {
            memory,
            keeper,
            tag: 0,
            planned: None,
        }
    }

    /// The region as a part planned for `kind` (as [`Region::planned`]).
    pub(crate) fn planned(self, kind: Kind) -> Self {
        Self {
            planned: Some(kind),
            ..self
        }
    }

    /// The header's fields as they are, unvalidated (see
    /// [`Region::attach`] for what validating them means): what an inspector
    /// reads first, to learn which structure to attach as.
    pub(crate) fn snapshot(&self) -> Result<Snapshot, AttachError> {
        snapshot(self.memory)
    }

    /// As [`Region::attach`], reading only: the structure's view for readers
    /// that never write, and the region's keeper.
    pub(crate) fn attach<S: Structure>(
        self,
        elem: ElementLayout,
    ) -> Result<(S::View<'a>, K), AttachError> {
        Region {
            memory: self.memory,
            keeper: self.keeper,
            tag: self.tag,
            planned: self.planned,
        }
        .attach::<S>(elem)
    }
}

/// `Ok` if a structure of `kind` may be created in a region `planned` for a
/// kind (`None`: no plan's part), else [`CreateError::PlannedFor`].
fn create_as_planned(planned: Option<Kind>, kind: Kind) -> Result<(), CreateError> {
    match planned {
        Some(planned) if planned != kind => Err(CreateError::PlannedFor { planned, kind }),
        _ => Ok(()),
    }
}

/// `Ok` if a structure of `expected` kind may be attached in a region
/// `planned` for a kind, else [`AttachError::PlannedFor`].
fn attach_as_planned(planned: Option<Kind>, expected: Kind) -> Result<(), AttachError> {
    match planned {
        Some(planned) if planned != expected => Err(AttachError::PlannedFor { planned, expected }),
        _ => Ok(()),
    }
}

/// Checks that `memory` is aligned and holds `needed` bytes (`None`: a size
/// that overflows `usize`).
fn fit(memory: Memory<'_>, needed: Option<usize>) -> Result<(), FitError> {
    if !memory.is_aligned() {
        return Err(FitError::Misaligned { required: LINE });
    }
    match needed {
        Some(needed) if needed <= memory.len() => Ok(()),
        needed => Err(FitError::TooSmall {
            needed: needed.unwrap_or(usize::MAX),
            actual: memory.len(),
        }),
    }
}

/// The header's fields in `memory`, copied out at one creation (relaxed
/// loads), if the memory is aligned and holds them.
fn snapshot(memory: Memory<'_>) -> Result<Snapshot, AttachError> {
    fit(memory, Some(FIELDS_LEN))?;
    // SAFETY: aligned, and holds the header's fields (checked above).
    unsafe { memory.header() }.snapshot()
}

/// A kind of structure, as it lies in a region: a control block (the header
/// and the structure's own lines), then `capacity` slots.
///
/// # Safety
/// The region makes a view ([`view`](Self::view)) only of memory aligned to
/// 128 that holds [`size`](Self::size)`(elem, capacity)` bytes, for a
/// capacity [`capacity_ok`](Self::capacity_ok) admits and the element layout
/// the structure asked for. For every such `elem` and `capacity`, the view,
/// and everything done through it later, must hold to these conditions
/// (implementations discharge them by number in their `// SAFETY:` comment,
/// pointing at the assertions that pin their layout):
/// 1. **Bounds.** It reaches only bytes from 128 (the header's line is the
///    region's) up to `size(elem, capacity)`.
/// 2. **Through `Memory`.** It reaches every byte through an accessor of
///    [`Memory`] whose `# Safety` the call meets (the offset aligned for the
///    accessor's type, in bounds by 1), and never makes a reference covering
///    a byte that is not inside an atomic.
/// 3. **One width per byte.** The ranges its layout gives its words do not
///    overlap, so every byte is always accessed as atomics of one size.
/// 4. **Lines.** [`CONTROL`](Self::CONTROL) is a multiple of 128 and at
///    least 128. With the default [`size`](Self::size), every control word
///    lies below it, and a slot ([`slot_bytes`]) is a multiple of 8, so that
///    the slots' words are aligned; a structure that overrides `size` states
///    where its words lie and why they are aligned.
/// 5. **Local geometry.** Every offset comes from `elem`, `capacity` and
///    constants, never from a value read from the region, which a peer may
///    have written.
pub(crate) unsafe trait Structure {
    /// The structure's view of its region: references to its atomics, or the
    /// region's [`Memory`] and geometry.
    type View<'a>;
    /// The kind recorded in the header.
    const KIND: Kind;
    /// Bytes before the slots: the header and the control lines, a multiple
    /// of 128.
    const CONTROL: usize;
    /// Bytes each slot has beside the element's stride, for an element whose
    /// stride is at most [`OVERHEAD_UP_TO`](Self::OVERHEAD_UP_TO).
    const SLOT_OVERHEAD: usize;
    /// The largest stride whose slots have [`SLOT_OVERHEAD`](Self::SLOT_OVERHEAD)
    /// bytes beside it; a larger element's slot is its stride alone.
    const OVERHEAD_UP_TO: u32 = u32::MAX;
    /// Whether a capacity is allowed.
    fn capacity_ok(capacity: u32) -> bool;
    /// The view of memory holding `capacity` slots of `elem`.
    ///
    /// # Safety
    /// The memory is aligned and holds `Self::size(elem, capacity)`
    /// bytes.
    unsafe fn view(memory: Memory<'_>, elem: ElementLayout, capacity: u32) -> Self::View<'_>;
    /// Sets every control word and slot to its initial state.
    fn init(view: &Self::View<'_>);
    /// Bytes a region needs for `capacity` slots of `elem`, if that fits in
    /// `usize`: [`required_size`], unless the structure's capacity field
    /// holds more than a slot count (fan-in lanes).
    fn size(elem: ElementLayout, capacity: u32) -> Option<usize>
    where
        Self: Sized,
    {
        required_size::<Self>(elem, capacity)
    }
}

/// Bytes of one slot of `elem` in an `S`: the stride, and the structure's
/// overhead if the stride is small enough to have it.
pub(crate) const fn slot_bytes<S: Structure>(elem: ElementLayout) -> usize {
    if elem.stride <= S::OVERHEAD_UP_TO {
        elem.stride as usize + S::SLOT_OVERHEAD
    } else {
        elem.stride as usize
    }
}

/// Bytes a region needs for an `S` of `capacity` slots of `elem`, if that fits
/// in `usize`.
pub(crate) const fn required_size<S: Structure>(
    elem: ElementLayout,
    capacity: u32,
) -> Option<usize> {
    match slot_bytes::<S>(elem).checked_mul(capacity as usize) {
        Some(slots) => slots.checked_add(S::CONTROL),
        None => None,
    }
}

#[cfg(all(test, not(loom)))]
mod tests;
