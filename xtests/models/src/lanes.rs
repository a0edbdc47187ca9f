//! The fan-in lanes' model: per lane, its state, generation, word positions
//! and records in flight; for the consumer, the documented round-robin rule
//! (take from the current lane until the budget is spent or the lane is
//! empty, then move on; free a closing lane found empty) and the doorbell.
//! [`step`] runs one operation on a lane set and checks it against the
//! model; [`finish`] ends a run.

use std::collections::VecDeque;
use std::num::NonZeroU32;

use ipc_primitives::bytes::{ReserveError, max_record};
use ipc_primitives::lanes::{Delivery, LaneProducer, LaneState, Lanes, LanesConsumer, PopError};

/// Producer slots: more than lanes, so that claims fail too.
pub const SLOTS: usize = 6;

/// One operation on the lane set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `claim` into producer slot `slot`.
    Claim(usize),
    /// `claim_lane(lane)` into producer slot `slot`.
    ClaimLane(usize, usize),
    /// `push` of a fresh record of `len` bytes from slot `slot`.
    Push(usize, usize),
    /// `reserve(len)` from slot `slot`, a write of the fresh record, then
    /// commit of `commit % (len + 1)` bytes, or drop (`None`).
    Reserve(usize, usize, Option<usize>),
    /// `release` of slot `slot`.
    Release(usize),
    /// The producer in slot `slot` dies: its claim is never released.
    Die(usize),
    /// `reclaim(lane)`, only of a lane no live producer holds.
    Reclaim(usize),
    /// `pop_into` a buffer of this many bytes.
    Pop(usize),
    /// `pop_with` a buffer of this many bytes.
    PopWith(usize),
    /// `set_budget`.
    SetBudget(u32),
    /// `prepare_to_sleep`, then slot `slot`'s `wake_needed`.
    Doorbell(usize),
    /// `wait_or_sleep` with a sleeper that gives up after `sleeps` calls.
    WaitOrSleep(u32, u32),
    /// Drop the consumer and make a new one.
    Reattach,
}

/// A lane's state in the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// No producer.
    Free,
    /// A producer owns it.
    Claimed,
    /// Released or reclaimed; drained, then freed.
    Closing,
}

/// One lane of the model.
#[derive(Debug)]
pub struct Lane {
    /// Its state.
    pub state: State,
    /// Claims so far.
    pub generation: u32,
    /// Words published.
    pub head: u32,
    /// Words consumed.
    pub tail: u32,
    /// Records in flight, with the words each takes (padding included).
    pub queue: VecDeque<(Vec<u8>, u32)>,
}

/// What the lane set should hold and report.
#[derive(Debug)]
pub struct Model {
    /// The lanes.
    pub lanes: Vec<Lane>,
    /// Words per lane.
    pub words: u32,
    /// The lane whose turn it is.
    pub next: usize,
    /// Records taken in this turn.
    pub taken: u32,
    /// Records per turn.
    pub budget: u32,
    /// Records made so far.
    pub made: u32,
    /// The consumer announced on the doorbell.
    pub announced: bool,
    /// The doorbell's epoch.
    pub epoch: u32,
}

impl Model {
    /// `lanes` free, empty lanes of `words` words.
    pub fn new(lanes: usize, words: u32) -> Self {
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
            epoch: 0,
        }
    }

    /// The largest record.
    pub fn max(&self) -> usize {
        max_record(self.words)
    }

    /// A record of `len` bytes never made before.
    pub fn fresh(&mut self, len: usize) -> Vec<u8> {
        self.made = self.made.wrapping_add(1);
        super::record(self.made, len)
    }

    /// Words a record of `len` bytes takes in `lane` now (padding included).
    fn words_for(&self, lane: usize, len: usize) -> u32 {
        let words = 1 + len.div_ceil(8) as u32;
        let to_end = self.words - self.lanes[lane].head % self.words;
        words + if words > to_end { to_end } else { 0 }
    }

    /// What `reserve(len)` in `lane` must return.
    pub fn reserve(&self, lane: usize, len: usize) -> Result<(), ReserveError> {
        let max = self.max();
        if len > max {
            return Err(ReserveError::TooLarge { len, max });
        }
        let state = &self.lanes[lane];
        // The record's words, and one more after it for the marker.
        if self.words_for(lane, len) >= self.words - state.head.wrapping_sub(state.tail) {
            return Err(ReserveError::Full);
        }
        Ok(())
    }

    /// Records `record` committed in `lane`, with room reserved for
    /// `reserved` bytes.
    pub fn commit(&mut self, lane: usize, record: Vec<u8>, reserved: usize) {
        let padding = self.words_for(lane, reserved) - 1 - reserved.div_ceil(8) as u32;
        let words = padding + 1 + record.len().div_ceil(8) as u32;
        let state = &mut self.lanes[lane];
        state.head = state.head.wrapping_add(words);
        state.queue.push_back((record, words));
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
    pub fn pop(&mut self, room: usize) -> Result<(usize, Vec<u8>), PopError> {
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

    /// Whether the consumer has something to do.
    pub fn has_work(&self) -> bool {
        self.lanes.iter().any(|lane| match lane.state {
            State::Free => false,
            State::Claimed => !lane.queue.is_empty(),
            State::Closing => true,
        })
    }

    /// A producer's `wake_needed` (or release): consumes an announcement.
    fn wake(&mut self) -> bool {
        let announced = self.announced;
        if announced {
            self.announced = false;
            self.epoch = self.epoch.wrapping_add(1);
        }
        announced
    }

    /// A new consumer: it starts its scan at lane 0 with the default budget.
    pub fn reattach(&mut self) {
        self.next = 0;
        self.taken = 0;
        self.budget = 8;
    }
}

/// A producer slot.
#[derive(Debug)]
pub enum Slot<'a> {
    /// No producer.
    Empty,
    /// A live claim.
    Live(Box<LaneProducer<'a>>),
    /// Died holding this lane.
    Dead(usize),
}

/// Checks what the consumer reports against the model.
///
/// # Panics
///
/// On any disagreement.
pub fn check(rx: &LanesConsumer<'_>, model: &Model) {
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
        assert_eq!(rx.state(index), Some(expected), "state of lane {index}");
        assert_eq!(
            rx.used_words(index),
            lane.head.wrapping_sub(lane.tail) as usize,
            "used words of lane {index}"
        );
        assert!(!rx.is_quarantined(index));
    }
    assert_eq!(rx.state(model.lanes.len()), None);
    assert_eq!(rx.budget(), model.budget, "budget");
    assert_eq!(rx.doorbell().epoch(), model.epoch, "doorbell epoch");
}

/// Applies one operation (not `Reattach`, see [`Model::reattach`]) and
/// checks the result.
///
/// # Panics
///
/// On any result the model does not expect.
pub fn step<'a>(
    op: Op,
    lanes: &Lanes<'a>,
    rx: &mut LanesConsumer<'_>,
    slots: &mut [Slot<'a>],
    model: &mut Model,
) {
    match op {
        Op::Claim(slot) | Op::ClaimLane(slot, _) => {
            if !matches!(slots[slot], Slot::Empty) {
                return;
            }
            let (got, expected) = match op {
                Op::ClaimLane(_, lane) => (
                    lanes.claim_lane(lane),
                    model
                        .lanes
                        .get(lane)
                        .is_some_and(|l| l.state == State::Free)
                        .then_some(lane),
                ),
                _ => (
                    lanes.claim(),
                    model.lanes.iter().position(|l| l.state == State::Free),
                ),
            };
            assert_eq!(got.as_ref().map(|p| p.lane()), expected, "claimed lane");
            if let Some(producer) = got {
                let lane = &mut model.lanes[producer.lane()];
                lane.state = State::Claimed;
                lane.generation += 1;
                assert_eq!(producer.generation(), lane.generation, "generation");
                slots[slot] = Slot::Live(Box::new(producer));
            }
        }
        Op::Push(slot, len) => {
            if let Slot::Live(producer) = &mut slots[slot] {
                let record = model.fresh(len);
                let lane = producer.lane();
                let expected = model.reserve(lane, len);
                assert_eq!(producer.push(&record), expected, "push");
                if expected.is_ok() {
                    model.commit(lane, record, len);
                }
            }
        }
        Op::Reserve(slot, len, commit) => {
            if let Slot::Live(producer) = &mut slots[slot] {
                let record = model.fresh(len);
                let lane = producer.lane();
                let expected = model.reserve(lane, len);
                match producer.reserve(len) {
                    Err(err) => assert_eq!(Err(err), expected, "reserve"),
                    Ok(mut grant) => {
                        assert_eq!(expected, Ok(()), "reserve");
                        grant.write(0, &record).expect("in bounds");
                        if let Some(commit) = commit {
                            let committed = commit % (len + 1);
                            grant.commit(committed);
                            model.commit(lane, record[..committed].to_vec(), len);
                        }
                    }
                }
            }
        }
        Op::Release(slot) => {
            if matches!(slots[slot], Slot::Live(_))
                && let Slot::Live(producer) = core::mem::replace(&mut slots[slot], Slot::Empty)
            {
                model.lanes[producer.lane()].state = State::Closing;
                let woke = (*producer).release();
                assert_eq!(woke, model.wake(), "release rings the doorbell");
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
            let live = slots
                .iter()
                .any(|slot| matches!(slot, Slot::Live(p) if p.lane() == lane));
            if live {
                return;
            }
            let claimed = model
                .lanes
                .get(lane)
                .is_some_and(|l| l.state == State::Claimed);
            assert_eq!(rx.reclaim(lane), claimed, "reclaim lane {lane}");
            if claimed {
                model.lanes[lane].state = State::Closing;
                for slot in slots.iter_mut() {
                    if matches!(slot, Slot::Dead(l) if *l == lane) {
                        *slot = Slot::Empty;
                    }
                }
            }
        }
        Op::Pop(room) => {
            let mut buf = vec![0xa5; room + 8];
            let expected = model.pop(room);
            let got = rx.pop_into(&mut buf[..room]);
            match expected {
                Ok((lane, record)) => {
                    let len = record.len();
                    assert_eq!(got, Ok(Delivery { lane, len }), "pop");
                    assert_eq!(&buf[..len], &record[..], "popped bytes");
                    assert!(buf[len..].iter().all(|&b| b == 0xa5), "wrote past");
                }
                Err(err) => {
                    assert_eq!(got, Err(err), "pop");
                    assert!(buf.iter().all(|&b| b == 0xa5), "wrote on a failed pop");
                }
            }
        }
        Op::PopWith(room) => {
            let mut buf = vec![0; room];
            let expected = model.pop(room);
            assert_eq!(
                rx.pop_with(&mut buf, |lane, record| (lane, record.to_vec())),
                expected,
                "pop_with"
            );
        }
        Op::SetBudget(budget) => {
            rx.set_budget(NonZeroU32::new(budget).expect("1 to 4"));
            model.budget = budget;
        }
        Op::Doorbell(slot) => {
            let expected = (!model.has_work()).then_some(model.epoch);
            assert_eq!(rx.prepare_to_sleep(), expected, "prepare_to_sleep");
            model.announced = expected.is_some();
            if let Slot::Live(producer) = &slots[slot] {
                assert_eq!(producer.wake_needed(), model.wake(), "wake_needed");
            }
        }
        Op::WaitOrSleep(spins, sleeps) => {
            let work = model.has_work();
            let mut calls = 0;
            let result = rx.wait_or_sleep(spins, |_, epoch| {
                calls += 1;
                assert!(calls <= sleeps + 1, "slept after the sleeper gave up");
                assert_eq!(epoch, model.epoch, "asked to sleep on a stale epoch");
                if calls > sleeps { Err(()) } else { Ok(()) }
            });
            if work {
                assert_eq!((result, calls), (Ok(()), 0), "work was waiting");
            } else {
                assert_eq!((result, calls), (Err(()), sleeps + 1), "gave up");
                model.announced = false;
            }
        }
        Op::Reattach => unreachable!("handled by the caller"),
    }
}

/// Releases the live producers and reclaims the dead ones' lanes; then
/// everything in flight must arrive, in the model's order, and every lane
/// end free.
///
/// # Panics
///
/// On any result the model does not expect.
pub fn finish(rx: &mut LanesConsumer<'_>, slots: &mut [Slot<'_>], model: &mut Model) {
    for slot in slots.iter_mut() {
        match core::mem::replace(slot, Slot::Empty) {
            Slot::Live(producer) => {
                model.lanes[producer.lane()].state = State::Closing;
                let woke = (*producer).release();
                assert_eq!(woke, model.wake(), "release rings the doorbell");
            }
            Slot::Dead(lane) => {
                assert!(rx.reclaim(lane), "a dead owner's lane");
                model.lanes[lane].state = State::Closing;
            }
            Slot::Empty => {}
        }
    }
    let mut buf = vec![0; model.max()];
    loop {
        let expected = model.pop(buf.len());
        let got = rx.pop_into(&mut buf);
        match expected {
            Ok((lane, record)) => {
                assert_eq!(
                    got,
                    Ok(Delivery {
                        lane,
                        len: record.len()
                    }),
                    "drain"
                );
                assert_eq!(&buf[..record.len()], &record[..], "drained bytes");
            }
            Err(err) => {
                assert_eq!(got, Err(err), "drained");
                break;
            }
        }
    }
    assert!(model.lanes.iter().all(|lane| lane.state == State::Free));
    check(rx, model);
}
