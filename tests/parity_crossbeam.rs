//! crossbeam-queue 0.3.14's `ArrayQueue` tests (`tests/array_queue.rs`), the
//! ones with one producer and one consumer, re-expressed against this crate's
//! SPSC ring: capacity, `len`/`is_empty`/`is_full`, and two-thread runs that
//! check every element arrives once, in order.
//!
//! Each test's doc comment names the crossbeam test it ports. Adapted
//! throughout: capacities are rounded up to a power of two (crossbeam takes
//! any above 0), `push`/`pop` are `try_push`/`try_pop` on the two sides
//! (crossbeam's queue is one shared value), and `pop`'s `None` is
//! `Err(PopError::Empty)`.
//!
//! Not ported, and why:
//! - `mpmc`, `mpmc_ring_buffer`, `linearizable`: several producers and
//!   consumers; this ring has one of each.
//! - `drops`: payloads are `Pod`, which have no `Drop`.
//! - `exclusive_reference` (`push_mut`/`pop_mut` through `&mut`): every
//!   operation of a side already takes `&mut self`, so it is `len_empty_full`
//!   again.
//! - `force_push` (in `spsc_ring_buffer`): there is no push that evicts the
//!   oldest element; only the consumer frees slots (the producer may be
//!   another process that must not read them). `spsc_ring_buffer` is ported
//!   with a push that waits instead.
//! - `into_iter`'s iterator: there is none; the in-order drain it checks is
//!   ported with `pop_slice`.
#![cfg(not(loom))]

mod common;

use std::thread;

use common::{backoff, pop, push};
use ipc_primitives::spsc::{PopError, Spsc, StaticSpsc};
use ipc_primitives::{CreateError, Region};
use zerocopy::IntoBytes;

/// crossbeam `smoke`: a ring of one takes a value, gives it back, again, then
/// is empty.
#[test]
fn smoke() {
    let mut ring = StaticSpsc::<i32, 1>::new();
    let (mut tx, mut rx) = ring.split();
    tx.try_push(7).expect("free");
    assert_eq!(rx.try_pop(), Ok(7));
    tx.try_push(8).expect("free");
    assert_eq!(rx.try_pop(), Ok(8));
    assert_eq!(rx.try_pop(), Err(PopError::Empty));
}

/// crossbeam `capacity`: capacities 1 to 9 are what was asked for, or, for
/// those that are not a power of two, refused with the capacity named.
#[test]
fn capacity() {
    let mut mem = common::ring_memory::<i32>(8);
    for capacity in 1..10 {
        let created = Spsc::<i32>::create(Region::new(mem.as_mut_bytes()), capacity);
        if capacity.is_power_of_two() {
            assert_eq!(created.expect("a power of two").capacity(), capacity);
        } else {
            assert_eq!(
                created.map(|_| ()),
                Err(CreateError::InvalidCapacity { capacity })
            );
        }
    }
}

/// crossbeam `zero_capacity`: refused, with a typed error where crossbeam
/// panics.
#[test]
fn zero_capacity() {
    let mut mem = common::ring_memory::<i32>(1);
    assert_eq!(
        Spsc::<i32>::create(Region::new(mem.as_mut_bytes()), 0).map(|_| ()),
        Err(CreateError::InvalidCapacity { capacity: 0 })
    );
}

/// crossbeam `len_empty_full`: through a fill and a pop, `len`, `is_empty`
/// and `is_full` agree (the producer's `len` is the queue's, as the
/// consumer's is).
#[test]
fn len_empty_full() {
    let mut ring = StaticSpsc::<(), 2>::new();
    let (mut tx, mut rx) = ring.split();
    let state = |tx: &ipc_primitives::spsc::Producer<'_, ()>,
                 rx: &ipc_primitives::spsc::Consumer<'_, ()>| {
        assert_eq!(tx.len(), rx.len());
        assert_eq!(tx.is_empty(), rx.is_empty());
        (rx.len(), rx.is_empty(), tx.is_full())
    };
    assert_eq!(state(&tx, &rx), (0, true, false));
    tx.try_push(()).expect("free");
    assert_eq!(state(&tx, &rx), (1, false, false));
    tx.try_push(()).expect("free");
    assert_eq!(state(&tx, &rx), (2, false, true));
    rx.try_pop().expect("waiting");
    assert_eq!(state(&tx, &rx), (1, false, false));
}

/// crossbeam `len` (its 1,000 slots are 1,024 here): the length is exact
/// through batches of pushes then pops and a fill to capacity, then never
/// above the capacity while two threads move `COUNT` elements in order.
#[test]
fn len() {
    const CAP: usize = if cfg!(miri) { 64 } else { 1024 };
    const ITERS: usize = CAP / 20;
    let count = if cfg!(miri) { 30 } else { 25_000 };
    let mut mem = common::ring_memory::<usize>(CAP as u32);
    let (mut tx, mut rx) = Spsc::<usize>::create(Region::new(mem.as_mut_bytes()), CAP as u32)
        .expect("create")
        .split();
    assert_eq!(rx.len(), 0);
    for _ in 0..CAP / 10 {
        for i in 0..ITERS {
            tx.try_push(i).expect("free");
            assert_eq!(rx.len(), i + 1);
        }
        for i in 0..ITERS {
            rx.try_pop().expect("waiting");
            assert_eq!(rx.len(), ITERS - i - 1);
        }
    }
    assert_eq!(rx.len(), 0);
    for i in 0..CAP {
        tx.try_push(i).expect("free");
        assert_eq!(tx.len(), i + 1);
    }
    for _ in 0..CAP {
        rx.try_pop().expect("waiting");
    }
    assert_eq!(rx.len(), 0);

    thread::scope(|s| {
        s.spawn(|| {
            for i in 0..count {
                assert_eq!(pop(&mut rx), i);
                assert!(rx.len() <= CAP);
            }
        });
        s.spawn(|| {
            for i in 0..count {
                push(&mut tx, i);
                assert!(tx.len() <= CAP);
            }
        });
    });
    assert_eq!((tx.len(), rx.len()), (0, 0));
}

/// crossbeam `spsc`: one thread pushes `0..COUNT` into a ring of 4 (3 in
/// crossbeam), another pops them in order and then finds it empty; the sum is
/// checked too.
#[test]
fn spsc() {
    let count: u64 = if cfg!(miri) { 50 } else { 100_000 };
    let mut ring = StaticSpsc::<u64, 4>::new();
    let (mut tx, mut rx) = ring.split();
    thread::scope(|s| {
        s.spawn(|| {
            let mut sum = 0;
            for i in 0..count {
                let value = pop(&mut rx);
                assert_eq!(value, i);
                sum += value;
            }
            assert_eq!(sum, count * (count - 1) / 2);
            assert_eq!(rx.try_pop(), Err(PopError::Empty));
        });
        s.spawn(|| (0..count).for_each(|i| push(&mut tx, i)));
    });
}

/// crossbeam `spsc_ring_buffer`, with the end of the stream told by the ring
/// instead of a separate counter, and a push that waits instead of
/// `force_push` (see the list above): the consumer pops until it sees the
/// producer gone (`is_abandoned`) and the ring empty, and must have seen every
/// element exactly once. What the producer pushed before its drop is visible
/// to a consumer that saw the drop.
#[test]
fn spsc_ring_buffer() {
    let count: usize = if cfg!(miri) { 50 } else { 100_000 };
    let mut ring = StaticSpsc::<u32, 4>::new();
    let (mut tx, mut rx) = ring.split();
    let mut seen = vec![0_u8; count];
    thread::scope(|s| {
        s.spawn(|| {
            let mut attempt = 0;
            loop {
                let gone = rx.is_abandoned();
                match rx.try_pop() {
                    Ok(n) => seen[n as usize] += 1,
                    Err(PopError::Empty) if gone => break,
                    Err(PopError::Empty) => backoff(&mut attempt),
                    Err(err) => panic!("pop failed: {err}"),
                }
            }
        });
        s.spawn(move || {
            for i in 0..count {
                push(&mut tx, u32::try_from(i).expect("count fits u32"));
            }
        });
    });
    assert!(seen.iter().all(|&times| times == 1));
}

/// crossbeam `into_iter`, draining with `pop_slice` for want of an iterator:
/// 100 elements come out in the order they went in.
#[test]
fn drain_in_order() {
    let mut ring = StaticSpsc::<u32, 128>::new();
    let (mut tx, mut rx) = ring.split();
    for i in 0..100 {
        tx.try_push(i).expect("free");
    }
    let mut out = vec![0; 128];
    let popped = rx.pop_slice(&mut out).expect("pop");
    assert_eq!(popped, 100);
    assert!(out[..popped].iter().copied().eq(0..100));
}
