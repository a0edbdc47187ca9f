//! `lanes_hostile`: the `lanes` operations on a lane set whose shared bytes
//! hostile producers rewrite between operations.
//!
//! Input: one configuration byte (1 to 8 lanes of 4 to 32 words), then steps
//! until the input runs out: a byte below [`HOSTILE_TAG`] is an operation as
//! in `lanes` (re-attaching the consumer, checked against the documented
//! header, or re-creating the lane set as a restarting consumer would); a
//! byte from it up rewrites bytes of the region: header fields, the
//! doorbell, lane state words (garbage, or a valid state of another
//! generation, which lets a second producer claim a lane), a lane's `head`
//! or `tail` near its value or anywhere, record headers at the consumer's
//! position (sealed for it or not), data words, or anywhere.
//!
//! The lane set lives in [`SharedMemory`]: an allocation exactly as long as
//! the region, so AddressSanitizer reports any access past its end. Checked:
//! - no panic, no out-of-bounds access, no hang (every call returns after
//!   bounded work; the harness's own loops are bounded too);
//! - every result is typed and possible: a delivery names a lane that
//!   exists, at most the largest record and no longer than the buffer, with
//!   nothing written past it; `TooSmall` names a lane that exists and a
//!   length longer than the buffer and at most the largest; `Corrupted`
//!   names a lane that exists, which is then quarantined; claims return
//!   lanes that exist; `used_words` is at most a lane's capacity;
//! - `attach` returns exactly what the documented layout says;
//! - while the peers have rewritten nothing the handles read, everything
//!   agrees exactly with the `lanes` model; a rewrite of anything past the
//!   header ends exact checking until the lane set is re-created.

use ipc_primitives::bytes::{ReserveError, max_record};
use ipc_primitives::lanes::{Delivery, Lanes, LanesConsumer, PopError};
use ipc_primitives::{AttachError, ElementLayout, FitError};

use crate::lanes::{FIRST_LANE, MAX_OPS, decode_op, lane_stride, widths};
use crate::models::lanes::{Model, Op, SLOTS, Slot, check, step};
use crate::support::{Expect, Input, SharedMemory, expected_attach, offsets};

/// Step tags from this value up are hostile rewrites.
pub const HOSTILE_TAG: u8 = 0xa0;

/// The raw `Kind` of a lane set.
const KIND_LANES: u32 = 5;

/// Byte offsets of the `# Layout` table of `ipc_primitives::lanes`.
const DOORBELL: usize = 128;
const TABLE: usize = 256;

/// The lanes and words per lane a header's capacity field packs, if valid.
fn unpack(capacity: u32) -> Option<(usize, u32)> {
    let lanes = (capacity >> 16) as usize;
    let log = capacity & 0xffff;
    ((1..=64).contains(&lanes) && (2..=29).contains(&log)).then(|| (lanes, 1 << log))
}

/// What `Lanes::attach` must return for the region's bytes: the header
/// checks in the documented order (as `expected_attach` makes them), then
/// the size the packed geometry needs.
fn expected(bytes: &[u8]) -> Result<(usize, u32), AttachError> {
    let want = Expect {
        kind: KIND_LANES,
        elem: ElementLayout::of::<[u8; 8]>(),
        // The size is checked below, from the packed geometry.
        control: 0,
        capacity_ok: |c| unpack(c).is_some(),
        ring_counters: false,
        slot_overhead: 0,
    };
    match expected_attach(bytes, true, want) {
        Ok(_) | Err(AttachError::Fit(FitError::TooSmall { .. })) => {}
        Err(err) => return Err(err),
    }
    let raw = u32::from_ne_bytes(bytes[offsets::CAPACITY..][..4].try_into().expect("4 bytes"));
    let (lanes, words) = unpack(raw).expect("checked above");
    let needed = FIRST_LANE + lanes * lane_stride(words);
    if needed > bytes.len() {
        return Err(AttachError::Fit(FitError::TooSmall {
            needed,
            actual: bytes.len(),
        }));
    }
    Ok((lanes, words))
}

/// Runs one input.
pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let config = input.u8();
    let lane_count = 1 + usize::from(config % 8);
    let words = 4u32 << ((config >> 3) % 4);
    let size = Lanes::required_size(lane_count, words).expect("a small lane set");
    let memory = SharedMemory::zeroed(size, widths(words));
    let mut lanes = Lanes::create(memory.region(), lane_count, words).expect("create");
    let mut rx = Lanes::attach(memory.region())
        .expect("attach")
        .into_consumer();
    let mut model = Some(Model::new(lane_count, words));
    let mut slots: Vec<Slot<'_>> = (0..SLOTS).map(|_| Slot::Empty).collect();
    let mut steps = 0;
    while steps < MAX_OPS && !input.is_empty() {
        steps += 1;
        let tag = input.u8();
        if tag >= HOSTILE_TAG {
            hostile_step(&mut input, &memory, lane_count, words, &mut model);
        } else {
            match decode_op(tag, &mut input, lane_count, max_record(words)) {
                Op::Reattach if input.bool() => {
                    // A consumer restarting: the lane set starts over. The
                    // old claims are released first (into the old set).
                    for slot in &mut slots {
                        *slot = Slot::Empty;
                    }
                    lanes = Lanes::create(memory.region(), lane_count, words).expect("re-create");
                    rx = Lanes::attach(memory.region())
                        .expect("attach")
                        .into_consumer();
                    model = Some(Model::new(lane_count, words));
                }
                Op::Reattach => {
                    let attached = Lanes::attach(memory.region());
                    let got = attached.as_ref().map(|l| (l.lanes(), l.capacity() as u32));
                    assert_eq!(
                        got.map_err(|e| *e),
                        expected(&memory.snapshot(0, size)),
                        "attach"
                    );
                    if let Ok(attached) = attached {
                        if (attached.lanes(), attached.capacity()) != (lane_count, words as usize) {
                            model = None;
                        }
                        rx = attached.into_consumer();
                        if let Some(model) = model.as_mut() {
                            model.reattach();
                        }
                    }
                }
                op => match model.as_mut() {
                    Some(model) => step(op, &lanes, &mut rx, &mut slots, model),
                    None => loose_step(op, &lanes, &mut rx, &mut slots),
                },
            }
        }
        if let Some(model) = model.as_ref() {
            check(&rx, model);
        }
        invariants(&rx);
    }
    // Whatever is left pops out as records or typed errors, boundedly.
    let mut buf = vec![0; rx.max_record()];
    for _ in 0..64 * (rx.lanes() + 1) {
        match rx.pop_into(&mut buf) {
            Err(PopError::Empty) => break,
            result => check_pop(result, &rx, buf.len()),
        }
    }
}

/// What must hold whatever the peers wrote.
fn invariants(rx: &LanesConsumer<'_>) {
    for lane in 0..rx.lanes() {
        assert!(
            rx.used_words(lane) <= rx.capacity(),
            "used words of lane {lane}"
        );
        assert!(rx.state(lane).is_some());
    }
    assert_eq!(rx.used_words(rx.lanes()), 0);
    assert_eq!(rx.state(rx.lanes()), None);
}

/// Checks a pop's result into `room` bytes.
fn check_pop(result: Result<Delivery, PopError>, rx: &LanesConsumer<'_>, room: usize) {
    let (lanes, max) = (rx.lanes(), rx.max_record());
    match result {
        Ok(Delivery { lane, len }) => assert!(lane < lanes && len <= room && len <= max),
        Err(PopError::TooSmall { lane, needed }) => {
            assert!(
                lane < lanes && needed > room && needed <= max,
                "TooSmall {lane} {needed}"
            );
        }
        Err(PopError::Corrupted { lane }) => {
            assert!(lane < lanes && rx.is_quarantined(lane), "Corrupted {lane}");
        }
        Err(PopError::Empty) => {}
        Err(err) => panic!("unexpected {err}"),
    }
}

/// One operation with no model: only what holds for any memory contents is
/// checked.
fn loose_step<'a>(op: Op, lanes: &Lanes<'a>, rx: &mut LanesConsumer<'_>, slots: &mut [Slot<'a>]) {
    let max = lanes.max_record();
    match op {
        Op::Claim(slot) | Op::ClaimLane(slot, _) => {
            if !matches!(slots[slot], Slot::Empty) {
                return;
            }
            let got = match op {
                Op::ClaimLane(_, lane) => lanes.claim_lane(lane),
                _ => lanes.claim(),
            };
            if let Some(producer) = got {
                assert!(producer.lane() < lanes.lanes());
                slots[slot] = Slot::Live(Box::new(producer));
            }
        }
        Op::Push(slot, len) | Op::Reserve(slot, len, _) => {
            if let Slot::Live(producer) = &mut slots[slot] {
                match producer.push(&vec![0x5a; len]) {
                    Ok(()) | Err(ReserveError::Full | ReserveError::Corrupted) => {
                        assert!(len <= max, "a record past the largest");
                    }
                    Err(ReserveError::TooLarge {
                        len: got,
                        max: limit,
                    }) => {
                        assert_eq!((got, limit), (len, max));
                    }
                    Err(err) => panic!("unexpected {err}"),
                }
            }
        }
        Op::Release(slot) => {
            if let Slot::Live(producer) = core::mem::replace(&mut slots[slot], Slot::Empty) {
                let _ = (*producer).release();
            }
        }
        Op::Die(slot) => {
            if let Slot::Live(producer) = core::mem::replace(&mut slots[slot], Slot::Empty) {
                core::mem::forget(*producer);
            }
        }
        Op::Reclaim(lane) => {
            let _ = rx.reclaim(lane);
        }
        Op::Pop(room) => {
            let mut buf = vec![0xa5; room + 8];
            let result = rx.pop_into(&mut buf[..room]);
            check_pop(result, rx, room);
            let len = result.map_or(0, |delivery| delivery.len);
            assert!(
                buf[len..].iter().all(|&b| b == 0xa5),
                "wrote past the record"
            );
        }
        Op::PopWith(room) => {
            let mut buf = vec![0; room];
            let result = rx.pop_with(&mut buf, |lane, record| Delivery {
                lane,
                len: record.len(),
            });
            check_pop(result, rx, room);
        }
        Op::SetBudget(budget) => {
            rx.set_budget(core::num::NonZeroU32::new(budget).expect("1 to 4"));
        }
        Op::Doorbell(slot) => {
            let _ = rx.prepare_to_sleep();
            if let Slot::Live(producer) = &slots[slot] {
                let _ = producer.wake_needed();
            }
        }
        Op::WaitOrSleep(spins, sleeps) => {
            let mut calls = 0;
            let _ = rx.wait_or_sleep(spins, |_, _| {
                calls += 1;
                assert!(calls <= sleeps + 1, "slept after the sleeper gave up");
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
        0 | 1 => current.wrapping_add_signed(i32::from((byte << 2) as i8 >> 2)),
        2 => current.wrapping_add(input.u32()),
        _ => input.u32(),
    }
}

/// One hostile rewrite; a change past the header ends exact checking.
fn hostile_step(
    input: &mut Input<'_>,
    memory: &SharedMemory,
    lanes: usize,
    words: u32,
    model: &mut Option<Model>,
) {
    let lane = input.below(lanes);
    let base = FIRST_LANE + lane * lane_stride(words);
    let (head, tail, data) = (base, base + 128, base + 256);
    let (offset, bytes) = match input.u8() % 10 {
        0 => (input.below(offsets::HEADER_FIELDS), input.bytes(8).to_vec()),
        1 => (
            DOORBELL + 4 * input.below(2),
            input.u32().to_ne_bytes().to_vec(),
        ),
        2 => (TABLE + 4 * lane, input.u32().to_ne_bytes().to_vec()),
        // A state of another generation: FREE, CLAIMED, CLOSING or LOCKED.
        3 => {
            let state = memory.peek_u32(TABLE + 4 * lane);
            let value = (state & !3).wrapping_add(u32::from(input.u8() % 3) << 2)
                | u32::from(input.u8() % 4);
            (TABLE + 4 * lane, value.to_ne_bytes().to_vec())
        }
        4 => (
            head,
            near(input, memory.peek_u32(head)).to_ne_bytes().to_vec(),
        ),
        5 => (
            tail,
            near(input, memory.peek_u32(tail)).to_ne_bytes().to_vec(),
        ),
        // A record header at the consumer's position: a plausible length or
        // any, sealed for the position (`pos | 1 << 31`) or anything.
        6 => {
            let pos = memory.peek_u32(tail);
            let at = data + (pos % words) as usize * 8;
            let len = match input.u8() % 2 {
                0 => input.u32() % 128,
                _ => input.u32(),
            };
            let seal = match input.u8() % 2 {
                0 => pos | 1 << 31,
                _ => input.u32(),
            };
            let mut raw = len.to_ne_bytes().to_vec();
            raw.extend_from_slice(&seal.to_ne_bytes());
            (at, raw)
        }
        7 | 8 => (
            data + input.below(words as usize * 8),
            input.bytes(16).to_vec(),
        ),
        _ => (input.below(memory.size()), input.bytes(16).to_vec()),
    };
    let before = memory.snapshot(offset, bytes.len());
    memory.poke(offset, &bytes);
    if memory.snapshot(offset, bytes.len()) != before && offset + bytes.len() > offsets::HEAD {
        *model = None;
    }
}
