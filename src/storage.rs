//! Slot memory inside structures built in place (a `static`, a local), with the
//! same bytes a region holds after its control block.

use crate::payload::slot_words;
use crate::sync::Word;

#[cfg(loom)]
pub(crate) use boxed::InlineSlots;
#[cfg(not(loom))]
pub(crate) use inline::InlineSlots;

#[cfg(not(loom))]
mod inline {
    use core::{cell::UnsafeCell, marker::PhantomData, mem::MaybeUninit};

    use super::{Word, slot_words};

    /// One slot: `T` padded to a multiple of 8 bytes.
    #[repr(C, align(8))]
    struct Padded<T>(T);

    /// `N` slots of `T`, zero-initialised, viewed as atomic words.
    ///
    /// # Layout
    /// `N` slots of `ElementLayout::of::<T>().slot_size()` bytes each, as in a region.
    #[repr(transparent)]
    pub(crate) struct InlineSlots<T, const N: usize> {
        cells: UnsafeCell<MaybeUninit<[Padded<T>; N]>>,
        _t: PhantomData<T>,
    }

    // SAFETY: the cells are only accessed through the atomic words `words()` hands
    // out, which are `Sync`.
    unsafe impl<T, const N: usize> Sync for InlineSlots<T, N> {}

    impl<T, const N: usize> InlineSlots<T, N> {
        pub(crate) const fn zeroed() -> Self {
            Self {
                // Zeroes every byte, padding included. Moving the value may
                // de-initialise the padding again (see `words`).
                cells: UnsafeCell::new(MaybeUninit::zeroed()),
                _t: PhantomData,
            }
        }

        /// The slots as words: `N * slot_words::<T>()` of them.
        ///
        /// Takes `&mut self` to re-zero each slot's padding (the bytes past
        /// `size_of::<T>()`): a move of the value is a typed copy, which need not
        /// keep the bytes that are padding in `T` (Miri makes them
        /// uninitialised), and the word covering them is loaded whole.
        pub(crate) fn words(&mut self) -> &[Word] {
            const {
                assert!(
                    core::mem::size_of::<Padded<T>>()
                        == crate::ElementLayout::of::<T>().slot_size() as usize,
                    "a padded slot has the slot size a region uses"
                );
            }
            let (size, slot) = (core::mem::size_of::<T>(), core::mem::size_of::<Padded<T>>());
            let base = self.cells.get_mut().as_mut_ptr().cast::<u8>();
            for index in 0..N {
                // SAFETY: slot `index` spans bytes `index * slot ..
                // (index + 1) * slot` of the cells, so its padding
                // `index * slot + size .. (index + 1) * slot` lies within them;
                // `&mut self` means no atomic view of them is in use.
                unsafe { base.add(index * slot + size).write_bytes(0, slot - size) };
            }
            let len = N * slot_words::<T>();
            // SAFETY: the cells span `N * size_of::<Padded<T>>()` =
            // `len * size_of::<Word>()` bytes (asserted above), aligned to 8 >=
            // `align_of::<Word>()`, all initialised (zeroed at construction, the
            // padding zeroed again above, and written only through these atomics
            // since). `UnsafeCell` permits the atomics' interior mutation through
            // the shared slice.
            unsafe { core::slice::from_raw_parts(self.cells.get().cast::<Word>(), len) }
        }
    }
}

#[cfg(loom)]
mod boxed {
    use core::marker::PhantomData;
    use std::boxed::Box;

    use super::{Word, slot_words};

    /// Under loom, atomics cannot be laid over plain memory: the slots are a
    /// boxed slice of loom atomics instead.
    pub(crate) struct InlineSlots<T, const N: usize> {
        words: Box<[Word]>,
        _t: PhantomData<T>,
    }

    impl<T, const N: usize> InlineSlots<T, N> {
        pub(crate) fn zeroed() -> Self {
            Self {
                words: (0..N * slot_words::<T>()).map(|_| Word::new(0)).collect(),
                _t: PhantomData,
            }
        }

        pub(crate) fn words(&mut self) -> &[Word] {
            &self.words
        }
    }
}
