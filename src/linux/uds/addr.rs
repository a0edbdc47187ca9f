//! Unix socket addresses: a filesystem path or an abstract name.

use core::fmt;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::net::SocketAddrUnix;

use super::{MAX_ABSTRACT_LEN, MAX_PATH_LEN, UdsError};

/// A Unix socket address: a filesystem path or an abstract name.
///
/// Lengths are checked when the address is made, so binding and connecting
/// never fail for a malformed address. It prints as the path, or as `@` and
/// the name (bytes outside printable ASCII escaped), as `ss` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UnixAddr(pub(super) SocketAddrUnix);

impl UnixAddr {
    /// A filesystem address: at most [`MAX_PATH_LEN`] bytes, not empty, no NUL.
    ///
    /// # Errors
    /// [`UdsError::InvalidPath`] for an empty path or one holding a NUL byte;
    /// [`UdsError::AddrTooLong`] for one longer than [`MAX_PATH_LEN`].
    pub fn path(path: impl AsRef<Path>) -> Result<Self, UdsError> {
        let bytes = path.as_ref().as_os_str().as_bytes();
        if bytes.is_empty() || bytes.contains(&0) {
            return Err(UdsError::InvalidPath);
        }
        // With no NUL inside, the only failure left is the length.
        SocketAddrUnix::new(bytes)
            .map(Self)
            .map_err(|_| too_long(bytes.len(), MAX_PATH_LEN))
    }

    /// An abstract-namespace address (Linux): any bytes, at most
    /// [`MAX_ABSTRACT_LEN`]. It has no file and vanishes with its socket.
    ///
    /// # Errors
    /// [`UdsError::AddrTooLong`] for a name longer than [`MAX_ABSTRACT_LEN`].
    pub fn abstract_name(name: impl AsRef<[u8]>) -> Result<Self, UdsError> {
        let name = name.as_ref();
        // The only failure is the length.
        SocketAddrUnix::new_abstract_name(name)
            .map(Self)
            .map_err(|_| too_long(name.len(), MAX_ABSTRACT_LEN))
    }

    /// The filesystem path, or `None` for an abstract name.
    pub fn as_path(&self) -> Option<&Path> {
        self.0
            .path_bytes()
            .map(|bytes| Path::new(OsStr::from_bytes(bytes)))
    }
}

impl fmt::Display for UnixAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.as_path(), self.0.abstract_name()) {
            (Some(path), _) => fmt::Display::fmt(&path.display(), f),
            (None, Some(name)) => write!(f, "@{}", name.escape_ascii()),
            (None, None) => f.write_str("(unnamed)"),
        }
    }
}

fn too_long(len: usize, max: usize) -> UdsError {
    UdsError::AddrTooLong { len, max }
}
