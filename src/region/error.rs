//! Why a structure could not be created in or attached to a region.

use core::fmt;

use crate::layout::{ElementLayout, Kind};

/// The region does not fit the structure: its start or its length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum FitError {
    /// The region does not start on a `required`-byte boundary.
    Misaligned {
        /// The alignment needed.
        required: usize,
    },
    /// The region is shorter than the structure needs.
    TooSmall {
        /// Bytes needed (`usize::MAX` if the size overflows).
        needed: usize,
        /// Bytes in the region.
        actual: usize,
    },
}

impl fmt::Display for FitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Misaligned { required } => {
                write!(f, "region is not aligned to {required} bytes")
            }
            Self::TooSmall { needed, actual } => {
                write!(f, "region too small: needs {needed} bytes, has {actual}")
            }
        }
    }
}

impl core::error::Error for FitError {}

/// Why a structure could not be created in a region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum CreateError {
    /// The region does not fit the structure (transparent).
    Fit(FitError),
    /// The capacity is not one the structure allows.
    InvalidCapacity {
        /// The capacity asked for.
        capacity: u32,
    },
    /// The region is a [`Plan`](crate::parts::Plan)'s part planned for
    /// another kind of structure.
    PlannedFor {
        /// The kind the part was planned for.
        planned: Kind,
        /// The kind of structure being created.
        kind: Kind,
    },
}

impl fmt::Display for CreateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Fit(err) => fmt::Display::fmt(&err, f),
            Self::InvalidCapacity { capacity } => write!(
                f,
                "invalid capacity {capacity}: not one this structure accepts \
                 (its `create` says which)"
            ),
            Self::PlannedFor { planned, kind } => {
                write!(
                    f,
                    "the region is a part planned for structure kind \"{planned}\", not \"{kind}\""
                )
            }
        }
    }
}

impl core::error::Error for CreateError {}

impl From<FitError> for CreateError {
    fn from(err: FitError) -> Self {
        Self::Fit(err)
    }
}

/// Why attaching to a region failed: the first mismatch found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum AttachError {
    /// The region does not fit the structure its header describes
    /// (transparent).
    Fit(FitError),
    /// No complete header: the magic is still zero, or a creator is writing
    /// the region right now. Retry later.
    NotInitialized,
    /// The magic word is this crate's, byte-swapped: the region was created by
    /// a peer of the other byte order, whose control words this process would
    /// misread.
    WrongByteOrder,
    /// The magic word is not this crate's.
    WrongMagic {
        /// The value found.
        found: u32,
    },
    /// The layout version differs from this build's.
    WrongVersion {
        /// This build's [`ABI_VERSION`](crate::ABI_VERSION).
        expected: u32,
        /// The version in the header.
        found: u32,
    },
    /// The region holds another kind of structure.
    WrongKind {
        /// The kind asked for.
        expected: Kind,
        /// The raw kind in the header.
        found: u32,
    },
    /// The region was created for an element type of another size or stride.
    WrongElement {
        /// The element type asked for.
        expected: ElementLayout,
        /// The element layout in the header.
        found: ElementLayout,
    },
    /// The region was created with another type tag.
    WrongTag {
        /// The tag asked for.
        expected: u64,
        /// The tag in the header.
        found: u64,
    },
    /// The header's capacity is not one the structure allows.
    InvalidCapacity {
        /// The capacity in the header.
        found: u32,
    },
    /// The structure's counters are inconsistent (e.g. more elements than slots).
    Corrupted,
    /// The region's layout directory lists another number of parts than
    /// the plan ([`parts`](crate::parts)).
    WrongPartCount {
        /// Parts in the plan.
        expected: u32,
        /// Parts in the directory.
        found: u32,
    },
    /// A part in the region's layout directory differs from the plan: its
    /// kind, offset or length.
    WrongPart {
        /// The part's index.
        part: u32,
        /// The part as planned.
        expected: PartInfo,
        /// The part as the directory lists it.
        found: PartInfo,
    },
    /// The region is a [`Plan`](crate::parts::Plan)'s part planned for
    /// another kind of structure.
    PlannedFor {
        /// The kind the part was planned for.
        planned: Kind,
        /// The kind asked for.
        expected: Kind,
    },
}

/// A part of a region laid out to hold several structures, as its directory
/// lists it: the raw kind, and its place in 128-byte lines from the region's
/// start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PartInfo {
    /// The structure kind, as recorded (see [`Kind::from_raw`]).
    pub kind: u32,
    /// Offset from the region's start, in 128-byte lines.
    pub offset_lines: u32,
    /// Length, in 128-byte lines.
    pub len_lines: u32,
}

impl fmt::Display for PartInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match Kind::from_raw(self.kind) {
            Some(kind) => write!(f, "a {kind}")?,
            None => write!(f, "kind {}", self.kind)?,
        }
        write!(
            f,
            " at line {} for {} lines",
            self.offset_lines, self.len_lines
        )
    }
}

impl fmt::Display for AttachError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Fit(err) => fmt::Display::fmt(&err, f),
            Self::NotInitialized => f.write_str("region holds no complete header yet"),
            Self::WrongByteOrder => {
                f.write_str("region was created by a process of the other byte order")
            }
            Self::WrongMagic { found } => {
                write!(
                    f,
                    "region holds no ipc-primitives structure (magic {found:#010x})"
                )
            }
            Self::WrongVersion { expected, found } => {
                write!(f, "layout version {found}, this build reads {expected}")
            }
            Self::WrongKind { expected, found } => {
                f.write_str("region holds structure kind ")?;
                match Kind::from_raw(found) {
                    Some(kind) => write!(f, "\"{kind}\"")?,
                    None => write!(f, "{found} (unknown)")?,
                }
                write!(f, ", expected \"{expected}\"")
            }
            Self::WrongElement { expected, found } => {
                write!(f, "region holds {found}, expected {expected}")
            }
            Self::WrongTag { expected, found } => {
                write!(f, "type tag {found:#x}, expected {expected:#x}")
            }
            Self::InvalidCapacity { found } => write!(f, "invalid capacity {found} in header"),
            Self::Corrupted => f.write_str("counters in the region are inconsistent"),
            Self::WrongPartCount { expected, found } => {
                write!(
                    f,
                    "region is laid out in {found} parts, expected {expected}"
                )
            }
            Self::WrongPart {
                part,
                expected,
                found,
            } => write!(
                f,
                "part {part} of the region is {found}, expected {expected}"
            ),
            Self::PlannedFor { planned, expected } => write!(
                f,
                "the region is a part planned for structure kind \"{planned}\", not \"{expected}\""
            ),
        }
    }
}

impl core::error::Error for AttachError {}

impl From<FitError> for AttachError {
    fn from(err: FitError) -> Self {
        Self::Fit(err)
    }
}
