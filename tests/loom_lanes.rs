//! loom model checks of fan-in lanes.
//!
//! - Delivery and wake-ups: two producers, each on its own lane, commit one
//!   record each and ring the one doorbell; the consumer pops, sleeping on
//!   the doorbell (a futex model) whenever every lane is empty. Every record
//!   arrives exactly once, and a lost wake-up (the consumer asleep while a
//!   lane holds a record) is a deadlock loom reports. This checks the
//!   doorbell with two notifiers.
//! - Claims and releases: lane 0 holds a record and is closing, lane 1 is
//!   free; two producers race to claim a lane while the consumer drains and
//!   frees lane 0. No lane has two owners in one generation, each winner's
//!   record arrives, and so does the one left in the closing lane.
//!
//! - Release while the consumer drains: a producer commits a record and
//!   releases its lane while the consumer pops; the record arrives before
//!   the lane is freed. Weakening the release (`Release` swap to `CLOSING`)
//!   or the consumer's `Acquire` load of the state to `Relaxed` lets the
//!   consumer free the lane with the record still in it, which this model
//!   reports.
//!
//! Data words are causality-checked cells, as in `tests/loom_bytes.rs`.
//!
//! Run with `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=3
//! CARGO_TARGET_DIR=target/loom cargo test --release --test loom_lanes`.
#![cfg(loom)]

use ipc_primitives::event::Event;
use ipc_primitives::lanes::{Delivery, LaneState, Lanes, PopError};
use ipc_primitives::{LoomMemory, Region};
use loom::sync::{Arc, Condvar, Mutex};
use loom::thread;

mod loom_support;
use loom_support::{RETRIES, model};

/// Memory for `lanes` lanes of 4 words, leaked: loom threads need `'static`.
fn memory(lanes: usize) -> &'static LoomMemory {
    let size = Lanes::required_size(lanes, 4).unwrap();
    Box::leak(Box::new(LoomMemory::new(size)))
}

/// A futex on the doorbell's epoch: the mutex plays the kernel's bucket lock
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
fn two_producers_ring_one_doorbell_and_no_wake_up_is_lost() {
    model(|| {
        let mem = memory(2);
        let lanes = Lanes::create(Region::loom(mem), 2, 4).unwrap();
        let futex = Arc::new(Futex::default());
        let producers: Vec<_> = [&b"one"[..], b"two"]
            .into_iter()
            .map(|record| {
                let mut lane = lanes.claim().expect("a free lane");
                let futex = Arc::clone(&futex);
                thread::spawn(move || {
                    lane.push(record).unwrap();
                    if lane.wake_needed() {
                        futex.wake();
                    }
                    // Keep the claim: a release would be more work for the
                    // consumer, which this model does not wait for.
                    std::mem::forget(lane);
                })
            })
            .collect();
        let mut rx = lanes.into_consumer();
        let mut got = Vec::new();
        let mut buf = [0; 8];
        while got.len() < 2 {
            match rx.pop_into(&mut buf) {
                Ok(Delivery { lane, len }) => got.push((lane, buf[..len].to_vec())),
                Err(PopError::Empty) => rx
                    .wait_or_sleep(0, |event, epoch| {
                        futex.sleep(event, epoch);
                        Ok::<(), ()>(())
                    })
                    .unwrap(),
                Err(err) => panic!("{err}"),
            }
        }
        got.sort();
        assert_eq!(got, [(0, b"one".to_vec()), (1, b"two".to_vec())]);
        for producer in producers {
            producer.join().unwrap();
        }
        assert_eq!(rx.pop_into(&mut buf), Err(PopError::Empty));
    });
}

#[test]
fn racing_claims_get_one_owner_per_generation_and_lose_nothing() {
    model(|| {
        let mem = memory(2);
        let lanes = Lanes::create(Region::loom(mem), 2, 4).unwrap();
        // Lane 0: claimed, one record, released: closing. Lane 1: free.
        let mut old = lanes.claim().unwrap();
        old.push(b"old").unwrap();
        drop(old);
        let lanes: &'static Lanes<'static> = Box::leak(Box::new(lanes));
        let claimers: Vec<_> = [&b"A"[..], b"B"]
            .into_iter()
            .map(|record| {
                thread::spawn(move || {
                    let mut lane = lanes.claim()?;
                    lane.push(record).unwrap();
                    let won = (lane.lane(), lane.generation(), record.to_vec());
                    drop(lane);
                    Some(won)
                })
            })
            .collect();
        let mut rx = Lanes::attach(Region::loom(mem)).unwrap().into_consumer();
        let mut got = Vec::new();
        let mut buf = [0; 8];
        for _ in 0..RETRIES {
            match rx.pop_into(&mut buf) {
                Ok(Delivery { len, .. }) => got.push(buf[..len].to_vec()),
                Err(PopError::Empty) => thread::yield_now(),
                Err(err) => panic!("{err}"),
            }
        }
        let won: Vec<_> = claimers
            .into_iter()
            .filter_map(|claimer| claimer.join().unwrap())
            .collect();
        assert!(!won.is_empty(), "lane 1 was free for one of them");
        if let [(lane_a, generation_a, _), (lane_b, generation_b, _)] = won[..] {
            assert_ne!(
                (lane_a, generation_a),
                (lane_b, generation_b),
                "two owners of one lane in one generation"
            );
        }
        for _ in 0..4 {
            if let Ok(Delivery { len, .. }) = rx.pop_into(&mut buf) {
                got.push(buf[..len].to_vec());
            }
        }
        let mut expected: Vec<_> = won.into_iter().map(|(_, _, record)| record).collect();
        expected.push(b"old".to_vec());
        expected.sort();
        got.sort();
        assert_eq!(got, expected, "records lost or repeated");
    });
}

#[test]
fn a_released_lane_is_freed_only_after_its_last_record() {
    model(|| {
        let mem = memory(1);
        let lanes = Lanes::create(Region::loom(mem), 1, 4).unwrap();
        let mut lane = lanes.claim().unwrap();
        let producer = thread::spawn(move || {
            lane.push(b"last").unwrap();
            drop(lane);
        });
        let mut rx = lanes.into_consumer();
        let mut buf = [0; 8];
        let mut got = Vec::new();
        for _ in 0..RETRIES {
            match rx.pop_into(&mut buf) {
                Ok(Delivery { len, .. }) => got.push(buf[..len].to_vec()),
                Err(PopError::Empty) => {
                    if rx.state(0) == Some(LaneState::Free { generation: 1 }) {
                        break;
                    }
                    thread::yield_now();
                }
                Err(err) => panic!("{err}"),
            }
        }
        producer.join().unwrap();
        assert_eq!(got, [b"last".to_vec()], "freed before its last record");
    });
}
