//! Memory for structures built in place (a `static`, a local): the bytes of a
//! region holding one structure, zeroed, and the flags that hand its sides out
//! once.

use core::marker::PhantomData;

use crate::Region;
#[cfg(not(loom))]
use crate::sync::if_take_flag;

#[cfg(not(loom))]
pub(crate) use inline::StaticMemory;
#[cfg(loom)]
pub(crate) use modelled::StaticMemory;

#[cfg(not(loom))]
mod inline {
    use core::{cell::UnsafeCell, mem::MaybeUninit};

    use super::{PhantomData, Region, if_take_flag};
    use crate::layout::Line;

    /// The bytes of a region with `L` control lines and `N` slots of `T`, each
    /// with `O` bytes beside the element.
    ///
    /// No padding before the end of `overhead`, so moving the value (a typed
    /// copy, which need not keep padding bytes) keeps every byte a structure
    /// reads: `[Line; L]` is a multiple of 128 bytes (asserted to be a
    /// multiple of `T`'s alignment), `[T; N]` has none (`Pod` types have no
    /// padding), and the byte arrays have alignment 1. Together they hold at
    /// least `N * (O + stride)` bytes, as a stride is the size rounded up to 8:
    /// at most 7 more.
    #[repr(C, align(128))]
    struct Bytes<T, const N: usize, const L: usize, const O: usize> {
        control: [Line; L],
        slots: [T; N],
        rounding: [[u8; 7]; N],
        overhead: [[u8; O]; N],
    }

    /// Zeroed memory for a structure with `L` control lines and `N` slots of
    /// `T` (with `O` bytes beside each element), and two take-once flags.
    pub(crate) struct StaticMemory<T, const N: usize, const L: usize, const O: usize> {
        bytes: UnsafeCell<MaybeUninit<Bytes<T, N, L, O>>>,
        #[cfg(any(target_has_atomic = "8", feature = "portable-atomic"))]
        taken: [crate::sync::TakeFlag; 2],
        _t: PhantomData<T>,
    }

    // SAFETY: the bytes are reached only through `Region`s, whose structures
    // access them only through atomics; the flags are atomics.
    unsafe impl<T, const N: usize, const L: usize, const O: usize> Sync for StaticMemory<T, N, L, O> {}

    impl<T, const N: usize, const L: usize, const O: usize> StaticMemory<T, N, L, O> {
        /// All zeroes: every structure's initial state, and no header yet.
        pub(crate) const fn zeroed() -> Self {
            const {
                assert!(
                    core::mem::align_of::<T>() <= crate::layout::LINE,
                    "element types aligned to more than 128 bytes are not supported"
                );
            }
            Self {
                bytes: UnsafeCell::new(MaybeUninit::zeroed()),
                #[cfg(any(target_has_atomic = "8", feature = "portable-atomic"))]
                taken: [const { crate::sync::TakeFlag::new(false) }; 2],
                _t: PhantomData,
            }
        }

        /// A region over the memory.
        ///
        /// Every caller views it as the same structure (the one type that owns
        /// this memory), so regions made by several calls only ever reach the
        /// same atomics with the same types.
        pub(crate) fn region(&self) -> Region<'_> {
            let ptr = core::ptr::NonNull::from(&self.bytes).cast::<u8>();
            // SAFETY: `from_raw_parts` asks, for the borrow of `self`:
            // 1. valid for reads and writes: the bytes are this value's own,
            //    inside an `UnsafeCell`, which permits writes through a shared
            //    reference;
            // 2. initialised: zeroed at construction, and a move keeps every
            //    byte a structure reads (see `Bytes`);
            // 3. accessed only through the crate's structures: the cell is
            //    private, and every region made here holds the same kind of
            //    structure (see above).
            unsafe { Region::from_raw_parts(ptr, core::mem::size_of::<Bytes<T, N, L, O>>()) }
        }
    }

    if_take_flag! {
        impl<T, const N: usize, const L: usize, const O: usize> StaticMemory<T, N, L, O> {
            /// Whether this call is the first to take side `side` (0 or 1).
            pub(crate) fn take(&self, side: usize) -> bool {
                !self.taken[side].swap(true, crate::sync::Ordering::Relaxed)
            }
        }
    }
}

#[cfg(loom)]
mod modelled {
    use std::boxed::Box;

    use super::{PhantomData, Region};
    use crate::region::LoomMemory;
    use crate::sync::{Ordering, TakeFlag};

    /// Under loom, atomics cannot be laid over plain memory: the memory is
    /// modelled, one loom object per word.
    pub(crate) struct StaticMemory<T, const N: usize, const L: usize, const O: usize> {
        memory: Box<LoomMemory>,
        taken: [TakeFlag; 2],
        _t: PhantomData<T>,
    }

    impl<T, const N: usize, const L: usize, const O: usize> StaticMemory<T, N, L, O> {
        pub(crate) fn zeroed() -> Self {
            let stride = crate::ElementLayout::of::<T>().stride as usize;
            Self {
                memory: Box::new(LoomMemory::new(L * crate::layout::LINE + N * (O + stride))),
                taken: [TakeFlag::new(false), TakeFlag::new(false)],
                _t: PhantomData,
            }
        }

        pub(crate) fn region(&self) -> Region<'_> {
            Region::loom(&self.memory)
        }

        pub(crate) fn take(&self, side: usize) -> bool {
            !self.taken[side].swap(true, Ordering::Relaxed)
        }
    }
}
