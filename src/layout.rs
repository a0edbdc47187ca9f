//! What every shared region looks like: cache-line padding and the region header.
//!
//! All of it is `#[repr(C)]` with fixed-width fields and a fixed 128-byte line, so a
//! 32-bit and a 64-bit process, or a Cortex-M and an x86-64 build, agree on every
//! offset. The assertions at the bottom of this file check it on every target.

use core::fmt;

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::sync::{AtomicU32, Ordering, const_fn_unless_loom};

/// The cache-line size every shared layout assumes, on every target.
///
/// 128 covers the adjacent-line prefetcher of x86-64 and the 128-byte lines of
/// some Arm and POWER cores; using one fixed value (rather than a per-target one
/// such as crossbeam's `CachePadded`) keeps the layout identical everywhere.
pub const LINE: usize = 128;

/// Pads and aligns `T` to its own 128-byte line so that counters written by
/// different sides never share a cache line.
///
/// # Layout
/// Size and alignment are both 128 on every target, for any `T` of at most 128
/// bytes (the types this crate puts in it are 4- and 8-byte atomics).
#[derive(Debug, Default)]
#[repr(C, align(128))]
pub(crate) struct CacheLine<T>(pub(crate) T);

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
pub const MAGIC: u32 = u32::from_le_bytes(*b"IPCP");

/// The version of every layout in this crate; bumped on any change to it.
pub const ABI_VERSION: u32 = 1;

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
}

impl Kind {
    /// The kind a header's raw value names, if any.
    pub const fn from_raw(raw: u32) -> Option<Self> {
        match raw {
            1 => Some(Self::Spsc),
            2 => Some(Self::SeqLock),
            _ => None,
        }
    }
}

/// Size and alignment of the element type a structure carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ElementLayout {
    /// `size_of::<T>()`.
    pub size: u32,
    /// `align_of::<T>()`.
    pub align: u32,
}

impl ElementLayout {
    /// The layout of `T`.
    ///
    /// # Panics
    /// At compile time, if `T` is larger than `u32::MAX` bytes.
    pub const fn of<T>() -> Self {
        let size = core::mem::size_of::<T>();
        assert!(size <= u32::MAX as usize, "element type larger than 4 GiB");
        Self {
            size: size as u32,
            align: core::mem::align_of::<T>() as u32,
        }
    }

    /// Bytes one element occupies in shared memory: its size rounded up to 8, so
    /// that every slot starts on an 8-byte boundary whatever the target.
    pub const fn slot_size(self) -> u32 {
        self.size.next_multiple_of(8)
    }
}

/// The header at the start of every region.
///
/// Every field is written by the creator before `magic`, which is published last
/// with `Release`; an attacher loads `magic` with `Acquire` and then reads the rest.
/// The magic word doubles as the init state: zero until the header is complete.
/// Another process may rewrite any field at any time, so all of them are atomics
/// and are read once, at attach, then validated.
///
/// # Layout
/// 128 bytes, aligned to 128, all fields `u32`:
///
/// | offset | field        | meaning                                     |
/// |--------|--------------|---------------------------------------------|
/// | 0      | `magic`      | [`MAGIC`] once initialised, else 0           |
/// | 4      | `version`    | [`ABI_VERSION`]                              |
/// | 8      | `kind`       | [`Kind`] as `u32`                            |
/// | 12     | `elem_size`  | `size_of` of the element type               |
/// | 16     | `elem_align` | `align_of` of the element type              |
/// | 20     | `slot_size`  | bytes per slot: `elem_size` rounded up to 8  |
/// | 24     | `capacity`   | number of slots                             |
/// | 28     | (padding)    | never read or written                       |
#[repr(C, align(128))]
pub(crate) struct Header {
    magic: AtomicU32,
    version: AtomicU32,
    kind: AtomicU32,
    elem_size: AtomicU32,
    elem_align: AtomicU32,
    slot_size: AtomicU32,
    capacity: AtomicU32,
}

/// Everything a header records, read out of shared memory into a plain value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fingerprint {
    pub(crate) kind: Kind,
    pub(crate) elem: ElementLayout,
    pub(crate) capacity: u32,
}

impl Header {
    const_fn_unless_loom! {
        /// A complete header, for structures built in place (e.g. in a `static`),
        /// where nobody can observe the memory before it is initialised.
        pub(crate) fn new(fp: Fingerprint) -> Self {
            Self {
                magic: AtomicU32::new(MAGIC),
                version: AtomicU32::new(ABI_VERSION),
                kind: AtomicU32::new(fp.kind as u32),
                elem_size: AtomicU32::new(fp.elem.size),
                elem_align: AtomicU32::new(fp.elem.align),
                slot_size: AtomicU32::new(fp.elem.slot_size()),
                capacity: AtomicU32::new(fp.capacity),
            }
        }
    }

    /// Withdraws the magic so that nobody attaches while the rest is rewritten.
    pub(crate) fn begin_init(&self) {
        self.magic.store(0, Ordering::Relaxed);
    }

    /// Writes every field but the magic.
    pub(crate) fn write(&self, fp: Fingerprint) {
        self.version.store(ABI_VERSION, Ordering::Relaxed);
        self.kind.store(fp.kind as u32, Ordering::Relaxed);
        self.elem_size.store(fp.elem.size, Ordering::Relaxed);
        self.elem_align.store(fp.elem.align, Ordering::Relaxed);
        self.slot_size.store(fp.elem.slot_size(), Ordering::Relaxed);
        self.capacity.store(fp.capacity, Ordering::Relaxed);
    }

    /// Publishes the header and everything written before it.
    pub(crate) fn publish(&self) {
        self.magic.store(MAGIC, Ordering::Release);
    }

    /// Reads the header once and checks it against what the caller expects,
    /// returning the capacity it records. `capacity_ok` judges the structure's
    /// capacity rule; the region's size is checked by the caller.
    pub(crate) fn validate(
        &self,
        kind: Kind,
        elem: ElementLayout,
        capacity_ok: fn(u32) -> bool,
    ) -> Result<u32, crate::AttachError> {
        use crate::AttachError as E;
        match self.magic.load(Ordering::Acquire) {
            MAGIC => {}
            0 => return Err(E::NotInitialized),
            found => return Err(E::WrongMagic { found }),
        }
        let version = self.version.load(Ordering::Relaxed);
        if version != ABI_VERSION {
            return Err(E::WrongVersion {
                expected: ABI_VERSION,
                found: version,
            });
        }
        let found_kind = self.kind.load(Ordering::Relaxed);
        if found_kind != kind as u32 {
            return Err(E::WrongKind {
                expected: kind,
                found: found_kind,
            });
        }
        let found_elem = ElementLayout {
            size: self.elem_size.load(Ordering::Relaxed),
            align: self.elem_align.load(Ordering::Relaxed),
        };
        if found_elem != elem {
            return Err(E::WrongElement {
                expected: elem,
                found: found_elem,
            });
        }
        let slot_size = self.slot_size.load(Ordering::Relaxed);
        if slot_size != elem.slot_size() {
            return Err(E::WrongSlotSize {
                expected: elem.slot_size(),
                found: slot_size,
            });
        }
        let capacity = self.capacity.load(Ordering::Relaxed);
        if !capacity_ok(capacity) {
            return Err(E::InvalidCapacity { found: capacity });
        }
        Ok(capacity)
    }
}

#[cfg(not(loom))]
mod assertions {
    //! The layout is the same on every target: these hold on x86-64, thumbv7em,
    //! thumbv6m and riscv32imc alike (CI builds all four).
    use core::mem::{align_of, offset_of, size_of};

    use static_assertions::const_assert_eq;

    use super::{CacheLine, Header, LINE, Line};
    use crate::sync::{AtomicU32, Word};

    const_assert_eq!(size_of::<CacheLine<AtomicU32>>(), LINE);
    const_assert_eq!(align_of::<CacheLine<AtomicU32>>(), LINE);
    const_assert_eq!(size_of::<CacheLine<Word>>(), LINE);
    const_assert_eq!(size_of::<Line>(), LINE);
    const_assert_eq!(align_of::<Line>(), LINE);
    const_assert_eq!(size_of::<Header>(), LINE);
    const_assert_eq!(align_of::<Header>(), LINE);
    const_assert_eq!(offset_of!(Header, magic), 0);
    const_assert_eq!(offset_of!(Header, version), 4);
    const_assert_eq!(offset_of!(Header, kind), 8);
    const_assert_eq!(offset_of!(Header, elem_size), 12);
    const_assert_eq!(offset_of!(Header, elem_align), 16);
    const_assert_eq!(offset_of!(Header, slot_size), 20);
    const_assert_eq!(offset_of!(Header, capacity), 24);
    // An atomic has the size of its integer (Rust Reference, "Atomic types" in
    // `core::sync::atomic`: "same in-memory representation as the underlying
    // integer type"), so a word copy covers exactly its bytes.
    const_assert_eq!(size_of::<Word>(), crate::sync::WORD_BYTES);
    const_assert_eq!(size_of::<AtomicU32>(), 4);
    const_assert_eq!(size_of::<CacheLine<crate::wait::Event>>(), LINE);
}
