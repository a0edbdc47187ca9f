//! rtrb 0.4.1's own tests, re-expressed against this crate's SPSC ring: what a
//! user switching from rtrb relies on (push and pop, `is_full`, `is_abandoned`,
//! partial and all-or-nothing slices, write chunks, `peek`) behaves the same.
//!
//! Each test's doc comment names the rtrb test or doc example it ports
//! (`tests/lib.rs`, `tests/chunks.rs`, `tests/write_and_read.rs`, and the
//! examples in `src/lib.rs` and `src/chunks.rs`). Adapted throughout:
//! capacities are rounded up to a power of two (rtrb takes any, including 0),
//! rtrb's `Producer::slots()` is `free_slots()` here and `Consumer::slots()` is
//! `len()`, `push_partial_slice`/`pop_partial_slice` return a count instead of
//! two sub-slices, and `peek` returns a copy instead of a reference.
//!
//! Not ported, and why:
//! - `tests/lib.rs` `drops`; `tests/chunks.rs` `drop_write_chunk` (its drop
//!   counts; what a commit publishes is ported) and
//!   `read_chunk_with_panic_in_drop`; the `WriteChunk::commit` doc example:
//!   payloads are `Pod`, which have no `Drop`.
//! - `tests/lib.rs` `trait_impls`, its `assert_ne!` of two producers (and of two
//!   consumers): the handles do not implement `PartialEq` (its `Debug` and
//!   error-text checks are ported).
//! - `tests/lib.rs` `zero_capacity`'s behaviour of a ring with no slots, and
//!   `tests/chunks.rs` `zero_capacity`'s: there is no such ring (its refusal is
//!   tested; a full ring stands in for "no free slot").
//! - `tests/lib.rs` `zero_sized_type_and_enormous_capacity`, its pushes into
//!   a ring of `usize::MAX / 2` slots: a slot of a zero-sized type still takes
//!   8 bytes (its stamp), so the largest capacity (2^30) is sized and
//!   accepted, not allocated.
//! - `tests/chunks.rs` `iterators` (`write_chunk_uninit`, `fill_from_iter`,
//!   `read_chunk` and its iterator) and
//!   `read_chunk_iterator_should_consume_even_if_forgotten`; the `src/chunks.rs`
//!   examples `move_items` and `push_from_iter`: there are no read chunks, no
//!   uninitialised chunks and no iterator APIs; the writes and pops of
//!   `iterators` are ported with `WriteChunk::slot` and `pop_slice`.
//! - `tests/chunks.rs` `single_capacity`'s and `trait_impls`'s read chunks
//!   (`as_slices`, `as_mut_slices`, changing an element in place, the `Debug`
//!   of `ReadChunk`, `WriteChunkUninit` and `ReadChunkIntoIter`): a consumer
//!   never borrows a slot, the producer's memory; it copies out (`peek`,
//!   `pop_exact`). Their write-chunk halves are ported.
//! - The `src/chunks.rs` examples of `pop_partial_slice_uninit` (there is no
//!   `MaybeUninit` API: `Pod` buffers are cheap to zero) and rtrb's
//!   `cached_slots` (no such API: each side caches the other's counter itself).
//! - `tests/write_and_read.rs`: the ring does not implement `std::io::Write`
//!   and `std::io::Read` (a `no_std` core); the same sequences are ported with
//!   `push_slice` and `pop_slice`, which return `Ok(0)` where rtrb's `io`
//!   impls return `WouldBlock`.
//! - The `compile_fail` example of `Consumer::peek` (no `pop` while a peeked
//!   reference lives): `peek` returns a copy, so there is nothing to hold.
#![cfg(not(loom))]

mod common;

use core::cell::UnsafeCell;
use std::thread;

use common::{pop, push};
use ipc_primitives::spsc::{ChunkError, MAX_CAPACITY, PopError, PushError, Spsc, StaticSpsc};
use ipc_primitives::{CreateError, FitError, Line, Region};
use zerocopy::IntoBytes;

/// Elements the two-thread tests send (rtrb's `parallel` sends 100,000).
const COUNT: u32 = if cfg!(miri) { 200 } else { 100_000 };

/// rtrb `tests/lib.rs` `capacity`: a ring has the capacity asked for, on both
/// sides. Here only powers of two are accepted; the others (and 0) are refused
/// by `create` and `required_size` alike, with the capacity named.
#[test]
fn capacity_is_the_one_asked_for_or_refused() {
    let mut mem = common::ring_memory::<i32>(16);
    for capacity in 0..10 {
        match Spsc::<i32>::create(Region::new(mem.as_mut_bytes()), capacity) {
            Ok(ring) => {
                assert!(capacity.is_power_of_two());
                assert_eq!(ring.capacity(), capacity);
                let (tx, rx) = ring.split();
                assert_eq!((tx.capacity(), rx.capacity()), (capacity, capacity));
                assert_eq!(tx.free_slots(), capacity as usize);
            }
            Err(err) => {
                assert!(!capacity.is_power_of_two(), "{capacity} refused: {err}");
                assert_eq!(err, CreateError::InvalidCapacity { capacity });
                assert_eq!(Spsc::<i32>::required_size(capacity), None);
            }
        }
    }
}

/// rtrb `tests/lib.rs` `zero_capacity`: rtrb makes a ring with no slots; this
/// crate refuses one, with a typed error rather than a panic.
#[test]
fn zero_capacity_is_refused() {
    let mut mem = common::ring_memory::<i32>(1);
    assert_eq!(
        Spsc::<i32>::create(Region::new(mem.as_mut_bytes()), 0).map(|_| ()),
        Err(CreateError::InvalidCapacity { capacity: 0 })
    );
    assert_eq!(Spsc::<i32>::required_size(0), None);
}

/// rtrb `tests/lib.rs` `zero_sized_type`: a ring of a zero-sized payload
/// (`()`) counts its elements like any other.
#[test]
fn zero_sized_type() {
    let mut ring = StaticSpsc::<(), 1>::new();
    let (mut tx, mut rx) = ring.split();
    assert_eq!(tx.capacity(), 1);
    assert_eq!((tx.free_slots(), rx.len()), (1, 0));
    assert_eq!(tx.try_push(()), Ok(()));
    assert_eq!((tx.free_slots(), rx.len()), (0, 1));
    assert_eq!(tx.try_push(()), Err(PushError::Full(())));
    assert_eq!(rx.peek(), Ok(()));
    assert_eq!(rx.try_pop(), Ok(()));
    assert_eq!(rx.len(), 0);
    assert_eq!(rx.peek(), Err(PopError::Empty));
}

/// rtrb `tests/lib.rs` `zero_sized_type_and_enormous_capacity` and
/// `zero_sized_type_and_excessive_capacity`: the largest capacity is accepted
/// (sized, and refused by `create` only for want of memory), one above it is
/// refused with a typed error where rtrb panics.
#[test]
fn largest_capacity_is_sized_and_one_above_is_refused() {
    let slots = (MAX_CAPACITY as usize).checked_mul(8);
    assert_eq!(
        Spsc::<()>::required_size(MAX_CAPACITY),
        slots.and_then(|bytes| bytes.checked_add(512))
    );
    let mut mem = vec![Line::ZERO; 8];
    assert!(matches!(
        Spsc::<()>::create(Region::new(mem.as_mut_bytes()), MAX_CAPACITY),
        Err(CreateError::Fit(FitError::TooSmall { .. }))
    ));
    for capacity in [MAX_CAPACITY * 2, u32::MAX] {
        assert_eq!(Spsc::<()>::required_size(capacity), None);
        assert_eq!(
            Spsc::<()>::create(Region::new(mem.as_mut_bytes()), capacity).map(|_| ()),
            Err(CreateError::InvalidCapacity { capacity })
        );
    }
}

/// rtrb `tests/lib.rs` `parallel`: one thread pushes `0..COUNT` into a small
/// ring (rtrb's 3 slots, 4 here), another pops them in order, then finds the
/// ring empty; the sum of what it popped is checked too.
#[test]
fn parallel() {
    let mut ring = StaticSpsc::<u32, 4>::new();
    let (mut tx, mut rx) = ring.split();
    thread::scope(|s| {
        s.spawn(move || (0..COUNT).for_each(|i| push(&mut tx, i)));
        let mut sum = 0_u64;
        for i in 0..COUNT {
            let value = pop(&mut rx);
            assert_eq!(value, i);
            sum += u64::from(value);
        }
        assert_eq!(sum, u64::from(COUNT) * u64::from(COUNT - 1) / 2);
        assert_eq!(rx.try_pop(), Err(PopError::Empty));
    });
}

/// rtrb `tests/lib.rs` `trait_impls` (but its `assert_ne!` of handles): the
/// ring, its sides and the errors of a push into a full ring (rtrb's has no
/// slots; this one has one, taken) and a pop or peek from an empty one have
/// `Debug` and `Display` text that names what happened, without the value.
#[test]
fn trait_impls() {
    let mut ring = StaticSpsc::<u8, 1>::new();
    assert!(format!("{ring:?}").starts_with("StaticSpsc {"));
    let mut mem = common::ring_memory::<u8>(1);
    let region_ring = Spsc::<u8>::create(Region::new(mem.as_mut_bytes()), 1).expect("create");
    assert!(format!("{region_ring:?}").starts_with("Spsc {"));

    let (mut tx, mut rx) = ring.split();
    assert!(format!("{tx:?}").starts_with("Producer {"));
    assert!(format!("{rx:?}").starts_with("Consumer {"));
    assert_eq!(format!("{:?}", rx.try_pop().unwrap_err()), "Empty");
    assert_eq!(rx.try_pop().unwrap_err().to_string(), "ring is empty");
    assert_eq!(format!("{:?}", rx.peek().unwrap_err()), "Empty");
    assert_eq!(rx.peek().unwrap_err().to_string(), "ring is empty");
    tx.try_push(1).expect("one free slot");
    assert_eq!(format!("{:?}", tx.try_push(42).unwrap_err()), "Full(..)");
    assert_eq!(tx.try_push(42).unwrap_err().to_string(), "ring is full");
    assert_eq!(tx.try_push(42).unwrap_err().into_inner(), 42);
}

/// A plain (not atomic) `u32` two threads share, as rtrb's `static mut V`:
/// Miri reports a data race on it unless something orders the accesses.
struct Plain(UnsafeCell<u32>);

// SAFETY: `no_race_with_is_abandoned` writes the value on one thread before
// dropping its producer, and reads and writes it on another only after
// `is_abandoned` returned true; the close's `Release` store and
// `is_abandoned`'s `Acquire` load order those accesses, which is the property
// under test (Miri reports the race if the ring breaks it); the scope's join
// orders the last read.
unsafe impl Sync for Plain {}

impl Plain {
    /// The value's address (a method, so that closures capture the whole
    /// `Plain`, which is `Sync`, not its cell).
    fn ptr(&self) -> *mut u32 {
        self.0.get()
    }
}

/// rtrb `tests/lib.rs` `no_race_with_is_abandoned`: what the producer wrote
/// before dropping its handle is visible to a consumer that sees
/// `is_abandoned()` (rtrb issue #114). The value is not atomic, so under Miri
/// a missing synchronisation is a reported data race, not a lucky read.
#[test]
fn no_race_with_is_abandoned() {
    for _ in 0..if cfg!(miri) { 5 } else { 100 } {
        let value = Plain(UnsafeCell::new(0));
        let mut ring = StaticSpsc::<u8, 8>::new();
        let (tx, rx) = ring.split();
        thread::scope(|s| {
            s.spawn(|| {
                // SAFETY: see `Plain`: the other thread touches the value
                // only after it sees this drop.
                unsafe { *value.ptr() = 10 };
                drop(tx);
            });
            thread::yield_now();
            if rx.is_abandoned() {
                // SAFETY: see `Plain`: the writer's access happens before.
                unsafe {
                    assert_eq!(*value.ptr(), 10);
                    *value.ptr() = 20;
                }
            }
        });
        assert!(rx.is_abandoned());
        assert!(matches!(value.0.into_inner(), 10 | 20));
    }
}

/// rtrb `src/lib.rs`, the crate example: pushes into a ring of 2, a third push
/// hands its value back in `Full`, and a consumer on another thread pops both
/// in order, then finds the ring empty.
#[test]
fn crate_example_push_and_pop() {
    let mut ring = StaticSpsc::<i32, 2>::new();
    let (mut tx, mut rx) = ring.split();
    assert_eq!(tx.try_push(10), Ok(()));
    assert_eq!(tx.try_push(20), Ok(()));
    assert_eq!(tx.try_push(30), Err(PushError::Full(30)));
    thread::scope(|s| {
        s.spawn(move || {
            assert_eq!(rx.try_pop(), Ok(10));
            assert_eq!(rx.try_pop(), Ok(20));
            assert_eq!(rx.try_pop(), Err(PopError::Empty));
        });
    });
}

/// rtrb `src/lib.rs`, the examples of `Producer::push`, `Consumer::pop`,
/// `Producer::slots`, `Consumer::slots`, `Producer::is_full` and
/// `Consumer::is_empty` (rtrb's `slots()` are `free_slots()` and `len()`).
#[test]
fn push_pop_slots_is_full_is_empty_examples() {
    let mut big = StaticSpsc::<f32, 1024>::new();
    let (tx, rx) = big.split();
    assert_eq!(tx.free_slots(), 1024);
    assert_eq!(rx.len(), 0);

    let mut ring = StaticSpsc::<i32, 1>::new();
    let (mut tx, mut rx) = ring.split();
    assert!(!tx.is_full());
    assert!(rx.is_empty());
    assert_eq!(tx.try_push(10), Ok(()));
    assert!(tx.is_full());
    assert!(!rx.is_empty());
    assert_eq!(tx.try_push(20), Err(PushError::Full(20)));
    assert_eq!(rx.try_pop(), Ok(10));
    assert_eq!(rx.try_pop(), Err(PopError::Empty));
    assert_eq!(tx.try_push(20), Ok(()));
    assert_eq!(rx.try_pop().ok(), Some(20));
}

/// rtrb `src/lib.rs`, the example of `Producer::is_abandoned`: once the
/// consumer is dropped the producer sees it, and pushing still works (to no
/// one). Here `close` is the explicit form of the drop.
#[test]
fn producer_is_abandoned_example() {
    let mut ring = StaticSpsc::<i32, 8>::new();
    let (mut tx, rx) = ring.split();
    assert!(!tx.is_abandoned());
    assert_eq!(tx.try_push(10), Ok(()));
    drop(rx);
    assert!(tx.is_abandoned());
    assert_eq!(tx.try_push(11), Ok(()));
    drop(tx);

    let (tx, rx) = ring.split();
    assert!(!tx.is_abandoned(), "a new consumer reopens its side");
    assert!(!rx.close(), "no producer sleeps waiting for space");
    assert!(tx.is_abandoned());
}

/// rtrb `src/lib.rs`, the example of `Consumer::is_abandoned`: once the
/// producer is dropped the consumer sees it, and still pops what was pushed
/// before.
#[test]
fn consumer_is_abandoned_example() {
    let mut ring = StaticSpsc::<i32, 8>::new();
    let (mut tx, mut rx) = ring.split();
    assert!(!rx.is_abandoned());
    assert_eq!(tx.try_push(10), Ok(()));
    drop(tx);
    assert!(rx.is_abandoned());
    assert_eq!(rx.try_pop(), Ok(10));
    assert_eq!(rx.try_pop(), Err(PopError::Empty));
    drop(rx);

    let (mut tx, mut rx) = ring.split();
    assert!(!rx.is_abandoned(), "a new producer reopens its side");
    assert_eq!(tx.try_push(12), Ok(()));
    assert!(!tx.close(), "no consumer sleeps");
    assert!(rx.is_abandoned());
    assert_eq!(rx.try_pop(), Ok(12));
}

/// rtrb `src/lib.rs`, the example of `Consumer::peek`: empty, then the oldest
/// element, as often as asked, and still there to pop. A copy here, where
/// rtrb returns a reference.
#[test]
fn peek_example() {
    let mut ring = StaticSpsc::<i32, 1>::new();
    let (mut tx, mut rx) = ring.split();
    assert_eq!(rx.peek(), Err(PopError::Empty));
    assert_eq!(tx.try_push(10), Ok(()));
    assert_eq!(rx.peek(), Ok(10));
    assert_eq!(rx.peek(), Ok(10));
    assert_eq!(rx.try_pop(), Ok(10));
    assert_eq!(rx.peek(), Err(PopError::Empty));
}

/// rtrb `src/chunks.rs`, the first module example: a partial push of six into
/// four slots, an all-or-nothing pop of three, a partial pop of the rest into
/// a buffer that keeps its other elements.
#[test]
fn chunks_example_partial_and_entire_slices() {
    let mut ring = StaticSpsc::<i32, 4>::new();
    let (mut tx, mut rx) = ring.split();
    let source = [1, 2, 3, 4, 5, 6];
    let pushed = tx.push_slice(&source).expect("push");
    assert_eq!(&source[..pushed], [1, 2, 3, 4]);
    assert_eq!(&source[pushed..], [5, 6]);

    let mut destination = [0; 3];
    rx.pop_exact(&mut destination).expect("three waiting");
    assert_eq!(destination, [1, 2, 3]);

    let popped = rx.pop_slice(&mut destination).expect("pop");
    assert_eq!(&destination[..popped], [4]);
    assert_eq!(&destination[popped..], [2, 3]);
    destination[popped] = 99;
    assert_eq!(destination, [4, 99, 3]);
}

/// rtrb `src/chunks.rs`, the second module example (capacity 8 here, 5 there,
/// the counts scaled): a chunk of 4 with 3 committed, a pop of 2, a peek at
/// the third, a chunk of every free slot that wraps around the end and fills
/// the ring, and a pop of all of it, in order.
#[test]
fn chunks_example_write_chunk() {
    let mut ring = StaticSpsc::<i32, 8>::new();
    let (mut tx, mut rx) = ring.split();
    let mut chunk = tx.write_chunk(4).expect("4 free");
    for (index, value) in [10, 11, 12].iter().enumerate() {
        chunk.slot(index).expect("in the chunk").write(value);
    }
    chunk.commit(3);
    assert_eq!(tx.free_slots(), 5);
    assert_eq!(rx.len(), 3);

    let mut two = [0; 2];
    rx.pop_exact(&mut two).expect("two waiting");
    assert_eq!(two, [10, 11]);
    assert_eq!(rx.peek(), Ok(12));

    let data = [20, 21, 22, 23, 24, 25, 26];
    let mut chunk = tx.write_chunk(tx.free_slots()).expect("every free slot");
    assert_eq!(chunk.len(), data.len());
    for (index, value) in data.iter().enumerate() {
        chunk.slot(index).expect("in the chunk").write(value);
    }
    chunk.commit_all();
    assert!(tx.is_full());
    assert_eq!(rx.len(), 8);

    let mut all = [0; 8];
    rx.pop_exact(&mut all).expect("eight waiting");
    assert_eq!(all, [12, 20, 21, 22, 23, 24, 25, 26]);
    assert!(rx.is_empty());
}

/// rtrb `src/chunks.rs`, the examples of `push_partial_slice` and
/// `pop_partial_slice` (`block_while_pushing_entire_slice` and
/// `block_while_popping_entire_slice`), run on two threads: a slice far
/// larger than the ring crosses it in partial batches, in order.
#[test]
fn block_while_pushing_and_popping_entire_slices() {
    let source: Vec<u32> = (0..COUNT).collect();
    let mut ring = StaticSpsc::<u32, 8>::new();
    let (mut tx, mut rx) = ring.split();
    let mut destination = vec![0; source.len()];
    thread::scope(|s| {
        s.spawn(|| {
            let mut rest = &source[..];
            while !rest.is_empty() {
                let pushed = tx.push_slice(rest).expect("push");
                rest = &rest[pushed..];
                thread::yield_now();
            }
        });
        let mut rest = &mut destination[..];
        while !rest.is_empty() {
            let popped = rx.pop_slice(rest).expect("pop");
            rest = &mut rest[popped..];
            thread::yield_now();
        }
    });
    assert_eq!(destination, source);
}

/// rtrb `tests/chunks.rs` `iterators`, without iterators: a chunk of the whole
/// ring with two slots written and committed, one popped, a chunk of the free
/// slots with two more, then three popped in order; the ring then stays empty.
#[test]
fn chunks_written_in_part_and_popped_in_order() {
    let mut ring = StaticSpsc::<i32, 4>::new();
    let (mut tx, mut rx) = ring.split();
    let mut chunk = tx.write_chunk(4).expect("4 free");
    chunk.slot(0).expect("in the chunk").write(&10);
    chunk.slot(1).expect("in the chunk").write(&11);
    chunk.commit(2);
    assert_eq!(rx.len(), 2);
    assert_eq!(rx.try_pop(), Ok(10));
    assert_eq!(rx.len(), 1);

    let mut chunk = tx.write_chunk(tx.free_slots()).expect("the free slots");
    assert_eq!(chunk.len(), 3);
    chunk.slot(0).expect("in the chunk").write(&20);
    chunk.slot(1).expect("in the chunk").write(&21);
    chunk.commit(2);
    let mut out = [0; 3];
    assert_eq!(rx.pop_slice(&mut out), Ok(3));
    assert_eq!(out, [11, 20, 21]);
    for _ in 0..if cfg!(miri) { 10 } else { 1000 } {
        assert_eq!(rx.try_pop(), Err(PopError::Empty));
    }
}

/// rtrb `tests/chunks.rs` `zero_capacity`, on a full ring (no free slot, where
/// rtrb's has no slot at all): a chunk of one is refused with the free count,
/// a chunk of none is granted, empty, and commits nothing; an exact pop of one
/// from an empty ring is refused, and of none succeeds.
#[test]
fn chunks_with_no_slot_free() {
    let mut ring = StaticSpsc::<i32, 1>::new();
    let (mut tx, mut rx) = ring.split();
    assert_eq!(rx.pop_exact(&mut [0]), Err(ChunkError::TooFewSlots(0)));
    assert_eq!(rx.pop_exact(&mut []), Ok(()));

    tx.try_push(7).expect("one free slot");
    assert_eq!(
        tx.write_chunk(1).map(|_| ()),
        Err(ChunkError::TooFewSlots(0))
    );
    let mut chunk = tx.write_chunk(0).expect("an empty chunk");
    assert_eq!(chunk.len(), 0);
    assert!(chunk.is_empty());
    assert!(chunk.slot(0).is_none());
    chunk.commit_all();
    assert_eq!(rx.len(), 1);
    assert_eq!(rx.try_pop(), Ok(7));
}

/// rtrb `tests/chunks.rs` `single_capacity`, its write half: a chunk of the
/// one slot has length 1, one writable slot and none after it; committed, the
/// value is there to peek and pop exactly.
#[test]
fn single_capacity_chunk() {
    let mut ring = StaticSpsc::<i32, 1>::new();
    let (mut tx, mut rx) = ring.split();
    let mut chunk = tx.write_chunk(1).expect("1 free");
    assert_eq!(chunk.len(), 1);
    assert!(!chunk.is_empty());
    chunk.slot(0).expect("in the chunk").write(&2);
    assert!(chunk.slot(1).is_none());
    chunk.commit_all();
    assert_eq!(rx.peek(), Ok(2));
    let mut out = [0];
    rx.pop_exact(&mut out).expect("one waiting");
    assert_eq!(out, [2]);
}

/// rtrb `tests/chunks.rs` `drop_write_chunk`, what it shows besides drop
/// counts: committing one slot of a chunk of three publishes that one only,
/// and a chunk dropped without a commit publishes nothing and frees its slots
/// for the next chunk.
#[test]
fn a_write_chunk_publishes_only_what_it_commits() {
    let mut ring = StaticSpsc::<i32, 4>::new();
    let (mut tx, mut rx) = ring.split();
    let mut chunk = tx.write_chunk(3).expect("3 free");
    for index in 0..3 {
        chunk.slot(index).expect("in the chunk").write(&1);
    }
    chunk.commit(1);
    assert_eq!(rx.len(), 1);
    assert_eq!(tx.free_slots(), 3);
    assert_eq!(rx.try_pop(), Ok(1));

    {
        let mut chunk = tx.write_chunk(3).expect("3 free");
        chunk.slot(0).expect("in the chunk").write(&2);
    }
    assert!(rx.is_empty());
    assert_eq!(tx.free_slots(), 4);
    let mut chunk = tx.write_chunk(4).expect("4 free");
    chunk.slot(0).expect("in the chunk").write(&3);
    chunk.commit(1);
    assert_eq!(rx.try_pop(), Ok(3));
    assert!(rx.is_empty());
}

/// rtrb `tests/chunks.rs` `trait_impls`, its write chunk and error halves: a
/// chunk's `Debug` names it, and an all-or-nothing pop of 100 from an empty
/// ring fails with `TooFewSlots(0)`, whose text says so.
#[test]
fn chunk_trait_impls() {
    let mut ring = StaticSpsc::<u8, 1>::new();
    let (mut tx, mut rx) = ring.split();
    let chunk = tx.write_chunk(0).expect("an empty chunk");
    assert!(format!("{chunk:?}").starts_with("WriteChunk"));
    let err = rx.pop_exact(&mut [0; 100]).unwrap_err();
    assert_eq!(format!("{err:?}"), "TooFewSlots(0)");
    assert_eq!(err.to_string(), "only 0 slots available in the ring");
}

/// rtrb `tests/chunks.rs` `push_pop_partial_slice` (the same capacity, 8):
/// partial pushes take what fits, partial pops take what is there or what
/// fits in the buffer, across the ring's end.
#[test]
fn push_pop_partial_slice() {
    let mut buf = [0; 16];
    let mut ring = StaticSpsc::<u8, 8>::new();
    let (mut tx, mut rx) = ring.split();

    assert_eq!(tx.push_slice(&[1, 2, 3]), Ok(3));
    assert_eq!(tx.push_slice(&[4, 5]), Ok(2));

    let popped = rx.pop_slice(&mut buf).expect("pop");
    assert_eq!(&buf[..popped], [1, 2, 3, 4, 5]);
    assert_eq!(tx.push_slice(&buf[..popped]), Ok(5));

    let source = [1, 2, 3, 4, 5];
    let pushed = tx.push_slice(&source).expect("push");
    assert_eq!(&source[..pushed], [1, 2, 3]);
    assert_eq!(&source[pushed..], [4, 5]);

    let popped = rx.pop_slice(&mut buf).expect("pop");
    assert_eq!(&buf[..popped], [1, 2, 3, 4, 5, 1, 2, 3]);
    assert_eq!(tx.push_slice(&buf[..popped]), Ok(8));

    let mut short_buf = [0; 3];
    assert_eq!(rx.pop_slice(&mut short_buf), Ok(3));
    assert_eq!(short_buf, [1, 2, 3]);
}

/// rtrb `tests/write_and_read.rs` `write_and_read`, with `push_slice` for
/// `io::Write::write` and `pop_slice` for `io::Read::read`: a ring of 2 takes
/// what fits, hands out what is there, and leaves the rest of the buffer.
#[test]
fn write_and_read() {
    let mut ring = StaticSpsc::<u8, 2>::new();
    let (mut tx, mut rx) = ring.split();
    assert_eq!(tx.push_slice(&[10, 11]), Ok(2));
    let mut buf = [0];
    assert_eq!(rx.pop_slice(&mut buf), Ok(1));
    assert_eq!(buf, [10]);

    assert_eq!(tx.push_slice(&[12, 99]), Ok(1));
    let mut buf = [0, 0];
    assert_eq!(rx.pop_slice(&mut buf), Ok(2));
    assert_eq!(buf, [11, 12]);

    assert_eq!(tx.push_slice(&[13, 14]), Ok(2));
    let mut buf = [0];
    assert_eq!(rx.pop_slice(&mut buf), Ok(1));
    assert_eq!(buf, [13]);
    let mut buf = [20, 21];
    assert_eq!(rx.pop_slice(&mut buf), Ok(1));
    assert_eq!(buf, [14, 21]);
}

/// rtrb `tests/write_and_read.rs` `write_empty_buf` and `read_empty_buf`:
/// pushing or popping an empty slice moves nothing, and leaves what is there.
#[test]
fn empty_slices_move_nothing() {
    let mut ring = StaticSpsc::<u8, 2>::new();
    let (mut tx, mut rx) = ring.split();
    assert_eq!(tx.push_slice(&[]), Ok(0));
    assert_eq!(tx.push_all(&[]), Ok(()));
    assert!(rx.is_empty());
    assert_eq!(tx.try_push(99), Ok(()));
    assert_eq!(rx.pop_slice(&mut []), Ok(0));
    assert_eq!(rx.pop_exact(&mut []), Ok(()));
    assert_eq!(rx.try_pop(), Ok(99));
}

/// rtrb `tests/write_and_read.rs` `write_error` and `read_error`: where rtrb's
/// `io` impls say `WouldBlock`, a partial push into a full ring and a partial
/// pop from an empty one move nothing and say 0, and the all-or-nothing forms
/// say how many slots there were.
#[test]
fn full_and_empty_rings_move_nothing() {
    let mut ring = StaticSpsc::<u8, 1>::new();
    let (mut tx, mut rx) = ring.split();
    let mut buf = [0];
    assert_eq!(rx.pop_slice(&mut buf), Ok(0));
    assert_eq!(rx.pop_exact(&mut buf), Err(ChunkError::TooFewSlots(0)));
    assert_eq!(tx.try_push(10), Ok(()));
    assert_eq!(tx.push_slice(&[99]), Ok(0));
    assert_eq!(tx.push_all(&[99]), Err(ChunkError::TooFewSlots(0)));
    assert_eq!(rx.try_pop(), Ok(10));
    assert!(rx.is_empty());
}
