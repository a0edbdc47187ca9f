//! The crate's main job in one process: a ring and a seqlock shared by threads.
//!
//! Run: `cargo run --release --example threads`
//!
//! A producer thread streams 64-byte messages through an SPSC ring created in
//! a caller-provided region (the same code works on an `mmap` shared between
//! processes); the consumer checks every sequence number and checksum. Beside
//! it, a publisher overwrites a quote in a seqlock while two readers poll it
//! and check that no read is ever torn.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::Instant;

use ipc_primitives::seqlock::SeqLock;
use ipc_primitives::spsc::Spsc;
use ipc_primitives::{Line, Region};
use zerocopy::{FromBytes, Immutable, IntoBytes};

/// A 64-byte message: a sequence number, a checksum and a payload.
#[derive(Clone, Copy, FromBytes, IntoBytes, Immutable)]
#[repr(C)]
struct Msg {
    seq: u64,
    checksum: u64,
    body: [u64; 6],
}

impl Msg {
    fn new(seq: u64) -> Self {
        let body = [seq.wrapping_mul(0x9e37_79b9_7f4a_7c15); 6];
        Self {
            seq,
            checksum: body.iter().fold(seq, |acc, w| acc ^ w.rotate_left(7)),
            body,
        }
    }

    fn is_intact(&self) -> bool {
        *self == Self::new(self.seq)
    }
}

impl PartialEq for Msg {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

/// The latest quote: every field carries the same tick, so a torn read shows.
#[derive(Clone, Copy, FromBytes, IntoBytes, Immutable)]
#[repr(C)]
struct Quote {
    tick: u64,
    bid: u64,
    ask: u64,
}

const MESSAGES: u64 = 5_000_000;
const CAPACITY: u32 = 1024;
const QUOTE_SECS: f64 = 0.5;

fn main() {
    stream_messages();
    publish_quotes();
}

/// A producer thread streams messages to the consumer (this thread) through
/// an SPSC ring in a region.
fn stream_messages() {
    let lines = Line::count_for(Spsc::<Msg>::required_size(CAPACITY).unwrap());
    let mut mem = vec![Line::ZERO; lines];
    let (mut tx, mut rx) = Spsc::<Msg>::create(Region::new(mem.as_mut_bytes()), CAPACITY)
        .expect("region sized for the ring")
        .split();
    let start = Instant::now();
    std::thread::scope(|s| {
        s.spawn(|| {
            for seq in 0..MESSAGES {
                let mut msg = Msg::new(seq);
                while let Err(err) = tx.try_push(msg) {
                    msg = err.into_inner();
                    std::hint::spin_loop();
                }
            }
        });
        let mut next = 0;
        while next < MESSAGES {
            match rx.try_pop() {
                Ok(msg) => {
                    assert!(msg.seq == next && msg.is_intact(), "message {next} damaged");
                    next += 1;
                }
                Err(_) => std::hint::spin_loop(),
            }
        }
    });
    let secs = start.elapsed().as_secs_f64();
    println!(
        "spsc:    {MESSAGES} messages of 64 bytes arrived in order and intact in {secs:.2} s ({:.1} M msg/s)",
        MESSAGES as f64 / secs / 1e6
    );
}

/// A publisher thread overwrites a quote; a reader polls it and checks that no
/// read is torn or goes back in time.
fn publish_quotes() {
    let size = SeqLock::<Quote>::required_size().expect("a small lock");
    let mut mem = vec![Line::ZERO; Line::count_for(size)];
    let lock = SeqLock::<Quote>::create(Region::new(mem.as_mut_bytes()))
        .expect("region sized for the lock");
    let reader = lock.reader();
    let mut writer = lock.into_writer();
    let done = AtomicBool::new(false);
    let (mut reads, mut retries_exhausted, mut last) = (0u64, 0u64, 0);
    std::thread::scope(|s| {
        s.spawn(|| {
            // A busy feed: one quote per microsecond.
            let start = Instant::now();
            for tick in 1.. {
                if done.load(Relaxed) {
                    break;
                }
                writer.write(&Quote {
                    tick,
                    bid: tick,
                    ask: tick,
                });
                while start.elapsed().as_micros() < u128::from(tick) {
                    std::hint::spin_loop();
                }
            }
        });
        let start = Instant::now();
        while start.elapsed().as_secs_f64() < QUOTE_SECS {
            match reader.try_read() {
                Ok(q) => {
                    assert!(q.tick == q.bid && q.bid == q.ask, "torn quote");
                    assert!(q.tick >= last, "quote went back in time");
                    (reads, last) = (reads + 1, q.tick);
                }
                Err(_) => retries_exhausted += 1,
            }
        }
        done.store(true, Relaxed);
    });
    println!(
        "seqlock: {} quotes published, {reads} whole reads, none torn ({retries_exhausted} reads gave up under contention)",
        reader.version()
    );
}
