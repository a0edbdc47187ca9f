//! loom model checks of the record ring: every interleaving (up to the
//! preemption bound) and every value the memory model lets a load return.
//!
//! - Delivery: a ring of 4 words (32 bytes); the producer sends records of
//!   1, 2 and 2 words, so the third needs padding before the end and must
//!   wait for the consumer to free room; a grant dropped uncommitted comes
//!   first. The consumer gets exactly the records sent, in order, intact.
//! - Wake-ups: a consumer that waits with `wait_or_sleep` (a futex model)
//!   is always woken by the producer's next commit: loom reports a lost
//!   wake-up as a deadlock.
//!
//! The data words (record headers and payload) are loom's causality-checked
//! cells here (plain relaxed atomics in real builds), so a word written while
//! the other side may still read it fails the model. Weakening the
//! producer's `head` store, the consumer's `tail` store or the producer's
//! `tail` load to `Relaxed` is reported as a causality violation.
//!
//! Run with `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=3
//! CARGO_TARGET_DIR=target/loom cargo test --release --test loom_bytes`.
#![cfg(loom)]

use ipc_primitives::bytes::{PopError, RecordRing, ReserveError};
use ipc_primitives::event::Event;
use ipc_primitives::{LoomMemory, Region};
use loom::sync::{Arc, Condvar, Mutex};
use loom::thread;

mod loom_support;
use loom_support::{RETRIES, model};

/// Memory for a ring of `words` words, leaked: loom threads need `'static`.
fn memory(words: u32) -> &'static LoomMemory {
    let size = RecordRing::required_size(words).unwrap();
    Box::leak(Box::new(LoomMemory::new(size)))
}

/// The records sent: 1 word (empty), 2 words (8 bytes) from word 1 to 3,
/// then 2 words that do not fit in the 1 word before the end, so padding
/// fills it and the record starts at word 0 once the consumer has freed it.
const RECORDS: [&[u8]; 3] = [b"", b"8 bytes!", b"wrapped!"];

#[test]
fn records_arrive_intact_in_order_across_the_padding() {
    model(|| {
        let mem = memory(4);
        let (mut tx, mut rx) = RecordRing::create(Region::loom(mem), 4).unwrap().split();
        let producer = thread::spawn(move || {
            {
                // Abandoned: written, never committed, never popped.
                let mut grant = tx.reserve(8).expect("an empty ring has room");
                grant.write(0, b"dropped!").unwrap();
            }
            for record in RECORDS {
                let mut retries = 0;
                loop {
                    match tx.push(record) {
                        Ok(()) => break,
                        Err(ReserveError::Full) => {}
                        Err(err) => panic!("{err}"),
                    }
                    retries += 1;
                    assert!(retries < RETRIES, "producer stuck on a full ring");
                    thread::yield_now();
                }
            }
        });
        for expected in RECORDS {
            let mut retries = 0;
            loop {
                let mut buf = [0xee; 8];
                match rx.pop_into(&mut buf) {
                    Ok(len) => {
                        assert_eq!(&buf[..len], expected);
                        break;
                    }
                    Err(PopError::Empty) => {}
                    Err(err) => panic!("{err}"),
                }
                retries += 1;
                assert!(retries < RETRIES, "consumer stuck on an empty ring");
                thread::yield_now();
            }
        }
        producer.join().unwrap();
        assert_eq!(rx.pop_into(&mut [0; 8]), Err(PopError::Empty));
    });
}

/// A futex on the event's epoch: the mutex plays the kernel's bucket lock
/// (as in `tests/loom_wait.rs`).
#[derive(Default)]
struct Futex {
    lock: Mutex<()>,
    woken: Condvar,
}

impl Futex {
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

#[test]
fn a_sleeping_consumer_is_woken_by_the_next_commit() {
    model(|| {
        let mem = memory(4);
        let (mut tx, mut rx) = RecordRing::create(Region::loom(mem), 4).unwrap().split();
        let futex = Arc::new(Futex::default());
        let waker = Arc::clone(&futex);
        let producer = thread::spawn(move || {
            for record in [&b"one"[..], b"two"] {
                while tx.push(record).is_err() {
                    thread::yield_now();
                }
                if tx.wake_needed() {
                    waker.wake();
                }
            }
        });
        for expected in [&b"one"[..], b"two"] {
            rx.wait_or_sleep(0, |event, epoch| {
                futex.sleep(event, epoch);
                Ok::<(), ()>(())
            })
            .unwrap();
            assert_eq!(rx.pop_vec::<8>().unwrap().as_slice(), expected);
        }
        producer.join().unwrap();
    });
}
