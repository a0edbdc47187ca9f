//! The header at the start of every region: what it holds, how a creator
//! publishes it and how an attacher validates it.
//!
//! # Layout
//! The first 128-byte line of every region. All fields are `u32`, native-endian:
//!
//! | offset | field         | meaning                                                   |
//! |--------|---------------|-----------------------------------------------------------|
//! | 0      | `magic`       | [`MAGIC`] once created, 0 before                           |
//! | 4      | `version`     | [`ABI_VERSION`]                                            |
//! | 8      | `kind`        | [`Kind`] as `u32`                                          |
//! | 12     | `elem_size`   | [`ElementLayout::size`]                                    |
//! | 16     | `elem_stride` | [`ElementLayout::stride`]                                  |
//! | 20     | `capacity`    | number of slots                                            |
//! | 24     | `tag_lo`      | low half of the type tag (0: none)                         |
//! | 28     | `tag_hi`      | high half of the type tag                                  |
//! | 32     | `creation`    | odd while a creator writes the region, +2 per creation     |
//! | 36     | (unused)      | never read; may hold anything                              |
//!
//! # Protocol
//! The creator marks `creation` odd (`Relaxed`), issues a `Release` fence,
//! writes every field and the structure's initial state (relaxed stores), and
//! publishes the next even `creation` with `Release`: the seqlock recipe of
//! [`crate::seqlock`]. An attacher loads `creation` (relaxed, then an
//! `Acquire` fence, which works on read-only mappings too), copies every
//! field out, issues an `Acquire` fence and loads `creation` again: odd, or
//! changed, means a creator was at work, reported as
//! [`AttachError::NotInitialized`]. A region of zero bytes reads as
//! not initialised too. Only then is the copy validated, so an attacher never
//! judges a mix of two creations.

use crate::layout::{ABI_VERSION, ElementLayout, Kind, MAGIC};
use crate::region::AttachError;
use crate::sync::{AtomicU32, Ordering, fence};

/// Bytes of the header that hold fields; the rest of its line is unused.
pub(crate) const FIELDS_LEN: usize = core::mem::size_of::<Header>();

/// The header's fields, viewed in place.
///
/// Only atomics, and no padding (`#[repr(C)]`, nine `u32`s): a reference to it
/// covers no byte that is not inside an `UnsafeCell`, so a peer writing any of
/// them at any time is no undefined behaviour here.
#[repr(C)]
pub(crate) struct Header {
    magic: AtomicU32,
    version: AtomicU32,
    kind: AtomicU32,
    elem_size: AtomicU32,
    elem_stride: AtomicU32,
    capacity: AtomicU32,
    tag_lo: AtomicU32,
    tag_hi: AtomicU32,
    creation: AtomicU32,
}

/// Everything a header records about a structure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fingerprint {
    pub(crate) kind: Kind,
    pub(crate) elem: ElementLayout,
    pub(crate) capacity: u32,
    /// A caller-chosen type tag; 0 when none was given. `Region::create`
    /// records the region's own ([`Region::with_tag`](crate::Region::with_tag)).
    pub(crate) tag: u64,
}

/// The raw fields of a header, copied out of shared memory at one creation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Snapshot {
    pub(crate) magic: u32,
    pub(crate) version: u32,
    pub(crate) kind: u32,
    pub(crate) elem: ElementLayout,
    pub(crate) capacity: u32,
    pub(crate) tag: u64,
}

impl Header {
    /// Writes a complete header and, through `init`, the structure's initial
    /// state, then publishes both (see [Protocol](self#protocol)).
    pub(crate) fn create(&self, fp: Fingerprint, init: impl FnOnce()) {
        let writing = self.creation.load(Ordering::Relaxed) | 1;
        self.creation.store(writing, Ordering::Relaxed);
        // Orders the odd `creation` before every store below: an attacher that
        // copies any of them re-reads `creation` as odd or changed.
        fence(Ordering::Release);
        self.magic.store(MAGIC, Ordering::Relaxed);
        self.version.store(ABI_VERSION, Ordering::Relaxed);
        self.kind.store(fp.kind as u32, Ordering::Relaxed);
        self.elem_size.store(fp.elem.size, Ordering::Relaxed);
        self.elem_stride.store(fp.elem.stride, Ordering::Relaxed);
        self.capacity.store(fp.capacity, Ordering::Relaxed);
        // Halves of the tag: truncation intended.
        self.tag_lo.store(fp.tag as u32, Ordering::Relaxed);
        self.tag_hi.store((fp.tag >> 32) as u32, Ordering::Relaxed);
        init();
        // Pairs with the attacher's `Acquire` load of `creation`: whoever sees
        // this creation complete sees every store above.
        self.creation
            .store(writing.wrapping_add(1), Ordering::Release);
    }

    /// Copies the fields out, if no creator was at work meanwhile.
    pub(crate) fn snapshot(&self) -> Result<Snapshot, AttachError> {
        // A relaxed load then an `Acquire` fence, which pairs with the
        // creator's final `Release` store like an `Acquire` load would, but
        // is also sound on a read-only mapping (only relaxed loads are
        // guaranteed not to write; `core::sync::atomic`, "Atomic accesses to
        // read-only memory").
        let before = self.creation.load(Ordering::Relaxed);
        fence(Ordering::Acquire);
        if before & 1 == 1 {
            return Err(AttachError::NotInitialized);
        }
        let snapshot = Snapshot {
            magic: self.magic.load(Ordering::Relaxed),
            version: self.version.load(Ordering::Relaxed),
            kind: self.kind.load(Ordering::Relaxed),
            elem: ElementLayout {
                size: self.elem_size.load(Ordering::Relaxed),
                stride: self.elem_stride.load(Ordering::Relaxed),
            },
            capacity: self.capacity.load(Ordering::Relaxed),
            tag: u64::from(self.tag_lo.load(Ordering::Relaxed))
                | u64::from(self.tag_hi.load(Ordering::Relaxed)) << 32,
        };
        // Orders the copies before the re-check: a copy that saw a store made
        // after the creator's odd mark makes this load see the mark or later
        // (pairs with the creator's `Release` fence).
        fence(Ordering::Acquire);
        if self.creation.load(Ordering::Relaxed) != before {
            return Err(AttachError::NotInitialized);
        }
        Ok(snapshot)
    }
}

impl Snapshot {
    /// Checks the copy against what the caller expects, first field first,
    /// returning the capacity it records; `capacity_ok` judges the
    /// structure's capacity rule.
    pub(crate) fn validate(
        &self,
        kind: Kind,
        elem: ElementLayout,
        tag: u64,
        capacity_ok: fn(u32) -> bool,
    ) -> Result<u32, AttachError> {
        use AttachError as E;
        match self.magic {
            MAGIC => {}
            0 => return Err(E::NotInitialized),
            swapped if swapped == MAGIC.swap_bytes() => return Err(E::WrongByteOrder),
            found => return Err(E::WrongMagic { found }),
        }
        if self.version != ABI_VERSION {
            return Err(E::WrongVersion {
                expected: ABI_VERSION,
                found: self.version,
            });
        }
        if self.kind != kind as u32 {
            return Err(E::WrongKind {
                expected: kind,
                found: self.kind,
            });
        }
        if self.elem != elem {
            return Err(E::WrongElement {
                expected: elem,
                found: self.elem,
            });
        }
        if self.tag != tag {
            return Err(E::WrongTag {
                expected: tag,
                found: self.tag,
            });
        }
        if !capacity_ok(self.capacity) {
            return Err(E::InvalidCapacity {
                found: self.capacity,
            });
        }
        Ok(self.capacity)
    }
}

#[cfg(not(loom))]
mod assertions {
    use core::mem::{align_of, offset_of, size_of};

    use static_assertions::const_assert_eq;

    use super::Header;

    // An atomic has the size and alignment of its integer ("same in-memory
    // representation as the underlying integer type", `core::sync::atomic`),
    // and `#[repr(C)]` places fields in order at their alignment (the Rust
    // Reference, "The `C` representation"): nine `u32`s, no padding.
    const_assert_eq!(size_of::<Header>(), 36);
    const_assert_eq!(align_of::<Header>(), 4);
    const_assert_eq!(offset_of!(Header, magic), 0);
    const_assert_eq!(offset_of!(Header, version), 4);
    const_assert_eq!(offset_of!(Header, kind), 8);
    const_assert_eq!(offset_of!(Header, elem_size), 12);
    const_assert_eq!(offset_of!(Header, elem_stride), 16);
    const_assert_eq!(offset_of!(Header, capacity), 20);
    const_assert_eq!(offset_of!(Header, tag_lo), 24);
    const_assert_eq!(offset_of!(Header, tag_hi), 28);
    const_assert_eq!(offset_of!(Header, creation), 32);
}
