//! The one place atomics come from.
//!
//! Every structure imports its atomics from here, never from `core::sync::atomic`
//! directly (a `clippy.toml` `disallowed-types` entry enforces it). The source is:
//! - `loom` under `cfg(loom)`, so the model checker sees every access;
//! - `portable-atomic` with the `portable-atomic` feature (see its doc in `Cargo.toml`);
//! - `core` otherwise.
//!
//! The core only ever loads and stores atomics (no compare-and-swap), so it builds
//! on targets such as `thumbv6m-none-eabi` and `riscv32imc-unknown-none-elf` with
//! `core` atomics alone.
#![allow(clippy::disallowed_types)]

#[cfg(not(any(loom, feature = "portable-atomic")))]
pub(crate) use core::sync::atomic::{AtomicU32, Ordering, fence};
#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicU32, Ordering, fence};
#[cfg(all(not(loom), feature = "portable-atomic"))]
pub(crate) use portable_atomic::{AtomicU32, Ordering, fence};

/// The unit in which payloads are copied in and out of shared memory: the widest
/// native atomic. Its width changes only how a payload is copied, never the bytes
/// in memory, so 32- and 64-bit peers share one layout.
#[cfg(not(target_has_atomic = "64"))]
pub(crate) use AtomicU32 as Word;
#[cfg(all(target_has_atomic = "64", not(any(loom, feature = "portable-atomic"))))]
pub(crate) use core::sync::atomic::AtomicU64 as Word;
#[cfg(all(target_has_atomic = "64", loom))]
pub(crate) use loom::sync::atomic::AtomicU64 as Word;
#[cfg(all(target_has_atomic = "64", not(loom), feature = "portable-atomic"))]
pub(crate) use portable_atomic::AtomicU64 as Word;

/// The integer a [`Word`] holds.
#[cfg(target_has_atomic = "64")]
pub(crate) type WordInt = u64;
#[cfg(not(target_has_atomic = "64"))]
pub(crate) type WordInt = u32;

/// Bytes in one [`Word`].
pub(crate) const WORD_BYTES: usize = core::mem::size_of::<WordInt>();

/// Whether the atomics this crate puts in shared memory are lock-free, as memory
/// shared with another process requires: `core` has atomic types only where they
/// are native; portable-atomic may fall back to a lock kept in this process.
#[cfg(all(not(loom), feature = "portable-atomic"))]
pub(crate) const LOCK_FREE: bool = AtomicU32::is_always_lock_free() && Word::is_always_lock_free();
#[cfg(any(loom, not(feature = "portable-atomic")))]
pub(crate) const LOCK_FREE: bool = true;

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
