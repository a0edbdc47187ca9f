//! Unit tests of the seqlock, including a writer stopped or dead mid-write and
//! writes landing in the middle of a copy.

use std::vec::Vec;

use zerocopy::IntoBytes;

use super::*;
use crate::Line;
use crate::payload::test_hook;
use crate::test_support::Shared;

type Value = [u64; 3];

fn memory() -> Vec<Line> {
    std::vec![Line::ZERO; Line::count_for(SeqLock::<Value>::required_size().unwrap())]
}

/// A fresh seqlock in `shared`, with its raw sequence word, for tests that
/// play the writer by hand.
fn fresh(shared: &Shared) -> (SeqLock<'_, Value>, &crate::sync::Word) {
    let lock = SeqLock::<Value>::create(shared.region()).unwrap();
    let seq = lock.lock.seq;
    (lock, seq)
}

const SIZE: usize = 256 + 24;

#[test]
fn reads_the_latest_write_and_counts_versions() {
    let mut lock = StaticSeqLock::<Value>::new();
    let (mut writer, reader) = lock.split();
    assert_eq!(reader.read_versioned(Spins(1)), Ok(([0; 3], 0)));
    writer.write(&[1, 2, 3]);
    writer.write(&[4, 5, 6]);
    assert_eq!(reader.read_versioned(Spins(1)), Ok(([4, 5, 6], 2)));
    assert_eq!((reader.version(), writer.version()), (2, 2));
    assert_eq!(reader.read(), Ok([4, 5, 6]));
}

#[test]
fn a_writer_stopped_mid_write_is_reported_stalled_not_contended() {
    let shared = Shared::new(SIZE);
    let (lock, seq) = fresh(&shared);
    let reader = lock.reader();
    seq.store(7, Ordering::Release);
    assert_eq!(reader.try_read(), Err(ReadError::WriterStalled));
    assert_eq!(reader.read_with(Spins(1)), Err(ReadError::WriterStalled));
    let budget = Budget::new(core::time::Duration::from_millis(5));
    assert_eq!(reader.read_with(budget), Err(ReadError::WriterStalled));
    // A restarted writer continues from the next even sequence.
    let mut writer = lock.into_writer();
    writer.write(&[9; 3]);
    assert_eq!(reader.read_versioned(Spins(1)), Ok(([9; 3], 5)));
}

#[test]
fn a_patience_that_knows_the_writer_died_reports_it_gone() {
    let shared = Shared::new(SIZE);
    let (lock, seq) = fresh(&shared);
    seq.store(3, Ordering::Release);
    let reader = lock.reader();
    let mut asked = 0;
    let gone = |attempts| {
        asked = attempts;
        Retry::WriterGone
    };
    assert_eq!(reader.read_with(gone), Err(ReadError::WriterGone));
    assert_eq!(asked, 1);
    let mut alive = true;
    let watched = Budget::new(core::time::Duration::from_secs(60))
        .watching(move || core::mem::replace(&mut alive, false));
    assert_eq!(reader.read_with(watched), Err(ReadError::WriterGone));
}

#[test]
fn a_sequence_moving_between_odd_values_is_contended_not_stalled() {
    let shared = Shared::new(SIZE);
    let (lock, seq) = fresh(&shared);
    let reader = lock.reader();
    // A writer that keeps starting writes: a new odd value before every attempt.
    let moving = |attempts: u32| {
        seq.store(Version::from(attempts) * 2 + 1, Ordering::Release);
        if attempts < 10 {
            Retry::Again
        } else {
            Retry::GiveUp
        }
    };
    seq.store(1, Ordering::Release);
    assert_eq!(reader.read_with(moving), Err(ReadError::Contended));
}

#[test]
fn a_write_landing_mid_copy_is_never_returned_torn() {
    let shared = Shared::new(SIZE);
    let (lock, _) = fresh(&shared);
    let reader = lock.reader();
    let mut writer = lock.into_writer();
    writer.write(&[1, 1, 1]);
    // The writer writes once more while the reader is between words of its
    // first copy: without the re-check after the copy, [1, 2, 2] would come back.
    let mut pending = Some(writer);
    let result = test_hook::with(
        move || {
            if let Some(mut writer) = pending.take() {
                writer.write(&[2, 2, 2]);
            }
        },
        || reader.read_versioned(Spins(2)),
    );
    assert_eq!(result, Ok(([2, 2, 2], 2)));
}

#[test]
fn writes_landing_in_every_copy_are_contended() {
    let shared = Shared::new(SIZE);
    let (lock, seq) = fresh(&shared);
    let reader = lock.reader();
    let mut writer = lock.into_writer();
    let mut n = 0;
    let result = test_hook::with(
        move || {
            n += 1;
            writer.write(&[n; 3]);
        },
        || reader.read_with(Spins(16)),
    );
    assert_eq!(result, Err(ReadError::Contended));
    assert!(seq.load(Ordering::Relaxed) >= 2 * 16);
}

#[test]
fn static_lock_hands_out_one_writer_and_any_number_of_readers() {
    static LOCK: StaticSeqLock<u32> = StaticSeqLock::new();
    let reader = LOCK.reader();
    assert_eq!(reader.try_read(), Ok(0));
    let mut writer = LOCK.take_writer().expect("first take");
    assert!(LOCK.take_writer().is_none(), "a second writer");
    let copy = LOCK.reader();
    writer.write(&41);
    writer.write(&42);
    assert_eq!((reader.try_read(), copy.try_read()), (Ok(42), Ok(42)));
    assert_eq!(reader.version(), 2);
}

#[test]
fn create_and_attach_check_the_region() {
    let mut mem = memory();
    let needed = 256 + 24;
    assert_eq!(
        SeqLock::<Value>::create(Region::new(&mut mem.as_mut_bytes()[..200])).map(|_| ()),
        Err(CreateError::Fit(crate::FitError::TooSmall {
            needed,
            actual: 200
        }))
    );
    SeqLock::<Value>::create(Region::new(mem.as_mut_bytes())).unwrap();
    mem.as_mut_bytes()[20..24].copy_from_slice(&2u32.to_ne_bytes());
    assert_eq!(
        SeqLock::<Value>::attach(Region::new(mem.as_mut_bytes())).map(|_| ()),
        Err(AttachError::InvalidCapacity { found: 2 })
    );
}

#[test]
fn every_width_and_byte_order_reads_the_low_half_of_the_sequence() {
    let field_offset = |width, big| seq_word(width, big) - SEQ;
    for sequence in [0u64, 1, 0x1_0000_0003, u64::MAX] {
        let low = sequence as u32;
        // A 64-bit writer of each byte order lays the field out like this; a
        // 32-bit reader of the same byte order reads its 4-byte word.
        let little = sequence.to_le_bytes();
        let at = field_offset(4, false);
        assert_eq!(
            u32::from_le_bytes(little[at..at + 4].try_into().unwrap()),
            low
        );
        let big = sequence.to_be_bytes();
        let at = field_offset(4, true);
        assert_eq!(u32::from_be_bytes(big[at..at + 4].try_into().unwrap()), low);
        // 64-bit readers read the whole field.
        assert_eq!((field_offset(8, false), field_offset(8, true)), (0, 0));
    }
}

#[test]
fn a_peer_writing_every_padding_byte_disturbs_nothing() {
    // Run under Miri with Stacked and Tree Borrows (`.ci/run`). The writer
    // and a reader are moved into a thread after the peer's first writes
    // (see the ring's test of the same name).
    let shared = Shared::new(SIZE);
    let lock = SeqLock::<Value>::create(shared.region()).unwrap();
    let reader = lock.reader();
    let mut writer = lock.into_writer();
    let padding = [36..128, SEQ + 8..DATA];
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
        s.spawn(move || {
            for i in 1..=200 {
                writer.write(&[i, i, i]);
                assert_eq!(reader.try_read(), Ok([i, i, i]));
            }
        });
    });
    assert_eq!(reader.read_versioned(Spins(1)), Ok(([200; 3], 200)));
}

#[test]
fn handles_and_errors_print_what_they_are() {
    let mut stat = StaticSeqLock::<Value>::new();
    assert_eq!(std::format!("{stat:?}"), "StaticSeqLock { .. }");
    let (mut writer, reader) = stat.split();
    writer.write(&[1, 2, 3]);
    assert_eq!(std::format!("{writer:?}"), "Writer { seq: 2, .. }");
    assert_eq!(std::format!("{reader:?}"), "Reader { .. }");
    let shared = Shared::new(SIZE);
    let lock = SeqLock::<Value>::create(shared.region()).unwrap();
    assert_eq!(std::format!("{lock:?}"), "SeqLock { .. }");
    assert_eq!(
        std::format!("{}", ReadError::WriterStalled),
        "seqlock writer stayed stopped mid-write while the reader waited"
    );
    assert_eq!(
        std::format!("{}", ReadError::WriterGone),
        "seqlock writer died mid-write"
    );
    assert_eq!(
        std::format!("{}", ReadError::Contended),
        "seqlock value changed during every read attempt"
    );
}

#[test]
fn spins_allow_exactly_their_number_of_attempts() {
    let mut spins = Spins(3);
    let answers: Vec<_> = (1..=3).map(|attempts| spins.again(attempts)).collect();
    assert_eq!(answers, [Retry::Again, Retry::Again, Retry::GiveUp]);
    assert_eq!(Spins(0).again(1), Retry::GiveUp);
}

#[test]
fn a_budget_spins_first_then_asks_liveness_and_the_clock() {
    let asked = core::cell::Cell::new(0);
    let alive = || {
        asked.set(asked.get() + 1);
        true
    };
    // Spinning: neither the clock nor the writer's liveness is asked.
    let mut budget = Budget::new(core::time::Duration::ZERO).watching(alive);
    for attempts in 1..Budget::SPINS {
        assert_eq!(budget.again(attempts), Retry::Again);
    }
    assert_eq!(asked.get(), 0);
    // Then a spent budget gives up at its first look at the clock, after
    // asking once whether the writer lives.
    assert_eq!(budget.again(Budget::SPINS), Retry::GiveUp);
    assert_eq!(asked.get(), 1);
    // A budget with time left tries again.
    let mut budget = Budget::new(core::time::Duration::from_secs(3600));
    for attempts in 1..=Budget::SPINS + 10 {
        assert_eq!(budget.again(attempts), Retry::Again);
    }
}

#[test]
fn a_budget_asks_liveness_at_most_once_per_check_interval() {
    // However fast or slow the calls come, the asks are at least
    // `CHECK_EVERY` apart, so there are at most elapsed / CHECK_EVERY + 1.
    let asked = core::cell::Cell::new(0u32);
    let mut budget = Budget::new(core::time::Duration::from_secs(3600)).watching(|| {
        asked.set(asked.get() + 1);
        true
    });
    let start = std::time::Instant::now();
    for attempts in 1..Budget::SPINS + 200 {
        assert_eq!(budget.again(attempts), Retry::Again);
    }
    let elapsed = start.elapsed();
    let bound = elapsed.as_nanos() / Budget::CHECK_EVERY.as_nanos() + 1;
    assert!(
        asked.get() >= 1,
        "liveness is asked once the spins are over"
    );
    assert!(
        u128::from(asked.get()) <= bound,
        "asked {} times in {elapsed:?}",
        asked.get()
    );
}

#[test]
fn re_creating_a_used_lock_resets_value_and_version() {
    let shared = Shared::new(SIZE);
    let lock = SeqLock::<Value>::create(shared.region()).unwrap();
    let mut writer = lock.into_writer();
    writer.write(&[1, 2, 3]);
    let lock = SeqLock::<Value>::create(shared.region()).unwrap();
    assert_eq!(lock.reader().read_versioned(Spins(1)), Ok(([0; 3], 0)));
}
