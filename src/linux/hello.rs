//! The handshake's hello message: what a server tells a client about the ring
//! it created for it, with the fds that carry it.
//!
//! 40 bytes, little-endian, the same on every target. [`Hello::decode`] checks
//! every field and names the first one that is wrong; it never panics, whatever
//! the bytes (the `hello` fuzz target holds it to that).
//!
//! # Wire format (version 3)
//!
//! | offset | type  | field         | value                                            |
//! |-------:|-------|---------------|--------------------------------------------------|
//! | 0      | `u32` | magic         | `b"IPCH"` ([`HELLO_MAGIC`])                      |
//! | 4      | `u16` | version       | 3 ([`HELLO_VERSION`])                            |
//! | 6      | `u16` | status        | 0 accepted, 1 refused, 2 session limit, 3 out of resources |
//! | 8      | `u32` | kind          | the structure's [`Kind`] (1 to 6)                |
//! | 12     | `u32` | element size  | any                                              |
//! | 16     | `u32` | element stride | any                                             |
//! | 20     | `u32` | capacity      | any                                              |
//! | 24     | `u64` | region length | any                                              |
//! | 32     | `u32` | fds           | fds sent with the message                        |
//! | 36     | `u32` | reserved      | 0                                                |
//!
//! The fields are checked in the order length, magic, version, status, kind,
//! reserved; the others take any value here, and the client checks them
//! against what it expects. An accepted hello carries three fds, in this
//! order: the ring's sealed memfd, the `ready` eventfd (the client writes it
//! after a push to wake the server) and the `space` eventfd (the server
//! writes it after a pop to wake a client waiting for space). Any other
//! status carries none.
//!
//! Versions: 1 carried the element's alignment where 2 carries its stride;
//! 2 carried two fds (memfd, one eventfd: a client waiting for space slept
//! on the futex); 3 adds the `space` eventfd. A build refuses every version
//! but its own with [`HelloError::Version`], which names both.

use core::fmt;

use zerocopy::little_endian::{U16, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::{ElementLayout, Kind};

/// `b"IPCH"` as a little-endian `u32`.
pub const HELLO_MAGIC: u32 = u32::from_le_bytes(*b"IPCH");

/// The version of the hello message this build speaks.
pub const HELLO_VERSION: u16 = 3;

/// Bytes in an encoded hello.
pub const HELLO_LEN: usize = core::mem::size_of::<Wire>();

/// The wire form.
#[derive(FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
struct Wire {
    magic: U32,
    version: U16,
    status: U16,
    kind: U32,
    elem_size: U32,
    elem_stride: U32,
    capacity: U32,
    region_len: U64,
    fds: U32,
    reserved: U32,
}

/// The server's answer. Every status but `Accepted` carries no fds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// The client's ring follows: a sealed memfd, the `ready` eventfd and the
    /// `space` eventfd.
    Accepted = 0,
    /// The server's policy refused the client's credentials.
    Refused = 1,
    /// The server already serves as many clients as it allows; a later
    /// attempt may succeed.
    SessionLimit = 2,
    /// The server ran out of fds or memory setting up this client; a later
    /// attempt may succeed.
    OutOfResources = 3,
}

impl Status {
    /// The status with wire value `raw`, if there is one.
    const fn from_raw(raw: u16) -> Option<Self> {
        Some(match raw {
            0 => Self::Accepted,
            1 => Self::Refused,
            2 => Self::SessionLimit,
            3 => Self::OutOfResources,
            _ => return None,
        })
    }
}

/// A decoded, validated hello.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hello {
    /// Accepted or refused.
    pub status: Status,
    /// The structure in the memfd.
    pub kind: Kind,
    /// Its element type's layout.
    pub elem: ElementLayout,
    /// Its capacity.
    pub capacity: u32,
    /// Bytes in the memfd.
    pub region_len: u64,
    /// Fds attached to the message.
    pub fds: u32,
}

impl Hello {
    /// Encodes the hello.
    pub fn encode(&self) -> [u8; HELLO_LEN] {
        let wire = Wire {
            magic: U32::new(HELLO_MAGIC),
            version: U16::new(HELLO_VERSION),
            status: U16::new(self.status as u16),
            kind: U32::new(self.kind as u32),
            elem_size: U32::new(self.elem.size),
            elem_stride: U32::new(self.elem.stride),
            capacity: U32::new(self.capacity),
            region_len: U64::new(self.region_len),
            fds: U32::new(self.fds),
            reserved: U32::ZERO,
        };
        let mut out = [0; HELLO_LEN];
        out.copy_from_slice(wire.as_bytes());
        out
    }

    /// Decodes and validates a hello received from a peer.
    ///
    /// # Errors
    /// The first field that is wrong ([`HelloError`]).
    pub fn decode(bytes: &[u8]) -> Result<Self, HelloError> {
        let wire = Wire::read_from_bytes(bytes).map_err(|_| HelloError::Length {
            expected: HELLO_LEN,
            found: bytes.len(),
        })?;
        let magic = wire.magic.get();
        if magic != HELLO_MAGIC {
            return Err(HelloError::Magic { found: magic });
        }
        let version = wire.version.get();
        if version != HELLO_VERSION {
            return Err(HelloError::Version {
                expected: HELLO_VERSION,
                found: version,
            });
        }
        let status = Status::from_raw(wire.status.get()).ok_or(HelloError::Status {
            found: wire.status.get(),
        })?;
        let kind = Kind::from_raw(wire.kind.get()).ok_or(HelloError::Kind {
            found: wire.kind.get(),
        })?;
        if wire.reserved.get() != 0 {
            return Err(HelloError::Reserved {
                found: wire.reserved.get(),
            });
        }
        Ok(Self {
            status,
            kind,
            elem: ElementLayout {
                size: wire.elem_size.get(),
                stride: wire.elem_stride.get(),
            },
            capacity: wire.capacity.get(),
            region_len: wire.region_len.get(),
            fds: wire.fds.get(),
        })
    }
}

/// Why a hello could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HelloError {
    /// The message has the wrong length.
    Length {
        /// [`HELLO_LEN`].
        expected: usize,
        /// Bytes received.
        found: usize,
    },
    /// Not a hello: the magic differs.
    Magic {
        /// The value found.
        found: u32,
    },
    /// A hello version this build does not speak.
    Version {
        /// [`HELLO_VERSION`].
        expected: u16,
        /// The version found.
        found: u16,
    },
    /// An unknown status.
    Status {
        /// The value found.
        found: u16,
    },
    /// An unknown structure kind.
    Kind {
        /// The value found.
        found: u32,
    },
    /// The reserved field is not zero.
    Reserved {
        /// The value found.
        found: u32,
    },
}

impl fmt::Display for HelloError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Length { expected, found } => {
                write!(f, "hello is {found} bytes, expected {expected}")
            }
            Self::Magic { found } => write!(f, "not a hello: magic {found:#010x}"),
            Self::Version { expected, found } => {
                write!(f, "hello version {found}, this build speaks {expected}")
            }
            Self::Status { found } => write!(f, "unknown hello status {found}"),
            Self::Kind { found } => write!(f, "unknown structure kind {found} in hello"),
            Self::Reserved { found } => write!(f, "reserved hello field is {found:#x}, not 0"),
        }
    }
}

impl core::error::Error for HelloError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Hello {
        Hello {
            status: Status::Accepted,
            kind: Kind::Spsc,
            elem: ElementLayout::of::<[u64; 8]>(),
            capacity: 1024,
            region_len: 66_048,
            fds: 3,
        }
    }

    #[test]
    fn round_trips() {
        assert_eq!(Hello::decode(&sample().encode()), Ok(sample()));
        for status in [
            Status::Refused,
            Status::SessionLimit,
            Status::OutOfResources,
        ] {
            let hello = Hello {
                status,
                fds: 0,
                ..sample()
            };
            assert_eq!(Hello::decode(&hello.encode()), Ok(hello));
        }
    }

    #[test]
    fn wire_layout_is_fixed() {
        let bytes = sample().encode();
        assert_eq!(&bytes[..4], b"IPCH");
        assert_eq!(bytes[4..6], HELLO_VERSION.to_le_bytes());
        assert_eq!(bytes[20..24], 1024u32.to_le_bytes());
        assert_eq!(bytes[24..32], 66_048u64.to_le_bytes());
        assert_eq!(bytes[32..36], 3u32.to_le_bytes());
    }

    /// A hello from a build of another version (2: two fds, no `space`
    /// eventfd) is refused by version, naming both, before any other field
    /// is read.
    #[test]
    fn other_versions_are_refused_by_number() {
        assert_eq!(HELLO_VERSION, 3);
        for old in [1u16, 2, 4] {
            let mut bytes = sample().encode();
            bytes[4..6].copy_from_slice(&old.to_le_bytes());
            // A status no version has: the version is checked first.
            bytes[6..8].copy_from_slice(&99u16.to_le_bytes());
            let err = Hello::decode(&bytes).unwrap_err();
            assert_eq!(
                err,
                HelloError::Version {
                    expected: 3,
                    found: old
                }
            );
            assert_eq!(
                err.to_string(),
                format!("hello version {old}, this build speaks 3")
            );
        }
    }

    #[test]
    fn names_each_bad_field() {
        let patch = |offset: usize, value: &[u8]| {
            let mut bytes = sample().encode();
            bytes[offset..offset + value.len()].copy_from_slice(value);
            Hello::decode(&bytes)
        };
        assert_eq!(
            Hello::decode(&[0; 39]),
            Err(HelloError::Length {
                expected: 40,
                found: 39
            })
        );
        assert_eq!(
            patch(0, b"XPCH"),
            Err(HelloError::Magic {
                found: u32::from_le_bytes(*b"XPCH")
            })
        );
        assert_eq!(
            patch(4, &[9, 0]),
            Err(HelloError::Version {
                expected: HELLO_VERSION,
                found: 9
            })
        );
        assert_eq!(patch(6, &[4, 0]), Err(HelloError::Status { found: 4 }));
        assert_eq!(patch(6, &[7, 0]), Err(HelloError::Status { found: 7 }));
        assert_eq!(
            patch(8, &[99, 0, 0, 0]),
            Err(HelloError::Kind { found: 99 })
        );
        assert_eq!(
            patch(36, &[1, 0, 0, 0]),
            Err(HelloError::Reserved { found: 1 })
        );
    }
}
