//! Creating a named segment, and taking over the name of a creator that is
//! gone (the protocol and its race analysis are in [Liveness](super#liveness)).

use std::os::fd::{AsFd, OwnedFd};

use rustix::fs::{self, Mode, Stat};
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
    /// If `name` is taken, the segment there is replaced only with
    /// [`take_over`](Self::take_over), and only if its creator is gone.
    /// ([shm_open(3)](https://man7.org/linux/man-pages/man3/shm_open.3.html),
    /// [rename(2)](https://man7.org/linux/man-pages/man2/rename.2.html),
    /// [fcntl(2)](https://man7.org/linux/man-pages/man2/fcntl.2.html).)
    ///
    /// # Errors
    /// [`ShmError::Empty`] for a `len` of 0 and [`ShmError::InvalidMode`]
    /// for a mode outside `0o777`. The others name the segment:
    /// [`ShmError::InvalidName`] for a name that breaks the rules of
    /// [`NameError`](super::NameError); for a taken name,
    /// [`ShmError::Exists`] ([`ShmError::Symlink`] if it is a symbolic
    /// link), or with [`take_over`](Self::take_over)
    /// [`ShmError::CreatorAlive`] if its creator lives; [`ShmError::Busy`] if
    /// another process is moving the name; [`ShmError::Named`] for a failed
    /// call.
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
        let map =
            Mapping::new(temp.fd(), len, true).map_err(|source| ShmError::at(name, source))?;
        self.publish(&dir, &temp, name)?;
        Ok(Segment::new(
            map,
            temp.into_published(),
            Role::Creator {
                unlink_on_drop: self.unlink_on_drop.then(|| name.to_owned()),
            },
        ))
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
            let replaced = match DeadSegment::open(dir, name)? {
                Some(dead) => dead.replace(dir, temp, name)?,
                None => false,
            };
            if replaced {
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

/// The segment at a name, whose creator is gone, opened by a would-be taker.
#[derive(Debug)]
struct DeadSegment {
    /// Its own open file description: the name lock is taken through it and
    /// released when it closes.
    fd: OwnedFd,
    stat: Stat,
}

impl DeadSegment {
    /// Opens what `name` holds: `None` if nothing does any more,
    /// [`ShmError::CreatorAlive`] if its creator is alive.
    fn open(dir: &ShmDir, name: &str) -> Result<Option<Self>, ShmError> {
        let (fd, stat) = match dir.open_existing(name, true) {
            Ok(found) => found,
            Err(ShmError::Named { source, .. }) if source.errno == Errno::NOENT => return Ok(None),
            Err(err) => return Err(err),
        };
        // Gone stays gone: a life lock is taken only before naming.
        match lock::probe_life(fd.as_fd()).map_err(|source| ShmError::at(name, source))? {
            Liveness::Alive => Err(ShmError::CreatorAlive {
                name: name.to_owned(),
            }),
            _ => Ok(Some(Self { fd, stat })),
        }
    }

    /// Renames `temp` over `name` if `name` still names this segment;
    /// `false` if it changed meanwhile (removed, or replaced by another
    /// taker): look again.
    fn replace(self, dir: &ShmDir, temp: &Temp<'_>, name: &str) -> Result<bool, ShmError> {
        // Whoever moves a name off an object holds that object's name lock
        // and then checks that the name still names it; so, holding it and
        // having checked, the name stays on this segment until the rename.
        if !lock::lock_name(self.fd.as_fd()).map_err(|source| ShmError::at(name, source))? {
            return Err(ShmError::Busy {
                name: name.to_owned(),
            });
        }
        match dir.stat(name)? {
            Some(now) if same_object(&now, &self.stat) => dir.publish(temp, name, true),
            _ => Ok(false),
        }
        // `self.fd` closes on return, releasing the name lock.
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A dead creator's segment at a fresh name, removed on drop.
    struct DeadName(String);

    impl DeadName {
        fn new(tag: &str) -> Self {
            let name = format!("/ipcp-create-test-{}-{tag}", std::process::id());
            drop(CreateOptions::new().create(&name, 4096).unwrap());
            Self(name)
        }

        fn inode(&self) -> u64 {
            let dir = ShmDir::open(&self.0).unwrap();
            dir.stat(&self.0).unwrap().unwrap().st_ino
        }
    }

    impl Drop for DeadName {
        fn drop(&mut self) {
            let _ = fs::unlink(format!("/dev/shm{}", self.0));
        }
    }

    /// Taker B opened the dead segment, then taker A took the name over and
    /// closed the dead segment (releasing its name lock): B must see that
    /// the name moved, and leave A's live segment alone.
    #[test]
    fn a_taker_that_finds_the_name_moved_leaves_it() {
        let name = DeadName::new("moved");
        let dir = ShmDir::open(&name.0).unwrap();
        let late = DeadSegment::open(&dir, &name.0).unwrap().unwrap();
        let winner = CreateOptions::new()
            .take_over(true)
            .create(&name.0, 4096)
            .unwrap();
        let inode = name.inode();
        let temp = dir.create_temp(&name.0).unwrap();
        assert_eq!(late.replace(&dir, &temp, &name.0), Ok(false));
        assert_eq!(name.inode(), inode, "the winner was displaced");
        drop(winner);
    }

    /// While one taker holds the dead segment's name lock, another cannot
    /// move the name.
    #[test]
    fn the_name_lock_excludes_a_second_taker() {
        let name = DeadName::new("locked");
        let dead = name.inode();
        let dir = ShmDir::open(&name.0).unwrap();
        let first = DeadSegment::open(&dir, &name.0).unwrap().unwrap();
        assert_eq!(lock::lock_name(first.fd.as_fd()), Ok(true));
        let second = DeadSegment::open(&dir, &name.0).unwrap().unwrap();
        let temp = dir.create_temp(&name.0).unwrap();
        assert_eq!(
            second.replace(&dir, &temp, &name.0),
            Err(ShmError::Busy {
                name: name.0.clone()
            })
        );
        assert_eq!(name.inode(), dead);
        drop(first);
    }
}
