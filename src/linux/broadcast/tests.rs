//! The broadcast ring's futex wake-ups and liveness-aware receive, in one
//! process: threads, and memfd or named segments mapped twice (at two
//! addresses, as in two processes). The cross-process tests are in
//! `tests/broadcast_multiprocess.rs`.

use core::sync::atomic::{AtomicUsize, Ordering};
use std::os::fd::AsFd;
use std::thread;

use static_assertions::assert_impl_all;

use super::*;
use crate::broadcast::{BlockingError, Broadcast, Start};
use crate::linux::shm::CreateOptions;
use crate::linux::shm::Liveness;

assert_impl_all!(BlockingError<WaitError>: Send, Sync);

/// A bound on every blocking call, so that a lost wake-up fails the test
/// instead of hanging it. Never reached when the code is right.
const NEVER: Duration = Duration::from_secs(20);

/// A segment for a ring of `capacity` `u64`s and a second mapping of it.
fn two_mappings(capacity: u32) -> (Segment, Segment) {
    let len = Broadcast::<u64>::required_size(capacity).unwrap();
    let mine = Segment::memfd("broadcast-test", len).unwrap();
    let peer = Segment::from_fd(mine.as_fd().try_clone_to_owned().unwrap()).unwrap();
    (mine, peer)
}

/// A `/dev/shm` name no other test or test run uses.
fn shm_name() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("/ipcp-bcast-test-{}-{n}", std::process::id())
}

#[test]
fn sleeping_readers_in_another_mapping_are_woken_by_publish_notify() {
    const COUNT: u64 = 3_000;
    // Room for every message: no reader can be lapped, so each gets all.
    let (mine, peer) = two_mappings(4096);
    let mut writer = Broadcast::<u64>::create(mine.region().unwrap(), 4096)
        .unwrap()
        .into_writer();
    let ring = Broadcast::<u64>::attach(peer.region().unwrap()).unwrap();
    let readers = [
        (ring.reader(Start::Next), SpinThenBlock::new(0)),
        (ring.reader(Start::Next), SpinThenBlock::default()),
    ];
    thread::scope(|s| {
        for (mut reader, strategy) in readers {
            s.spawn(move || {
                for seq in 0..COUNT {
                    assert_eq!(reader.recv_blocking(strategy, Some(NEVER)), Ok(seq));
                }
                assert_eq!(reader.try_recv(), Err(RecvError::Empty));
            });
        }
        for seq in 0..COUNT {
            writer.publish_notify(&seq).unwrap();
            // Now and then a pause, long enough for the readers to sleep.
            if seq % 500 == 0 {
                thread::sleep(Duration::from_millis(2));
            }
        }
    });
    assert!(writer.doorbell().epoch() > 0, "the readers never slept");
}

#[test]
fn an_awake_reader_costs_the_writer_no_wake_up() {
    let (mine, _) = two_mappings(64);
    let mut writer = Broadcast::<u64>::create(mine.region().unwrap(), 64)
        .unwrap()
        .into_writer();
    let mut reader = writer.reader(Start::Next);
    for seq in 0..10 {
        writer.publish_notify(&seq).unwrap();
        assert_eq!(reader.try_recv(), Ok(seq));
    }
    writer.publish_slice_notify(&[10, 11]).unwrap();
    assert_eq!((writer.doorbell().epoch(), reader.wakes()), (0, 0));
}

#[test]
fn a_batch_wakes_every_sleeper_once() {
    let (mine, _) = two_mappings(8);
    let mut writer = Broadcast::<u64>::create(mine.region().unwrap(), 8)
        .unwrap()
        .into_writer();
    let mut readers = [writer.reader(Start::Next), writer.reader(Start::Next)];
    for reader in &mut readers {
        let slept = reader.recv_blocking(SpinThenBlock::new(0), Some(Duration::ZERO));
        assert_eq!(slept, Err(BlockingError::Sleep(WaitError::TimedOut)));
    }
    writer.publish_slice_notify(&[1, 2, 3]).unwrap();
    writer.publish_slice_notify(&[]).unwrap();
    writer.publish_notify(&4).unwrap();
    assert_eq!(
        writer.doorbell().epoch(),
        1,
        "one wake for both, batch and all"
    );
    for reader in &mut readers {
        for seq in 1..=4 {
            assert_eq!(
                reader.recv_blocking(SpinThenBlock::new(0), Some(NEVER)),
                Ok(seq)
            );
        }
    }
}

#[test]
fn recv_blocking_times_out_and_refuses_a_read_only_reader() {
    let (mine, peer) = two_mappings(4);
    let mut writer = Broadcast::<u64>::create(mine.region().unwrap(), 4)
        .unwrap()
        .into_writer();
    let mut reader = writer.reader(Start::Next);
    let timeout = Duration::from_millis(30);
    let start = Instant::now();
    assert_eq!(
        reader.recv_blocking(SpinThenBlock::default(), Some(timeout)),
        Err(BlockingError::Sleep(WaitError::TimedOut))
    );
    assert!(start.elapsed() >= timeout);
    let mut read_only =
        Broadcast::<u64>::attach_reader(peer.read_region().unwrap(), Start::Next).unwrap();
    writer.publish(&1);
    assert_eq!(
        read_only.recv_blocking(SpinThenBlock::default(), Some(NEVER)),
        Err(BlockingError::ReadOnly)
    );
    assert_eq!(read_only.try_recv(), Ok(1));
    // A lap while blocking is reported, then the reader goes on.
    for seq in 2..10 {
        writer.publish(&seq);
    }
    assert_eq!(
        reader.recv_blocking(SpinThenBlock::new(0), Some(NEVER)),
        Err(BlockingError::Lagged { missed: 6 })
    );
    assert_eq!(
        reader.recv_blocking(SpinThenBlock::new(0), Some(NEVER)),
        Ok(7)
    );
}

#[test]
fn a_reader_learns_the_writer_is_gone_after_its_last_message() {
    let name = shm_name();
    let len = Broadcast::<u64>::required_size(8).unwrap();
    let creator = CreateOptions::new()
        .unlink_on_drop(true)
        .create(&name, len)
        .unwrap();
    let opened = Segment::open(&name).unwrap();
    let mut writer = Broadcast::<u64>::create(creator.into_region().unwrap(), 8)
        .unwrap()
        .into_writer();
    let mut reader = Broadcast::<u64>::attach(opened.region().unwrap())
        .unwrap()
        .into_reader(Start::Next);
    thread::scope(|s| {
        s.spawn(move || {
            writer.publish_notify(&1).unwrap();
            thread::sleep(LIVENESS_CHECK / 2);
            // The last message, without a wake; then the writer (the
            // creator, kept alive by the writer) goes.
            writer.publish(&2);
        });
        let strategy = SpinThenBlock::new(0);
        assert_eq!(
            reader.recv_blocking_watching(&opened, strategy, Some(NEVER)),
            Ok(1)
        );
        assert_eq!(
            reader.recv_blocking_watching(&opened, strategy, Some(NEVER)),
            Ok(2)
        );
        assert_eq!(
            reader.recv_blocking_watching(&opened, strategy, Some(NEVER)),
            Err(BlockingError::Sleep(WaitError::PeerGone))
        );
    });
    assert_eq!(opened.creator_alive(), Liveness::Gone);
}

#[test]
fn a_reader_that_cannot_tell_waits_for_its_timeout() {
    let (mine, peer) = two_mappings(4);
    let writer = Broadcast::<u64>::create(mine.region().unwrap(), 4)
        .unwrap()
        .into_writer();
    let mut reader = Broadcast::<u64>::attach(peer.region().unwrap())
        .unwrap()
        .into_reader(Start::Next);
    assert_eq!(peer.creator_alive(), Liveness::Unknown);
    // Longer than a liveness check: the check runs and says nothing.
    let timeout = LIVENESS_CHECK + LIVENESS_CHECK / 2;
    let got = reader.recv_blocking_watching(&peer, SpinThenBlock::new(0), Some(timeout));
    assert_eq!(got, Err(BlockingError::Sleep(WaitError::TimedOut)));
    assert_eq!(writer.published(), 0);
}

#[test]
fn errors_say_what_happened() {
    let sys = SysError::new("futex(FUTEX_WAIT)", rustix::io::Errno::INVAL);
    let err = BlockingError::Sleep(WaitError::Sys(sys));
    assert_eq!(err.to_string(), sys.to_string());
    assert!(
        core::error::Error::source(&err).is_none(),
        "a leaf, printed once"
    );
    assert_eq!(
        BlockingError::<WaitError>::Lagged { missed: 3 }.to_string(),
        "lapped by the writer: 3 messages lost"
    );
    assert_eq!(
        BlockingError::Sleep(WaitError::PeerGone).to_string(),
        "the other side is gone (exited or closed its end)"
    );
    assert_eq!(
        BlockingError::<WaitError>::ReadOnly.to_string(),
        "a reader on a read-only mapping cannot sleep: it can only poll"
    );
}
