//! End of stream: `close`, dropping a side, `is_abandoned`, and blocking
//! calls that end with `Closed`; a new side reopens the ring.

use std::sync::mpsc;

use super::*;

/// A sleeper that gives up at once: the ring must not need it.
fn never_sleep(_: &Event, _: u32) -> Result<(), &'static str> {
    Err("slept")
}

#[test]
fn dropping_a_side_abandons_the_ring_for_the_other() {
    let mut mem = memory::<u32>(4);
    let ring = Spsc::<u32>::create(Region::new(mem.as_mut_bytes()), 4).unwrap();
    let (mut tx, rx) = ring.split();
    assert!(!tx.is_abandoned() && !rx.is_abandoned());
    tx.try_push(1).unwrap();
    drop(rx);
    assert!(tx.is_abandoned());
    tx.try_push(2).unwrap();
    drop(tx);
    let (tx, mut rx) = Spsc::<u32>::attach(Region::new(mem.as_mut_bytes()))
        .unwrap()
        .split();
    assert!(!tx.is_abandoned(), "a new consumer reopened the ring");
    assert!(!rx.is_abandoned(), "a new producer reopened the ring");
    assert_eq!((rx.try_pop(), rx.try_pop()), (Ok(1), Ok(2)));
}

#[test]
fn a_blocking_pop_drains_what_was_pushed_then_reports_closed() {
    let mut ring = StaticSpsc::<u32, 4>::new();
    let (mut tx, mut rx) = ring.split();
    tx.push_all(&[1, 2]).unwrap();
    assert!(!tx.close(), "the consumer is awake");
    assert!(rx.is_abandoned());
    assert_eq!(rx.pop_or_sleep(0, never_sleep), Ok(1));
    assert_eq!(rx.pop_or_sleep(0, never_sleep), Ok(2));
    assert_eq!(rx.pop_or_sleep(0, never_sleep), Err(BlockingError::Closed));
    assert!(!rx.event().has_sleeper(), "the announcement was withdrawn");
}

/// A sleeper for a blocking call in another thread: tells the test it is
/// asleep, waits until the test says it woke it, and checks that the wake
/// moved the epoch. A ring that never sleeps, sleeps twice, or does not wake
/// it fails the test instead of hanging it.
fn sleeps_once(
    asleep: mpsc::Sender<()>,
    woken: mpsc::Receiver<()>,
) -> impl FnMut(&Event, u32) -> Result<(), ()> {
    let mut slept = false;
    move |event: &Event, epoch| {
        assert!(!slept, "slept again after the wake");
        slept = true;
        asleep.send(()).unwrap();
        woken.recv().expect("the test wakes the sleeper");
        assert_ne!(event.epoch(), epoch, "the wake moved the epoch");
        Ok(())
    }
}

#[test]
fn closing_wakes_a_sleeping_consumer_which_then_sees_closed() {
    let mut ring = StaticSpsc::<u32, 4>::new();
    let (tx, mut rx) = ring.split();
    std::thread::scope(|s| {
        // In the scope's closure: a failing assertion drops `wake`, so the
        // sleeper's wait ends before the scope joins it.
        let (asleep_tx, asleep) = mpsc::channel();
        let (wake, woken) = mpsc::channel();
        let sleeper = s.spawn(move || rx.pop_or_sleep(0, sleeps_once(asleep_tx, woken)));
        // Once the consumer announced itself, close: the answer says to wake
        // it (the epoch moved; a real producer also makes a system call here).
        asleep.recv().expect("the consumer went to sleep");
        assert!(tx.peer_event().has_sleeper());
        assert!(tx.close(), "the consumer sleeps: wake it");
        wake.send(()).unwrap();
        assert_eq!(sleeper.join().unwrap(), Err(BlockingError::Closed));
    });
}

#[test]
fn a_blocking_push_into_a_full_ring_the_consumer_closed_reports_closed() {
    let mut ring = StaticSpsc::<u32, 2>::new();
    let (mut tx, rx) = ring.split();
    tx.push_all(&[1, 2]).unwrap();
    assert!(!rx.close(), "the producer is awake");
    assert!(tx.is_abandoned());
    assert_eq!(
        tx.push_or_sleep(3, 0, never_sleep),
        Err((3, BlockingError::Closed))
    );
    assert!(!tx.event().has_sleeper(), "the announcement was withdrawn");
}

#[test]
fn closing_wakes_a_producer_waiting_for_space() {
    let mut ring = StaticSpsc::<u32, 1>::new();
    let (mut tx, rx) = ring.split();
    tx.try_push(1).unwrap();
    std::thread::scope(|s| {
        // In the scope's closure: a failing assertion drops `wake`, so the
        // sleeper's wait ends before the scope joins it.
        let (asleep_tx, asleep) = mpsc::channel();
        let (wake, woken) = mpsc::channel();
        let sleeper = s.spawn(move || tx.push_or_sleep(2, 0, sleeps_once(asleep_tx, woken)));
        asleep.recv().expect("the producer went to sleep");
        assert!(rx.peer_event().has_sleeper());
        assert!(rx.close(), "the producer sleeps: wake it");
        wake.send(()).unwrap();
        assert_eq!(sleeper.join().unwrap(), Err((2, BlockingError::Closed)));
    });
}

#[test]
fn a_replaced_handle_does_not_close_its_successors_side() {
    // Two attachments over one ring: another process's, or a handle assigned
    // over (`(tx, rx) = ring.split()` drops the old pair after making the new).
    let shared = shared::<u32>(4);
    let (old_tx, old_rx) = Spsc::<u32>::create(shared.region(), 4).unwrap().split();
    let (mut tx, rx) = Spsc::<u32>::attach(shared.region()).unwrap().split();
    drop((old_tx, old_rx));
    assert!(
        !tx.is_abandoned(),
        "the old consumer closed the new one's side"
    );
    assert!(
        !rx.is_abandoned(),
        "the old producer closed the new one's side"
    );
    tx.try_push(1).unwrap();
    drop(tx);
    assert!(
        rx.is_abandoned(),
        "the handle that opened the side closes it"
    );
}

#[test]
fn handles_from_before_a_re_create_do_not_close_the_new_rings_sides() {
    let shared = shared::<u32>(4);
    let old = Spsc::<u32>::create(shared.region(), 4).unwrap().split();
    let (tx, rx) = Spsc::<u32>::create(shared.region(), 4).unwrap().split();
    drop(old);
    assert!(!tx.is_abandoned() && !rx.is_abandoned());
}

#[test]
fn a_third_attach_reads_the_counters_without_disturbing_the_sides() {
    let shared = shared::<u32>(2);
    let (mut tx, mut rx) = Spsc::<u32>::create(shared.region(), 2).unwrap().split();
    let inspect = || Spsc::<u32>::attach(shared.region()).unwrap().counters();
    assert_eq!(inspect(), tx.counters());
    assert!(inspect().is_empty());
    tx.push_all(&[1, 2]).unwrap();
    assert_eq!(tx.try_push(3), Err(PushError::Full(3)));
    assert_eq!(rx.try_pop(), Ok(1));
    assert_eq!(rx.prepare_to_sleep(), Ok(None), "one element left");
    assert_eq!(rx.try_pop(), Ok(2));
    assert_eq!(rx.prepare_to_sleep(), Ok(Some(0)));
    tx.try_push(4).unwrap();
    assert!(tx.wake_needed());
    let seen = inspect();
    assert_eq!((seen.pushed, seen.popped, seen.len()), (3, 2, 1));
    assert!(!seen.is_empty());
    assert_eq!(seen.full, 1);
    assert_eq!((seen.consumer_wakes, seen.producer_wakes), (1, 0));
    assert!(!seen.consumer_asleep && !seen.producer_asleep);
    assert!(!seen.producer_closed && !seen.consumer_closed);
    assert_eq!(seen, rx.counters(), "the sides read the same words");
    drop(tx);
    assert!(inspect().producer_closed);
    assert!(!inspect().consumer_closed);
    assert_eq!(rx.try_pop(), Ok(4), "the inspector took nothing");
}
