//! Creating a named segment, and taking over the name of a creator that is
//! gone (the protocol and its race analysis are in [Liveness](super#liveness)).

use std::os::fd::AsFd;

use rustix::fs::{self, Mode};
use rustix::io::Errno;

use super::error::ShmError;
use super::lock::{self, Liveness};
use super::mapping::Mapping;
use super::name::{self, ShmDir, Temp, same_object};
use super::{Role, Segment, nonempty, resize};

/// How many times `create` looks at the name again after another process
/// changed it between two of its calls, before reporting
/// [`ShmError::Busy`]. Each retry means someone else made progress.
const ATTEMPTS: usize = 8;

/// How [`CreateOptions::create`] makes a named segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreateOptions {
    mode: Mode,
    unlink_on_drop: bool,
    take_over: bool,
}

impl CreateOptions {
    /// Mode `0600` (owner read and write), name kept after drop, an existing
    /// name refused.
    pub const fn new() -> Self {
        Self {
            mode: Mode::RUSR.union(Mode::WUSR),
            unlink_on_drop: false,
            take_over: false,
        }
    }

    /// Permissions for the new object, applied exactly (with `fchmod`, so the
    /// umask does not narrow them). Only the permission bits `0o777` are
    /// allowed: [`create`](Self::create) refuses others (setuid, setgid,
    /// sticky) with [`ShmError::InvalidMode`].
    pub const fn mode(self, mode: Mode) -> Self {
        Self { mode, ..self }
    }

    /// Whether dropping the created [`Segment`] unlinks its name (if it still
    /// names this segment). Peers that have it open or mapped keep it; nobody
    /// can open it by name afterwards.
    pub const fn unlink_on_drop(self, unlink: bool) -> Self {
        Self {
            unlink_on_drop: unlink,
            ..self
        }
    }

    /// Whether [`create`](Self::create) may replace a segment at the name
    /// whose creator is gone ([`Liveness::Gone`]): the restart of a daemon
    /// that was killed. A live creator's segment is never replaced
    /// ([`ShmError::CreatorAlive`]); of several processes taking over one
    /// name at once, one wins. Nothing but the dead segment's name is
    /// removed; its peers keep their mappings (and see it gone).
    pub const fn take_over(self, take_over: bool) -> Self {
        Self { take_over, ..self }
    }

    /// Creates and maps a named segment of `len` bytes, all zero, and holds
    /// its life lock until the [`Segment`] drops.
    ///
    /// The object is made under a temporary name, locked, sized and mapped,
    /// and only then given `name`: `openat(O_CREAT | O_EXCL | O_NOFOLLOW)`,
    /// `fcntl(F_OFD_SETLK)`, `fchmod`, `ftruncate`, `mmap`,
    /// `renameat2(RENAME_NOREPLACE)`. So nobody ever sees `name` unlocked,
    /// empty or with the wrong mode, and a failure leaves nothing behind.
    ///
    /// If `name` is taken: [`ShmError::Exists`] ([`ShmError::Symlink`] if it
    /// is a symbolic link), unless [`take_over`](Self::take_over) is set; then
    /// the segment there is replaced if its creator is gone
    /// ([`ShmError::CreatorAlive`] if not).
    #[doc(alias = "shm_open")]
    #[doc(alias = "renameat2")]
    #[doc(alias = "F_OFD_SETLK")]
    pub fn create(&self, name: &str, len: usize) -> Result<Segment, ShmError> {
        name::file_name(name)?;
        let len = nonempty(len)?;
        if self.mode.bits() & !0o777 != 0 {
            return Err(ShmError::InvalidMode {
                mode: self.mode.bits(),
            });
        }
        let dir = ShmDir::open(name)?;
        let temp = dir.create_temp(name)?;
        // Locked before it is named: an object named but unlocked is one
        // whose creator is gone. The object has mode 0 and a random name,
        // so only a privileged process could hold it already.
        if !lock::lock_life(temp.fd()).map_err(|source| ShmError::at(name, source))? {
            return Err(ShmError::Busy {
                name: name.to_owned(),
            });
        }
        fs::fchmod(temp.fd(), self.mode).map_err(ShmError::named(name, "fchmod"))?;
        resize(temp.fd(), len).map_err(|source| ShmError::at(name, source))?;
        let map = Mapping::new(temp.fd(), len).map_err(|source| ShmError::at(name, source))?;
        self.publish(&dir, &temp, name)?;
        Ok(Segment {
            map,
            fd: temp.into_published(),
            role: Role::Creator {
                unlink_on_drop: self.unlink_on_drop.then(|| name.to_owned()),
            },
        })
    }

    /// Gives `temp` the name `name`, taking it over from a dead creator if
    /// the options allow.
    fn publish(&self, dir: &ShmDir, temp: &Temp<'_>, name: &str) -> Result<(), ShmError> {
        for _ in 0..ATTEMPTS {
            if dir.publish(temp, name, false)? {
                return Ok(());
            }
            if !self.take_over {
                return Err(match dir.stat(name)? {
                    Some(found) if fs::FileType::from_raw_mode(found.st_mode).is_symlink() => {
                        ShmError::Symlink {
                            name: name.to_owned(),
                        }
                    }
                    _ => ShmError::Exists {
                        name: name.to_owned(),
                    },
                });
            }
            if replace_dead(dir, temp, name)? {
                return Ok(());
            }
        }
        Err(ShmError::Busy {
            name: name.to_owned(),
        })
    }
}

impl Default for CreateOptions {
    fn default() -> Self {
        Self::new()
    }
}

/// Replaces the segment at `name` by `temp`'s if its creator is gone.
/// `false` if `name` changed meanwhile (removed, or replaced by another
/// taker): look again.
fn replace_dead(dir: &ShmDir, temp: &Temp<'_>, name: &str) -> Result<bool, ShmError> {
    let (dead, stat) = match dir.open_existing(name) {
        Ok(found) => found,
        Err(ShmError::Named { source, .. }) if source.errno == Errno::NOENT => return Ok(false),
        Err(err) => return Err(err),
    };
    // Gone stays gone: a life lock is taken only before naming.
    if lock::probe_life(dead.as_fd()).map_err(|source| ShmError::at(name, source))?
        == Liveness::Alive
    {
        return Err(ShmError::CreatorAlive {
            name: name.to_owned(),
        });
    }
    // Whoever moves a name off an object holds that object's name lock and
    // then checks that the name still names it; so, holding it and having
    // checked, the name stays on `dead` until the rename below.
    if !lock::lock_name(dead.as_fd()).map_err(|source| ShmError::at(name, source))? {
        return Err(ShmError::Busy {
            name: name.to_owned(),
        });
    }
    match dir.stat(name)? {
        Some(now) if same_object(&now, &stat) => {}
        _ => return Ok(false),
    }
    dir.publish(temp, name, true)
    // `dead` closes on return, releasing its name lock.
}
