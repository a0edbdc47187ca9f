//! Unit tests of the broadcast ring: joining, laps, wrapping positions, a
//! writer rewriting a slot mid-copy, sleeping readers, and a hostile writer;
//! `counted` has those of rings of elements over 56 bytes.

use std::vec::Vec;

use zerocopy::IntoBytes;

use super::*;
use crate::payload::test_hook;
use crate::spsc::Spsc;
use crate::test_support::Shared;
use crate::{FitError, Line};

/// Iterations of the randomised tests: few under Miri, which interprets each.
const ROUNDS: u32 = if cfg!(miri) { 200 } else { 20_000 };

fn memory<T: Pod>(capacity: u32) -> Vec<Line> {
    std::vec![Line::ZERO; Line::count_for(Broadcast::<T>::required_size(capacity).unwrap())]
}

/// Memory for a ring of `capacity` messages of `T`, and a stand-in for a peer
/// process.
fn shared<T: Pod>(capacity: u32) -> Shared {
    Shared::new(Broadcast::<T>::required_size(capacity).unwrap())
}

/// Byte offset of the stamp of `position` in a ring of `capacity` `T`s.
fn stamp_offset<T: Pod>(capacity: u32, position: u32) -> usize {
    let slot = STAMP + ElementLayout::of::<T>().stride as usize;
    SLOTS + (position & (capacity - 1)) as usize * slot
}

/// Receives until `Empty`, collecting messages and laps in order.
fn drain<T: Pod, K>(reader: &mut Reader<'_, T, K>) -> Vec<Result<T, RecvError>> {
    let mut got = Vec::new();
    loop {
        match reader.try_recv() {
            Err(RecvError::Empty) => return got,
            other => got.push(other),
        }
        assert!(got.len() <= 1000, "a receive loop that never empties");
    }
}

#[test]
fn every_reader_gets_every_message_in_order() {
    let mut mem = memory::<u64>(8);
    let ring = Broadcast::<u64>::create(Region::new(mem.as_mut_bytes()), 8).unwrap();
    assert_eq!(ring.capacity(), 8);
    let mut readers = [ring.reader(Start::Oldest), ring.reader(Start::Next)];
    let mut writer = ring.into_writer();
    let mut third = writer.reader(Start::Newest);
    writer.publish_slice(&[10, 11, 12]);
    writer.publish(&13);
    assert_eq!(writer.published(), 4);
    for reader in readers.iter_mut().chain([&mut third]) {
        assert_eq!(reader.pending(), 4);
        assert_eq!(drain(reader), [Ok(10), Ok(11), Ok(12), Ok(13)]);
        assert_eq!((reader.position(), reader.published()), (4, 4));
    }
}

#[test]
fn readers_join_at_the_oldest_the_newest_or_the_next_message() {
    let mut mem = memory::<u32>(8);
    let mut writer = Broadcast::<u32>::create(Region::new(mem.as_mut_bytes()), 8)
        .unwrap()
        .into_writer();
    // A fresh ring has no newest message: every start is message 0.
    for start in [Start::Oldest, Start::Newest, Start::Next] {
        assert_eq!(writer.reader(start).position(), 0, "{start:?}");
    }
    writer.publish_slice(&[0, 1, 2]);
    assert_eq!(
        drain(&mut writer.reader(Start::Oldest)),
        [Ok(0), Ok(1), Ok(2)]
    );
    assert_eq!(drain(&mut writer.reader(Start::Newest)), [Ok(2)]);
    let mut next = writer.reader(Start::Next);
    assert_eq!(next.try_recv(), Err(RecvError::Empty));
    writer.publish(&3);
    assert_eq!(next.try_recv(), Ok(3));
    // Once the ring has wrapped, the oldest whole message is 7 back.
    for n in 4..20 {
        writer.publish(&n);
    }
    let oldest: Vec<_> = (13..20).map(Ok).collect();
    assert_eq!(drain(&mut writer.reader(Start::Oldest)), oldest);
    assert_eq!(drain(&mut writer.reader(Start::Newest)), [Ok(19)]);
}

#[test]
fn a_lapped_reader_is_told_exactly_how_many_it_missed() {
    let mut mem = memory::<u32>(4);
    let mut writer = Broadcast::<u32>::create(Region::new(mem.as_mut_bytes()), 4)
        .unwrap()
        .into_writer();
    let mut oldest = writer.reader(Start::Oldest);
    let mut newest = writer.reader(Start::Oldest).on_lag(Start::Newest);
    let mut next = writer.reader(Start::Oldest).on_lag(Start::Next);
    writer.publish(&0);
    for reader in [&mut oldest, &mut newest, &mut next] {
        assert_eq!(reader.try_recv(), Ok(0));
    }
    for n in 1..11 {
        writer.publish(&n);
    }
    // 10 messages (1..=10) came; the ring keeps the last 3 whole.
    assert_eq!(
        drain(&mut oldest),
        [Err(RecvError::Lagged { missed: 7 }), Ok(8), Ok(9), Ok(10)]
    );
    assert_eq!(
        drain(&mut newest),
        [Err(RecvError::Lagged { missed: 9 }), Ok(10)]
    );
    assert_eq!(drain(&mut next), [Err(RecvError::Lagged { missed: 10 })]);
    // A reader exactly a capacity behind, with the writer not mid-write,
    // still finds every slot whole.
    let mut behind = writer.reader(Start::Next);
    for n in 11..15 {
        writer.publish(&n);
    }
    assert_eq!(behind.pending(), 4);
    assert_eq!(drain(&mut behind), (11..15).map(Ok).collect::<Vec<_>>());
}

#[test]
fn positions_wrap_around_u32() {
    let shared = shared::<u64>(8);
    Broadcast::<u64>::create(shared.region(), 8).unwrap();
    // A writer restarting at 2^32 - 10 messages: value `n` goes to position
    // `2^32 - 10 + n`.
    shared.poke(PUBLISHED, u32::MAX - 9);
    let mut writer = Broadcast::<u64>::attach(shared.region())
        .unwrap()
        .into_writer();
    assert_eq!(writer.published(), u32::MAX - 9);
    let mut readers = [
        writer.reader(Start::Next),
        writer.reader(Start::Next).on_lag(Start::Newest),
    ];
    for batch in [0..5, 5..10] {
        for n in batch.clone() {
            writer.publish(&n);
        }
        for reader in &mut readers {
            assert_eq!(drain(reader), batch.clone().map(Ok).collect::<Vec<_>>());
        }
    }
    // Exactly 2^32 published: the newest is message `u32::MAX`, the oldest
    // whole one 7 before it.
    assert_eq!(writer.published(), 0);
    let mut newest = writer.reader(Start::Newest);
    assert_eq!(newest.position(), u32::MAX);
    assert_eq!(drain(&mut newest), [Ok(9)]);
    let mut oldest = writer.reader(Start::Oldest);
    assert_eq!(oldest.position(), 0u32.wrapping_sub(7));
    assert_eq!(drain(&mut oldest), (3..10).map(Ok).collect::<Vec<_>>());
    // Laps across the wrap are counted exactly.
    for n in 10..24 {
        writer.publish(&n);
    }
    let [on_oldest, on_newest] = &mut readers;
    assert_eq!(
        drain(on_newest),
        [Err(RecvError::Lagged { missed: 13 }), Ok(23)]
    );
    let mut expected = std::vec![Err(RecvError::Lagged { missed: 7 })];
    expected.extend((17..24).map(Ok));
    assert_eq!(drain(on_oldest), expected);
}

#[test]
fn a_restarted_writer_continues_after_the_last_message() {
    let shared = shared::<u64>(4);
    let ring = Broadcast::<u64>::create(shared.region(), 4).unwrap();
    let mut reader = ring.reader(Start::Oldest);
    {
        let mut first = ring.into_writer();
        first.publish_slice(&[1, 2]);
    }
    // The first writer died writing message 2: its slot's stamp stays busy.
    shared.poke(stamp_offset::<u64>(4, 2), !3);
    assert_eq!(drain(&mut reader), [Ok(1), Ok(2)]);
    let mut second = Broadcast::<u64>::attach(shared.region())
        .unwrap()
        .into_writer();
    assert_eq!(second.published(), 2);
    second.publish(&3);
    assert_eq!(drain(&mut reader), [Ok(3)]);
}

#[test]
fn a_restarted_writer_publishes_the_message_its_predecessor_finished() {
    let shared = shared::<u64>(4);
    let ring = Broadcast::<u64>::create(shared.region(), 4).unwrap();
    let (mut early, mut late) = (ring.reader(Start::Oldest), ring.reader(Start::Oldest));
    {
        let mut first = ring.into_writer();
        first.publish_slice(&[1, 2, 3]);
    }
    // The first writer died after writing message 2 whole, before publishing
    // it. A reader following stamps receives it all the same.
    shared.poke(PUBLISHED, 2);
    assert_eq!(drain(&mut early), [Ok(1), Ok(2), Ok(3)]);
    let mut second = Broadcast::<u64>::attach(shared.region())
        .unwrap()
        .into_writer();
    assert_eq!(second.published(), 3, "the finished message is published");
    assert_eq!(shared.peek(PUBLISHED), 3);
    // Not written again at position 2, where `early` would miss it.
    second.publish(&4);
    assert_eq!(drain(&mut early), [Ok(4)]);
    assert_eq!(drain(&mut late), [Ok(1), Ok(2), Ok(3), Ok(4)]);
}

#[test]
fn a_message_rewritten_mid_copy_is_never_returned_torn() {
    let mut mem = memory::<[u64; 2]>(2);
    let mut writer = Broadcast::<[u64; 2]>::create(Region::new(mem.as_mut_bytes()), 2)
        .unwrap()
        .into_writer();
    let mut reader = writer.reader(Start::Oldest);
    writer.publish(&[0, 0]);
    // Between the two words of the reader's copy, the writer laps it: message
    // 2 overwrites the slot of message 0. Without the re-check of the stamp
    // after the copy, `[0, 2]` would come back.
    let mut pending = Some(writer);
    let got = test_hook::with(
        || {
            // Once: the writer is dropped after.
            if let Some(mut writer) = pending.take() {
                writer.publish(&[1, 1]);
                writer.publish(&[2, 2]);
            }
        },
        || reader.try_recv(),
    );
    assert_eq!(got, Err(RecvError::Lagged { missed: 2 }));
    assert_eq!(drain(&mut reader), [Ok([2, 2])]);
}

#[test]
fn a_reader_one_ahead_of_published_finds_nothing_new() {
    // The writer stores a message's stamp before `published`: a reader that
    // received the message through its stamp may still load the old
    // `published`, one behind its position (loom finds the interleaving;
    // here the peer stores it back by hand).
    let shared = shared::<u64>(4);
    let mut writer = Broadcast::<u64>::create(shared.region(), 4)
        .unwrap()
        .into_writer();
    let mut reader = writer.reader(Start::Next);
    writer.publish(&7);
    assert_eq!(reader.try_recv(), Ok(7));
    shared.poke(PUBLISHED, 0);
    assert_eq!(reader.try_recv(), Err(RecvError::Empty));
    assert_eq!(reader.position(), 1);
}

#[test]
fn a_writer_breaking_the_protocol_is_reported_corrupted() {
    let shared = shared::<u64>(4);
    let mut writer = Broadcast::<u64>::create(shared.region(), 4)
        .unwrap()
        .into_writer();
    writer.publish_slice(&[1, 2, 3]);
    // `published` behind the reader: resume there.
    let mut ahead = writer.reader(Start::Next);
    shared.poke(PUBLISHED, 1);
    assert_eq!(ahead.try_recv(), Err(RecvError::Corrupted));
    assert_eq!(ahead.position(), 1);
    shared.poke(PUBLISHED, 3);
    // Message 1 published (and not being rewritten) but its stamp is no
    // stamp of it: two looks, then resume after the newest.
    let mut reader = writer.reader(Start::Oldest);
    shared.poke(stamp_offset::<u64>(4, 1), 7);
    assert_eq!(reader.try_recv(), Ok(1));
    assert_eq!(reader.try_recv(), Err(RecvError::Corrupted));
    assert_eq!(reader.position(), 3);
    // A whole stamp on a slot never written: its bytes are the message.
    shared.poke(stamp_offset::<u64>(4, 3), 4);
    shared.poke(PUBLISHED, 4);
    assert_eq!(reader.try_recv(), Ok(0));
    // A lap claimed from afar is counted, below 2^31; further is corrupt.
    shared.poke(PUBLISHED, 4 + (1 << 31));
    assert_eq!(
        reader.try_recv(),
        Err(RecvError::Lagged {
            missed: (1 << 31) - 3
        })
    );
    shared.poke(PUBLISHED, reader.position().wrapping_add((1 << 31) + 1));
    assert_eq!(reader.try_recv(), Err(RecvError::Corrupted));
}

#[test]
fn garbage_in_every_shared_word_never_panics_or_loops() {
    let shared = shared::<[u32; 3]>(4);
    let mut writer = Broadcast::<[u32; 3]>::create(shared.region(), 4)
        .unwrap()
        .into_writer();
    let mut readers = [
        writer.reader(Start::Oldest),
        writer.reader(Start::Newest).on_lag(Start::Newest),
    ];
    let mut state = 0x2545_f491_u32;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        state
    };
    for _ in 0..ROUNDS {
        let word = next();
        // The words the crate reads as `u32`s: `published`, the doorbell,
        // the stamps. (The writer's messages are garbage enough: a stamp
        // set from here makes any of them, or a zeroed slot, "whole".)
        let offset = match word % 4 {
            0 => PUBLISHED,
            1 => DOORBELL + 4 * (next() as usize % 2),
            _ => stamp_offset::<[u32; 3]>(4, next()),
        };
        let value = match next() % 3 {
            0 => word,
            1 => readers[0].position().wrapping_add(next() % 9),
            _ => !readers[1].position(),
        };
        shared.poke(offset, value);
        writer.publish(&[word; 3]);
        for reader in &mut readers {
            match reader.try_recv() {
                Ok(_) | Err(RecvError::Empty | RecvError::Corrupted) => {}
                Err(RecvError::Lagged { missed }) => {
                    assert!((1..=1 << 31).contains(&missed), "missed {missed}");
                }
            }
            assert!(reader.capacity() == 4);
        }
        let _ = writer.wake_needed();
    }
}

#[test]
fn a_reader_that_sleeps_announces_and_one_wake_serves_every_sleeper() {
    let mut mem = memory::<u64>(4);
    let mut writer = Broadcast::<u64>::create(Region::new(mem.as_mut_bytes()), 4)
        .unwrap()
        .into_writer();
    let mut a = writer.reader(Start::Next);
    let mut b = writer.reader(Start::Next);
    assert!(!writer.wake_needed(), "nobody announced");
    // Both sleep (and give up); each slept on epoch 0.
    for reader in [&mut a, &mut b] {
        let mut epochs = Vec::new();
        let got = reader.recv_or_sleep(2, |event, epoch| {
            assert_eq!(event.epoch(), epoch, "asked to sleep on a stale epoch");
            epochs.push(epoch);
            Err("timed out")
        });
        assert_eq!(got, Err(BlockingError::Sleep("timed out")));
        assert_eq!(epochs, [0]);
    }
    writer.publish(&1);
    assert!(writer.wake_needed(), "announced readers are woken");
    assert!(!writer.wake_needed(), "one wake for all of them");
    assert_eq!((writer.doorbell().epoch(), a.wakes()), (1, 1));
    // The epoch both slept on has moved: a futex wait on it returns at once.
    assert_eq!((a.try_recv(), b.try_recv()), (Ok(1), Ok(1)));
}

#[test]
fn recv_or_sleep_takes_what_is_there_and_never_withdraws() {
    let mut mem = memory::<u64>(4);
    let mut writer = Broadcast::<u64>::create(Region::new(mem.as_mut_bytes()), 4)
        .unwrap()
        .into_writer();
    let mut reader = writer.reader(Start::Next);
    writer.publish(&1);
    let got = reader.recv_or_sleep(0, |_, _| -> Result<(), ()> { panic!("slept") });
    assert_eq!(got, Ok(1));
    assert!(!writer.wake_needed(), "no announcement for a message there");
    // A message arrives while the reader sleeps: it wakes up and takes it,
    // leaving its announcement (another reader's may be the same word).
    let mut sleeps = 0;
    let got = reader.recv_or_sleep(0, |_, _| -> Result<(), ()> {
        sleeps += 1;
        writer.publish(&2);
        Ok(())
    });
    assert_eq!((got, sleeps), (Ok(2), 1));
    assert!(
        writer.wake_needed(),
        "the announcement stays: one spurious wake"
    );
    // A lap while waiting is reported as such.
    let got = reader.recv_or_sleep(0, |_, _| -> Result<(), ()> {
        for n in 3..10 {
            writer.publish(&n);
        }
        Ok(())
    });
    assert_eq!(got, Err(BlockingError::Lagged { missed: 4 }));
}

#[test]
fn a_reader_on_read_only_memory_polls_and_cannot_sleep() {
    let shared = shared::<u64>(4);
    let mut writer = Broadcast::<u64>::create(shared.region(), 4)
        .unwrap()
        .into_writer();
    writer.publish_slice(&[1, 2]);
    let mut reader = Broadcast::<u64>::attach_reader(shared.region().into(), Start::Newest)
        .unwrap()
        .on_lag(Start::Newest);
    assert!(!reader.may_sleep() && writer.reader(Start::Next).may_sleep());
    assert_eq!(reader.try_recv(), Ok(2));
    writer.publish(&3);
    let got = reader.recv_or_sleep(0, |_, _| -> Result<(), ()> { panic!("slept") });
    assert_eq!(got, Err(BlockingError::ReadOnly));
    assert_eq!(reader.clone().try_recv(), Ok(3));
    assert_eq!((reader.published(), reader.wakes()), (3, 0));
}

#[test]
fn a_peer_writing_every_padding_byte_disturbs_nothing() {
    // Run under Miri with Stacked and Tree Borrows (`.ci/run`): a reference
    // over any of these bytes while the peer writes them would be reported.
    let shared = shared::<[u64; 2]>(4);
    let mut writer = Broadcast::<[u64; 2]>::create(shared.region(), 4)
        .unwrap()
        .into_writer();
    let mut reader = writer.reader(Start::Oldest);
    // 132..136 is `intent`, unused with stamped slots.
    let mut padding = std::vec![36..128, 132..256, 264..384];
    for position in 0..4 {
        let unused = stamp_offset::<[u64; 2]>(4, position) + 4;
        padding.push(unused..unused + 4);
    }
    std::thread::scope(|s| {
        s.spawn(|| shared.scribble(&padding, 20));
        for i in 0..200 {
            writer.publish(&[i, !i]);
            assert!(!writer.wake_needed());
            assert_eq!(reader.try_recv(), Ok([i, !i]));
        }
    });
    assert_eq!(reader.try_recv(), Err(RecvError::Empty));
}

#[test]
fn a_broadcast_of_ticks_and_a_seqlock_per_instrument_share_one_region() {
    use crate::parts::Plan;
    use crate::seqlock::{SeqLock, Spins};

    type Quote = [u64; 2];
    let mut plan = Plan::<3>::new();
    for _ in 0..2 {
        plan.add(Kind::SeqLock, SeqLock::<Quote>::required_size().unwrap())
            .unwrap();
    }
    plan.add(Kind::Broadcast, Broadcast::<u64>::required_size(8).unwrap())
        .unwrap();
    let shared = Shared::new(plan.size().unwrap());
    let mut parts = plan.create(shared.region()).unwrap();
    let mut quotes: Vec<_> = (0..2)
        .map(|_| {
            SeqLock::<Quote>::create(parts.next().unwrap())
                .unwrap()
                .into_writer()
        })
        .collect();
    let mut ticks = Broadcast::<u64>::create(parts.next().unwrap(), 8)
        .unwrap()
        .into_writer();
    // A reader process maps the same memory read-only and checks the plan.
    let mut read = plan.attach_read(shared.region().into()).unwrap();
    let quote = SeqLock::<Quote>::attach_reader(read.next().unwrap()).unwrap();
    let _other = read.next().unwrap();
    let mut tick = Broadcast::<u64>::attach_reader(read.next().unwrap(), Start::Oldest).unwrap();
    quotes[0].write(&[100, 101]);
    quotes[1].write(&[200, 201]);
    ticks.publish_slice(&[1, 2]);
    assert_eq!(quote.read_with(Spins(1)), Ok([100, 101]));
    assert_eq!(drain(&mut tick), [Ok(1), Ok(2)]);
}

#[test]
fn the_layout_is_the_documented_one() {
    let mut mem = memory::<[u8; 12]>(4);
    {
        let mut writer = Broadcast::<[u8; 12]>::create(Region::new(mem.as_mut_bytes()), 4)
            .unwrap()
            .into_writer();
        writer.publish_slice(&[[1; 12], [2; 12], [3; 12], [4; 12], [5; 12]]);
    }
    let bytes = mem.as_bytes();
    let u32_at = |at: usize| u32::from_ne_bytes(bytes[at..at + 4].try_into().unwrap());
    assert_eq!(u32_at(8), Kind::Broadcast as u32);
    assert_eq!((u32_at(12), u32_at(16), u32_at(20)), (12, 16, 4));
    assert_eq!(u32_at(128), 5, "published");
    assert_eq!((u32_at(256), u32_at(260)), (0, 0), "doorbell");
    // Slots of 8 + 16 bytes: message 4 in slot 0, messages 1..=3 in 1..=3.
    for (slot, message) in [(0, 4_u8), (1, 1), (2, 2), (3, 3)] {
        let at = 384 + slot * 24;
        assert_eq!(u32_at(at), u32::from(message) + 1, "stamp of slot {slot}");
        assert_eq!(bytes[at + 8..at + 20], [message + 1; 12]);
        assert_eq!(bytes[at + 20..at + 24], [0; 4], "the stride's tail");
    }
}

#[test]
fn create_checks_capacity_alignment_and_size() {
    let mut mem = memory::<u64>(8);
    let bytes = mem.as_mut_bytes();
    for capacity in [0, 1, 3, 6, MAX_CAPACITY * 2, u32::MAX] {
        assert_eq!(
            Broadcast::<u64>::create(Region::new(bytes), capacity).map(|_| ()),
            Err(CreateError::InvalidCapacity { capacity })
        );
    }
    assert_eq!(
        Broadcast::<u64>::create(Region::new(&mut bytes[8..]), 4).map(|_| ()),
        Err(CreateError::Fit(FitError::Misaligned { required: 128 }))
    );
    assert_eq!(
        Broadcast::<u64>::create(Region::new(bytes), MAX_CAPACITY).map(|_| ()),
        Err(CreateError::Fit(FitError::TooSmall {
            needed: 384 + (1 << 30) * 16,
            actual: 512
        }))
    );
    assert!(Broadcast::<u64>::create(Region::new(bytes), MIN_CAPACITY).is_ok());
}

#[test]
fn attach_checks_the_header() {
    let shared = shared::<u64>(4);
    Broadcast::<u64>::create(shared.region(), 4).unwrap();
    assert_eq!(
        Broadcast::<u32>::attach(shared.region()).map(|_| ()),
        Err(AttachError::WrongElement {
            expected: ElementLayout::of::<u32>(),
            found: ElementLayout::of::<u64>(),
        })
    );
    assert_eq!(
        Spsc::<u64>::attach(shared.region()).map(|_| ()),
        Err(AttachError::WrongKind {
            expected: Kind::Spsc,
            found: Kind::Broadcast as u32,
        })
    );
    let ring = Broadcast::<u64>::attach(shared.region()).unwrap();
    assert_eq!(std::format!("{ring:?}"), "Broadcast { capacity: 4, .. }");
    // A capacity no creator writes: odd, or below the minimum.
    for capacity in [1, 3] {
        shared.poke(20, capacity);
        assert_eq!(
            Broadcast::<u64>::attach_reader(shared.region().into(), Start::Next).map(|_| ()),
            Err(AttachError::InvalidCapacity { found: capacity })
        );
    }
}

#[test]
fn errors_say_what_is_wrong() {
    assert_eq!(
        std::format!("{}", RecvError::Empty),
        "no new message in the broadcast ring"
    );
    assert_eq!(
        std::format!("{}", RecvError::Lagged { missed: 7 }),
        "lapped by the writer: 7 messages lost"
    );
    assert_eq!(
        std::format!("{}", RecvError::Corrupted),
        std::format!("{Corrupted}")
    );
    assert_eq!(
        std::format!("{}", BlockingError::<&str>::Lagged { missed: 2 }),
        "lapped by the writer: 2 messages lost"
    );
    assert_eq!(
        std::format!("{}", BlockingError::<&str>::ReadOnly),
        "a reader on a read-only mapping cannot sleep: it can only poll"
    );
    assert_eq!(
        std::format!("{}", BlockingError::Sleep("timed out")),
        "timed out"
    );
    assert_eq!(
        std::format!("{}", BlockingError::<&str>::Corrupted),
        std::format!("{Corrupted}")
    );
    let mut mem = memory::<u64>(2);
    let writer = Broadcast::<u64>::create(Region::new(mem.as_mut_bytes()), 2)
        .unwrap()
        .into_writer();
    let reader = writer.reader(Start::Next).on_lag(Start::Newest);
    assert_eq!(
        std::format!("{writer:?} {reader:?}"),
        "Writer { position: 0, .. } Reader { cursor: 0, on_lag: Newest, may_sleep: true, .. }"
    );
    assert_eq!((writer.keeper(), reader.keeper()), (&(), &()));
}

mod counted;
