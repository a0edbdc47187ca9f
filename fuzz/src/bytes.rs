//! `bytes`: every record ring operation, differentially against a model.
//!
//! Input: one configuration byte (capacity 4 to 128 words, and the position
//! the ring starts from, so that positions wrap `u32`), then operations until
//! the input runs out ([`decode_op`]).
//!
//! The model is a `VecDeque` of the records in flight and the word positions
//! the documented rules give (a header word and `ceil(len / 8)` payload
//! words per record, padding to the end when a record would straddle it,
//! one word kept free after the last record for the marker, records of at
//! most `(capacity / 2 - 1) * 8` bytes). Checked after every
//! operation: every pop returns exactly the oldest record, or `Empty`,
//! `TooSmall { needed }` (the record stays) and nothing written past it;
//! `Full` and `TooLarge` come exactly when the model says; grants write in
//! place exactly where asked (checked in memory before the commit), refuse
//! exactly the writes that reach past the reservation, and commit the
//! memory's bytes (bytes not written keep what the words held); an abandoned
//! grant is never seen; `used_words`, `is_empty`, the shared counters and the
//! event's epoch agree with the model; the wake-up protocol
//! (`prepare_to_sleep`, `wake_needed`, `wait_or_sleep`) announces, consumes
//! and bumps exactly as documented. Handles are dropped and re-made at
//! random points and must resume where they were.

use ipc_primitives::bytes::{BlockingError, Consumer, OutOfBounds, PopError, Producer, RecordRing};

use crate::models::bytes::{DATA, Model, check, write_fits};
use crate::support::{Input, SharedMemory, Widths, offsets};

/// Most operations one input runs, so that every input's work is bounded.
pub const MAX_OPS: usize = 1000;

/// The `N` of `pop_vec`.
pub const VEC: usize = 64;

/// One operation, decoded from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `push` of a fresh record of this many bytes.
    Push(usize),
    /// `reserve(len)`, then `writes` writes (each decoded by [`next_write`]),
    /// then `commit` of `commit % (len + 1)` bytes, or drop.
    Reserve {
        /// Bytes reserved.
        len: usize,
        /// Writes into the grant.
        writes: usize,
        /// What to commit (else drop the grant).
        commit: Option<usize>,
    },
    /// `pop_into` a buffer of this many bytes.
    PopInto(usize),
    /// `pop_vec::<VEC>`.
    PopVec,
    /// `pop_with` a buffer of this many bytes.
    PopWith(usize),
    /// `Consumer::prepare_to_sleep`.
    PrepareToSleep,
    /// `Producer::wake_needed`.
    WakeNeeded,
    /// `Consumer::wait_or_sleep` with a sleeper that gives up after `sleeps`
    /// calls, or that pushes (and wakes) on its first call.
    WaitOrSleep {
        /// Looks before sleeping.
        spins: u32,
        /// Sleeps that return `Ok` before the sleeper gives up.
        sleeps: u32,
        /// The sleeper pushes a record and wakes the consumer on its first
        /// call.
        push_in_sleep: bool,
    },
    /// Drop both handles and make new ones.
    Reattach,
}

/// How many values an operation tag selects from (`tag % OP_TAGS`).
pub const OP_TAGS: u8 = 16;

/// A length for a ring whose largest record is `max`: any up to past it,
/// often 0 or exactly `max`.
fn length(input: &mut Input<'_>, max: usize) -> usize {
    match input.u8() % 8 {
        0 => 0,
        1 => max,
        2 => max + 1 + input.below(16),
        _ => input.below(max + 1),
    }
}

/// Decodes the operation `tag` selects for a ring whose largest record is
/// `max`, reading its arguments from `input`.
pub fn decode_op(tag: u8, input: &mut Input<'_>, max: usize) -> Op {
    match tag % OP_TAGS {
        0..=2 => Op::Push(length(input, max)),
        3..=5 => {
            let len = length(input, max);
            let byte = input.u8();
            Op::Reserve {
                len,
                writes: usize::from(byte % 4),
                commit: (byte & 0x80 == 0).then(|| input.below(max + 2)),
            }
        }
        6..=8 => Op::PopInto(length(input, max)),
        9 => Op::PopVec,
        10 => Op::PopWith(length(input, max)),
        11 => Op::PrepareToSleep,
        12 => Op::WakeNeeded,
        13 => {
            let byte = input.u8();
            Op::WaitOrSleep {
                spins: u32::from(byte % 4),
                sleeps: u32::from((byte >> 2) % 4),
                push_in_sleep: byte & 0x80 != 0,
            }
        }
        14 => Op::PopInto(max),
        _ => Op::Reattach,
    }
}

/// One write into a grant of `len` bytes: byte offset and bytes; may reach
/// past the grant (or overflow `usize`), which must be refused.
pub fn next_write<'a>(input: &mut Input<'a>, len: usize) -> (usize, &'a [u8]) {
    let sel = input.u8();
    let offset = if sel == 255 {
        usize::MAX - input.below(4)
    } else {
        input.below(len + 3)
    };
    (offset, input.bytes(len.min(200) + 2))
}

/// Applies one operation (not `Reattach`) to the ring in `memory` and the
/// model, and checks the result.
pub fn step(
    op: Op,
    input: &mut Input<'_>,
    memory: &SharedMemory,
    tx: &mut Producer<'_>,
    rx: &mut Consumer<'_>,
    model: &mut Model,
) {
    match op {
        Op::Push(len) => {
            let record = model.fresh(len);
            let expected = model.reserve(len);
            assert_eq!(tx.push(&record), expected, "push");
            if expected.is_ok() {
                model.commit(record, len);
            }
        }
        Op::Reserve {
            len,
            writes,
            commit,
        } => {
            let expected = model.reserve(len);
            let mut grant = match tx.reserve(len) {
                Err(err) => {
                    assert_eq!(Err(err), expected, "reserve");
                    return;
                }
                Ok(grant) => grant,
            };
            assert_eq!(expected, Ok(()), "reserve");
            assert_eq!(grant.len(), len);
            let at = model.payload_offset(len);
            let mut written = vec![None; len];
            for _ in 0..writes {
                let (offset, bytes) = next_write(input, len);
                let result = grant.write(offset, bytes);
                if write_fits(offset, bytes.len(), len) {
                    assert_eq!(result, Ok(()), "write in bounds");
                    for (slot, &byte) in written[offset..].iter_mut().zip(bytes) {
                        *slot = Some(byte);
                    }
                } else {
                    let expected = OutOfBounds {
                        offset,
                        len: bytes.len(),
                        reserved: len,
                    };
                    assert_eq!(result, Err(expected), "write out of bounds");
                }
            }
            // The writes are in place, in the words after the header.
            let held = memory.snapshot(at, len);
            for (i, (byte, write)) in held.iter().zip(&written).enumerate() {
                if let Some(write) = write {
                    assert_eq!(byte, write, "byte {i} of the grant in memory");
                }
            }
            if let Some(commit) = commit {
                let committed = commit % (len + 1);
                grant.commit(committed);
                model.commit(held[..committed].to_vec(), len);
            }
        }
        Op::PopInto(room) => {
            let mut buf = vec![0xa5; room + 8];
            let expected = model.expect_pop(room);
            let got = rx.pop_into(&mut buf[..room]);
            assert_eq!(got, expected.as_ref().map(Vec::len).map_err(|e| *e));
            let len = expected.map_or(0, |record| {
                assert_eq!(&buf[..record.len()], &record[..], "pop_into bytes");
                record.len()
            });
            assert!(
                buf[len..].iter().all(|&b| b == 0xa5),
                "pop_into wrote past the record"
            );
        }
        Op::PopVec => {
            let expected = model.expect_pop(VEC);
            let got = rx.pop_vec::<VEC>().map(|record| record.to_vec());
            assert_eq!(got, expected, "pop_vec");
        }
        Op::PopWith(room) => {
            let mut buf = vec![0; room];
            let expected = model.expect_pop(room);
            assert_eq!(rx.pop_with(&mut buf, <[u8]>::to_vec), expected, "pop_with");
        }
        Op::PrepareToSleep => {
            if model.queue.is_empty() {
                assert_eq!(rx.prepare_to_sleep(), Ok(Some(model.epoch)));
                model.announced = true;
            } else {
                assert_eq!(rx.prepare_to_sleep(), Ok(None));
                model.announced = false;
            }
        }
        Op::WakeNeeded => {
            assert_eq!(tx.wake_needed(), model.announced, "wake_needed");
            if model.announced {
                model.announced = false;
                model.epoch = model.epoch.wrapping_add(1);
            }
        }
        Op::WaitOrSleep {
            spins,
            sleeps,
            push_in_sleep,
        } => {
            let extra = model.fresh(5);
            let waiting = !model.queue.is_empty();
            let mut calls = 0;
            let result = rx.wait_or_sleep(spins, |event, epoch| {
                calls += 1;
                assert!(
                    calls <= sleeps + 1,
                    "wait_or_sleep slept after the sleeper gave up"
                );
                assert_eq!(event.epoch(), epoch, "asked to sleep on a stale epoch");
                if push_in_sleep && calls == 1 {
                    assert_eq!(tx.push(&extra), Ok(()), "push while the consumer sleeps");
                    assert!(tx.wake_needed(), "the sleeping consumer was not announced");
                    return Ok(());
                }
                if calls > sleeps { Err(()) } else { Ok(()) }
            });
            if waiting {
                // Found at the first look, without announcing: an earlier
                // announcement stands.
                assert_eq!(result, Ok(()), "wait_or_sleep with records waiting");
                assert_eq!(calls, 0, "slept with records waiting");
            } else if push_in_sleep {
                assert_eq!(result, Ok(()), "wait_or_sleep after a push and wake");
                assert_eq!(calls, 1);
                model.commit(extra, 5);
                model.announced = false;
                model.epoch = model.epoch.wrapping_add(1);
            } else {
                assert_eq!(result, Err(BlockingError::Sleep(())), "the sleeper gave up");
                assert_eq!(calls, sleeps + 1);
                model.announced = false;
            }
        }
        Op::Reattach => unreachable!("handled by the caller"),
    }
    check(tx, rx, model);
}

/// The shared counters of the ring in `memory`.
fn counters(memory: &SharedMemory) -> (u32, u32) {
    (
        memory.peek_u32(offsets::HEAD),
        memory.peek_u32(offsets::TAIL),
    )
}

/// Re-attaches to the ring in `memory`: one `RecordRing` split in two, or a
/// side per attachment (as two processes would).
fn attach(memory: &SharedMemory, round: usize) -> (Producer<'_>, Consumer<'_>) {
    let ring = RecordRing::attach(memory.region()).expect("attach to an intact ring");
    if round.is_multiple_of(2) {
        ring.split()
    } else {
        let rx = RecordRing::attach(memory.region()).expect("attach to an intact ring");
        (ring.into_producer(), rx.into_consumer())
    }
}

fn run_ring(capacity: u32, start: u32, input: &mut Input<'_>) {
    // Exactly the ring's size, so that a data access past the end is an
    // out-of-bounds access AddressSanitizer reports.
    let size = RecordRing::required_size(capacity).expect("a small ring");
    let memory = SharedMemory::zeroed(size, Widths::WideFrom(DATA));
    RecordRing::create(memory.region(), capacity).expect("create");
    memory.poke(offsets::HEAD, &start.to_ne_bytes());
    memory.poke(offsets::TAIL, &start.to_ne_bytes());
    let mut model = Model::new(capacity, start);
    let mut ops = 0;
    let mut round = 0;
    let (mut tx, mut rx) = attach(&memory, round);
    check(&tx, &rx, &model);
    while ops < MAX_OPS && !input.is_empty() {
        ops += 1;
        let tag = input.u8();
        match decode_op(tag, input, model.max()) {
            Op::Reattach => {
                assert_eq!(counters(&memory), (model.head, model.tail), "counters");
                round += 1;
                (tx, rx) = attach(&memory, round);
                // New handles resume exactly where the old ones stopped.
                check(&tx, &rx, &model);
            }
            op => step(op, input, &memory, &mut tx, &mut rx, &mut model),
        }
    }
    assert_eq!(counters(&memory), (model.head, model.tail), "counters");
    let mut buf = vec![0; model.max()];
    while let Some(record) = model.pop() {
        assert_eq!(rx.pop_into(&mut buf), Ok(record.len()), "drain");
        assert_eq!(&buf[..record.len()], &record[..], "drain bytes");
    }
    assert_eq!(rx.pop_into(&mut buf), Err(PopError::Empty), "drained");
}

/// Runs one input.
pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let config = input.u8();
    let capacity = 4u32 << (config % 6);
    let start = match (config >> 3) % 8 {
        0..=2 => 0,
        3 | 4 => u32::MAX - u32::from(input.u8()),
        5 => (1 << 31) - 128 + u32::from(input.u8()),
        _ => input.u32(),
    };
    run_ring(capacity, start, &mut input);
}
