//! Removing a segment's name, without ever removing another segment's.

use std::os::fd::{AsFd, BorrowedFd};

use rustix::fs::{self, Stat};

use super::error::ShmError;
use super::lock;
use super::name::{ShmDir, same_object};

/// Removes a named segment, as `shm_unlink(name)` does; those who have it
/// open or mapped keep it until they close it.
///
/// It removes the name only while it names the segment it opened: it opens
/// the segment (`openat(O_RDWR | O_NOFOLLOW)`, so it needs write access),
/// takes its name lock (`fcntl(F_OFD_SETLK)`), checks by device and inode
/// that the name still names it (`fstatat`), then `unlinkat`
/// ([shm_unlink(3)](https://man7.org/linux/man-pages/man3/shm_unlink.3.html)).
///
/// # Errors
/// Every error names the segment: [`ShmError::Symlink`] for a symbolic link
/// at the name (not removed); [`ShmError::Busy`] if another process is
/// moving the name; [`ShmError::InvalidName`] for a name that breaks the
/// rules; [`ShmError::Named`] for a failed call (`openat` with `ENOENT`: no
/// such segment).
#[doc(alias = "shm_unlink")]
#[doc(alias = "unlinkat")]
pub fn unlink(name: &str) -> Result<(), ShmError> {
    let dir = ShmDir::open(name)?;
    let (fd, stat) = dir.open_existing(name, true)?;
    if unlink_if_named(&dir, name, fd.as_fd(), &stat)? {
        Ok(())
    } else {
        // Someone else removed or replaced it between our `openat` and our
        // lock: not ours to remove any more.
        Err(ShmError::Busy {
            name: name.to_owned(),
        })
    }
}

/// Unlinks `name` if it still names the object open as `fd` (whose `fstat`
/// is `stat`), holding the object's name lock: `true` if it did. The lock
/// stays with `fd`'s open file description until it closes.
pub(super) fn unlink_if_named(
    dir: &ShmDir,
    name: &str,
    fd: BorrowedFd<'_>,
    stat: &Stat,
) -> Result<bool, ShmError> {
    if !lock::lock_name(fd).map_err(|source| ShmError::at(name, source))? {
        return Err(ShmError::Busy {
            name: name.to_owned(),
        });
    }
    match dir.stat(name)? {
        Some(now) if same_object(&now, stat) => dir.unlink(name).map(|()| true),
        _ => Ok(false),
    }
}

/// What a creator's drop does with `unlink_on_drop`: unlinks `name` if it
/// still names the creator's object `fd`; errors are dropped with it.
pub(super) fn unlink_own(name: &str, fd: BorrowedFd<'_>) {
    if let (Ok(stat), Ok(dir)) = (fs::fstat(fd), ShmDir::open(name)) {
        let _ = unlink_if_named(&dir, name, fd, &stat);
    }
}
