//! The one place atomics come from.
//!
//! Every structure imports its atomics from here, never from `core::sync::atomic`
//! directly (`.ci/run` checks that no other file in `src/` names `AtomicU32` or
//! `AtomicU64` from `core` or `std`). The source is:
//! - `loom` under `cfg(loom)`, so the model checker sees every access;
//! - `portable-atomic` with the `portable-atomic` feature (see its doc in `Cargo.toml`);
//! - `core` otherwise.
//!
//! The core only ever loads and stores atomics (no compare-and-swap), so it builds
//! on targets such as `thumbv6m-none-eabi` and `riscv32imc-unknown-none-elf` with
//! `core` atomics alone.

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

// The Linux adapters share this crate's atomics with other processes, whose
// atomics must agree with ours: `core` has atomic types only where they are
// native, but portable-atomic may fall back to a lock kept in this process.
#[cfg(all(feature = "linux", feature = "portable-atomic", not(loom)))]
const _: () = assert!(
    AtomicU32::is_always_lock_free() && Word::is_always_lock_free(),
    "the Linux adapters need lock-free atomics: portable-atomic falls back to locks on this target"
);

/// `word` as the `core` atomic that rustix's futex calls take: the same type
/// without portable-atomic.
#[cfg(all(
    feature = "linux",
    target_os = "linux",
    not(any(loom, feature = "portable-atomic"))
))]
pub(crate) fn as_core_atomic(word: &AtomicU32) -> &core::sync::atomic::AtomicU32 {
    word
}

/// `word` as the `core` atomic that rustix's futex calls take.
#[cfg(all(
    feature = "linux",
    target_os = "linux",
    not(loom),
    feature = "portable-atomic"
))]
pub(crate) fn as_core_atomic(word: &AtomicU32) -> &core::sync::atomic::AtomicU32 {
    // SAFETY: `from_ptr` asks for a pointer aligned for `core`'s `AtomicU32`
    // (4 bytes), valid for reads and writes for the returned lifetime, and only
    // accessed atomically meanwhile. portable-atomic's `AtomicU32` is
    // `#[repr(C, align(4))]` around one `u32`, so `as_ptr` gives a 4-aligned
    // pointer to 4 bytes owned by `word`; the signature ties the result to the
    // borrow of `word`, so they stay valid; and the Linux adapters assert the
    // type lock-free (the `const` assertion above), where all its
    // operations are native 32-bit atomic instructions, as `core`'s are.
    unsafe { core::sync::atomic::AtomicU32::from_ptr(word.as_ptr()) }
}

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
