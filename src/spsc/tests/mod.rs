//! Unit tests of the ring, including a hostile peer rewriting its counters.

use std::boxed::Box;

use zerocopy::IntoBytes;

use super::*;
use crate::test_support::Shared;
use crate::{FitError, Line};

fn memory<T: Pod>(capacity: u32) -> std::vec::Vec<Line> {
    std::vec![Line::ZERO; Line::count_for(Spsc::<T>::required_size(capacity).unwrap())]
}

/// Memory for a ring of `capacity` elements of `T`, and a stand-in for the
/// peer process.
fn shared<T: Pod>(capacity: u32) -> Shared {
    Shared::new(Spsc::<T>::required_size(capacity).unwrap())
}

/// Stores a raw `head`, as a peer process could.
fn poke_head(shared: &Shared, value: u32) {
    shared.poke(HEAD, value);
}

/// Stores a raw `tail`, as a peer process could.
fn poke_tail(shared: &Shared, value: u32) {
    shared.poke(TAIL, value);
}

#[test]
fn push_pop_len_and_full() {
    let mut mem = memory::<u64>(4);
    let (mut tx, mut rx) = Spsc::<u64>::create(Region::new(mem.as_mut_bytes()), 4)
        .unwrap()
        .split();
    assert!(rx.is_empty() && tx.is_empty());
    for i in 0..4 {
        tx.try_push(i).unwrap();
    }
    assert_eq!(tx.try_push(9), Err(PushError::Full(9)));
    assert_eq!((tx.len(), rx.len(), tx.free_slots()), (4, 4, 0));
    assert_eq!(rx.try_pop(), Ok(0));
    assert_eq!(tx.try_push(4), Ok(()));
    let mut out = [0; 8];
    assert_eq!(rx.pop_slice(&mut out), Ok(4));
    assert_eq!(out[..4], [1, 2, 3, 4]);
    assert_eq!(rx.try_pop(), Err(PopError::Empty));
}

#[test]
fn grant_writes_in_place_and_abandons_on_drop() {
    let mut ring = StaticSpsc::<[u8; 12], 2>::new();
    let (mut tx, mut rx) = ring.split();
    let mut grant = tx.grant().unwrap();
    grant.write(&[0; 12]);
    grant.write_bytes(3, b"abc").unwrap();
    assert_eq!(
        grant.write_bytes(10, b"abc"),
        Err(OutOfBounds {
            offset: 10,
            len: 3,
            size: 12
        })
    );
    assert_eq!(
        grant.write_bytes(usize::MAX, b"a"),
        Err(OutOfBounds {
            offset: usize::MAX,
            len: 1,
            size: 12
        })
    );
    grant.commit();
    {
        let _abandoned = tx.grant().unwrap(); // dropped: nothing published
    }
    assert_eq!(
        rx.try_pop(),
        Ok([0, 0, 0, b'a', b'b', b'c', 0, 0, 0, 0, 0, 0])
    );
    assert_eq!(rx.try_pop(), Err(PopError::Empty));
}

#[test]
fn counters_wrap_around_u32() {
    let shared = shared::<u32>(4);
    Spsc::<u32>::create(shared.region(), 4).unwrap();
    poke_head(&shared, u32::MAX - 1);
    poke_tail(&shared, u32::MAX - 1);
    let (mut tx, mut rx) = Spsc::<u32>::attach(shared.region()).unwrap().split();
    for i in 0..100 {
        assert_eq!(tx.push_slice(&[i, i + 1, i + 2]), Ok(3));
        let mut out = [0; 3];
        assert_eq!(rx.pop_slice(&mut out), Ok(3));
        assert_eq!(out, [i, i + 1, i + 2]);
    }
}

#[test]
fn consumer_reports_a_producer_claiming_too_many_elements() {
    let shared = shared::<u64>(4);
    let mut rx = Spsc::<u64>::create(shared.region(), 4)
        .unwrap()
        .into_consumer();
    poke_head(&shared, 5);
    assert_eq!(rx.try_pop(), Err(PopError::Corrupted));
    assert_eq!(rx.pop_slice(&mut [0; 2]), Err(Corrupted));
    assert_eq!(rx.len(), 4);
    // A head more than a ring's worth behind the tail is as impossible (up
    // to a ring's worth behind, it may not be published yet: see
    // `a_consumer_ahead_of_a_head_not_yet_published_sees_an_empty_ring`).
    poke_head(&shared, u32::MAX - 4);
    assert_eq!(rx.try_pop(), Err(PopError::Corrupted));
    // A head that counts an element whose slot was never stamped is as
    // impossible.
    poke_head(&shared, 1);
    assert_eq!(rx.try_pop(), Err(PopError::Corrupted));
    // Once the peer behaves again, so does the ring.
    poke_head(&shared, 0);
    assert_eq!(rx.try_pop(), Err(PopError::Empty));
}

#[test]
fn producer_reports_a_consumer_ahead_of_it() {
    let shared = shared::<u64>(4);
    let mut tx = Spsc::<u64>::create(shared.region(), 4)
        .unwrap()
        .into_producer();
    for i in 0..4 {
        tx.try_push(i).unwrap();
    }
    poke_tail(&shared, 9);
    assert_eq!(tx.try_push(7), Err(PushError::Corrupted(7)));
    assert_eq!(tx.push_slice(&[1, 2]), Err(Corrupted));
    assert!(matches!(tx.grant(), Err(PushError::Corrupted(()))));
    assert_eq!(tx.len(), 4);
}

#[test]
fn garbage_counters_never_index_out_of_bounds() {
    assert_garbage_counters_never_index_out_of_bounds([1_u64, 2, 3]);
}

/// A peer writing random counters while both sides run every operation on
/// elements like `value`: no panic, no access out of bounds, and lengths
/// never above the capacity.
fn assert_garbage_counters_never_index_out_of_bounds<T: Pod + Copy>(value: T) {
    let shared = shared::<T>(8);
    let (mut tx, mut rx) = Spsc::<T>::create(shared.region(), 8).unwrap().split();
    let mut state = 0x2545_f491_u32;
    // Under Miri 300 rounds take about 13 s (10,000 took over 7 minutes).
    for _ in 0..if cfg!(miri) { 300 } else { 10_000 } {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        poke_head(&shared, state);
        poke_tail(&shared, state.rotate_left(7));
        let _ = tx.try_push(value);
        let _ = rx.try_pop();
        let _ = rx.peek();
        let _ = rx.pop_slice(&mut [value; 5]);
        let _ = rx.pop_exact(&mut [value; 2]);
        let _ = tx.push_slice(&[value; 3]);
        assert!(tx.len() <= 8 && rx.len() <= 8);
    }
}

#[test]
fn attach_rejects_corrupt_counters() {
    let shared = shared::<u64>(4);
    Spsc::<u64>::create(shared.region(), 4).unwrap();
    poke_head(&shared, 10);
    poke_tail(&shared, 2);
    assert_eq!(
        Spsc::<u64>::attach(shared.region()).map(|_| ()),
        Err(AttachError::Corrupted)
    );
}

#[test]
fn static_ring_takes_each_side_once() {
    static RING: StaticSpsc<u32, 8> = StaticSpsc::new();
    let mut rx = RING.take_consumer().expect("first consumer");
    let mut tx = RING.take_producer().expect("first producer");
    assert!(RING.take_producer().is_none() && RING.take_consumer().is_none());
    for i in 0..20 {
        tx.try_push(i).unwrap();
        assert_eq!(rx.try_pop(), Ok(i));
    }
}

#[test]
fn static_ring_resumes_where_the_last_split_stopped() {
    let mut ring = StaticSpsc::<u32, 4>::new();
    {
        let (mut tx, _) = ring.split();
        tx.push_slice(&[1, 2, 3]).unwrap();
    }
    let mut moved = Box::new(ring);
    let (_, mut rx) = moved.split();
    let mut out = [0; 4];
    assert_eq!(rx.pop_slice(&mut out), Ok(3));
    assert_eq!(out[..3], [1, 2, 3]);
}

#[test]
fn static_ring_has_region_bytes() {
    assert_static_ring_has_region_bytes::<u64, 4>(0xfeed);
}

/// A `StaticSpsc<T, N>` holding `value` has the bytes of a region ring
/// holding it, in every field either writes.
fn assert_static_ring_has_region_bytes<T: Pod + Copy, const N: usize>(value: T) {
    let mut ring = StaticSpsc::<T, N>::new();
    ring.split().0.try_push(value).unwrap();
    let capacity = N as u32;
    let mut mem = memory::<T>(capacity);
    Spsc::<T>::create(Region::new(mem.as_mut_bytes()), capacity)
        .unwrap()
        .into_producer()
        .try_push(value)
        .unwrap();
    let size = Spsc::<T>::required_size(capacity).unwrap();
    assert!(size_of::<StaticSpsc<T, N>>() >= size);
    let base = (&raw const ring).cast::<u8>();
    for fields in [0..36, 128..132, 256..260, 384..392, 512..size] {
        // SAFETY: `ring` is a live value of at least `size` bytes laid out as
        // a region; each range holds bytes written through the ring (header
        // fields, counters, slots) or zeroed at construction, never padding,
        // and nothing writes `ring` while the slice lives.
        let ring_bytes =
            unsafe { core::slice::from_raw_parts(base.add(fields.start), fields.len()) };
        assert_eq!(ring_bytes, &mem.as_bytes()[fields]);
    }
}

/// `required_size` is `None` exactly for the capacities `create` refuses (and
/// for sizes past `usize`): a caller that sizes memory by it never creates a
/// ring `create` would refuse.
#[test]
fn required_size_and_create_agree_on_the_capacity() {
    for capacity in [0, 3, 6, 1000, MAX_CAPACITY - 1, MAX_CAPACITY + 1, u32::MAX] {
        assert_eq!(Spsc::<u8>::required_size(capacity), None, "{capacity}");
        let mut mem = memory::<u8>(1);
        assert_eq!(
            Spsc::<u8>::create(Region::new(mem.as_mut_bytes()), capacity).map(|_| ()),
            Err(CreateError::InvalidCapacity { capacity })
        );
    }
    for capacity in [1, 2, 1024, MAX_CAPACITY] {
        assert!(Spsc::<u8>::required_size(capacity).is_some(), "{capacity}");
    }
    let mut mem = memory::<u8>(1024);
    let ring = Spsc::<u8>::create(Region::new(mem.as_mut_bytes()), 1024).unwrap();
    assert_eq!(ring.capacity(), 1024);
}

#[test]
fn create_checks_capacity_alignment_and_size() {
    let mut mem = memory::<u64>(8);
    let bytes = mem.as_mut_bytes();
    for capacity in [0, 3, 6, MAX_CAPACITY * 2, u32::MAX] {
        assert_eq!(
            Spsc::<u64>::create(Region::new(bytes), capacity).map(|_| ()),
            Err(CreateError::InvalidCapacity { capacity })
        );
    }
    assert_eq!(
        Spsc::<u64>::create(Region::new(&mut bytes[8..]), 4).map(|_| ()),
        Err(CreateError::Fit(FitError::Misaligned { required: 128 }))
    );
    assert_eq!(
        Spsc::<u64>::create(Region::new(bytes), 32).map(|_| ()),
        Err(CreateError::Fit(FitError::TooSmall {
            needed: 512 + 32 * (8 + 8),
            actual: 640
        }))
    );
    assert_eq!(
        Spsc::<[u8; 1 << 20]>::create(Region::new(bytes), MAX_CAPACITY).map(|_| ()),
        Err(CreateError::Fit(FitError::TooSmall {
            needed: 512 + (1 << 20) * (1 << 30),
            actual: 640
        }))
    );
}

#[test]
fn a_peer_writing_every_padding_byte_disturbs_nothing() {
    // Run under Miri with Stacked and Tree Borrows (`.ci/run`): a reference
    // over any of these bytes while the peer writes them would be reported.
    // The handles are moved into a thread (and so retagged, and protected
    // while its closure runs) after the peer's first writes: a handle
    // holding a reference over padding, as the old `&SpscControl` did, fails
    // here under both models. One worker owns both handles, so a broken ring
    // fails the test instead of hanging it.
    let shared = shared::<[u64; 2]>(4);
    let (mut tx, mut rx) = Spsc::<[u64; 2]>::create(shared.region(), 4)
        .unwrap()
        .split();
    // The header's unused bytes, the rest of each control line, and the 4
    // bytes after each slot's stamp.
    let slot = STAMP_BYTES + 16;
    let mut padding = std::vec![
        36..128,
        FULL + 4..TAIL,
        TAIL + 4..READY,
        CONSUMER_CLOSED + 4..SLOTS
    ];
    padding.extend((0..4).map(|i| SLOTS + i * slot + 4..SLOTS + i * slot + STAMP_BYTES));
    let started = core::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            shared.scribble(&padding, 1);
            started.store(true, core::sync::atomic::Ordering::Release);
            shared.scribble(&padding, 20);
        });
        while !started.load(core::sync::atomic::Ordering::Acquire) {
            std::thread::yield_now();
        }
        let worker = s.spawn(move || {
            for i in 0..200 {
                tx.try_push([i, !i]).unwrap();
                assert!(!tx.wake_needed());
                assert_eq!(rx.try_pop(), Ok([i, !i]));
                assert!(!rx.wake_needed());
            }
            (tx, rx)
        });
        let (tx, mut rx) = worker.join().unwrap();
        assert!(tx.is_empty());
        assert_eq!(rx.try_pop(), Err(PopError::Empty));
    });
}

#[test]
fn errors_say_what_is_wrong_without_dumping_payloads() {
    assert_eq!(std::format!("{:?}", PushError::Full([7u8; 64])), "Full(..)");
    assert_eq!(
        std::format!("{:?}", PushError::Corrupted(1)),
        "Corrupted(..)"
    );
    assert_eq!(std::format!("{}", PushError::Full(1)), "ring is full");
    assert_eq!(
        std::format!("{}", PushError::Corrupted(1)),
        "shared memory is corrupted: the peer is faulty or hostile"
    );
    assert_eq!(PushError::Corrupted(3).into_inner(), 3);
    assert_eq!(std::format!("{}", PopError::Empty), "ring is empty");
    assert_eq!(
        std::format!("{}", PopError::Corrupted),
        std::format!("{Corrupted}")
    );
    assert_eq!(PopError::from(Corrupted), PopError::Corrupted);
    assert_eq!(
        std::format!(
            "{}",
            OutOfBounds {
                offset: 10,
                len: 3,
                size: 12
            }
        ),
        "write of 3 bytes at offset 10 exceeds the 12-byte element"
    );
}

#[test]
fn the_consumer_polls_the_slot_and_reads_head_only_when_it_is_empty() {
    let shared = shared::<u64>(4);
    let (mut tx, mut rx) = Spsc::<u64>::create(shared.region(), 4).unwrap().split();
    tx.try_push(7).unwrap();
    // A head the producer never wrote: the stamped slot is popped without
    // looking at it...
    poke_head(&shared, 0xdead_beef);
    assert_eq!(rx.try_pop(), Ok(7));
    // ...and an empty slot sends the consumer to `head`, which is impossible.
    assert_eq!(rx.try_pop(), Err(PopError::Corrupted));
    poke_head(&shared, 1);
    assert_eq!(rx.try_pop(), Err(PopError::Empty));
}

#[test]
fn a_slot_stamped_for_another_lap_is_not_popped() {
    let shared = shared::<u64>(4);
    let (mut tx, mut rx) = Spsc::<u64>::create(shared.region(), 4).unwrap().split();
    tx.try_push(1).unwrap();
    // The peer restamps slot 0 as holding position 4 (the next lap): what it
    // holds is not position 0 as far as the consumer can tell.
    shared.poke(SLOTS, stamp(4));
    assert_eq!(rx.try_pop(), Err(PopError::Corrupted));
    shared.poke(SLOTS, stamp(0));
    assert_eq!(rx.try_pop(), Ok(1));
}

#[test]
fn stamps_mark_positions_and_never_look_like_an_empty_slot() {
    assert_eq!(stamp(0), 1 | STAMPED);
    assert_eq!(stamp(u32::MAX), STAMPED, "wraps to 0, marked");
    assert_ne!(stamp(u32::MAX), 0);
    // Positions whose successor has bit 31 set keep the mark too.
    for position in [STAMPED - 2, STAMPED - 1, STAMPED, u32::MAX - 1] {
        assert_eq!(stamp(position), position.wrapping_add(1) | STAMPED);
    }
    // A slot one lap behind never carries the stamp expected of it.
    for position in [0, 1, MAX_CAPACITY - 1, u32::MAX - 3] {
        assert_ne!(stamp(position), stamp(position.wrapping_sub(MAX_CAPACITY)));
    }
}

#[test]
fn a_full_producer_sleeps_until_the_consumer_frees_a_slot() {
    let mut ring = StaticSpsc::<u32, 2>::new();
    let (mut tx, mut rx) = ring.split();
    tx.push_slice(&[1, 2]).unwrap();
    assert_eq!(tx.full_count(), 0);
    let mut slept = 0;
    let pushed = tx.push_or_sleep(3, 1, |event: &Event, epoch| -> Result<(), ()> {
        // One sleep is all a correct ring needs; a broken one must fail
        // here, not loop for ever.
        assert_eq!(slept, 0, "slept again after a pop and a wake");
        slept += 1;
        // The consumer, woken into action: pops, then wakes the producer.
        assert_eq!(rx.try_pop(), Ok(1));
        assert!(rx.wake_needed(), "the producer announced itself");
        assert_ne!(event.epoch(), epoch);
        Ok(())
    });
    assert_eq!(pushed, Ok(()));
    assert_eq!(slept, 1);
    assert_eq!(tx.full_count(), 1, "one wait, one full ring");
    assert!(!rx.wake_needed(), "the announcement was consumed");
    assert_eq!((rx.try_pop(), rx.try_pop()), (Ok(2), Ok(3)));
    // A sleeper that gives up hands the value back and withdraws.
    tx.push_slice(&[4, 5]).unwrap();
    let gave_up = tx.push_or_sleep(6, 0, |_, _| Err("timed out"));
    assert_eq!(gave_up, Err((6, BlockingError::Sleep("timed out"))));
    assert!(!rx.wake_needed());
    assert_eq!(tx.full_count(), 2);
}

#[test]
fn a_blocking_push_counts_one_full_ring_however_long_it_spins() {
    let mut ring = StaticSpsc::<u32, 2>::new();
    let (mut tx, _rx) = ring.split();
    tx.push_slice(&[1, 2]).unwrap();
    let gave_up = tx.push_or_sleep(3, 200, |_, _| Err("timed out"));
    assert_eq!(gave_up, Err((3, BlockingError::Sleep("timed out"))));
    assert_eq!(
        tx.full_count(),
        1,
        "200 spins are one push that found the ring full"
    );
    assert_eq!(tx.try_push(4), Err(PushError::Full(4)));
    assert_eq!(tx.full_count(), 2);
}

#[test]
fn a_consumer_ahead_of_a_head_not_yet_published_sees_an_empty_ring() {
    let shared = shared::<u64>(4);
    {
        let (mut tx, mut rx) = Spsc::<u64>::create(shared.region(), 4).unwrap().split();
        tx.try_push(1).unwrap();
        // As if the producer had stamped the slot but not yet stored `head`
        // (or died in between): the consumer pops what is stamped...
        poke_head(&shared, 0);
        assert_eq!(rx.try_pop(), Ok(1));
        // ...and then finds the ring empty, not corrupt.
        assert_eq!(rx.try_pop(), Err(PopError::Empty));
        assert_eq!((rx.len(), rx.is_empty()), (0, true));
    }
    // A producer starting afresh resumes after what the consumer popped.
    let (mut tx, mut rx) = Spsc::<u64>::attach(shared.region()).unwrap().split();
    tx.try_push(2).unwrap();
    assert_eq!(rx.try_pop(), Ok(2));
}

#[test]
fn a_tagged_ring_attaches_only_with_its_tag() {
    const TAG: u64 = 0xfeed_0001;
    let mut mem = memory::<u64>(2);
    Spsc::<u64>::create(Region::new(mem.as_mut_bytes()).with_tag(TAG), 2).unwrap();
    assert!(matches!(
        Spsc::<u64>::attach(Region::new(mem.as_mut_bytes())),
        Err(AttachError::WrongTag {
            expected: 0,
            found: TAG
        })
    ));
    assert!(Spsc::<u64>::attach(Region::new(mem.as_mut_bytes()).with_tag(TAG)).is_ok());
}

#[test]
fn handles_print_their_counters_not_their_payloads() {
    let mut mem = memory::<u64>(4);
    let ring = Spsc::<u64>::create(Region::new(mem.as_mut_bytes()), 4).unwrap();
    assert_eq!(std::format!("{ring:?}"), "Spsc { capacity: 4, .. }");
    let (mut tx, mut rx) = ring.split();
    tx.push_slice(&[1, 2, 3]).unwrap();
    assert_eq!(rx.try_pop(), Ok(1));
    assert_eq!(
        std::format!("{tx:?}"),
        "Producer { head: 3, cached_tail: 0, .. }"
    );
    assert_eq!(std::format!("{rx:?}"), "Consumer { tail: 1, .. }");
    assert_eq!(
        std::format!("{:?}", tx.grant().unwrap()),
        "Grant { index: 3, .. }"
    );
    let mut chunk = tx.write_chunk(1).unwrap();
    assert_eq!(
        std::format!("{chunk:?}"),
        "WriteChunk { index: 3, len: 1, .. }"
    );
    assert_eq!(
        std::format!("{:?}", chunk.slot(0).unwrap()),
        "SlotWriter { .. }"
    );
    let one = StaticSpsc::<u64, 1>::new();
    assert_eq!(std::format!("{one:?}"), "StaticSpsc { capacity: 1, .. }");
}

#[test]
fn sizes_and_emptiness_follow_the_elements() {
    let mut mem = memory::<u64>(8);
    let ring = Spsc::<u64>::create(Region::new(mem.as_mut_bytes()), 8).unwrap();
    assert_eq!(ring.capacity(), 8);
    let (mut tx, mut rx) = ring.split();
    assert_eq!((tx.capacity(), rx.capacity()), (8, 8));
    assert_eq!((tx.len(), tx.free_slots(), tx.is_empty()), (0, 8, true));
    tx.push_slice(&[1, 2, 3]).unwrap();
    assert_eq!((tx.len(), tx.free_slots(), tx.is_empty()), (3, 5, false));
    assert_eq!((rx.len(), rx.is_empty()), (3, false));
    rx.pop_slice(&mut [0; 3]).unwrap();
    assert_eq!((rx.len(), rx.is_empty(), tx.free_slots()), (0, true, 8));
}

#[test]
fn multi_word_elements_keep_their_own_slots_across_wraps() {
    // Two words per element: each slot's payload starts `2 * index` words
    // (and a stamp per slot) in.
    let mut ring = StaticSpsc::<[u64; 2], 4>::new();
    let (mut tx, mut rx) = ring.split();
    for round in 0..3u64 {
        for i in 0..4 {
            tx.try_push([round * 10 + i, !i]).unwrap();
        }
        for i in 0..4 {
            assert_eq!(rx.try_pop(), Ok([round * 10 + i, !i]));
        }
    }
}

#[test]
fn a_grant_writes_a_whole_value() {
    let mut ring = StaticSpsc::<[u8; 12], 2>::new();
    let (mut tx, mut rx) = ring.split();
    let mut grant = tx.grant().unwrap();
    grant.write(&[7; 12]);
    grant.commit();
    assert_eq!(rx.try_pop(), Ok([7; 12]));
}

#[test]
fn re_creating_a_used_ring_resets_counters_events_flags_and_slots() {
    let shared = shared::<[u64; 2]>(4);
    let (mut tx, mut rx) = Spsc::<[u64; 2]>::create(shared.region(), 4)
        .unwrap()
        .split();
    assert_eq!(rx.prepare_to_sleep(), Ok(Some(0)));
    tx.push_slice(&[[1, 1], [2, 2], [3, 3], [4, 4]]).unwrap();
    assert!(tx.wake_needed());
    assert_eq!(tx.try_push([5, 5]), Err(PushError::Full([5, 5])));
    assert_eq!(tx.prepare_to_sleep(), Ok(Some(0)));
    assert_eq!(rx.try_pop(), Ok([1, 1]));
    assert!(rx.wake_needed());
    tx.try_push([5, 5]).unwrap();
    assert_eq!(tx.prepare_to_sleep(), Ok(Some(1)));
    rx.pop_slice(&mut [[0; 2]; 4]).unwrap();
    assert_eq!(rx.prepare_to_sleep(), Ok(Some(1)));
    drop(tx);
    // Both sides announced on epochs at 1, `full` at 1, head and tail at 5,
    // the producer closed, the slots full of old elements: all of it is the
    // old ring's.
    let before = rx.counters();
    assert_eq!(
        (before.pushed, before.full, before.consumer_wakes),
        (5, 1, 1)
    );
    assert!(before.consumer_asleep && before.producer_asleep && before.producer_closed);
    let ring = Spsc::<[u64; 2]>::create(shared.region(), 4).unwrap();
    let fresh = ring.counters();
    assert_eq!((fresh.pushed, fresh.popped, fresh.full), (0, 0, 0));
    assert_eq!((fresh.consumer_wakes, fresh.producer_wakes), (0, 0));
    assert!(!fresh.consumer_asleep && !fresh.producer_asleep);
    assert!(!fresh.producer_closed && !fresh.consumer_closed);
    let (mut tx, mut rx) = ring.split();
    assert_eq!((tx.len(), tx.full_count()), (0, 0));
    for offset in (SLOTS..SLOTS + 4 * (STAMP_BYTES + 16)).step_by(4) {
        assert_eq!(shared.peek(offset), 0, "slot byte {offset} not cleared");
    }
    // An unwritten grant publishes the cleared slot.
    tx.grant().unwrap().commit();
    assert!(!tx.wake_needed(), "the old announcement is gone");
    assert_eq!(rx.try_pop(), Ok([0, 0]));
    assert!(!rx.wake_needed(), "the old announcement is gone");
}

#[test]
fn an_empty_ring_at_any_position_never_pops_an_unwritten_slot() {
    // A ring attached with counters a peer left anywhere (here where
    // `position + 1` is 2^31): every slot is unwritten, so nothing pops.
    for position in [STAMPED - 1, STAMPED, u32::MAX] {
        let shared = shared::<u64>(4);
        Spsc::<u64>::create(shared.region(), 4).unwrap();
        poke_head(&shared, position);
        poke_tail(&shared, position);
        let (mut tx, mut rx) = Spsc::<u64>::attach(shared.region()).unwrap().split();
        assert_eq!(rx.try_pop(), Err(PopError::Empty), "at {position:#x}");
        tx.try_push(7).unwrap();
        assert_eq!(rx.try_pop(), Ok(7));
    }
}

#[test]
fn a_new_producer_adopts_what_a_dead_one_stamped_but_did_not_publish() {
    let shared = shared::<u64>(4);
    {
        let mut tx = Spsc::<u64>::create(shared.region(), 4)
            .unwrap()
            .into_producer();
        tx.try_push(1).unwrap();
        // As if the producer died between stamping the slot and storing
        // `head`.
        poke_head(&shared, 0);
    }
    let (mut tx, mut rx) = Spsc::<u64>::attach(shared.region()).unwrap().split();
    assert_eq!(shared.peek(HEAD), 1, "the adopted element is published");
    assert_eq!((tx.len(), rx.len()), (1, 1));
    tx.try_push(2).unwrap();
    assert_eq!((rx.try_pop(), rx.try_pop()), (Ok(1), Ok(2)));
}

#[test]
fn a_new_producer_adopts_at_most_a_rings_worth_even_of_forged_stamps() {
    let shared = shared::<u64>(4);
    {
        let mut tx = Spsc::<u64>::create(shared.region(), 4)
            .unwrap()
            .into_producer();
        tx.push_slice(&[1, 2, 3, 4]).unwrap();
    }
    // A hostile peer stamps slot 0 as holding position 4, the next lap's.
    shared.poke(SLOTS, stamp(4));
    let mut tx = Spsc::<u64>::attach(shared.region())
        .unwrap()
        .into_producer();
    assert_eq!(shared.peek(HEAD), 4, "a ring's worth, no more");
    assert_eq!(tx.try_push(9), Err(PushError::Full(9)));
}

/// An error with a cause, as a sleeper's error may be.
#[derive(Debug)]
struct WithCause(Corrupted);

impl core::fmt::Display for WithCause {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("sleeper failed")
    }
}

impl core::error::Error for WithCause {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        Some(&self.0)
    }
}

#[test]
fn blocking_and_chunk_errors_print_and_chain_what_they_hold() {
    use core::error::Error;
    let sleep = BlockingError::Sleep(WithCause(Corrupted));
    assert_eq!(std::format!("{sleep}"), "sleeper failed");
    assert_eq!(
        sleep.source().map(std::string::ToString::to_string),
        Some(std::format!("{Corrupted}")),
        "transparent: the sleeper's error's source"
    );
    assert!(BlockingError::<WithCause>::Closed.source().is_none());
    assert_eq!(
        std::format!("{}", BlockingError::<WithCause>::Closed),
        "the other side closed the ring"
    );
    assert_eq!(
        std::format!("{}", ChunkError::TooFewSlots(3)),
        "only 3 slots available in the ring"
    );
    assert_eq!(
        std::format!("{}", ChunkError::Corrupted),
        std::format!("{Corrupted}")
    );
}

mod batches;
mod close;
mod unstamped;
