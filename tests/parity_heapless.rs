//! heapless 0.9.4's `spsc::Queue` tests (the `#[cfg(test)]` module of
//! `src/spsc.rs`), re-expressed against this crate's SPSC ring: a `static`
//! ring split without `unsafe`, `is_full`/`is_empty`/`len`, wrap-around of
//! slots and of the counters themselves, and `peek` across threads.
//!
//! Each test's doc comment names the heapless test it ports. Adapted
//! throughout: heapless's `Queue<T, N>` holds `N - 1` elements, this ring
//! holds its capacity, a power of two, so each test uses the power of two at
//! or above the number of elements the heapless test holds;
//! `enqueue`/`dequeue` are `try_push`/`try_pop` (which returns a `Result`, not
//! an `Option`), `Producer::ready` is `!is_full()` and `Consumer::ready` is
//! `!is_empty()`; the queue's own `len` is read from either side.
//!
//! Not ported, and why:
//! - `drop`: payloads are `Pod`, which have no `Drop`.
//! - `iter`, `iter_modulo`, `iter_double_ended`, `iter_double_ended_modulo`,
//!   `iter_mut`, `iter_mut_double_ended`, `iter_mut_double_ended_modulo`:
//!   there are no iterators over the queued elements; a consumer never
//!   borrows a slot (memory the producer, maybe another process, writes), it
//!   copies out.
//! - `test_usize_overflow_iter`, `test_usize_overflow_iter_mut`,
//!   `test_usize_overflow_iter_rev`, `test_usize_overflow_iter_mut_rev`: the
//!   same iterators; the counter overflow they exercise is ported in
//!   `counters_wrap_around_u32` (`test_len_overflow`) and `try_overflow`.
//! - `clone`, `eq`, `hash_equality`: the ring is neither `Clone`, `PartialEq`
//!   nor `Hash` (it is shared memory with one producer and one consumer).
//! - The `assert_not_impl_any!` checks that a queue of `!Send` values is not
//!   `Send`: a `Pod` payload holds no pointers, so it is always `Send`; the
//!   sides' own `Send` and not-`Sync` are asserted in `src/spsc/mod.rs`.
#![cfg(not(loom))]

mod common;

use std::thread;

use ipc_primitives::spsc::{PopError, PushError, Spsc, StaticSpsc};
use ipc_primitives::{CreateError, Region};
use zerocopy::IntoBytes;

/// heapless `const_split`: a ring in a plain `static`, whose two sides are
/// taken once each (heapless splits a `static mut` in a `const` block behind
/// `unsafe`; here it takes no `unsafe`), then used.
#[test]
fn const_split() {
    static RING: StaticSpsc<(), 4> = StaticSpsc::new();
    let mut producer = RING.take_producer().expect("first take");
    let mut consumer = RING.take_consumer().expect("first take");
    assert!(RING.take_producer().is_none());
    assert!(RING.take_consumer().is_none());
    assert_eq!(producer.try_push(()), Ok(()));
    assert_eq!(consumer.try_pop(), Ok(()));
}

/// heapless `static_new`: `new` is a `const fn`, so a ring can be a `static`.
#[test]
fn static_new() {
    static RING: StaticSpsc<i32, 4> = StaticSpsc::new();
    let producer = RING.take_producer().expect("first take");
    assert_eq!(producer.capacity(), 4);
    assert!(!producer.is_full());
}

/// heapless `full`: full once it holds its capacity (`Queue<i32, 3>` holds 2;
/// a ring of 2 here).
#[test]
fn full() {
    let mut ring = StaticSpsc::<i32, 2>::new();
    let (mut tx, _rx) = ring.split();
    assert!(!tx.is_full());
    tx.try_push(1).expect("free");
    assert!(!tx.is_full());
    tx.try_push(2).expect("free");
    assert!(tx.is_full());
    assert_eq!(tx.try_push(3), Err(PushError::Full(3)));
}

/// heapless `empty`: empty until the first push, from both sides.
#[test]
fn empty() {
    let mut ring = StaticSpsc::<i32, 2>::new();
    let (mut tx, rx) = ring.split();
    assert!(rx.is_empty() && tx.is_empty());
    tx.try_push(1).expect("free");
    assert!(!rx.is_empty() && !tx.is_empty());
    tx.try_push(2).expect("free");
    assert!(!rx.is_empty() && !tx.is_empty());
}

/// heapless `len`: the length counts pushes less pops, and stays right while
/// a million pops and pushes go round the ring (fewer under Miri).
#[test]
fn len() {
    let mut ring = StaticSpsc::<i32, 2>::new();
    let (mut tx, mut rx) = ring.split();
    assert_eq!((tx.len(), rx.len()), (0, 0));
    tx.try_push(1).expect("free");
    assert_eq!((tx.len(), rx.len()), (1, 1));
    tx.try_push(2).expect("free");
    assert_eq!((tx.len(), rx.len()), (2, 2));
    for _ in 0..if cfg!(miri) { 100 } else { 1_000_000 } {
        let value = rx.try_pop().expect("two waiting");
        tx.try_push(value).expect("one free");
        assert_eq!((tx.len(), rx.len()), (2, 2));
    }
}

/// heapless `try_overflow`: a full ring popped and refilled lap after lap
/// gives each element back in order (`Queue<i32, 23>` holds 22; a ring of 16
/// here). heapless counts on its `usize` counters never wrapping in a test;
/// here the counters start 1,000 short of `u32::MAX`, so they wrap early on.
#[test]
fn try_overflow() {
    const N: i32 = 16;
    let laps = if cfg!(miri) { 10 } else { 100_000 };
    let mut mem = common::ring_memory::<i32>(N as u32);
    Spsc::<i32>::create(Region::new(mem.as_mut_bytes()), N as u32).expect("create");
    common::set_ring_counters(&mut mem, u32::MAX - 1000, u32::MAX - 1000);
    let (mut tx, mut rx) = Spsc::<i32>::attach(Region::new(mem.as_mut_bytes()))
        .expect("attach")
        .split();
    for i in 0..N {
        tx.try_push(i).expect("free");
    }
    assert!(tx.is_full());
    for _ in 0..laps {
        for i in 0..N {
            assert_eq!(rx.try_pop(), Ok(i));
            tx.try_push(i).expect("one free");
        }
    }
    assert_eq!(rx.len(), N as usize);
}

/// heapless `sanity`: a new ring's producer can push and its consumer has
/// nothing; what is pushed is popped (`Queue<i32, 10>`; a ring of 16 here).
#[test]
fn sanity() {
    let mut ring = StaticSpsc::<i32, 16>::new();
    let (mut tx, mut rx) = ring.split();
    assert!(!tx.is_full());
    assert!(rx.is_empty());
    assert_eq!(rx.try_pop(), Err(PopError::Empty));
    tx.try_push(0).expect("free");
    assert_eq!(rx.try_pop(), Ok(0));
}

/// heapless `wrap_around`: three pushed and popped, two more pushed past the
/// end of the slots: two there, in order.
#[test]
fn wrap_around() {
    let mut ring = StaticSpsc::<i32, 4>::new();
    let (mut tx, mut rx) = ring.split();
    for i in 0..3 {
        tx.try_push(i).expect("free");
    }
    for i in 0..3 {
        assert_eq!(rx.try_pop(), Ok(i));
    }
    tx.try_push(3).expect("free");
    tx.try_push(4).expect("free");
    assert_eq!(rx.len(), 2);
    assert_eq!((rx.try_pop(), rx.try_pop()), (Ok(3), Ok(4)));
}

/// heapless `ready_flag`: whether each side can act, through fill and drain
/// (`Queue<i32, 3>` holds 2; a ring of 2 here). heapless's
/// `Producer::ready()` is `!is_full()`, `Consumer::ready()` is `!is_empty()`.
#[test]
fn ready_flag() {
    let mut ring = StaticSpsc::<i32, 2>::new();
    let (mut tx, mut rx) = ring.split();
    let ready =
        |tx: &ipc_primitives::spsc::Producer<'_, i32>,
         rx: &ipc_primitives::spsc::Consumer<'_, i32>| { (!tx.is_full(), !rx.is_empty()) };
    assert_eq!(ready(&tx, &rx), (true, false));
    tx.try_push(0).expect("free");
    assert_eq!(ready(&tx, &rx), (true, true));
    tx.try_push(1).expect("free");
    assert_eq!(ready(&tx, &rx), (false, true));
    rx.try_pop().expect("waiting");
    assert_eq!(ready(&tx, &rx), (true, true));
    rx.try_pop().expect("waiting");
    assert_eq!(ready(&tx, &rx), (true, false));
}

/// heapless `test_len_overflow`: the length and the elements stay right
/// while the counters wrap. heapless builds a queue with `head` at
/// `usize::MAX`; here a peer (as another process could) leaves the ring's
/// `u32` counters 2 short of the wrap, and the ring is attached there.
#[test]
fn counters_wrap_around_u32() {
    let mut mem = common::ring_memory::<u32>(4);
    Spsc::<u32>::create(Region::new(mem.as_mut_bytes()), 4).expect("create");
    common::set_ring_counters(&mut mem, u32::MAX - 1, u32::MAX - 1);
    {
        let (mut tx, mut rx) = Spsc::<u32>::attach(Region::new(mem.as_mut_bytes()))
            .expect("attach")
            .split();
        assert_eq!((tx.len(), rx.len()), (0, 0));
        tx.try_push(1).expect("free");
        tx.try_push(2).expect("free");
        assert_eq!((tx.len(), rx.len()), (2, 2));
        tx.push_all(&[3, 4]).expect("two free");
        assert_eq!((tx.len(), rx.len()), (4, 4));
        assert!(tx.is_full());
        let mut out = [0; 4];
        rx.pop_exact(&mut out).expect("four waiting");
        assert_eq!(out, [1, 2, 3, 4]);
        assert_eq!((tx.len(), rx.len()), (0, 0));
    }
    assert_eq!(common::ring_counters(&mem), (2, 2), "wrapped past u32::MAX");
}

/// heapless `peek_concurrency`: a consumer peeking in a loop sees the whole
/// value another thread pushes (`Queue<u64, 2>` holds 1; a ring of 1 here).
#[test]
fn peek_concurrency() {
    let mut ring = StaticSpsc::<u64, 1>::new();
    let (mut tx, rx) = ring.split();
    thread::scope(|s| {
        s.spawn(move || tx.try_push(0x1234_5678).expect("free"));
        loop {
            if let Ok(value) = rx.peek() {
                assert_eq!(value, 0x1234_5678);
                break;
            }
            thread::yield_now();
        }
    });
}

/// Not a heapless test: heapless's capacity rule (`N - 1` usable) is a
/// documented difference. A ring holds its capacity, and a heapless-style
/// count that is not a power of two is refused by `create` with the capacity
/// named (and by `StaticSpsc` at compile time).
#[test]
fn heapless_style_capacities_are_refused_and_powers_of_two_hold_all() {
    let mut ring = StaticSpsc::<u8, 4>::new();
    let (mut tx, _rx) = ring.split();
    assert_eq!(tx.push_slice(&[1, 2, 3, 4, 5]), Ok(4), "all 4 slots, not 3");
    let mut mem = common::ring_memory::<u8>(4);
    for capacity in [3, 9, 22] {
        assert_eq!(
            Spsc::<u8>::create(Region::new(mem.as_mut_bytes()), capacity).map(|_| ()),
            Err(CreateError::InvalidCapacity { capacity })
        );
    }
}
