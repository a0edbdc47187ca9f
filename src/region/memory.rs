//! The bytes of a region as structures reach them: atomics at offsets, and
//! nothing else.

use core::marker::PhantomData;
#[cfg(not(loom))]
use core::ptr::NonNull;

#[cfg(loom)]
use crate::header::FIELDS_LEN;
use crate::header::Header;
use crate::layout::LINE;
use crate::sync::{AtomicU32, SlotWord, WORD_BYTES, Word};
use crate::wait::Event;

/// A region's memory, as a structure's view keeps it: where the bytes are and
/// how many, `Copy`, without the region's keeper.
///
/// Every accessor hands out references to atomics only (or to `#[repr(C)]`
/// runs of atomics without padding), never a reference covering a byte that
/// is not inside an atomic.
#[derive(Clone, Copy)]
pub(crate) struct Memory<'a> {
    #[cfg(not(loom))]
    ptr: NonNull<u8>,
    #[cfg(loom)]
    mem: &'a LoomMemory,
    #[cfg(loom)]
    offset: usize,
    len: usize,
    _bytes: PhantomData<&'a [u8]>,
}

// SAFETY: the memory is only ever accessed through atomics, which are `Send`
// and `Sync`.
unsafe impl Send for Memory<'_> {}
// SAFETY: as for `Send`.
unsafe impl Sync for Memory<'_> {}

#[cfg(not(loom))]
impl<'a> Memory<'a> {
    /// # Safety
    /// [`Region::from_raw_parts`](crate::Region::from_raw_parts)'s contract,
    /// for `'a`.
    pub(super) const unsafe fn new(ptr: NonNull<u8>, len: usize) -> Self {
        Self {
            ptr,
            len,
            _bytes: PhantomData,
        }
    }

    /// The first byte.
    pub(crate) const fn as_ptr(&self) -> NonNull<u8> {
        self.ptr
    }

    pub(super) fn is_aligned(&self) -> bool {
        self.ptr.as_ptr().addr().is_multiple_of(LINE)
    }

    /// The `T` at byte `offset`.
    ///
    /// # Safety
    /// The memory is aligned to 128, `offset` is a multiple of
    /// `align_of::<T>()` (at most 8), `offset + size_of::<T>() <= len`, and
    /// `T` consists of atomics only (no padding): `AtomicU32`, `Word`,
    /// `Event` or `Header`.
    unsafe fn at<T>(&self, offset: usize) -> &'a T {
        debug_assert!(offset + core::mem::size_of::<T>() <= self.len);
        // SAFETY: in bounds and aligned by the caller's guarantee, so the
        // pointer stays inside the memory; the region's contract makes the
        // bytes initialised, valid for `'a` and reached only through atomics,
        // which `T` is made of, and an atomic is valid for any initialised
        // bytes of its size.
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
impl<'a> Memory<'a> {
    pub(super) fn loom(mem: &'a LoomMemory) -> Self {
        Self {
            mem,
            offset: 0,
            len: mem.len,
            _bytes: PhantomData,
        }
    }

    pub(super) fn is_aligned(&self) -> bool {
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

impl<'a> Memory<'a> {
    /// The `len` bytes from byte `offset`.
    ///
    /// # Safety
    /// `offset + len <= self.len()`.
    pub(super) unsafe fn sub(&self, offset: usize, len: usize) -> Self {
        debug_assert!(offset + len <= self.len);
        Self {
            #[cfg(not(loom))]
            // SAFETY: `offset <= self.len`, so the pointer stays inside (or
            // one past) the memory.
            ptr: unsafe { self.ptr.add(offset) },
            #[cfg(loom)]
            mem: self.mem,
            #[cfg(loom)]
            offset: self.offset + offset,
            len,
            _bytes: PhantomData,
        }
    }

    /// Bytes in the memory.
    pub(crate) const fn len(&self) -> usize {
        self.len
    }

    /// The header's fields.
    ///
    /// # Safety
    /// The memory is aligned and holds at least
    /// [`FIELDS_LEN`](crate::header::FIELDS_LEN) bytes.
    pub(super) unsafe fn header(&self) -> &'a Header {
        // SAFETY: the caller's guarantee; `Header` is nine `u32` atomics.
        unsafe { self.at(0) }
    }

    /// The `u32` control word at byte `offset`.
    ///
    /// # Safety
    /// The memory is aligned, `offset` a multiple of 4 and `offset + 4 <= len`.
    pub(crate) unsafe fn u32_at(&self, offset: usize) -> &'a AtomicU32 {
        // SAFETY: the caller's guarantee.
        unsafe { self.at(offset) }
    }

    /// The [`Event`] (two `u32` words) at byte `offset`.
    ///
    /// # Safety
    /// The memory is aligned, `offset` a multiple of 4 and `offset + 8 <= len`.
    pub(crate) unsafe fn event_at(&self, offset: usize) -> &'a Event {
        // SAFETY: the caller's guarantee; `Event` is two `u32` atomics.
        unsafe { self.at(offset) }
    }

    /// The [`Word`] at byte `offset`.
    ///
    /// # Safety
    /// The memory is aligned, `offset` a multiple of `WORD_BYTES` and
    /// `offset + WORD_BYTES <= len`.
    pub(crate) unsafe fn word_at(&self, offset: usize) -> &'a Word {
        // SAFETY: the caller's guarantee.
        unsafe { self.at(offset) }
    }

    /// `bytes / WORD_BYTES` words of payload memory from byte `offset`,
    /// accessed as atomics by every side at any time (seqlock data).
    ///
    /// # Safety
    /// The memory is aligned, `offset` and `bytes` multiples of 8, and
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
