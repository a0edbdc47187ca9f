//! `spsc_hostile`: the `spsc_ops` operations on a ring whose shared bytes a
//! hostile peer rewrites between operations.
//!
//! Input: one configuration byte (capacity `1 << (byte % 7)`, 1 to 64; bits 3
//! and 4 the element: `[u8; 13]`, `[u32; 3]` or `[u64; 7]`, whose slots are
//! stamped, or `[u8; 61]`, whose ring takes the index protocol, with slots of
//! payload alone), then steps until the input runs out: a byte below
//! [`HOSTILE_TAG`] is a ring operation as in `spsc_ops` (including re-attaching
//! the handles, which here also re-attaches one side only, or re-creates the
//! ring as a restarting creator would, optionally with a rewrite between the
//! attach or create and making the handles); a byte from it up rewrites bytes
//! of the region: header fields, the `head` (offset 128) and `tail` (256)
//! counters, the `ready` event (384), the slots (from 512: stamps and
//! payloads, or payloads alone) or anywhere.
//!
//! The ring lives in [`SharedMemory`]: an allocation exactly as long as the
//! region, so AddressSanitizer reports any access past its end. Checked:
//! - no panic, no out-of-bounds access, no hang (every call returns after
//!   bounded work; the harness's own loops are bounded too);
//! - every result is an element or a typed error, a refused push hands back
//!   the very value offered, batch counts never exceed the batch or the
//!   capacity, and `pop_slice` writes nothing past the elements it reports;
//! - `len() <= capacity()` on both sides, always;
//! - `attach` returns exactly what the documented layout says
//!   ([`expected_attach`]): `Ok` only on a valid header and counters;
//! - while the peer has rewritten nothing that changes what the handles see,
//!   everything agrees exactly with the `spsc_ops` model. Rewritten slot bytes
//!   update the model (the consumer must pop exactly what memory holds);
//!   rewritten counters or event words end exact checking until the ring is
//!   re-created, after which the model is rebuilt from memory and checked again;
//! - a `head` rewritten under an exact model gives the next pop exactly what
//!   the protocol of the ring's mode says ([`pop_after_head`]): with stamps, a
//!   `head` up to a ring's worth behind `tail` is an empty ring, without them
//!   it is corrupt, and a `head` counting an element makes the consumer pop
//!   the slot as memory holds it, or, with stamps, find it unstamped.

use ipc_primitives::spsc::{Consumer, PopError, Producer, Spsc};

use crate::models::spsc::{Model, check, write_fits};
use crate::spsc_ops::{GrantWrite, MAX_OPS, Op, decode_op, next_write, step};
use crate::support::{
    Elem, Expect, Input, SharedMemory, Widths, expected_attach, offsets, spsc_slot, spsc_stamp,
};

/// Step tags from this value up are hostile rewrites; below it, ring operations.
pub const HOSTILE_TAG: u8 = 0xa0;

/// Runs one input.
pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let config = input.u8();
    let capacity = 1u32 << (config % 7);
    match (config >> 3) & 3 {
        0 => run_ring::<[u8; 13]>(capacity, &mut input),
        1 => run_ring::<[u32; 3]>(capacity, &mut input),
        2 => run_ring::<[u64; 7]>(capacity, &mut input),
        _ => run_ring::<[u8; 61]>(capacity, &mut input),
    }
}

/// A model of the ring as memory now holds it, right after `Spsc::create`:
/// counters zero, event reset, slots as they are.
fn model_from_memory<T: Elem>(memory: &SharedMemory, capacity: u32) -> Model<T> {
    let mut model = Model::new(capacity as usize, 0);
    refresh_slots(memory, &mut model);
    model
}

/// Re-reads every slot from memory, and the queued elements from their slots
/// (an element stays in its slot until popped).
fn refresh_slots<T: Elem>(memory: &SharedMemory, model: &mut Model<T>) {
    let size = core::mem::size_of::<T>();
    let mut raw = vec![0; size];
    for (index, slot) in model.slots.iter_mut().enumerate() {
        memory.peek(
            offsets::SLOTS + index * spsc_slot::<T>() + spsc_stamp::<T>(),
            &mut raw,
        );
        *slot = T::from_raw(&raw);
    }
    let mask = model.capacity - 1;
    let tail = model.tail as usize;
    for (k, value) in model.queue.iter_mut().enumerate() {
        *value = model.slots[tail.wrapping_add(k) & mask];
    }
}

/// Checks what must hold whatever the peer wrote.
fn invariants<T: Elem>(tx: &Producer<'_, T>, rx: &Consumer<'_, T>) {
    assert!(
        tx.len() <= tx.capacity() as usize,
        "producer len above capacity"
    );
    assert!(
        rx.len() <= rx.capacity() as usize,
        "consumer len above capacity"
    );
    assert_eq!(
        tx.free_slots(),
        tx.capacity() as usize - tx.len(),
        "free_slots"
    );
    assert!(tx.capacity().is_power_of_two() && tx.capacity() <= 64);
    assert!(rx.capacity().is_power_of_two() && rx.capacity() <= 64);
}

/// Applies one operation (not `Reattach`) with no model: only what holds for
/// any memory contents is checked.
fn loose_step<T: Elem>(
    op: Op,
    input: &mut Input<'_>,
    tx: &mut Producer<'_, T>,
    rx: &mut Consumer<'_, T>,
    made: &mut u64,
) {
    let size = core::mem::size_of::<T>();
    let mut fresh = || {
        *made += 1;
        T::make(*made)
    };
    match op {
        Op::Push => {
            let value = fresh();
            match tx.try_push(value) {
                Ok(()) => {}
                Err(err) => {
                    let back = err.into_inner();
                    assert_eq!(back, value, "a refused push hands back its value");
                }
            }
        }
        Op::PushSlice(len) => {
            let items: Vec<T> = (0..len).map(|_| fresh()).collect();
            if let Ok(count) = tx.push_slice(&items) {
                assert!(
                    count <= len && count <= tx.capacity() as usize,
                    "push_slice count {count}"
                );
            }
        }
        Op::Pop => {
            let _ = rx.try_pop();
        }
        Op::PopSlice(len) => {
            let sentinel = T::make(0);
            let mut out = vec![sentinel; len];
            let count = rx.pop_slice(&mut out).unwrap_or(0);
            assert!(
                count <= len && count <= rx.capacity() as usize,
                "pop_slice count {count}"
            );
            assert!(
                out[count..].iter().all(|v| *v == sentinel),
                "pop_slice wrote past the elements it popped"
            );
        }
        Op::Grant { writes, commit } => {
            let Ok(mut grant) = tx.grant() else {
                return;
            };
            for _ in 0..writes {
                match next_write(input, size) {
                    GrantWrite::Whole => grant.write(&fresh()),
                    GrantWrite::Bytes { offset, bytes } => {
                        let fits = write_fits(offset, bytes.len(), size);
                        assert_eq!(
                            grant.write_bytes(offset, bytes).is_ok(),
                            fits,
                            "write_bytes bounds"
                        );
                    }
                }
            }
            if commit {
                grant.commit();
            }
        }
        Op::PrepareToSleep => {
            let _ = rx.prepare_to_sleep();
        }
        Op::WakeNeeded => {
            let _ = tx.wake_needed();
        }
        Op::PopOrSleep {
            spins,
            sleeps,
            push_in_sleep,
        } => {
            let extra = fresh();
            let mut calls = 0;
            let _ = rx.pop_or_sleep(spins, |event, epoch| {
                calls += 1;
                assert!(
                    calls <= sleeps + 2,
                    "pop_or_sleep slept after the sleeper gave up"
                );
                assert_eq!(event.epoch(), epoch, "asked to sleep on a stale epoch");
                if push_in_sleep && calls == 1 {
                    let _ = tx.try_push(extra);
                    let _ = tx.wake_needed();
                    return Ok(());
                }
                if calls > sleeps { Err(()) } else { Ok(()) }
            });
        }
        Op::Reattach => unreachable!("handled by the caller"),
    }
}

/// Where a hostile rewrite lands.
fn hostile_write<'a>(input: &mut Input<'a>, memory: &SharedMemory) -> (usize, Vec<u8>) {
    let len = memory.size();
    let near = |input: &mut Input<'a>, current: u32| -> Vec<u8> {
        let byte = input.u8();
        let value = match byte >> 6 {
            // Low six bits, sign-extended: -32 ..= 31.
            0 | 1 => current.wrapping_add_signed(i32::from((byte << 2) as i8 >> 2)),
            2 => current.wrapping_add(input.u32()),
            _ => input.u32(),
        };
        value.to_ne_bytes().to_vec()
    };
    match input.u8() % 8 {
        // Header fields: magic, version, kind, element layout, slot size, capacity.
        0 => {
            let offset = input.below(offsets::HEADER_FIELDS);
            (offset, input.bytes(8).to_vec())
        }
        1 => (offsets::HEAD, near(input, memory.peek_u32(offsets::HEAD))),
        2 => (offsets::TAIL, near(input, memory.peek_u32(offsets::TAIL))),
        // The ready event: `waiting` at +0, `epoch` at +4.
        3 => {
            let offset = offsets::READY + 4 * input.below(2);
            (offset, input.u32().to_ne_bytes().to_vec())
        }
        4 | 5 => {
            let offset = offsets::SLOTS + input.below(len - offsets::SLOTS);
            (offset, input.bytes(24).to_vec())
        }
        // A tail the producer would accept: somewhere behind its head.
        6 => {
            let behind = input.u8();
            let tail = memory
                .peek_u32(offsets::HEAD)
                .wrapping_sub(u32::from(behind) % 80);
            (offsets::TAIL, tail.to_ne_bytes().to_vec())
        }
        _ => {
            let offset = input.below(len);
            (offset, input.bytes(16).to_vec())
        }
    }
}

/// One hostile rewrite, and what it does to the model: rewritten payloads are
/// re-read; rewritten counters, event words or stamps (if the ring has them)
/// end exact checking. Returns the model as it was if the rewrite changed
/// `head` alone while the model was exact, for [`pop_after_head`].
fn hostile_step<T: Elem>(
    input: &mut Input<'_>,
    memory: &SharedMemory,
    model: &mut Option<Model<T>>,
) -> Option<Model<T>> {
    let (offset, bytes) = hostile_write(input, memory);
    let before = memory.snapshot(offset, bytes.len());
    memory.poke(offset, &bytes);
    let after = memory.snapshot(offset, bytes.len());
    let changed: Vec<usize> = (offset..offset + bytes.len())
        .filter(|&at| before[at - offset] != after[at - offset])
        .collect();
    // Header bytes matter only to the next `attach`, which is checked exactly.
    if changed.iter().all(|&at| at < offsets::HEAD) {
        return None;
    }
    let (slot, stamp) = (spsc_slot::<T>(), spsc_stamp::<T>());
    let stamp_changed = changed
        .iter()
        .any(|&at| at >= offsets::SLOTS && (at - offsets::SLOTS) % slot < stamp);
    let head_only = changed
        .iter()
        .all(|&at| (offsets::HEAD..offsets::HEAD + 4).contains(&at));
    match model.as_mut() {
        Some(exact) if offset >= offsets::SLOTS && !stamp_changed => {
            refresh_slots(memory, exact);
            None
        }
        _ if head_only => model.take(),
        _ => {
            *model = None;
            None
        }
    }
}

/// What the consumer's next `try_pop` returns after a peer rewrote `head` to
/// `head` under `model` (exact until then), by the protocol of a ring with
/// stamps (`stamped`) or without; `None` where that depends on when the
/// consumer last read `head` (a ring without stamps, elements waiting).
///
/// In a ring with stamps the consumer pops a stamped slot without reading
/// `head`, and the slot at `tail` is stamped exactly when an element waits.
/// Otherwise it reads `head`: counting nothing, or (with stamps) trailing
/// `tail` by up to a ring's worth, the ring is empty; counting up to a ring's
/// worth, the element is the slot's bytes (without stamps), or missing its
/// stamp, corrupt (with them); anything else is corrupt.
pub fn pop_after_head<T: Elem>(
    model: &Model<T>,
    head: u32,
    stamped: bool,
) -> Option<Result<T, PopError>> {
    if let Some(&front) = model.queue.front() {
        return stamped.then_some(Ok(front));
    }
    let capacity = model.capacity as u32;
    let counted = head.wrapping_sub(model.tail);
    let trails = model.tail.wrapping_sub(head);
    Some(match (counted, stamped) {
        (0, _) => Err(PopError::Empty),
        (1.., false) if counted <= capacity => Ok(model.slots[model.slot_index(model.tail)]),
        (_, true) if trails <= capacity => Err(PopError::Empty),
        _ => Err(PopError::Corrupted),
    })
}

/// Whether either side's closed word has its closed bit set.
fn closed_sides(memory: &SharedMemory) -> bool {
    [offsets::CLOSED, offsets::CLOSED + 4]
        .into_iter()
        .any(|at| memory.peek_u32(at) & 1 != 0)
}

fn run_ring<T: Elem>(capacity: u32, input: &mut Input<'_>) {
    let size = Spsc::<T>::required_size(capacity).expect("a small ring");
    let memory = SharedMemory::zeroed(size, Widths::ring::<T>());
    let expect = Expect::spsc::<T>();
    let stamped = spsc_stamp::<T>() != 0;
    let (mut tx, mut rx) = Spsc::<T>::create(memory.region(), capacity)
        .expect("create")
        .split();
    // `None` while the peer has left the ring in a state the model cannot follow.
    let mut model = Some(Model::<T>::new(capacity as usize, 0));
    let mut made = 1 << 32;
    let mut steps = 0;
    while steps < MAX_OPS && !input.is_empty() {
        steps += 1;
        let tag = input.u8();
        if tag >= HOSTILE_TAG {
            if let Some(exact) = hostile_step(input, &memory, &mut model) {
                let head = memory.peek_u32(offsets::HEAD);
                if let Some(expected) = pop_after_head(&exact, head, stamped) {
                    assert_eq!(rx.try_pop(), expected, "pop after head {head:#x}");
                }
            }
        } else {
            match decode_op(tag, input, tx.capacity() as usize) {
                Op::Reattach => {
                    let byte = input.u8();
                    let how = byte % 4;
                    // The peer also writes between attaching and making the
                    // handles, so that they start from memory `attach` did not
                    // validate.
                    let meddle = byte & 0x80 != 0;
                    let expected = expected_attach(&memory.snapshot(0, size), true, expect);
                    if how == 3 {
                        // A creator restarting: the ring starts over, and the
                        // model is rebuilt from what memory now holds.
                        // The old handles are not used again.
                        let ring = Spsc::<T>::create(memory.region(), capacity).expect("re-create");
                        model = Some(model_from_memory(&memory, capacity));
                        if meddle {
                            hostile_step(input, &memory, &mut model);
                        }
                        (tx, rx) = ring.split();
                    } else {
                        let attached = Spsc::<T>::attach(memory.region());
                        assert_eq!(
                            attached.as_ref().map(|r| r.capacity()).map_err(|e| *e),
                            expected,
                            "attach result"
                        );
                        if let Ok(ring) = attached {
                            if model
                                .as_ref()
                                .is_some_and(|m| m.capacity != ring.capacity() as usize)
                            {
                                model = None;
                            }
                            if meddle {
                                hostile_step(input, &memory, &mut model);
                            }
                            match how {
                                0 => tx = ring.into_producer(),
                                1 => rx = ring.into_consumer(),
                                _ => (tx, rx) = ring.split(),
                            }
                        }
                    }
                    // Handles replaced above were dropped after their
                    // successors opened. Each closes its side only while its
                    // opening number is still the side's word, but a peer
                    // that rewound that word earlier can make an old number
                    // come round again: then the old handle closes the new
                    // side. `Closed` is then all anyone can expect, and the
                    // model, which never closes, stops being exact.
                    if model.is_some() && closed_sides(&memory) {
                        model = None;
                    }
                }
                op => match model.as_mut() {
                    Some(model) => step(op, input, &mut tx, &mut rx, model),
                    None => loose_step(op, input, &mut tx, &mut rx, &mut made),
                },
            }
        }
        if let Some(model) = model.as_ref() {
            check(&tx, &rx, model);
        }
        invariants(&tx, &rx);
    }
    // Whatever is left pops out as elements or a typed error, boundedly.
    let mut out = vec![T::make(0); rx.capacity() as usize + 1];
    match (rx.pop_slice(&mut out), model.as_mut()) {
        (result, Some(model)) => {
            let left: Vec<T> = core::iter::from_fn(|| model.pop()).collect();
            assert_eq!(result, Ok(left.len()), "drain count");
            assert_eq!(&out[..left.len()], &left[..], "drain elements");
            assert_eq!(rx.try_pop(), Err(PopError::Empty));
        }
        (Ok(count), None) => assert!(count <= rx.capacity() as usize),
        (Err(_), None) => {}
    }
}
