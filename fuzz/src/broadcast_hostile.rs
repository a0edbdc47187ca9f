//! `broadcast_hostile`: the `broadcast` operations on a ring whose shared
//! bytes a hostile peer (the writer's process, or a reader with write
//! access) rewrites between operations.
//!
//! Input: as `broadcast` (stamped and counted slots), except that a step
//! byte from [`HOSTILE_TAG`] up rewrites bytes of the region: header fields,
//! `published` (near a reader's position, half the ring away, anything),
//! `intent` (around the edges of the range a reader accepts, behind it, half
//! the ring away, anything), the doorbell's words, a slot's stamp (the whole
//! stamp of a reader's position, a busy stamp, anything; message bytes with
//! counted slots), message bytes, the unused bytes beside a stamp, or
//! anywhere.
//!
//! The ring lives in [`SharedMemory`]: an allocation exactly as long as the
//! region, so AddressSanitizer reports any access past its end. Checked:
//! - no panic, no out-of-bounds access, no hang (every call returns after
//!   bounded work; a sleeping receive's sleeper gives up after a few sleeps);
//! - every result is a message or a typed error; a `Lagged` count is in
//!   `1 ..= 2^31` and is exactly the distance the reader moved; `Empty`
//!   moves nothing, a message moves one, a batch its length; `pending`
//!   agrees with `published` and the position;
//! - with counted slots, no copy is accepted unless `intent` (as memory held
//!   it during the call) is `count ..= capacity` past the reader's position
//!   before the call: an `intent` outside that range drops the copy;
//! - a re-attach returns exactly what the documented layout says
//!   ([`expected_attach`]), whatever the peer did to the header;
//! - while the peer has rewritten only message bytes, or bytes nobody reads,
//!   everything agrees exactly with the `broadcast` model (which takes a
//!   rewritten message from memory); `intent` is such a byte with stamped
//!   slots, which must ignore it. A rewrite of `published`, a stamp, the
//!   doorbell or (counted slots) `intent`, or a re-attach to another
//!   capacity, ends exact checking until the ring is re-created.

use crate::broadcast::{
    Handles, MAX_OPS, Model, Op, Outcome, READERS, RingRun, decode_op, dispatch, expect,
    loose_check, memory, offsets, slot_offset, slot_size, stamp, start,
};
use crate::support::{Elem, Input, SharedMemory, expected_attach, offsets as header};

/// Step tags from this value up are hostile rewrites; below it, operations.
pub const HOSTILE_TAG: u8 = 0xb0;

/// Runs one input.
pub fn run(data: &[u8]) {
    dispatch(data, &Hostile);
}

/// Where a hostile rewrite lands and what it writes.
fn hostile_write<T: Elem>(
    input: &mut Input<'_>,
    memory: &SharedMemory,
    capacity: u32,
    handles: &Handles<'_, T>,
) -> (usize, Vec<u8>) {
    let word = |value: u32| value.to_ne_bytes().to_vec();
    let position = |input: &mut Input<'_>| handles.readers[input.below(READERS)].position();
    let slot =
        |input: &mut Input<'_>| slot_offset::<T>(capacity, input.below(capacity as usize) as u64);
    match input.u8() % 9 {
        0 => {
            let offset = input.below(header::HEADER_FIELDS);
            (offset, input.bytes(8).to_vec())
        }
        1 => {
            let value = match input.u8() % 4 {
                // Near a reader: -8 ..= 7 from its position.
                0 => position(input)
                    .wrapping_add(u32::from(input.u8() % 16))
                    .wrapping_sub(8),
                1 => position(input).wrapping_add(capacity + u32::from(input.u8())),
                2 => position(input)
                    .wrapping_add(1 << 31)
                    .wrapping_add(u32::from(input.u8() % 3)),
                _ => input.u32(),
            };
            (offsets::PUBLISHED, word(value))
        }
        2 => {
            let offset = offsets::DOORBELL + 4 * input.below(2);
            (offset, word(input.u32() % 3))
        }
        3 => {
            let offset = slot(input);
            let value = match input.u8() % 4 {
                0 => position(input).wrapping_add(1),
                1 => !position(input).wrapping_add(1),
                2 => handles
                    .writer
                    .published()
                    .wrapping_add(u32::from(input.u8() % 4)),
                _ => input.u32(),
            };
            (offset, word(value))
        }
        4 | 5 => {
            let offset = slot(input) + stamp::<T>();
            let within = input.below(slot_size::<T>() - stamp::<T>());
            (offset + within, input.bytes(16).to_vec())
        }
        6 => (slot(input) + 4, input.take(4).to_vec()),
        7 => {
            // Around what a reader accepts (`1 ..= capacity` past it, and
            // up to the writer's `announce` more), behind it, half the ring
            // away, anything.
            let value = match input.u8() % 4 {
                0 => position(input).wrapping_add(u32::from(input.u8()) % (2 * capacity + 2)),
                1 => position(input).wrapping_sub(1 + u32::from(input.u8() % 4)),
                2 => position(input)
                    .wrapping_add(1 << 31)
                    .wrapping_add(u32::from(input.u8() % 3)),
                _ => input.u32(),
            };
            (offsets::INTENT, word(value))
        }
        _ => {
            let offset = input.below(memory.size());
            (offset, input.bytes(16).to_vec())
        }
    }
}

/// One hostile rewrite, and what it does to the model: rewritten message
/// bytes are taken from memory; rewritten control words end exact checking.
fn hostile_step<T: Elem>(
    input: &mut Input<'_>,
    memory: &SharedMemory,
    capacity: u32,
    handles: &Handles<'_, T>,
    model: &mut Option<Model<T>>,
) {
    let (offset, bytes) = hostile_write(input, memory, capacity, handles);
    let before = memory.snapshot(offset, bytes.len());
    memory.poke(offset, &bytes);
    let after = memory.snapshot(offset, bytes.len());
    let (slot, stamp) = (slot_size::<T>(), stamp::<T>());
    let mut loose = false;
    let mut messages = Vec::new();
    for (at, _) in (offset..)
        .zip(before.iter().zip(&after))
        .filter(|(_, (b, a))| b != a)
    {
        match at {
            // The header matters only to the next attach, checked exactly.
            _ if at < header::HEADER_FIELDS => {}
            _ if (offsets::PUBLISHED..offsets::PUBLISHED + 4).contains(&at) => loose = true,
            // Stamped slots never read `intent`.
            _ if (offsets::INTENT..offsets::INTENT + 4).contains(&at) => loose |= stamp == 0,
            _ if (offsets::DOORBELL..offsets::DOORBELL + 8).contains(&at) => loose = true,
            _ if at >= offsets::SLOTS => {
                let index = ((at - offsets::SLOTS) / slot) as u64;
                match (at - offsets::SLOTS) % slot {
                    within if within >= stamp => messages.push(index),
                    0..4 => loose = true,
                    _ => {}
                }
            }
            // Padding: nobody reads it.
            _ => {}
        }
    }
    if loose {
        *model = None;
    }
    let Some(exact) = model.as_mut() else { return };
    let mut raw = vec![0; core::mem::size_of::<T>()];
    for index in messages {
        if let Some(position) = exact.held_by(index) {
            memory.peek(slot_offset::<T>(capacity, index) + stamp, &mut raw);
            exact.rewritten.insert(position, T::from_raw(&raw));
        }
    }
}

/// The run with a hostile peer.
struct Hostile;

impl RingRun for Hostile {
    fn run<T: Elem>(&self, capacity: u32, restart: Option<u32>, input: &mut Input<'_>) {
        let memory = memory::<T>(capacity);
        let (mut handles, model) = start::<T>(&memory, capacity, restart);
        // `None` while the peer has left the ring in a state the model cannot follow.
        let mut model = Some(model);
        let mut steps = 0;
        while steps < MAX_OPS && !input.is_empty() {
            steps += 1;
            let tag = input.u8();
            if tag >= HOSTILE_TAG {
                hostile_step(input, &memory, capacity, &handles, &mut model);
                continue;
            }
            let op = decode_op(tag, input, capacity);
            if let Op::Recreate = op {
                let (fresh, exact) = start::<T>(&memory, capacity, None);
                (handles, model) = (fresh, Some(exact));
                continue;
            }
            let attach = matches!(op, Op::AttachReadOnly(..) | Op::RestartWriter);
            let expected = attach
                .then(|| expected_attach(&memory.snapshot(0, memory.size()), true, expect::<T>()));
            let before: [u32; READERS] = core::array::from_fn(|i| handles.readers[i].position());
            let got = handles.perform(op, || memory.region());
            if stamp::<T>() == 0 {
                let intent = memory.peek_u32(offsets::INTENT);
                intent_check(op, &got, &before, intent, capacity);
            }
            if let (Some(expected), Outcome::Attached(found)) = (expected, &got) {
                assert_eq!(*found, expected, "attach result");
                match found {
                    // Nothing changed: the handles stay.
                    Err(_) => continue,
                    Ok(found) if *found != capacity => model = None,
                    Ok(_) => {}
                }
            }
            match model.as_mut() {
                Some(exact) => {
                    assert_eq!(got, exact.expect(op), "{op:?}");
                    exact.check(&handles.writer, &handles.readers);
                }
                None => loose_check(&handles, op, &before, &got),
            }
        }
        // Whatever is left comes out, boundedly, as messages or typed errors.
        for reader in &mut handles.readers {
            for _ in 0..=capacity + 1 {
                if reader.try_recv().is_err() {
                    break;
                }
            }
        }
    }
}

/// With counted slots, what a receive accepted must have been validated by
/// `intent` (`intent`, unchanged during the call but by the honest
/// writer's own stores, is what memory holds after it): `count ..=
/// capacity` past where the reader was.
fn intent_check<T>(op: Op, got: &Outcome<T>, before: &[u32; READERS], intent: u32, capacity: u32) {
    let (reader, count) = match (op, got) {
        (Op::Recv(i), Outcome::Received(Ok(_))) => (i, 1),
        (Op::RecvSlice(i, _), Outcome::Sliced(Ok(values))) if !values.is_empty() => {
            (i, values.len() as u32)
        }
        (Op::Sleep { reader, .. }, Outcome::Slept { got: Ok(_), .. }) => (reader, 1),
        _ => return,
    };
    let begun = intent.wrapping_sub(before[reader]);
    assert!(
        (count..=capacity).contains(&begun),
        "reader {reader} accepted {count} with intent {begun} past it, capacity {capacity}"
    );
}
