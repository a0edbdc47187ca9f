//! The two locks on a named segment: the creator's life lock and the name
//! lock (see [Liveness](super#liveness) for the protocol); and the byte
//! locks they are made of, which fan-in lanes use too (one per lane, from
//! byte 64: `crate::linux::lanes`).
//!
//! Both are open-file-description (OFD) write locks on one byte of the
//! object: `fcntl(F_OFD_SETLK)`, queried with `fcntl(F_OFD_GETLK)`. They
//! belong to the open file description, not to a process: the kernel drops
//! them when the last fd sharing it closes (at the latest when its holders
//! die), another open of the same name is another description whose locks
//! conflict with them (even in the same process), and closing that other fd
//! leaves them alone.
//!
//! These are the one place `shm` calls libc: rustix's `fcntl_lock` makes
//! process-associated, whole-file locks (`F_SETLK`), which closing any fd of
//! the file in the process releases and which never conflict within a
//! process, and rustix has no `F_OFD_SETLK` or `F_OFD_GETLK`.

use std::os::fd::{AsRawFd, BorrowedFd};

use rustix::io::Errno;

use crate::linux::SysError;

/// The byte the creator write-locks before the object gets its name, and
/// keeps locked for the life of its open file description.
const LIFE: libc::off_t = 0;
/// The byte write-locked, for a few system calls, by whoever moves the name
/// off the object (a taker, `unlink`, the creator's unlink on drop).
const NAME: libc::off_t = 1;

/// Whether the process that created a segment still holds it, as
/// [`Segment::creator_alive`](super::Segment::creator_alive) reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Liveness {
    /// The creator's open file description still holds the life lock: the
    /// creator (or a process it handed that description to) has not closed
    /// it. Also what the creator's own segment reports.
    Alive,
    /// Nobody holds the life lock: the creator dropped the segment or died.
    /// It stays gone: a segment's life lock is taken once, before it is
    /// named.
    Gone,
    /// This segment cannot tell: it was mapped from an fd received from
    /// elsewhere (a memfd, or a named segment's fd sent over a socket), which
    /// may share the creator's open file description, and whose creator
    /// never announced a lock. For those, the socket the fd came over is the
    /// liveness signal: the peer is gone when it hangs up.
    Unknown,
}

/// Takes the life lock for `fd`'s open file description; `false` if another
/// description holds a lock on it.
#[doc(alias = "F_OFD_SETLK")]
pub(super) fn lock_life(fd: BorrowedFd<'_>) -> Result<bool, SysError> {
    try_write_lock(fd, LIFE)
}

/// Takes the name lock for `fd`'s open file description; `false` if another
/// description holds a lock on it.
#[doc(alias = "F_OFD_SETLK")]
pub(super) fn lock_name(fd: BorrowedFd<'_>) -> Result<bool, SysError> {
    try_write_lock(fd, NAME)
}

/// Whether a description other than `fd`'s holds the life lock:
/// `fcntl(F_OFD_GETLK)` asking for a read lock, which only a write lock
/// (the creator's) conflicts with. Places no lock.
#[doc(alias = "F_OFD_GETLK")]
pub(super) fn probe_life(fd: BorrowedFd<'_>) -> Result<Liveness, SysError> {
    Ok(if write_locked(fd, LIFE)? {
        Liveness::Alive
    } else {
        Liveness::Gone
    })
}

/// Whether a description other than `fd`'s holds a write lock on `byte`:
/// `fcntl(F_OFD_GETLK)` asking for a read lock, which only a write lock
/// conflicts with. Places no lock.
#[doc(alias = "F_OFD_GETLK")]
pub(crate) fn write_locked(fd: BorrowedFd<'_>, byte: libc::off_t) -> Result<bool, SysError> {
    let mut lock = byte_lock(libc::F_RDLCK, byte);
    fcntl_ofd(fd, libc::F_OFD_GETLK, &mut lock)
        .map_err(|errno| SysError::new("fcntl(F_OFD_GETLK)", errno))?;
    Ok(i32::from(lock.l_type) != libc::F_UNLCK)
}

/// Unlocks `byte` for `fd`'s open file description:
/// `fcntl(F_OFD_SETLK, F_UNLCK)`.
#[doc(alias = "F_OFD_SETLK")]
pub(crate) fn unlock(fd: BorrowedFd<'_>, byte: libc::off_t) -> Result<(), SysError> {
    let mut lock = byte_lock(libc::F_UNLCK, byte);
    fcntl_ofd(fd, libc::F_OFD_SETLK, &mut lock)
        .map_err(|errno| SysError::new("fcntl(F_OFD_SETLK)", errno))
}

/// `fcntl(fd, F_OFD_SETLK, F_WRLCK on byte)`: `false` on a conflict.
#[doc(alias = "F_OFD_SETLK")]
pub(crate) fn try_write_lock(fd: BorrowedFd<'_>, byte: libc::off_t) -> Result<bool, SysError> {
    let mut lock = byte_lock(libc::F_WRLCK, byte);
    match fcntl_ofd(fd, libc::F_OFD_SETLK, &mut lock) {
        Ok(()) => Ok(true),
        // fcntl(2): a conflicting lock makes `F_OFD_SETLK` fail with
        // `EAGAIN` or `EACCES`.
        Err(Errno::AGAIN | Errno::ACCESS) => Ok(false),
        Err(errno) => Err(SysError::new("fcntl(F_OFD_SETLK)", errno)),
    }
}

/// A `struct flock` of `l_type` over the one byte at `byte`.
fn byte_lock(l_type: libc::c_int, byte: libc::off_t) -> libc::flock {
    // SAFETY: `flock` is a C struct of integers (plus, on some targets,
    // integer padding fields), for which all-zero bytes are a valid value;
    // zero is also what the kernel requires in `l_pid` for OFD locks.
    let mut lock: libc::flock = unsafe { core::mem::zeroed() };
    // The lock types are 0, 1 and 2 on every Linux target: they fit.
    lock.l_type = l_type as libc::c_short;
    lock.l_whence = libc::SEEK_SET as libc::c_short;
    lock.l_start = byte;
    lock.l_len = 1;
    lock
}

/// `fcntl(fd, cmd, lock)` for the non-blocking OFD commands, `EINTR` retried.
fn fcntl_ofd(fd: BorrowedFd<'_>, cmd: libc::c_int, lock: &mut libc::flock) -> Result<(), Errno> {
    loop {
        // SAFETY: `fd` is borrowed, so it stays open for the call. `cmd` is
        // `F_OFD_SETLK` or `F_OFD_GETLK`, whose argument is a pointer to a
        // `struct flock` (`libc::flock` mirrors the layout the C library's
        // `fcntl` expects for it); `lock` is a live, exclusive, initialised
        // one, which `F_OFD_GETLK` overwrites with another plain-integer
        // value. Neither command blocks.
        let rc = unsafe { libc::fcntl(fd.as_raw_fd(), cmd, core::ptr::from_mut(lock)) };
        if rc != -1 {
            return Ok(());
        }
        let errno = std::io::Error::last_os_error()
            .raw_os_error()
            .map_or(Errno::IO, Errno::from_raw_os_error);
        if errno != Errno::INTR {
            return Err(errno);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::{AsFd, OwnedFd};

    use rustix::fs::{MemfdFlags, memfd_create};

    use super::*;

    fn memfd() -> OwnedFd {
        memfd_create("lock-test", MemfdFlags::CLOEXEC).unwrap()
    }

    /// A second open file description of `fd`'s file, as another `open` of
    /// its name would make (a `dup` would share the first).
    fn reopen(fd: &OwnedFd) -> OwnedFd {
        let path = format!("/proc/self/fd/{}", fd.as_raw_fd());
        rustix::fs::open(
            path.as_str(),
            rustix::fs::OFlags::RDWR | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .unwrap()
    }

    #[test]
    fn the_life_lock_is_seen_from_another_description_in_the_same_process() {
        let creator = memfd();
        let other = reopen(&creator);
        assert_eq!(probe_life(other.as_fd()), Ok(Liveness::Gone));
        assert_eq!(lock_life(creator.as_fd()), Ok(true));
        assert_eq!(probe_life(other.as_fd()), Ok(Liveness::Alive));
        assert_eq!(lock_life(other.as_fd()), Ok(false), "exclusive");
        // The holder's own description sees no conflict: the creator knows
        // it is alive without asking.
        assert_eq!(probe_life(creator.as_fd()), Ok(Liveness::Gone));
    }

    #[test]
    fn closing_another_description_keeps_the_lock() {
        let creator = memfd();
        assert_eq!(lock_life(creator.as_fd()), Ok(true));
        drop(reopen(&creator));
        let probe = reopen(&creator);
        assert_eq!(probe_life(probe.as_fd()), Ok(Liveness::Alive));
        drop(creator);
        assert_eq!(probe_life(probe.as_fd()), Ok(Liveness::Gone));
    }

    #[test]
    fn probing_places_no_lock() {
        let creator = memfd();
        let prober = reopen(&creator);
        for _ in 0..3 {
            assert_eq!(probe_life(prober.as_fd()), Ok(Liveness::Gone));
        }
        assert_eq!(lock_life(creator.as_fd()), Ok(true));
    }

    #[test]
    fn the_name_lock_is_independent_of_the_life_lock() {
        let creator = memfd();
        let taker = reopen(&creator);
        assert_eq!(lock_life(creator.as_fd()), Ok(true));
        assert_eq!(lock_name(taker.as_fd()), Ok(true));
        assert_eq!(lock_name(creator.as_fd()), Ok(false), "exclusive");
        assert_eq!(probe_life(taker.as_fd()), Ok(Liveness::Alive));
    }
}
