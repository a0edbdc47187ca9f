//! Multi-process tests of the record ring: real processes, a real named
//! POSIX shm segment, real futex wake-ups. Children are this test binary run
//! again (see `tests/multiprocess.rs` for the harness).
//!
//! 1. A producer process sends 100,000 records of random lengths from 0 to
//!    the largest, each carrying its sequence number and a checksum, with
//!    `push_notify` (pausing now and then so the consumer sleeps); the parent
//!    pops them with `pop_blocking` on the segment's futex and checks every
//!    byte of each against the record it regenerates from the sequence.
//! 2. A hostile producer process rewrites `head` and record headers with
//!    garbage (impossible lengths, unknown kinds, broken padding, records
//!    straddling the end, `head` anywhere) while the parent pops as fast as
//!    it can: every pop returns a record no longer than the largest, `Empty`,
//!    `TooSmall` with a possible length, or `Corrupted`; never a crash or a
//!    hang.
//! 3. A hostile consumer process rewrites `tail` while the parent pushes:
//!    every push returns `Ok`, `Full` or `Corrupted`.
//!
//! Every test checks that no fd and no `/dev/shm` name it created is left.
#![cfg(all(feature = "linux", target_os = "linux", not(loom), not(miri)))]

#[path = "multiprocess/harness.rs"]
mod harness;

use core::sync::atomic::{AtomicU32, Ordering};
use core::time::Duration;
use std::sync::Arc;
use std::time::Instant;

use ipc_primitives::bytes::{
    BlockingError, Consumer, PopError, RecordRing, ReserveError, max_record,
};
use ipc_primitives::linux::shm::{CreateOptions, Segment};
use ipc_primitives::linux::wake::{PushNotifyError, SpinThenBlock, WaitError, Wakeup};

use harness::{Accounting, Proc, ShmName, env, env_parse};

/// The entry point of every child: plays the role `IPCP_CHILD_ROLE` names,
/// or does nothing when the test binary runs normally.
#[test]
fn child() {
    harness::run_child(|role| match role {
        "producer" => producer(),
        "hostile-producer" => hostile(HEAD),
        "hostile-consumer" => hostile(TAIL),
        other => panic!("unknown child role {other:?}"),
    });
}

/// Words in the rings: 8 KiB of records, the largest 4,088 bytes.
const WORDS: u32 = 1024;
/// Records in test 1.
const RECORDS: u64 = 100_000;
/// Rewrites the hostile children make.
const REWRITES: u64 = 300_000;
/// How long the hostile children may take.
const HOSTILE_LIMIT: Duration = Duration::from_secs(120);
/// How long a blocking pop waits before the parent checks on the child.
const POP_TIMEOUT: Duration = Duration::from_secs(5);

/// Byte offsets of the `# Layout` table in `ipc_primitives::bytes`.
const HEAD: usize = 128;
const TAIL: usize = 256;
const DATA: usize = 512;

/// Xorshift64.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// FNV-1a over `bytes`.
fn checksum(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5, |hash, &byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    })
}

/// Record `seq`: a length from 0 to the largest, drawn from `seq`; bytes
/// derived from `seq`; the sequence number in the first 8 bytes and a
/// checksum of the rest in the last 4, when they fit.
fn record(seq: u64) -> Vec<u8> {
    let mut rng = Rng(seq.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let max = max_record(WORDS);
    let len = match seq % 5 {
        0 => max,
        1 => 0,
        _ => rng.next() as usize % (max + 1),
    };
    let mut bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
    if len >= 12 {
        bytes[..8].copy_from_slice(&seq.to_le_bytes());
        let sum = checksum(&bytes[..len - 4]);
        bytes[len - 4..].copy_from_slice(&sum.to_le_bytes());
    }
    bytes
}

/// A fresh record ring in a named segment, which the returned consumer
/// keeps alive; the name is unlinked when it drops.
fn named_ring(name: &ShmName) -> Consumer<'static, Arc<Segment>> {
    let len = RecordRing::required_size(WORDS).expect("ring size");
    let segment = CreateOptions::new()
        .unlink_on_drop(true)
        .create(&name.0, len)
        .expect("create the named segment");
    RecordRing::create(segment.into_region().expect("a writable segment"), WORDS)
        .expect("create the ring")
        .into_consumer()
}

/// Test 1's child: sends `IPCP_COUNT` records with `push_notify`, retrying
/// while the ring is full and pausing now and then.
fn producer() {
    let segment = Segment::open(&env("IPCP_SHM")).expect("open the parent's segment");
    let count: u64 = env_parse("IPCP_COUNT");
    let mut tx = RecordRing::attach(segment.region().expect("the segment's region"))
        .expect("attach")
        .into_producer();
    let wakeup = Wakeup::Futex;
    for seq in 0..count {
        let record = record(seq);
        let mut attempt = 0_u32;
        loop {
            match tx.push_notify(&record, &wakeup) {
                Ok(()) => break,
                Err(PushNotifyError::Push(ReserveError::Full)) => {
                    attempt += 1;
                    if attempt < 64 {
                        core::hint::spin_loop();
                    } else {
                        std::thread::yield_now();
                    }
                }
                Err(err) => panic!("push of record {seq}: {err}"),
            }
        }
        if seq % 4_999 == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// A `u32` of the segment, as a peer process writes it.
fn word(segment: &Segment, base: core::ptr::NonNull<u8>, offset: usize) -> &AtomicU32 {
    assert!(offset.is_multiple_of(4) && offset + 4 <= segment.len());
    // SAFETY: in bounds (asserted) of the mapping, which lives as long as
    // `segment`, page-aligned plus a multiple of 4: aligned. This process
    // made no structure over the bytes: it plays the peer, reaching them
    // only through these atomics.
    unsafe { AtomicU32::from_ptr(base.as_ptr().add(offset).cast()) }
}

/// Tests 2 and 3's child: rewrites the ring's bytes `IPCP_COUNT` times.
/// `counter` is the word it plays with: `head` (a hostile producer, which
/// also writes record headers, garbage ones and plausible ones) or `tail`
/// (a hostile consumer).
fn hostile(counter: usize) {
    let segment = Segment::open(&env("IPCP_SHM")).expect("open the parent's segment");
    // Taken, so that nothing else in this process makes a structure there.
    let base = segment.region().expect("the segment's region").as_ptr();
    let count: u64 = env_parse("IPCP_COUNT");
    let max = max_record(WORDS) as u32;
    let mut rng = Rng(env_parse::<u64>("IPCP_SEED") | 1);
    let at = |offset| word(&segment, base, offset);
    // A header word at ring position `pos`: `len` (bit 31 for padding),
    // then the seal, `pos | 1 << 31` for a header published at `pos`.
    let header = |pos: u32, len: u32, seal: u32| {
        let offset = DATA + (pos % WORDS) as usize * 8;
        at(offset).store(len, Ordering::Relaxed);
        at(offset + 4).store(seal, Ordering::Release);
    };
    let sealed = |pos: u32| pos | 1 << 31;
    for round in 0..count {
        let r = rng.next();
        let other = if counter == HEAD { TAIL } else { HEAD };
        let seen = at(other).load(Ordering::Acquire);
        let value = match r % 8 {
            0 => rng.next() as u32,
            1 => seen.wrapping_sub(rng.next() as u32 % 8),
            _ => seen.wrapping_add(rng.next() as u32 % (WORDS + 8)),
        };
        if counter == HEAD {
            let len = match (r >> 8) % 6 {
                0 => rng.next() as u32,
                1 => max + 1 + rng.next() as u32 % 64,
                _ => rng.next() as u32 % (max + 1),
            };
            let (len, seal) = match (r >> 16) % 8 {
                0 => (len, rng.next() as u32),
                1 => (len | 1 << 31, sealed(seen)),
                _ => (len, sealed(seen)),
            };
            header(seen, len, seal);
            if (r >> 24).is_multiple_of(4) {
                let pos = rng.next() as u32;
                header(pos, (rng.next() as u32 % (max + 9)) | 1 << 31, sealed(pos));
            }
        }
        at(counter).store(value, Ordering::Release);
        if round.is_multiple_of(64) {
            std::thread::yield_now();
        }
    }
}

/// Runs `body` between the fd and `/dev/shm` snapshots.
fn accounted(body: impl FnOnce()) {
    let accounting = Accounting::begin();
    body();
    accounting.check();
}

#[test]
fn records_of_random_lengths_arrive_intact_across_processes() {
    accounted(|| {
        let name = ShmName::new("bytes");
        let mut rx = named_ring(&name);
        let mut child = Proc::spawn(
            "producer",
            &[
                ("IPCP_SHM", name.0.clone()),
                ("IPCP_COUNT", RECORDS.to_string()),
            ],
            Duration::from_secs(240),
        );
        let wakeup = Wakeup::Futex;
        let mut buf = vec![0; rx.max_record()];
        let mut bytes = 0;
        let mut seq = 0;
        while seq < RECORDS {
            match rx.pop_blocking(
                &mut buf,
                &wakeup,
                SpinThenBlock::default(),
                Some(POP_TIMEOUT),
            ) {
                Ok(len) => {
                    let expected = record(seq);
                    assert_eq!(len, expected.len(), "length of record {seq}");
                    if len >= 12 {
                        assert_eq!(buf[..8], seq.to_le_bytes(), "sequence of record {seq}");
                        let sum = checksum(&buf[..len - 4]).to_le_bytes();
                        assert_eq!(buf[len - 4..len], sum, "checksum of record {seq}");
                    }
                    assert!(buf[..len] == expected[..], "bytes of record {seq}");
                    bytes += len;
                    seq += 1;
                }
                Err(BlockingError::Sleep(WaitError::TimedOut)) => {
                    assert!(rx.is_empty(), "lost wake-up at record {seq}");
                    child.check_alive(&format!("record {seq} of {RECORDS}"));
                }
                Err(err) => panic!("pop of record {seq}: {err}"),
            }
        }
        child.wait_success();
        assert_eq!(
            rx.pop_into(&mut buf),
            Err(PopError::Empty),
            "more than sent"
        );
        eprintln!(
            "record ring: {RECORDS} records, {bytes} bytes, lengths 0 to {}",
            buf.len()
        );
    });
}

#[test]
fn a_hostile_producer_gets_typed_errors_only() {
    accounted(|| {
        let name = ShmName::new("bytes-hostile-producer");
        let mut rx = named_ring(&name);
        let mut child = Proc::spawn(
            "hostile-producer",
            &[
                ("IPCP_SHM", name.0.clone()),
                ("IPCP_COUNT", REWRITES.to_string()),
                ("IPCP_SEED", "7".to_owned()),
            ],
            HOSTILE_LIMIT,
        );
        let started = Instant::now();
        let max = rx.max_record();
        let mut buf = vec![0; max];
        let (mut records, mut empty, mut small, mut corrupted) = (0_u64, 0_u64, 0_u64, 0_u64);
        let mut pops = 0_u64;
        // Until the child is done, then once more over what it left.
        let mut last_pass = false;
        loop {
            let done = child.exited().is_some();
            for _ in 0..100 {
                pops += 1;
                let result = if pops.is_multiple_of(3) {
                    rx.pop_vec::<64>().map(|record| record.len())
                } else {
                    rx.pop_into(&mut buf)
                };
                match result {
                    Ok(len) => {
                        assert!(len <= max, "a record of {len} bytes");
                        records += 1;
                    }
                    Err(PopError::Empty) => empty += 1,
                    Err(PopError::TooSmall { needed }) => {
                        assert!(
                            needed <= max && needed > 64,
                            "TooSmall {{ needed: {needed} }}"
                        );
                        small += 1;
                    }
                    Err(PopError::Corrupted) => corrupted += 1,
                    Err(err) => panic!("{err}"),
                }
                assert!(rx.used_words() <= WORDS as usize);
            }
            if last_pass {
                break;
            }
            last_pass = done;
            assert!(
                started.elapsed() < HOSTILE_LIMIT,
                "the hostile producer runs too long"
            );
        }
        child.wait_success();
        eprintln!(
            "hostile producer: {pops} pops: {records} records, {empty} empty, \
             {small} too small, {corrupted} corrupted"
        );
        assert!(corrupted > 0 && records > 0, "the child's garbage was seen");
    });
}

#[test]
fn a_hostile_consumer_gets_typed_errors_only() {
    accounted(|| {
        let name = ShmName::new("bytes-hostile-consumer");
        let rx = named_ring(&name);
        // The parent's producer, through a second mapping of the segment,
        // attached before the child scribbles.
        let mapping = Segment::open(&name.0).expect("open the segment");
        let mut tx = RecordRing::attach(mapping.region().expect("region"))
            .expect("attach")
            .into_producer();
        let mut child = Proc::spawn(
            "hostile-consumer",
            &[
                ("IPCP_SHM", name.0.clone()),
                ("IPCP_COUNT", REWRITES.to_string()),
                ("IPCP_SEED", "11".to_owned()),
            ],
            HOSTILE_LIMIT,
        );
        let started = Instant::now();
        let (mut sent, mut full, mut corrupted) = (0_u64, 0_u64, 0_u64);
        let mut last_pass = false;
        let mut seq = 0;
        loop {
            let done = child.exited().is_some();
            for _ in 0..1_000 {
                seq += 1;
                match tx.push(&record(seq)) {
                    Ok(()) => sent += 1,
                    Err(ReserveError::Full) => full += 1,
                    Err(ReserveError::Corrupted) => corrupted += 1,
                    Err(err) => panic!("{err}"),
                }
            }
            if last_pass {
                break;
            }
            last_pass = done;
            assert!(
                started.elapsed() < HOSTILE_LIMIT,
                "the hostile consumer runs too long"
            );
        }
        child.wait_success();
        drop(rx);
        eprintln!(
            "hostile consumer: {seq} pushes: {sent} sent, {full} full, {corrupted} corrupted"
        );
        assert!(corrupted > 0 && sent > 0, "the child's garbage was seen");
    });
}
