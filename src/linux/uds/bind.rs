//! Binding a path without replacing anything but a socket file proved stale:
//! a temporary name, a probe, and atomic renames.

use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, CWD, FileType, Mode, RenameFlags, Stat};
use rustix::io::Errno;

use super::listener::{bind_err, listen};
use super::{UdsError, UnixAddr, connect_nonblocking, seqpacket_socket};
use crate::linux::SysError;

/// Rounds of probing and swapping before a path that keeps changing is
/// given up on.
const REPLACE_ATTEMPTS: usize = 4;

/// Binds `fd` to `path` through a temporary name, gives it `mode`, listens,
/// and moves it into place, replacing only a socket file proved stale (see
/// [`SeqpacketListener::bind`](super::SeqpacketListener::bind)).
pub(super) fn bind_path(
    fd: BorrowedFd<'_>,
    path: &Path,
    mode: Option<Mode>,
) -> Result<BoundPath, UdsError> {
    let temp = bind_temporary(fd, path)?;
    if let Some(mode) = mode {
        rustix::fs::chmodat(CWD, &temp.path, mode, AtFlags::empty())
            .map_err(SysError::from_call("fchmodat"))?;
    }
    listen(fd)?;
    for _ in 0..REPLACE_ATTEMPTS {
        match place(&temp.path, path) {
            Ok(()) => return Ok(temp.moved_to(path)),
            Err(Errno::EXIST) => {}
            Err(errno) => return Err(SysError::new("renameat2(RENAME_NOREPLACE)", errno).into()),
        }
        if let Some(stale) = probe(path)? {
            match swap_out(&temp.path, path, &stale)? {
                Swapped::Stale => return Ok(temp.moved_to(path)),
                Swapped::Other => {}
            }
        }
    }
    Err(UdsError::PathChanged)
}

/// Fresh temporary names tried before giving up: a collision of random
/// names is rare, several in a row mean someone squats them.
const TEMPORARY_NAMES: usize = 4;

/// Binds `fd` to a fresh temporary name beside `path`: `.` and 8 random hex
/// digits. The name is unlinked on drop unless it was moved into place.
pub(super) fn bind_temporary(fd: BorrowedFd<'_>, path: &Path) -> Result<BoundPath, UdsError> {
    use core::hash::{BuildHasher, Hasher};
    let dir = path.parent().unwrap_or(Path::new(""));
    for _ in 0..TEMPORARY_NAMES {
        // `RandomState` is seeded from the OS per instance: unpredictable.
        let random = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        let temp = dir.join(format!(".{:08x}", random as u32));
        let addr = UnixAddr::path(&temp)?;
        match rustix::net::bind(fd, &addr.0) {
            Ok(()) => {
                let stat = rustix::fs::lstat(&temp).map_err(SysError::from_call("lstat"))?;
                return Ok(BoundPath {
                    path: temp,
                    stat,
                    unlink_on_drop: true,
                });
            }
            Err(Errno::ADDRINUSE) => {}
            Err(errno) => return Err(bind_err(errno)),
        }
    }
    Err(SysError::new("bind", Errno::ADDRINUSE).into())
}

/// Renames `temp` to `path` unless something is there (`EEXIST`):
/// `renameat2(RENAME_NOREPLACE)`, or `link` then `unlink` where the
/// filesystem lacks the flag.
fn place(temp: &Path, path: &Path) -> Result<(), Errno> {
    match rustix::fs::renameat_with(CWD, temp, CWD, path, RenameFlags::NOREPLACE) {
        Err(Errno::INVAL | Errno::NOSYS) => {
            rustix::fs::link(temp, path)?;
            // The socket is in place; a temporary name left behind is only
            // litter, and `BoundPath::moved_to` stops tracking it.
            let _ = rustix::fs::unlink(temp);
            Ok(())
        }
        other => other,
    }
}

/// What is at `path`: `Ok(Some(stat))` for a socket file nobody listens on
/// (the `lstat` of it, identical before and after the probe), `Ok(None)` if
/// it vanished or changed under the probe, and the error to report for
/// anything else. `lstat`, `socket`, non-blocking `connect`.
pub(super) fn probe(path: &Path) -> Result<Option<Stat>, UdsError> {
    let Some(before) = lstat_if_any(path)? else {
        return Ok(None);
    };
    if FileType::from_raw_mode(before.st_mode) != FileType::Socket {
        return Err(UdsError::NotASocket);
    }
    let probe = seqpacket_socket()?;
    match connect_nonblocking(probe.as_fd(), &UnixAddr::path(path)?) {
        // Connected, a full backlog, or a listener of another socket type.
        Ok(()) | Err(Errno::AGAIN | Errno::PROTOTYPE) => Err(UdsError::AddrInUse),
        Err(Errno::CONNREFUSED) => {
            let after = lstat_if_any(path)?;
            Ok(after.filter(|after| same_file(after, &before)))
        }
        Err(Errno::NOENT) => Ok(None),
        Err(errno) => Err(UdsError::ProbeFailed { errno }),
    }
}

/// `lstat(path)`, `None` if nothing is there.
fn lstat_if_any(path: &Path) -> Result<Option<Stat>, UdsError> {
    match rustix::fs::lstat(path) {
        Ok(stat) => Ok(Some(stat)),
        Err(Errno::NOENT) => Ok(None),
        Err(errno) => Err(SysError::new("lstat", errno).into()),
    }
}

fn same_file(a: &Stat, b: &Stat) -> bool {
    a.st_dev == b.st_dev && a.st_ino == b.st_ino
}

/// What [`swap_out`] found at the path.
pub(super) enum Swapped {
    /// The stale socket, now unlinked; the new socket is in place.
    Stale,
    /// Something else, now back in place; the new socket is at its
    /// temporary name.
    Other,
}

/// Puts the socket at `temp` in place of the stale socket `stale` at `path`:
/// `renameat2(RENAME_EXCHANGE)`, then `lstat` what came out, and `unlink` it
/// only if it is `stale`; otherwise swaps back. Where the filesystem lacks
/// the flag: compares, then unlinks `path`, and reports `Other` so that the
/// caller places the socket again.
pub(super) fn swap_out(temp: &Path, path: &Path, stale: &Stat) -> Result<Swapped, UdsError> {
    const EXCHANGE: &str = "renameat2(RENAME_EXCHANGE)";
    match rustix::fs::renameat_with(CWD, temp, CWD, path, RenameFlags::EXCHANGE) {
        Ok(()) => {}
        // It vanished: place the socket again.
        Err(Errno::NOENT) => return Ok(Swapped::Other),
        Err(Errno::INVAL | Errno::NOSYS) => {
            if lstat_if_any(path)?.is_some_and(|now| same_file(&now, stale)) {
                match rustix::fs::unlink(path) {
                    Ok(()) | Err(Errno::NOENT) => {}
                    Err(errno) => return Err(SysError::new("unlink", errno).into()),
                }
            }
            return Ok(Swapped::Other);
        }
        Err(errno) => return Err(SysError::new(EXCHANGE, errno).into()),
    }
    // `temp` now names what was at `path`.
    if lstat_if_any(temp)?.is_some_and(|out| same_file(&out, stale)) {
        rustix::fs::unlink(temp).map_err(SysError::from_call("unlink"))?;
        return Ok(Swapped::Stale);
    }
    rustix::fs::renameat_with(CWD, temp, CWD, path, RenameFlags::EXCHANGE)
        .map_err(SysError::from_call(EXCHANGE))?;
    Ok(Swapped::Other)
}

/// A socket file a listener bound, as it was right after `bind`.
#[derive(Debug)]
pub(super) struct BoundPath {
    pub(super) path: PathBuf,
    stat: Stat,
    pub(super) unlink_on_drop: bool,
}

impl BoundPath {
    /// The same socket file, now at `path` (renamed there), kept on drop.
    fn moved_to(mut self, path: &Path) -> Self {
        self.path = path.to_owned();
        self.unlink_on_drop = false;
        self
    }
}

impl Drop for BoundPath {
    fn drop(&mut self) {
        if !self.unlink_on_drop {
            return;
        }
        // Only remove the file if it is still ours; errors are ignored, as
        // a drop cannot report them and a stale file is replaced by `bind`.
        if let Ok(now) = rustix::fs::lstat(&self.path)
            && same_file(&now, &self.stat)
        {
            let _ = rustix::fs::unlink(&self.path);
        }
    }
}
