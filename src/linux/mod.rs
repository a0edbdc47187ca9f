//! Linux adapters: find shared memory and wake-up fds, check who the peer is.
//!
//! Thin wrappers over [`rustix`]; the one libc call is `getsockopt(SO_PEERCRED)`
//! (see [`uds::SeqpacketStream::peer_credentials`]). They never re-implement a
//! ring: they map memory for the core structures and carry fds between
//! processes. Each wrapper's doc names the syscall it makes.

use core::fmt;

pub mod broadcast;
pub mod bytes;
pub mod handshake;
// The handshake's wire format: public for the fuzz crate and tests that play
// a hostile server, not part of the API.
#[doc(hidden)]
pub mod hello;
pub mod lanes;
mod poll;
pub mod shm;
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub mod tokio;
pub mod uds;
pub mod wake;

pub use rustix::io::Errno;

/// A failed system call: which one, and the kernel's error.
///
/// A leaf: it prints both (`"shm_open: No such file or directory"`) and has
/// no [`source`](core::error::Error::source), so that a chain of errors
/// printed source by source shows the errno once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SysError {
    /// The call, as in its man page (e.g. `"shm_open"`).
    pub call: &'static str,
    /// The error the kernel returned.
    pub errno: Errno,
}

impl SysError {
    /// Wraps `errno` from `call`.
    pub const fn new(call: &'static str, errno: Errno) -> Self {
        Self { call, errno }
    }

    /// A closure for `map_err` that tags an `Errno` with `call`.
    pub(crate) fn from_call(call: &'static str) -> impl Fn(Errno) -> Self {
        move |errno| Self::new(call, errno)
    }
}

impl fmt::Display for SysError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.call, self.errno)
    }
}

impl core::error::Error for SysError {}

impl From<SysError> for std::io::Error {
    fn from(err: SysError) -> Self {
        Self::from_raw_os_error(err.errno.raw_os_error())
    }
}
