//! Opening a named segment: [`OpenOptions`], and who it trusts (see
//! [Named segments](super#named-segments-what-open-checks)).

use std::os::fd::AsFd;

use rustix::fs::Stat;
use rustix::process::{Gid, Uid, geteuid};

use super::error::ShmError;
use super::mapping::Mapping;
use super::name::ShmDir;
use super::{Role, Segment};

/// The group and others write bits of a mode.
const GROUP_WRITE: u32 = 0o020;
const OTHER_WRITE: u32 = 0o002;

/// How [`OpenOptions::open`] checks a named segment before mapping it.
///
/// By default it trusts only segments owned by this process's effective uid
/// that neither group nor others may write; any size but zero is accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OpenOptions {
    len: Option<usize>,
    owner: Option<Uid>,
    group: Option<Gid>,
    read_only: bool,
}

impl OpenOptions {
    /// Trusts this process's effective uid only; accepts any non-zero size.
    pub const fn new() -> Self {
        Self {
            len: None,
            owner: None,
            group: None,
            read_only: false,
        }
    }

    /// Opens and maps the segment read-only (`O_RDONLY`, `PROT_READ`): for
    /// readers that never write, such as a seqlock's or a broadcast's
    /// ([`Segment::read_region`]). Nothing this process does can then change
    /// the segment.
    pub const fn read_only(self, read_only: bool) -> Self {
        Self { read_only, ..self }
    }

    /// Requires the segment to be exactly `len` bytes (what the creator
    /// sized it to: the structure's `required_size`), checked before mapping
    /// ([`ShmError::WrongSize`]). Exact, so neither a segment too small for
    /// the structure nor one larger than asked for (a sparse terabyte
    /// reserving this process's address space) is mapped.
    pub const fn len(self, len: usize) -> Self {
        Self {
            len: Some(len),
            ..self
        }
    }

    /// Also trusts segments owned by `uid` (e.g. a daemon running as another
    /// user, or root): its owner can truncate it at any time, so trust it
    /// not to.
    pub const fn trust_owner(self, uid: Uid) -> Self {
        Self {
            owner: Some(uid),
            ..self
        }
    }

    /// Also trusts segments whose group `gid` may write them (mode `0o660`,
    /// for users who share through a group): every member can truncate it.
    /// The owner must still be trusted. A segment others may write is never
    /// trusted.
    pub const fn trust_group(self, gid: Gid) -> Self {
        Self {
            group: Some(gid),
            ..self
        }
    }

    /// Opens, checks and maps an existing named segment:
    /// `openat("/dev/shm", name, O_RDWR | O_NOFOLLOW | O_NONBLOCK |
    /// O_CLOEXEC)` (`O_RDONLY` if [read-only](Self::read_only)), `fstat`,
    /// `mmap` ([shm_open(3)](https://man7.org/linux/man-pages/man3/shm_open.3.html),
    /// [openat(2)](https://man7.org/linux/man-pages/man2/openat.2.html)).
    ///
    /// # Errors
    /// Every error names the segment, and each check is made before
    /// mapping: [`ShmError::Symlink`] for a symbolic link,
    /// [`ShmError::NotRegular`] for anything but a regular file,
    /// [`ShmError::Untrusted`] for a segment owned or writable by someone not
    /// trusted, [`ShmError::WrongSize`] for one of the wrong size;
    /// [`ShmError::InvalidName`] for a name that breaks the rules;
    /// [`ShmError::Named`] for a failed call (`openat` with `ENOENT`: no such
    /// segment).
    #[doc(alias = "shm_open")]
    #[doc(alias = "openat")]
    #[doc(alias = "fstat")]
    pub fn open(&self, name: &str) -> Result<Segment, ShmError> {
        let dir = ShmDir::open(name)?;
        let writable = !self.read_only;
        let (fd, stat) = dir.open_existing(name, writable)?;
        self.check_trust(name, &stat)?;
        let len = self.check_size(name, &stat)?;
        let map =
            Mapping::new(fd.as_fd(), len, writable).map_err(|source| ShmError::at(name, source))?;
        Ok(Segment::new(map, fd, Role::Opener))
    }

    /// Refuses a segment that someone not trusted owns or may write.
    fn check_trust(&self, name: &str, stat: &Stat) -> Result<(), ShmError> {
        let uid = Uid::from_raw(stat.st_uid);
        let gid = Gid::from_raw(stat.st_gid);
        let mode = stat.st_mode & 0o7777;
        let owner = uid == geteuid() || Some(uid) == self.owner;
        let group = mode & GROUP_WRITE == 0 || Some(gid) == self.group;
        let others = mode & OTHER_WRITE == 0;
        if owner && group && others {
            Ok(())
        } else {
            Err(ShmError::Untrusted {
                name: name.to_owned(),
                uid,
                gid,
                mode,
            })
        }
    }

    /// The length to map: the segment's size, if it is the one asked for
    /// (or, without one, if it is not zero and fits in the address space).
    fn check_size(&self, name: &str, stat: &Stat) -> Result<usize, ShmError> {
        let found = stat.st_size.cast_unsigned();
        let len = usize::try_from(found).ok().filter(|&len| match self.len {
            Some(expected) => len == expected,
            None => len != 0,
        });
        len.ok_or_else(|| ShmError::WrongSize {
            name: name.to_owned(),
            expected: self.len,
            found,
        })
    }
}
