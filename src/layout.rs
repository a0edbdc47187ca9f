//! The building blocks of every shared layout: the fixed 128-byte line, the
//! structure kinds, and the element layout a region records.
//!
//! Everything shared is `#[repr(C)]`-like, with fixed-width fields at fixed
//! offsets and a fixed 128-byte line, so a 32-bit and a 64-bit process, or a
//! Cortex-M and an x86-64 build, agree on every offset. Control words are
//! native-endian (a peer of the other byte order is refused at attach, see
//! [`AttachError::WrongByteOrder`](crate::AttachError::WrongByteOrder));
//! payload bytes are copied as they are, in the element type's own
//! representation.

use core::fmt;

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// The cache-line size every shared layout assumes, on every target.
///
/// 128 covers the adjacent-line prefetcher of x86-64 and the 128-byte lines of
/// some Arm and POWER cores; using one fixed value (rather than a per-target one
/// such as crossbeam's `CachePadded`) keeps the layout identical everywhere.
pub const LINE: usize = 128;

/// 128 bytes aligned to 128: a building block for memory to place a structure in.
///
/// `vec![Line::ZERO; n]` or a `static` array of lines gives memory with the
/// alignment [`Region`](crate::Region) needs, without `unsafe`:
/// `Region::new(lines.as_mut_bytes())` (via [`zerocopy::IntoBytes`]).
#[derive(Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C, align(128))]
pub struct Line(pub [u8; LINE]);

impl Line {
    /// A line of zero bytes.
    pub const ZERO: Self = Self([0; LINE]);

    /// How many lines hold `bytes` bytes.
    pub const fn count_for(bytes: usize) -> usize {
        bytes.div_ceil(LINE)
    }
}

impl fmt::Debug for Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Line(..)")
    }
}

/// Identifies a region's structure: `b"IPCP"` read as a little-endian `u32`.
///
/// Written native-endian like every control word, so a peer of the other byte
/// order reads it byte-swapped.
pub const MAGIC: u32 = u32::from_le_bytes(*b"IPCP");

/// The version of every layout in this crate; bumped on any change to it.
///
/// Version 2 records the element's size and slot stride (not its alignment,
/// which differs between targets without changing any byte in memory), an
/// optional type tag, and a creation sequence that lets an attacher detect a
/// concurrent (re-)creation. Version 3 seals each record header of a
/// [record ring](crate::bytes) and a [lane](crate::lanes) with its position.
/// Version 4 drops the stamps from the slots of [SPSC rings](crate::spsc)
/// whose elements are larger than 56 bytes; version 5 does the same for
/// [broadcast rings](crate::broadcast), which gain an `intent` word.
pub const ABI_VERSION: u32 = 5;

/// Which structure a region holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u32)]
#[non_exhaustive]
pub enum Kind {
    /// A single-producer single-consumer ring ([`crate::spsc`]).
    Spsc = 1,
    /// A single-writer sequence lock ([`crate::seqlock`]).
    SeqLock = 2,
    /// A one-writer, many-reader broadcast ring (`crate::broadcast`).
    Broadcast = 3,
    /// A single-producer ring of variable-length records (`crate::bytes`).
    Bytes = 4,
    /// Fan-in: single-producer lanes into one consumer (`crate::lanes`).
    Lanes = 5,
    /// A directory of the parts of a region laid out to hold several
    /// structures.
    Layout = 6,
}

impl Kind {
    /// The kind a header's raw value names, if any.
    pub const fn from_raw(raw: u32) -> Option<Self> {
        match raw {
            1 => Some(Self::Spsc),
            2 => Some(Self::SeqLock),
            3 => Some(Self::Broadcast),
            4 => Some(Self::Bytes),
            5 => Some(Self::Lanes),
            6 => Some(Self::Layout),
            _ => None,
        }
    }

    /// The kind's name, as `Display` prints it.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Spsc => "SPSC ring",
            Self::SeqLock => "seqlock",
            Self::Broadcast => "broadcast ring",
            Self::Bytes => "record ring",
            Self::Lanes => "fan-in lanes",
            Self::Layout => "layout directory",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The largest element size: slot strides are `u32` multiples of 8.
pub const MAX_ELEMENT_SIZE: usize = (!7_u32) as usize;

/// What the shared layout of an element type depends on: its size, and the
/// bytes a slot gives it (the stride).
///
/// Alignment is deliberately absent: payloads are copied word by word into a
/// local value and never referenced in place, so an element's alignment does
/// not change a single byte in memory. `u64` is aligned to 4 on i686 and to 8 on
/// x86-64; both lay a `[u64; 8]` out in the same 64 bytes, and attach to each
/// other's rings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ElementLayout {
    /// `size_of::<T>()`.
    pub size: u32,
    /// Bytes an element occupies in a slot: its size rounded up to 8, so every
    /// slot starts on an 8-byte boundary whatever the target.
    pub stride: u32,
}

impl ElementLayout {
    /// The layout of `T`.
    ///
    /// A type larger than [`MAX_ELEMENT_SIZE`] is refused at compile time:
    ///
    /// ```compile_fail
    /// let _ = ipc_primitives::ElementLayout::of::<[u8; 1 << 32]>();
    /// ```
    pub const fn of<T>() -> Self {
        const {
            assert!(
                core::mem::size_of::<T>() <= MAX_ELEMENT_SIZE,
                "element type larger than MAX_ELEMENT_SIZE (4 GiB - 8)"
            );
        }
        // In range: checked above.
        let size = core::mem::size_of::<T>() as u32;
        Self {
            size,
            stride: size.next_multiple_of(8),
        }
    }

    /// Whether slots of this element carry an 8-byte stamp beside it (the
    /// [SPSC](crate::spsc) and [broadcast](crate::broadcast) rings): stamp and
    /// element then share one 64-byte cache line, so a reader learns that a
    /// slot is whole from the line it copies. Larger elements span two lines
    /// whatever is added; their rings publish through a counter instead.
    pub(crate) const fn stamped(self) -> bool {
        self.stride <= STAMPED_STRIDE
    }
}

/// The largest stride whose slots are [stamped](ElementLayout::stamped): an
/// 8-byte stamp and such an element fill at most one 64-byte cache line.
pub(crate) const STAMPED_STRIDE: u32 = 56;

impl fmt::Display for ElementLayout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-byte elements (stride {})", self.size, self.stride)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn element_layout_rounds_the_stride_to_8() {
        assert_eq!(
            ElementLayout::of::<u8>(),
            ElementLayout { size: 1, stride: 8 }
        );
        assert_eq!(
            ElementLayout::of::<[u64; 8]>(),
            ElementLayout {
                size: 64,
                stride: 64
            }
        );
        assert_eq!(
            ElementLayout::of::<[u8; 13]>(),
            ElementLayout {
                size: 13,
                stride: 16
            }
        );
        assert_eq!(
            ElementLayout::of::<()>(),
            ElementLayout { size: 0, stride: 0 }
        );
    }

    #[test]
    fn kinds_print_by_name_and_round_trip() {
        for kind in [
            Kind::Spsc,
            Kind::SeqLock,
            Kind::Broadcast,
            Kind::Bytes,
            Kind::Lanes,
            Kind::Layout,
        ] {
            assert_eq!(Kind::from_raw(kind as u32), Some(kind));
        }
        assert_eq!(Kind::from_raw(0), None);
        assert_eq!(std::format!("{}", Kind::SeqLock), "seqlock");
        assert_eq!(
            std::format!("{}", ElementLayout::of::<[u8; 13]>()),
            "13-byte elements (stride 16)"
        );
    }

    #[test]
    fn lines_count_bytes() {
        assert_eq!(Line::count_for(0), 0);
        assert_eq!(Line::count_for(1), 1);
        assert_eq!(Line::count_for(128), 1);
        assert_eq!(Line::count_for(129), 2);
        assert_eq!(std::format!("{:?}", Line::ZERO), "Line(..)");
    }
}
