//! Helpers for the unit tests: memory a structure lives in, and a stand-in for
//! the peer process, which writes any of its bytes while this process's
//! handles are live.

use core::ops::Range;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU32, Ordering};
use std::boxed::Box;

use zerocopy::IntoBytes;

use crate::{Line, Region};

/// `len` bytes of zeroed, 128-aligned memory, freed on drop.
#[derive(Debug)]
pub(crate) struct Shared {
    base: NonNull<u8>,
    len: usize,
    lines: usize,
}

// SAFETY: the memory is owned like a `Box`, and only ever accessed through
// atomics, from any thread.
unsafe impl Send for Shared {}
// SAFETY: as for `Send`: `&Shared` only hands out atomic access.
unsafe impl Sync for Shared {}

impl Shared {
    pub(crate) fn new(len: usize) -> Self {
        let lines = Box::leak(std::vec![Line::ZERO; Line::count_for(len)].into_boxed_slice());
        Self {
            len,
            lines: lines.len(),
            base: NonNull::from(lines.as_mut_bytes()).cast(),
        }
    }

    /// A region over the memory, for one kind of structure.
    pub(crate) fn region(&self) -> Region<'_> {
        // SAFETY: the bytes are owned by `self` (valid for reads and writes
        // while it is borrowed) and zeroed; this process reaches them only
        // through the crate's structures (each test puts one kind in them) and
        // `poke`'s atomics, which stand for the peer process the contract
        // allows.
        unsafe { Region::from_raw_parts(self.base, self.len) }
    }

    /// Stores `value` into the `u32` at byte `offset`, as a peer process could.
    pub(crate) fn poke(&self, offset: usize, value: u32) {
        self.word(offset).store(value, Ordering::Release);
    }

    /// Loads the `u32` at byte `offset`, as a peer process could.
    pub(crate) fn peek(&self, offset: usize) -> u32 {
        self.word(offset).load(Ordering::Acquire)
    }

    /// The `u32` at byte `offset`.
    fn word(&self, offset: usize) -> &AtomicU32 {
        assert!(offset.is_multiple_of(4) && offset + 4 <= self.len);
        // SAFETY: in bounds and aligned (asserted); the crate accesses those
        // bytes only through atomics, as `u32`s where it accesses them at all,
        // and the reference lives no longer than `self`, which owns them.
        unsafe { AtomicU32::from_ptr(self.base.as_ptr().add(offset).cast()) }
    }

    /// Scribbles `rounds` times over every 4-byte word in `ranges`, as a peer
    /// process could: the bytes a structure never reads (its padding).
    pub(crate) fn scribble(&self, ranges: &[Range<usize>], rounds: u32) {
        for round in 0..rounds {
            for range in ranges {
                for offset in range.clone().step_by(4) {
                    self.poke(offset, round.wrapping_mul(0x9e37_79b9) ^ offset as u32);
                }
            }
        }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        let lines = NonNull::slice_from_raw_parts(self.base.cast::<Line>(), self.lines);
        // SAFETY: `base` and `lines` are the boxed slice leaked in `new`, and
        // no region outlives `self` (they borrow it).
        drop(unsafe { Box::from_raw(lines.as_ptr()) });
    }
}
