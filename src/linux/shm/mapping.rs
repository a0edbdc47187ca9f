//! One `MAP_SHARED` mapping of a whole object, read-write or read-only,
//! unmapped on drop.

use core::ptr::NonNull;
use std::os::fd::BorrowedFd;

use rustix::mm::{self, MapFlags, ProtFlags};

use crate::linux::SysError;

/// One `MAP_SHARED` mapping of a whole object, unmapped on drop.
#[derive(Debug)]
pub(super) struct Mapping {
    /// The first byte, as `mmap` returned it: page-aligned.
    pub(super) ptr: NonNull<u8>,
    /// Bytes mapped: the object's size when it was mapped; never zero.
    pub(super) len: usize,
    /// Whether the pages may be written (`PROT_WRITE`).
    pub(super) writable: bool,
}

// SAFETY: a `Mapping` owns its address range like a `Box` owns its allocation;
// it never touches the bytes, and unmapping from any thread is the same call.
unsafe impl Send for Mapping {}
// SAFETY: `&Mapping` only reads `ptr` and `len`; the bytes are reached through
// `Region`, whose own `Sync` argument covers them.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// `mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)`, or
    /// `PROT_READ` alone unless `writable`.
    ///
    /// # Panics
    /// If the kernel maps the object at address 0, which it does not do
    /// without `MAP_FIXED`.
    #[doc(alias = "mmap")]
    pub(super) fn new(fd: BorrowedFd<'_>, len: usize, writable: bool) -> Result<Self, SysError> {
        let prot = if writable {
            ProtFlags::READ | ProtFlags::WRITE
        } else {
            ProtFlags::READ
        };
        // SAFETY: with a null address the kernel picks a range no memory of
        // this process occupies, so no existing allocation or reference is
        // affected; nothing refers to the new range yet.
        let addr = unsafe { mm::mmap(core::ptr::null_mut(), len, prot, MapFlags::SHARED, fd, 0) }
            .map_err(SysError::from_call("mmap"))?;
        let ptr = NonNull::new(addr.cast::<u8>()).expect("mmap without MAP_FIXED avoids address 0");
        Ok(Self { ptr, len, writable })
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `ptr` and `len` are exactly the range `mmap` returned, so it
        // is page-aligned and ours to unmap; every `Region` (and so every
        // reference into the bytes) borrows the owning `Segment`, so none is
        // left now. It can fail only on arguments, which are right: ignore it.
        let _ = unsafe { mm::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}
