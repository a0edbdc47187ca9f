//! loom model of the wake-up protocol (`src/wait.rs`): a consumer that sleeps
//! on an empty ring is always woken by the producer's next push, whether the
//! sleeper behaves like a futex (sleeps while the epoch is unchanged) or like
//! an eventfd (a counting semaphore). A lost wake-up leaves the consumer
//! blocked forever, which loom reports as a deadlock.
//!
//! The asymmetric mode (the producer skips its fence; the consumer runs a
//! process-wide barrier before its re-check) is modelled too. `membarrier`
//! interrupts the producer's thread wherever it is and runs a full fence
//! there, and returns once that is done: the producer's accesses before that
//! point are ordered before the caller's after it, and the caller's before it
//! before the producer's after it. The model lets the producer serve such a
//! request between any two of its steps (before a push, between the push and
//! `wake_needed`, after it, and when it exits, as a context switch would),
//! and the consumer waits until it has been served. The same model with a
//! barrier that does nothing must lose a wake-up, which shows that it checks
//! what the barrier is for.
//!
//! Run: `RUSTFLAGS="--cfg loom" cargo test --release --test loom_wait`
#![cfg(loom)]

use ipc_primitives::spsc::StaticSpsc;
use ipc_primitives::wait::Event;
use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering, fence};
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

/// `membarrier` between the consumer and one producer thread: the consumer
/// posts a request and waits until the producer has run a full fence at one
/// of its steps, or has exited.
#[derive(Default)]
struct Membarrier {
    requested: AtomicUsize,
    served: AtomicUsize,
    exited: AtomicBool,
}

impl Membarrier {
    /// Consumer: the system call.
    fn barrier(&self) {
        fence(Ordering::SeqCst);
        let request = self.requested.fetch_add(1, Ordering::SeqCst) + 1;
        while self.served.load(Ordering::SeqCst) < request && !self.exited.load(Ordering::SeqCst) {
            loom::thread::yield_now();
        }
        fence(Ordering::SeqCst);
    }

    /// Producer, between two steps: the interrupt, if one is pending.
    fn serve(&self) {
        let requested = self.requested.load(Ordering::SeqCst);
        if requested > self.served.load(Ordering::Relaxed) {
            fence(Ordering::SeqCst);
            self.served.store(requested, Ordering::SeqCst);
        }
    }

    /// Producer, when its thread ends: a context switch, a full fence.
    fn exit(&self) {
        fence(Ordering::SeqCst);
        self.exited.store(true, Ordering::SeqCst);
    }
}

/// How the producer orders its push against its look at the event.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// A `SeqCst` fence in every `wake_needed`.
    Fence,
    /// The asymmetric mode with a modelled `membarrier`, the producer
    /// switching to it in its own thread before pushing value `switch_at`
    /// (so the consumer may read the flag before or after the switch).
    Membarrier { switch_at: usize },
    /// The asymmetric mode with a barrier that does nothing: wrong on purpose.
    NoOpBarrier,
}

/// The producer pushes `values` and wakes the consumer when told to; the
/// consumer pops them all, sleeping whenever the ring is empty.
fn model<S: Sleeper + Default>(values: &'static [u32], mode: Mode) {
    loom::model(move || {
        let ring: &'static mut StaticSpsc<u32, 2> = Box::leak(Box::new(StaticSpsc::new()));
        let (mut tx, mut rx) = ring.split();
        let sleeper = Arc::new(S::default());
        let membarrier = Arc::new(Membarrier::default());
        if mode == Mode::NoOpBarrier {
            tx.use_sleeper_barrier();
        }

        let waker = Arc::clone(&sleeper);
        let interrupts = Arc::clone(&membarrier);
        let producer = loom::thread::spawn(move || {
            for (index, &value) in values.iter().enumerate() {
                if mode == (Mode::Membarrier { switch_at: index }) {
                    tx.use_sleeper_barrier();
                }
                interrupts.serve();
                while tx.try_push(value).is_err() {
                    loom::thread::yield_now();
                    interrupts.serve();
                }
                interrupts.serve();
                if tx.wake_needed() {
                    waker.wake();
                }
            }
            interrupts.exit();
        });

        for &expected in values {
            let got = rx.pop_or_sleep(
                0,
                || {
                    if matches!(mode, Mode::Membarrier { .. }) {
                        membarrier.barrier();
                    }
                    Ok::<(), ()>(())
                },
                |event, epoch| {
                    sleeper.sleep(event, epoch);
                    Ok(())
                },
            );
            assert_eq!(got, Ok(expected));
        }
        producer.join().unwrap();
    });
}

#[test]
fn futex_sleeper_is_never_left_asleep() {
    model::<Futex>(&[1, 2], Mode::Fence);
}

#[test]
fn eventfd_sleeper_is_never_left_asleep() {
    model::<EventFd>(&[1, 2], Mode::Fence);
}

#[test]
fn futex_sleeper_is_never_left_asleep_with_membarrier() {
    for switch_at in 0..2 {
        model::<Futex>(&[1, 2], Mode::Membarrier { switch_at });
    }
}

#[test]
fn eventfd_sleeper_is_never_left_asleep_with_membarrier() {
    for switch_at in 0..2 {
        model::<EventFd>(&[1, 2], Mode::Membarrier { switch_at });
    }
}

/// The control: without the consumer's barrier, the producer's missing
/// fence loses a wake-up, and loom finds it.
#[test]
#[should_panic(expected = "deadlock")]
fn without_the_barrier_the_asymmetric_mode_loses_a_wake_up() {
    model::<Futex>(&[1], Mode::NoOpBarrier);
}
