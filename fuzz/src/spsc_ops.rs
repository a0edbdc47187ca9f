//! `spsc_ops`: every ring operation, differentially against a `VecDeque` model.
//!
//! Input: one configuration byte, then operations until the input runs out
//! ([`next_op`]). The configuration byte gives the capacity (`1 << (byte %
//! 7)`, 1 to 64), a `StaticSpsc` (bit 3 clear) or a ring made by
//! `Spsc::create` in [`SharedMemory`] (bit 3 set), the element type (bits 4
//! and 5: `[u8; 13]`, `[u32; 3]` or `[u64; 7]`, whose slots are stamped, or
//! `[u8; 61]`, past the largest stamped stride, whose ring takes the index
//! protocol), and for a region (bits 6 and 7) the counter value the ring
//! starts from, so that counters wrap.
//!
//! Checked after every operation: every pop returns exactly the model's element;
//! `Full` and `Empty` come exactly when the model is full or empty; `len`,
//! `is_empty`, `free_slots`, `capacity` and the event's epoch agree with the
//! model; grants write in place (bytes not written keep what the slot held, as
//! documented), `write_bytes` is refused exactly when it reaches past the
//! element; the wake-up protocol (`prepare_to_sleep`, `wake_needed`,
//! `pop_or_sleep`) announces, consumes and bumps exactly as documented. Handles
//! are dropped and re-made at random points and must resume where they were.

use ipc_primitives::spsc::{
    BlockingError, Consumer, OutOfBounds, PopError, Producer, PushError, Spsc, StaticSpsc,
};

use crate::models::spsc::{Model, check, write_fits};
use crate::support::{Elem, Input, SharedMemory, Widths, offsets};

/// Most operations one input runs, so that every input's work is bounded.
pub const MAX_OPS: usize = 1000;

/// One ring operation, decoded from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `try_push` of a fresh value.
    Push,
    /// `push_slice` of this many fresh values.
    PushSlice(usize),
    /// `try_pop`.
    Pop,
    /// `pop_slice` a buffer of this many elements.
    PopSlice(usize),
    /// `grant`, then this many writes (each decoded by [`next_write`]), then
    /// `commit` or drop.
    Grant {
        /// Writes into the granted slot.
        writes: usize,
        /// Commit (else drop the grant).
        commit: bool,
    },
    /// `Consumer::prepare_to_sleep`.
    PrepareToSleep,
    /// `Producer::wake_needed`.
    WakeNeeded,
    /// `Consumer::pop_or_sleep` with a sleeper that gives up after `sleeps`
    /// calls, or that pushes (and wakes) on its first call.
    PopOrSleep {
        /// `try_pop` attempts before sleeping.
        spins: u32,
        /// Sleeps that return `Ok` before the sleeper gives up.
        sleeps: u32,
        /// The sleeper pushes a value and wakes the consumer on its first call.
        push_in_sleep: bool,
    },
    /// Drop both handles and make new ones.
    Reattach,
}

/// How many values an operation tag selects from (`tag % OP_TAGS`).
pub const OP_TAGS: u8 = 16;

/// Decodes the operation `tag` selects, reading its arguments from `input`;
/// batch lengths go up to twice the capacity, so batches overflow the ring.
pub fn decode_op(tag: u8, input: &mut Input<'_>, capacity: usize) -> Op {
    match tag % OP_TAGS {
        0..=2 => Op::Push,
        3 | 4 => Op::PushSlice(input.below(2 * capacity + 2)),
        5..=7 => Op::Pop,
        8 | 9 => Op::PopSlice(input.below(2 * capacity + 2)),
        10 | 11 => {
            let byte = input.u8();
            Op::Grant {
                writes: usize::from(byte % 4),
                commit: byte & 0x80 == 0,
            }
        }
        12 => Op::PrepareToSleep,
        13 => Op::WakeNeeded,
        14 => {
            let byte = input.u8();
            Op::PopOrSleep {
                spins: u32::from(byte % 4),
                sleeps: u32::from((byte >> 2) % 4),
                push_in_sleep: byte & 0x80 != 0,
            }
        }
        _ => Op::Reattach,
    }
}

/// The next operation, or `None` when the input is used up.
pub fn next_op(input: &mut Input<'_>, capacity: usize) -> Option<Op> {
    if input.is_empty() {
        return None;
    }
    let tag = input.u8();
    Some(decode_op(tag, input, capacity))
}

/// One write into a granted slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantWrite<'a> {
    /// `Grant::write` of a fresh value.
    Whole,
    /// `Grant::write_bytes(offset, bytes)`; may reach past the element (or
    /// overflow `usize`), which must be refused.
    Bytes {
        /// Byte offset in the element.
        offset: usize,
        /// The bytes, taken from the input.
        bytes: &'a [u8],
    },
}

/// Decodes one write into a slot of `size`-byte elements.
pub fn next_write<'a>(input: &mut Input<'a>, size: usize) -> GrantWrite<'a> {
    let sel = input.u8();
    if sel < 64 {
        return GrantWrite::Whole;
    }
    let offset = if sel == 255 {
        usize::MAX - input.below(4)
    } else {
        input.below(size + 3)
    };
    GrantWrite::Bytes {
        offset,
        bytes: input.bytes(size + 2),
    }
}

/// Applies one operation (not `Reattach`) to the ring and the model and checks
/// the result.
pub fn step<T: Elem>(
    op: Op,
    input: &mut Input<'_>,
    tx: &mut Producer<'_, T>,
    rx: &mut Consumer<'_, T>,
    model: &mut Model<T>,
) {
    let size = core::mem::size_of::<T>();
    match op {
        Op::Push => {
            let value = model.fresh();
            if model.free() == 0 {
                assert_eq!(tx.try_push(value), Err(PushError::Full(value)));
            } else {
                assert_eq!(tx.try_push(value), Ok(()));
                model.push(value);
            }
        }
        Op::PushSlice(len) => {
            let items: Vec<T> = (0..len).map(|_| model.fresh()).collect();
            let expected = len.min(model.free());
            assert_eq!(tx.push_slice(&items), Ok(expected), "push_slice count");
            for &item in &items[..expected] {
                model.push(item);
            }
        }
        Op::Pop => assert_eq!(rx.try_pop(), model.pop().ok_or(PopError::Empty)),
        Op::PopSlice(len) => {
            let sentinel = T::make(0);
            let mut out = vec![sentinel; len];
            let expected = len.min(model.queue.len());
            assert_eq!(rx.pop_slice(&mut out), Ok(expected), "pop_slice count");
            for got in &out[..expected] {
                assert_eq!(Some(*got), model.pop(), "pop_slice element");
            }
            assert!(
                out[expected..].iter().all(|v| *v == sentinel),
                "pop_slice wrote past the elements it popped"
            );
        }
        Op::Grant { writes, commit } => {
            if model.free() == 0 {
                assert!(
                    matches!(tx.grant(), Err(PushError::Full(()))),
                    "grant when full"
                );
                return;
            }
            let mut grant = tx.grant().expect("a slot is free");
            for _ in 0..writes {
                match next_write(input, size) {
                    GrantWrite::Whole => {
                        let value = model.fresh();
                        grant.write(&value);
                        *model.next_slot() = value;
                    }
                    GrantWrite::Bytes { offset, bytes } => {
                        let result = grant.write_bytes(offset, bytes);
                        if write_fits(offset, bytes.len(), size) {
                            assert_eq!(result, Ok(()), "write_bytes in bounds");
                            model.next_slot().as_mut_bytes()[offset..offset + bytes.len()]
                                .copy_from_slice(bytes);
                        } else {
                            let len = bytes.len();
                            assert_eq!(result, Err(OutOfBounds { offset, len, size }));
                        }
                    }
                }
            }
            if commit {
                grant.commit();
                let value = *model.next_slot();
                model.push(value);
            }
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
        Op::PopOrSleep {
            spins,
            sleeps,
            push_in_sleep,
        } => {
            let extra = model.fresh();
            let mut calls = 0;
            let mut pushed = false;
            let result = rx.pop_or_sleep(spins, |event, epoch| {
                calls += 1;
                assert!(
                    calls <= sleeps + 1,
                    "pop_or_sleep slept after the sleeper gave up"
                );
                assert_eq!(event.epoch(), epoch, "asked to sleep on a stale epoch");
                if push_in_sleep && !pushed {
                    assert_eq!(tx.try_push(extra), Ok(()), "push while the consumer sleeps");
                    assert!(tx.wake_needed(), "the sleeping consumer was not announced");
                    pushed = true;
                    return Ok(());
                }
                if calls > sleeps { Err(()) } else { Ok(()) }
            });
            if let Some(front) = model.pop() {
                assert_eq!(result, Ok(front), "pop_or_sleep with elements waiting");
                // Popped at the first look, without announcing: an earlier
                // announcement stands.
                assert_eq!(calls, 0, "slept with elements waiting");
            } else if push_in_sleep {
                assert_eq!(result, Ok(extra), "pop_or_sleep after a push and wake");
                assert_eq!(calls, 1);
                model.push(extra);
                assert_eq!(model.pop(), Some(extra));
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

/// Runs operations on one pair of handles until the input runs out (`false`)
/// or asks for new handles (`true`).
fn run_segment<T: Elem>(
    input: &mut Input<'_>,
    ops: &mut usize,
    mut tx: Producer<'_, T>,
    mut rx: Consumer<'_, T>,
    model: &mut Model<T>,
) -> bool {
    // New handles resume exactly where the old ones stopped.
    check(&tx, &rx, model);
    while *ops < MAX_OPS {
        *ops += 1;
        match next_op(input, model.capacity) {
            None => return false,
            Some(Op::Reattach) => return true,
            Some(op) => step(op, input, &mut tx, &mut rx, model),
        }
    }
    false
}

/// Pops everything left and compares it with the model.
fn drain<T: Elem>(mut rx: Consumer<'_, T>, model: &mut Model<T>) {
    let mut out = vec![T::make(0); model.capacity + 1];
    let left: Vec<T> = core::iter::from_fn(|| model.pop()).collect();
    assert_eq!(rx.pop_slice(&mut out), Ok(left.len()), "drain count");
    assert_eq!(&out[..left.len()], &left[..], "drain elements");
    assert_eq!(rx.try_pop(), Err(PopError::Empty));
}

fn run_static<T: Elem, const N: usize>(input: &mut Input<'_>) {
    let mut ring = StaticSpsc::<T, N>::new();
    let mut model = Model::new(N, 0);
    let mut ops = 0;
    loop {
        let (tx, rx) = ring.split();
        if !run_segment(input, &mut ops, tx, rx, &mut model) {
            break;
        }
    }
    drain(ring.split().1, &mut model);
}

fn run_static_any<T: Elem>(capacity: u32, input: &mut Input<'_>) {
    match capacity {
        1 => run_static::<T, 1>(input),
        2 => run_static::<T, 2>(input),
        4 => run_static::<T, 4>(input),
        8 => run_static::<T, 8>(input),
        16 => run_static::<T, 16>(input),
        32 => run_static::<T, 32>(input),
        64 => run_static::<T, 64>(input),
        _ => unreachable!("capacities are powers of two up to 64"),
    }
}

/// Re-attaches to the ring in `memory`, alternating between one `Spsc` split
/// in two and two separate attachments through two regions (as two processes
/// would).
fn attach<T: Elem>(
    memory: &SharedMemory,
    capacity: u32,
    round: usize,
) -> (Producer<'_, T>, Consumer<'_, T>) {
    let ring = Spsc::<T>::attach(memory.region()).expect("attach to an intact ring");
    assert_eq!(ring.capacity(), capacity);
    if round.is_multiple_of(2) {
        ring.split()
    } else {
        let rx = Spsc::<T>::attach(memory.region()).expect("attach to an intact ring");
        (ring.into_producer(), rx.into_consumer())
    }
}

/// The shared counters of the ring in `memory`.
fn counters(memory: &SharedMemory) -> (u32, u32) {
    let at = |offset: usize| {
        let mut raw = [0; 4];
        memory.peek(offset, &mut raw);
        u32::from_ne_bytes(raw)
    };
    (at(offsets::HEAD), at(offsets::TAIL))
}

fn run_region<T: Elem>(capacity: u32, start: u32, input: &mut Input<'_>) {
    // Exactly the ring's size, so that a slot access past the end is an
    // out-of-bounds access AddressSanitizer reports.
    let size = Spsc::<T>::required_size(capacity).expect("a small ring");
    let memory = SharedMemory::zeroed(size, Widths::ring::<T>());
    let mut model = Model::new(capacity as usize, start);
    if start != 0 {
        Spsc::<T>::create(memory.region(), capacity).expect("create");
        memory.poke(offsets::HEAD, &start.to_ne_bytes());
        memory.poke(offsets::TAIL, &start.to_ne_bytes());
    }
    let mut ops = 0;
    for round in 0.. {
        let (tx, rx) = if round == 0 && start == 0 {
            let ring = Spsc::<T>::create(memory.region(), capacity).expect("create");
            assert_eq!(ring.capacity(), capacity);
            ring.split()
        } else {
            attach(&memory, capacity, round)
        };
        let more = run_segment(input, &mut ops, tx, rx, &mut model);
        assert_eq!(
            counters(&memory),
            (model.head, model.tail),
            "shared counters"
        );
        if !more {
            break;
        }
    }
    let (_, rx) = attach(&memory, capacity, 0);
    drain(rx, &mut model);
}

/// Runs one input.
pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let config = input.u8();
    let capacity = 1u32 << (config % 7);
    let in_region = config & 0x08 != 0;
    match (config >> 4) & 3 {
        0 => run_any::<[u8; 13]>(in_region, config, capacity, &mut input),
        1 => run_any::<[u32; 3]>(in_region, config, capacity, &mut input),
        2 => run_any::<[u64; 7]>(in_region, config, capacity, &mut input),
        _ => run_any::<[u8; 61]>(in_region, config, capacity, &mut input),
    }
}

/// Runs a ring of `T`: static, or in a region whose counters start where
/// the configuration byte's top bits say.
fn run_any<T: Elem>(in_region: bool, config: u8, capacity: u32, input: &mut Input<'_>) {
    if !in_region {
        run_static_any::<T>(capacity, input);
        return;
    }
    let start = match config >> 6 {
        0 => 0,
        1 => u32::MAX - u32::from(input.u8()),
        2 => (1 << 31) - 128 + u32::from(input.u8()),
        _ => input.u32(),
    };
    run_region::<T>(capacity, start, input);
}
