//! The payloads that cross: each derived from an index, so the receiver can
//! regenerate the value it expects and compare every byte.
//!
//! All hold `u64` (or `f64`) fields, aligned to 8 on x86-64 and to 4 on i686:
//! the case that used to be refused although the bytes agree.

use zerocopy::{FromBytes, Immutable, IntoBytes};

/// A payload the exchange can make from an index and check bit for bit.
pub(crate) trait Sample: ipc_primitives::Pod + Copy + core::fmt::Debug {
    /// How reports name the type.
    const NAME: &'static str;

    /// The value number `index`.
    fn make(index: u64) -> Self;

    /// The index the value claims to be (garbage if the value is garbage).
    fn index(&self) -> u64;

    /// Whether `self` is exactly value number `index`, byte for byte (so
    /// `f64` fields compare by bits, not by value).
    fn is(&self, index: u64) -> bool {
        self.as_bytes() == Self::make(index).as_bytes()
    }
}

/// SplitMix64: a well-mixed word from a counter.
pub(crate) const fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The README's 64-byte message: the index, six mixed words and a checksum
/// of the seven before it. Past 56 bytes: a ring of it takes the index
/// protocol (slots without stamps).
pub(crate) type Block = [u64; 8];

impl Sample for Block {
    const NAME: &'static str = "[u64; 8]";

    fn make(index: u64) -> Self {
        let mut block = [0; 8];
        block[0] = index;
        for (k, word) in (1..).zip(&mut block[1..7]) {
            *word = mix(index.wrapping_mul(8).wrapping_add(k));
        }
        block[7] = block[..7]
            .iter()
            .fold(0, |sum: u64, word| sum.rotate_left(9) ^ word);
        block
    }

    fn index(&self) -> u64 {
        self[0]
    }
}

/// A record of mixed widths: `u64` fields at offsets 0 and 32 around `u32`s,
/// 40 bytes on both architectures: a ring of it has stamped slots.
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, Immutable)]
#[repr(C)]
pub(crate) struct Record {
    index: u64,
    words: [u32; 5],
    /// XOR of `words`.
    check: u32,
    mixed: u64,
}

impl Sample for Record {
    const NAME: &'static str = "Record { u64, [u32; 5], u32, u64 }";

    fn make(index: u64) -> Self {
        let mut words = [0; 5];
        for (k, word) in (0..).zip(&mut words) {
            // The low half: truncation intended.
            *word = mix(index ^ (k << 40)) as u32;
        }
        Self {
            index,
            words,
            check: words.iter().fold(0, |sum, word| sum ^ word),
            mixed: mix(!index),
        }
    }

    fn index(&self) -> u64 {
        self.index
    }
}

/// The README's seqlock value: an index and its mix, so a read that mixes
/// two writes shows.
pub(crate) type Pair = [u64; 2];

impl Sample for Pair {
    const NAME: &'static str = "[u64; 2]";

    fn make(index: u64) -> Self {
        [index, mix(index)]
    }

    fn index(&self) -> u64 {
        self[0]
    }
}

/// A quote holding an `f64`, 24 bytes on both architectures.
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, Immutable)]
#[repr(C)]
pub(crate) struct Quote {
    price: f64,
    size: u64,
    /// The low half of the index.
    index: u32,
    /// The high half of `price`'s bits XOR the low half of `size`.
    check: u32,
}

impl Sample for Quote {
    const NAME: &'static str = "Quote { f64, u64, u32, u32 }";

    fn make(index: u64) -> Self {
        // Fractions with long mantissas, so every bit of the `f64` matters.
        let price = index as f64 / 3.0 + 0.1;
        let size = mix(index);
        Self {
            price,
            size,
            // Halves: truncation intended.
            index: index as u32,
            check: (price.to_bits() >> 32) as u32 ^ size as u32,
        }
    }

    fn index(&self) -> u64 {
        u64::from(self.index)
    }
}

/// A type that really differs: 16 bytes on i686, 32 on x86-64. Attaching to
/// a ring of it made by the other architecture must fail.
pub(crate) type Wide = [usize; 4];
