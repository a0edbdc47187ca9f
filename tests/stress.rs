//! Multi-thread stress tests of the SPSC ring and the seqlock.
//!
//! A producer thread pushes sequence numbers `0..N` and a consumer thread checks
//! that each arrives exactly once and in order: with single pushes and pops, with
//! batches of random sizes, with a grant-based producer that also abandons
//! grants, with a capacity of 2 (constant full/empty transitions), and with a
//! 64-byte element whose eight words all hold the sequence number (a torn element
//! shows as unequal words). A seqlock writer publishes `[k; 8]` for k = 1, 2, ...
//! while readers check every value they get is whole, matches its version, and
//! never goes backwards. Iteration counts are much smaller under Miri.
#![cfg(not(loom))]

mod common;

use core::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use common::{Rng, backoff, pop, push};
use ipc_primitives::Region;
use ipc_primitives::seqlock::{ReadError, Spins, StaticSeqLock};
use ipc_primitives::spsc::{Consumer, PopError, Producer, Spsc, StaticSpsc};
use zerocopy::IntoBytes;

/// Elements each ring test sends.
const N: u64 = if cfg!(miri) { 500 } else { 1_000_000 };

/// Runs `producer` and `consumer` on two threads and checks the ring is empty
/// afterwards.
fn run<'a, T: ipc_primitives::Pod + Send>(
    mut tx: Producer<'a, T>,
    mut rx: Consumer<'a, T>,
    producer: impl FnOnce(&mut Producer<'a, T>) + Send,
    consumer: impl FnOnce(&mut Consumer<'a, T>),
) {
    thread::scope(|s| {
        let sender = s.spawn(move || {
            producer(&mut tx);
            tx
        });
        consumer(&mut rx);
        let tx = sender.join().expect("producer thread panicked");
        assert!(tx.is_empty());
    });
    assert_eq!(rx.try_pop().err(), Some(PopError::Empty));
    assert!(rx.is_empty());
}

#[test]
fn single_pushes_and_pops_arrive_once_in_order() {
    let mut ring = StaticSpsc::<u64, 64>::new();
    let (tx, rx) = ring.split();
    run(
        tx,
        rx,
        |tx| (0..N).for_each(|seq| push(tx, seq)),
        |rx| {
            for expected in 0..N {
                assert_eq!(pop(rx), expected);
            }
        },
    );
}

#[test]
fn a_ring_attached_after_its_creator_left_works() {
    // As a process restarting would: the creator is gone, the ring is attached
    // afresh (one region holds one ring at a time: it is taken by value).
    let mut mem = common::ring_memory::<u64>(128);
    Spsc::<u64>::create(Region::new(mem.as_mut_bytes()), 128).unwrap();
    let (tx, rx) = Spsc::<u64>::attach(Region::new(mem.as_mut_bytes()))
        .unwrap()
        .split();
    run(
        tx,
        rx,
        |tx| (0..N).for_each(|seq| push(tx, seq)),
        |rx| {
            for expected in 0..N {
                assert_eq!(pop(rx), expected);
            }
        },
    );
}

#[test]
fn random_batches_arrive_once_in_order() {
    let mut mem = common::ring_memory::<u64>(64);
    let region = Region::new(mem.as_mut_bytes());
    let (tx, rx) = Spsc::<u64>::create(region, 64).unwrap().split();
    run(
        tx,
        rx,
        |tx| {
            let mut rng = Rng::new(0x5eed_0001);
            let mut next = 0;
            let mut batch = Vec::new();
            let mut attempt = 0;
            while next < N {
                // Sizes up to twice the capacity: some batches can never fit whole.
                let len = rng.range(1, 128).min((N - next) as usize);
                batch.clear();
                batch.extend(next..next + len as u64);
                let mut sent = 0;
                while sent < len {
                    let pushed = tx.push_slice(&batch[sent..]).expect("push_slice");
                    if pushed == 0 {
                        backoff(&mut attempt);
                    }
                    sent += pushed;
                }
                next += len as u64;
            }
        },
        |rx| {
            let mut rng = Rng::new(0x5eed_0002);
            let mut expected = 0;
            let mut buf = vec![u64::MAX; 128];
            let mut attempt = 0;
            while expected < N {
                let len = rng.range(1, 128);
                let got = rx.pop_slice(&mut buf[..len]).expect("pop_slice");
                assert!(got <= len);
                if got == 0 {
                    backoff(&mut attempt);
                }
                for &value in &buf[..got] {
                    assert_eq!(value, expected);
                    expected += 1;
                }
            }
        },
    );
}

/// The value the grant-based producer commits for `seq`: 12 bytes, so the slot's
/// second word is half used.
fn triple(seq: u64) -> [u32; 3] {
    [seq as u32, (seq >> 32) as u32 ^ 0x5a5a_5a5a, !(seq as u32)]
}

#[test]
fn grant_based_producer_with_abandoned_grants() {
    let mut ring = StaticSpsc::<[u32; 3], 16>::new();
    let (tx, rx) = ring.split();
    run(
        tx,
        rx,
        |tx| {
            let mut rng = Rng::new(0x5eed_0003);
            let mut attempt = 0;
            let mut seq = 0;
            while seq < N {
                let Ok(mut grant) = tx.grant() else {
                    backoff(&mut attempt);
                    continue;
                };
                let value = triple(seq);
                match rng.range(0, 7) {
                    // Abandon (the grant is dropped unpublished): this must
                    // never reach the consumer.
                    0 => {
                        grant.write(&[u32::MAX; 3]);
                        continue;
                    }
                    1..=3 => grant.write(&value),
                    _ => {
                        let bytes = value.as_bytes();
                        let at = rng.range(0, bytes.len());
                        grant.write_bytes(0, &bytes[..at]).expect("in bounds");
                        grant.write_bytes(at, &bytes[at..]).expect("in bounds");
                    }
                }
                grant.commit();
                seq += 1;
            }
        },
        |rx| {
            for seq in 0..N {
                assert_eq!(pop(rx), triple(seq), "element {seq}");
            }
        },
    );
}

#[test]
fn capacity_two_forces_full_and_empty_all_the_time() {
    let mut ring = StaticSpsc::<u64, 2>::new();
    let (tx, rx) = ring.split();
    run(
        tx,
        rx,
        |tx| (0..N).for_each(|seq| push(tx, seq)),
        |rx| {
            let mut expected = 0;
            let mut buf = [u64::MAX; 3];
            while expected < N {
                // Alternate single pops and batches larger than the ring.
                if expected % 2 == 0 {
                    assert_eq!(pop(rx), expected);
                    expected += 1;
                } else {
                    let got = rx.pop_slice(&mut buf).expect("pop_slice");
                    assert!(got <= 2, "popped {got} from a ring of 2");
                    for &value in &buf[..got] {
                        assert_eq!(value, expected);
                        expected += 1;
                    }
                }
            }
        },
    );
}

#[test]
fn wide_elements_are_never_torn() {
    let mut mem = common::ring_memory::<[u64; 8]>(16);
    let region = Region::new(mem.as_mut_bytes());
    let (tx, rx) = Spsc::<[u64; 8]>::create(region, 16).unwrap().split();
    run(
        tx,
        rx,
        |tx| {
            let mut seq = 0;
            let mut attempt = 0;
            while seq < N {
                if seq % 3 == 0 {
                    push(tx, [seq; 8]);
                    seq += 1;
                } else {
                    let batch: Vec<[u64; 8]> = (seq..(seq + 5).min(N)).map(|s| [s; 8]).collect();
                    let pushed = tx.push_slice(&batch).expect("push_slice");
                    if pushed == 0 {
                        backoff(&mut attempt);
                    }
                    seq += pushed as u64;
                }
            }
        },
        |rx| {
            let mut expected = 0;
            let mut buf = [[u64::MAX; 8]; 4];
            let mut attempt = 0;
            while expected < N {
                let got = rx.pop_slice(&mut buf).expect("pop_slice");
                if got == 0 {
                    backoff(&mut attempt);
                }
                for value in &buf[..got] {
                    assert_eq!(
                        *value, [expected; 8],
                        "element {expected} torn or out of order"
                    );
                    expected += 1;
                }
            }
        },
    );
}

/// Writes the seqlock performs in its stress test.
const WRITES: u64 = if cfg!(miri) { 200 } else { 200_000 };

#[test]
fn seqlock_readers_never_see_torn_or_older_values() {
    const READERS: usize = 3;
    let mut lock = StaticSeqLock::<[u64; 8]>::new();
    let (mut writer, reader) = lock.split();
    let done = AtomicBool::new(false);
    let counts = thread::scope(|s| {
        let readers: Vec<_> = (0..READERS)
            .map(|id| {
                let done = &done;
                s.spawn(move || {
                    let (mut ok, mut contended, mut stalled) = (0u64, 0u64, 0u64);
                    let mut last = 0;
                    loop {
                        let finished = done.load(Ordering::Acquire);
                        let seen = reader.version();
                        assert!(common::version(seen) >= last, "version went backwards");
                        // Reader 0 uses the plain read; the others ask for the
                        // version too, with few attempts so errors happen.
                        let read = if id == 0 {
                            reader.try_read().map(|value| (value, value[0]))
                        } else {
                            reader
                                .read_versioned(Spins(id as u32 * 2))
                                .map(|(value, version)| (value, common::version(version)))
                        };
                        match read {
                            Ok((value, version)) => {
                                assert_eq!(value, [version; 8], "torn or mislabelled value");
                                assert!(version >= last, "read {version} after {last}");
                                last = version;
                                ok += 1;
                            }
                            Err(ReadError::Contended) => contended += 1,
                            Err(ReadError::WriterStalled) => stalled += 1,
                            Err(other) => panic!("a live writer reported as {other}"),
                        }
                        if finished {
                            // The writer finished before this read began.
                            assert_eq!(last, WRITES);
                            break;
                        }
                    }
                    (ok, contended, stalled)
                })
            })
            .collect();
        for k in 1..=WRITES {
            writer.write(&[k; 8]);
        }
        assert_eq!(common::version(writer.version()), WRITES);
        done.store(true, Ordering::Release);
        readers
            .into_iter()
            .map(|r| r.join().expect("reader panicked"))
            .collect::<Vec<_>>()
    });
    for (id, (ok, contended, stalled)) in counts.into_iter().enumerate() {
        println!("reader {id}: {ok} reads, {contended} contended, {stalled} writer stalled");
        assert!(ok > 0);
    }
    assert_eq!(reader.try_read(), Ok([WRITES; 8]));
}
