//! Segment names and the `/dev/shm` directory they live in.
//!
//! Every operation on a name goes through a directory fd on `/dev/shm` and
//! the `*at` calls, one path component at a time, so no symbolic link at a
//! name is ever followed (`O_NOFOLLOW` on the last and only component), what
//! rustix's or the C library's `shm_open` does notwithstanding. Names are
//! the ones glibc's and musl's `shm_open("/NAME")` use: the object is the
//! file `/dev/shm/NAME`, so C peers interoperate.

use core::hash::{BuildHasher, Hasher};
use std::collections::hash_map::RandomState;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{self, AtFlags, CWD, Mode, OFlags, RenameFlags, Stat};
use rustix::io::Errno;

use super::error::{NameError, ShmError};

/// Longest name after the leading `/`: Linux's `NAME_MAX`, the longest path
/// component, which is what the name becomes under `/dev/shm`.
pub(super) const NAME_MAX: usize = 255;

/// Where POSIX shared memory lives on Linux (glibc's and musl's `SHMDIR`).
const SHM_DIR: &str = "/dev/shm";

/// How many temporary names [`ShmDir::create_temp`] tries before giving up.
/// Another process has to guess 64 random bits to take one.
const TEMP_ATTEMPTS: usize = 4;

/// Checks `name` against the rules of [`NameError`]; returns the file name
/// under `/dev/shm` (what follows the `/`).
pub(super) fn file_name(name: &str) -> Result<&str, ShmError> {
    let reason = match name.strip_prefix('/') {
        None => NameError::NoLeadingSlash,
        Some(rest) if rest.len() > NAME_MAX => NameError::TooLong { len: rest.len() },
        Some("") => NameError::Empty,
        Some("." | "..") => NameError::DotOrDotDot,
        Some(rest) if rest.contains('/') => NameError::InnerSlash,
        Some(rest) if rest.contains('\0') => NameError::Nul,
        Some(rest) => return Ok(rest),
    };
    Err(ShmError::InvalidName {
        name: name.to_owned(),
        reason,
    })
}

/// Whether two `stat`s are of the same object: same device, same inode.
pub(super) fn same_object(a: &Stat, b: &Stat) -> bool {
    (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)
}

/// `/dev/shm`, opened for one operation, and the calls on names in it.
#[derive(Debug)]
pub(super) struct ShmDir(OwnedFd);

/// A freshly created object under a temporary name, both removed if it is
/// dropped before [`ShmDir::publish`] gives it its real name.
#[derive(Debug)]
pub(super) struct Temp<'dir> {
    dir: &'dir ShmDir,
    /// The temporary file name under `/dev/shm`.
    file: String,
    /// The object, read-write; `None` once published.
    fd: Option<OwnedFd>,
}

impl ShmDir {
    /// `open("/dev/shm", O_PATH | O_DIRECTORY | O_CLOEXEC)`.
    pub(super) fn open(name: &str) -> Result<Self, ShmError> {
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
        fs::openat(CWD, SHM_DIR, flags, Mode::empty())
            .map(Self)
            .map_err(ShmError::named(name, "open(/dev/shm)"))
    }

    /// Opens the existing object at `name` read-write, without following a
    /// link and without blocking (a FIFO planted there):
    /// `openat(O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)`, `fstat`.
    ///
    /// A symbolic link is [`ShmError::Symlink`], anything else that is not a
    /// regular file [`ShmError::NotRegular`].
    #[doc(alias = "openat")]
    pub(super) fn open_existing(
        &self,
        name: &str,
        writable: bool,
    ) -> Result<(OwnedFd, Stat), ShmError> {
        let file = file_name(name)?;
        let access = if writable {
            OFlags::RDWR
        } else {
            OFlags::RDONLY
        };
        let flags = access | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
        let fd = fs::openat(&self.0, file, flags, Mode::empty()).map_err(|errno| match errno {
            // open(2): `O_NOFOLLOW` and the last component is a symlink.
            Errno::LOOP => ShmError::Symlink {
                name: name.to_owned(),
            },
            // open(2): a directory opened for writing.
            Errno::ISDIR => ShmError::NotRegular {
                name: name.to_owned(),
                file_type: fs::FileType::Directory,
            },
            errno => ShmError::named(name, "openat")(errno),
        })?;
        let stat = fs::fstat(&fd).map_err(ShmError::named(name, "fstat"))?;
        let file_type = fs::FileType::from_raw_mode(stat.st_mode);
        if file_type != fs::FileType::RegularFile {
            return Err(ShmError::NotRegular {
                name: name.to_owned(),
                file_type,
            });
        }
        Ok((fd, stat))
    }

    /// What sits at `name` now, without following a link:
    /// `fstatat(AT_SYMLINK_NOFOLLOW)`; `None` if nothing does.
    #[doc(alias = "fstatat")]
    pub(super) fn stat(&self, name: &str) -> Result<Option<Stat>, ShmError> {
        match fs::statat(&self.0, file_name(name)?, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) => Ok(Some(stat)),
            Err(Errno::NOENT) => Ok(None),
            Err(errno) => Err(ShmError::named(name, "fstatat")(errno)),
        }
    }

    /// Creates an object, mode 0 (nobody else may open it), under a fresh
    /// random name: `openat(O_CREAT | O_EXCL | O_RDWR | O_NOFOLLOW |
    /// O_CLOEXEC)`, retried under another name on `EEXIST`.
    ///
    /// `name` is the segment it is for, for errors.
    #[doc(alias = "openat")]
    pub(super) fn create_temp(&self, name: &str) -> Result<Temp<'_>, ShmError> {
        let flags =
            OFlags::CREATE | OFlags::EXCL | OFlags::RDWR | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let mut last = Errno::EXIST;
        for _ in 0..TEMP_ATTEMPTS {
            let file = temp_file_name();
            match fs::openat(&self.0, file.as_str(), flags, Mode::empty()) {
                Ok(fd) => {
                    return Ok(Temp {
                        dir: self,
                        file,
                        fd: Some(fd),
                    });
                }
                Err(Errno::EXIST) => last = Errno::EXIST,
                Err(errno) => return Err(ShmError::named(name, "openat(O_CREAT)")(errno)),
            }
        }
        Err(ShmError::named(name, "openat(O_CREAT)")(last))
    }

    /// Gives `temp` the name `name`: `renameat2(temp, name)`, with
    /// `RENAME_NOREPLACE` unless `replace`. `false` (only without `replace`)
    /// if the name is taken; the temporary name then stays.
    #[doc(alias = "renameat2")]
    pub(super) fn publish(
        &self,
        temp: &Temp<'_>,
        name: &str,
        replace: bool,
    ) -> Result<bool, ShmError> {
        let flags = if replace {
            RenameFlags::empty()
        } else {
            RenameFlags::NOREPLACE
        };
        match fs::renameat_with(
            &self.0,
            temp.file.as_str(),
            &self.0,
            file_name(name)?,
            flags,
        ) {
            Ok(()) => Ok(true),
            Err(Errno::EXIST) if !replace => Ok(false),
            Err(errno) => Err(ShmError::named(name, "renameat2")(errno)),
        }
    }

    /// `unlinkat(name)`.
    #[doc(alias = "unlinkat")]
    pub(super) fn unlink(&self, name: &str) -> Result<(), ShmError> {
        fs::unlinkat(&self.0, file_name(name)?, AtFlags::empty())
            .map_err(ShmError::named(name, "unlinkat"))
    }
}

impl Temp<'_> {
    /// The object.
    pub(super) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_ref().expect("taken only when consumed").as_fd()
    }

    /// The object, now that it has its real name: the temporary name is
    /// gone, nothing to remove on drop.
    pub(super) fn into_published(mut self) -> OwnedFd {
        self.file.clear();
        self.fd.take().expect("taken only here")
    }
}

impl Drop for Temp<'_> {
    /// Removes the temporary name if it is still ours: `/dev/shm` is sticky,
    /// so only this user could have renamed or removed it since.
    fn drop(&mut self) {
        if !self.file.is_empty() {
            let _ = fs::unlinkat(&self.dir.0, self.file.as_str(), AtFlags::empty());
        }
    }
}

/// `.ipcp-<pid>-<64 random bits>`: no valid segment name of this crate's
/// users is likely to look like it, and nobody can guess it in advance.
fn temp_file_name() -> String {
    // `RandomState` is seeded from the OS's random source once per thread
    // and varied per instance: enough to make the name unpredictable.
    let random = RandomState::new().build_hasher().finish();
    format!(".ipcp-{}-{random:016x}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_posix_rules() {
        let longest = format!("/{}", "a".repeat(NAME_MAX));
        let too_long = format!("/{}", "a".repeat(NAME_MAX + 1));
        let cases = [
            ("shm", NameError::NoLeadingSlash),
            ("", NameError::NoLeadingSlash),
            ("/", NameError::Empty),
            ("/.", NameError::DotOrDotDot),
            ("/..", NameError::DotOrDotDot),
            ("/a/b", NameError::InnerSlash),
            ("//a", NameError::InnerSlash),
            ("/a\0b", NameError::Nul),
            (too_long.as_str(), NameError::TooLong { len: 256 }),
        ];
        for (name, reason) in cases {
            let err = ShmError::InvalidName {
                name: name.to_owned(),
                reason,
            };
            assert_eq!(file_name(name), Err(err), "{name:?}");
        }
        assert_eq!(file_name(&longest), Ok(&longest[1..]));
        assert_eq!(file_name("/a.b"), Ok("a.b"));
    }

    #[test]
    fn temporary_names_differ() {
        let (a, b) = (temp_file_name(), temp_file_name());
        assert_ne!(a, b);
        assert!(a.starts_with(".ipcp-") && a.len() <= NAME_MAX, "{a}");
    }
}
