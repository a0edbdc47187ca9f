//! Segments in one process: named and memfd, trust, liveness and take-over
//! (the cross-process and cross-user cases are in `tests/shm_attacker.rs`).

use core::sync::atomic::{AtomicUsize, Ordering};
use std::path::PathBuf;

use rustix::fs::{FileType, Stat};
use rustix::process::{Gid, Uid, getegid, geteuid};
use static_assertions::assert_impl_all;

use super::name::NAME_MAX;
use super::*;
use crate::AttachError;
use crate::layout::ElementLayout;
use crate::seqlock::SeqLock;
use crate::spsc::Spsc;

assert_impl_all!(Segment: Send, Sync);

/// A name no other test or test run uses; whatever sits at it is removed on
/// drop, in case a test failed before removing it.
struct TestName(String);

impl TestName {
    fn new() -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        Self(format!("/ipcp-test-{}-{n}", std::process::id()))
    }

    /// A fresh name `len` bytes long after the `/`.
    fn of_len(len: usize) -> Self {
        let mut name = Self::new();
        let pad = len + 1 - name.0.len();
        name.0.push_str(&"x".repeat(pad));
        name
    }

    fn path(&self) -> PathBuf {
        PathBuf::from("/dev/shm").join(&self.0[1..])
    }

    fn exists(&self) -> bool {
        self.path().symlink_metadata().is_ok()
    }

    /// What sits at the name, not following a link.
    fn stat(&self) -> Stat {
        fs::lstat(self.path()).unwrap()
    }
}

impl Drop for TestName {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.path());
    }
}

fn named_errno(err: ShmError) -> Errno {
    match err {
        ShmError::Named { source, .. } => source.errno,
        other => panic!("expected a failed call on a named segment, got {other:?}"),
    }
}

fn mode_of(fd: impl AsFd) -> u32 {
    fs::fstat(fd).unwrap().st_mode & 0o7777
}

/// A second mapping of `seg`'s object, as a peer holding its fd would make.
fn peer_of(seg: &Segment) -> Segment {
    Segment::from_fd(seg.as_fd().try_clone_to_owned().unwrap()).unwrap()
}

/// A memfd of `len` bytes that accepts seals but has none.
fn unsealed_memfd(len: u64) -> OwnedFd {
    let fd = fs::memfd_create("unsealed", MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING).unwrap();
    fs::ftruncate(&fd, len).unwrap();
    fd
}

/// Whether this test may change owners; says why it skips if not.
fn root(test: &str) -> bool {
    let root = geteuid().is_root();
    if !root {
        eprintln!("{test}: skipped, needs root to give a segment another owner");
    }
    root
}

// --- Names -----------------------------------------------------------------

#[test]
fn invalid_names_are_refused_by_every_call() {
    for name in ["shm", "/", "/..", "/a/b", "/a\0b"] {
        let err = name::file_name(name).unwrap_err();
        assert!(matches!(err, ShmError::InvalidName { .. }), "{err:?}");
        assert_eq!(Segment::create(name, 4096).map(drop), Err(err.clone()));
        assert_eq!(Segment::open(name).map(drop), Err(err.clone()));
        assert_eq!(unlink(name), Err(err));
    }
}

#[test]
fn names_of_255_bytes_after_the_slash_work_and_256_are_refused() {
    let longest = TestName::of_len(NAME_MAX);
    assert_eq!(longest.0.len(), 256);
    let seg = Segment::create(&longest.0, 4096).unwrap();
    assert!(longest.exists());
    assert_eq!(Segment::open(&longest.0).unwrap().len(), 4096);
    drop(seg);
    unlink(&longest.0).unwrap();
    assert!(!longest.exists());

    let too_long = format!("{}y", longest.0);
    let err = ShmError::InvalidName {
        name: too_long.clone(),
        reason: NameError::TooLong { len: 256 },
    };
    assert_eq!(Segment::create(&too_long, 4096).map(drop), Err(err));
}

// --- Create ----------------------------------------------------------------

#[test]
fn named_segment_is_shared_and_kept_until_unlinked() {
    let name = TestName::new();
    let len = SeqLock::<[u64; 4]>::required_size().unwrap();
    let creator = Segment::create(&name.0, len).unwrap();
    let opener = Segment::open(&name.0).unwrap();
    assert_eq!((creator.len(), opener.len()), (len, len));

    let mut writer = SeqLock::<[u64; 4]>::create(creator.region().expect("the segment's region"))
        .unwrap()
        .into_writer();
    let reader = SeqLock::<[u64; 4]>::attach(opener.region().expect("the segment's region"))
        .unwrap()
        .reader();
    writer.write(&[1, 2, 3, 4]);
    assert_eq!(reader.try_read(), Ok([1, 2, 3, 4]));

    drop((creator, opener));
    assert!(name.exists(), "kept after drop without unlink_on_drop");
    unlink(&name.0).unwrap();
    assert!(!name.exists());
    assert_eq!(unlink(&name.0).map_err(named_errno), Err(Errno::NOENT));
}

#[test]
fn create_is_exclusive() {
    let name = TestName::new();
    let options = CreateOptions::new().unlink_on_drop(true);
    let first = options.create(&name.0, 4096).unwrap();
    let inode = name.stat().st_ino;
    let again = options.create(&name.0, 4096).unwrap_err();
    assert_eq!(
        again,
        ShmError::Exists {
            name: name.0.clone()
        }
    );
    assert_eq!(name.stat().st_ino, inode, "a failed create leaves it alone");
    drop(first);
    assert!(!name.exists());
}

#[test]
fn mode_defaults_to_0600_and_is_configurable() {
    let name = TestName::new();
    let seg = Segment::create(&name.0, 4096).unwrap();
    assert_eq!(mode_of(&seg), 0o600);
    drop(seg);
    unlink(&name.0).unwrap();

    let seg = CreateOptions::new()
        .mode(Mode::from(0o640))
        .unlink_on_drop(true)
        .create(&name.0, 4096)
        .unwrap();
    assert_eq!(mode_of(&seg), 0o640, "not narrowed by the umask");
    drop(seg);
    assert!(!name.exists());
}

#[test]
fn modes_beyond_permissions_are_refused() {
    let name = TestName::new();
    for mode in [0o4777, 0o2700, 0o1600, 0o4000] {
        let err = CreateOptions::new()
            .mode(Mode::from_bits_retain(mode))
            .create(&name.0, 4096)
            .unwrap_err();
        assert_eq!(err, ShmError::InvalidMode { mode }, "{mode:#o}");
        assert!(!name.exists());
    }
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
fn unlink_on_drop_leaves_a_successor_alone() {
    let name = TestName::new();
    let first = CreateOptions::new()
        .unlink_on_drop(true)
        .create(&name.0, 4096)
        .unwrap();
    unlink(&name.0).unwrap();
    let second = Segment::create(&name.0, 4096).unwrap();
    let inode = name.stat().st_ino;
    drop(first);
    assert!(
        name.exists(),
        "the first creator removed its successor's name"
    );
    assert_eq!(name.stat().st_ino, inode);
    drop(second);
}

#[test]
fn failed_create_leaves_nothing() {
    let name = TestName::new();
    let err = Segment::create(&name.0, usize::MAX).unwrap_err();
    assert!(
        matches!(
            &err,
            ShmError::Named { name: n, source: SysError { call: "ftruncate", .. } } if *n == name.0
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

// --- Open: what it trusts --------------------------------------------------

#[test]
fn symlinks_at_the_name_are_never_followed() {
    let name = TestName::new();
    let target = TestName::new();
    std::fs::write(target.path(), b"precious").unwrap();
    std::os::unix::fs::symlink(target.path(), name.path()).unwrap();

    let symlink = ShmError::Symlink {
        name: name.0.clone(),
    };
    assert_eq!(Segment::open(&name.0).map(drop), Err(symlink.clone()));
    assert_eq!(
        Segment::create(&name.0, 4096).map(drop),
        Err(symlink.clone())
    );
    let take_over = CreateOptions::new().take_over(true);
    assert_eq!(
        take_over.create(&name.0, 4096).map(drop),
        Err(symlink.clone())
    );
    assert_eq!(unlink(&name.0), Err(symlink));

    assert!(FileType::from_raw_mode(name.stat().st_mode).is_symlink());
    assert_eq!(std::fs::read(target.path()).unwrap(), b"precious");
}

#[test]
fn only_regular_files_are_opened_and_a_fifo_does_not_block() {
    let name = TestName::new();
    let dir = std::fs::File::open("/dev/shm").unwrap();
    fs::mknodat(&dir, &name.0[1..], FileType::Fifo, Mode::from(0o600), 0).unwrap();
    assert_eq!(
        Segment::open(&name.0).map(drop),
        Err(ShmError::NotRegular {
            name: name.0.clone(),
            file_type: FileType::Fifo,
        })
    );
}

#[test]
fn a_directory_is_not_regular_opened_either_way() {
    let name = TestName::new();
    let path = name.path();
    std::fs::create_dir(&path).unwrap();
    let not_regular = ShmError::NotRegular {
        name: name.0.clone(),
        file_type: FileType::Directory,
    };
    let read_write = Segment::open(&name.0).map(drop);
    let read_only = OpenOptions::new().read_only(true).open(&name.0).map(drop);
    std::fs::remove_dir(&path).unwrap();
    assert_eq!(read_write, Err(not_regular.clone()));
    assert_eq!(read_only, Err(not_regular));
}

#[test]
fn segments_others_or_the_group_may_write_are_refused() {
    let name = TestName::new();
    let seg = Segment::create(&name.0, 4096).unwrap();
    let refused = |mode| ShmError::Untrusted {
        name: name.0.clone(),
        uid: geteuid(),
        gid: getegid(),
        mode,
    };
    // The creator's group is its effective gid (`/dev/shm` is not setgid).
    assert_eq!(Gid::from_raw(fs::fstat(&seg).unwrap().st_gid), getegid());

    for mode in [0o600, 0o640, 0o644] {
        fs::fchmod(&seg, Mode::from(mode)).unwrap();
        assert!(Segment::open(&name.0).is_ok(), "{mode:#o}");
    }
    fs::fchmod(&seg, Mode::from(0o620)).unwrap();
    assert_eq!(Segment::open(&name.0).map(drop), Err(refused(0o620)));
    let group = OpenOptions::new().trust_group(getegid());
    assert!(group.open(&name.0).is_ok(), "a trusted group may write");

    for mode in [0o602, 0o666] {
        fs::fchmod(&seg, Mode::from(mode)).unwrap();
        assert_eq!(Segment::open(&name.0).map(drop), Err(refused(mode)));
        let everyone = group.trust_owner(geteuid());
        assert_eq!(
            everyone.open(&name.0).map(drop),
            Err(refused(mode)),
            "never"
        );
    }
}

#[test]
fn segments_of_another_owner_are_refused_unless_trusted() {
    if !root("segments_of_another_owner_are_refused_unless_trusted") {
        return;
    }
    let name = TestName::new();
    let seg = Segment::create(&name.0, 4096).unwrap();
    let nobody = Uid::from_raw(65534);
    fs::fchown(&seg, Some(nobody), None).unwrap();
    assert_eq!(
        Segment::open(&name.0).map(drop),
        Err(ShmError::Untrusted {
            name: name.0.clone(),
            uid: nobody,
            gid: getegid(),
            mode: 0o600,
        })
    );
    assert!(OpenOptions::new().trust_owner(nobody).open(&name.0).is_ok());
}

#[test]
fn the_size_is_checked_before_mapping() {
    let name = TestName::new();
    let needed = Spsc::<u64>::required_size(64).unwrap();
    let seg = Segment::create(&name.0, needed).unwrap();
    assert_eq!(
        OpenOptions::new().len(needed).open(&name.0).unwrap().len(),
        needed
    );
    for expected in [needed - 1, needed + 1, 1 << 40] {
        assert_eq!(
            OpenOptions::new().len(expected).open(&name.0).map(drop),
            Err(ShmError::WrongSize {
                name: name.0.clone(),
                expected: Some(expected),
                found: needed as u64,
            })
        );
    }
    // A sparse terabyte is refused without being mapped.
    fs::ftruncate(&seg, 1 << 40).unwrap();
    let wrong = OpenOptions::new().len(needed).open(&name.0).unwrap_err();
    assert!(
        matches!(
            wrong,
            ShmError::WrongSize {
                found: 0x100_0000_0000,
                ..
            }
        ),
        "{wrong:?}"
    );
    // Without a length, only an empty segment is refused.
    drop(seg);
    std::fs::File::options()
        .write(true)
        .open(name.path())
        .unwrap()
        .set_len(0)
        .unwrap();
    assert_eq!(
        Segment::open(&name.0).map(drop),
        Err(ShmError::WrongSize {
            name: name.0.clone(),
            expected: None,
            found: 0,
        })
    );
}

#[test]
fn opening_a_missing_name_names_it() {
    let name = TestName::new();
    let err = Segment::open(&name.0).unwrap_err();
    assert!(
        matches!(&err, ShmError::Named { name: n, source } if *n == name.0 && source.errno == Errno::NOENT),
        "{err:?}"
    );
}

// --- Liveness and take-over --------------------------------------------------

#[test]
fn liveness_follows_the_creator() {
    let name = TestName::new();
    let creator = Segment::create(&name.0, 4096).unwrap();
    assert_eq!(creator.creator_alive(), Liveness::Alive);
    let reader = Segment::open(&name.0).unwrap();
    assert_eq!(reader.creator_alive(), Liveness::Alive);
    drop(creator);
    assert_eq!(reader.creator_alive(), Liveness::Gone);
    assert_eq!(
        Segment::open(&name.0).unwrap().creator_alive(),
        Liveness::Gone
    );
}

/// The lock is the creator's open file description's, not its process's: a
/// process-associated lock (`F_SETLK`, rustix's `fcntl_lock`) would be
/// released by closing any other fd of the file in the creator's process,
/// and would never conflict with a probe from that same process.
#[test]
fn closing_another_open_of_the_name_keeps_the_creator_alive() {
    let name = TestName::new();
    let creator = Segment::create(&name.0, 4096).unwrap();
    drop(Segment::open(&name.0).unwrap());
    let reader = Segment::open(&name.0).unwrap();
    assert_eq!(reader.creator_alive(), Liveness::Alive);
    drop(creator);
    assert_eq!(reader.creator_alive(), Liveness::Gone);
}

#[test]
fn received_fds_cannot_tell_and_do_not_disturb_the_creator() {
    let name = TestName::new();
    let creator = Segment::create(&name.0, 4096).unwrap();
    // A copy of the creator's fd, as `SCM_RIGHTS` would deliver: it shares
    // the creator's open file description.
    let received = Segment::from_fd_trusted(creator.as_fd().try_clone_to_owned().unwrap()).unwrap();
    assert_eq!(received.creator_alive(), Liveness::Unknown);
    let reader = Segment::open(&name.0).unwrap();
    assert_eq!(reader.creator_alive(), Liveness::Alive);
    // The copy carries the lock: it keeps the creator alive until it closes.
    drop(creator);
    assert_eq!(reader.creator_alive(), Liveness::Alive);
    drop(received);
    assert_eq!(reader.creator_alive(), Liveness::Gone);

    let memfd = Segment::memfd("liveness", 4096).unwrap();
    assert_eq!(memfd.creator_alive(), Liveness::Alive);
    assert_eq!(peer_of(&memfd).creator_alive(), Liveness::Unknown);
}

#[test]
fn take_over_replaces_only_a_dead_creators_segment() {
    let name = TestName::new();
    let take_over = CreateOptions::new().take_over(true);
    let creator = Segment::create(&name.0, 4096).unwrap();
    let first = name.stat().st_ino;
    assert_eq!(
        take_over.create(&name.0, 4096).map(drop),
        Err(ShmError::CreatorAlive {
            name: name.0.clone()
        })
    );
    assert_eq!(
        name.stat().st_ino,
        first,
        "a live creator is never displaced"
    );

    let reader = Segment::open(&name.0).unwrap();
    drop(creator);
    assert_eq!(
        Segment::create(&name.0, 4096).map(drop),
        Err(ShmError::Exists {
            name: name.0.clone()
        }),
        "without take_over, a dead creator's name is still taken"
    );
    let successor = take_over.create(&name.0, 8192).unwrap();
    assert_ne!(name.stat().st_ino, first);
    assert_eq!(mode_of(&successor), 0o600);
    assert_eq!(
        reader.creator_alive(),
        Liveness::Gone,
        "the old one stays gone"
    );
    let fresh = Segment::open(&name.0).unwrap();
    assert_eq!(
        (fresh.len(), fresh.creator_alive()),
        (8192, Liveness::Alive)
    );
}

#[test]
fn take_over_of_a_free_name_creates_it() {
    let name = TestName::new();
    let seg = CreateOptions::new()
        .take_over(true)
        .unlink_on_drop(true)
        .create(&name.0, 4096)
        .unwrap();
    assert!(name.exists());
    drop(seg);
    assert!(!name.exists());
}

// --- memfd -----------------------------------------------------------------

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
    let (ours, theirs) = (seg.region().unwrap(), peer.region().unwrap());
    assert_ne!(ours.as_ptr(), theirs.as_ptr());
    let mut tx = Spsc::<u64>::create(ours, 8).unwrap().into_producer();
    let mut rx = Spsc::<u64>::attach(theirs).unwrap().into_consumer();
    for i in 0..20 {
        tx.try_push(i).unwrap();
        assert_eq!(rx.try_pop(), Ok(i));
    }
}

#[test]
fn a_read_only_segment_serves_readers_and_refuses_writers() {
    let name = TestName::new();
    let len = SeqLock::<[u64; 2]>::required_size().unwrap();
    let creator = CreateOptions::new()
        .unlink_on_drop(true)
        .create(&name.0, len)
        .unwrap();
    let mut writer = SeqLock::<[u64; 2]>::create(creator.region().unwrap())
        .unwrap()
        .into_writer();
    writer.write(&[3, 4]);

    let reader_side = OpenOptions::new().read_only(true).open(&name.0).unwrap();
    assert!(!reader_side.is_writable() && creator.is_writable());
    assert_eq!(reader_side.creator_alive(), Liveness::Alive);
    assert!(matches!(reader_side.region(), Err(ShmError::ReadOnly)));
    let reader = SeqLock::<[u64; 2]>::attach_reader(reader_side.read_region().unwrap()).unwrap();
    assert_eq!(reader.try_read(), Ok([3, 4]));
    writer.write(&[5, 6]);
    assert_eq!(reader.try_read(), Ok([5, 6]));
    assert!(matches!(
        reader_side.read_region(),
        Err(ShmError::RegionTaken)
    ));
    // The pages really are read-only: the kernel refuses to make them writable.
    let page = reader_side.map.ptr.as_ptr().cast();
    // SAFETY: `mprotect` on the segment's own page-aligned mapping; it fails
    // (the fd is `O_RDONLY`) and so changes nothing.
    let protect = unsafe { rustix::mm::mprotect(page, len, rustix::mm::MprotectFlags::WRITE) };
    assert_eq!(protect, Err(Errno::ACCESS));

    let owned = OpenOptions::new().read_only(true).open(&name.0).unwrap();
    assert!(matches!(owned.into_region(), Err(ShmError::ReadOnly)));
    let owned = OpenOptions::new().read_only(true).open(&name.0).unwrap();
    let reader = SeqLock::<[u64; 2]>::attach_reader(owned.into_read_region()).unwrap();
    assert_eq!(reader.try_read(), Ok([5, 6]));
    assert_eq!(reader.keeper().creator_alive(), Liveness::Alive);
}

#[test]
fn a_seqlock_reader_tells_a_stalled_writer_from_a_dead_one() {
    use crate::seqlock::{Budget, ReadError};

    let name = TestName::new();
    let len = SeqLock::<[u64; 2]>::required_size().unwrap();
    let creator = CreateOptions::new()
        .unlink_on_drop(true)
        .create(&name.0, len)
        .unwrap();
    SeqLock::<[u64; 2]>::create(creator.region().unwrap())
        .unwrap()
        .into_writer()
        .write(&[1, 2]);
    let opened = OpenOptions::new().read_only(true).open(&name.0).unwrap();
    let reader = SeqLock::<[u64; 2]>::attach_reader(opened.read_region().unwrap()).unwrap();
    let alive = || opened.creator_alive() != Liveness::Gone;
    let short = core::time::Duration::from_millis(20);
    assert_eq!(
        reader.read_with(Budget::new(short).watching(alive)),
        Ok([1, 2])
    );

    // The writer stops mid-write (its sequence odd), alive: stalled, not gone.
    rustix::io::pwrite(&creator, &3_u64.to_ne_bytes(), 128).unwrap();
    assert_eq!(
        reader.read_with(Budget::new(short).watching(alive)),
        Err(ReadError::WriterStalled)
    );
    // Its process gone (here: its segment dropped; a crash is the same), the
    // reader says so without waiting out a long budget.
    drop(creator);
    let long = core::time::Duration::from_secs(60);
    assert_eq!(
        reader.read_with(Budget::new(long).watching(alive)),
        Err(ReadError::WriterGone)
    );
}

#[test]
fn a_segment_hands_its_memory_out_once() {
    let seg = Segment::memfd("once", Spsc::<u64>::required_size(8).unwrap()).unwrap();
    {
        let _ring = Spsc::<u64>::create(seg.region().unwrap(), 8).unwrap();
        // A second structure over the same bytes (a seqlock's 64-bit sequence
        // over the ring's 32-bit head) would be undefined behaviour: refused.
        assert!(matches!(seg.region(), Err(ShmError::RegionTaken)));
    }
    assert!(matches!(seg.region(), Err(ShmError::RegionTaken)));
    // An owned region too, reached through the handle that keeps it.
    let seg = Segment::memfd("owned", Spsc::<u64>::required_size(8).unwrap()).unwrap();
    let (mut tx, mut rx) = Spsc::<u64>::create(seg.into_region().expect("a writable segment"), 8)
        .unwrap()
        .split();
    assert!(matches!(tx.keeper().region(), Err(ShmError::RegionTaken)));
    tx.try_push(5).unwrap();
    drop(tx);
    assert_eq!(rx.try_pop(), Ok(5), "the consumer keeps the mapping alive");
    assert_eq!(
        ShmError::RegionTaken.to_string(),
        "segment's memory is already handed out (a segment holds one structure)"
    );
}

#[test]
fn attach_checks_the_element_type_through_another_mapping() {
    let seg = Segment::memfd("ring", Spsc::<u64>::required_size(8).unwrap()).unwrap();
    Spsc::<u64>::create(seg.region().expect("the segment's region"), 8).unwrap();
    let peer = peer_of(&seg);
    assert_eq!(
        Spsc::<u32>::attach(peer.region().expect("the segment's region")).map(|_| ()),
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
        Spsc::<u64>::create(seg.region().expect("the segment's region"), 64).unwrap();
    }
    // Shrunk while nothing maps it; the new mapping covers only what is left.
    fs::ftruncate(&fd, 512).unwrap();
    let seg = Segment::from_fd_trusted(fd).unwrap();
    assert_eq!(seg.len(), 512);
    assert_eq!(
        Spsc::<u64>::attach(seg.region().expect("the segment's region")).map(|_| ()),
        Err(AttachError::Fit(crate::FitError::TooSmall {
            needed,
            actual: 512
        }))
    );
}

// --- Errors ----------------------------------------------------------------

#[test]
fn errors_say_what_is_wrong() {
    use core::error::Error as _;

    let err = ShmError::InvalidName {
        name: "/a/b".to_owned(),
        reason: NameError::InnerSlash,
    };
    assert_eq!(err.to_string(), "invalid shared-memory name \"/a/b\"");
    assert_eq!(
        err.source().unwrap().to_string(),
        "only the first character may be '/'"
    );
    let err = ShmError::Named {
        name: "/q".to_owned(),
        source: SysError::new("openat", Errno::NOENT),
    };
    assert_eq!(
        err.to_string(),
        "system call on shared-memory segment \"/q\" failed"
    );
    let source = err.source().unwrap();
    assert!(source.to_string().starts_with("openat: "));
    assert!(source.source().is_none(), "a SysError is a leaf");
    let err = ShmError::Sys(SysError::new("memfd_create", Errno::MFILE));
    assert!(err.to_string().starts_with("memfd_create: "), "{err}");
    assert!(
        err.source().is_none(),
        "transparent over a leaf: the errno is printed once"
    );

    let texts = [
        (
            ShmError::Symlink { name: "/q".into() },
            "shared-memory segment \"/q\" is a symbolic link; not following it",
        ),
        (
            ShmError::Untrusted {
                name: "/q".into(),
                uid: Uid::from_raw(65534),
                gid: Gid::from_raw(100),
                mode: 0o666,
            },
            "shared-memory segment \"/q\" (owner uid 65534, group gid 100, mode 0o666) \
             is owned or writable by someone not trusted",
        ),
        (
            ShmError::WrongSize {
                name: "/q".into(),
                expected: Some(4096),
                found: 0,
            },
            "shared-memory segment \"/q\" has 0 bytes, expected 4096",
        ),
        (
            ShmError::InvalidMode { mode: 0o4777 },
            "mode 0o4777 has bits outside 0o777 (setuid, setgid or sticky)",
        ),
        (
            ShmError::CreatorAlive { name: "/q".into() },
            "the creator of shared-memory segment \"/q\" is alive; not taking it over",
        ),
    ];
    for (err, text) in texts {
        assert_eq!(err.to_string(), text);
    }
    assert_eq!(
        NameError::TooLong { len: 256 }.to_string(),
        "256 bytes follow the '/', the limit is 255"
    );
}
