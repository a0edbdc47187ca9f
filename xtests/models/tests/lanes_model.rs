//! Property tests of fan-in lanes against their model (`models::lanes`): per lane, its state,
//! generation, word positions and the records in flight; for the consumer,
//! the documented round-robin rule (take from the current lane until the
//! budget is spent or the lane is empty, then move to the next; free a
//! closing lane found empty).
//!
//! Random sequences of claims (of any free lane or of a given one), pushes
//! and grants (lengths past the largest), releases, producers dying (their
//! claim never released), reclaims of dead owners' lanes (and of lanes that
//! are not claimed, which must be refused), pops into buffers of random
//! lengths (`pop_into`, `pop_with`), budget changes, doorbell checks and
//! sleeps run against a lane set of 1 to 5 lanes of 4 to 32 words. Each pop
//! returns exactly the lane and record the model says (or `Empty`, or
//! `TooSmall` leaving the record), each claim the lane and generation the
//! model says, and every lane's state word, used words and the doorbell's
//! epoch match the model after every operation.
#![cfg(not(loom))]

#[path = "../../../tests/common/mod.rs"]
mod common;

use ipc_primitives::lanes::Lanes;
use ipc_primitives::{Line, Region};
use models::lanes::{Model, Op, SLOTS, Slot, check, finish, step};
use proptest::prelude::*;
use proptest::test_runner::TestCaseResult;

/// Proptest cases per test: few under Miri, which interprets every step.
fn config() -> ProptestConfig {
    if cfg!(miri) {
        ProptestConfig {
            cases: 3,
            failure_persistence: None,
            ..ProptestConfig::default()
        }
    } else {
        ProptestConfig::with_cases(256)
    }
}

/// Longest operation sequence generated.
const MAX_OPS: usize = if cfg!(miri) { 40 } else { 300 };

fn op() -> impl Strategy<Value = Op> {
    let slot = 0..SLOTS;
    let len = 0usize..=260;
    let room = prop_oneof![0usize..=260, Just(256)];
    prop_oneof![
        2 => slot.clone().prop_map(Op::Claim),
        1 => (slot.clone(), 0usize..6).prop_map(|(slot, lane)| Op::ClaimLane(slot, lane)),
        6 => (slot.clone(), len.clone()).prop_map(|(slot, len)| Op::Push(slot, len)),
        2 => (slot.clone(), len, proptest::option::weighted(0.8, 0usize..=262))
            .prop_map(|(slot, len, commit)| Op::Reserve(slot, len, commit)),
        1 => slot.clone().prop_map(Op::Release),
        1 => slot.clone().prop_map(Op::Die),
        1 => (0usize..6).prop_map(Op::Reclaim),
        6 => room.clone().prop_map(Op::Pop),
        1 => room.prop_map(Op::PopWith),
        1 => (1u32..=4).prop_map(Op::SetBudget),
        1 => slot.prop_map(Op::Doorbell),
        1 => (0u32..3, 0u32..3).prop_map(|(spins, sleeps)| Op::WaitOrSleep(spins, sleeps)),
    ]
}

fn run(lane_count: usize, words: u32, ops: &[Op]) -> TestCaseResult {
    let size = Lanes::required_size(lane_count, words).expect("valid geometry");
    let mut mem = vec![Line::ZERO; Line::count_for(size)];
    let (one, other): (Region<'_>, Region<'_>) = common::two_mappings(&mut mem);
    let lanes = Lanes::create(one, lane_count, words).expect("create");
    let mut rx = Lanes::attach(other).expect("attach").into_consumer();
    let mut model = Model::new(lane_count, words);
    let mut slots: Vec<Slot<'_>> = (0..SLOTS).map(|_| Slot::Empty).collect();
    check(&rx, &model);
    for &op in ops {
        step(op, &lanes, &mut rx, &mut slots, &mut model);
        check(&rx, &model);
    }
    // Release every live claim and reclaim every dead one: everything in
    // flight arrives, in the model's order, and every lane ends free.
    finish(&mut rx, &mut slots, &mut model);
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn lanes_match_model(
        lanes in 1usize..=5,
        words in prop::sample::select(vec![4u32, 8, 16, 32]),
        ops in prop::collection::vec(op(), 0..MAX_OPS),
    ) {
        run(lanes, words, &ops)?;
    }
}
