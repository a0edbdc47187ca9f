//! Each kind inspected, regions scribbled over, and random bytes: findings,
//! never a panic.

use std::vec;
use std::vec::Vec;

use zerocopy::IntoBytes;

use super::{Figures, Inspection, Problem, inspect};
use crate::broadcast::Broadcast;
use crate::bytes::RecordRing;
use crate::inspect::ByteOrder;
use crate::lanes::{LaneState, Lanes};
use crate::parts::Plan;
use crate::seqlock::SeqLock;
use crate::spsc::Spsc;
use crate::test_support::Shared;
use crate::{AttachError, ElementLayout, Kind, Line, ReadRegion, Region};

fn look(shared: &Shared) -> Inspection<'_> {
    inspect(ReadRegion::from(shared.region()))
}

#[test]
fn an_spsc_ring_shows_its_header_fill_and_counters() {
    let shared = Shared::new(Spsc::<[u8; 13]>::required_size(8).unwrap());
    let ring = Spsc::<[u8; 13]>::create(shared.region().with_tag(0xfeed), 8).unwrap();
    let (mut tx, mut rx) = ring.split();
    for n in 0..8 {
        tx.try_push([n; 13]).unwrap();
    }
    assert!(tx.try_push([9; 13]).is_err(), "full: counted");
    rx.try_pop().unwrap();

    let seen = look(&shared);
    let header = seen.header().unwrap();
    assert_eq!(header.kind(), Some(Kind::Spsc));
    assert_eq!(header.byte_order(), ByteOrder::Native);
    assert_eq!(header.version, crate::ABI_VERSION);
    assert_eq!(header.elem, ElementLayout::of::<[u8; 13]>());
    assert_eq!(header.capacity, 8);
    assert_eq!(header.tag, 0xfeed);
    let Some(&Figures::Spsc { counters, fill }) = seen.figures() else {
        panic!("{seen:?}")
    };
    assert_eq!((counters.pushed, counters.popped, counters.full), (8, 1, 1));
    assert_eq!(fill, 7);
    assert!(!counters.producer_closed && !counters.consumer_closed);
    assert_eq!(seen.problem(), None);
    drop(tx);
    let Some(Figures::Spsc { counters, .. }) = look(&shared).figures().copied() else {
        panic!("an SPSC ring")
    };
    assert!(counters.producer_closed, "closing shows");
    assert_eq!(rx.try_pop(), Ok([1; 13]), "the inspection took nothing");
}

#[test]
fn a_record_ring_a_broadcast_ring_and_a_seqlock_show_their_figures() {
    let shared = Shared::new(RecordRing::required_size(64).unwrap());
    let (mut tx, _rx) = RecordRing::create(shared.region(), 64).unwrap().split();
    tx.push(b"hello").unwrap();
    let seen = look(&shared);
    let Some(Figures::Records(counters)) = seen.figures() else {
        panic!("{seen:?}")
    };
    assert_eq!(counters.used_words(), 2, "a header and a payload word");
    assert_eq!(seen.problem(), None);

    // Stamped slots (8-byte elements) and counted ones (64-byte elements),
    // whose region is smaller: the look sizes slots as the ring does.
    let shared = Shared::new(Broadcast::<u64>::required_size(4).unwrap());
    let mut writer = Broadcast::<u64>::create(shared.region(), 4)
        .unwrap()
        .into_writer();
    for n in 0..6 {
        writer.publish(&n);
    }
    let seen = look(&shared);
    assert_eq!(seen.header().unwrap().kind(), Some(Kind::Broadcast));
    assert!(
        matches!(
            seen.figures(),
            Some(Figures::Broadcast { published: 6, .. })
        ),
        "{seen:?}"
    );
    let shared = Shared::new(Broadcast::<[u64; 8]>::required_size(4).unwrap());
    let mut writer = Broadcast::<[u64; 8]>::create(shared.region(), 4)
        .unwrap()
        .into_writer();
    for n in 0..7 {
        writer.publish(&[n; 8]);
    }
    let seen = look(&shared);
    assert_eq!(seen.problem(), None, "{seen:?}");
    assert!(
        matches!(
            seen.figures(),
            Some(Figures::Broadcast { published: 7, .. })
        ),
        "{seen:?}"
    );

    let shared = Shared::new(SeqLock::<[u64; 3]>::required_size().unwrap());
    let mut writer = SeqLock::<[u64; 3]>::create(shared.region())
        .unwrap()
        .into_writer();
    writer.write(&[1, 2, 3]);
    writer.write(&[4, 5, 6]);
    let seen = look(&shared);
    assert_eq!(
        seen.figures(),
        Some(&Figures::SeqLock {
            sequence: 4,
            writing: false
        })
    );
    assert_eq!(seen.problem(), None);
}

#[test]
fn lanes_show_each_lanes_state_and_counters() {
    let shared = Shared::new(Lanes::required_size(3, 64).unwrap());
    let lanes = Lanes::create(shared.region(), 3, 64).unwrap();
    let mut producer = lanes.claim_lane(1).unwrap();
    producer.push(b"one record").unwrap();
    let seen = look(&shared);
    assert_eq!(
        seen.figures(),
        Some(&Figures::Lanes {
            lanes: 3,
            words: 64
        })
    );
    assert!(matches!(
        seen.lane(0).unwrap().state,
        LaneState::Free { .. }
    ));
    let busy = seen.lane(1).unwrap();
    assert!(matches!(
        busy.state,
        LaneState::Claimed {
            generation: 1,
            locked: false
        }
    ));
    assert_eq!(busy.counters.used_words(), 3);
    assert!(seen.lane(3).is_none());
    assert_eq!(seen.problem(), None);
}

#[test]
fn a_layout_lists_its_parts_each_inspected_once() {
    let mut plan = Plan::<3>::new();
    plan.add(Kind::SeqLock, SeqLock::<u64>::required_size().unwrap())
        .unwrap();
    plan.add(Kind::Spsc, Spsc::<u32>::required_size(4).unwrap())
        .unwrap();
    let shared = Shared::new(plan.size().unwrap());
    let mut parts = plan.create(shared.region()).unwrap();
    let mut quote = SeqLock::<u64>::create(parts.next().unwrap())
        .unwrap()
        .into_writer();
    quote.write(&5);
    let mut ticks = Spsc::<u32>::create(parts.next().unwrap(), 4)
        .unwrap()
        .into_producer();
    ticks.try_push(1).unwrap();

    let mut seen = look(&shared);
    assert_eq!(seen.figures(), Some(&Figures::Layout { parts: 2 }));
    let listed: Vec<_> = seen.take_parts().unwrap().collect();
    assert!(seen.take_parts().is_none(), "handed out once");
    assert_eq!(listed.len(), 2);
    let first = listed[0].inspection.as_ref().unwrap();
    assert_eq!(
        first.figures(),
        Some(&Figures::SeqLock {
            sequence: 2,
            writing: false
        })
    );
    let second = listed[1].inspection.as_ref().unwrap();
    assert!(matches!(
        second.figures(),
        Some(Figures::Spsc { fill: 1, .. })
    ));
    assert_eq!(listed[1].listed.kind, Kind::Spsc as u32);
    assert!(
        listed
            .iter()
            .all(|part| part.inspection.as_ref().unwrap().problem().is_none())
    );
}

#[test]
fn a_scribbled_header_is_a_problem_named_by_field() {
    let len = Spsc::<u64>::required_size(4).unwrap();
    type Expected = fn(&Problem) -> bool;
    let cases: [(usize, u32, Expected); 6] = [
        (0, 0x1234_5678, |p| {
            matches!(
                p,
                Problem::Header(AttachError::WrongMagic { found: 0x1234_5678 })
            )
        }),
        (0, crate::layout::MAGIC.swap_bytes(), |p| {
            matches!(p, Problem::Header(AttachError::WrongByteOrder))
        }),
        (4, 99, |p| {
            matches!(
                p,
                Problem::Header(AttachError::WrongVersion { found: 99, .. })
            )
        }),
        (8, 77, |p| matches!(p, Problem::UnknownKind(77))),
        (16, 12, |p| {
            matches!(
                p,
                Problem::Element(ElementLayout {
                    size: 8,
                    stride: 12
                })
            )
        }),
        (20, 3, |p| {
            matches!(
                p,
                Problem::Header(AttachError::InvalidCapacity { found: 3 })
            )
        }),
    ];
    for (offset, value, expected) in cases {
        let shared = Shared::new(len);
        Spsc::<u64>::create(shared.region(), 4).unwrap();
        shared.poke(offset, value);
        let seen = look(&shared);
        let problem = seen.problem().copied();
        assert!(
            problem.as_ref().is_some_and(expected),
            "offset {offset}: {seen:?}"
        );
        assert!(seen.figures().is_none());
        if offset == 0 && value != 0x1234_5678 {
            assert_eq!(seen.header().unwrap().byte_order(), ByteOrder::Swapped);
        }
    }
    // A capacity larger than the region: the header is refused, as `attach` refuses it.
    let shared = Shared::new(len);
    Spsc::<u64>::create(shared.region(), 4).unwrap();
    shared.poke(20, 1 << 20);
    assert!(matches!(
        look(&shared).problem(),
        Some(Problem::Header(AttachError::Fit(_)))
    ));
    // All zeroes: not made yet, not corruption.
    let shared = Shared::new(len);
    assert!(look(&shared).problem().unwrap().is_uninitialized());
}

#[test]
fn impossible_counters_are_a_problem_with_the_figures_shown() {
    let shared = Shared::new(Spsc::<u64>::required_size(4).unwrap());
    Spsc::<u64>::create(shared.region(), 4).unwrap();
    shared.poke(128, 9); // head 9, tail 0: 9 elements in 4 slots
    let seen = look(&shared);
    assert_eq!(seen.problem(), Some(&Problem::Counters));
    assert!(matches!(
        seen.figures(),
        Some(Figures::Spsc { counters, fill: 9 }) if counters.pushed == 9
    ));
    // The consumer ahead of an unpublished `head` (by up to a ring): 0
    // waiting, no problem.
    shared.poke(128, 0);
    shared.poke(256, 3);
    let seen = look(&shared);
    assert_eq!(seen.problem(), None);
    assert!(matches!(
        seen.figures(),
        Some(Figures::Spsc { fill: 0, .. })
    ));

    let shared = Shared::new(RecordRing::required_size(8).unwrap());
    RecordRing::create(shared.region(), 8).unwrap();
    shared.poke(256, 100); // tail ahead of head
    assert_eq!(look(&shared).problem(), Some(&Problem::Counters));

    let shared = Shared::new(Lanes::required_size(2, 8).unwrap());
    Lanes::create(shared.region(), 2, 8).unwrap();
    // Lane 1's `head` (at 512 + 384) more than its 8 words ahead.
    shared.poke(896, 9);
    assert_eq!(look(&shared).problem(), Some(&Problem::Lane(1)));
    // Every state word is some state: `LOCKED`, generation 0.
    shared.poke(896, 0);
    shared.poke(256 + 4, 3);
    assert_eq!(look(&shared).problem(), None);
}

#[test]
fn a_scribbled_directory_entry_is_a_problem_of_that_part() {
    let mut plan = Plan::<2>::new();
    plan.add(Kind::Spsc, Spsc::<u32>::required_size(4).unwrap())
        .unwrap();
    plan.add(Kind::Spsc, Spsc::<u32>::required_size(4).unwrap())
        .unwrap();
    let shared = Shared::new(plan.size().unwrap());
    let mut parts = plan.create(shared.region()).unwrap();
    Spsc::<u32>::create(parts.next().unwrap(), 4).unwrap();
    Spsc::<u32>::create(parts.next().unwrap(), 4).unwrap();
    drop(parts);
    // Entry 1's offset (at 128 + 16 + 4) made to overlap part 0.
    let offset = shared.peek(128 + 16 + 4);
    shared.poke(128 + 16 + 4, offset - 1);
    let mut seen = look(&shared);
    let listed: Vec<_> = seen.take_parts().unwrap().collect();
    assert!(listed[0].inspection.is_ok());
    assert!(matches!(
        listed[1].inspection,
        Err(Problem::Part { index: 1, .. })
    ));
    shared.poke(128 + 16 + 4, offset);
    // Entry 0 lists another kind than its part holds.
    shared.poke(128, Kind::SeqLock as u32);
    let mut seen = look(&shared);
    let first = seen.take_parts().unwrap().next().unwrap();
    assert!(matches!(
        first.inspection.unwrap().problem(),
        Some(Problem::Part { index: 0, .. })
    ));
}

/// A tiny deterministic generator (xorshift), so the test needs no seed.
struct Bits(u64);

impl Bits {
    fn next(&mut self) -> u32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 16) as u32
    }
}

/// Walks everything an inspection offers, nested parts included.
fn walk(mut seen: Inspection<'_>, depth: u32) -> u32 {
    let _ = std::format!("{seen:?}");
    if let Some(problem) = seen.problem() {
        let _ = std::format!("{problem}");
    }
    for lane in 0..70 {
        let _ = seen.lane(lane);
    }
    let mut visited = 1;
    if let Some(parts) = seen.take_parts() {
        for part in parts.take(64) {
            if let (Ok(inner), true) = (part.inspection, depth < 8) {
                visited += walk(inner, depth + 1);
            }
        }
    }
    visited
}

#[test]
fn random_bytes_never_panic() {
    let mut bits = Bits(0x2545_f491_4f6c_dd1d);
    let mut visited = 0;
    let rounds = if cfg!(miri) { 60 } else { 3000 };
    for round in 0..rounds {
        let lines = 1 + bits.next() as usize % 24;
        let mut mem = vec![Line::ZERO; lines];
        let words: &mut [u32] = zerocopy::FromBytes::mut_from_bytes(mem.as_mut_bytes()).unwrap();
        for word in words.iter_mut() {
            // Mostly small values, so that kinds, capacities and offsets are
            // often plausible and the inspection goes deep.
            *word = match bits.next() % 4 {
                0 => bits.next(),
                _ => bits.next() % 40,
            };
        }
        // Often a valid magic and version, and a directory entry that fits.
        if round % 3 != 0 {
            words[0] = crate::layout::MAGIC;
            words[1] = crate::ABI_VERSION;
            words[2] = 1 + bits.next() % 6;
            words[4] = words[3].next_multiple_of(8);
            words[8] = 0;
        }
        if round % 2 == 0 && words.len() > 40 {
            words[2] = Kind::Layout as u32;
            words[3] = 16;
            words[4] = 16;
            words[5] = 1 + bits.next() % 3;
            (words[6], words[7]) = (0, 0); // a directory has no tag
            words[33] = 2 + bits.next() % 2;
        }
        visited += walk(
            inspect(ReadRegion::from(Region::new(mem.as_mut_bytes()))),
            0,
        );
    }
    assert!(visited > rounds, "some parts were reached: {visited}");
}
