//! Property tests of fan-in lanes against a model: per lane, its state,
//! generation, word positions and the records in flight; for the consumer,
//! the documented round-robin rule (take from the current lane until the
//! budget is spent or the lane is empty, then move to the next; free a
//! closing lane found empty).
//!
//! Random sequences of claims, pushes (lengths past the largest), releases,
//! producers dying (their claim never released), reclaims of dead owners'
//! lanes (and of lanes that are not claimed, which must be refused), pops
//! into buffers of random lengths, budget changes and doorbell checks run
//! against a lane set of 1 to 5 lanes of 4 to 32 words. Each pop returns
//! exactly the lane and record the model says (or `Empty`, or `TooSmall`
//! leaving the record), each claim the lane and generation the model says,
//! and every lane's state word matches the model after every operation.
#![cfg(not(loom))]

#[path = "../../../tests/common/mod.rs"]
mod common;

use std::collections::VecDeque;
use std::num::NonZeroU32;

use ipc_primitives::bytes::{ReserveError, max_record};
use ipc_primitives::lanes::{Delivery, LaneProducer, LaneState, Lanes, LanesConsumer, PopError};
use ipc_primitives::{Line, Region};
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

/// Producer slots of the test: more than lanes, so that claims fail too.
const SLOTS: usize = 6;

#[derive(Debug, Clone)]
enum Op {
    Claim(usize),
    Push(usize, usize),
    Release(usize),
    /// The producer in the slot dies: its claim is never released.
    Die(usize),
    Reclaim(usize),
    Pop(usize),
    SetBudget(u32),
    /// `prepare_to_sleep`, then a producer's `wake_needed`.
    Doorbell(usize),
}

fn op() -> impl Strategy<Value = Op> {
    let slot = 0..SLOTS;
    prop_oneof![
        2 => slot.clone().prop_map(Op::Claim),
        6 => (slot.clone(), 0usize..=260).prop_map(|(slot, len)| Op::Push(slot, len)),
        1 => slot.clone().prop_map(Op::Release),
        1 => slot.clone().prop_map(Op::Die),
        1 => (0usize..6).prop_map(Op::Reclaim),
        6 => prop_oneof![0usize..=260, Just(256)].prop_map(Op::Pop),
        1 => (1u32..=4).prop_map(Op::SetBudget),
        1 => slot.prop_map(Op::Doorbell),
    ]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Free,
    Claimed,
    Closing,
}

#[derive(Debug)]
struct Lane {
    state: State,
    generation: u32,
    head: u32,
    tail: u32,
    /// Records in flight, with the words each takes (padding included).
    queue: VecDeque<(Vec<u8>, u32)>,
}

struct Model {
    lanes: Vec<Lane>,
    words: u32,
    next: usize,
    taken: u32,
    budget: u32,
    made: u32,
    /// The consumer announced on the doorbell.
    announced: bool,
}

impl Model {
    fn new(lanes: usize, words: u32) -> Self {
        Self {
            lanes: (0..lanes)
                .map(|_| Lane {
                    state: State::Free,
                    generation: 0,
                    head: 0,
                    tail: 0,
                    queue: VecDeque::new(),
                })
                .collect(),
            words,
            next: 0,
            taken: 0,
            budget: 8,
            made: 0,
            announced: false,
        }
    }

    fn fresh(&mut self, len: usize) -> Vec<u8> {
        self.made += 1;
        let seed = self.made.wrapping_mul(0x9e37_79b9);
        (0..len)
            .map(|i| (seed >> (i % 4 * 8)) as u8 ^ i as u8)
            .collect()
    }

    /// What `push(len)` on `lane` must return; records it if it succeeds.
    fn push(&mut self, lane: usize, record: Vec<u8>) -> Result<(), ReserveError> {
        let len = record.len();
        let max = max_record(self.words);
        if len > max {
            return Err(ReserveError::TooLarge { len, max });
        }
        let words = self.words;
        let lane = &mut self.lanes[lane];
        let need = 1 + len.div_ceil(8) as u32;
        let to_end = words - lane.head % words;
        let taken = need + if need > to_end { to_end } else { 0 };
        // The record's words, and one more after it for the marker.
        if taken >= words - lane.head.wrapping_sub(lane.tail) {
            return Err(ReserveError::Full);
        }
        lane.head = lane.head.wrapping_add(taken);
        lane.queue.push_back((record, taken));
        Ok(())
    }

    /// The documented scan: the lane whose record is next, freeing closing
    /// lanes found empty.
    fn find(&mut self) -> Option<usize> {
        for _ in 0..=self.lanes.len() {
            let lane = self.next;
            if self.taken < self.budget {
                let state = &mut self.lanes[lane];
                if state.state != State::Free {
                    if !state.queue.is_empty() {
                        return Some(lane);
                    }
                    if state.state == State::Closing {
                        state.state = State::Free;
                    }
                }
            }
            self.next = (self.next + 1) % self.lanes.len();
            self.taken = 0;
        }
        None
    }

    /// What a pop into `room` bytes must return, applying it.
    fn pop(&mut self, room: usize) -> Result<(usize, Vec<u8>), PopError> {
        let lane = self.find().ok_or(PopError::Empty)?;
        let state = &mut self.lanes[lane];
        let needed = state.queue.front().expect("a record").0.len();
        if needed > room {
            return Err(PopError::TooSmall { lane, needed });
        }
        let (record, words) = state.queue.pop_front().expect("a record");
        state.tail = state.tail.wrapping_add(words);
        self.taken += 1;
        Ok((lane, record))
    }

    /// Whether the consumer has something to do: a record, or a closing
    /// lane to free.
    fn has_work(&self) -> bool {
        self.lanes.iter().any(|lane| match lane.state {
            State::Free => false,
            State::Claimed => !lane.queue.is_empty(),
            State::Closing => true,
        })
    }
}

/// A producer slot of the test.
enum Slot<'a> {
    Empty,
    Live(Box<LaneProducer<'a>>),
    /// Died holding this lane.
    Dead(usize),
}

fn check(rx: &LanesConsumer<'_>, model: &Model) -> TestCaseResult {
    for (index, lane) in model.lanes.iter().enumerate() {
        let generation = lane.generation;
        let expected = match lane.state {
            State::Free => LaneState::Free { generation },
            State::Claimed => LaneState::Claimed {
                generation,
                locked: false,
            },
            State::Closing => LaneState::Closing { generation },
        };
        prop_assert_eq!(rx.state(index), Some(expected), "lane {}", index);
    }
    prop_assert_eq!(rx.state(model.lanes.len()), None);
    prop_assert_eq!(rx.budget(), model.budget);
    Ok(())
}

fn step<'a>(
    op: &Op,
    lanes: &Lanes<'a>,
    rx: &mut LanesConsumer<'_>,
    slots: &mut [Slot<'a>],
    model: &mut Model,
) -> TestCaseResult {
    match *op {
        Op::Claim(slot) => {
            if !matches!(slots[slot], Slot::Empty) {
                return Ok(());
            }
            let free = model
                .lanes
                .iter()
                .position(|lane| lane.state == State::Free);
            match (lanes.claim(), free) {
                (None, None) => {}
                (Some(claimed), Some(lane)) => {
                    let state = &mut model.lanes[lane];
                    state.state = State::Claimed;
                    state.generation += 1;
                    prop_assert_eq!(claimed.lane(), lane);
                    prop_assert_eq!(claimed.generation(), state.generation);
                    slots[slot] = Slot::Live(Box::new(claimed));
                }
                (got, expected) => {
                    prop_assert!(
                        false,
                        "claim gave {:?}, expected lane {:?}",
                        got.map(|c| c.lane()),
                        expected
                    );
                }
            }
        }
        Op::Push(slot, len) => {
            if let Slot::Live(producer) = &mut slots[slot] {
                let record = model.fresh(len);
                let expected = model.push(producer.lane(), record.clone());
                prop_assert_eq!(producer.push(&record), expected);
            }
        }
        Op::Release(slot) => {
            if matches!(slots[slot], Slot::Live(_))
                && let Slot::Live(producer) = core::mem::replace(&mut slots[slot], Slot::Empty)
            {
                model.lanes[producer.lane()].state = State::Closing;
                let woke = (*producer).release();
                prop_assert_eq!(woke, model.announced, "release rings the doorbell");
                model.announced = false;
            }
        }
        Op::Die(slot) => {
            if matches!(slots[slot], Slot::Live(_))
                && let Slot::Live(producer) = core::mem::replace(&mut slots[slot], Slot::Empty)
            {
                slots[slot] = Slot::Dead(producer.lane());
                core::mem::forget(*producer);
            }
        }
        Op::Reclaim(lane) => {
            // Only a dead owner's lane, or one nobody owns (refused).
            let dead = slots
                .iter()
                .position(|slot| matches!(slot, Slot::Dead(l) if *l == lane));
            let live = slots
                .iter()
                .any(|slot| matches!(slot, Slot::Live(p) if p.lane() == lane));
            if live {
                return Ok(());
            }
            let claimed = model
                .lanes
                .get(lane)
                .is_some_and(|l| l.state == State::Claimed);
            prop_assert_eq!(rx.reclaim(lane), claimed, "reclaim lane {}", lane);
            if claimed {
                model.lanes[lane].state = State::Closing;
                if let Some(dead) = dead {
                    slots[dead] = Slot::Empty;
                }
            }
        }
        Op::Pop(room) => {
            let mut buf = vec![0xa5; room + 8];
            let expected = model.pop(room);
            let got = rx.pop_into(&mut buf[..room]);
            match expected {
                Ok((lane, record)) => {
                    prop_assert_eq!(
                        got,
                        Ok(Delivery {
                            lane,
                            len: record.len()
                        })
                    );
                    prop_assert_eq!(&buf[..record.len()], &record[..]);
                    prop_assert!(buf[record.len()..].iter().all(|&b| b == 0xa5));
                }
                Err(err) => prop_assert_eq!(got, Err(err)),
            }
        }
        Op::SetBudget(budget) => {
            rx.set_budget(NonZeroU32::new(budget).expect("1 to 4"));
            model.budget = budget;
        }
        Op::Doorbell(slot) => {
            let expected = if model.has_work() { None } else { Some(()) };
            prop_assert_eq!(rx.prepare_to_sleep().map(drop), expected);
            model.announced = expected.is_some();
            if let Slot::Live(producer) = &slots[slot] {
                prop_assert_eq!(producer.wake_needed(), model.announced);
                model.announced = false;
            }
        }
    }
    check(rx, model)
}

fn run(lane_count: usize, words: u32, ops: &[Op]) -> TestCaseResult {
    let size = Lanes::required_size(lane_count, words).expect("valid geometry");
    let mut mem = vec![Line::ZERO; Line::count_for(size)];
    let (one, other): (Region<'_>, Region<'_>) = common::two_mappings(&mut mem);
    let lanes = Lanes::create(one, lane_count, words).expect("create");
    let mut rx = Lanes::attach(other).expect("attach").into_consumer();
    let mut model = Model::new(lane_count, words);
    let mut slots: Vec<Slot<'_>> = (0..SLOTS).map(|_| Slot::Empty).collect();
    check(&rx, &model)?;
    for op in ops {
        step(op, &lanes, &mut rx, &mut slots, &mut model)?;
    }
    // Release every live claim and reclaim every dead one: everything in
    // flight arrives, in the model's order, and every lane ends free.
    for slot in &mut slots {
        match core::mem::replace(slot, Slot::Empty) {
            Slot::Live(producer) => {
                model.lanes[producer.lane()].state = State::Closing;
                let _ = (*producer).release();
            }
            Slot::Dead(lane) => {
                prop_assert!(rx.reclaim(lane));
                model.lanes[lane].state = State::Closing;
            }
            Slot::Empty => {}
        }
    }
    let mut buf = vec![0; max_record(words)];
    loop {
        let expected = model.pop(buf.len());
        let got = rx.pop_into(&mut buf);
        match expected {
            Ok((lane, record)) => {
                prop_assert_eq!(
                    got,
                    Ok(Delivery {
                        lane,
                        len: record.len()
                    })
                );
                prop_assert_eq!(&buf[..record.len()], &record[..]);
            }
            Err(err) => {
                prop_assert_eq!(got, Err(err));
                break;
            }
        }
    }
    prop_assert!(model.lanes.iter().all(|lane| lane.state == State::Free));
    check(&rx, &model)
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
