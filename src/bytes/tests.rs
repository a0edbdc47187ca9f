//! Unit tests of the record ring, including a hostile peer rewriting its
//! counters and record headers.

use std::boxed::Box;
use std::vec::Vec;

use zerocopy::IntoBytes;

use super::BlockingError;
use super::*;
use crate::test_support::Shared;
use crate::{FitError, Line};

/// Memory for a ring of `words` words, and a stand-in for the peer process.
fn shared(words: u32) -> Shared {
    Shared::new(RecordRing::required_size(words).unwrap())
}

/// The peer's view of the ring in `shared`, made without checking the
/// counters: it writes headers with the same atomics the ring uses.
fn peer(shared: &Shared) -> Ring<'_> {
    let ((ring, _, _), ()) = shared.region().attach::<Shape>(ELEM).unwrap();
    ring
}

/// A record header as the peer writes it: `(len, padding)`.
type Header = (u32, bool);

/// A header word's two `u32`s as a hostile peer writes them: the length
/// (bit 31 for padding) and the seal.
type RawHeader = (u32, u32);

impl Ring<'_> {
    /// The header sealed at `pos`, if any.
    fn header(&self, pos: u32) -> Option<Header> {
        self.sealed(pos)
    }

    /// Seals `header` at `pos`, as a producer does.
    fn put(&self, pos: u32, (len, padding): Header) {
        self.seal(pos, len, padding);
    }
}

/// A record of `len` bytes that differs for every `seed`.
fn record(seed: u32, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (seed.wrapping_mul(31) as usize + i * 7) as u8)
        .collect()
}

#[test]
fn records_of_every_length_round_trip() {
    let shared = shared(16);
    let (mut tx, mut rx) = RecordRing::create(shared.region(), 16).unwrap().split();
    assert_eq!((tx.max_record(), rx.max_record()), (56, 56));
    assert_eq!((tx.capacity(), rx.capacity()), (16, 16));
    let mut buf = [0; 56];
    for round in 0..3 {
        for len in 0..=56 {
            let sent = record(round * 100 + len as u32, len);
            tx.push(&sent).unwrap();
            assert!(!rx.is_empty());
            assert_eq!(rx.pop_into(&mut buf), Ok(len));
            assert_eq!(buf[..len], sent[..]);
            assert!(rx.is_empty());
        }
    }
    assert_eq!(rx.pop_into(&mut buf), Err(PopError::Empty));
}

#[test]
fn a_record_costs_its_own_length() {
    let shared = shared(64);
    let (mut tx, mut rx) = RecordRing::create(shared.region(), 64).unwrap().split();
    tx.push(&[7; 42]).unwrap();
    // A header word and ceil(42 / 8) = 6 payload words, not the maximum.
    assert_eq!(rx.used_words(), 7);
    tx.push(&[]).unwrap();
    assert_eq!(rx.used_words(), 8, "an empty record is its header");
    assert_eq!(rx.pop_vec::<42>().unwrap().as_slice(), &[7; 42]);
    assert_eq!(rx.pop_vec::<0>().unwrap().as_slice(), &[]);
    assert_eq!(rx.used_words(), 0);
}

#[test]
fn pops_into_a_vec_and_through_a_closure() {
    let mut ring = StaticRecordRing::<16>::new();
    let (mut tx, mut rx) = ring.split();
    tx.push(b"first").unwrap();
    tx.push(b"second record").unwrap();
    let mut buf = [0; 56];
    assert_eq!(rx.pop_with(&mut buf, |line| line.len()), Ok(5));
    assert_eq!(
        rx.pop_with(&mut buf, |line| line == b"second record"),
        Ok(true)
    );
    assert_eq!(rx.pop_with(&mut buf, |_| ()), Err(PopError::Empty));
}

#[test]
fn a_buffer_too_small_leaves_the_record_in_place() {
    let mut ring = StaticRecordRing::<16>::new();
    let (mut tx, mut rx) = ring.split();
    tx.push(b"twelve bytes").unwrap();
    assert_eq!(
        rx.pop_into(&mut [0; 11]),
        Err(PopError::TooSmall { needed: 12 })
    );
    assert_eq!(rx.pop_vec::<4>(), Err(PopError::TooSmall { needed: 12 }));
    assert_eq!(
        rx.pop_with(&mut [0; 3], |_| panic!("called")),
        Err(PopError::TooSmall { needed: 12 })
    );
    assert_eq!(rx.pop_vec::<12>().unwrap().as_slice(), b"twelve bytes");
}

#[test]
fn grants_write_in_place_and_abandon_on_drop() {
    let mut ring = StaticRecordRing::<16>::new();
    let (mut tx, mut rx) = ring.split();
    {
        let mut grant = tx.reserve(20).unwrap();
        grant.write(0, b"abandoned").unwrap();
        // Dropped: nothing published.
    }
    assert!(rx.is_empty());
    let mut grant = tx.reserve(20).unwrap();
    assert_eq!((grant.len(), grant.is_empty()), (20, false));
    grant.write(3, b"def").unwrap();
    grant.write(0, b"abc").unwrap();
    grant.write(6, b"ghijklmnopqrst").unwrap();
    assert_eq!(
        grant.write(18, b"xyz"),
        Err(OutOfBounds {
            offset: 18,
            len: 3,
            reserved: 20
        })
    );
    assert_eq!(
        grant.write(usize::MAX, b"x"),
        Err(OutOfBounds {
            offset: usize::MAX,
            len: 1,
            reserved: 20
        })
    );
    // Commit fewer bytes than reserved: the record takes only those.
    grant.commit(9);
    assert_eq!(rx.used_words(), 1 + 2);
    assert_eq!(rx.pop_vec::<20>().unwrap().as_slice(), b"abcdefghi");
    assert!(tx.reserve(0).unwrap().is_empty());
}

#[test]
#[should_panic(expected = "commit of 5 bytes in a grant of 4")]
fn committing_more_than_reserved_panics() {
    let mut ring = StaticRecordRing::<16>::new();
    let (mut tx, _rx) = ring.split();
    tx.reserve(4).unwrap().commit(5);
}

#[test]
fn the_largest_record_is_enforced_at_reserve() {
    let mut ring = StaticRecordRing::<8>::new();
    let (mut tx, mut rx) = ring.split();
    assert_eq!(tx.max_record(), 24);
    assert_eq!(
        tx.reserve(25).map(drop),
        Err(ReserveError::TooLarge { len: 25, max: 24 })
    );
    assert_eq!(
        tx.push(&[0; 1000]),
        Err(ReserveError::TooLarge { len: 1000, max: 24 })
    );
    assert_eq!(
        tx.reserve(usize::MAX).map(drop),
        Err(ReserveError::TooLarge {
            len: usize::MAX,
            max: 24
        })
    );
    tx.push(&[1; 24]).unwrap();
    assert_eq!(rx.pop_vec::<24>().unwrap().as_slice(), &[1; 24]);
}

#[test]
fn a_record_that_would_straddle_the_end_starts_after_padding() {
    let shared = shared(16);
    let (mut tx, mut rx) = RecordRing::create(shared.region(), 16).unwrap().split();
    let peer = peer(&shared);
    // 10 words consumed: the next record starts at word 10, 6 words before
    // the end.
    tx.push(&[0; 56]).unwrap();
    tx.push(&[0; 8]).unwrap();
    rx.pop_vec::<56>().unwrap();
    rx.pop_vec::<56>().unwrap();
    // 7 words do not fit in 6: padding of 6 words, then the record at 0.
    tx.push(&record(1, 48)).unwrap();
    assert_eq!(peer.header(10), Some((5 * 8, true)));
    assert_eq!(peer.header(16), Some((48, false)));
    assert_eq!(peer.header(23), None, "the marker after the record");
    assert_eq!(rx.used_words(), 6 + 7);
    assert_eq!(rx.pop_vec::<56>().unwrap().as_slice(), &record(1, 48)[..]);
    // At word 7 (position 23), 6 words fit before word 13; the next 6 do
    // not fit in 3.
    tx.push(&[2; 40]).unwrap();
    tx.push(&[3; 40]).unwrap();
    // Seals name positions, not words: the second lap's.
    assert_eq!(peer.header(7), None);
    assert_eq!(peer.header(16 + 7), Some((40, false)));
    assert_eq!(peer.header(16 + 13), Some((2 * 8, true)));
    assert_eq!(peer.header(32), Some((40, false)));
    assert_eq!(rx.pop_vec::<56>().unwrap().as_slice(), &[2; 40]);
    assert_eq!(rx.pop_vec::<56>().unwrap().as_slice(), &[3; 40]);
    assert!(rx.is_empty());
}

#[test]
fn payload_left_from_an_earlier_lap_never_reads_as_a_record() {
    // A record's payload holds, at position 3, what would be a header sealed
    // for position 19, the same word a lap later. The marker each commit
    // writes after its record overwrites it before the consumer looks there.
    let shared = shared(16);
    let (mut tx, mut rx) = RecordRing::create(shared.region(), 16).unwrap().split();
    let mut forged = [0; 48];
    forged[16 + 4..16 + 8].copy_from_slice(&seal_of(19).to_ne_bytes());
    tx.push(&forged).unwrap();
    let mut buf = [0; 56];
    assert_eq!(rx.pop_into(&mut buf), Ok(48));
    // Records up to position 19: at 7, 15 and 16.
    for len in [56, 0, 16] {
        tx.push(&[5; 56][..len]).unwrap();
        assert_eq!(rx.pop_into(&mut buf), Ok(len));
    }
    assert_eq!(rx.pop_into(&mut buf), Err(PopError::Empty));
    assert!(rx.is_empty());
}

#[test]
fn a_new_producer_adopts_what_a_dead_one_sealed_but_never_counted() {
    let shared = shared(16);
    let (mut tx, mut rx) = RecordRing::create(shared.region(), 16).unwrap().split();
    tx.push(b"first").unwrap();
    tx.push(b"second").unwrap();
    // The producer died between sealing and publishing `head`.
    shared.poke(HEAD, 0);
    let mut buf = [0; 56];
    assert_eq!(rx.pop_into(&mut buf), Ok(5), "sealed: popped");
    let mut tx = RecordRing::attach(shared.region()).unwrap().into_producer();
    assert_eq!(rx.counters().published, 4, "adopted and published");
    tx.push(b"third").unwrap();
    for expected in [&b"second"[..], b"third"] {
        assert_eq!(rx.pop_vec::<8>().unwrap().as_slice(), expected);
    }
    assert!(rx.is_empty());
}

#[test]
fn a_full_ring_always_clears_for_the_largest_record() {
    // Wherever the ring's positions stand, the largest record fits once the
    // consumer has drained it: padding and record take at most the ring.
    let mut ring = StaticRecordRing::<16>::new();
    let (mut tx, mut rx) = ring.split();
    let max = tx.max_record();
    let mut buf = [0; 56];
    for shift in 0..16 {
        // Move the positions by `shift` words (an empty record each).
        for _ in 0..shift {
            tx.push(&[]).unwrap();
            rx.pop_into(&mut buf).unwrap();
        }
        // Fill the ring, then drain it.
        let mut pushed = 0;
        while tx.push(&record(pushed, max)).is_ok() {
            pushed += 1;
            assert!(pushed <= 2, "at most two of the largest fit");
        }
        assert_eq!(tx.push(&record(0, max)), Err(ReserveError::Full));
        for n in 0..pushed {
            assert_eq!(rx.pop_into(&mut buf), Ok(max));
            assert_eq!(buf[..], record(n, max)[..]);
        }
        tx.push(&record(shift, max)).unwrap();
        assert_eq!(rx.pop_into(&mut buf), Ok(max));
    }
}

#[test]
fn counters_wrap_around_u32() {
    let shared = shared(8);
    RecordRing::create(shared.region(), 8).unwrap();
    let start = u32::MAX - 20;
    shared.poke(HEAD, start);
    shared.poke(TAIL, start);
    let (mut tx, mut rx) = RecordRing::attach(shared.region()).unwrap().split();
    for i in 0..60 {
        let sent = record(i, (i % 25) as usize);
        tx.push(&sent).unwrap();
        assert_eq!(rx.pop_vec::<24>().unwrap().as_slice(), &sent[..]);
    }
}

#[test]
fn the_consumer_reports_a_producer_claiming_too_many_words() {
    let shared = shared(8);
    let (mut tx, mut rx) = RecordRing::create(shared.region(), 8).unwrap().split();
    tx.push(b"kept").unwrap();
    // A sealed record is popped without looking at `head`.
    shared.poke(HEAD, 99);
    let mut buf = [0; 24];
    assert_eq!(rx.pop_into(&mut buf), Ok(4));
    // Nothing sealed at word 2, and `head` claims more than the ring.
    shared.poke(HEAD, 2 + 9);
    assert_eq!(rx.pop_into(&mut buf), Err(PopError::Corrupted));
    assert_eq!(rx.used_words(), 8);
    assert!(!rx.is_empty());
    // Nothing sealed while `head` counts a record: as impossible.
    shared.poke(HEAD, 2 + 2);
    assert_eq!(rx.pop_into(&mut buf), Err(PopError::Corrupted));
    // A `head` behind the tail by up to a ring is a producer that died
    // between sealing and publishing `head`: nothing waiting. More is not.
    shared.poke(HEAD, 0);
    assert_eq!(rx.pop_into(&mut buf), Err(PopError::Empty));
    shared.poke(HEAD, 2u32.wrapping_sub(9));
    assert_eq!(rx.pop_into(&mut buf), Err(PopError::Corrupted));
    // Once the peer behaves again, so does the ring.
    shared.poke(HEAD, 2);
    assert!(rx.is_empty());
    tx.push(b"again").unwrap();
    assert_eq!(rx.pop_into(&mut buf), Ok(5));
}

#[test]
fn impossible_record_headers_are_corrupted_and_leave_the_ring_alone() {
    let shared = shared(16);
    let (mut tx, mut rx) = RecordRing::create(shared.region(), 16).unwrap().split();
    let peer = peer(&shared);
    let mut buf = [0; 56];
    // Move to word 12, then publish a record that needs padding there.
    tx.push(&[0; 56]).unwrap();
    rx.pop_into(&mut buf).unwrap();
    tx.push(&[0; 24]).unwrap();
    rx.pop_into(&mut buf).unwrap();
    assert_eq!(rx.used_words(), 0);
    tx.push(&record(9, 40)).unwrap();
    assert_eq!(peer.header(12), Some((3 * 8, true)));
    assert_eq!(peer.header(16), Some((40, false)));
    let head: u32 = 12 + 4 + 6;
    let (sealed_12, sealed_16) = (seal_of(12), seal_of(16));
    // What the peer writes at word 12 (padding there) and word 16: each
    // header's first `u32` (length, and bit 31 for padding) and its seal.
    let pad = |len: u32| len | PADDING;
    let cases: [(&str, RawHeader, RawHeader); 9] = [
        (
            "padding too short",
            (pad(2 * 8), sealed_12),
            (40, sealed_16),
        ),
        ("padding too long", (pad(4 * 8), sealed_12), (40, sealed_16)),
        (
            "padding length huge",
            (u32::MAX, sealed_12),
            (40, sealed_16),
        ),
        (
            "padding twice",
            (pad(3 * 8), sealed_12),
            (pad(15 * 8), sealed_16),
        ),
        (
            "record not sealed after padding",
            (pad(3 * 8), sealed_12),
            (40, 0),
        ),
        (
            "record sealed for another lap",
            (pad(3 * 8), sealed_12),
            (40, seal_of(32)),
        ),
        (
            "padding sealed for another lap",
            (pad(3 * 8), seal_of(28)),
            (40, sealed_16),
        ),
        (
            "longer than the largest",
            (pad(3 * 8), sealed_12),
            (57, sealed_16),
        ),
        ("huge", (pad(3 * 8), sealed_12), (u32::MAX >> 1, sealed_16)),
    ];
    for (what, first, second) in cases {
        peer.set_header(12, first.0, first.1, Ordering::Relaxed);
        peer.set_header(16, second.0, second.1, Ordering::Relaxed);
        assert_eq!(rx.pop_into(&mut buf), Err(PopError::Corrupted), "{what}");
        assert_eq!(rx.pop_vec::<64>(), Err(PopError::Corrupted), "{what}");
        assert_eq!(
            rx.used_words(),
            head as usize - 12,
            "{what}: nothing released"
        );
    }
    peer.put(12, (3 * 8, true));
    peer.put(16, (40, false));
    assert_eq!(rx.pop_into(&mut buf), Ok(40));
    assert_eq!(buf[..40], record(9, 40)[..]);
}

#[test]
fn a_corrupt_header_is_reported_until_the_peer_rewrites_it() {
    let shared = shared(16);
    let mut rx = RecordRing::create(shared.region(), 16)
        .unwrap()
        .into_consumer();
    let peer = peer(&shared);
    peer.put(0, (1000, false));
    assert_eq!(rx.pop_vec::<8>(), Err(PopError::Corrupted));
    assert_eq!(rx.pop_vec::<8>(), Err(PopError::Corrupted));
    // The peer behaves again: one empty record, `head` 1.
    peer.put(0, (0, false));
    shared.poke(HEAD, 1);
    assert_eq!(rx.pop_vec::<8>().map(|r| r.len()), Ok(0));
    assert_eq!(rx.pop_vec::<8>(), Err(PopError::Empty));
}

#[test]
fn a_record_straddling_the_end_is_corrupted() {
    let shared = shared(8);
    let (mut tx, mut rx) = RecordRing::create(shared.region(), 8).unwrap().split();
    let peer = peer(&shared);
    tx.push(&[0; 16]).unwrap();
    rx.pop_vec::<24>().unwrap();
    // At word 3: 5 words to the end. A 24-byte record (4 words) fits; a
    // header claiming it is 6 words long, with head allowing it, straddles.
    tx.push(&[1; 24]).unwrap();
    peer.put(3, (24 + 8 * 2 - 7, false));
    assert_eq!(rx.pop_vec::<24>(), Err(PopError::Corrupted));
}

#[test]
fn the_producer_reports_a_consumer_ahead_of_it() {
    let shared = shared(8);
    let (mut tx, _rx) = RecordRing::create(shared.region(), 8).unwrap().split();
    tx.push(&[0; 24]).unwrap();
    tx.push(&[0; 8]).unwrap();
    // Two words free: a 4-word record makes the producer read `tail`.
    shared.poke(TAIL, 9);
    assert_eq!(tx.push(&[0; 24]), Err(ReserveError::Corrupted));
    assert_eq!(tx.reserve(24).map(drop), Err(ReserveError::Corrupted));
    // More than the capacity behind.
    shared.poke(TAIL, 6u32.wrapping_sub(9));
    assert_eq!(tx.push(&[0; 24]), Err(ReserveError::Corrupted));
    shared.poke(TAIL, 6);
    assert_eq!(tx.push(&[0; 24]), Ok(()));
}

#[test]
fn garbage_counters_and_headers_never_reach_out_of_bounds() {
    let shared = shared(16);
    let (mut tx, mut rx) = RecordRing::create(shared.region(), 16).unwrap().split();
    let peer = peer(&shared);
    let mut state = 0x2545_f491_u32;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        state
    };
    let rounds = if cfg!(miri) { 200 } else { 20_000 };
    let mut buf = [0; 56];
    for _ in 0..rounds {
        let r = next();
        match r % 4 {
            0 => shared.poke(HEAD, next()),
            1 => shared.poke(TAIL, next()),
            // A header sealed for its position half the time.
            _ => {
                let pos = next();
                let seal = if r & 1 << 20 == 0 {
                    seal_of(pos)
                } else {
                    next()
                };
                peer.set_header(
                    pos,
                    (next() % 256) | (next() & PADDING),
                    seal,
                    Ordering::Relaxed,
                );
            }
        }
        let _ = tx.push(&buf[..(r >> 8) as usize % 57]);
        let _ = rx.pop_into(&mut buf);
        let _ = rx.pop_vec::<16>();
        assert!(rx.used_words() <= 16);
    }
}

#[test]
fn attach_checks_the_header_and_counters() {
    let shared = shared(8);
    RecordRing::create(shared.region(), 8).unwrap();
    let ring = RecordRing::attach(shared.region()).unwrap();
    assert_eq!((ring.capacity(), ring.max_record()), (8, 24));
    assert_eq!(std::format!("{ring:?}"), "RecordRing { capacity: 8, .. }");
    shared.poke(HEAD, 10);
    shared.poke(TAIL, 1);
    assert_eq!(
        RecordRing::attach(shared.region()).map(drop),
        Err(AttachError::Corrupted)
    );
    // Another kind in the header (written as the header's own `u32`: a
    // structure of another kind here would reach the data words with other
    // widths).
    shared.poke(8, Kind::Spsc as u32);
    assert_eq!(
        RecordRing::attach(shared.region()).map(drop),
        Err(AttachError::WrongKind {
            expected: Kind::Bytes,
            found: Kind::Spsc as u32
        })
    );
}

#[test]
fn create_checks_capacity_alignment_and_size() {
    let mut mem = std::vec![Line::ZERO; Line::count_for(RecordRing::required_size(8).unwrap())];
    let bytes = mem.as_mut_bytes();
    for words in [0, 1, 2, 3, 6, MAX_CAPACITY * 2, u32::MAX] {
        assert_eq!(RecordRing::required_size(words), None);
        assert_eq!(
            RecordRing::create(Region::new(bytes), words).map(drop),
            Err(CreateError::InvalidCapacity { capacity: words })
        );
        assert_eq!(max_record(words), 0);
    }
    assert_eq!(
        RecordRing::create(Region::new(&mut bytes[8..]), 4).map(drop),
        Err(CreateError::Fit(FitError::Misaligned { required: 128 }))
    );
    assert_eq!(
        RecordRing::create(Region::new(bytes), 32).map(drop),
        Err(CreateError::Fit(FitError::TooSmall {
            needed: 512 + 32 * 8,
            actual: 640
        }))
    );
    assert!(RecordRing::create(Region::new(bytes), 8).is_ok());
}

#[test]
fn static_ring_takes_each_side_once() {
    static LOG: StaticRecordRing<8> = StaticRecordRing::new();
    let mut rx = LOG.take_consumer().expect("first consumer");
    let mut tx = LOG.take_producer().expect("first producer");
    assert!(LOG.take_producer().is_none() && LOG.take_consumer().is_none());
    for i in 0..20 {
        tx.push(&record(i, 20)).unwrap();
        assert_eq!(rx.pop_vec::<20>().unwrap().as_slice(), &record(i, 20)[..]);
    }
    assert_eq!(
        std::format!("{:?}", StaticRecordRing::<8>::default()),
        "StaticRecordRing { capacity: 8, .. }"
    );
}

#[test]
fn static_ring_resumes_where_the_last_split_stopped_and_has_region_bytes() {
    let mut ring = StaticRecordRing::<8>::new();
    ring.split().0.push(b"kept").unwrap();
    let mut moved = Box::new(ring);
    {
        let (_, mut rx) = moved.split();
        assert_eq!(rx.pop_vec::<8>().unwrap().as_slice(), b"kept");
    }
    moved.split().0.push(b"again").unwrap();
    let size = RecordRing::required_size(8).unwrap();
    let mut mem = std::vec![Line::ZERO; Line::count_for(size)];
    {
        let (mut tx, mut rx) = RecordRing::create(Region::new(mem.as_mut_bytes()), 8)
            .unwrap()
            .split();
        tx.push(b"kept").unwrap();
        rx.pop_vec::<8>().unwrap();
        tx.push(b"again").unwrap();
    }
    let base = (&raw const *moved).cast::<u8>();
    // The header's `creation` (bytes 32..36) counts the splits.
    for fields in [0..32, 128..132, 256..260, 384..392, 512..size] {
        // SAFETY: `moved` is a live value of at least `size` bytes laid out
        // as a region; each range holds bytes written through the ring or
        // zeroed at construction, never padding, and nothing writes it
        // while the slice lives.
        let ours = unsafe { core::slice::from_raw_parts(base.add(fields.start), fields.len()) };
        assert_eq!(ours, &mem.as_bytes()[fields]);
    }
}

#[test]
fn a_peer_writing_every_padding_byte_disturbs_nothing() {
    // Run under Miri with Stacked and Tree Borrows: a reference over any of
    // these bytes while the peer writes them would be reported.
    let shared = shared(8);
    let (mut tx, mut rx) = RecordRing::create(shared.region(), 8).unwrap().split();
    let padding = [36..128, 132..256, 260..384, 392..512];
    std::thread::scope(|s| {
        s.spawn(|| shared.scribble(&padding, 20));
        for i in 0..100 {
            tx.push(&record(i, (i % 25) as usize)).unwrap();
            assert!(!tx.wake_needed());
            assert_eq!(
                rx.pop_vec::<24>().unwrap().as_slice(),
                &record(i, (i % 25) as usize)[..]
            );
        }
    });
    assert!(rx.is_empty());
}

#[test]
fn prepare_to_sleep_announces_only_on_an_empty_ring() {
    let mut ring = StaticRecordRing::<8>::new();
    let (mut tx, mut rx) = ring.split();
    assert_eq!(rx.prepare_to_sleep(), Ok(Some(0)));
    tx.push(b"x").unwrap();
    assert!(
        tx.wake_needed(),
        "the commit must wake the announced consumer"
    );
    assert_eq!(rx.event().epoch(), 1);
    assert_eq!(rx.prepare_to_sleep(), Ok(None));
    tx.push(b"y").unwrap();
    assert!(!tx.wake_needed(), "the consumer withdrew");
    assert_eq!(tx.event().epoch(), 1);
}

#[test]
fn wait_or_sleep_sleeps_until_a_commit() {
    let mut ring = StaticRecordRing::<8>::new();
    let (mut tx, mut rx) = ring.split();
    tx.push(b"there").unwrap();
    let waited = rx.wait_or_sleep(0, |_, _| -> Result<(), ()> { panic!("slept") });
    assert_eq!(waited, Ok(()));
    assert!(
        !tx.wake_needed(),
        "no announcement for a record already there"
    );
    rx.pop_vec::<8>().unwrap();
    let mut epochs = Vec::new();
    let waited = rx.wait_or_sleep(2, |event, epoch| -> Result<(), ()> {
        epochs.push(epoch);
        let mut grant = tx.reserve(3).unwrap();
        grant.write(0, b"new").unwrap();
        grant.commit(3);
        assert!(tx.wake_needed());
        assert_ne!(event.epoch(), epoch, "a wake moves the epoch");
        Ok(())
    });
    assert_eq!(waited, Ok(()));
    assert_eq!(epochs, [0]);
    assert_eq!(rx.pop_vec::<8>().unwrap().as_slice(), b"new");
    assert_eq!(
        rx.wait_or_sleep(0, |_, _| Err("timed out")),
        Err(BlockingError::Sleep("timed out"))
    );
    tx.push(b"z").unwrap();
    assert!(!tx.wake_needed(), "the announcement was withdrawn");
}

#[test]
fn errors_say_what_is_wrong() {
    let texts = [
        (
            std::format!("{}", ReserveError::TooLarge { len: 30, max: 24 }),
            "record of 30 bytes is larger than the ring's largest, 24 bytes",
        ),
        (std::format!("{}", ReserveError::Full), "ring is full"),
        (std::format!("{}", PopError::Empty), "ring is empty"),
        (
            std::format!("{}", PopError::TooSmall { needed: 12 }),
            "buffer too small for the next record of 12 bytes",
        ),
        (
            std::format!(
                "{}",
                OutOfBounds {
                    offset: 18,
                    len: 3,
                    reserved: 20
                }
            ),
            "write of 3 bytes at offset 18 exceeds the 20 bytes reserved",
        ),
    ];
    for (text, expected) in texts {
        assert_eq!(text, expected);
    }
    let corrupted = std::format!("{Corrupted}");
    assert_eq!(std::format!("{}", ReserveError::Corrupted), corrupted);
    assert_eq!(std::format!("{}", PopError::Corrupted), corrupted);
    assert_eq!(ReserveError::from(Corrupted), ReserveError::Corrupted);
    assert_eq!(PopError::from(Corrupted), PopError::Corrupted);
    let mut ring = StaticRecordRing::<8>::new();
    let (mut tx, rx) = ring.split();
    assert_eq!(
        std::format!("{:?}", tx.reserve(5).unwrap()),
        "Grant { len: 5, .. }"
    );
    assert_eq!(
        std::format!("{tx:?} {rx:?}"),
        "Producer { head: 0, cached_tail: 0, .. } Consumer { tail: 0, .. }"
    );
}

#[test]
fn a_reserve_that_finds_the_ring_full_is_counted_in_shared_memory() {
    let mut ring = StaticRecordRing::<8>::new();
    let (mut tx, _rx) = ring.split();
    assert_eq!(tx.full_count(), 0);
    // 8 words: one of the largest records (24 bytes and a header word) and
    // one of 16 bytes fill it, with the word after them kept for the
    // marker.
    tx.push(&[7; 24]).unwrap();
    tx.push(&[7; 16]).unwrap();
    assert_eq!(tx.push(&[]), Err(ReserveError::Full));
    assert_eq!(
        tx.push(&[0; 99]).map_err(|_| ()),
        Err(()),
        "too large: not counted"
    );
    assert_eq!(tx.full_count(), 1);
    // The counter lives in the ring's memory: a new producer reads it, and so
    // do the consumer and the counters.
    let (tx, rx) = ring.split();
    assert_eq!(tx.full_count(), 1);
    let counters = rx.counters();
    assert_eq!((counters.full, counters.used_words()), (1, 7));
    assert_eq!(counters, tx.counters());
}
