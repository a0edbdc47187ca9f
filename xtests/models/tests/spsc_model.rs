//! Property tests of the SPSC ring and the seqlock against simple models.
//!
//! Random sequences of every ring operation (single and batch push/pop, grants
//! committed or abandoned) run against a `StaticSpsc` and against a ring placed in
//! a region, with capacities 1 to 16 so slot indices wrap all the time, and with
//! the region's counters started near `u32::MAX` so they wrap too. Each result is
//! compared with the model (`models::spsc`): every pop returns exactly the
//! model's element, and `Full`/`Empty` come exactly when the model is
//! full/empty; `len`, `is_empty`, `free_slots` and the event's epoch are checked
//! after every operation, and a region's shared counters at every re-attachment. At random points the handles
//! are dropped and re-made (`split` again, or `Spsc::attach` to the same region)
//! and the ring must resume where it was. Each ring runs with elements whose
//! slots are stamped (`u64`, `[u32; 3]`) and with `[u64; 8]`, past the largest
//! stamped stride (56 bytes), whose ring takes the index protocol (slots
//! without stamps, the consumer going by `head`). The seqlock is checked
//! against "the last value written" and a write counter.
#![cfg(not(loom))]

#[path = "../../../tests/common/mod.rs"]
mod common;

use ipc_primitives::seqlock::{Reader, SeqLock, Spins, StaticSeqLock, Writer};
use ipc_primitives::spsc::{
    Consumer, OutOfBounds, PopError, Producer, PushError, Spsc, StaticSpsc,
};
use ipc_primitives::{AttachError, FitError, Kind, Line, Region};
use models::Elem;
use models::spsc::{Model, check};
use proptest::prelude::*;
use proptest::test_runner::TestCaseResult;
use zerocopy::IntoBytes;

/// Proptest cases per test: few under Miri, which interprets every step.
fn config() -> ProptestConfig {
    if cfg!(miri) {
        ProptestConfig {
            cases: 3,
            // Miri isolates the file system, so no regression files.
            failure_persistence: None,
            ..ProptestConfig::default()
        }
    } else {
        ProptestConfig::with_cases(256)
    }
}

/// Longest operation sequence generated.
const MAX_OPS: usize = if cfg!(miri) { 40 } else { 300 };

#[derive(Debug, Clone)]
enum Op {
    Push,
    PushSlice(usize),
    Pop,
    PopSlice(usize),
    /// Grant, write and commit: the whole value with `write`, or with two
    /// `write_bytes` calls split at `split % (size + 1)`.
    Grant {
        split: Option<usize>,
    },
    /// Grant, maybe write a value that must never be popped, then drop the grant.
    Abandon {
        write: bool,
    },
    /// Drop both handles and make new ones.
    Reattach,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::Push),
        2 => (0usize..=20).prop_map(Op::PushSlice),
        3 => Just(Op::Pop),
        2 => (0usize..=20).prop_map(Op::PopSlice),
        2 => proptest::option::of(0usize..64).prop_map(|split| Op::Grant { split }),
        1 => any::<bool>().prop_map(|write| Op::Abandon { write }),
        1 => Just(Op::Reattach),
    ]
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(op(), 0..MAX_OPS)
}

fn capacity() -> impl Strategy<Value = u32> {
    prop::sample::select(vec![1u32, 2, 4, 8, 16])
}

/// The counter value the ring in a region starts from (head = tail = start).
fn start() -> impl Strategy<Value = u32> {
    prop_oneof![
        Just(0u32),
        (u32::MAX - 40..=u32::MAX),
        (i32::MAX as u32 - 20..=i32::MAX as u32 + 20),
        any::<u32>(),
    ]
}

/// Applies one operation (not `Reattach`) to the ring and the model.
fn step<T: Elem>(
    op: &Op,
    tx: &mut Producer<'_, T>,
    rx: &mut Consumer<'_, T>,
    model: &mut Model<T>,
) -> TestCaseResult {
    match *op {
        Op::Push => {
            let value = model.fresh();
            if model.free() == 0 {
                prop_assert_eq!(tx.try_push(value), Err(PushError::Full(value)));
            } else {
                prop_assert_eq!(tx.try_push(value), Ok(()));
                model.push(value);
            }
        }
        Op::PushSlice(len) => {
            let items: Vec<T> = (0..len).map(|_| model.fresh()).collect();
            let expected = len.min(model.free());
            prop_assert_eq!(tx.push_slice(&items), Ok(expected));
            for &item in &items[..expected] {
                model.push(item);
            }
        }
        Op::Pop => prop_assert_eq!(rx.try_pop(), model.pop().ok_or(PopError::Empty)),
        Op::PopSlice(len) => {
            let sentinel = T::make(0);
            let mut out = vec![sentinel; len];
            let expected = len.min(model.queue.len());
            prop_assert_eq!(rx.pop_slice(&mut out), Ok(expected));
            let popped: Vec<T> = (0..expected).filter_map(|_| model.pop()).collect();
            prop_assert_eq!(&out[..expected], &popped[..]);
            prop_assert!(
                out[expected..].iter().all(|v| *v == sentinel),
                "pop_slice wrote past the elements it popped"
            );
        }
        Op::Grant { split } => {
            let value = model.fresh();
            if model.free() == 0 {
                prop_assert!(matches!(tx.grant(), Err(PushError::Full(()))));
            } else {
                let mut grant = tx.grant().expect("a slot is free");
                let size = core::mem::size_of::<T>();
                prop_assert_eq!(
                    grant.write_bytes(size, &[0]),
                    Err(OutOfBounds {
                        offset: size,
                        len: 1,
                        size
                    })
                );
                match split {
                    None => grant.write(&value),
                    Some(split) => {
                        let bytes = value.as_bytes();
                        let at = split % (bytes.len() + 1);
                        prop_assert_eq!(grant.write_bytes(0, &bytes[..at]), Ok(()));
                        prop_assert_eq!(grant.write_bytes(at, &bytes[at..]), Ok(()));
                    }
                }
                grant.commit();
                model.push(value);
            }
        }
        Op::Abandon { write } => {
            let never = model.fresh();
            if model.free() == 0 {
                prop_assert!(matches!(tx.grant(), Err(PushError::Full(()))));
            } else {
                // Dropped at the end of this block, unpublished.
                let mut grant = tx.grant().expect("a slot is free");
                if write {
                    grant.write(&never);
                    // In the slot, never published.
                    *model.next_slot() = never;
                }
            }
        }
        Op::Reattach => unreachable!("handled by the caller"),
    }
    check(tx, rx, model);
    Ok(())
}

/// Runs one segment of operations (between re-attachments) on fresh handles.
fn run_segment<T: Elem>(
    segment: &[Op],
    mut tx: Producer<'_, T>,
    mut rx: Consumer<'_, T>,
    model: &mut Model<T>,
) -> TestCaseResult {
    // New handles resume exactly where the old ones stopped.
    check(&tx, &rx, model);
    for op in segment {
        step(op, &mut tx, &mut rx, model)?;
    }
    Ok(())
}

/// Pops everything left and compares it with the model.
fn drain<T: Elem>(mut rx: Consumer<'_, T>, model: &mut Model<T>) -> TestCaseResult {
    let mut out = vec![T::make(0); model.capacity + 1];
    let left: Vec<T> = core::iter::from_fn(|| model.pop()).collect();
    prop_assert_eq!(rx.pop_slice(&mut out), Ok(left.len()));
    prop_assert_eq!(&out[..left.len()], &left[..]);
    prop_assert_eq!(rx.try_pop(), Err(PopError::Empty));
    Ok(())
}

fn is_reattach(op: &Op) -> bool {
    matches!(op, Op::Reattach)
}

fn run_static<T: Elem, const N: usize>(ops: &[Op]) -> TestCaseResult {
    let mut ring = StaticSpsc::<T, N>::new();
    let mut model = Model::new(N, 0);
    for segment in ops.split(is_reattach) {
        let (tx, rx) = ring.split();
        run_segment(segment, tx, rx, &mut model)?;
    }
    drain(ring.split().1, &mut model)
}

fn run_static_any<T: Elem>(capacity: u32, ops: &[Op]) -> TestCaseResult {
    match capacity {
        1 => run_static::<T, 1>(ops),
        2 => run_static::<T, 2>(ops),
        4 => run_static::<T, 4>(ops),
        8 => run_static::<T, 8>(ops),
        16 => run_static::<T, 16>(ops),
        _ => unreachable!("capacity strategy yields 1 to 16"),
    }
}

/// Re-attaches to the ring in `mem`, alternating between one `Spsc` split in
/// two and two separate attachments through two mappings (as two processes
/// would).
fn attach<T: Elem>(
    mem: &mut [Line],
    capacity: u32,
    round: usize,
) -> Result<(Producer<'_, T>, Consumer<'_, T>), TestCaseError> {
    let fail = |e: AttachError| TestCaseError::fail(e.to_string());
    if round.is_multiple_of(2) {
        let ring = Spsc::<T>::attach(Region::new(mem.as_mut_bytes())).map_err(fail)?;
        prop_assert_eq!(ring.capacity(), capacity);
        Ok(ring.split())
    } else {
        let (one, other) = common::two_mappings(mem);
        let ring = Spsc::<T>::attach(one).map_err(fail)?;
        prop_assert_eq!(ring.capacity(), capacity);
        let rx = Spsc::<T>::attach(other).map_err(fail)?.into_consumer();
        Ok((ring.into_producer(), rx))
    }
}

fn run_region<T: Elem>(capacity: u32, start: u32, ops: &[Op]) -> TestCaseResult {
    let mut mem = common::ring_memory::<T>(capacity);
    let mut model = Model::new(capacity as usize, start);
    if start != 0 {
        Spsc::<T>::create(Region::new(mem.as_mut_bytes()), capacity).expect("create");
        common::set_ring_counters(&mut mem, start, start);
    }
    for (round, segment) in ops.split(is_reattach).enumerate() {
        let (tx, rx) = if round == 0 && start == 0 {
            let ring =
                Spsc::<T>::create(Region::new(mem.as_mut_bytes()), capacity).expect("create");
            prop_assert_eq!(ring.capacity(), capacity);
            ring.split()
        } else {
            attach(&mut mem, capacity, round)?
        };
        run_segment(segment, tx, rx, &mut model)?;
        prop_assert_eq!(common::ring_counters(&mem), (model.head, model.tail));
    }
    let (_, rx) = attach(&mut mem, capacity, 0)?;
    drain(rx, &mut model)
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn static_ring_of_u64_matches_model(capacity in capacity(), ops in ops()) {
        run_static_any::<u64>(capacity, &ops)?;
    }

    #[test]
    fn static_ring_of_odd_sized_elements_matches_model(capacity in capacity(), ops in ops()) {
        run_static_any::<[u32; 3]>(capacity, &ops)?;
    }

    #[test]
    fn region_ring_of_u64_matches_model(capacity in capacity(), start in start(), ops in ops()) {
        run_region::<u64>(capacity, start, &ops)?;
    }

    #[test]
    fn region_ring_of_odd_sized_elements_matches_model(
        capacity in capacity(),
        start in start(),
        ops in ops(),
    ) {
        run_region::<[u32; 3]>(capacity, start, &ops)?;
    }

    #[test]
    fn static_ring_of_unstamped_elements_matches_model(capacity in capacity(), ops in ops()) {
        run_static_any::<[u64; 8]>(capacity, &ops)?;
    }

    #[test]
    fn region_ring_of_unstamped_elements_matches_model(
        capacity in capacity(),
        start in start(),
        ops in ops(),
    ) {
        run_region::<[u64; 8]>(capacity, start, &ops)?;
    }

    #[test]
    fn static_seqlock_matches_model(ops in seq_ops()) {
        let mut lock = StaticSeqLock::<[u32; 3]>::new();
        let mut model = SeqModel::default();
        for segment in ops.split(|op| matches!(op, SeqOp::Reattach)) {
            let (writer, reader) = lock.split();
            run_seq_segment(segment, writer, reader, &mut model)?;
        }
    }

    #[test]
    fn region_seqlock_matches_model(ops in seq_ops()) {
        let mut mem = common::seqlock_memory::<u64>();
        let mut model = SeqModel::default();
        for (round, segment) in ops.split(|op| matches!(op, SeqOp::Reattach)).enumerate() {
            let region = Region::new(mem.as_mut_bytes());
            let lock = if round == 0 {
                SeqLock::<u64>::create(region).expect("create")
            } else {
                SeqLock::<u64>::attach(region).map_err(|e| TestCaseError::fail(e.to_string()))?
            };
            let reader = lock.reader();
            run_seq_segment(segment, lock.into_writer(), reader, &mut model)?;
        }
    }
}

#[derive(Debug, Clone)]
enum SeqOp {
    Write,
    Read,
    /// `read_versioned` with this many attempts (0 means one).
    ReadWith(u32),
    /// Drop the writer and reader and make new ones.
    Reattach,
}

fn seq_ops() -> impl Strategy<Value = Vec<SeqOp>> {
    let op = prop_oneof![
        3 => Just(SeqOp::Write),
        2 => Just(SeqOp::Read),
        2 => (0u32..4).prop_map(SeqOp::ReadWith),
        1 => Just(SeqOp::Reattach),
    ];
    prop::collection::vec(op, 0..MAX_OPS)
}

/// What the seqlock should hold: the last value written and the writes so far.
#[derive(Default)]
struct SeqModel {
    writes: u64,
}

impl SeqModel {
    /// The value of the `n`th write; write 0 is the initial all-zero value.
    fn value<T: Elem>(n: u64) -> T {
        if n == 0 { T::new_zeroed() } else { T::make(n) }
    }
}

fn run_seq_segment<T: Elem>(
    segment: &[SeqOp],
    mut writer: Writer<'_, T>,
    reader: Reader<'_, T>,
    model: &mut SeqModel,
) -> TestCaseResult {
    let last = |model: &SeqModel| SeqModel::value::<T>(model.writes);
    for op in segment {
        match *op {
            SeqOp::Write => {
                model.writes += 1;
                writer.write(&last(model));
            }
            SeqOp::Read => prop_assert_eq!(reader.try_read(), Ok(last(model))),
            SeqOp::ReadWith(attempts) => prop_assert_eq!(
                reader
                    .read_versioned(Spins(attempts))
                    .map(|(value, version)| (value, common::version(version))),
                Ok((last(model), model.writes))
            ),
            SeqOp::Reattach => unreachable!("handled by the caller"),
        }
        prop_assert_eq!(common::version(reader.version()), model.writes);
        prop_assert_eq!(common::version(writer.version()), model.writes);
    }
    // Copies of a reader read the same.
    let copy = reader;
    prop_assert_eq!(copy.try_read(), Ok(last(model)));
    Ok(())
}

#[test]
fn attach_validates_the_header() {
    let mut mem = common::ring_memory::<u64>(4);
    assert_eq!(
        Spsc::<u64>::attach(Region::new(mem.as_mut_bytes())).map(|_| ()),
        Err(AttachError::NotInitialized)
    );
    Spsc::<u64>::create(Region::new(mem.as_mut_bytes()), 4).expect("create");
    assert_eq!(
        Spsc::<[u32; 3]>::attach(Region::new(mem.as_mut_bytes())).map(|_| ()),
        Err(AttachError::WrongElement {
            expected: ipc_primitives::ElementLayout {
                size: 12,
                stride: 16
            },
            found: ipc_primitives::ElementLayout { size: 8, stride: 8 },
        })
    );
    assert_eq!(
        SeqLock::<u64>::attach(Region::new(mem.as_mut_bytes())).map(|_| ()),
        Err(AttachError::WrongKind {
            expected: Kind::SeqLock,
            found: Kind::Spsc as u32,
        })
    );
    // The header says 4 slots; the region has room for 3.
    let needed = Spsc::<u64>::required_size(4).unwrap();
    let bytes = mem.as_mut_bytes();
    assert_eq!(
        Spsc::<u64>::attach(Region::new(&mut bytes[..needed - 8])).map(|_| ()),
        Err(AttachError::Fit(FitError::TooSmall {
            needed,
            actual: needed - 8,
        }))
    );
    assert_eq!(
        Spsc::<u64>::attach(Region::new(&mut bytes[8..])).map(|_| ()),
        Err(AttachError::Fit(FitError::Misaligned { required: 128 }))
    );
    // More elements than slots: a corrupt peer.
    common::set_ring_counters(&mut mem, 9, 2);
    assert_eq!(
        Spsc::<u64>::attach(Region::new(mem.as_mut_bytes())).map(|_| ()),
        Err(AttachError::Corrupted)
    );
    // The magic is written last; anything else there is refused.
    mem.as_mut_bytes()[..4].copy_from_slice(&0xdead_beef_u32.to_ne_bytes());
    assert_eq!(
        Spsc::<u64>::attach(Region::new(mem.as_mut_bytes())).map(|_| ()),
        Err(AttachError::WrongMagic { found: 0xdead_beef })
    );
}

#[test]
fn attach_allows_tail_ahead_of_head_only_with_stamps() {
    // With stamps the consumer may have popped what a producer stamped but
    // died before publishing: `tail` up to a ring's worth ahead is valid.
    let mut mem = common::ring_memory::<[u64; 7]>(4);
    Spsc::<[u64; 7]>::create(Region::new(mem.as_mut_bytes()), 4).expect("create");
    common::set_ring_counters(&mut mem, 2, 6);
    let ring = Spsc::<[u64; 7]>::attach(Region::new(mem.as_mut_bytes())).expect("attach");
    let (tx, mut rx) = ring.split();
    assert_eq!((tx.len(), rx.try_pop()), (0, Err(PopError::Empty)));
    drop((tx, rx));
    common::set_ring_counters(&mut mem, 2, 7);
    assert_eq!(
        Spsc::<[u64; 7]>::attach(Region::new(mem.as_mut_bytes())).map(|_| ()),
        Err(AttachError::Corrupted)
    );
    // Without stamps (the index protocol) the consumer pops only what `head`
    // counts: `tail` ahead of it at all is a corrupt peer.
    let mut mem = common::ring_memory::<[u64; 8]>(4);
    Spsc::<[u64; 8]>::create(Region::new(mem.as_mut_bytes()), 4).expect("create");
    common::set_ring_counters(&mut mem, 2, 3);
    assert_eq!(
        Spsc::<[u64; 8]>::attach(Region::new(mem.as_mut_bytes())).map(|_| ()),
        Err(AttachError::Corrupted)
    );
    common::set_ring_counters(&mut mem, 3, 2);
    let (_, mut rx) = Spsc::<[u64; 8]>::attach(Region::new(mem.as_mut_bytes()))
        .expect("attach")
        .split();
    assert_eq!(rx.try_pop(), Ok([0; 8]), "the zeroed slot that head counts");
    assert_eq!(rx.try_pop(), Err(PopError::Empty));
}

#[test]
fn static_structures_survive_moves_with_padded_slots() {
    // A `[u32; 3]` slot has 4 padding bytes sharing a word with the value. A move
    // of the structure may drop their contents (Miri makes them uninitialised),
    // yet reads of the whole word must stay defined and the values must survive.
    let mut lock = StaticSeqLock::<[u32; 3]>::new();
    assert_eq!(lock.split().1.try_read(), Ok([0; 3]));
    lock.split().0.write(&[1, 2, 3]);
    let mut moved = Box::new(lock);
    assert_eq!(moved.split().1.try_read(), Ok([1, 2, 3]));
    let mut moved_back = *moved;
    let (writer, reader) = moved_back.split();
    assert_eq!((reader.try_read(), writer.version()), (Ok([1, 2, 3]), 1));

    let mut ring = StaticSpsc::<[u32; 3], 2>::new();
    {
        let (mut tx, _) = ring.split();
        // Writing the last 4 bytes merges them into a word never written whole.
        let mut grant = tx.grant().expect("empty ring");
        grant
            .write_bytes(8, &7u32.to_ne_bytes())
            .expect("in bounds");
        grant
            .write_bytes(0, [5u32, 6].as_bytes())
            .expect("in bounds");
        grant.commit();
    }
    let mut moved = Box::new(ring);
    {
        let (mut tx, mut rx) = moved.split();
        let mut grant = tx.grant().expect("one slot free");
        grant
            .write_bytes(8, &9u32.to_ne_bytes())
            .expect("in bounds");
        grant
            .write_bytes(0, [8u32, 8].as_bytes())
            .expect("in bounds");
        grant.commit();
        assert_eq!(rx.try_pop(), Ok([5, 6, 7]));
    }
    let mut moved_back = *moved;
    let (_, mut rx) = moved_back.split();
    assert_eq!(rx.try_pop(), Ok([8, 8, 9]));
    assert_eq!(rx.try_pop(), Err(PopError::Empty));
}
