//! loom model of the wake-up protocol (`src/wait.rs`): a consumer that sleeps
//! on an empty ring is always woken by the producer's next push, whether the
//! sleeper behaves like a futex (sleeps while the epoch is unchanged) or like
//! an eventfd (a counting semaphore). A lost wake-up leaves the consumer
//! blocked forever, which loom reports as a deadlock.
//!
//! Run: `RUSTFLAGS="--cfg loom" cargo test --release --test loom_wait`
#![cfg(loom)]

use ipc_primitives::event::Event;
use ipc_primitives::spsc::StaticSpsc;
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
