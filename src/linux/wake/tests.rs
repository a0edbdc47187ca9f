//! Tests of eventfd and futex wake-ups, the blocking pop and the notifying
//! pushes.

use core::sync::atomic::{AtomicBool, Ordering};
use core::time::Duration;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::thread;
use std::time::Instant;

use rustix::buffer::spare_capacity;
use rustix::event::{EventfdFlags, Timespec, epoll};
use rustix::fs::OFlags;
use rustix::io::{Errno, IoSliceMut, ReadWriteFlags};
use static_assertions::assert_impl_all;

use super::eventfd::check_fdinfo;
use super::*;
use crate::linux::shm::Segment;
use crate::spsc::{BlockingError, Producer, PushError, Spsc, StaticSpsc};

assert_impl_all!(EventFd: Send, Sync);
assert_impl_all!(Wakeup: Send, Sync);

/// A bound on every blocking call, so that a lost wake-up fails the test
/// instead of hanging it. Never reached when the code is right.
const NEVER: Duration = Duration::from_secs(20);

/// The same kernel eventfd through a second fd, as a peer that received it
/// would hold it.
fn peer_of(eventfd: &EventFd) -> EventFd {
    EventFd::from_fd(eventfd.as_fd().try_clone_to_owned().unwrap()).unwrap()
}

/// The `Wakeup` a peer of `wakeup` would use.
fn peer_wakeup(wakeup: &Wakeup) -> Wakeup {
    match wakeup {
        Wakeup::EventFd(eventfd) => Wakeup::EventFd(peer_of(eventfd)),
        Wakeup::EventFds { ready, space } => Wakeup::EventFds {
            ready: peer_of(ready),
            space: peer_of(space),
        },
        Wakeup::Futex => Wakeup::Futex,
    }
}

fn eventfd_of(wakeup: &Wakeup) -> &EventFd {
    wakeup.as_eventfd().expect("an eventfd wake-up")
}

/// Runs `consume` on this thread while another pushes `0..count` through
/// `tx` in order with `push_notify`, yielding while the ring is full. If
/// `consume` panics (a lost wake-up timing out, say), the producer stops
/// instead of waiting for ever on a full ring, so the test fails.
fn pushing_while(tx: &mut Producer<'_, u64>, wakeup: &Wakeup, count: u64, consume: impl FnOnce()) {
    /// Tells the producer the consumer is gone, however it leaves.
    struct Gone<'a>(&'a AtomicBool);
    impl Drop for Gone<'_> {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Relaxed);
        }
    }
    let gone = AtomicBool::new(false);
    thread::scope(|s| {
        s.spawn(|| {
            for seq in 0..count {
                let mut value = seq;
                loop {
                    match tx.push_notify(value, wakeup) {
                        Ok(()) => break,
                        Err(PushNotifyError::Push(PushError::Full(back))) => {
                            if gone.load(Ordering::Relaxed) {
                                return;
                            }
                            value = back;
                            thread::yield_now();
                        }
                        Err(err) => panic!("push {seq}: {err}"),
                    }
                }
            }
        });
        let _gone = Gone(&gone);
        consume();
    });
}

/// A capacity-2 ring in a memfd, producer and consumer in two mappings (at
/// two addresses, as in two processes); `count` messages through it, each
/// side with its own `Wakeup`.
fn ping_through_shared_memory(wakeup: Wakeup, strategy: SpinThenBlock, count: u64) {
    let len = Spsc::<u64>::required_size(2).unwrap();
    let mine = Segment::memfd("wake-test", len).unwrap();
    let peer = Segment::from_fd(mine.as_fd().try_clone_to_owned().unwrap()).unwrap();
    let mut tx = Spsc::<u64>::create(mine.region().expect("the segment's region"), 2)
        .unwrap()
        .into_producer();
    let mut rx = Spsc::<u64>::attach(peer.region().expect("the segment's region"))
        .unwrap()
        .into_consumer();
    let peer_wakeup = peer_wakeup(&wakeup);
    pushing_while(&mut tx, &peer_wakeup, count, || {
        for seq in 0..count {
            let popped = rx.pop_blocking(&wakeup, strategy, Some(NEVER));
            assert_eq!(
                popped,
                Ok(seq),
                "{strategy:?}: {} in the ring, {:?}",
                rx.len(),
                rx.event()
            );
        }
    });
    assert_eq!(rx.try_pop(), Err(crate::spsc::PopError::Empty));
}

#[test]
fn eventfd_blocking_pop_is_woken_by_push_notify() {
    let wakeup = Wakeup::eventfd().unwrap();
    ping_through_shared_memory(wakeup, SpinThenBlock::new(0), 5_000);
    ping_through_shared_memory(Wakeup::eventfd().unwrap(), SpinThenBlock::default(), 5_000);
}

#[test]
fn futex_blocking_pop_is_woken_by_push_notify() {
    // Two mappings put the word at two addresses: a private futex would
    // never find the sleeper, and the pop would time out.
    ping_through_shared_memory(Wakeup::Futex, SpinThenBlock::new(0), 5_000);
    ping_through_shared_memory(Wakeup::Futex, SpinThenBlock::default(), 5_000);
}

#[test]
fn blocking_pop_times_out_on_an_empty_ring() {
    let timeout = Duration::from_millis(50);
    for wakeup in [Wakeup::eventfd().unwrap(), Wakeup::Futex] {
        let mut ring = StaticSpsc::<u64, 2>::new();
        let (_tx, mut rx) = ring.split();
        for strategy in [SpinThenBlock::new(0), SpinThenBlock::default()] {
            let start = Instant::now();
            let popped = rx.pop_blocking(&wakeup, strategy, Some(timeout));
            assert_eq!(
                popped,
                Err(BlockingError::Sleep(WaitError::TimedOut)),
                "{wakeup:?}"
            );
            assert!(start.elapsed() >= timeout, "{wakeup:?}");
        }
        // Zero: one look, then give up.
        let popped = rx.pop_blocking(&wakeup, SpinThenBlock::new(0), Some(Duration::ZERO));
        assert_eq!(popped, Err(BlockingError::Sleep(WaitError::TimedOut)));
    }
}

#[test]
fn blocking_pop_takes_what_is_there_without_sleeping() {
    let mut ring = StaticSpsc::<u64, 2>::new();
    let (mut tx, mut rx) = ring.split();
    tx.try_push(9).unwrap();
    let popped = rx.pop_blocking(&Wakeup::Futex, SpinThenBlock::new(0), Some(Duration::ZERO));
    assert_eq!(popped, Ok(9));
}

#[test]
fn waits_time_out() {
    let timeout = Duration::from_millis(30);
    let eventfd = EventFd::new().unwrap();
    let start = Instant::now();
    assert_eq!(eventfd.wait(Some(timeout)), Err(WaitError::TimedOut));
    assert!(start.elapsed() >= timeout);

    let mut ring = StaticSpsc::<u64, 2>::new();
    let (tx, _rx) = ring.split();
    let event = tx.peer_event();
    let start = Instant::now();
    assert_eq!(
        futex_wait(event, event.epoch(), Some(timeout)),
        Err(WaitError::TimedOut)
    );
    assert!(start.elapsed() >= timeout);
    // A stale epoch returns at once: a wake already happened.
    assert_eq!(
        futex_wait(event, event.epoch().wrapping_add(1), None),
        Ok(())
    );
    assert_eq!(futex_wake(event), Ok(0));
}

#[test]
fn eventfd_signal_wait_and_drain() {
    let eventfd = EventFd::new().unwrap();
    let peer = peer_of(&eventfd);
    assert_eq!(eventfd.drain(), Ok(0));
    peer.signal().unwrap();
    peer.signal().unwrap();
    assert_eq!(eventfd.drain(), Ok(2), "one read takes every signal");
    peer.signal().unwrap();
    assert_eq!(eventfd.wait(None), Ok(()));
    assert_eq!(eventfd.drain(), Ok(0), "wait drained it");
    // Signalled before the wait: no wait at all.
    peer.signal().unwrap();
    assert_eq!(eventfd.wait(Some(Duration::ZERO)), Ok(()));
    // Woken by another thread.
    thread::scope(|s| {
        s.spawn(|| peer.signal().unwrap());
        assert_eq!(eventfd.wait(Some(NEVER)), Ok(()));
    });
}

#[test]
fn signal_on_a_saturated_counter_succeeds() {
    let eventfd = EventFd::new().unwrap();
    let max = u64::MAX - 1;
    rustix::io::write(&eventfd, &max.to_ne_bytes()).unwrap();
    assert_eq!(eventfd.signal(), Ok(()));
    assert_eq!(eventfd.drain(), Ok(max));
}

#[test]
fn drain_never_blocks_even_if_the_peer_clears_o_nonblock() {
    let eventfd = EventFd::new().unwrap();
    let mut probe = [0; 8];
    if let Err(Errno::OPNOTSUPP | Errno::NOSYS | Errno::PERM) = rustix::io::preadv2(
        &eventfd,
        &mut [IoSliceMut::new(&mut probe)],
        u64::MAX,
        ReadWriteFlags::NOWAIT,
    ) {
        // Older kernels' eventfds refuse RWF_NOWAIT: nothing to test.
        return;
    }
    rustix::fs::fcntl_setfl(&eventfd, OFlags::empty()).unwrap();
    assert_eq!(eventfd.drain(), Ok(0));
    eventfd.signal().unwrap();
    assert_eq!(eventfd.wait(Some(NEVER)), Ok(()));
}

#[test]
fn awake_consumer_costs_the_producer_no_wake_up() {
    const COUNT: u64 = 5_000;
    let mut ring = StaticSpsc::<u64, 64>::new();
    let (mut tx, mut rx) = ring.split();
    let wakeup = Wakeup::eventfd().unwrap();
    pushing_while(&mut tx, &wakeup, COUNT, || {
        // Never announces itself: polls with `try_pop` only.
        let mut next = 0;
        while next < COUNT {
            match rx.try_pop() {
                Ok(value) => {
                    assert_eq!(value, next);
                    next += 1;
                }
                // Yields so a busy machine still runs the producer.
                Err(_) => thread::yield_now(),
            }
        }
    });
    // No wake: the counter was never written, and the epoch never moved.
    let mut count = [0; 8];
    assert_eq!(
        rustix::io::read(eventfd_of(&wakeup), &mut count),
        Err(Errno::AGAIN)
    );
    assert_eq!(tx.peer_event().epoch(), 0);
}

#[test]
fn push_notify_wakes_once_per_sleep_and_batch() {
    let mut ring = StaticSpsc::<u64, 8>::new();
    let (mut tx, mut rx) = ring.split();
    let wakeup = Wakeup::eventfd().unwrap();
    let eventfd = eventfd_of(&wakeup);

    tx.push_notify(1, &wakeup).unwrap();
    assert_eq!(eventfd.drain(), Ok(0), "consumer awake: no wake");
    assert_eq!(rx.try_pop(), Ok(1));

    assert!(rx.prepare_to_sleep().unwrap().is_some());
    assert_eq!(tx.push_slice_notify(&[2, 3, 4], &wakeup), Ok(3));
    assert_eq!(eventfd.drain(), Ok(1), "one wake for the batch");
    tx.push_notify(5, &wakeup).unwrap();
    assert_eq!(eventfd.drain(), Ok(0), "the announcement was used up");
    assert_eq!(tx.push_slice_notify(&[], &wakeup), Ok(0));

    let mut out = [0; 8];
    assert_eq!(rx.pop_slice(&mut out), Ok(4));
    assert_eq!(out[..4], [2, 3, 4, 5]);
}

#[test]
fn push_errors_hand_back_the_value_or_say_it_was_pushed() {
    let mut ring = StaticSpsc::<u64, 2>::new();
    let (mut tx, mut rx) = ring.split();
    // Writing to a pipe's read end fails (EBADF): a wake that fails.
    let (read_end, _write_end) = rustix::pipe::pipe().unwrap();
    let broken = Wakeup::EventFd(EventFd::from_fd_trusted(read_end));

    assert!(rx.prepare_to_sleep().unwrap().is_some());
    let err = tx.push_notify(1, &broken).unwrap_err();
    assert_eq!(
        err,
        PushNotifyError::Wake {
            pushed: 1,
            error: SysError::new("write", Errno::BADF)
        }
    );
    assert_eq!(err.to_string(), "pushed 1, but waking the consumer failed");
    let source = core::error::Error::source(&err).map(ToString::to_string);
    assert!(
        source
            .as_deref()
            .is_some_and(|text| text.starts_with("write: ")),
        "{source:?}"
    );
    assert_eq!(rx.try_pop(), Ok(1), "the value was pushed");

    assert!(rx.prepare_to_sleep().unwrap().is_some());
    assert_eq!(
        tx.push_slice_notify(&[2, 3, 4], &broken),
        Err(PushNotifyError::Wake {
            pushed: 2,
            error: SysError::new("write", Errno::BADF)
        })
    );
    match tx.push_notify(5, &Wakeup::Futex) {
        Err(PushNotifyError::Push(PushError::Full(5))) => {}
        other => panic!("expected Full(5), got {other:?}"),
    }
    assert_eq!((rx.try_pop(), rx.try_pop()), (Ok(2), Ok(3)));
}

#[test]
fn blocking_pop_reports_a_corrupt_producer() {
    let len = Spsc::<u64>::required_size(2).unwrap();
    let seg = Segment::memfd("corrupt", len).unwrap();
    let (mut tx, mut rx) = Spsc::<u64>::create(seg.region().expect("the segment's region"), 2)
        .unwrap()
        .split();
    // A second producer through a second mapping, as a faulty peer: it
    // republishes an old head. (Up to a ring's worth behind the tail, a
    // head may just not be published yet, and its stamps are not what the
    // consumer expects: the ring merely looks empty.)
    let peer = Segment::from_fd(seg.as_fd().try_clone_to_owned().unwrap()).unwrap();
    let mut rogue = Spsc::<u64>::attach(peer.region().expect("the segment's region"))
        .unwrap()
        .into_producer();
    for round in 0..4 {
        tx.push_slice(&[round, round + 1]).unwrap();
        assert_eq!((rx.try_pop(), rx.try_pop()), (Ok(round), Ok(round + 1)));
    }
    // Its head, 1, is now more than a ring's worth behind the tail, 8.
    rogue.try_push(3).unwrap();
    let popped = rx.pop_blocking(&Wakeup::Futex, SpinThenBlock::default(), Some(NEVER));
    assert_eq!(popped, Err(BlockingError::Corrupted));
}

#[test]
fn eventfd_is_pollable_with_epoll() {
    let eventfd = EventFd::new().unwrap();
    let epoll = epoll::create(epoll::CreateFlags::CLOEXEC).unwrap();
    epoll::add(
        &epoll,
        &eventfd,
        epoll::EventData::new_u64(7),
        epoll::EventFlags::IN,
    )
    .unwrap();
    let now = Timespec::try_from(Duration::ZERO).unwrap();
    let never = Timespec::try_from(NEVER).unwrap();
    let mut events = Vec::with_capacity(4);

    epoll::wait(&epoll, spare_capacity(&mut events), Some(&now)).unwrap();
    assert!(events.is_empty(), "not readable before a signal");

    eventfd.signal().unwrap();
    epoll::wait(&epoll, spare_capacity(&mut events), Some(&never)).unwrap();
    assert_eq!(events.len(), 1);
    let (flags, data) = (events[0].flags, events[0].data);
    assert!(flags.contains(epoll::EventFlags::IN));
    assert_eq!(data.u64(), 7);

    assert_eq!(eventfd.drain(), Ok(1));
    events.clear();
    epoll::wait(&epoll, spare_capacity(&mut events), Some(&now)).unwrap();
    assert!(events.is_empty(), "not readable once drained");
}

#[test]
fn epoll_driven_consumer_gets_every_message() {
    const COUNT: u64 = 5_000;
    let mut ring = StaticSpsc::<u64, 4>::new();
    let (mut tx, mut rx) = ring.split();
    let eventfd = EventFd::new().unwrap();
    let producer_wakeup = Wakeup::EventFd(peer_of(&eventfd));
    let epoll = epoll::create(epoll::CreateFlags::CLOEXEC).unwrap();
    epoll::add(
        &epoll,
        &eventfd,
        epoll::EventData::new_u64(0),
        epoll::EventFlags::IN,
    )
    .unwrap();
    let never = Timespec::try_from(NEVER).unwrap();

    pushing_while(&mut tx, &producer_wakeup, COUNT, || {
        let mut next = 0;
        let mut events = Vec::with_capacity(1);
        while next < COUNT {
            while let Ok(value) = rx.try_pop() {
                assert_eq!(value, next);
                next += 1;
            }
            if next == COUNT {
                break;
            }
            if rx.prepare_to_sleep().unwrap().is_some() {
                events.clear();
                epoll::wait(&epoll, spare_capacity(&mut events), Some(&never)).unwrap();
                assert_eq!(events.len(), 1, "woken, not timed out");
                eventfd.drain().unwrap();
            }
        }
    });
}

#[test]
fn from_fd_accepts_only_counter_mode_eventfds() {
    let eventfd = EventFd::new().unwrap();
    let fd = OwnedFd::from(peer_of(&eventfd));
    assert!(EventFd::from_fd(fd).is_ok());

    let (read_end, write_end) = rustix::pipe::pipe().unwrap();
    for fd in [read_end, write_end] {
        let err = EventFd::from_fd(fd).unwrap_err();
        assert_eq!(err, EventFdError::NotEventFd);
        assert_eq!(err.to_string(), "the fd is not an eventfd");
    }

    let semaphore = rustix::event::eventfd(
        0,
        EventfdFlags::SEMAPHORE | EventfdFlags::NONBLOCK | EventfdFlags::CLOEXEC,
    )
    .unwrap();
    let info = std::fs::read_to_string(format!(
        "/proc/thread-self/fdinfo/{}",
        semaphore.as_raw_fd()
    ))
    .unwrap();
    if info.contains("eventfd-semaphore") {
        assert_eq!(
            EventFd::from_fd(semaphore).unwrap_err(),
            EventFdError::Semaphore
        );
    }
}

#[test]
fn fdinfo_is_parsed() {
    let eventfd = b"pos:\t0\nflags:\t02004002\nmnt_id:\t17\nino:\t1038\n\
        eventfd-count:                0\neventfd-id: 1\neventfd-semaphore: 0\n";
    assert_eq!(check_fdinfo(eventfd), Ok(()));
    let old_kernel = b"pos:\t0\nflags:\t02004002\nmnt_id:\t17\neventfd-count: 5\n";
    assert_eq!(check_fdinfo(old_kernel), Ok(()));
    let semaphore = b"pos:\t0\neventfd-count: 0\neventfd-semaphore: 1\n";
    assert_eq!(check_fdinfo(semaphore), Err(EventFdError::Semaphore));
    let pipe = b"pos:\t0\nflags:\t02000000\nmnt_id:\t16\nino:\t42821\n";
    assert_eq!(check_fdinfo(pipe), Err(EventFdError::NotEventFd));
    assert_eq!(check_fdinfo(b""), Err(EventFdError::NotEventFd));
}
