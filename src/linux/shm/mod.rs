//! Shared memory: POSIX shm and memfd segments, mapped `MAP_SHARED`.
//!
//! A [`Segment`] is an fd for a shared-memory object and one read-write
//! `MAP_SHARED` mapping of all of it, unmapped on drop. Core structures live in
//! its [`region`](Segment::region). Two kinds of object back it:
//! - **named POSIX segments** ([`Segment::create`], [`Segment::open`],
//!   [`unlink()`]), for peers that find each other by a name under `/dev/shm`;
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
//! let mut tx = Spsc::<u64>::create(seg.region()?, 64)?.into_producer();
//!
//! // What the peer does with the fd it receives: check the seals, map it again.
//! let peer = Segment::from_fd(seg.as_fd().try_clone_to_owned()?)?;
//! let mut rx = Spsc::<u64>::attach(peer.region()?)?.into_consumer();
//!
//! tx.try_push(42)?;
//! assert_eq!(rx.try_pop(), Ok(42));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [`SeqLock::create`](crate::seqlock::SeqLock::create) and
//! [`attach`](crate::seqlock::SeqLock::attach) work the same way.
//!
//! # Named segments: what `open` checks
//! `/dev/shm` is shared by every user, so a name there may hold what another
//! user put: a symbolic link to a file only root may write, or a segment that
//! user can truncate at any time (killing whoever maps it with `SIGBUS`).
//! Every call on a name goes through a directory fd on `/dev/shm` with
//! `openat` and `O_NOFOLLOW`, whatever the C library's or rustix's
//! `shm_open` does, and [`OpenOptions::open`] refuses, from an `fstat` of
//! what it opened and before mapping it:
//! - a symbolic link ([`ShmError::Symlink`]; never followed), or anything but
//!   a regular file ([`ShmError::NotRegular`]; a FIFO does not block the
//!   open: `O_NONBLOCK`);
//! - a segment not owned by this process's effective uid, or that its group
//!   or others may write ([`ShmError::Untrusted`], with the uid, gid and mode
//!   found). [`OpenOptions::trust_owner`] and [`OpenOptions::trust_group`]
//!   admit one other owner and one writing group, for setups that share
//!   across users; a segment others may write is never admitted;
//! - a size other than [`OpenOptions::len`] ([`ShmError::WrongSize`]).
//!
//! A segment that passes can be truncated only by its trusted owner, a
//! trusted group, or root. [`CreateOptions::mode`] takes permission bits
//! only (`0o777`; [`ShmError::InvalidMode`] otherwise) and applies them
//! exactly.
//!
//! # Liveness
//! Named segments outlive their creator: after a `kill -9`, the name stays.
//! Whether its creator is alive is told by a lock, not a clock. The creator
//! write-locks one byte of the object (the *life lock*, an
//! open-file-description lock, `F_OFD_SETLK`) before the object gets its
//! name and holds it as long as its [`Segment`] lives; the kernel drops it
//! when the creator drops the segment or dies.
//! [`Segment::creator_alive`] asks with one `fcntl(F_OFD_GETLK)` that places
//! no lock and never disturbs the creator: cheap enough for a seqlock
//! reader to call every millisecond while a write seems stuck, to tell a
//! preempted writer ([`Liveness::Alive`]: retry) from a dead one
//! ([`Liveness::Gone`]). A segment opened after the creator died reports
//! `Gone` at once; its last contents stay readable.
//!
//! ```
//! use ipc_primitives::linux::shm::{CreateOptions, Liveness, Segment, ShmError};
//!
//! let name = format!("/ipcp-doc-liveness-{}", std::process::id());
//! let creator = Segment::create(&name, 4096)?;
//! let reader = Segment::open(&name)?;
//! assert_eq!(reader.creator_alive(), Liveness::Alive);
//!
//! // A second creator is refused while the first lives...
//! let restart = CreateOptions::new().take_over(true).unlink_on_drop(true);
//! assert!(matches!(restart.create(&name, 4096), Err(ShmError::CreatorAlive { .. })));
//! // ...and takes the name over once it is gone (here: dropped; a crash is the same).
//! drop(creator);
//! assert_eq!(reader.creator_alive(), Liveness::Gone);
//! let successor = restart.create(&name, 4096)?;
//! assert_eq!(Segment::open(&name)?.creator_alive(), Liveness::Alive);
//! # drop(successor);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A seqlock reader asks the same lock when the writer seems stuck
//! mid-write, so that it waits out a writer the scheduler preempted and stops
//! at once for one that died ([`ReadError::WriterGone`]):
//!
//! ```
//! # use ipc_primitives::linux::shm::{Liveness, OpenOptions, Segment};
//! use ipc_primitives::seqlock::{Budget, SeqLock};
//!
//! # let name = format!("/ipcp-doc-quote-{}", std::process::id());
//! # let creator = ipc_primitives::linux::shm::CreateOptions::new().unlink_on_drop(true)
//! #     .create(&name, SeqLock::<[u64; 2]>::required_size().ok_or("size")?)?;
//! # SeqLock::<[u64; 2]>::create(creator.region()?)?.into_writer().write(&[7, 8]);
//! let quotes = OpenOptions::new().read_only(true).open(&name)?;
//! let reader = SeqLock::<[u64; 2]>::attach_reader(quotes.read_region()?)?;
//! let writer_alive = || quotes.creator_alive() != Liveness::Gone;
//! let quote = reader.read_with(Budget::default().watching(writer_alive))?;
//! # assert_eq!(quote, [7, 8]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A writer that dies *between* writes leaves a whole, valid value, which
//! `Budget::watching` never questions (it is asked only while a write seems
//! stuck): a reader that sees no new version for a while asks
//! `creator_alive()` itself (`examples/quote.rs` does both).
//!
//! [`ReadError::WriterGone`]: crate::seqlock::ReadError::WriterGone
//!
//! The lock belongs to the creator's open file description, so it lasts as
//! long as any fd sharing that description: a `dup`, a child that inherited
//! it across `fork` (these fds are close-on-exec, so not across `exec`), or a
//! peer that received it over a socket keeps the creator alive. Only a
//! segment with a description of its own can probe: one that
//! [`open`](OpenOptions::open)ed the name. One mapped from a received fd
//! ([`Segment::from_fd`], [`Segment::from_fd_trusted`]) may share the
//! creator's description, where probing would see no conflict (and placing
//! a lock would convert the creator's), so it reports [`Liveness::Unknown`];
//! for those, and for memfds, the socket the fd came over is the liveness
//! signal: the peer is gone when it hangs up. Liveness covers segments
//! created through this module; one made by plain `shm_open` holds no lock
//! and reads as gone.
//!
//! ## Taking over a dead creator's name
//! [`CreateOptions::take_over`] lets `create` replace a segment whose creator
//! is gone. The protocol, and why it holds:
//! 1. A creator makes its object under a random temporary name, takes its
//!    life lock, sizes and maps it, then names it with `renameat2` and
//!    `RENAME_NOREPLACE`. So a named object whose life lock nobody holds is
//!    one whose creator is gone, never one not yet locked, and it stays gone
//!    (the life lock is only ever taken before naming). A plain create never
//!    moves a name off anything.
//! 2. Whoever moves a name off an object (a taker, [`unlink()`], a creator's
//!    [`unlink_on_drop`](CreateOptions::unlink_on_drop)) first write-locks
//!    another byte of it (the *name lock*, without waiting:
//!    [`ShmError::Busy`] if held), then checks by device and inode that the
//!    name still names it. Holding the lock after that check, the name
//!    stays on the object until it acts: every other mover would need the
//!    same lock, and a creator cannot rename over an existing name.
//! 3. A taker opens what the name holds, finds the life lock free (else
//!    [`ShmError::CreatorAlive`]), takes the name lock, checks the name, and
//!    renames its own locked object over it. By 2 it replaces exactly the
//!    dead object: a live creator is never displaced and nothing else is
//!    removed. Of two takers, the second to get the lock finds the name
//!    moved, looks again and meets the first's live object: one wins.
//!
//! A process that moves names without this protocol (`rm`, another
//! library's `shm_unlink`) can break step 2; a creator killed between its
//! temporary name and the rename leaves `/dev/shm/.ipcp-<pid>-<random>`
//! behind, with nobody's data in it.
//!
//! # What the system must provide
//! - `/dev/shm` owned by root, mode `1777`: the sticky bit stops other users
//!   renaming or removing names they do not own (without it anyone could
//!   swap a name; `open` would still refuse what they put there, but names
//!   and liveness would be theirs to disturb).
//! - `fs.protected_hardlinks = 1` (the default): otherwise another user can
//!   hard-link one of this user's segments at a name this user opens.
//! - Not needed here but wise for other programs: `fs.protected_symlinks =
//!   1` and `fs.protected_regular >= 1` (this module never follows a link
//!   and always creates with `O_EXCL`).
//! - Names are first come, first served: another user may take a name
//!   first, and anyone who may open a segment may hold a lock on it (a
//!   writer can fake the life lock, a reader can hold the name lock so that
//!   it cannot be moved). Use names others cannot predict, or modes that
//!   keep them out (the default `0600`).
//!
//! # Trust: truncation and `SIGBUS`
//! Touching a mapped page past the end of its object raises `SIGBUS`, so a
//! peer that shrinks the object can kill this process (it cannot make it read
//! or write any other memory). memfd segments rule that out with seals:
//! [`Segment::memfd`] adds `F_SEAL_SHRINK | F_SEAL_GROW`, and
//! [`Segment::from_fd`] refuses an fd without them ([`ShmError::NotSealed`]).
//! Named segments cannot be sealed: anyone who may open one read-write may
//! truncate it, which is why [`Segment::open`] trusts only its owner (see
//! above), and [`Segment::from_fd_trusted`] is for peers trusted not to.
//!
//! # Seals
//! [`Segment::memfd`] also adds `F_SEAL_SEAL`, freezing the set: no holder of
//! the fd can later add `F_SEAL_WRITE` or `F_SEAL_FUTURE_WRITE`, which would
//! make a peer's read-write `mmap` of the segment fail.

use core::sync::atomic::{AtomicBool, Ordering};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::Arc;

use rustix::fs::{self, MemfdFlags};
use rustix::io::Errno;

pub use rustix::fs::{Mode, SealFlags};

use crate::linux::SysError;
use crate::{ReadRegion, Region};

mod create;
mod error;
pub(crate) mod lock;
mod mapping;
mod name;
mod open;
mod unlink;

pub use create::CreateOptions;
pub use error::{NameError, ShmError};
pub use lock::Liveness;
pub use open::OpenOptions;
pub use unlink::unlink;

use mapping::Mapping;

/// The seals [`Segment::from_fd`] requires: with them the size never changes.
pub const REQUIRED_SEALS: SealFlags = SealFlags::SHRINK.union(SealFlags::GROW);

/// A shared-memory object and one read-write `MAP_SHARED` mapping of all of it.
///
/// Dropping it unmaps the memory, closes the fd (releasing a creator's life
/// lock) and, if its creator asked for it, unlinks its name. [`Region`]s
/// borrow the segment, so no structure outlives the mapping.
#[derive(Debug)]
pub struct Segment {
    map: Mapping,
    fd: OwnedFd,
    role: Role,
    /// Whether [`region`](Segment::region) handed the memory out.
    taken: AtomicBool,
}

/// How this process came to hold a segment, which says what
/// [`Segment::creator_alive`] can know.
#[derive(Debug)]
enum Role {
    /// It made the object: a named one's `fd` holds the life lock.
    Creator {
        /// The name to unlink on drop, if the creator asked for that.
        unlink_on_drop: Option<String>,
    },
    /// It opened the name: `fd` is an open file description of its own.
    Opener,
    /// It mapped an fd from elsewhere, which may share the creator's open
    /// file description.
    Received,
}

impl Segment {
    /// Creates a named segment of `len` bytes, all zero, with
    /// [`CreateOptions::new`]: mode `0600`, kept after drop, an existing
    /// name refused ([shm_open(3)](https://man7.org/linux/man-pages/man3/shm_open.3.html)).
    ///
    /// See [`CreateOptions::create`].
    ///
    /// # Errors
    /// As for [`CreateOptions::create`].
    #[doc(alias = "shm_open")]
    pub fn create(name: &str, len: usize) -> Result<Self, ShmError> {
        CreateOptions::new().create(name, len)
    }

    /// Opens and maps an existing named segment owned by this process's
    /// effective uid that group and others may not write, with
    /// [`OpenOptions::new`] ([shm_open(3)](https://man7.org/linux/man-pages/man3/shm_open.3.html)).
    ///
    /// See [`OpenOptions::open`].
    ///
    /// # Errors
    /// As for [`OpenOptions::open`].
    #[doc(alias = "shm_open")]
    pub fn open(name: &str) -> Result<Self, ShmError> {
        OpenOptions::new().open(name)
    }

    /// Creates an anonymous segment of `len` bytes, all zero, sealed against
    /// any change of size:
    /// `memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING)`, `ftruncate`,
    /// `fcntl(F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)`, `mmap`
    /// ([memfd_create(2)](https://man7.org/linux/man-pages/man2/memfd_create.2.html),
    /// [mmap(2)](https://man7.org/linux/man-pages/man2/mmap.2.html)).
    ///
    /// `name` only labels the fd (in `/proc/<pid>/fd`); it need not be unique.
    ///
    /// # Errors
    /// [`ShmError::Empty`] for a `len` of 0; [`ShmError::Sys`] with the call
    /// that failed (e.g. `memfd_create` with `EMFILE`, `mmap` with `ENOMEM`).
    #[doc(alias = "memfd_create")]
    #[doc(alias = "F_ADD_SEALS")]
    pub fn memfd(name: &str, len: usize) -> Result<Self, ShmError> {
        let len = nonempty(len)?;
        let fd = fs::memfd_create(name, MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)
            .map_err(SysError::from_call("memfd_create"))?;
        resize(fd.as_fd(), len)?;
        fs::fcntl_add_seals(&fd, REQUIRED_SEALS | SealFlags::SEAL)
            .map_err(SysError::from_call("fcntl(F_ADD_SEALS)"))?;
        Self::map(
            fd,
            len,
            Role::Creator {
                unlink_on_drop: None,
            },
            true,
        )
    }

    /// Maps a segment received from a peer, after checking that it carries
    /// [`REQUIRED_SEALS`]: `fcntl(F_GET_SEALS)`, `fstat` for its size, `mmap`
    /// ([fcntl(2)](https://man7.org/linux/man-pages/man2/fcntl.2.html), [mmap(2)](https://man7.org/linux/man-pages/man2/mmap.2.html)).
    ///
    /// The seals are checked first, so the size read next cannot change. An
    /// fd without them, including one that cannot be sealed (a named segment,
    /// a socket), is refused.
    ///
    /// # Errors
    /// [`ShmError::NotSealed`] for an fd without the seals; otherwise as for
    /// [`from_fd_trusted`](Self::from_fd_trusted).
    #[doc(alias = "F_GET_SEALS")]
    #[doc(alias = "fstat")]
    #[doc(alias = "mmap")]
    pub fn from_fd(fd: OwnedFd) -> Result<Self, ShmError> {
        check_sealed(fd.as_fd())?;
        Self::from_fd_trusted(fd)
    }

    /// [`from_fd`](Self::from_fd), mapped read-only (`PROT_READ`,
    /// [mmap(2)](https://man7.org/linux/man-pages/man2/mmap.2.html)): for readers that never write
    /// ([`read_region`](Self::read_region)).
    ///
    /// # Errors
    /// As for [`from_fd`](Self::from_fd).
    #[doc(alias = "F_GET_SEALS")]
    #[doc(alias = "mmap")]
    pub fn from_fd_read_only(fd: OwnedFd) -> Result<Self, ShmError> {
        check_sealed(fd.as_fd())?;
        let len = object_len(fd.as_fd())?;
        Self::map(fd, len, Role::Received, false)
    }

    /// Maps a segment without checking its seals: `fstat` for its size, `mmap`
    /// ([mmap(2)](https://man7.org/linux/man-pages/man2/mmap.2.html)).
    ///
    /// For peers trusted not to truncate the object (see
    /// [Trust](self#trust-truncation-and-sigbus)).
    ///
    /// # Errors
    /// [`ShmError::Empty`] for an object of zero bytes,
    /// [`ShmError::TooLarge`] for one larger than the address space, and
    /// [`ShmError::Sys`] if `fstat` or `mmap` fails.
    #[doc(alias = "fstat")]
    #[doc(alias = "mmap")]
    pub fn from_fd_trusted(fd: OwnedFd) -> Result<Self, ShmError> {
        let len = object_len(fd.as_fd())?;
        Self::map(fd, len, Role::Received, true)
    }

    /// Maps all `len` bytes of `fd`, read-write or read-only.
    fn map(fd: OwnedFd, len: usize, role: Role, writable: bool) -> Result<Self, ShmError> {
        Ok(Self::new(
            Mapping::new(fd.as_fd(), len, writable)?,
            fd,
            role,
        ))
    }

    /// A segment whose region has not been handed out yet.
    fn new(map: Mapping, fd: OwnedFd, role: Role) -> Self {
        Self {
            map,
            fd,
            role,
            taken: AtomicBool::new(false),
        }
    }

    /// The mapped bytes, to [create](crate::spsc::Spsc::create) or
    /// [attach](crate::spsc::Spsc::attach) a structure in. Page-aligned, so
    /// aligned to 128 as structures require.
    ///
    /// Handed out once, so that two structures in this process never share
    /// bytes ([`ShmError::RegionTaken`] after). To hold several structures,
    /// lay the region out into parts. A second mapping of the same object
    /// (another [`Segment`] from the same fd) is, to this process, another
    /// process's view: what it does to the bytes is a peer's doing, which the
    /// structures survive.
    ///
    /// # Errors
    /// [`ShmError::RegionTaken`] if the region was handed out before;
    /// [`ShmError::ReadOnly`] if the segment is mapped read-only (use
    /// [`read_region`](Self::read_region)).
    pub fn region(&self) -> Result<Region<'_>, ShmError> {
        self.take(true)?;
        // SAFETY: `Region::from_raw_parts` asks, for the borrow of `self`:
        // 1. valid for reads and writes: the mapping is `PROT_READ |
        //    PROT_WRITE` (checked by `take`) and `len` bytes long, and lives
        //    until `self` drops, which the borrow forbids while the region
        //    exists. A peer truncating an unsealed object makes access fault
        //    with `SIGBUS` (ending the process), never reach other memory;
        //    sealed segments rule even that out;
        // 2. initialised: a mapping of a file reads as its contents, and
        //    bytes `ftruncate` added read as zero;
        // 3. only accessed through this crate's structures, of one kind:
        //    `take` hands the region out once, and `Segment` never reads,
        //    writes or references the bytes itself.
        Ok(unsafe { Region::from_raw_parts(self.map.ptr, self.map.len) })
    }

    /// The mapped bytes, to attach a reader that never writes (a seqlock's, a
    /// broadcast's): works for read-only and read-write segments alike.
    /// Handed out once, as [`region`](Self::region).
    ///
    /// # Errors
    /// [`ShmError::RegionTaken`] if a region was handed out before.
    pub fn read_region(&self) -> Result<ReadRegion<'_>, ShmError> {
        self.take(false)?;
        // SAFETY: as in `region`, except that the bytes need only be valid
        // for reads, which a `PROT_READ` mapping is.
        Ok(unsafe { ReadRegion::from_raw_parts_owned(self.map.ptr, self.map.len, ()) })
    }

    /// The region, owned: the structure made in it keeps the segment alive
    /// (its sides each hold an `Arc` of it), so the handles can be stored
    /// anywhere, with no lifetime. [`region`](Self::region) on the segment
    /// (reached through a handle's `keeper`) fails from then on.
    ///
    /// ```
    /// use ipc_primitives::linux::shm::Segment;
    /// use ipc_primitives::spsc::{Producer, Spsc};
    ///
    /// struct Logger {
    ///     ring: Producer<'static, u64, std::sync::Arc<Segment>>,
    /// }
    ///
    /// let segment = Segment::memfd("log", Spsc::<u64>::required_size(64).ok_or("size")?)?;
    /// let mut logger = Logger { ring: Spsc::create(segment.into_region()?, 64)?.into_producer() };
    /// logger.ring.try_push(7)?;
    /// assert_eq!(logger.ring.keeper().len(), 512 + 64 * (8 + 8));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`ShmError::ReadOnly`] if the segment is mapped read-only (use
    /// [`into_read_region`](Self::into_read_region)).
    pub fn into_region(self) -> Result<Region<'static, Arc<Segment>>, ShmError> {
        self.take_owned(true)?;
        let (ptr, len) = (self.map.ptr, self.map.len);
        // SAFETY: `from_raw_parts_owned` asks, for as long as the `Arc` or a
        // clone lives: valid for reads and writes (`take_owned` checked
        // `PROT_WRITE`) and initialised (the mapping, as in `region`, lives
        // until the last `Arc` drops the segment, and moving an `Arc` does not
        // move the mapping); accessed only through the structure made in this
        // region (the flag `take_owned` set stops `region` from handing the
        // bytes out again).
        Ok(unsafe { Region::from_raw_parts_owned(ptr, len, Arc::new(self)) })
    }

    /// [`into_region`](Self::into_region) for readers that never write;
    /// works for read-only and read-write segments alike.
    pub fn into_read_region(self) -> ReadRegion<'static, Arc<Segment>> {
        // Cannot fail: read access is all a read region needs.
        let _ = self.take_owned(false);
        let (ptr, len) = (self.map.ptr, self.map.len);
        // SAFETY: as in `into_region`, except that the bytes need only be
        // valid for reads.
        unsafe { ReadRegion::from_raw_parts_owned(ptr, len, Arc::new(self)) }
    }

    /// Marks the region handed out, if it was not, and the mapping writable
    /// if `write`.
    fn take(&self, write: bool) -> Result<(), ShmError> {
        self.check_access(write)?;
        if self.taken.swap(true, Ordering::Relaxed) {
            return Err(ShmError::RegionTaken);
        }
        Ok(())
    }

    /// Marks the region handed out for good, to a structure that will own
    /// the segment. Whatever [`take`](Self::take) handed out borrowed the
    /// segment, so it is gone by the time the segment is moved here.
    fn take_owned(&self, write: bool) -> Result<(), ShmError> {
        self.check_access(write)?;
        self.taken.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// [`ShmError::ReadOnly`] if `write` is asked of a read-only mapping.
    fn check_access(&self, write: bool) -> Result<(), ShmError> {
        if write && !self.map.writable {
            return Err(ShmError::ReadOnly);
        }
        Ok(())
    }

    /// Whether the mapping is writable (not [read-only](OpenOptions::read_only)).
    pub fn is_writable(&self) -> bool {
        self.map.writable
    }

    /// The segment's length in bytes: all of the object, as mapped.
    #[expect(
        clippy::len_without_is_empty,
        reason = "a segment is never empty: empty objects are refused"
    )]
    pub fn len(&self) -> usize {
        self.map.len
    }

    /// Where the `len` bytes at address `addr` start in the object, if all
    /// of them lie in this mapping (which maps the object from offset 0).
    pub(crate) fn offset_of(&self, addr: usize, len: usize) -> Option<usize> {
        let offset = addr.checked_sub(self.map.ptr.as_ptr().addr())?;
        (offset.checked_add(len)? <= self.map.len).then_some(offset)
    }

    /// Whether the process that created this segment still holds it (see
    /// [Liveness](self#liveness)): one `fcntl(F_OFD_GETLK)`
    /// ([fcntl(2)](https://man7.org/linux/man-pages/man2/fcntl.2.html)) for a
    /// segment this process [`open`](Self::open)ed, no call otherwise.
    ///
    /// - opened by name: [`Liveness::Alive`] while the creator's life lock is
    ///   held, [`Liveness::Gone`] once it is not (for good);
    /// - created here: `Alive` (this process is the creator);
    /// - mapped from a received fd ([`from_fd`](Self::from_fd),
    ///   [`from_fd_trusted`](Self::from_fd_trusted)): [`Liveness::Unknown`];
    ///   the socket it came over tells when the peer is gone.
    ///
    /// `Unknown` too if the kernel refuses the query, which it does not for
    /// a segment opened by name.
    #[doc(alias = "F_OFD_GETLK")]
    pub fn creator_alive(&self) -> Liveness {
        match self.role {
            Role::Creator { .. } => Liveness::Alive,
            Role::Opener => lock::probe_life(self.fd.as_fd()).unwrap_or(Liveness::Unknown),
            Role::Received => Liveness::Unknown,
        }
    }
}

impl AsFd for Segment {
    /// The object's fd, to send to a peer (e.g. with `SCM_RIGHTS`). A
    /// creator's fd carries its life lock to whoever holds a copy.
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for Segment {
    /// The object's fd number.
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl Drop for Segment {
    /// Unlinks the name if the creator asked for that and the name still
    /// names this segment, before the fd (and with it the life lock) closes;
    /// an error (someone else unlinked or is moving the name) is ignored.
    fn drop(&mut self) {
        if let Role::Creator {
            unlink_on_drop: Some(name),
        } = &self.role
        {
            unlink::unlink_own(name, self.fd.as_fd());
        }
    }
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
fn resize(fd: BorrowedFd<'_>, len: usize) -> Result<(), SysError> {
    // Lossless: `usize` is at most 64 bits on every Linux target.
    fs::ftruncate(fd, len as u64).map_err(SysError::from_call("ftruncate"))
}

/// [`ShmError::NotSealed`] unless `fd` carries [`REQUIRED_SEALS`].
fn check_sealed(fd: BorrowedFd<'_>) -> Result<(), ShmError> {
    let found = seals(fd)?;
    if found.contains(REQUIRED_SEALS) {
        Ok(())
    } else {
        Err(ShmError::NotSealed { found })
    }
}

/// The size of the object behind `fd`, if it can be mapped: `fstat`.
fn object_len(fd: BorrowedFd<'_>) -> Result<usize, ShmError> {
    let stat = fs::fstat(fd).map_err(SysError::from_call("fstat"))?;
    let size = stat.st_size.cast_unsigned();
    let len = usize::try_from(size).map_err(|_| ShmError::TooLarge { size })?;
    nonempty(len)
}

/// `fcntl(fd, F_GET_SEALS)`; none for an object that cannot be sealed (`EINVAL`).
fn seals(fd: BorrowedFd<'_>) -> Result<SealFlags, ShmError> {
    fs::fcntl_get_seals(fd).or_else(|errno| match errno {
        Errno::INVAL => Ok(SealFlags::empty()),
        errno => Err(SysError::new("fcntl(F_GET_SEALS)", errno).into()),
    })
}

#[cfg(test)]
mod tests;
