//! What can go wrong creating, opening, mapping or unlinking a segment.

use core::fmt;

use rustix::fs::{FileType, SealFlags};
use rustix::process::{Gid, Uid};

use super::name::NAME_MAX;
use crate::linux::SysError;

/// Why a segment could not be created, opened, mapped or unlinked.
///
/// Every failure about a named segment names it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ShmError {
    /// A system call on an anonymous segment or an fd failed (transparent:
    /// prints, and has the source of, the [`SysError`]).
    Sys(SysError),
    /// A system call on the named segment failed (e.g. `openat` with
    /// `ENOENT`: there is no such segment). Contextual: prints the name; the
    /// source is the [`SysError`].
    Named {
        /// The segment's name.
        name: String,
        /// The call and its error.
        source: SysError,
    },
    /// The name breaks a rule of POSIX shared-memory names. Contextual:
    /// prints the name; the source is the rule ([`NameError`]).
    InvalidName {
        /// The name refused.
        name: String,
        /// The rule broken.
        reason: NameError,
    },
    /// [`CreateOptions::mode`](super::CreateOptions::mode) holds bits other
    /// than permissions (setuid, setgid or sticky).
    InvalidMode {
        /// The mode asked for.
        mode: u32,
    },
    /// A symbolic link sits at the segment's name. It is never followed:
    /// another user who may write `/dev/shm` could point it at any file.
    Symlink {
        /// The segment's name.
        name: String,
    },
    /// What sits at the name is not a regular file (a FIFO, a directory...).
    NotRegular {
        /// The segment's name.
        name: String,
        /// What it is.
        file_type: FileType,
    },
    /// The segment is owned by, or writable by, someone the
    /// [`OpenOptions`](super::OpenOptions) do not trust: they could truncate
    /// it under the mapping (`SIGBUS`) or rewrite it.
    Untrusted {
        /// The segment's name.
        name: String,
        /// Its owner.
        uid: Uid,
        /// Its group.
        gid: Gid,
        /// Its permission bits (`st_mode & 0o7777`).
        mode: u32,
    },
    /// The segment's size is not the one asked for with
    /// [`OpenOptions::len`](super::OpenOptions::len), or (without it) is zero
    /// or larger than this process can map. Checked before mapping.
    WrongSize {
        /// The segment's name.
        name: String,
        /// The size asked for, if any.
        expected: Option<usize>,
        /// Its size in bytes.
        found: u64,
    },
    /// The name is taken, and the [`CreateOptions`](super::CreateOptions) do
    /// not ask to take over a dead creator's segment.
    Exists {
        /// The segment's name.
        name: String,
    },
    /// Taking over refused: the segment's creator is alive (it holds the
    /// liveness lock; see [Liveness](super#liveness)).
    CreatorAlive {
        /// The segment's name.
        name: String,
    },
    /// Another process is moving the name (taking it over or unlinking it)
    /// right now, or keeps the segment's name lock; try again.
    Busy {
        /// The segment's name.
        name: String,
    },
    /// A peer's fd lacks [`REQUIRED_SEALS`](super::REQUIRED_SEALS), so the
    /// peer could truncate it under the mapping. Use
    /// [`Segment::from_fd_trusted`](super::Segment::from_fd_trusted) only if
    /// it is trusted.
    NotSealed {
        /// The seals it has.
        found: SealFlags,
    },
    /// The segment would have, or has, zero bytes.
    Empty,
    /// The object is larger than this process can map.
    TooLarge {
        /// Its size in bytes.
        size: u64,
    },
    /// The segment's memory was already handed out: a segment holds one
    /// structure (or one [`Region`](crate::Region) to split), so that two
    /// structures never share bytes.
    RegionTaken,
    /// The segment is mapped read-only; a structure that writes cannot live
    /// in it (readers attach through a read region instead).
    ReadOnly,
}

impl ShmError {
    /// `source`, a failed call on the segment `name`.
    pub(super) fn at(name: &str, source: SysError) -> Self {
        Self::Named {
            name: name.to_owned(),
            source,
        }
    }

    /// A closure for `map_err` that tags an `Errno` from `call` with the
    /// segment's `name`.
    pub(super) fn named(name: &str, call: &'static str) -> impl Fn(rustix::io::Errno) -> Self {
        move |errno| Self::at(name, SysError::new(call, errno))
    }
}

impl From<SysError> for ShmError {
    fn from(err: SysError) -> Self {
        Self::Sys(err)
    }
}

impl fmt::Display for ShmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sys(err) => fmt::Display::fmt(err, f),
            Self::Named { name, .. } => {
                write!(f, "system call on shared-memory segment {name:?} failed")
            }
            Self::InvalidName { name, .. } => write!(f, "invalid shared-memory name {name:?}"),
            Self::InvalidMode { mode } => write!(
                f,
                "mode {mode:#o} has bits outside 0o777 (setuid, setgid or sticky)"
            ),
            Self::Symlink { name } => write!(
                f,
                "shared-memory segment {name:?} is a symbolic link; not following it"
            ),
            Self::NotRegular { name, file_type } => write!(
                f,
                "shared-memory segment {name:?} is not a regular file but a {file_type:?}"
            ),
            Self::Untrusted {
                name,
                uid,
                gid,
                mode,
            } => write!(
                f,
                "shared-memory segment {name:?} (owner uid {}, group gid {}, mode {mode:#o}) \
                 is owned or writable by someone not trusted",
                uid.as_raw(),
                gid.as_raw()
            ),
            Self::WrongSize {
                name,
                expected: Some(expected),
                found,
            } => write!(
                f,
                "shared-memory segment {name:?} has {found} bytes, expected {expected}"
            ),
            Self::WrongSize {
                name,
                expected: None,
                found,
            } => write!(
                f,
                "shared-memory segment {name:?} has {found} bytes, which cannot be mapped"
            ),
            Self::Exists { name } => write!(f, "shared-memory segment {name:?} already exists"),
            Self::CreatorAlive { name } => write!(
                f,
                "the creator of shared-memory segment {name:?} is alive; not taking it over"
            ),
            Self::Busy { name } => write!(
                f,
                "another process is taking over or unlinking shared-memory segment {name:?}"
            ),
            Self::NotSealed { found } => write!(
                f,
                "segment is not sealed against shrinking and growing (seals: {found:?})"
            ),
            Self::Empty => f.write_str("segment has zero bytes"),
            Self::RegionTaken => f.write_str(
                "segment's memory is already handed out (a segment holds one structure)",
            ),
            Self::ReadOnly => f.write_str("segment is mapped read-only"),
            Self::TooLarge { size } => write!(
                f,
                "segment of {size} bytes does not fit in the address space"
            ),
        }
    }
}

impl core::error::Error for ShmError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            // Transparent: its `Display` is the inner error's.
            Self::Sys(err) => err.source(),
            Self::Named { source, .. } => Some(source),
            Self::InvalidName { reason, .. } => Some(reason),
            _ => None,
        }
    }
}

/// The rule a shared-memory name breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NameError {
    /// It does not start with `/`.
    NoLeadingSlash,
    /// Nothing follows the `/`.
    Empty,
    /// It is `/.` or `/..`.
    DotOrDotDot,
    /// A `/` follows the first.
    InnerSlash,
    /// It contains a NUL byte.
    Nul,
    /// More than 255 bytes (`NAME_MAX`) follow the `/`.
    TooLong {
        /// Bytes after the `/`.
        len: usize,
    },
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoLeadingSlash => f.write_str("it must start with '/'"),
            Self::Empty => f.write_str("nothing follows the '/'"),
            Self::DotOrDotDot => f.write_str("it cannot be \"/.\" or \"/..\""),
            Self::InnerSlash => f.write_str("only the first character may be '/'"),
            Self::Nul => f.write_str("it contains a NUL byte"),
            Self::TooLong { len } => {
                write!(f, "{len} bytes follow the '/', the limit is {NAME_MAX}")
            }
        }
    }
}

impl core::error::Error for NameError {}
