//! loom model checks of the broadcast ring (`src/broadcast/`): every
//! interleaving up to the preemption bound, and every value the memory model
//! lets a load return.
//!
//! - Laps: a writer publishes three two-word messages into two slots (so the
//!   third overwrites the first) while a reader receives. Every message the
//!   reader accepts is whole and the one it was due; every gap is a `Lagged`
//!   whose count is exact; an honest writer is never reported `Corrupted`.
//!   The payload words are atomics here too (readers race with the writer by
//!   design), so what this checks is the stamp protocol: weakening any of its
//!   orderings (the writer's busy-stamp `Release` store, its `Release` fence,
//!   its whole-stamp and `published` `Release` stores, or any of the reader's
//!   `Acquire` fences) makes the model return a torn or stale message or a
//!   false `Corrupted`.
//! - The same with 64-byte messages (counted slots: no stamps, copies
//!   validated against the writer's `intent`), and with batches
//!   (`recv_slice`) in both protocols: a counted batch is accepted or
//!   dropped whole on one `intent` load. Removing the writer's `Release`
//!   fence after `intent`, or the reader's `Acquire` fence before its
//!   `intent` load, makes the counted models return a torn message;
//!   weakening the writer's `intent` store to `Relaxed` makes them report an
//!   honest writer `Corrupted`, and its `published` store, a stale message.
//! - Joining: a reader joining at the newest or the oldest message while the
//!   writer publishes gets whole messages in order, from where it joined,
//!   in both protocols.
//! - Sleeping: two readers asleep on the doorbell (a futex modelled by a
//!   mutex and a condition variable) are both woken by the writer's one wake.
//!   A reader that withdrew its announcement on finding a message would hide
//!   the other's: loom reports that as a deadlock.
//!
//! Run with
//! `RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test --release --test loom_broadcast`.
//! The preemption bound is `PREEMPTIONS` in `tests/loom_support` unless `LOOM_MAX_PREEMPTIONS`
//! is set.
#![cfg(loom)]

use ipc_primitives::broadcast::{Broadcast, Reader, RecvError, Start, Writer};
use ipc_primitives::event::Event;
use ipc_primitives::{LoomMemory, Region};
use loom::sync::{Arc, Condvar, Mutex};
use loom::thread;

mod loom_support;
use loom_support::model;

/// Receive attempts a reader makes while the writer runs. Under loom a thread
/// that yields is not resumed until its peer has run, so a few suffice.
const ATTEMPTS: usize = 4;

/// Loom memory for a ring of `capacity` `T`s, leaked (threads spawned by
/// loom need `'static` data; each execution leaks its small ring).
fn memory<T: ipc_primitives::Pod>(capacity: u32) -> &'static LoomMemory {
    let size = Broadcast::<T>::required_size(capacity).unwrap();
    Box::leak(Box::new(LoomMemory::new(size)))
}

/// A ring of `capacity` `T`s in fresh loom memory.
fn ring<T: ipc_primitives::Pod>(capacity: u32) -> Broadcast<'static, T> {
    Broadcast::create(Region::loom(memory::<T>(capacity)), capacity).unwrap()
}

/// Message `position`: every word `position + 1`, so a torn or stale copy
/// (a zeroed slot, or a mix of two messages) shows.
fn message<const N: usize>(position: u32) -> [u64; N] {
    [u64::from(position) + 1; N]
}

/// Two-word messages: stamped slots.
const STAMPED: usize = 2;
/// Eight-word (64-byte) messages: counted slots.
const COUNTED: usize = 8;

/// How a reader receives: one message per call, or up to this many.
#[derive(Debug, Clone, Copy)]
enum Receive {
    One,
    Batch(usize),
}

/// What a reader got: for each result, in order, and where it stands.
#[derive(Debug, Default)]
struct Tally {
    received: u64,
    missed: u64,
}

/// One receive by `reader`, checked: every message must be whole and the one
/// at its position; a lap must skip exactly the distance it moved the
/// reader; `Corrupted` never comes from this writer. Returns whether it
/// received or skipped anything.
fn receive<const N: usize>(
    reader: &mut Reader<'static, [u64; N]>,
    how: Receive,
    tally: &mut Tally,
) -> bool {
    let position = reader.position();
    let got = match how {
        Receive::One => reader.try_recv().map(|value| vec![value]),
        Receive::Batch(len) => {
            let mut out = vec![[0; N]; len];
            reader.recv_slice(&mut out).map(|count| {
                out.truncate(count);
                out
            })
        }
    };
    match got {
        Ok(values) => {
            for (value, at) in values.iter().zip(position..) {
                assert_eq!(*value, message(at), "torn or stale at {at}");
            }
            let count = values.len() as u32;
            assert!(count >= 1);
            assert_eq!(reader.position(), position.wrapping_add(count));
            tally.received += u64::from(count);
            true
        }
        Err(RecvError::Lagged { missed }) => {
            assert_eq!(
                u64::from(reader.position().wrapping_sub(position)),
                missed,
                "a lap's count is the distance skipped"
            );
            tally.missed += missed;
            true
        }
        Err(RecvError::Empty) => false,
        Err(RecvError::Corrupted) => panic!("an honest writer reported corrupt at {position}"),
    }
}

/// Publishes messages `0..count`.
fn publish<const N: usize>(mut writer: Writer<'static, [u64; N]>, count: u32) {
    for position in 0..count {
        writer.publish(&message(position));
    }
}

/// A writer publishes three messages into two slots while a reader receives
/// `how`: every message whole and in order, every gap counted.
fn laps<const N: usize>(how: Receive) {
    model(move || {
        let ring = ring::<[u64; N]>(2);
        let mut reader = ring.reader(Start::Oldest);
        let writer = thread::spawn(move || publish(ring.into_writer(), 3));
        let mut tally = Tally::default();
        for _ in 0..ATTEMPTS {
            if !receive(&mut reader, how, &mut tally) {
                thread::yield_now();
            }
        }
        writer.join().unwrap();
        while receive(&mut reader, how, &mut tally) {}
        assert_eq!(tally.received + tally.missed, 3, "{how:?}: {tally:?}");
        assert_eq!(reader.position(), 3);
    });
}

#[test]
fn laps_are_counted_exactly_and_copies_are_never_torn() {
    laps::<STAMPED>(Receive::One);
}

#[test]
fn a_stamped_batch_receives_whole_messages_and_counts_laps() {
    laps::<STAMPED>(Receive::Batch(2));
}

#[test]
fn counted_slots_drop_every_copy_the_writer_overwrote() {
    laps::<COUNTED>(Receive::One);
}

#[test]
fn a_counted_batch_is_validated_whole_by_one_intent_load() {
    laps::<COUNTED>(Receive::Batch(2));
}

/// A reader joining at `start` while the writer publishes messages 1 and 2
/// starts where it joined and gets the rest.
fn join<const N: usize>(start: Start) {
    model(move || {
        let mem = memory::<[u64; N]>(2);
        let mut writer = Broadcast::<[u64; N]>::create(Region::loom(mem), 2)
            .unwrap()
            .into_writer();
        writer.publish(&message(0));
        let writing = thread::spawn(move || {
            writer.publish(&message(1));
            writer.publish(&message(2));
        });
        // Another mapping's reader, joining while the writer writes.
        let mut reader = Broadcast::<[u64; N]>::attach(Region::loom(mem))
            .unwrap()
            .into_reader(start);
        let joined = reader.position();
        assert!(joined <= 2, "{start:?} joined at {joined}");
        let mut tally = Tally::default();
        for _ in 0..ATTEMPTS {
            if !receive(&mut reader, Receive::One, &mut tally) {
                thread::yield_now();
            }
        }
        writing.join().unwrap();
        while receive(&mut reader, Receive::One, &mut tally) {}
        assert_eq!(
            tally.received + tally.missed,
            u64::from(3 - joined),
            "{start:?}: {tally:?}"
        );
    });
}

#[test]
fn a_reader_joining_while_the_writer_publishes_starts_where_it_joined() {
    for start in [Start::Newest, Start::Oldest] {
        join::<STAMPED>(start);
        join::<COUNTED>(start);
    }
}

/// A futex on the doorbell's epoch: the mutex plays the kernel's bucket lock.
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

    fn wake_all(&self) {
        let _guard = self.lock.lock().unwrap();
        self.woken.notify_all();
    }
}

#[test]
fn one_wake_wakes_every_sleeping_reader() {
    model(|| {
        let ring = ring::<u64>(2);
        let futex = Arc::new(Futex::default());
        let sleeper = |mut reader: Reader<'static, u64>, futex: Arc<Futex>| {
            move || {
                let got = reader.recv_or_sleep(0, |event, epoch| {
                    futex.sleep(event, epoch);
                    Ok::<(), ()>(())
                });
                assert_eq!(got, Ok(7));
            }
        };
        let other = thread::spawn(sleeper(ring.reader(Start::Next), Arc::clone(&futex)));
        let mut mine = sleeper(ring.reader(Start::Next), Arc::clone(&futex));
        let mut writer = ring.into_writer();
        let writing = thread::spawn(move || {
            writer.publish(&7);
            if writer.wake_needed() {
                futex.wake_all();
            }
        });
        mine();
        other.join().unwrap();
        writing.join().unwrap();
    });
}
