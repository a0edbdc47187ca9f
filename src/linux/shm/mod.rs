//! Shared memory: POSIX shm and memfd segments, mapped `MAP_SHARED`.
//!
//! A [`Segment`] is an fd for a shared-memory object and one read-write
//! `MAP_SHARED` mapping of all of it, unmapped on drop. Core structures live in
//! its [`region`](Segment::region). Two kinds of object back it:
//! - **named POSIX segments** ([`Segment::create`], [`Segment::open`],
//!   [`unlink`]), for peers that find each other by a name under `/dev/shm`;
//! - **anonymous memfd segments** ([`Segment::memfd`]), sealed so that their
//!   size never changes, handed to a peer as an fd (the segment is [`AsFd`])
//!   over a Unix socket and mapped there with [`Segment::from_fd`].
//!
//! # Typed placement
//! Size the segment with the structure's `required_size`, create the structure
//! in one mapping and attach to it through another (here both are in one
//! process; normally the second is in the peer, from the fd it received):
//!
//! ```
//! use std::os::fd::AsFd;
//!
//! use ipc_primitives::linux::shm::Segment;
//! use ipc_primitives::spsc::Spsc;
//!
//! let len = Spsc::<u64>::required_size(64).ok_or("ring too large")?;
//! let seg = Segment::memfd("quotes", len)?;
//! let mut tx = Spsc::<u64>::create(seg.region(), 64)?.into_producer();
//!
//! // What the peer does with the fd it receives: check the seals, map it again.
//! let peer = Segment::from_fd(seg.as_fd().try_clone_to_owned()?)?;
//! let mut rx = Spsc::<u64>::attach(peer.region())?.into_consumer();
//!
//! tx.try_push(42)?;
//! assert_eq!(rx.try_pop(), Ok(42));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [`SeqLock::create`](crate::seqlock::SeqLock::create) and
//! [`attach`](crate::seqlock::SeqLock::attach) work the same way.
//!
//! # Trust: truncation and `SIGBUS`
//! Touching a mapped page past the end of its object raises `SIGBUS`, so a
//! peer that shrinks the object can kill this process (it cannot make it read
//! or write any other memory). memfd segments rule that out with seals:
//! [`Segment::memfd`] adds `F_SEAL_SHRINK | F_SEAL_GROW`, and
//! [`Segment::from_fd`] refuses an fd without them ([`ShmError::NotSealed`]).
//! Named segments cannot be sealed, and anyone who may open one read-write may
//! truncate it: [`Segment::open`] and [`Segment::from_fd_trusted`] are for
//! peers trusted not to.
//!
//! # Seals
//! [`Segment::memfd`] also adds `F_SEAL_SEAL`, freezing the set: no holder of
//! the fd can later add `F_SEAL_WRITE` or `F_SEAL_FUTURE_WRITE`, which would
//! make a peer's read-write `mmap` of the segment fail.

use core::{fmt, ptr::NonNull};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{self, MemfdFlags};
use rustix::io::Errno;
use rustix::mm::{self, MapFlags, ProtFlags};
use rustix::shm::{self, OFlags};

pub use rustix::fs::{Mode, SealFlags};

use super::SysError;
use crate::Region;

/// The seals [`Segment::from_fd`] requires: with them the size never changes.
pub const REQUIRED_SEALS: SealFlags = SealFlags::SHRINK.union(SealFlags::GROW);

/// Longest name, leading slash included (Linux's `NAME_MAX`).
const NAME_MAX: usize = 255;

/// A shared-memory object and one read-write `MAP_SHARED` mapping of all of it.
///
/// Dropping it unmaps the memory, closes the fd and, if its creator asked for
/// it, unlinks its name. [`Region`]s borrow the segment, so no structure
/// outlives the mapping.
#[derive(Debug)]
pub struct Segment {
    map: Mapping,
    fd: OwnedFd,
    /// The name to `shm_unlink` on drop, if the creator asked for that.
    unlink_on_drop: Option<String>,
}

impl Segment {
    /// Creates a named segment of `len` bytes, all zero, with
    /// [`CreateOptions::new`]: mode `0600`, kept after drop.
    ///
    /// See [`CreateOptions::create`]; fails with `EEXIST` if `name` exists.
    #[doc(alias = "shm_open")]
    pub fn create(name: &str, len: usize) -> Result<Self, ShmError> {
        CreateOptions::new().create(name, len)
    }

    /// Opens and maps an existing named segment:
    /// `shm_open(name, O_RDWR)`, `fstat` for its size, `mmap`.
    ///
    /// Named segments cannot be sealed: only open those whose other users are
    /// trusted not to truncate them (see [Trust](self#trust-truncation-and-sigbus)).
    #[doc(alias = "shm_open")]
    pub fn open(name: &str) -> Result<Self, ShmError> {
        check_name(name)?;
        let fd = shm::open(name, OFlags::RDWR, Mode::empty())
            .map_err(SysError::from_call("shm_open"))?;
        Self::from_fd_trusted(fd)
    }

    /// Creates an anonymous segment of `len` bytes, all zero, sealed against
    /// any change of size:
    /// `memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING)`, `ftruncate`,
    /// `fcntl(F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)`, `mmap`.
    ///
    /// `name` only labels the fd (in `/proc/<pid>/fd`); it need not be unique.
    #[doc(alias = "memfd_create")]
    #[doc(alias = "F_ADD_SEALS")]
    pub fn memfd(name: &str, len: usize) -> Result<Self, ShmError> {
        let len = nonempty(len)?;
        let fd = fs::memfd_create(name, MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)
            .map_err(SysError::from_call("memfd_create"))?;
        resize(fd.as_fd(), len)?;
        fs::fcntl_add_seals(&fd, REQUIRED_SEALS | SealFlags::SEAL)
            .map_err(SysError::from_call("fcntl(F_ADD_SEALS)"))?;
        Self::map(fd, len, None)
    }

    /// Maps a segment received from a peer, after checking that it carries
    /// [`REQUIRED_SEALS`]: `fcntl(F_GET_SEALS)`, `fstat` for its size, `mmap`.
    ///
    /// The seals are checked first, so the size read next cannot change. An
    /// fd without them, including one that cannot be sealed (a named segment,
    /// a socket), is refused with [`ShmError::NotSealed`].
    #[doc(alias = "F_GET_SEALS")]
    #[doc(alias = "fstat")]
    #[doc(alias = "mmap")]
    pub fn from_fd(fd: OwnedFd) -> Result<Self, ShmError> {
        let found = seals(fd.as_fd())?;
        if !found.contains(REQUIRED_SEALS) {
            return Err(ShmError::NotSealed { found });
        }
        Self::from_fd_trusted(fd)
    }

    /// Maps a segment without checking its seals: `fstat` for its size, `mmap`.
    ///
    /// For named segments and peers trusted not to truncate the object (see
    /// [Trust](self#trust-truncation-and-sigbus)).
    #[doc(alias = "fstat")]
    #[doc(alias = "mmap")]
    pub fn from_fd_trusted(fd: OwnedFd) -> Result<Self, ShmError> {
        let stat = fs::fstat(&fd).map_err(SysError::from_call("fstat"))?;
        let size = stat.st_size.cast_unsigned();
        let len = usize::try_from(size).map_err(|_| ShmError::TooLarge { size })?;
        Self::map(fd, nonempty(len)?, None)
    }

    /// Maps all `len` bytes of `fd`.
    fn map(fd: OwnedFd, len: usize, unlink_on_drop: Option<String>) -> Result<Self, ShmError> {
        Ok(Self {
            map: Mapping::new(fd.as_fd(), len)?,
            fd,
            unlink_on_drop,
        })
    }

    /// The mapped bytes, to [create](crate::spsc::Spsc::create) or
    /// [attach](crate::spsc::Spsc::attach) a structure in. Page-aligned, so
    /// aligned to 128 as structures require.
    pub fn region(&self) -> Region<'_> {
        // SAFETY: `Region::from_raw_parts` asks, for the borrow of `self`:
        // - initialised: a mapping of a file reads as its contents, and bytes
        //   `ftruncate` added read as zero;
        // - valid for reads and writes: the mapping is `PROT_READ | PROT_WRITE`
        //   and `len` bytes long, and lives until `self` drops, which the borrow
        //   forbids while the region exists. A peer truncating an unsealed
        //   object makes access fault with `SIGBUS` (ending the process), never
        //   reach other memory; sealed segments rule even that out;
        // - only accessed through this crate: `Segment` never reads, writes or
        //   references the bytes itself; it only hands them out as `Region`s.
        unsafe { Region::from_raw_parts(self.map.ptr, self.map.len) }
    }

    /// The segment's length in bytes: all of the object, as mapped.
    #[expect(
        clippy::len_without_is_empty,
        reason = "a segment is never empty: empty objects are refused"
    )]
    pub fn len(&self) -> usize {
        self.map.len
    }
}

impl AsFd for Segment {
    /// The object's fd, to send to a peer (e.g. with `SCM_RIGHTS`).
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Drop for Segment {
    /// Unlinks the name if the creator asked for that; an error (someone
    /// already unlinked it) is ignored.
    fn drop(&mut self) {
        if let Some(name) = &self.unlink_on_drop {
            let _ = shm::unlink(name.as_str());
        }
    }
}

/// How [`CreateOptions::create`] makes a named segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreateOptions {
    mode: Mode,
    unlink_on_drop: bool,
}

impl CreateOptions {
    /// Mode `0600` (owner read and write), name kept after drop.
    pub const fn new() -> Self {
        Self {
            mode: Mode::RUSR.union(Mode::WUSR),
            unlink_on_drop: false,
        }
    }

    /// Permissions for the new object, applied exactly (with `fchmod`, so the
    /// umask does not narrow them).
    pub const fn mode(self, mode: Mode) -> Self {
        Self { mode, ..self }
    }

    /// Whether dropping the created [`Segment`] unlinks its name. Peers that
    /// have it open or mapped keep it; nobody can open it by name afterwards.
    pub const fn unlink_on_drop(self, unlink: bool) -> Self {
        Self {
            unlink_on_drop: unlink,
            ..self
        }
    }

    /// Creates and maps a named segment of `len` bytes, all zero:
    /// `shm_open(name, O_CREAT | O_EXCL | O_RDWR)`, `fchmod`, `ftruncate`, `mmap`.
    ///
    /// Fails with `EEXIST` if `name` exists. If a step after `shm_open` fails,
    /// the name is unlinked again.
    #[doc(alias = "shm_open")]
    #[doc(alias = "fchmod")]
    #[doc(alias = "ftruncate")]
    pub fn create(&self, name: &str, len: usize) -> Result<Segment, ShmError> {
        check_name(name)?;
        let len = nonempty(len)?;
        let fd = shm::open(
            name,
            OFlags::CREATE | OFlags::EXCL | OFlags::RDWR,
            self.mode,
        )
        .map_err(SysError::from_call("shm_open"))?;
        self.init(fd, name, len).inspect_err(|_| {
            let _ = shm::unlink(name);
        })
    }

    /// Sets the mode and size of a freshly created object and maps it.
    fn init(&self, fd: OwnedFd, name: &str, len: usize) -> Result<Segment, ShmError> {
        fs::fchmod(&fd, self.mode).map_err(SysError::from_call("fchmod"))?;
        resize(fd.as_fd(), len)?;
        Segment::map(fd, len, self.unlink_on_drop.then(|| name.to_owned()))
    }
}

impl Default for CreateOptions {
    fn default() -> Self {
        Self::new()
    }
}

/// Removes a named segment: `shm_unlink(name)`. Those who have it open or
/// mapped keep it until they close it.
#[doc(alias = "shm_unlink")]
pub fn unlink(name: &str) -> Result<(), ShmError> {
    check_name(name)?;
    shm::unlink(name).map_err(SysError::from_call("shm_unlink"))?;
    Ok(())
}

/// Checks `name` against the rules of [`NameError`].
fn check_name(name: &str) -> Result<(), ShmError> {
    let reason = match name.strip_prefix('/') {
        None => NameError::NoLeadingSlash,
        Some(_) if name.len() > NAME_MAX => NameError::TooLong { len: name.len() },
        Some("") => NameError::Empty,
        Some("." | "..") => NameError::DotOrDotDot,
        Some(rest) if rest.contains('/') => NameError::InnerSlash,
        Some(rest) if rest.contains('\0') => NameError::Nul,
        Some(_) => return Ok(()),
    };
    Err(ShmError::InvalidName { reason })
}

/// `len`, unless it is zero.
fn nonempty(len: usize) -> Result<usize, ShmError> {
    if len == 0 {
        Err(ShmError::Empty)
    } else {
        Ok(len)
    }
}

/// `ftruncate(fd, len)`: sizes a new object; the bytes it adds read as zero.
fn resize(fd: BorrowedFd<'_>, len: usize) -> Result<(), ShmError> {
    // Lossless: `usize` is at most 64 bits on every Linux target.
    fs::ftruncate(fd, len as u64).map_err(SysError::from_call("ftruncate"))?;
    Ok(())
}

/// `fcntl(fd, F_GET_SEALS)`; none for an object that cannot be sealed (`EINVAL`).
fn seals(fd: BorrowedFd<'_>) -> Result<SealFlags, ShmError> {
    fs::fcntl_get_seals(fd).or_else(|errno| match errno {
        Errno::INVAL => Ok(SealFlags::empty()),
        errno => Err(SysError::new("fcntl(F_GET_SEALS)", errno).into()),
    })
}

/// One read-write `MAP_SHARED` mapping of a whole object, unmapped on drop.
#[derive(Debug)]
struct Mapping {
    /// The first byte, as `mmap` returned it: page-aligned.
    ptr: NonNull<u8>,
    /// Bytes mapped: the object's size when it was mapped; never zero.
    len: usize,
}

// SAFETY: a `Mapping` owns its address range like a `Box` owns its allocation;
// it never touches the bytes, and unmapping from any thread is the same call.
unsafe impl Send for Mapping {}
// SAFETY: `&Mapping` only reads `ptr` and `len`; the bytes are reached through
// `Region`, whose own `Sync` argument covers them.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// `mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)`.
    ///
    /// # Panics
    /// If the kernel maps the object at address 0, which it does not do
    /// without `MAP_FIXED`.
    fn new(fd: BorrowedFd<'_>, len: usize) -> Result<Self, ShmError> {
        let prot = ProtFlags::READ | ProtFlags::WRITE;
        // SAFETY: with a null address the kernel picks a range no memory of
        // this process occupies, so no existing allocation or reference is
        // affected; nothing refers to the new range yet.
        let addr = unsafe { mm::mmap(core::ptr::null_mut(), len, prot, MapFlags::SHARED, fd, 0) }
            .map_err(SysError::from_call("mmap"))?;
        let ptr = NonNull::new(addr.cast::<u8>()).expect("mmap without MAP_FIXED avoids address 0");
        Ok(Self { ptr, len })
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

/// Why a segment could not be created, opened, mapped or unlinked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ShmError {
    /// A system call failed; the error names it and keeps the `Errno`.
    Sys(SysError),
    /// The name breaks a rule of POSIX shared-memory names.
    InvalidName {
        /// The rule broken.
        reason: NameError,
    },
    /// A peer's fd lacks [`REQUIRED_SEALS`], so the peer could truncate it
    /// under the mapping. Use [`Segment::from_fd_trusted`] only if it is trusted.
    NotSealed {
        /// The seals it has.
        found: SealFlags,
    },
    /// The segment would have, or has, zero bytes.
    Empty,
    /// The object is larger than this process can map.
    TooLarge {
        /// Its size in bytes.
        size: u64,
    },
}

impl From<SysError> for ShmError {
    fn from(err: SysError) -> Self {
        Self::Sys(err)
    }
}

impl fmt::Display for ShmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sys(err) => fmt::Display::fmt(err, f),
            Self::InvalidName { reason } => write!(f, "invalid shared-memory name: {reason}"),
            Self::NotSealed { found } => write!(
                f,
                "segment is not sealed against shrinking and growing (seals: {found:?})"
            ),
            Self::Empty => f.write_str("segment has zero bytes"),
            Self::TooLarge { size } => {
                write!(
                    f,
                    "segment of {size} bytes does not fit in the address space"
                )
            }
        }
    }
}

impl core::error::Error for ShmError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Sys(err) => Some(err),
            Self::InvalidName { reason } => Some(reason),
            _ => None,
        }
    }
}

/// The rule a shared-memory name breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NameError {
    /// It does not start with `/`.
    NoLeadingSlash,
    /// Nothing follows the `/`.
    Empty,
    /// It is `/.` or `/..`.
    DotOrDotDot,
    /// A `/` follows the first.
    InnerSlash,
    /// It contains a NUL byte.
    Nul,
    /// It is longer than 255 bytes (`NAME_MAX`, leading slash included).
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoLeadingSlash => f.write_str("it must start with '/'"),
            Self::Empty => f.write_str("nothing follows the '/'"),
            Self::DotOrDotDot => f.write_str("it cannot be \"/.\" or \"/..\""),
            Self::InnerSlash => f.write_str("only the first character may be '/'"),
            Self::Nul => f.write_str("it contains a NUL byte"),
            Self::TooLong { len } => write!(f, "it is {len} bytes long, the limit is {NAME_MAX}"),
        }
    }
}

impl core::error::Error for NameError {}

#[cfg(test)]
mod tests {
    use core::sync::atomic::{AtomicUsize, Ordering};
    use std::path::PathBuf;

    use static_assertions::assert_impl_all;

    use super::*;
    use crate::AttachError;
    use crate::layout::ElementLayout;
    use crate::seqlock::SeqLock;
    use crate::spsc::Spsc;

    assert_impl_all!(Segment: Send, Sync);

    /// A name no other test or test run uses; unlinked on drop if a test
    /// failed before removing it.
    struct TestName(String);

    impl TestName {
        fn new() -> Self {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            Self(format!("/ipcp-test-{}-{n}", std::process::id()))
        }

        fn exists(&self) -> bool {
            PathBuf::from("/dev/shm").join(&self.0[1..]).exists()
        }
    }

    impl Drop for TestName {
        fn drop(&mut self) {
            let _ = shm::unlink(self.0.as_str());
        }
    }

    fn errno(err: ShmError) -> Errno {
        match err {
            ShmError::Sys(err) => err.errno,
            other => panic!("expected a system error, got {other:?}"),
        }
    }

    fn mode_of(fd: impl AsFd) -> u32 {
        fs::fstat(fd).unwrap().st_mode & 0o777
    }

    /// A second mapping of `seg`'s object, as a peer holding its fd would make.
    fn peer_of(seg: &Segment) -> Segment {
        Segment::from_fd(seg.as_fd().try_clone_to_owned().unwrap()).unwrap()
    }

    /// A memfd of `len` bytes that accepts seals but has none.
    fn unsealed_memfd(len: u64) -> OwnedFd {
        let fd =
            fs::memfd_create("unsealed", MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING).unwrap();
        fs::ftruncate(&fd, len).unwrap();
        fd
    }

    #[test]
    fn names_are_validated() {
        let long = format!("/{}", "a".repeat(NAME_MAX));
        let cases = [
            ("shm", NameError::NoLeadingSlash),
            ("", NameError::NoLeadingSlash),
            ("/", NameError::Empty),
            ("/.", NameError::DotOrDotDot),
            ("/..", NameError::DotOrDotDot),
            ("/a/b", NameError::InnerSlash),
            ("//a", NameError::InnerSlash),
            ("/a\0b", NameError::Nul),
            (long.as_str(), NameError::TooLong { len: 256 }),
        ];
        for (name, reason) in cases {
            let invalid = Err(ShmError::InvalidName { reason });
            assert_eq!(Segment::create(name, 4096).map(|_| ()), invalid, "{name:?}");
            assert_eq!(Segment::open(name).map(|_| ()), invalid, "{name:?}");
            assert_eq!(unlink(name), invalid, "{name:?}");
        }
        assert_eq!(check_name(&long[..NAME_MAX]), Ok(()));
        assert_eq!(check_name("/a.b"), Ok(()));
    }

    #[test]
    fn named_segment_is_shared_and_kept_until_unlinked() {
        let name = TestName::new();
        let len = SeqLock::<[u64; 4]>::required_size();
        let creator = Segment::create(&name.0, len).unwrap();
        let opener = Segment::open(&name.0).unwrap();
        assert_eq!((creator.len(), opener.len()), (len, len));

        let mut writer = SeqLock::<[u64; 4]>::create(creator.region())
            .unwrap()
            .into_writer();
        let reader = SeqLock::<[u64; 4]>::attach(opener.region())
            .unwrap()
            .reader();
        writer.write(&[1, 2, 3, 4]);
        assert_eq!(reader.try_read(), Ok([1, 2, 3, 4]));

        drop((creator, opener));
        assert!(name.exists(), "kept after drop without unlink_on_drop");
        unlink(&name.0).unwrap();
        assert!(!name.exists());
        assert_eq!(unlink(&name.0).map_err(errno), Err(Errno::NOENT));
    }

    #[test]
    fn create_is_exclusive() {
        let name = TestName::new();
        let options = CreateOptions::new().unlink_on_drop(true);
        let first = options.create(&name.0, 4096).unwrap();
        let again = options.create(&name.0, 4096).unwrap_err();
        assert_eq!(
            again,
            ShmError::Sys(SysError::new("shm_open", Errno::EXIST))
        );
        assert!(
            name.exists(),
            "a failed create leaves the existing name alone"
        );
        drop(first);
        assert!(!name.exists());
    }

    #[test]
    fn mode_defaults_to_0600_and_is_configurable() {
        let name = TestName::new();
        let seg = Segment::create(&name.0, 4096).unwrap();
        assert_eq!(mode_of(&seg), 0o600);
        unlink(&name.0).unwrap();

        let seg = CreateOptions::new()
            .mode(Mode::from(0o660))
            .unlink_on_drop(true)
            .create(&name.0, 4096)
            .unwrap();
        assert_eq!(mode_of(&seg), 0o660, "not narrowed by the umask");
        drop(seg);
        assert!(!name.exists());
    }

    #[test]
    fn unlink_on_drop_removes_the_name() {
        let name = TestName::new();
        let seg = CreateOptions::new()
            .unlink_on_drop(true)
            .create(&name.0, 4096)
            .unwrap();
        assert!(name.exists());
        drop(seg);
        assert!(!name.exists());
    }

    #[test]
    fn failed_create_removes_the_name() {
        let name = TestName::new();
        let err = Segment::create(&name.0, usize::MAX).unwrap_err();
        assert!(
            matches!(
                err,
                ShmError::Sys(SysError {
                    call: "ftruncate",
                    ..
                })
            ),
            "{err:?}"
        );
        assert!(!name.exists());
    }

    #[test]
    fn empty_segments_are_refused() {
        let name = TestName::new();
        assert_eq!(Segment::create(&name.0, 0).unwrap_err(), ShmError::Empty);
        assert!(!name.exists());
        assert_eq!(Segment::memfd("empty", 0).unwrap_err(), ShmError::Empty);
        let fd = unsealed_memfd(0);
        assert_eq!(Segment::from_fd_trusted(fd).unwrap_err(), ShmError::Empty);
    }

    #[test]
    fn memfd_is_sealed_against_resizing() {
        let len = Spsc::<u64>::required_size(16).unwrap();
        let seg = Segment::memfd("sealed", len).unwrap();
        let seals = fs::fcntl_get_seals(&seg).unwrap();
        assert!(
            seals.contains(REQUIRED_SEALS | SealFlags::SEAL),
            "{seals:?}"
        );
        for size in [len as u64 / 2, len as u64 * 2] {
            assert_eq!(fs::ftruncate(&seg, size), Err(Errno::PERM));
        }
        assert_eq!(peer_of(&seg).len(), len);
    }

    #[test]
    fn unsealed_fds_are_refused() {
        let fd = unsealed_memfd(4096);
        assert_eq!(
            Segment::from_fd(fd).unwrap_err(),
            ShmError::NotSealed {
                found: SealFlags::empty()
            }
        );

        let fd = unsealed_memfd(4096);
        fs::fcntl_add_seals(&fd, SealFlags::SHRINK).unwrap();
        assert_eq!(
            Segment::from_fd(fd).unwrap_err(),
            ShmError::NotSealed {
                found: SealFlags::SHRINK
            }
        );

        let name = TestName::new();
        let named = CreateOptions::new()
            .unlink_on_drop(true)
            .create(&name.0, 4096)
            .unwrap();
        let fd = named.as_fd().try_clone_to_owned().unwrap();
        assert!(matches!(
            Segment::from_fd(fd),
            Err(ShmError::NotSealed { .. })
        ));
        drop(named);
        assert!(!name.exists());
    }

    #[test]
    fn ring_is_shared_between_mappings() {
        let seg = Segment::memfd("ring", Spsc::<u64>::required_size(8).unwrap()).unwrap();
        let peer = peer_of(&seg);
        assert_ne!(seg.region().as_ptr(), peer.region().as_ptr());
        let mut tx = Spsc::<u64>::create(seg.region(), 8)
            .unwrap()
            .into_producer();
        let mut rx = Spsc::<u64>::attach(peer.region()).unwrap().into_consumer();
        for i in 0..20 {
            tx.try_push(i).unwrap();
            assert_eq!(rx.try_pop(), Ok(i));
        }
    }

    #[test]
    fn attach_checks_the_element_type_through_another_mapping() {
        let seg = Segment::memfd("ring", Spsc::<u64>::required_size(8).unwrap()).unwrap();
        Spsc::<u64>::create(seg.region(), 8).unwrap();
        let peer = peer_of(&seg);
        assert_eq!(
            Spsc::<u32>::attach(peer.region()).map(|_| ()),
            Err(AttachError::WrongElement {
                expected: ElementLayout::of::<u32>(),
                found: ElementLayout::of::<u64>(),
            })
        );
    }

    #[test]
    fn attach_reports_a_truncated_object() {
        let needed = Spsc::<u64>::required_size(64).unwrap();
        let fd = unsealed_memfd(needed as u64);
        {
            let seg = Segment::from_fd_trusted(fd.try_clone().unwrap()).unwrap();
            Spsc::<u64>::create(seg.region(), 64).unwrap();
        }
        // Shrunk while nothing maps it; the new mapping covers only what is left.
        fs::ftruncate(&fd, 512).unwrap();
        let seg = Segment::from_fd_trusted(fd).unwrap();
        assert_eq!(seg.len(), 512);
        assert_eq!(
            Spsc::<u64>::attach(seg.region()).map(|_| ()),
            Err(AttachError::TooSmall {
                needed,
                actual: 512
            })
        );
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let err = ShmError::InvalidName {
            reason: NameError::InnerSlash,
        };
        assert_eq!(
            err.to_string(),
            "invalid shared-memory name: only the first character may be '/'"
        );
        let err = ShmError::Sys(SysError::new("shm_open", Errno::EXIST));
        assert!(err.to_string().starts_with("shm_open: "), "{err}");
        assert!(core::error::Error::source(&err).is_some());
    }
}
