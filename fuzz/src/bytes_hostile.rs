//! `bytes_hostile`: the `bytes` operations on a record ring whose shared
//! bytes a hostile peer rewrites between operations.
//!
//! Input: one configuration byte (capacity 4 to 128 words), then steps until
//! the input runs out: a byte below [`HOSTILE_TAG`] is a ring operation as in
//! `bytes` (re-attaching one side, both, or re-creating the ring as a
//! restarting creator would, optionally with a rewrite between the attach or
//! create and making the handles); a byte from it up rewrites bytes of the
//! region: header fields, `head` (128) and `tail` (256) near their values or
//! anywhere, the `ready` event (384), record headers at the consumer's
//! position or after a padding there (plausible lengths, garbage lengths,
//! padding of any length, sealed for their position, for another, or not),
//! payload words, or anywhere.
//!
//! The ring lives in [`SharedMemory`]: an allocation exactly as long as the
//! region, so AddressSanitizer reports any access past its end. Checked:
//! - no panic, no out-of-bounds access, no hang (every call returns after
//!   bounded work; the harness's own loops are bounded too);
//! - every result is a record or a typed error: a popped record is at most
//!   the largest and no longer than the buffer, nothing is written past it,
//!   `TooSmall` names a length longer than the buffer and at most the
//!   largest, `TooLarge` comes exactly for lengths past the largest;
//! - `used_words() <= capacity()`, always;
//! - `attach` returns exactly what the documented layout says
//!   ([`expected_attach`]): `Ok` only on a valid header and counters;
//! - while the peer has rewritten nothing the handles read, everything agrees
//!   exactly with the `bytes` model; a rewrite of the counters, the event or
//!   the data words ends exact checking until the ring is re-created, after
//!   which the model starts again from an empty ring.

use ipc_primitives::bytes::{Consumer, PopError, Producer, RecordRing, ReserveError, max_record};
use ipc_primitives::{AttachError, ElementLayout};

use crate::bytes::{MAX_OPS, Op, VEC, decode_op, next_write, step};
use crate::models::bytes::{DATA, Model, check, write_fits};
use crate::support::{Expect, Input, SharedMemory, Widths, expected_attach, offsets};

/// Step tags from this value up are hostile rewrites; below it, ring
/// operations.
pub const HOSTILE_TAG: u8 = 0xa0;

/// The raw `Kind` of a record ring.
const KIND_BYTES: u32 = 4;

/// What `RecordRing::attach` checks.
fn expect() -> Expect {
    Expect {
        kind: KIND_BYTES,
        elem: ElementLayout::of::<[u8; 8]>(),
        control: DATA,
        capacity_ok: |c| c.is_power_of_two() && (4..=1 << 29).contains(&c),
        // Checked in `expected`: a record ring's `head` never trails `tail`.
        ring_counters: false,
        slot_overhead: 0,
    }
}

/// What `RecordRing::attach` must return for the region's bytes: the header
/// as `expected_attach` checks it, then `head - tail <= capacity`, or `tail`
/// ahead of `head` by at most the capacity (a producer that died between
/// sealing records and publishing `head`).
fn expected(bytes: &[u8]) -> Result<u32, AttachError> {
    let capacity = expected_attach(bytes, true, expect())?;
    let u32_at = |at: usize| u32::from_ne_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    let (head, tail) = (u32_at(offsets::HEAD), u32_at(offsets::TAIL));
    if head.wrapping_sub(tail) > capacity && tail.wrapping_sub(head) > capacity {
        return Err(AttachError::Corrupted);
    }
    Ok(capacity)
}

/// Runs one input.
pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let config = input.u8();
    run_ring(4u32 << (config % 6), &mut input);
}

/// Checks what must hold whatever the peer wrote.
fn invariants(tx: &Producer<'_>, rx: &Consumer<'_>) {
    assert!(
        rx.used_words() <= rx.capacity(),
        "used words above capacity"
    );
    for capacity in [tx.capacity(), rx.capacity()] {
        assert!(capacity.is_power_of_two() && (4..=128).contains(&capacity));
    }
    assert_eq!(tx.max_record(), max_record(tx.capacity() as u32));
    assert_eq!(rx.max_record(), max_record(rx.capacity() as u32));
}

/// Checks a pop's result into a buffer of `room` bytes, `len` of them
/// filled with `sentinel` past what it reports.
fn check_pop(result: Result<usize, PopError>, room: usize, max: usize) {
    match result {
        Ok(len) => assert!(len <= room && len <= max, "popped {len} bytes"),
        Err(PopError::TooSmall { needed }) => {
            assert!(
                needed > room && needed <= max,
                "TooSmall {{ needed: {needed} }}"
            );
        }
        Err(PopError::Empty | PopError::Corrupted) => {}
        Err(err) => panic!("unexpected {err}"),
    }
}

/// Applies one operation (not `Reattach`) with no model: only what holds for
/// any memory contents is checked.
fn loose_step(op: Op, input: &mut Input<'_>, tx: &mut Producer<'_>, rx: &mut Consumer<'_>) {
    let max = rx.max_record();
    let push = |tx: &mut Producer<'_>, len: usize| {
        let tmax = tx.max_record();
        match tx.push(&vec![0x5a; len]) {
            Ok(()) | Err(ReserveError::Full | ReserveError::Corrupted) => {
                assert!(
                    len <= tmax,
                    "a record past the largest was accepted or refused wrongly"
                );
            }
            Err(ReserveError::TooLarge { len: got, max }) => {
                assert_eq!((got, max), (len, tmax), "TooLarge");
                assert!(len > tmax);
            }
            Err(err) => panic!("unexpected {err}"),
        }
    };
    match op {
        Op::Push(len) => push(tx, len),
        Op::Reserve {
            len,
            writes,
            commit,
        } => {
            let Ok(mut grant) = tx.reserve(len) else {
                return;
            };
            for _ in 0..writes {
                let (offset, bytes) = next_write(input, len);
                let fits = write_fits(offset, bytes.len(), len);
                assert_eq!(grant.write(offset, bytes).is_ok(), fits, "write bounds");
            }
            if let Some(commit) = commit {
                grant.commit(commit % (len + 1));
            }
        }
        Op::PopInto(room) => {
            let mut buf = vec![0xa5; room + 8];
            let result = rx.pop_into(&mut buf[..room]);
            check_pop(result, room, max);
            let len = result.unwrap_or(0);
            assert!(
                buf[len..].iter().all(|&b| b == 0xa5),
                "pop_into wrote past the record"
            );
        }
        Op::PopVec => {
            let result = rx.pop_vec::<VEC>().map(|record| record.len());
            check_pop(result, VEC, max);
        }
        Op::PopWith(room) => {
            let mut buf = vec![0; room];
            let result = rx.pop_with(&mut buf, <[u8]>::len);
            check_pop(result, room, max);
        }
        Op::PrepareToSleep => {
            let _ = rx.prepare_to_sleep();
        }
        Op::WakeNeeded => {
            let _ = tx.wake_needed();
        }
        Op::WaitOrSleep {
            spins,
            sleeps,
            push_in_sleep,
        } => {
            let mut calls = 0;
            let _ = rx.wait_or_sleep(spins, |_, _| {
                calls += 1;
                assert!(
                    calls <= sleeps + 2,
                    "wait_or_sleep slept after the sleeper gave up"
                );
                if push_in_sleep && calls == 1 {
                    push(tx, 5);
                    let _ = tx.wake_needed();
                    return Ok(());
                }
                if calls > sleeps { Err(()) } else { Ok(()) }
            });
        }
        Op::Reattach => unreachable!("handled by the caller"),
    }
}

/// A `u32` near `current`, or anywhere.
fn near(input: &mut Input<'_>, current: u32) -> u32 {
    let byte = input.u8();
    match byte >> 6 {
        // Low six bits, sign-extended: -32 ..= 31.
        0 | 1 => current.wrapping_add_signed(i32::from((byte << 2) as i8 >> 2)),
        2 => current.wrapping_add(input.u32()),
        _ => input.u32(),
    }
}

/// A record header: `len` (bit 31 for padding), then the seal,
/// native-endian.
fn header(len: u32, seal: u32) -> Vec<u8> {
    let mut raw = len.to_ne_bytes().to_vec();
    raw.extend_from_slice(&seal.to_ne_bytes());
    raw
}

/// The seal of a header at `pos`, or (`valid` false) a wrong one: another
/// lap's, zero, or anything.
fn seal(input: &mut Input<'_>, pos: u32, valid: bool) -> u32 {
    const SEALED: u32 = 1 << 31;
    match (valid, input.u8() % 3) {
        (true, _) => pos | SEALED,
        (false, 0) => pos.wrapping_add(input.u32() | 1) | SEALED,
        (false, 1) => 0,
        (false, _) => input.u32(),
    }
}

/// Where a hostile rewrite lands, and what it writes.
fn hostile_write(input: &mut Input<'_>, memory: &SharedMemory, capacity: u32) -> (usize, Vec<u8>) {
    let len = memory.size();
    let tail = memory.peek_u32(offsets::TAIL);
    let header_at = |pos: u32| DATA + (pos % capacity) as usize * 8;
    let max = max_record(capacity) as u32;
    match input.u8() % 10 {
        0 => {
            let offset = input.below(offsets::HEADER_FIELDS);
            (offset, input.bytes(8).to_vec())
        }
        1 | 2 => {
            let head = memory.peek_u32(offsets::HEAD);
            (offsets::HEAD, near(input, head).to_ne_bytes().to_vec())
        }
        3 => (offsets::TAIL, near(input, tail).to_ne_bytes().to_vec()),
        // The ready event: `waiting` at +0, `epoch` at +4.
        4 => {
            let offset = offsets::READY + 4 * input.below(2);
            (offset, input.u32().to_ne_bytes().to_vec())
        }
        // A header at the consumer's position (or at the start of the next
        // lap, after a padding there): plausible or not, sealed or not.
        5 | 6 => {
            let padding = if input.u8().is_multiple_of(4) {
                1 << 31
            } else {
                0
            };
            let len = match input.u8() % 6 {
                0 => input.u32(),
                1 => max + 1 + input.below(64) as u32,
                2 => (capacity - tail % capacity - 1) * 8,
                _ => input.below(max as usize + 1) as u32,
            };
            let pos = if input.u8().is_multiple_of(4) {
                tail.wrapping_add(capacity - tail % capacity)
            } else {
                tail
            };
            let valid = !input.u8().is_multiple_of(4);
            (
                header_at(pos),
                header(len | padding, seal(input, pos, valid)),
            )
        }
        // A header anywhere in the data, sealed for its position or not.
        7 => {
            let pos = input.u32();
            let len = (input.u32() % (max + 16)) | (input.u32() & 1 << 31);
            let valid = input.u8().is_multiple_of(2);
            (header_at(pos), header(len, seal(input, pos, valid)))
        }
        8 => {
            let offset = DATA + input.below(len - DATA);
            (offset, input.bytes(24).to_vec())
        }
        _ => {
            let offset = input.below(len);
            (offset, input.bytes(16).to_vec())
        }
    }
}

/// One hostile rewrite; a change of anything but the header ends exact
/// checking.
fn hostile_step(
    input: &mut Input<'_>,
    memory: &SharedMemory,
    capacity: u32,
    model: &mut Option<Model>,
) {
    let (offset, bytes) = hostile_write(input, memory, capacity);
    let before = memory.snapshot(offset, bytes.len());
    memory.poke(offset, &bytes);
    let after = memory.snapshot(offset, bytes.len());
    // Header bytes matter only to the next `attach`, which is checked exactly.
    if before != after && offset + bytes.len() > offsets::HEAD {
        *model = None;
    }
}

fn run_ring(capacity: u32, input: &mut Input<'_>) {
    let size = RecordRing::required_size(capacity).expect("a small ring");
    let memory = SharedMemory::zeroed(size, Widths::WideFrom(DATA));
    let (mut tx, mut rx) = RecordRing::create(memory.region(), capacity)
        .expect("create")
        .split();
    // `None` while the peer has left the ring in a state the model cannot
    // follow.
    let mut model = Some(Model::new(capacity, 0));
    let mut steps = 0;
    while steps < MAX_OPS && !input.is_empty() {
        steps += 1;
        let tag = input.u8();
        if tag >= HOSTILE_TAG {
            hostile_step(input, &memory, capacity, &mut model);
        } else {
            match decode_op(tag, input, rx.max_record()) {
                Op::Reattach => {
                    let byte = input.u8();
                    let how = byte % 4;
                    let meddle = byte & 0x80 != 0;
                    let expected = expected(&memory.snapshot(0, size));
                    if how == 3 {
                        // A creator restarting: an empty ring again. The old
                        // handles are not used again.
                        let ring =
                            RecordRing::create(memory.region(), capacity).expect("re-create");
                        model = Some(Model::new(capacity, 0));
                        if meddle {
                            hostile_step(input, &memory, capacity, &mut model);
                        }
                        (tx, rx) = ring.split();
                    } else {
                        let attached = RecordRing::attach(memory.region());
                        assert_eq!(
                            attached
                                .as_ref()
                                .map(|r| r.capacity() as u32)
                                .map_err(|e| *e),
                            expected,
                            "attach result"
                        );
                        if let Ok(ring) = attached {
                            if ring.capacity() != capacity as usize {
                                model = None;
                            }
                            if meddle {
                                hostile_step(input, &memory, capacity, &mut model);
                            }
                            match how {
                                0 => tx = ring.into_producer(),
                                1 => rx = ring.into_consumer(),
                                _ => (tx, rx) = ring.split(),
                            }
                        }
                    }
                }
                op => match model.as_mut() {
                    Some(model) => step(op, input, &memory, &mut tx, &mut rx, model),
                    None => loose_step(op, input, &mut tx, &mut rx),
                },
            }
        }
        if let Some(model) = model.as_ref() {
            check(&tx, &rx, model);
        }
        invariants(&tx, &rx);
    }
    // Whatever is left pops out as records or a typed error, boundedly.
    let max = rx.max_record();
    let mut buf = vec![0; max];
    for _ in 0..=rx.capacity() {
        let result = rx.pop_into(&mut buf);
        check_pop(result, max, max);
        if result.is_err() {
            break;
        }
    }
}
