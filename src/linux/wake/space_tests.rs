//! Tests of the other direction: a producer that waits for space, and the
//! consumer's pops that wake it.

use core::mem;
use core::time::Duration;
use std::os::fd::AsFd;
use std::thread;
use std::time::Instant;

use rustix::io::Errno;

use super::*;
use crate::linux::shm::{CreateOptions, Segment};
use crate::spsc::{BlockingError, PopError, Spsc, StaticSpsc};

/// A bound on every blocking call, so that a lost wake-up fails the test
/// instead of hanging it. Never reached when the code is right.
const NEVER: Option<Duration> = Some(Duration::from_secs(20));

/// The same wake-ups through fds of their own, as a peer that received them
/// would hold them.
fn peer_wakeup(wakeup: &Wakeup) -> Wakeup {
    let dup = |eventfd: &EventFd| {
        EventFd::from_fd(eventfd.as_fd().try_clone_to_owned().unwrap()).unwrap()
    };
    match wakeup {
        Wakeup::EventFd(ready) => Wakeup::EventFd(dup(ready)),
        Wakeup::EventFds { ready, space } => Wakeup::EventFds {
            ready: dup(ready),
            space: dup(space),
        },
        _ => Wakeup::Futex,
    }
}

/// `count` values through a capacity-2 ring in a memfd mapped twice (two
/// addresses, as in two processes), both sides blocking with `strategy`: the
/// producer waits for space about as often as the consumer for elements.
fn both_sides_block(wakeup: &Wakeup, strategy: SpinThenBlock, count: u64) {
    let len = Spsc::<u64>::required_size(2).unwrap();
    let mine = Segment::memfd("space-test", len).unwrap();
    let peer = Segment::from_fd(mine.as_fd().try_clone_to_owned().unwrap()).unwrap();
    let mut tx = Spsc::<u64>::create(mine.region().unwrap(), 2)
        .unwrap()
        .into_producer();
    let mut rx = Spsc::<u64>::attach(peer.region().unwrap())
        .unwrap()
        .into_consumer();
    let peer_wakeup = peer_wakeup(wakeup);
    thread::scope(|s| {
        s.spawn(|| {
            for seq in 0..count {
                if let Err((_, err)) = tx.push_blocking(seq, &peer_wakeup, strategy, NEVER) {
                    panic!("{wakeup:?} push {seq}: {err}");
                }
                if seq % 1000 == 0 {
                    // Let the consumer fall asleep now and then.
                    thread::sleep(Duration::from_millis(1));
                }
            }
        });
        for seq in 0..count {
            assert_eq!(
                rx.pop_blocking(wakeup, strategy, NEVER),
                Ok(seq),
                "{wakeup:?}"
            );
            if seq % 1000 == 500 {
                // Let the producer fill the ring and fall asleep.
                thread::sleep(Duration::from_millis(1));
            }
        }
    });
    assert_eq!(rx.try_pop(), Err(PopError::Empty));
}

#[test]
fn a_producer_waiting_for_space_is_woken_by_blocking_pops() {
    for wakeup in [
        Wakeup::eventfds().unwrap(),
        Wakeup::eventfd().unwrap(),
        Wakeup::Futex,
    ] {
        both_sides_block(&wakeup, SpinThenBlock::new(0), 5_000);
        both_sides_block(&wakeup, SpinThenBlock::default(), 5_000);
    }
}

#[test]
fn notify_wakes_a_producer_after_other_pops() {
    let wakeup = Wakeup::eventfds().unwrap();
    let mut ring = StaticSpsc::<u64, 2>::new();
    let (mut tx, mut rx) = ring.split();
    thread::scope(|s| {
        s.spawn(|| {
            for seq in 0..100 {
                let pushed = tx.push_blocking(seq, &wakeup, SpinThenBlock::new(0), NEVER);
                assert!(pushed.is_ok(), "push {seq}");
            }
        });
        let mut next = 0;
        let mut out = [0; 2];
        while next < 100 {
            let popped = rx.pop_slice(&mut out).unwrap();
            for &value in &out[..popped] {
                assert_eq!(value, next);
                next += 1;
            }
            rx.notify(&wakeup).unwrap();
            if popped == 0 {
                thread::yield_now();
            }
        }
    });
}

#[test]
fn a_blocking_push_times_out_on_a_full_ring_and_hands_the_value_back() {
    let short = Duration::from_millis(30);
    for wakeup in [Wakeup::eventfds().unwrap(), Wakeup::Futex] {
        let mut ring = StaticSpsc::<u64, 2>::new();
        let (mut tx, mut rx) = ring.split();
        tx.push_slice(&[1, 2]).unwrap();
        let start = Instant::now();
        assert_eq!(
            tx.push_blocking(3, &wakeup, SpinThenBlock::default(), Some(short)),
            Err((3, BlockingError::Sleep(WaitError::TimedOut))),
            "{wakeup:?}"
        );
        assert!(start.elapsed() >= short);
        assert_eq!(rx.try_pop(), Ok(1));
        assert!(!rx.wake_needed(), "the timed-out producer withdrew");
        // Room now: pushed without sleeping, even with no time at all.
        let zero = Some(Duration::ZERO);
        assert_eq!(
            tx.push_blocking(3, &wakeup, SpinThenBlock::new(0), zero),
            Ok(())
        );
        assert_eq!(rx.len(), 2);
    }
}

#[test]
fn a_blocking_push_wakes_a_sleeping_consumer() {
    let wakeup = Wakeup::eventfds().unwrap();
    let mut ring = StaticSpsc::<u64, 4>::new();
    let (mut tx, mut rx) = ring.split();
    assert!(rx.prepare_to_sleep().unwrap().is_some());
    tx.push_blocking(7, &wakeup, SpinThenBlock::new(0), NEVER)
        .unwrap();
    assert_eq!(
        wakeup.as_eventfd().unwrap().drain(),
        Ok(1),
        "one write to the consumer's eventfd"
    );
    assert_eq!(wakeup.as_space_eventfd().unwrap().drain(), Ok(0));
    assert_eq!(rx.try_pop(), Ok(7));
}

#[test]
fn a_failed_wake_of_the_producer_is_kept_for_the_next_notify() {
    let mut ring = StaticSpsc::<u64, 2>::new();
    let (mut tx, mut rx) = ring.split();
    // Writing to a pipe's read end fails (EBADF): a wake that fails.
    let (read_end, _write_end) = rustix::pipe::pipe().unwrap();
    let broken = Wakeup::EventFds {
        ready: EventFd::new().unwrap(),
        space: EventFd::from_fd_trusted(read_end),
    };
    tx.push_slice(&[1, 2]).unwrap();
    assert!(tx.prepare_to_sleep().unwrap().is_some(), "full: announced");
    // The pop returns its element; the wake after it failed.
    assert_eq!(
        rx.pop_blocking(&broken, SpinThenBlock::new(0), NEVER),
        Ok(1)
    );
    // Not forgotten: the next notify tries again, and says it failed.
    assert_eq!(rx.notify(&broken), Err(SysError::new("write", Errno::BADF)));
    let good = Wakeup::Futex;
    assert!(rx.wake_needed(), "still announced after the second failure");
    assert!(!rx.wake_needed(), "consumed by the wake");
    rx.notify(&good).unwrap();
}

/// A ring in a named segment its consumer created, and a producer that
/// opened it by name; the consumer goes (its segment dropped, as at its
/// death) while the producer waits for space, and the producer stops.
#[test]
fn a_producer_watching_a_named_segment_stops_once_its_consumer_is_gone() {
    let name = format!("/ipcp-space-watch-{}", std::process::id());
    let len = Spsc::<u64>::required_size(2).unwrap();
    let creator = CreateOptions::new()
        .unlink_on_drop(true)
        .create(&name, len)
        .unwrap();
    let rx = Spsc::<u64>::create(creator.region().unwrap(), 2)
        .unwrap()
        .into_consumer();
    let opened = Segment::open(&name).unwrap();
    let mut tx = Spsc::<u64>::attach(opened.region().unwrap())
        .unwrap()
        .into_producer();
    tx.push_slice(&[1, 2]).unwrap();
    for wakeup in [Wakeup::Futex, Wakeup::eventfds().unwrap()] {
        // Alive: the producer waits out its timeout.
        let short = Some(Duration::from_millis(250));
        assert_eq!(
            tx.push_blocking_watching(3, &wakeup, &opened, SpinThenBlock::new(0), short),
            Err((3, BlockingError::Sleep(WaitError::TimedOut))),
            "{wakeup:?}"
        );
    }
    let start = Instant::now();
    // The consumer dies: its handle never closes the ring (a drop would, and
    // `push_blocking` would report `Closed`), and its segment goes with its
    // lock (below).
    mem::forget(rx);
    thread::scope(|s| {
        s.spawn(move || {
            thread::sleep(Duration::from_millis(50));
            drop(creator);
        });
        let pushed =
            tx.push_blocking_watching(3, &Wakeup::Futex, &opened, SpinThenBlock::new(0), NEVER);
        assert_eq!(pushed, Err((3, BlockingError::Sleep(WaitError::PeerGone))));
    });
    assert!(start.elapsed() < NEVER.unwrap(), "stopped, not timed out");
}

/// The mirror image: the producer created the segment and goes while the
/// consumer waits; the consumer pops what it left, then stops.
#[test]
fn a_consumer_watching_a_named_segment_pops_what_is_left_then_stops() {
    let name = format!("/ipcp-ready-watch-{}", std::process::id());
    let len = Spsc::<u64>::required_size(4).unwrap();
    let creator = CreateOptions::new()
        .unlink_on_drop(true)
        .create(&name, len)
        .unwrap();
    let mut tx = Spsc::<u64>::create(creator.region().unwrap(), 4)
        .unwrap()
        .into_producer();
    let opened = Segment::open(&name).unwrap();
    let mut rx = Spsc::<u64>::attach(opened.region().unwrap())
        .unwrap()
        .into_consumer();
    let wakeup = Wakeup::eventfds().unwrap();
    tx.push_slice(&[5, 6]).unwrap();
    // The producer dies: its handle never closes the ring (a drop would, and
    // the pop would report `Closed`), and its segment goes with its lock
    // (below, while the consumer waits).
    mem::forget(tx);
    thread::scope(|s| {
        s.spawn(move || {
            thread::sleep(Duration::from_millis(50));
            drop(creator);
        });
        let strategy = SpinThenBlock::new(0);
        for expected in [5, 6] {
            assert_eq!(
                rx.pop_blocking_watching(&wakeup, &opened, strategy, NEVER),
                Ok(expected)
            );
        }
        assert_eq!(
            rx.pop_blocking_watching(&wakeup, &opened, strategy, NEVER),
            Err(BlockingError::Sleep(WaitError::PeerGone))
        );
    });
}

/// Waits (bounded by `NEVER`) until the side sleeping on `event` has
/// announced itself.
fn until_asleep(event: &crate::event::Event) {
    let start = Instant::now();
    while !event.has_sleeper() {
        assert!(start.elapsed() < NEVER.unwrap(), "the peer never slept");
        thread::sleep(Duration::from_millis(1));
    }
}

/// A consumer's `close_notify` ends the wait of a producer asleep on a full
/// ring at once, with `Closed` (a plain close or drop would leave it asleep
/// until its timeout).
#[test]
fn close_notify_wakes_a_producer_waiting_for_space() {
    for wakeup in [Wakeup::eventfds().unwrap(), Wakeup::Futex] {
        let mut ring = StaticSpsc::<u64, 2>::new();
        let (mut tx, rx) = ring.split();
        tx.push_slice(&[1, 2]).unwrap();
        let start = Instant::now();
        thread::scope(|s| {
            let pusher = s.spawn(|| tx.push_blocking(3, &wakeup, SpinThenBlock::new(0), NEVER));
            until_asleep(rx.peer_event());
            rx.close_notify(&wakeup).unwrap();
            assert_eq!(
                pusher.join().unwrap(),
                Err((3, BlockingError::Closed)),
                "{wakeup:?}"
            );
        });
        assert!(start.elapsed() < NEVER.unwrap(), "woken, not timed out");
    }
}

/// A producer's `close_notify` ends the wait of a consumer asleep on an
/// empty ring at once: it pops what is left, then stops with `Closed`.
#[test]
fn close_notify_wakes_a_sleeping_consumer() {
    for wakeup in [Wakeup::eventfds().unwrap(), Wakeup::Futex] {
        let mut ring = StaticSpsc::<u64, 4>::new();
        let (tx, mut rx) = ring.split();
        let start = Instant::now();
        thread::scope(|s| {
            let popper = s.spawn(|| {
                let strategy = SpinThenBlock::new(0);
                let first = rx.pop_blocking(&wakeup, strategy, NEVER);
                (first, rx.pop_blocking(&wakeup, strategy, NEVER))
            });
            until_asleep(tx.peer_event());
            tx.close_notify(&wakeup).unwrap();
            let (first, second) = popper.join().unwrap();
            assert_eq!(first, Err(BlockingError::Closed), "{wakeup:?}");
            assert_eq!(second, Err(BlockingError::Closed), "{wakeup:?}");
        });
        assert!(start.elapsed() < NEVER.unwrap(), "woken, not timed out");
    }
}
