//! Property tests of the record ring against its model (`models::bytes`): a
//! `VecDeque<Vec<u8>>` of the records in flight, and the word positions the
//! documented rules give (a header word plus `ceil(len / 8)` payload words per
//! record, padding to the end when a record would straddle it, records at most
//! `(capacity / 2 - 1) * 8` bytes).
//!
//! Random sequences of pushes (lengths from 0 past the largest), grants
//! (written in two parts, committed whole, committed shorter, or abandoned)
//! and pops (into buffers of random lengths, into a `heapless::Vec`, through a
//! closure) run against a `StaticRecordRing` and against a ring in a region,
//! with capacities 4 to 64 words so positions wrap the ring all the time, and
//! with the region's counters started near `u32::MAX` so they wrap too. Every
//! result is compared with the model: each pop returns exactly the oldest
//! record, `Empty`, `Full`, `TooLarge` and `TooSmall` come exactly when the
//! model says, and `used_words` (and the rest `models::bytes::check` compares)
//! is the model's after every operation. At
//! random points the handles are dropped and re-made (`split` again, or
//! `RecordRing::attach`, one side per mapping) and the ring resumes where it
//! was.
#![cfg(not(loom))]

#[path = "../../../tests/common/mod.rs"]
mod common;

use ipc_primitives::bytes::{
    Consumer, OutOfBounds, PopError, Producer, RecordRing, StaticRecordRing,
};
use ipc_primitives::{Line, Region};
use models::bytes::{Model, check};
use proptest::prelude::*;
use proptest::test_runner::TestCaseResult;
use zerocopy::IntoBytes;

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

/// Longest record asked for: past the largest of the largest ring (248).
const MAX_LEN: usize = 260;

/// The `N` of the `heapless::Vec` pops.
const VEC: usize = 64;

#[derive(Debug, Clone)]
enum Op {
    Push(usize),
    /// Reserve `len`, write it in two parts split at `split`, then commit
    /// `commit % (len + 1)` bytes, or abandon the grant (`None`).
    Reserve {
        len: usize,
        split: usize,
        commit: Option<usize>,
    },
    PopInto(usize),
    PopVec,
    PopWith(usize),
    /// Drop both handles and make new ones.
    Reattach,
}

fn op() -> impl Strategy<Value = Op> {
    let len = prop_oneof![
        2 => 0..=MAX_LEN,
        1 => Just(0usize),
        1 => prop::sample::select(vec![8usize, 24, 56, 120, 248]),
    ];
    prop_oneof![
        4 => len.clone().prop_map(Op::Push),
        3 => (len.clone(), any::<usize>(), proptest::option::weighted(0.8, any::<usize>()))
            .prop_map(|(len, split, commit)| Op::Reserve { len, split, commit }),
        3 => len.prop_map(Op::PopInto),
        1 => Just(Op::PopVec),
        1 => (0..=MAX_LEN).prop_map(Op::PopWith),
        1 => Just(Op::Reattach),
    ]
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(op(), 0..MAX_OPS)
}

fn capacity() -> impl Strategy<Value = u32> {
    prop::sample::select(vec![4u32, 8, 16, 32, 64])
}

/// The position the ring in a region starts from (head = tail = start).
fn start() -> impl Strategy<Value = u32> {
    prop_oneof![
        Just(0u32),
        (u32::MAX - 80..=u32::MAX),
        (i32::MAX as u32 - 40..=i32::MAX as u32 + 40),
        any::<u32>(),
    ]
}

/// Applies one operation (not `Reattach`) to the ring and the model.
fn step(
    op: &Op,
    tx: &mut Producer<'_>,
    rx: &mut Consumer<'_>,
    model: &mut Model,
) -> TestCaseResult {
    match *op {
        Op::Push(len) => {
            let record = model.fresh(len);
            let expected = model.reserve(len);
            prop_assert_eq!(tx.push(&record), expected);
            if expected.is_ok() {
                model.commit(record, len);
            }
        }
        Op::Reserve { len, split, commit } => {
            let record = model.fresh(len);
            let expected = model.reserve(len);
            match tx.reserve(len) {
                Err(err) => prop_assert_eq!(Err(err), expected),
                Ok(mut grant) => {
                    prop_assert_eq!(Ok(()), expected);
                    prop_assert_eq!(grant.len(), len);
                    prop_assert_eq!(
                        grant.write(len, &[0]),
                        Err(OutOfBounds {
                            offset: len,
                            len: 1,
                            reserved: len
                        })
                    );
                    let at = split % (len + 1);
                    prop_assert_eq!(grant.write(at, &record[at..]), Ok(()));
                    prop_assert_eq!(grant.write(0, &record[..at]), Ok(()));
                    if let Some(commit) = commit {
                        let committed = commit % (len + 1);
                        grant.commit(committed);
                        model.commit(record[..committed].to_vec(), len);
                    }
                }
            }
        }
        Op::PopInto(room) => {
            let mut buf = vec![0xa5; room + 8];
            let expected = model.expect_pop(room);
            let got = rx.pop_into(&mut buf[..room]);
            prop_assert_eq!(got, expected.as_ref().map(Vec::len).map_err(|e| *e));
            if let Ok(record) = &expected {
                prop_assert_eq!(&buf[..record.len()], &record[..]);
            }
            let untouched = expected.map_or(0, |record| record.len());
            prop_assert!(
                buf[untouched..].iter().all(|&b| b == 0xa5),
                "pop_into wrote past the record"
            );
        }
        Op::PopVec => {
            let expected = model.expect_pop(VEC);
            let got = rx.pop_vec::<VEC>().map(|record| record.to_vec());
            prop_assert_eq!(got, expected);
        }
        Op::PopWith(room) => {
            let mut buf = vec![0; room];
            let expected = model.expect_pop(room);
            prop_assert_eq!(rx.pop_with(&mut buf, <[u8]>::to_vec), expected);
        }
        Op::Reattach => unreachable!("handled by the caller"),
    }
    check(tx, rx, model);
    Ok(())
}

/// Runs one segment of operations (between re-attachments) on fresh handles.
fn run_segment(
    segment: &[Op],
    mut tx: Producer<'_>,
    mut rx: Consumer<'_>,
    model: &mut Model,
) -> TestCaseResult {
    check(&tx, &rx, model);
    for op in segment {
        step(op, &mut tx, &mut rx, model)?;
    }
    Ok(())
}

/// Pops everything left and compares it with the model.
fn drain(mut rx: Consumer<'_>, model: &mut Model) -> TestCaseResult {
    let mut buf = vec![0; MAX_LEN];
    while let Some(record) = model.pop() {
        let len = rx.pop_into(&mut buf).expect("a record");
        prop_assert_eq!(&buf[..len], &record[..]);
    }
    prop_assert_eq!(rx.pop_into(&mut buf), Err(PopError::Empty));
    prop_assert_eq!(rx.used_words(), 0);
    Ok(())
}

fn is_reattach(op: &Op) -> bool {
    matches!(op, Op::Reattach)
}

fn run_static<const WORDS: usize>(ops: &[Op]) -> TestCaseResult {
    let mut ring = StaticRecordRing::<WORDS>::new();
    let mut model = Model::new(WORDS as u32, 0);
    for segment in ops.split(is_reattach) {
        let (tx, rx) = ring.split();
        run_segment(segment, tx, rx, &mut model)?;
    }
    drain(ring.split().1, &mut model)
}

fn run_static_any(capacity: u32, ops: &[Op]) -> TestCaseResult {
    match capacity {
        4 => run_static::<4>(ops),
        8 => run_static::<8>(ops),
        16 => run_static::<16>(ops),
        32 => run_static::<32>(ops),
        64 => run_static::<64>(ops),
        _ => unreachable!("capacity strategy yields 4 to 64"),
    }
}

/// Re-attaches to the ring in `mem`: one `RecordRing` split in two, or each
/// side through a mapping of its own (as two processes would).
fn attach(mem: &mut [Line], round: usize) -> (Producer<'_>, Consumer<'_>) {
    if round.is_multiple_of(2) {
        RecordRing::attach(Region::new(mem.as_mut_bytes()))
            .expect("attach")
            .split()
    } else {
        let (one, other) = common::two_mappings(mem);
        let tx = RecordRing::attach(one).expect("attach").into_producer();
        (
            tx,
            RecordRing::attach(other).expect("attach").into_consumer(),
        )
    }
}

fn run_region(capacity: u32, start: u32, ops: &[Op]) -> TestCaseResult {
    let size = RecordRing::required_size(capacity).expect("valid capacity");
    let mut mem = vec![Line::ZERO; Line::count_for(size)];
    let mut model = Model::new(capacity, start);
    RecordRing::create(Region::new(mem.as_mut_bytes()), capacity).expect("create");
    common::set_ring_counters(&mut mem, start, start);
    for (round, segment) in ops.split(is_reattach).enumerate() {
        let (tx, rx) = attach(&mut mem, round);
        run_segment(segment, tx, rx, &mut model)?;
        prop_assert_eq!(common::ring_counters(&mem), (model.head, model.tail));
    }
    let (_, rx) = attach(&mut mem, 0);
    drain(rx, &mut model)
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn static_ring_matches_model(capacity in capacity(), ops in ops()) {
        run_static_any(capacity, &ops)?;
    }

    #[test]
    fn region_ring_matches_model(capacity in capacity(), start in start(), ops in ops()) {
        run_region(capacity, start, &ops)?;
    }
}
