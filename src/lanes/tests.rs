//! Unit tests of the lane set, including producers that die, misbehave or
//! keep their lane full.

use core::num::NonZeroU32;
use std::vec::Vec;

use zerocopy::IntoBytes;

use super::*;
use crate::bytes::ReserveError;
use crate::test_support::Shared;
use crate::{FitError, Line};

/// Memory for `lanes` lanes of `words` words, and a stand-in for the peers.
fn shared(lanes: usize, words: u32) -> Shared {
    Shared::new(Lanes::required_size(lanes, words).unwrap())
}

/// Byte offset of lane `lane`'s `head` in a set of lanes of `words` words.
fn head_at(lane: usize, words: u32) -> usize {
    FIRST_LANE + lane * lane_stride(words)
}

/// Pops everything, as `(lane, record)` pairs, in the order delivered.
fn drain(rx: &mut LanesConsumer<'_>) -> Vec<(usize, Vec<u8>)> {
    let mut buf = std::vec![0; rx.max_record()];
    let mut got = Vec::new();
    for _ in 0..10_000 {
        match rx.pop_into(&mut buf) {
            Ok(Delivery { lane, len }) => got.push((lane, buf[..len].to_vec())),
            Err(PopError::Empty) => return got,
            Err(err) => panic!("{err}"),
        }
    }
    panic!("never empty");
}

#[test]
fn claims_take_distinct_free_lanes_and_count_generations() {
    let shared = shared(3, 16);
    let lanes = Lanes::create(shared.region(), 3, 16).unwrap();
    assert_eq!(
        (lanes.lanes(), lanes.capacity(), lanes.max_record()),
        (3, 16, 56)
    );
    let a = lanes.claim().unwrap();
    let b = lanes.claim().unwrap();
    let c = lanes.claim_lane(2).unwrap();
    assert_eq!((a.lane(), b.lane(), c.lane()), (0, 1, 2));
    assert_eq!((a.generation(), b.generation(), c.generation()), (1, 1, 1));
    assert!(lanes.claim().is_none(), "every lane is taken");
    assert!(lanes.claim_lane(1).is_none() && lanes.claim_lane(3).is_none());
    assert_eq!(
        lanes.state(1),
        Some(LaneState::Claimed {
            generation: 1,
            locked: false
        })
    );
    assert_eq!(lanes.state(3), None);
    drop(b);
    assert_eq!(lanes.state(1), Some(LaneState::Closing { generation: 1 }));
    assert!(lanes.claim().is_none(), "a closing lane is not free yet");
    let mut rx = Lanes::attach(shared.region()).unwrap().into_consumer();
    assert_eq!(rx.pop_into(&mut [0; 8]), Err(PopError::Empty));
    assert_eq!(rx.state(1), Some(LaneState::Free { generation: 1 }));
    let b = lanes.claim().unwrap();
    assert_eq!((b.lane(), b.generation()), (1, 2));
    assert_eq!(
        std::format!("{b:?}"),
        "LaneProducer { lane: 1, generation: 2, producer: Producer { head: 0, cached_tail: 0, .. } }"
    );
    drop((a, c));
}

#[test]
fn records_arrive_with_their_lane_and_positions_carry_over_claims() {
    let shared = shared(2, 8);
    let lanes = Lanes::create(shared.region(), 2, 8).unwrap();
    let mut a = lanes.claim().unwrap();
    let mut b = lanes.claim().unwrap();
    let mut rx = Lanes::attach(shared.region()).unwrap().into_consumer();
    a.push(b"a1").unwrap();
    b.push(b"b1").unwrap();
    a.push(b"a2").unwrap();
    assert_eq!(
        (rx.used_words(0), rx.used_words(1), rx.used_words(2)),
        (4, 2, 0)
    );
    assert!(!a.release(), "nobody sleeps");
    assert_eq!(
        drain(&mut rx),
        [
            (0, b"a1".to_vec()),
            (0, b"a2".to_vec()),
            (1, b"b1".to_vec())
        ]
    );
    assert_eq!(rx.state(0), Some(LaneState::Free { generation: 1 }));
    // The next owner of lane 0 continues from where the first stopped, in
    // a ring that wraps.
    let mut a = lanes.claim().unwrap();
    assert_eq!(a.lane(), 0);
    for i in 0..20_u8 {
        a.push(&[i; 9]).unwrap();
        assert_eq!(drain(&mut rx), [(0, std::vec![i; 9])]);
    }
    drop(b);
}

#[test]
fn a_consumer_made_after_the_producers_gets_what_they_sent() {
    let shared = shared(2, 8);
    let lanes = Lanes::create(shared.region(), 2, 8).unwrap();
    let mut early = lanes.claim().unwrap();
    early.push(b"early").unwrap();
    let mut rx = lanes.into_consumer();
    let lanes = Lanes::attach(shared.region()).unwrap();
    let mut late = lanes.claim().unwrap();
    late.push(b"late").unwrap();
    assert_eq!(
        drain(&mut rx),
        [(0, b"early".to_vec()), (1, b"late".to_vec())]
    );
}

#[test]
fn one_lane_kept_full_does_not_starve_the_others() {
    let shared = shared(3, 64);
    let lanes = Lanes::create(shared.region(), 3, 64).unwrap();
    let mut busy = lanes.claim().unwrap();
    let mut quiet = lanes.claim().unwrap();
    let mut other = lanes.claim().unwrap();
    let mut rx = lanes.into_consumer();
    rx.set_budget(NonZeroU32::new(3).unwrap());
    assert_eq!(rx.budget(), 3);
    let mut buf = [0; 8];
    quiet.push(b"q1").unwrap();
    quiet.push(b"q2").unwrap();
    other.push(b"o1").unwrap();
    let mut order = Vec::new();
    for _ in 0..12 {
        // The busy lane is refilled before every pop: it never runs dry.
        while busy.push(b"busy").is_ok() {}
        order.push(rx.pop_into(&mut buf).unwrap().lane);
    }
    // Turns of at most 3 records, round-robin; empty lanes are skipped.
    assert_eq!(order, [0, 0, 0, 1, 1, 2, 0, 0, 0, 0, 0, 0]);
    assert_eq!(rx.pop_into(&mut buf).map(|d| d.lane), Ok(0));
    quiet.push(b"q3").unwrap();
    let mut order = Vec::new();
    for _ in 0..4 {
        while busy.push(b"busy").is_ok() {}
        order.push(rx.pop_into(&mut buf).unwrap().lane);
    }
    // The turn in progress ends after 3 records of lane 0, then lane 1.
    assert!(order.contains(&1), "the quiet lane had its turn: {order:?}");
}

#[test]
fn a_small_buffer_leaves_the_record_and_the_turn() {
    let shared = shared(2, 16);
    let lanes = Lanes::create(shared.region(), 2, 16).unwrap();
    let mut a = lanes.claim().unwrap();
    let mut b = lanes.claim().unwrap();
    let mut rx = lanes.into_consumer();
    a.push(b"a long record").unwrap();
    b.push(b"b").unwrap();
    assert_eq!(
        rx.pop_into(&mut [0; 4]),
        Err(PopError::TooSmall {
            lane: 0,
            needed: 13
        })
    );
    assert_eq!(
        rx.pop_with(&mut [0; 16], |lane, record| (lane, record.to_vec())),
        Ok((0, b"a long record".to_vec()))
    );
    assert_eq!(rx.pop_with(&mut [0; 16], |lane, _| lane), Ok(1));
}

#[test]
fn a_corrupt_lane_is_quarantined_and_reset_when_released() {
    let shared = shared(2, 8);
    let lanes = Lanes::create(shared.region(), 2, 8).unwrap();
    let bad = lanes.claim().unwrap();
    let mut good = lanes.claim().unwrap();
    let mut rx = lanes.into_consumer();
    shared.poke(head_at(0, 8), 100);
    good.push(b"fine").unwrap();
    let mut buf = [0; 24];
    assert_eq!(rx.pop_into(&mut buf), Err(PopError::Corrupted { lane: 0 }));
    assert!(rx.is_quarantined(0) && !rx.is_quarantined(1) && !rx.is_quarantined(9));
    assert_eq!(rx.pop_into(&mut buf), Ok(Delivery { lane: 1, len: 4 }));
    assert_eq!(rx.pop_into(&mut buf), Err(PopError::Empty));
    assert_eq!(
        rx.prepare_to_sleep(),
        Some(0),
        "a quarantined lane is no work"
    );
    // Released: reset and freed; a new owner starts clean.
    drop(bad);
    assert_eq!(rx.pop_into(&mut buf), Err(PopError::Empty));
    assert!(!rx.is_quarantined(0));
    assert_eq!(rx.state(0), Some(LaneState::Free { generation: 1 }));
    let lanes = Lanes::attach(shared.region()).unwrap();
    let mut again = lanes.claim().unwrap();
    again.push(b"clean").unwrap();
    assert_eq!(rx.pop_into(&mut buf), Ok(Delivery { lane: 0, len: 5 }));
}

#[test]
fn a_dead_owners_lane_is_reclaimed_with_what_it_committed() {
    let shared = shared(2, 8);
    let lanes = Lanes::create(shared.region(), 2, 8).unwrap();
    let mut dying = lanes.claim().unwrap();
    dying.push(b"last words").unwrap();
    // Dies mid-write: a reservation written, never committed, and the claim
    // never released.
    dying.reserve(8).unwrap().write(0, b"unsaid!!").unwrap();
    core::mem::forget(dying);
    let mut rx = lanes.into_consumer();
    assert!(!rx.reclaim(1), "lane 1 is free");
    assert!(!rx.reclaim(5), "no lane 5");
    assert!(rx.reclaim(0));
    assert!(!rx.reclaim(0), "already closing");
    assert_eq!(drain(&mut rx), [(0, b"last words".to_vec())]);
    assert_eq!(rx.state(0), Some(LaneState::Free { generation: 1 }));
    let lanes = Lanes::attach(shared.region()).unwrap();
    let mut next = lanes.claim().unwrap();
    assert_eq!((next.lane(), next.generation()), (0, 2));
    next.push(b"new owner").unwrap();
    assert_eq!(drain(&mut rx), [(0, b"new owner".to_vec())]);
}

#[test]
fn the_doorbell_wakes_for_commits_and_releases() {
    let shared = shared(2, 8);
    let lanes = Lanes::create(shared.region(), 2, 8).unwrap();
    let mut a = lanes.claim().unwrap();
    let b = lanes.claim().unwrap();
    let mut rx = Lanes::attach(shared.region()).unwrap().into_consumer();
    assert_eq!(rx.prepare_to_sleep(), Some(0));
    a.push(b"x").unwrap();
    assert!(a.wake_needed(), "the commit wakes the announced consumer");
    assert_eq!(rx.doorbell().epoch(), 1);
    assert_eq!(rx.prepare_to_sleep(), None, "a record is waiting");
    drain(&mut rx);
    assert_eq!(rx.prepare_to_sleep(), Some(1));
    assert!(b.release(), "a release wakes the consumer to free the lane");
    assert_eq!(rx.prepare_to_sleep(), None, "a closing lane is work");
    assert_eq!(drain(&mut rx), []);
    assert_eq!(rx.prepare_to_sleep(), Some(2), "freed");
    a.push(b"y").unwrap();
    let mut slept = 0;
    assert_eq!(
        rx.wait_or_sleep(0, |_, _| -> Result<(), ()> {
            slept += 1;
            Ok(())
        }),
        Ok(())
    );
    assert_eq!(slept, 0, "a record was waiting");
    drain(&mut rx);
    assert_eq!(
        rx.wait_or_sleep(2, |_, _| Err("timed out")),
        Err("timed out")
    );
    a.push(b"z").unwrap();
    assert!(!a.wake_needed(), "the announcement was withdrawn");
}

#[test]
fn attach_and_create_check_the_geometry() {
    let shared = shared(4, 32);
    Lanes::create(shared.region(), 4, 32).unwrap();
    let lanes = Lanes::attach(shared.region()).unwrap();
    assert_eq!((lanes.lanes(), lanes.capacity()), (4, 32));
    assert_eq!(
        std::format!("{lanes:?}"),
        "Lanes { lanes: 4, capacity: 32, .. }"
    );
    let size = Lanes::required_size(4, 32).unwrap();
    assert_eq!(size, 512 + 4 * 512);
    for (lanes, words) in [(0, 32), (65, 32), (4, 3), (4, 2), (usize::MAX, 32)] {
        assert_eq!(Lanes::required_size(lanes, words), None);
    }
    let mut mem = std::vec![Line::ZERO; Line::count_for(size)];
    let bytes = mem.as_mut_bytes();
    assert_eq!(
        Lanes::create(Region::new(bytes), 0, 32).map(drop),
        Err(CreateError::InvalidCapacity { capacity: 0 })
    );
    assert_eq!(
        Lanes::create(Region::new(bytes), 65, 32).map(drop),
        Err(CreateError::InvalidCapacity { capacity: 65 })
    );
    assert_eq!(
        Lanes::create(Region::new(bytes), 4, 48).map(drop),
        Err(CreateError::InvalidCapacity { capacity: 48 })
    );
    assert_eq!(
        Lanes::create(Region::new(bytes), 5, 32).map(drop),
        Err(CreateError::Fit(FitError::TooSmall {
            needed: 512 + 5 * 512,
            actual: size
        }))
    );
    // A header claiming more lanes than the region holds.
    let capacity = pack(8, 32).unwrap();
    shared.poke(20, capacity);
    assert_eq!(
        Lanes::attach(shared.region()).map(drop),
        Err(AttachError::Fit(FitError::TooSmall {
            needed: 512 + 8 * 512,
            actual: size
        }))
    );
    for capacity in [0, 5, 65 << 16 | 5, 1 << 16 | 1, 1 << 16 | 30, 1 << 16 | 40] {
        shared.poke(20, capacity);
        assert_eq!(
            Lanes::attach(shared.region()).map(drop),
            Err(AttachError::InvalidCapacity { found: capacity })
        );
    }
}

#[test]
fn garbage_states_and_counters_never_reach_out_of_bounds() {
    let shared = shared(3, 8);
    let lanes = Lanes::create(shared.region(), 3, 8).unwrap();
    let mut tx = lanes.claim().unwrap();
    let mut rx = Lanes::attach(shared.region()).unwrap().into_consumer();
    let mut state = 0x2545_f491_u32;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        state
    };
    let rounds = if cfg!(miri) { 200 } else { 20_000 };
    let mut buf = [0; 24];
    for _ in 0..rounds {
        let r = next();
        let lane = (r % 3) as usize;
        match (r >> 8) % 4 {
            0 => shared.poke(TABLE + 4 * lane, next()),
            1 => shared.poke(head_at(lane, 8), next()),
            2 => shared.poke(head_at(lane, 8) + LINE, next()),
            _ => shared.poke(DOORBELL + 4 * (lane % 2), next()),
        }
        let _ = tx.push(&buf[..(r >> 16) as usize % 25]);
        let _ = rx.pop_into(&mut buf);
        let _ = rx.prepare_to_sleep();
        let _ = rx.reclaim(lane);
        if let Some(mut claimed) = Lanes::attach(shared.region()).unwrap().claim() {
            let _ = claimed.push(b"x");
            core::mem::forget(claimed);
        }
    }
}

#[test]
fn a_peer_writing_every_padding_byte_disturbs_nothing() {
    // Run under Miri with Stacked and Tree Borrows: a reference over any of
    // these bytes while the peer writes them would be reported.
    let shared = shared(2, 16);
    let lanes = Lanes::create(shared.region(), 2, 16).unwrap();
    let mut tx = lanes.claim().unwrap();
    let mut rx = lanes.into_consumer();
    let lane = |i| head_at(i, 16);
    let padding = [
        36..128,
        136..256,
        TABLE + 8..FIRST_LANE,
        lane(0) + 4..lane(0) + 128,
        lane(0) + 132..lane(0) + 256,
        lane(1) + 4..lane(1) + 128,
        lane(1) + 132..lane(1) + 256,
    ];
    let mut buf = [0; 56];
    std::thread::scope(|s| {
        s.spawn(|| shared.scribble(&padding, 10));
        for i in 0..60_u8 {
            tx.push(&[i; 13]).unwrap();
            assert_eq!(rx.pop_into(&mut buf), Ok(Delivery { lane: 0, len: 13 }));
            assert_eq!(buf[..13], [i; 13]);
        }
    });
}

#[test]
fn errors_and_states_say_what_they_are() {
    assert_eq!(std::format!("{}", PopError::Empty), "every lane is empty");
    assert_eq!(
        std::format!("{}", PopError::TooSmall { lane: 2, needed: 9 }),
        "buffer too small for the next record of lane 2, of 9 bytes"
    );
    assert_eq!(
        std::format!("{}", PopError::Corrupted { lane: 3 }),
        "lane 3 is corrupted: its producer is faulty or hostile"
    );
    assert_eq!(
        LaneState::of(3),
        LaneState::Claimed {
            generation: 0,
            locked: true
        }
    );
    assert_eq!(
        LaneState::of(9),
        LaneState::Claimed {
            generation: 2,
            locked: false
        }
    );
    let shared = shared(1, 4);
    let lanes = Lanes::create(shared.region(), 1, 4).unwrap();
    let mut tx = lanes.claim().unwrap();
    assert_eq!(
        tx.push(&[0; 9]),
        Err(ReserveError::TooLarge { len: 9, max: 8 })
    );
    let rx = lanes.into_consumer();
    assert_eq!(
        std::format!("{rx:?}"),
        "LanesConsumer { lanes: 1, next: 0, taken: 0, budget: 8, quarantined: 0x0, .. }"
    );
}

#[test]
fn an_inspector_reads_each_lanes_counters_without_claiming_it() {
    let shared = shared(2, 8);
    let lanes = Lanes::create(shared.region(), 2, 8).unwrap();
    let mut tx = lanes.claim_lane(1).unwrap();
    tx.push(&[1; 24]).unwrap();
    tx.push(&[2; 16]).unwrap();
    // One word free, kept for the marker.
    assert_eq!(tx.push(&[]), Err(ReserveError::Full));
    let inspector = Lanes::attach(shared.region()).unwrap();
    let idle = inspector.lane_counters(0).unwrap();
    let busy = inspector.lane_counters(1).unwrap();
    assert_eq!((idle.used_words(), idle.full), (0, 0));
    assert_eq!((busy.used_words(), busy.full), (7, 1));
    assert!(inspector.lane_counters(2).is_none());
    assert_eq!(
        inspector.state(1),
        Some(LaneState::Claimed {
            generation: 1,
            locked: false
        }),
        "reading the counters claims nothing"
    );
}
