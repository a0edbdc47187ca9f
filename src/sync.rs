//! The one place atomics come from.
//!
//! Every structure imports its atomics from here, never from `core::sync::atomic`
//! directly (`.ci/run` checks that no other file in `src/` names `AtomicU32` or
//! `AtomicU64` from `core` or `std`). The source is `loom` under `cfg(loom)`, so
//! the model checker sees every access, and `core` otherwise.
//!
//! Shared memory is only ever loaded from and stored to (no compare-and-swap), so
//! the core needs native atomic loads and stores of 32 bits and nothing more:
//! `thumbv6m-none-eabi` and `riscv32imc-unknown-none-elf` have them without
//! compare-and-swap. The lock-based fallbacks of portable-atomic are never used
//! for shared memory: their lock lives in one address space, so they protect
//! nothing against another core or process (see [`TakeFlag`] for the one place
//! the `portable-atomic` feature is used).

// Targets whose widest native atomic is narrower than 32 bits have nothing to
// share a ring with; say so instead of failing on an unresolved import.
#[cfg(any(target_arch = "avr", target_arch = "msp430"))]
compile_error!(
    "ipc-primitives needs native 32-bit atomic loads and stores (`AtomicU32`), which this \
     target lacks; portable-atomic's lock-based fallback cannot stand in for them, because \
     memory shared with another core or process is not protected by a lock kept in this one"
);

#[cfg(not(loom))]
pub(crate) use core::sync::atomic::{AtomicU32, Ordering, fence};
#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicU32, Ordering, fence};

#[cfg(not(all(target_pointer_width = "64", target_has_atomic = "64")))]
pub(crate) use AtomicU32 as Word;
/// The unit in which payloads are copied in and out of shared memory: 64 bits on
/// 64-bit targets with 64-bit atomics, 32 bits elsewhere. Its width changes only
/// how a payload is copied, never the bytes in memory, so 32- and 64-bit peers
/// share one layout.
///
/// 32-bit targets copy 32-bit words even where they have 64-bit atomics (i686,
/// 32-bit Arm): there a 64-bit atomic load may be a compare-and-swap (a write),
/// which faults on a read-only mapping and costs more than two plain loads.
#[cfg(all(not(loom), target_pointer_width = "64", target_has_atomic = "64"))]
pub(crate) use core::sync::atomic::AtomicU64 as Word;
#[cfg(all(loom, target_pointer_width = "64", target_has_atomic = "64"))]
pub(crate) use loom::sync::atomic::AtomicU64 as Word;

/// The integer a [`Word`] holds.
#[cfg(all(target_pointer_width = "64", target_has_atomic = "64"))]
pub(crate) type WordInt = u64;
/// The integer a [`Word`] holds.
#[cfg(not(all(target_pointer_width = "64", target_has_atomic = "64")))]
pub(crate) type WordInt = u32;

/// Bytes in one [`Word`].
pub(crate) const WORD_BYTES: usize = core::mem::size_of::<WordInt>();

/// A word of ring slot memory: a relaxed atomic in real builds. Under loom it
/// is a causality-checked cell instead, so that a model reports a slot written
/// by one side while the other may still be copying it, which relaxed atomics
/// would let pass unnoticed.
#[cfg(not(loom))]
pub(crate) type SlotWord = Word;
/// A word of ring slot memory (see the non-loom definition).
#[cfg(loom)]
pub(crate) type SlotWord = loom::cell::UnsafeCell<WordInt>;

/// Loads and stores of one word of payload memory.
pub(crate) trait WordCell {
    /// The word's value.
    fn get(&self) -> WordInt;
    /// Replaces the word's value.
    fn set(&self, value: WordInt);
}

impl WordCell for Word {
    #[inline(always)]
    fn get(&self) -> WordInt {
        self.load(Ordering::Relaxed)
    }

    #[inline(always)]
    fn set(&self, value: WordInt) {
        self.store(value, Ordering::Relaxed);
    }
}

#[cfg(loom)]
impl WordCell for SlotWord {
    fn get(&self) -> WordInt {
        // SAFETY: loom checks that no write to this cell races with the read
        // (it panics instead); the cell holds a plain integer.
        self.with(|word| unsafe { *word })
    }

    fn set(&self, value: WordInt) {
        // SAFETY: loom checks that no other access races with the write.
        self.with_mut(|word| unsafe { *word = value });
    }
}

/// A flag taken once, by whichever caller swaps it first.
///
/// Taking needs an atomic swap: native where the target has compare-and-swap,
/// from portable-atomic (feature `portable-atomic`) on targets without it, such
/// as `thumbv6m-none-eabi`, where portable-atomic needs its `critical-section`
/// feature or `--cfg portable_atomic_unsafe_assume_single_core`. This flag
/// lives in process-local memory, never in memory shared with a peer, so a
/// critical section protects it fully.
#[cfg(all(not(loom), target_has_atomic = "8"))]
pub(crate) use core::sync::atomic::AtomicBool as TakeFlag;
#[cfg(loom)]
pub(crate) use loom::sync::atomic::AtomicBool as TakeFlag;
#[cfg(all(not(loom), not(target_has_atomic = "8"), feature = "portable-atomic"))]
pub(crate) use portable_atomic::AtomicBool as TakeFlag;

/// Whether `TakeFlag` exists on this target (see its docs).
macro_rules! if_take_flag {
    ($($item:item)*) => {$(
        #[cfg(any(loom, target_has_atomic = "8", feature = "portable-atomic"))]
        #[cfg_attr(docsrs, doc(cfg(any(target_has_atomic = "8", feature = "portable-atomic"))))]
        $item
    )*};
}
pub(crate) use if_take_flag;

/// Tells the CPU (or loom's scheduler) that this thread is waiting for another.
#[inline]
pub(crate) fn spin_loop() {
    #[cfg(loom)]
    loom::hint::spin_loop();
    #[cfg(not(loom))]
    core::hint::spin_loop();
}

/// Declares a function that is `const` except under loom, whose atomics have no
/// `const` constructor.
macro_rules! const_fn_unless_loom {
    ($(#[$attr:meta])* $vis:vis fn $($rest:tt)*) => {
        #[cfg(not(loom))]
        $(#[$attr])* $vis const fn $($rest)*
        #[cfg(loom)]
        $(#[$attr])* $vis fn $($rest)*
    };
}
pub(crate) use const_fn_unless_loom;
