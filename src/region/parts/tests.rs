//! Plans, directories and parts: round trips, a peer rewriting the directory,
//! and plans that do not match.

use std::vec::Vec;

use super::*;
use crate::broadcast::{Broadcast, Start};
use crate::seqlock::SeqLock;
use crate::spsc::Spsc;
use crate::test_support::Shared;

type Quote = [u64; 2];

/// Three seqlocks of quotes and a ring of `u64`s.
fn market() -> Plan<8> {
    let mut plan = Plan::new();
    for _ in 0..3 {
        plan.add(Kind::SeqLock, SeqLock::<Quote>::required_size().unwrap())
            .unwrap();
    }
    plan.add(Kind::Spsc, Spsc::<u64>::required_size(64).unwrap())
        .unwrap();
    plan
}

#[test]
fn a_plan_places_parts_after_the_directory_on_lines() {
    let plan = market();
    assert_eq!((plan.len(), plan.is_empty()), (4, false));
    // Directory: 128 + 4 * 16 bytes = 2 lines; seqlocks 256 + 16 = 3 lines
    // each; the ring 512 + 64 * (8 + 8) = 12 lines.
    assert_eq!(plan.size(), Some((2 + 3 * 3 + 12) * LINE));
    let placed = plan.placed();
    let at: Vec<_> = placed
        .iter()
        .map(|(_, part)| (part.offset_lines, part.len_lines))
        .collect();
    assert_eq!(at, [(2, 3), (5, 3), (8, 3), (11, 12)]);
    assert_eq!(Plan::<1>::new().size(), Some(LINE));
}

#[test]
fn parts_created_are_the_parts_attached() {
    let plan = market();
    let shared = Shared::new(plan.size().unwrap());
    let mut parts = plan.create(shared.region()).unwrap();
    let mut writers: Vec<_> = (0..3)
        .map(|_| {
            SeqLock::<Quote>::create(parts.next().unwrap())
                .unwrap()
                .into_writer()
        })
        .collect();
    let mut ticks = Spsc::<u64>::create(parts.next().unwrap(), 64)
        .unwrap()
        .into_producer();
    assert!(parts.next().is_none(), "four parts, each handed out once");
    for (i, writer) in writers.iter_mut().enumerate() {
        writer.write(&[i as u64, 10 + i as u64]);
    }
    ticks.try_push(77).unwrap();

    // Another process's view: the same plan, attached (here through a second
    // region over the same memory, as a second mapping would be).
    let mut parts = plan.attach_read(shared.region().into()).unwrap();
    for i in 0..3 {
        let reader = SeqLock::<Quote>::attach_reader(parts.next().unwrap()).unwrap();
        assert_eq!(
            reader.try_read(),
            Ok([i, 10 + i]),
            "part {i} kept its value"
        );
    }
    assert_eq!(
        std::format!("{parts:?}"),
        "ReadParts(Parts { parts: 4, next: 3, .. })"
    );
}

#[test]
fn attaching_another_plan_names_the_difference() {
    let plan = market();
    let shared = Shared::new(plan.size().unwrap() + 8 * LINE);
    plan.create(shared.region()).unwrap();

    let mut fewer = Plan::<8>::new();
    fewer
        .add(Kind::SeqLock, SeqLock::<Quote>::required_size().unwrap())
        .unwrap();
    assert_eq!(
        fewer.attach(shared.region()).map(|_| ()),
        Err(AttachError::WrongPartCount {
            expected: 1,
            found: 4
        })
    );

    let mut other = market();
    other.parts[3].0 = Kind::Bytes;
    assert_eq!(
        other.attach(shared.region()).map(|_| ()),
        Err(AttachError::WrongPart {
            part: 3,
            expected: PartInfo {
                kind: Kind::Bytes as u32,
                offset_lines: 11,
                len_lines: 12
            },
            found: PartInfo {
                kind: Kind::Spsc as u32,
                offset_lines: 11,
                len_lines: 12
            },
        })
    );

    let mut bigger = Plan::<8>::new();
    for _ in 0..3 {
        bigger
            .add(
                Kind::SeqLock,
                SeqLock::<[u64; 20]>::required_size().unwrap(),
            )
            .unwrap();
    }
    bigger
        .add(Kind::Spsc, Spsc::<u64>::required_size(64).unwrap())
        .unwrap();
    assert!(matches!(
        bigger.attach(shared.region()),
        Err(AttachError::WrongPart { part: 0, .. })
    ));
}

#[test]
fn a_peer_rewriting_the_directory_is_refused_not_followed() {
    let plan = market();
    let shared = Shared::new(plan.size().unwrap());
    plan.create(shared.region()).unwrap();
    // The third part's offset, pointed back at the directory.
    shared.poke(LINE + 2 * ENTRY + 4, 0);
    assert_eq!(
        plan.attach(shared.region()).map(|_| ()),
        Err(AttachError::WrongPart {
            part: 2,
            expected: PartInfo {
                kind: Kind::SeqLock as u32,
                offset_lines: 8,
                len_lines: 3
            },
            found: PartInfo {
                kind: Kind::SeqLock as u32,
                offset_lines: 0,
                len_lines: 3
            },
        })
    );
    // The count too.
    shared.poke(20, 9);
    assert_eq!(
        plan.attach(shared.region()).map(|_| ()),
        Err(AttachError::WrongPartCount {
            expected: 4,
            found: 9
        })
    );
}

#[test]
fn regions_too_small_or_empty_plans_are_refused() {
    let plan = market();
    let size = plan.size().unwrap();
    let shared = Shared::new(size - LINE);
    assert_eq!(
        plan.create(shared.region()).map(|_| ()),
        Err(CreateError::Fit(FitError::TooSmall {
            needed: size,
            actual: size - LINE
        }))
    );
    let shared = Shared::new(LINE);
    assert_eq!(
        Plan::<2>::new().create(shared.region()).map(|_| ()),
        Err(CreateError::InvalidCapacity { capacity: 0 })
    );
    // A directory that fits, in a region too short for its parts.
    let shared = Shared::new(size);
    plan.create(shared.region()).unwrap();
    let cut = Shared::new(size - LINE);
    // Copy the directory (two lines) into the shorter memory.
    for offset in (0..2 * LINE).step_by(4) {
        cut.poke(offset, shared.peek(offset));
    }
    assert_eq!(
        plan.attach(cut.region()).map(|_| ()),
        Err(AttachError::Fit(FitError::TooSmall {
            needed: size,
            actual: size - LINE
        }))
    );
}

#[test]
fn a_part_of_no_bytes_is_refused_and_the_plan_stays_as_it_was() {
    let mut plan = Plan::<4>::new();
    plan.add(Kind::SeqLock, 256).unwrap();
    assert_eq!(plan.add(Kind::Spsc, 0), Err(PlanError::Empty));
    assert_eq!(plan.len(), 1);
    assert_eq!(
        plan.add(Kind::Spsc, 1),
        Ok(1),
        "the next part takes its place"
    );
    assert_eq!(
        std::format!("{}", PlanError::Empty),
        "a part of 0 bytes: every structure takes its header"
    );
}

#[test]
fn plans_are_bounded() {
    let mut plan = Plan::<2>::new();
    plan.add(Kind::Spsc, 1).unwrap();
    plan.add(Kind::Spsc, 1).unwrap();
    assert_eq!(plan.add(Kind::Spsc, 1), Err(PlanError::Full { max: 2 }));
    let mut plan = Plan::<2>::new();
    assert_eq!(
        plan.add(Kind::Spsc, usize::MAX),
        Err(PlanError::TooLarge),
        "more than 2^32 lines"
    );
    assert_eq!(
        std::format!("{}", PlanError::Full { max: 2 }),
        "the plan already holds its 2 parts"
    );
    assert_eq!(
        std::format!(
            "{}",
            AttachError::WrongPart {
                part: 1,
                expected: PartInfo {
                    kind: 2,
                    offset_lines: 5,
                    len_lines: 3
                },
                found: PartInfo {
                    kind: 9,
                    offset_lines: 0,
                    len_lines: 3
                },
            }
        ),
        "part 1 of the region is kind 9 at line 0 for 3 lines, expected a seqlock at line 5 for 3 lines"
    );
}

#[test]
fn a_part_takes_only_the_kind_it_was_planned_for() {
    let plan = market();
    let shared = Shared::new(plan.size().unwrap());
    let mut parts = plan.create(shared.region()).unwrap();
    // Part 0 was planned for a seqlock.
    let err = Spsc::<u64>::create(parts.next().unwrap(), 2).unwrap_err();
    assert_eq!(
        err,
        CreateError::PlannedFor {
            planned: Kind::SeqLock,
            kind: Kind::Spsc
        }
    );
    assert_eq!(
        err.to_string(),
        "the region is a part planned for structure kind \"seqlock\", not \"SPSC ring\""
    );
    for _ in 0..2 {
        SeqLock::<Quote>::create(parts.next().unwrap()).unwrap();
    }
    Spsc::<u64>::create(parts.next().unwrap(), 64).unwrap();

    // A peer attaching another kind in a part is refused before its header
    // is read (part 0 holds no structure at all here).
    let mut peer = plan.attach(shared.region()).unwrap();
    let err = Spsc::<u64>::attach(peer.next().unwrap()).unwrap_err();
    assert_eq!(
        err,
        AttachError::PlannedFor {
            planned: Kind::SeqLock,
            expected: Kind::Spsc
        }
    );
    assert!(SeqLock::<Quote>::attach(peer.next().unwrap()).is_ok());
    // So is a reader on a read-only part, and a plan nested in a part that
    // was not planned as a layout.
    let mut readers = plan.attach_read(shared.region().into()).unwrap();
    let err = Broadcast::<u64>::attach_reader(readers.nth(1).unwrap(), Start::Newest).unwrap_err();
    assert!(matches!(
        err,
        AttachError::PlannedFor {
            planned: Kind::SeqLock,
            ..
        }
    ));
    let nested = Plan::<1>::new().create(peer.next().unwrap()).unwrap_err();
    assert_eq!(
        nested,
        CreateError::PlannedFor {
            planned: Kind::SeqLock,
            kind: Kind::Layout
        }
    );
}

#[test]
fn a_plan_nests_in_a_part_planned_as_a_layout() {
    let mut inner = Plan::<1>::new();
    inner
        .add(Kind::Spsc, Spsc::<u64>::required_size(4).unwrap())
        .unwrap();
    let mut outer = Plan::<1>::new();
    outer.add(Kind::Layout, inner.size().unwrap()).unwrap();
    let shared = Shared::new(outer.size().unwrap());
    let part = outer.create(shared.region()).unwrap().next().unwrap();
    let ring = inner.create(part).unwrap().next().unwrap();
    let mut tx = Spsc::<u64>::create(ring, 4).unwrap().into_producer();
    tx.try_push(5).unwrap();
    let part = outer.attach(shared.region()).unwrap().next().unwrap();
    let ring = inner.attach(part).unwrap().next().unwrap();
    let mut rx = Spsc::<u64>::attach(ring).unwrap().into_consumer();
    assert_eq!(rx.try_pop(), Ok(5));
}
