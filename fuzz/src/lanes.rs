//! `lanes`: every fan-in lane operation, differentially against a model.
//!
//! Input: one configuration byte (1 to 8 lanes of 4 to 32 words), then
//! operations until the input runs out ([`decode_op`]), on up to
//! [`SLOTS`] producer handles and one consumer.
//!
//! The model keeps, per lane, its state, generation, word positions and
//! records in flight, and the consumer's documented round-robin rule (take
//! from the current lane until the budget is spent or the lane is empty,
//! then move on; free a closing lane found empty). Checked after every
//! operation: claims get exactly the lane and generation the model says (or
//! `None` when no lane is free, or the asked lane is taken); pushes and
//! grants return `Full` and `TooLarge` exactly as the lane's positions say;
//! each pop returns exactly the lane and record the model says (or `Empty`,
//! or `TooSmall` leaving the record), writing nothing past it; releases
//! ring the doorbell exactly when the consumer announced; producers that die
//! leave their lane claimed, `reclaim` takes exactly the claimed lanes and
//! their committed records arrive; every lane's state word, `used_words`
//! and the doorbell's epoch agree with the model. The consumer is dropped
//! and re-made at random points and resumes every lane where it was.

use ipc_primitives::lanes::Lanes;

use crate::models::lanes::{Model, Op, SLOTS, Slot, check, finish, step};
use crate::support::{Input, SharedMemory, Widths};

/// Most operations one input runs, so that every input's work is bounded.
pub const MAX_OPS: usize = 1000;

/// Byte offset of the first lane (the `# Layout` table of
/// `ipc_primitives::lanes`); the crate's wide words start at the first
/// lane's data, and `u32`s before it.
pub const FIRST_LANE: usize = 512;

/// Bytes from one lane to the next for lanes of `words` words.
pub fn lane_stride(words: u32) -> usize {
    256 + (words as usize * 8).next_multiple_of(128)
}

/// The widths in which the crate accesses a lane set of `words`-word lanes:
/// `u32`s in each lane's two control lines, wide words in its data.
pub fn widths(words: u32) -> Widths {
    Widths::Parts {
        first: FIRST_LANE,
        stride: lane_stride(words),
        narrow: 256,
    }
}

/// How many values an operation tag selects from (`tag % OP_TAGS`).
pub const OP_TAGS: u8 = 16;

/// A length for lanes whose largest record is `max`.
fn length(input: &mut Input<'_>, max: usize) -> usize {
    match input.u8() % 8 {
        0 => 0,
        1 => max,
        2 => max + 1 + input.below(8),
        _ => input.below(max + 1),
    }
}

/// Decodes the operation `tag` selects for `lanes` lanes whose largest
/// record is `max`.
pub fn decode_op(tag: u8, input: &mut Input<'_>, lanes: usize, max: usize) -> Op {
    let slot = input.below(SLOTS);
    match tag % OP_TAGS {
        0 => Op::Claim(slot),
        1 => Op::ClaimLane(slot, input.below(lanes + 1)),
        2..=4 => Op::Push(slot, length(input, max)),
        5 => {
            let len = length(input, max);
            let byte = input.u8();
            Op::Reserve(slot, len, (byte & 0x80 == 0).then(|| input.below(max + 2)))
        }
        6 => Op::Release(slot),
        7 => Op::Die(slot),
        8 => Op::Reclaim(input.below(lanes + 1)),
        9..=11 => Op::Pop(length(input, max)),
        12 => Op::PopWith(length(input, max)),
        13 => Op::SetBudget(1 + u32::from(input.u8() % 4)),
        14 => {
            let byte = input.u8();
            if byte & 1 == 0 {
                Op::Doorbell(slot)
            } else {
                Op::WaitOrSleep(u32::from((byte >> 1) % 3), u32::from((byte >> 3) % 3))
            }
        }
        _ => Op::Reattach,
    }
}

/// Runs one input.
pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let config = input.u8();
    let lane_count = 1 + usize::from(config % 8);
    let words = 4u32 << ((config >> 3) % 4);
    let size = Lanes::required_size(lane_count, words).expect("a small lane set");
    let memory = SharedMemory::zeroed(size, widths(words));
    let lanes = Lanes::create(memory.region(), lane_count, words).expect("create");
    let mut rx = Lanes::attach(memory.region())
        .expect("attach")
        .into_consumer();
    let mut model = Model::new(lane_count, words);
    let mut slots: Vec<Slot<'_>> = (0..SLOTS).map(|_| Slot::Empty).collect();
    let mut ops = 0;
    while ops < MAX_OPS && !input.is_empty() {
        ops += 1;
        let tag = input.u8();
        match decode_op(tag, &mut input, lane_count, model.max()) {
            Op::Reattach => {
                rx = Lanes::attach(memory.region())
                    .expect("attach")
                    .into_consumer();
                model.reattach();
            }
            op => step(op, &lanes, &mut rx, &mut slots, &mut model),
        }
        check(&rx, &model);
    }
    // Release the live, reclaim the dead: everything arrives, every lane
    // ends free.
    finish(&mut rx, &mut slots, &mut model);
}
