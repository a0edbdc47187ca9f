//! loom model of the wake-up protocol (`src/event.rs`): a consumer that sleeps
//! on an empty ring is always woken by the producer's next push, and a
//! producer that sleeps on a full ring by the consumer's next pop, whether the
//! sleeper behaves like a futex (sleeps while the epoch is unchanged) or like
//! an eventfd (a counting semaphore). A lost wake-up leaves a side blocked
//! forever, which loom reports as a deadlock.
//!
//! Run: `RUSTFLAGS="--cfg loom" cargo test --release --test loom_wait`
#![cfg(loom)]

use ipc_primitives::event::Event;
use ipc_primitives::spsc::{BlockingError, StaticSpsc};
use loom::sync::{Arc, Condvar, Mutex};

/// How the consumer sleeps and the producer wakes it.
trait Sleeper: Send + Sync + 'static {
    fn sleep(&self, event: &Event, epoch: u32);
    fn wake(&self);
}

/// A futex on the event's epoch: the mutex plays the kernel's bucket lock.
#[derive(Default)]
struct Futex {
    lock: Mutex<()>,
    woken: Condvar,
}

impl Sleeper for Futex {
    fn sleep(&self, event: &Event, epoch: u32) {
        let mut guard = self.lock.lock().unwrap();
        while event.epoch() == epoch {
            guard = self.woken.wait(guard).unwrap();
        }
    }

    fn wake(&self) {
        let _guard = self.lock.lock().unwrap();
        self.woken.notify_all();
    }
}

/// An eventfd: a counter that a wake increments. A sleep is what
/// `Wakeup::sleep` does: drain the counter, return if the epoch moved, else
/// wait until the counter is non-zero and leave it so (the mutex plays the
/// eventfd's lock; the drain and the wait are separate system calls).
#[derive(Default)]
struct EventFd {
    count: Mutex<u32>,
    woken: Condvar,
}

impl Sleeper for EventFd {
    fn sleep(&self, event: &Event, epoch: u32) {
        *self.count.lock().unwrap() = 0;
        if event.epoch() != epoch {
            return;
        }
        let mut count = self.count.lock().unwrap();
        while *count == 0 {
            count = self.woken.wait(count).unwrap();
        }
    }

    fn wake(&self) {
        *self.count.lock().unwrap() += 1;
        self.woken.notify_one();
    }
}

/// The producer pushes `values` and wakes the consumer when told to; the
/// consumer pops them all, sleeping whenever the ring is empty.
fn model<S: Sleeper + Default>(values: &'static [u32]) {
    loom::model(move || {
        let ring: &'static mut StaticSpsc<u32, 2> = Box::leak(Box::new(StaticSpsc::new()));
        let (mut tx, mut rx) = ring.split();
        let sleeper = Arc::new(S::default());

        let waker = Arc::clone(&sleeper);
        let producer = loom::thread::spawn(move || {
            for &value in values {
                while tx.try_push(value).is_err() {
                    loom::thread::yield_now();
                }
                if tx.wake_needed() {
                    waker.wake();
                }
            }
        });

        for &expected in values {
            let got = rx.pop_or_sleep(0, |event, epoch| {
                sleeper.sleep(event, epoch);
                Ok::<(), ()>(())
            });
            assert_eq!(got, Ok(expected));
        }
        producer.join().unwrap();
    });
}

#[test]
fn futex_sleeper_is_never_left_asleep() {
    model::<Futex>(&[1, 2]);
}

#[test]
fn eventfd_sleeper_is_never_left_asleep() {
    model::<EventFd>(&[1, 2]);
}

/// The other direction: the producer pushes `values` into a one-slot ring,
/// sleeping whenever it is full; the consumer pops them, spinning, and
/// wakes the producer after each pop when told to.
fn space_model<S: Sleeper + Default>(values: &'static [u32]) {
    loom::model(move || {
        let ring: &'static mut StaticSpsc<u32, 1> = Box::leak(Box::new(StaticSpsc::new()));
        let (mut tx, mut rx) = ring.split();
        let sleeper = Arc::new(S::default());

        let waker = Arc::clone(&sleeper);
        let consumer = loom::thread::spawn(move || {
            for &expected in values {
                let got = loop {
                    match rx.try_pop() {
                        Ok(value) => break value,
                        Err(_) => loom::thread::yield_now(),
                    }
                };
                assert_eq!(got, expected);
                if rx.wake_needed() {
                    waker.wake();
                }
            }
        });

        for &value in values {
            let pushed = tx.push_or_sleep(value, 0, |event, epoch| {
                sleeper.sleep(event, epoch);
                Ok::<(), ()>(())
            });
            assert!(pushed.is_ok());
        }
        consumer.join().unwrap();
    });
}

#[test]
fn futex_producer_waiting_for_space_is_never_left_asleep() {
    space_model::<Futex>(&[1, 2, 3]);
}

#[test]
fn eventfd_producer_waiting_for_space_is_never_left_asleep() {
    space_model::<EventFd>(&[1, 2, 3]);
}

/// Both directions at once, as `push_blocking` against `pop_blocking`: each
/// side sleeps on its own sleeper (two eventfds, `Wakeup::EventFds`) and
/// wakes the other's after each element it moves.
#[test]
fn both_sides_sleeping_are_never_left_asleep() {
    loom::model(|| {
        let ring: &'static mut StaticSpsc<u32, 1> = Box::leak(Box::new(StaticSpsc::new()));
        let (mut tx, mut rx) = ring.split();
        let ready = Arc::new(EventFd::default());
        let space = Arc::new(EventFd::default());

        let (ready_waker, space_sleeper) = (Arc::clone(&ready), Arc::clone(&space));
        let producer = loom::thread::spawn(move || {
            for value in [1, 2] {
                let pushed = tx.push_or_sleep(value, 0, |event, epoch| {
                    space_sleeper.sleep(event, epoch);
                    Ok::<(), ()>(())
                });
                assert!(pushed.is_ok());
                if tx.wake_needed() {
                    ready_waker.wake();
                }
            }
        });

        for expected in [1, 2] {
            let got = rx.pop_or_sleep(0, |event, epoch| {
                ready.sleep(event, epoch);
                Ok::<(), ()>(())
            });
            assert_eq!(got, Ok(expected));
            if rx.wake_needed() {
                space.wake();
            }
        }
        producer.join().unwrap();
    });
}

/// The producer pushes one value and closes the ring, waking the consumer
/// if `close` says so; the consumer pops it, then must learn of the close
/// (`Closed`), never sleep on for ever: the close is a publish like any
/// other, on the same announcement and fences.
fn close_model<S: Sleeper + Default>() {
    loom::model(|| {
        let ring: &'static mut StaticSpsc<u32, 2> = Box::leak(Box::new(StaticSpsc::new()));
        let (mut tx, mut rx) = ring.split();
        let sleeper = Arc::new(S::default());

        let waker = Arc::clone(&sleeper);
        let producer = loom::thread::spawn(move || {
            tx.try_push(7).unwrap();
            if tx.wake_needed() {
                waker.wake();
            }
            if tx.close() {
                waker.wake();
            }
        });

        let sleep = |event: &Event, epoch| {
            sleeper.sleep(event, epoch);
            Ok::<(), ()>(())
        };
        assert_eq!(rx.pop_or_sleep(0, sleep), Ok(7));
        assert_eq!(rx.pop_or_sleep(0, sleep), Err(BlockingError::Closed));
        producer.join().unwrap();
    });
}

#[test]
fn a_close_never_leaves_a_futex_sleeper_asleep() {
    close_model::<Futex>();
}

#[test]
fn a_close_never_leaves_an_eventfd_sleeper_asleep() {
    close_model::<EventFd>();
}
