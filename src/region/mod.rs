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

#[cfg(not(loom))]
use core::ptr::NonNull;
use core::{fmt, marker::PhantomData};

use crate::header::{FIELDS_LEN, Fingerprint, Header};
use crate::layout::{ElementLayout, Kind, LINE};
use crate::sync::{AtomicU32, SlotWord, WORD_BYTES, Word};
use crate::wait::Event;

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
    #[cfg(not(loom))]
    ptr: NonNull<u8>,
    #[cfg(loom)]
    mem: &'a LoomMemory,
    #[cfg(loom)]
    offset: usize,
    len: usize,
    /// What keeps the memory alive, handed on to the structure made here
    /// (see [`from_raw_parts_owned`](Region::from_raw_parts_owned)).
    keeper: K,
    _memory: PhantomData<&'a mut [u8]>,
}

// SAFETY: a `Region` stands for exclusive access to memory that is only ever
// accessed through atomics (which are `Send` and `Sync`); moving it to another
// thread moves that access, and its keeper, which must be `Send` itself.
unsafe impl<K: Send> Send for Region<'_, K> {}
// SAFETY: `&Region` gives no access to the memory outside this crate, and the
// crate only derives atomics from it; its keeper must be `Sync` itself.
unsafe impl<K: Sync> Sync for Region<'_, K> {}

impl<K> fmt::Debug for Region<'_, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Region")
            .field("len", &self.len)
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
        Self {
            len: bytes.len(),
            ptr: NonNull::from(bytes).cast(),
            keeper: (),
            _memory: PhantomData,
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
impl<'a, K> Region<'a, K> {
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
            ptr,
            len,
            keeper,
            _memory: PhantomData,
        }
    }

    /// The first byte of the region.
    pub const fn as_ptr(&self) -> NonNull<u8> {
        self.ptr
    }

    fn is_aligned(&self) -> bool {
        self.ptr.as_ptr().addr().is_multiple_of(LINE)
    }

    /// The `T` at byte `offset`.
    ///
    /// # Safety
    /// The region is aligned to 128, `offset` is a multiple of `align_of::<T>()`
    /// (at most 8), `offset + size_of::<T>() <= len`, and `T` consists of
    /// atomics only (no padding): `AtomicU32`, `Word`, `Event` or `Header`.
    unsafe fn at<T>(&self, offset: usize) -> &'a T {
        debug_assert!(offset + core::mem::size_of::<T>() <= self.len);
        // SAFETY: in bounds and aligned by the caller's guarantee, so the
        // pointer stays inside the region; `from_raw_parts`'s contract (or
        // `new`'s exclusive borrow) makes the bytes initialised, valid for `'a`
        // and reached only through atomics, which `T` is made of, and an atomic
        // is valid for any initialised bytes of its size.
        unsafe { self.ptr.add(offset).cast::<T>().as_ref() }
    }

    /// `count` atomics `T` (`Word` or `SlotWord`) from byte `offset`.
    ///
    /// # Safety
    /// As for [`at`](Self::at), for `count` consecutive `T`s.
    unsafe fn slice_at<T>(&self, offset: usize, count: usize) -> &'a [T] {
        debug_assert!(offset + count * core::mem::size_of::<T>() <= self.len);
        // SAFETY: as in `at`, for `count` elements in bounds.
        unsafe { NonNull::slice_from_raw_parts(self.ptr.add(offset).cast::<T>(), count).as_ref() }
    }
}

#[cfg(loom)]
impl<'a> Region<'a> {
    /// A region over loom-modelled memory.
    pub fn loom(mem: &'a LoomMemory) -> Self {
        Self {
            mem,
            offset: 0,
            len: mem.len,
            keeper: (),
            _memory: PhantomData,
        }
    }
}

#[cfg(loom)]
impl<'a, K> Region<'a, K> {
    fn is_aligned(&self) -> bool {
        self.offset.is_multiple_of(LINE)
    }

    /// # Safety
    /// None under loom: indices are checked.
    unsafe fn at<T: LoomObject>(&self, offset: usize) -> &'a T {
        T::at(self.mem, self.offset + offset)
    }

    /// # Safety
    /// None under loom: indices are checked.
    unsafe fn slice_at<T: LoomObject>(&self, offset: usize, count: usize) -> &'a [T] {
        T::slice(self.mem, self.offset + offset, count)
    }
}

impl<'a, K> Region<'a, K> {
    /// The region's length in bytes.
    pub const fn len(&self) -> usize {
        self.len
    }

    /// Whether the region has no bytes.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Checks that the region is aligned and holds `needed` bytes (`None`: a
    /// size that overflows `usize`).
    fn fit(&self, needed: Option<usize>) -> Result<(), FitError> {
        if !self.is_aligned() {
            return Err(FitError::Misaligned { required: LINE });
        }
        match needed {
            Some(needed) if needed <= self.len => Ok(()),
            needed => Err(FitError::TooSmall {
                needed: needed.unwrap_or(usize::MAX),
                actual: self.len,
            }),
        }
    }

    /// Creates an `S`: checks the capacity and the fit, then writes the header
    /// and the structure's initial state, and publishes both. Returns the
    /// structure's view.
    pub(crate) fn create<S: Structure>(
        self,
        fp: Fingerprint,
    ) -> Result<(S::View<'a>, K), CreateError> {
        if !S::capacity_ok(fp.capacity) {
            return Err(CreateError::InvalidCapacity {
                capacity: fp.capacity,
            });
        }
        self.fit(required_size::<S>(fp.elem, fp.capacity))?;
        // SAFETY: aligned, and holds the header and every slot (checked above).
        let (header, view) = unsafe { (self.header(), S::view(&self, fp.elem, fp.capacity)) };
        header.create(fp, || S::init(&view));
        Ok((view, self.keeper))
    }

    /// Validates the header against an `S` of `elem` with `tag`, and against
    /// the region's real length, and returns the structure's view.
    pub(crate) fn attach<S: Structure>(
        self,
        elem: ElementLayout,
        tag: u64,
    ) -> Result<(S::View<'a>, K), AttachError> {
        self.fit(Some(FIELDS_LEN))?;
        // SAFETY: aligned, and holds the header's fields (checked above).
        let header = unsafe { self.header() };
        let capacity = header
            .snapshot()?
            .validate(S::KIND, elem, tag, S::capacity_ok)?;
        self.fit(required_size::<S>(elem, capacity))?;
        // SAFETY: aligned, and holds every slot the header records (checked).
        let view = unsafe { S::view(&self, elem, capacity) };
        Ok((view, self.keeper))
    }

    /// The view of an `S` of a capacity known to be valid, without a header
    /// check: for memory whose geometry is fixed at compile time.
    ///
    /// # Safety
    /// The region is aligned and holds `required_size::<S>(elem, capacity)` bytes.
    pub(crate) unsafe fn view<S: Structure>(
        &self,
        elem: ElementLayout,
        capacity: u32,
    ) -> S::View<'a> {
        // SAFETY: the caller's guarantee.
        unsafe { S::view(self, elem, capacity) }
    }

    /// Writes the header of an `S` without touching its state: for memory
    /// whose initial (all-zero) state is already that of an empty `S`.
    ///
    /// # Safety
    /// As for [`view`](Self::view).
    pub(crate) unsafe fn describe<S: Structure>(&self, fp: Fingerprint) {
        // SAFETY: the caller's guarantee covers the header's fields.
        unsafe { self.header() }.create(fp, || {});
    }

    /// The header's fields.
    ///
    /// # Safety
    /// The region is aligned and holds at least [`FIELDS_LEN`] bytes.
    unsafe fn header(&self) -> &'a Header {
        // SAFETY: the caller's guarantee; `Header` is nine `u32` atomics.
        unsafe { self.at(0) }
    }

    /// The `u32` control word at byte `offset`.
    ///
    /// # Safety
    /// The region is aligned, `offset` a multiple of 4 and `offset + 4 <= len`.
    pub(crate) unsafe fn u32_at(&self, offset: usize) -> &'a AtomicU32 {
        // SAFETY: the caller's guarantee.
        unsafe { self.at(offset) }
    }

    /// The [`Event`] (two `u32` words) at byte `offset`.
    ///
    /// # Safety
    /// The region is aligned, `offset` a multiple of 4 and `offset + 8 <= len`.
    pub(crate) unsafe fn event_at(&self, offset: usize) -> &'a Event {
        // SAFETY: the caller's guarantee; `Event` is two `u32` atomics.
        unsafe { self.at(offset) }
    }

    /// The [`Word`] at byte `offset`.
    ///
    /// # Safety
    /// The region is aligned, `offset` a multiple of `WORD_BYTES` and
    /// `offset + WORD_BYTES <= len`.
    pub(crate) unsafe fn word_at(&self, offset: usize) -> &'a Word {
        // SAFETY: the caller's guarantee.
        unsafe { self.at(offset) }
    }

    /// `bytes / WORD_BYTES` words of payload memory from byte `offset`,
    /// accessed as atomics by every side at any time (seqlock data).
    ///
    /// # Safety
    /// The region is aligned, `offset` and `bytes` multiples of 8, and
    /// `offset + bytes <= len`.
    pub(crate) unsafe fn words_at(&self, offset: usize, bytes: usize) -> &'a [Word] {
        // SAFETY: the caller's guarantee.
        unsafe { self.slice_at(offset, bytes / WORD_BYTES) }
    }

    /// `bytes / WORD_BYTES` words of ring slot memory from byte `offset`,
    /// which the ring's protocol hands to one side at a time.
    ///
    /// # Safety
    /// As for [`words_at`](Self::words_at).
    pub(crate) unsafe fn slot_words_at(&self, offset: usize, bytes: usize) -> &'a [SlotWord] {
        // SAFETY: the caller's guarantee.
        unsafe { self.slice_at(offset, bytes / WORD_BYTES) }
    }
}

/// A kind of structure, as it lies in a region: a control block (the header
/// and the structure's own lines), then `capacity` slots.
///
/// # Safety
/// [`view`](Self::view) must reach only bytes below
/// [`required_size`]`::<Self>(elem, capacity)`, through the accessors of
/// [`Region`], at the offsets and with the types its layout documents.
pub(crate) unsafe trait Structure {
    /// The structure's view of its region: references to its atomics.
    type View<'a>;
    /// The kind recorded in the header.
    const KIND: Kind;
    /// Bytes before the slots: the header and the control lines, a multiple
    /// of 128.
    const CONTROL: usize;
    /// Bytes each slot has beside the element's stride.
    const SLOT_OVERHEAD: usize;
    /// Whether a capacity is allowed.
    fn capacity_ok(capacity: u32) -> bool;
    /// The view of a region holding `capacity` slots of `elem`.
    ///
    /// # Safety
    /// The region is aligned and holds `required_size::<Self>(elem, capacity)`
    /// bytes.
    unsafe fn view<'a, K>(
        region: &Region<'a, K>,
        elem: ElementLayout,
        capacity: u32,
    ) -> Self::View<'a>;
    /// Sets every control word and slot to its initial state.
    fn init(view: &Self::View<'_>);
}

/// Bytes a region needs for an `S` of `capacity` slots of `elem`, if that fits
/// in `usize`.
pub(crate) const fn required_size<S: Structure>(
    elem: ElementLayout,
    capacity: u32,
) -> Option<usize> {
    let slot = elem.stride as usize + S::SLOT_OVERHEAD;
    match slot.checked_mul(capacity as usize) {
        Some(slots) => slots.checked_add(S::CONTROL),
        None => None,
    }
}

/// Memory modelled for loom: every `u32` and every word of a region's bytes
/// as a loom object of its own (atomic `u32`s, atomic words, and slot cells
/// over the same offsets; a structure uses one kind per offset).
#[cfg(loom)]
#[derive(Debug)]
pub struct LoomMemory {
    len: usize,
    u32s: std::boxed::Box<[AtomicU32]>,
    words: std::boxed::Box<[Word]>,
    cells: std::boxed::Box<[SlotWord]>,
}

#[cfg(loom)]
impl LoomMemory {
    /// `len` bytes of zeroes.
    pub fn new(len: usize) -> Self {
        Self {
            len,
            u32s: (0..len / 4).map(|_| AtomicU32::new(0)).collect(),
            words: (0..len / WORD_BYTES).map(|_| Word::new(0)).collect(),
            cells: (0..len / WORD_BYTES).map(|_| SlotWord::new(0)).collect(),
        }
    }
}

/// What loom memory can hand out at an offset.
#[cfg(loom)]
trait LoomObject: Sized {
    fn slice(mem: &LoomMemory, offset: usize, count: usize) -> &[Self];
    fn at(mem: &LoomMemory, offset: usize) -> &Self;
}

#[cfg(loom)]
macro_rules! loom_object {
    ($ty:ty, $field:ident, $unit:expr) => {
        impl LoomObject for $ty {
            fn slice(mem: &LoomMemory, offset: usize, count: usize) -> &[Self] {
                assert_eq!(offset % $unit, 0, "misaligned loom access");
                &mem.$field[offset / $unit..][..count]
            }
            fn at(mem: &LoomMemory, offset: usize) -> &Self {
                &Self::slice(mem, offset, 1)[0]
            }
        }
    };
}
#[cfg(loom)]
loom_object!(AtomicU32, u32s, 4);
#[cfg(loom)]
loom_object!(SlotWord, cells, WORD_BYTES);
#[cfg(all(loom, target_pointer_width = "64", target_has_atomic = "64"))]
loom_object!(Word, words, WORD_BYTES);

#[cfg(loom)]
macro_rules! loom_run {
    ($ty:ty, $len:expr) => {
        impl LoomObject for $ty {
            fn slice(_: &LoomMemory, _: usize, _: usize) -> &[Self] {
                unreachable!("only single values of this type are viewed")
            }
            fn at(mem: &LoomMemory, offset: usize) -> &Self {
                let run = AtomicU32::slice(mem, offset, $len);
                // SAFETY: the type is `#[repr(C)]` with `$len` `AtomicU32`
                // fields and no padding, laid out as `[AtomicU32; $len]` (the
                // Rust Reference, "The `C` representation"); the slice holds
                // `$len` consecutive atomics.
                unsafe { &*run.as_ptr().cast::<Self>() }
            }
        }
    };
}
#[cfg(loom)]
loom_run!(Header, FIELDS_LEN / 4);
#[cfg(loom)]
loom_run!(Event, 2);

/// The region does not fit the structure: its start or its length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum FitError {
    /// The region does not start on a `required`-byte boundary.
    Misaligned {
        /// The alignment needed.
        required: usize,
    },
    /// The region is shorter than the structure needs.
    TooSmall {
        /// Bytes needed (`usize::MAX` if the size overflows).
        needed: usize,
        /// Bytes in the region.
        actual: usize,
    },
}

impl fmt::Display for FitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Misaligned { required } => {
                write!(f, "region is not aligned to {required} bytes")
            }
            Self::TooSmall { needed, actual } => {
                write!(f, "region too small: needs {needed} bytes, has {actual}")
            }
        }
    }
}

impl core::error::Error for FitError {}

/// Why a structure could not be created in a region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum CreateError {
    /// The region does not fit the structure (transparent).
    Fit(FitError),
    /// The capacity is not one the structure allows.
    InvalidCapacity {
        /// The capacity asked for.
        capacity: u32,
    },
}

impl fmt::Display for CreateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Fit(err) => fmt::Display::fmt(&err, f),
            Self::InvalidCapacity { capacity } => write!(
                f,
                "invalid capacity {capacity}: rings need a power of two up to 2^31, seqlocks 1"
            ),
        }
    }
}

impl core::error::Error for CreateError {}

impl From<FitError> for CreateError {
    fn from(err: FitError) -> Self {
        Self::Fit(err)
    }
}

/// Why attaching to a region failed: the first mismatch found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum AttachError {
    /// The region does not fit the structure its header describes
    /// (transparent).
    Fit(FitError),
    /// No complete header: the magic is still zero, or a creator is writing
    /// the region right now. Retry later.
    NotInitialized,
    /// The magic word is this crate's, byte-swapped: the region was created by
    /// a peer of the other byte order, whose control words this process would
    /// misread.
    WrongByteOrder,
    /// The magic word is not this crate's.
    WrongMagic {
        /// The value found.
        found: u32,
    },
    /// The layout version differs from this build's.
    WrongVersion {
        /// This build's [`ABI_VERSION`](crate::ABI_VERSION).
        expected: u32,
        /// The version in the header.
        found: u32,
    },
    /// The region holds another kind of structure.
    WrongKind {
        /// The kind asked for.
        expected: Kind,
        /// The raw kind in the header.
        found: u32,
    },
    /// The region was created for an element type of another size or stride.
    WrongElement {
        /// The element type asked for.
        expected: ElementLayout,
        /// The element layout in the header.
        found: ElementLayout,
    },
    /// The region was created with another type tag.
    WrongTag {
        /// The tag asked for.
        expected: u64,
        /// The tag in the header.
        found: u64,
    },
    /// The header's capacity is not one the structure allows.
    InvalidCapacity {
        /// The capacity in the header.
        found: u32,
    },
    /// The structure's counters are inconsistent (e.g. more elements than slots).
    Corrupted,
}

impl fmt::Display for AttachError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Fit(err) => fmt::Display::fmt(&err, f),
            Self::NotInitialized => f.write_str("region holds no complete header yet"),
            Self::WrongByteOrder => {
                f.write_str("region was created by a process of the other byte order")
            }
            Self::WrongMagic { found } => {
                write!(
                    f,
                    "region holds no ipc-primitives structure (magic {found:#010x})"
                )
            }
            Self::WrongVersion { expected, found } => {
                write!(f, "layout version {found}, this build reads {expected}")
            }
            Self::WrongKind { expected, found } => {
                f.write_str("region holds structure kind ")?;
                match Kind::from_raw(found) {
                    Some(kind) => write!(f, "\"{kind}\"")?,
                    None => write!(f, "{found} (unknown)")?,
                }
                write!(f, ", expected \"{expected}\"")
            }
            Self::WrongElement { expected, found } => {
                write!(f, "region holds {found}, expected {expected}")
            }
            Self::WrongTag { expected, found } => {
                write!(f, "type tag {found:#x}, expected {expected:#x}")
            }
            Self::InvalidCapacity { found } => write!(f, "invalid capacity {found} in header"),
            Self::Corrupted => f.write_str("counters in the region are inconsistent"),
        }
    }
}

impl core::error::Error for AttachError {}

impl From<FitError> for AttachError {
    fn from(err: FitError) -> Self {
        Self::Fit(err)
    }
}

#[cfg(all(test, not(loom)))]
mod tests;
