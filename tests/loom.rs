//! loom model checks of the ring and seqlock protocols: every interleaving (up to
//! the preemption bound) and every value the memory model lets a load return.
//!
//! - SPSC, capacity 2, three elements, so the producer must find the ring full
//!   and retry: with `try_push`/`try_pop`, with `push_slice`/`pop_slice`, and with
//!   grants (one abandoned); the consumer gets exactly the values pushed, in order.
//!   The first two, and the producer's takeover below, also with 64-byte
//!   elements, whose slots have no stamps (the index protocol).
//! - Seqlock: a writer writes `[1, 1]` then `[2, 2]` while a reader reads with few
//!   attempts; any value returned is whole and matches its version.
//! - SPSC, a producer taking over from another: a consumer that sees only the
//!   second producer's `head` still sees the first one's element; and a
//!   consumer taking over: a producer that sees only the second consumer's
//!   `tail` never overwrites a slot the first is still copying.
//! - Regions: an attacher racing a creator sees the whole header or none; an
//!   attacher racing a re-creation over a used region sees the old header, the
//!   new one, or none, never a mix; what the creator initialised is what the
//!   attacher then uses.
//!
//! Ring slots are loom's causality-checked cells here (plain relaxed atomics in
//! real builds), so a slot written while the other side may still copy it
//! fails the model: weakening the consumer's `tail` store or the producer's
//! `tail` load to `Relaxed` is reported as a causality violation.
//!
//! Run with
//! `RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=/tmp/target-loom cargo test --release --test loom`.
//! The preemption bound is `PREEMPTIONS` in `tests/loom_support` unless `LOOM_MAX_PREEMPTIONS` is set.
#![cfg(loom)]

use ipc_primitives::seqlock::{ReadError, Spins, StaticSeqLock};
use ipc_primitives::spsc::{PopError, PushError, Spsc, StaticSpsc};
use ipc_primitives::{AttachError, ElementLayout, LoomMemory, Region};
use loom::sync::atomic::{AtomicBool, Ordering};
use loom::thread;

mod loom_support;
use loom_support::{PerExecution, RETRIES, leak, model, model_bounded};

/// What the generic models need of an element.
trait Element: ipc_primitives::Pod + PartialEq + core::fmt::Debug + Send + Copy + 'static {}

impl<T: ipc_primitives::Pod + PartialEq + core::fmt::Debug + Send + Copy + 'static> Element for T {}

/// A 64-byte element, whose slots have no stamp: every word says `value`.
fn wide(value: u64) -> [u64; 8] {
    [value; 8]
}

#[test]
fn spsc_single_push_pop_is_fifo() {
    single_push_pop_is_fifo(u64::from);
}

/// The same through slots without stamps: elements over 56 bytes, which
/// only `head` publishes.
#[test]
fn spsc_single_push_pop_is_fifo_without_stamps() {
    single_push_pop_is_fifo(wide);
}

fn single_push_pop_is_fifo<T: Element>(make: fn(u64) -> T) {
    model(move || {
        let ring = leak(StaticSpsc::<T, 2>::new());
        let (mut tx, mut rx) = ring.split();
        let producer = thread::spawn(move || {
            for value in [11, 22, 33] {
                let mut value = make(value);
                let mut retries = 0;
                loop {
                    match tx.try_push(value) {
                        Ok(()) => break,
                        Err(PushError::Full(back)) => value = back,
                        Err(err) => panic!("{err}"),
                    }
                    retries += 1;
                    assert!(retries < RETRIES, "producer stuck on a full ring");
                    thread::yield_now();
                }
            }
        });
        for expected in [11, 22, 33] {
            let mut retries = 0;
            loop {
                match rx.try_pop() {
                    Ok(value) => {
                        assert_eq!(value, make(expected));
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
        assert_eq!(rx.try_pop(), Err(PopError::Empty));
    });
}

#[test]
fn spsc_batches_are_fifo() {
    batches_are_fifo(u64::from);
}

/// The same through slots without stamps.
#[test]
fn spsc_batches_are_fifo_without_stamps() {
    batches_are_fifo(wide);
}

fn batches_are_fifo<T: Element>(make: fn(u64) -> T) {
    model(move || {
        let ring = leak(StaticSpsc::<T, 2>::new());
        let (mut tx, mut rx) = ring.split();
        let producer = thread::spawn(move || {
            let items = [11, 22, 33].map(make);
            let mut sent = 0;
            let mut retries = 0;
            while sent < items.len() {
                let pushed = tx.push_slice(&items[sent..]).unwrap();
                assert!(pushed <= 2);
                sent += pushed;
                if sent < items.len() {
                    retries += 1;
                    assert!(retries < RETRIES, "producer stuck on a full ring");
                    thread::yield_now();
                }
            }
        });
        let mut got = Vec::new();
        let mut retries = 0;
        while got.len() < 3 {
            let mut buf = [make(0); 2];
            let n = rx.pop_slice(&mut buf).unwrap();
            got.extend_from_slice(&buf[..n]);
            if got.len() < 3 {
                retries += 1;
                assert!(retries < RETRIES, "consumer stuck on an empty ring");
                thread::yield_now();
            }
        }
        assert_eq!(got, [11, 22, 33].map(make));
        producer.join().unwrap();
        assert_eq!(rx.pop_slice(&mut [make(0); 2]), Ok(0));
    });
}

#[test]
fn spsc_grants_publish_only_on_commit() {
    model(|| {
        // Two words per element: a consumer that sees a committed slot must see
        // both words written.
        let ring = leak(StaticSpsc::<[u64; 2], 2>::new());
        let (mut tx, mut rx) = ring.split();
        let producer = thread::spawn(move || {
            {
                // An abandoned grant, dropped unpublished: its value must never
                // be popped.
                let mut grant = tx.grant().expect("an empty ring has room");
                grant.write(&[99, 99]);
            }
            for value in [1, 2, 3] {
                let mut retries = 0;
                let mut grant = loop {
                    match tx.grant() {
                        Ok(grant) => break grant,
                        Err(PushError::Full(())) => {}
                        Err(err) => panic!("{err}"),
                    }
                    retries += 1;
                    assert!(retries < RETRIES, "producer stuck on a full ring");
                    thread::yield_now();
                };
                grant.write(&[value, value * 10]);
                grant.commit();
            }
        });
        for expected in [1, 2, 3] {
            let mut retries = 0;
            loop {
                match rx.try_pop() {
                    Ok(value) => {
                        assert_eq!(value, [expected, expected * 10]);
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
    });
}

#[test]
fn seqlock_never_returns_a_torn_value() {
    model(|| {
        let lock = leak(StaticSeqLock::<[u64; 2]>::new());
        let (mut writer, reader) = lock.split();
        let writing = thread::spawn(move || {
            writer.write(&[1, 1]);
            writer.write(&[2, 2]);
        });
        let mut last = 0;
        for _ in 0..2 {
            let version = reader.version();
            assert!(
                (last..=2).contains(&version),
                "version {version} after {last}"
            );
            match reader.read_versioned(Spins(2)) {
                Ok((value, version)) => {
                    // Version 0 is the initial all-zero value; write k is [k, k].
                    assert_eq!(value, [version, version], "torn or mislabelled");
                    assert!((last..=2).contains(&version), "read {version} after {last}");
                    last = version;
                }
                Err(ReadError::Contended | ReadError::WriterStalled) => {}
                Err(other) => panic!("{other}"),
            }
        }
        writing.join().unwrap();
        assert_eq!(reader.read_versioned(Spins(1)), Ok(([2, 2], 2)));
    });
}

/// A producer made after another (here: attached by another thread once the
/// first has pushed) takes over after the first one's element: the consumer
/// gets both, in order, each copied after its payload was written. With
/// per-slot stamps the consumer acquires every element's own stamp, so this
/// model passes even with `Producer::new`'s load of `head` weakened to
/// `Relaxed` (checked); it guards the takeover's positions and the
/// causality of each element's copy.
#[test]
fn spsc_a_producer_taking_over_carries_its_predecessors_writes() {
    producer_taking_over::<u64>(u64::from);
}

/// The same through slots without stamps, where the consumer learns of both
/// elements through `head` alone.
#[test]
fn spsc_a_producer_taking_over_without_stamps_carries_its_predecessors_writes() {
    producer_taking_over(wide);
}

fn producer_taking_over<T: Element>(make: fn(u64) -> T) {
    model_bounded(2, move || {
        let size = Spsc::<T>::required_size(2).unwrap();
        let guard = PerExecution::new(size);
        let mem = guard.0;
        let attached: &'static AtomicBool = leak(AtomicBool::new(false));
        let mut rx = Spsc::<T>::create(Region::loom(mem), 2)
            .unwrap()
            .into_consumer();
        let done: &'static AtomicBool = leak(AtomicBool::new(false));
        let first = thread::spawn(move || {
            let mut tx = Spsc::<T>::attach(Region::loom(mem))
                .unwrap()
                .into_producer();
            tx.try_push(make(11)).unwrap();
            drop(tx);
            done.store(true, Ordering::Relaxed);
        });
        let second = thread::spawn(move || {
            // Waits for the first producer's end through a relaxed flag,
            // which orders nothing (only the ring's own orderings carry the
            // first's write here), then makes one producer: a handle per
            // retry would multiply the states loom explores by its closed
            // word's accesses, for nothing this model checks.
            if !(0..RETRIES).any(|_| {
                done.load(Ordering::Relaxed) || {
                    thread::yield_now();
                    false
                }
            }) {
                attached.store(true, Ordering::Relaxed);
                return false;
            }
            let mut tx = Spsc::<T>::attach(Region::loom(mem))
                .unwrap()
                .into_producer();
            attached.store(true, Ordering::Relaxed);
            // Take over after the first's element, if this producer sees it.
            tx.len() == 1 && tx.try_push(make(22)).is_ok()
        });
        // Pops once the second producer has attached (`attach` checks the
        // counters, which a pop moving `tail` under it would upset), and
        // before joining, so that only the ring orders the copies after the
        // writes: the flag is relaxed and orders nothing.
        let mut got = Vec::new();
        for _ in 0..RETRIES {
            if !attached.load(Ordering::Relaxed) {
                thread::yield_now();
                continue;
            }
            match rx.try_pop() {
                Ok(value) => got.push(value),
                Err(PopError::Empty) => thread::yield_now(),
                Err(err) => panic!("{err}"),
            }
            if got.len() == 2 {
                break;
            }
        }
        first.join().unwrap();
        if second.join().unwrap() {
            while let Ok(value) = rx.try_pop() {
                got.push(value);
            }
            assert_eq!(got, [make(11), make(22)]);
        } else {
            assert!(got.len() <= 1);
        }
    });
}

/// The consumer's side of the same rule: a consumer made after another
/// acquires `tail`, so its own `Release` store of `tail` carries the first
/// consumer's copies to a producer that only ever loads the second's, and
/// the producer does not overwrite a slot the first is still copying.
/// Weakening `Consumer::new`'s `Acquire` load of `tail` to `Relaxed` fails
/// this model.
#[test]
fn spsc_a_consumer_taking_over_carries_its_predecessors_reads() {
    model_bounded(2, || {
        let size = Spsc::<u64>::required_size(2).unwrap();
        let guard = PerExecution::new(size);
        let mem = guard.0;
        let attached: &'static AtomicBool = leak(AtomicBool::new(false));
        let mut tx = Spsc::<u64>::create(Region::loom(mem), 2)
            .unwrap()
            .into_producer();
        tx.push_slice(&[11, 22]).unwrap();
        let done: &'static AtomicBool = leak(AtomicBool::new(false));
        let first = thread::spawn(move || {
            let mut rx = Spsc::<u64>::attach(Region::loom(mem))
                .unwrap()
                .into_consumer();
            assert_eq!(rx.try_pop(), Ok(11));
            drop(rx);
            done.store(true, Ordering::Relaxed);
        });
        let second = thread::spawn(move || {
            // As in the producer's model: a relaxed flag, then one consumer.
            if !(0..RETRIES).any(|_| {
                done.load(Ordering::Relaxed) || {
                    thread::yield_now();
                    false
                }
            }) {
                attached.store(true, Ordering::Relaxed);
                return false;
            }
            let mut rx = Spsc::<u64>::attach(Region::loom(mem))
                .unwrap()
                .into_consumer();
            attached.store(true, Ordering::Relaxed);
            // Take over after the first's element, if this consumer sees it.
            if rx.len() != 1 {
                return false;
            }
            assert_eq!(rx.try_pop(), Ok(22));
            true
        });
        // Pushes into the first consumer's slot once the second has
        // attached, before joining: only the ring orders the write after the
        // first consumer's copy (the flag is relaxed and orders nothing).
        let mut pushed = false;
        for _ in 0..RETRIES {
            if attached.load(Ordering::Relaxed) && tx.try_push(33).is_ok() {
                pushed = true;
                break;
            }
            thread::yield_now();
        }
        first.join().unwrap();
        let took_over = second.join().unwrap();
        if pushed {
            // 33 waits; 22 too unless the second consumer took it.
            assert_eq!(tx.len(), if took_over { 1 } else { 2 });
        }
    });
}

/// Tries to attach up to `RETRIES` times while the region may be (re)created.
fn attach_eventually<T: ipc_primitives::Pod>(
    mem: &'static LoomMemory,
    mut judge: impl FnMut(AttachError),
) -> Option<Spsc<'static, T>> {
    for _ in 0..RETRIES {
        match Spsc::<T>::attach(Region::loom(mem)) {
            Ok(ring) => return Some(ring),
            Err(AttachError::NotInitialized) => thread::yield_now(),
            Err(other) => {
                judge(other);
                thread::yield_now();
            }
        }
    }
    None
}

#[test]
fn attach_racing_create_sees_the_whole_header_or_none() {
    model(|| {
        let size = Spsc::<u64>::required_size(2).unwrap();
        let mem: &'static LoomMemory = leak(LoomMemory::new(size));
        let attacher = thread::spawn(move || {
            let ring = attach_eventually::<u64>(mem, |err| {
                panic!("attach saw a half-written header: {err}")
            })?;
            assert_eq!(ring.capacity(), 2);
            // The counters and slots the creator zeroed are what this side sees.
            let mut tx = ring.into_producer();
            assert_eq!(tx.len(), 0);
            tx.try_push(7).unwrap();
            Some(())
        });
        let mut rx = Spsc::<u64>::create(Region::loom(mem), 2)
            .unwrap()
            .into_consumer();
        if attacher.join().unwrap().is_some() {
            assert_eq!(rx.try_pop(), Ok(7));
        }
    });
}

#[test]
fn attach_racing_a_re_creation_never_sees_a_mix() {
    model(|| {
        let size = Spsc::<[u32; 4]>::required_size(4).unwrap();
        let mem: &'static LoomMemory = leak(LoomMemory::new(size));
        // The old structure: a ring of `u64`, used once.
        let (mut tx, mut rx) = Spsc::<u64>::create(Region::loom(mem), 2).unwrap().split();
        tx.try_push(1).unwrap();
        assert_eq!(rx.try_pop(), Ok(1));
        let attacher = thread::spawn(move || {
            let old = ElementLayout::of::<u64>();
            let ring = attach_eventually::<[u32; 4]>(mem, |err| match err {
                AttachError::WrongElement { found, .. } if found == old => {}
                other => panic!("attach saw a mix of two headers: {other}"),
            })?;
            assert_eq!(ring.capacity(), 4, "the new header's capacity");
            let mut tx = ring.into_producer();
            assert_eq!(tx.len(), 0, "the new ring's counters");
            tx.try_push([9; 4]).unwrap();
            Some(())
        });
        let mut rx = Spsc::<[u32; 4]>::create(Region::loom(mem), 4)
            .unwrap()
            .into_consumer();
        if attacher.join().unwrap().is_some() {
            assert_eq!(rx.try_pop(), Ok([9; 4]));
        }
    });
}
