//! Reference models of `ipc-primitives`' structures: what a correct ring
//! must hold and report after each operation. The property tests in
//! `tests/*_model.rs` and the fuzz targets in `fuzz/` both check the crate
//! against these.
//!
//! `tests/fuzz_regressions.rs` in the root crate includes this file with
//! `#[path]` (the root crate has no dev-dependencies), so the modules use
//! only `ipc-primitives` and `std`, and reach each other through
//! `super::`, never `crate::`.

use core::fmt::Debug;

use ipc_primitives::Pod;

pub mod broadcast;
pub mod bytes;
#[cfg(target_has_atomic = "32")]
pub mod lanes;
pub mod spsc;

/// An element type under test, with a distinct value for every counter value.
pub trait Elem: Pod + Copy + PartialEq + Debug {
    /// The `n`th value; `make(0)` serves as a sentinel and is never pushed.
    fn make(n: u64) -> Self;

    /// A value read from raw bytes (zero-extended if there are too few).
    fn from_raw(bytes: &[u8]) -> Self {
        let mut value = Self::new_zeroed();
        let dst = value.as_mut_bytes();
        let n = dst.len().min(bytes.len());
        dst[..n].copy_from_slice(&bytes[..n]);
        value
    }
}

/// Record `n` of `len` bytes, for the record rings: from 4 bytes on, each
/// `n` has its own.
fn record(n: u32, len: usize) -> Vec<u8> {
    let seed = n.wrapping_mul(0x9e37_79b9);
    (0..len)
        .map(|i| (seed >> (i % 4 * 8)) as u8 ^ (i / 4) as u8)
        .collect()
}

/// Spreads `n` over every bit: multiplying by an odd constant is a bijection.
fn mix(n: u64) -> u64 {
    n.wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// 13 bytes, alignment 1: a slot of two words whose second word is 5/8 used.
impl Elem for [u8; 13] {
    fn make(n: u64) -> Self {
        let mut out = [0; 13];
        out[..8].copy_from_slice(&mix(n).to_le_bytes());
        out[8..].copy_from_slice(&(n ^ 0xa5_a5a5_a5a5).to_le_bytes()[..5]);
        out
    }
}

/// 12 bytes, alignment 4: a slot of two words whose second word is half used.
impl Elem for [u32; 3] {
    fn make(n: u64) -> Self {
        let m = mix(n);
        [m as u32, (m >> 32) as u32, n as u32 ^ 0x5a5a_5a5a]
    }
}

/// 8 bytes, alignment 8: exactly one word.
impl Elem for u64 {
    fn make(n: u64) -> Self {
        mix(n)
    }
}

/// 56 bytes, alignment 8: the largest element an SPSC ring stamps (its slot,
/// stamp and payload, is one 64-byte line).
impl Elem for [u64; 7] {
    fn make(n: u64) -> Self {
        core::array::from_fn(|k| mix(n) ^ (k as u64).rotate_right(8))
    }
}

/// 61 bytes, alignment 1: past the largest stamped stride, so an SPSC ring
/// of it takes the index protocol; eight words, the last 5/8 used.
impl Elem for [u8; 61] {
    fn make(n: u64) -> Self {
        let word = mix(n).to_le_bytes();
        core::array::from_fn(|k| word[k % 8] ^ (k / 8) as u8)
    }
}

/// 64 bytes, alignment 8: a whole cache line, past the largest stamped
/// stride (a broadcast ring of it has counted slots, message alone).
impl Elem for [u64; 8] {
    fn make(n: u64) -> Self {
        core::array::from_fn(|k| mix(n).rotate_left(8 * k as u32) ^ k as u64)
    }
}
