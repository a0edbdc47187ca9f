//! Rings of elements over 56 bytes: counted slots, validated against the
//! writer's `intent` (see [Protocol](super::super#protocol)), and
//! [`Reader::recv_slice`] in both protocols.

use super::*;

/// 64 bytes: the smallest element whose slots are counted.
type Wide = [u64; 8];

/// Message `n`: every word `n`, so a torn copy (two messages mixed) shows.
fn wide(n: u64) -> Wide {
    [n; 8]
}

/// Receives through `recv_slice` in batches of up to `batch` until `Empty`,
/// collecting messages and laps in order.
fn drain_slices<T: Pod + Copy, K>(
    reader: &mut Reader<'_, T, K>,
    batch: usize,
) -> Vec<Result<T, RecvError>> {
    let mut out: Vec<T> = (0..batch).map(|_| T::new_zeroed()).collect();
    let mut got = Vec::new();
    loop {
        match reader.recv_slice(&mut out) {
            Ok(count) => {
                assert!((1..=batch).contains(&count), "{count} of {batch}");
                got.extend(out[..count].iter().map(|value| Ok(*value)));
            }
            Err(RecvError::Empty) => return got,
            Err(err) => got.push(Err(err)),
        }
        assert!(got.len() <= 1000, "a receive loop that never empties");
    }
}

/// `Ok(wide(n))` for each `n`.
fn wides(range: core::ops::Range<u64>) -> Vec<Result<Wide, RecvError>> {
    range.map(|n| Ok(wide(n))).collect()
}

#[test]
fn counted_slots_hold_the_message_alone_and_intent_runs_ahead() {
    assert_eq!(
        Broadcast::<[u8; 57]>::required_size(4),
        Some(SLOTS + 4 * 64)
    );
    assert_eq!(
        Broadcast::<[u8; 56]>::required_size(4),
        Some(SLOTS + 4 * 64)
    );
    let mut mem = memory::<[u8; 61]>(4);
    {
        let mut writer = Broadcast::<[u8; 61]>::create(Region::new(mem.as_mut_bytes()), 4)
            .unwrap()
            .into_writer();
        // Capacity 4: the writer announces 2 messages at a time.
        assert_eq!((writer.capacity(), writer.retained()), (4, 2));
        for n in 1..=5 {
            writer.publish(&[n; 61]);
        }
    }
    let bytes = mem.as_bytes();
    let u32_at = |at: usize| u32::from_ne_bytes(bytes[at..at + 4].try_into().unwrap());
    assert_eq!((u32_at(12), u32_at(16), u32_at(20)), (61, 64, 4));
    assert_eq!(u32_at(128), 5, "published");
    // Announced at messages 0, 2 and 4, two each.
    assert_eq!(u32_at(132), 6, "intent");
    assert!(bytes[136..384].iter().all(|&b| b == 0), "unused, doorbell");
    // Slots of 64 bytes, no stamp: message 4 in slot 0, 1..=3 in 1..=3.
    for (slot, message) in [(0, 5_u8), (1, 2), (2, 3), (3, 4)] {
        let at = 384 + slot * 64;
        assert_eq!(bytes[at..at + 61], [message; 61], "slot {slot}");
        assert_eq!(bytes[at + 61..at + 64], [0; 3], "the stride's tail");
    }
}

#[test]
fn every_reader_gets_every_message_by_one_or_by_batch() {
    let mut mem = memory::<Wide>(8);
    let ring = Broadcast::<Wide>::create(Region::new(mem.as_mut_bytes()), 8).unwrap();
    assert_eq!((ring.capacity(), ring.retained()), (8, 4));
    let mut writer = ring.into_writer();
    let mut one = writer.reader(Start::Oldest);
    let mut threes = writer.reader(Start::Oldest);
    let mut eights = writer.reader(Start::Oldest);
    assert_eq!(one.retained(), 4);
    let mut sent = 0;
    // 25 laps, published in runs of 1 to 4 (never more than `retained`
    // ahead of the readers).
    for run in (0..100).map(|i| 1 + i % 4) {
        for n in sent..sent + run {
            writer.publish(&wide(n));
        }
        let expected = wides(sent..sent + run);
        assert_eq!(drain(&mut one), expected);
        assert_eq!(drain_slices(&mut threes, 3), expected);
        assert_eq!(drain_slices(&mut eights, 8), expected);
        sent += run;
    }
    assert_eq!(eights.recv_slice(&mut []), Ok(0));
}

#[test]
fn a_reader_retained_behind_is_never_lapped_and_a_lap_is_counted_exactly() {
    let mut mem = memory::<Wide>(8);
    let mut writer = Broadcast::<Wide>::create(Region::new(mem.as_mut_bytes()), 8)
        .unwrap()
        .into_writer();
    let mut readers = [
        writer.reader(Start::Next),
        writer.reader(Start::Next).on_lag(Start::Newest),
    ];
    for n in 0..4 {
        writer.publish(&wide(n));
    }
    for reader in &mut readers {
        assert_eq!(drain(reader), wides(0..4));
    }
    // Message 12 announced 12..16, so slots of 4..8 may be rewritten: the
    // oldest whole is 8, and `on_lag(Newest)` skips to 12.
    for n in 4..13 {
        writer.publish(&wide(n));
    }
    let [oldest, newest] = &mut readers;
    let mut expected = std::vec![Err(RecvError::Lagged { missed: 4 })];
    expected.extend(wides(8..13));
    assert_eq!(drain_slices(oldest, 2), expected);
    assert_eq!(
        drain(newest),
        [Err(RecvError::Lagged { missed: 8 }), Ok(wide(12))]
    );
}

#[test]
fn intent_shows_a_lap_that_a_cached_published_hides() {
    let shared = shared::<Wide>(8);
    let mut writer = Broadcast::<Wide>::create(shared.region(), 8)
        .unwrap()
        .into_writer();
    let mut reader = writer.reader(Start::Oldest);
    for n in 0..7 {
        writer.publish(&wide(n));
    }
    // The reader caches `published` = 7; `intent` = 8: message 0's slot is
    // not announced, so it is received.
    assert_eq!(reader.try_recv(), Ok(wide(0)));
    assert_eq!(reader.try_recv(), Ok(wide(1)));
    // Message 8 announces 8..12: the slots of 2 and 3 may be rewritten. The
    // reader, still counting on its cached 7, copies message 2, and `intent`
    // tells it the copy may be torn.
    writer.publish(&wide(7));
    writer.publish(&wide(8));
    assert_eq!(shared.peek(INTENT), 12);
    assert_eq!(reader.try_recv(), Err(RecvError::Lagged { missed: 2 }));
    assert_eq!(drain(&mut reader), wides(4..9));
}

#[test]
fn a_message_rewritten_mid_copy_is_dropped_by_one_or_by_batch() {
    for batch in [None, Some(1), Some(2)] {
        let mut mem = memory::<Wide>(2);
        let mut writer = Broadcast::<Wide>::create(Region::new(mem.as_mut_bytes()), 2)
            .unwrap()
            .into_writer();
        let mut reader = writer.reader(Start::Oldest);
        writer.publish(&wide(0));
        // Between two words of the reader's copy of message 0, the writer
        // laps it: message 2 overwrites its slot. `intent` (3) shows it.
        let mut pending = Some(writer);
        let got = test_hook::with(
            || {
                if let Some(mut writer) = pending.take() {
                    writer.publish(&wide(1));
                    writer.publish(&wide(2));
                }
            },
            || match batch {
                None => reader.try_recv().map(|_| 1),
                Some(len) => reader.recv_slice(&mut std::vec![wide(9); len]),
            },
        );
        assert_eq!(got, Err(RecvError::Lagged { missed: 2 }), "batch {batch:?}");
        assert_eq!(drain(&mut reader), [Ok(wide(2))]);
    }
}

#[test]
fn a_stamped_batch_returns_what_it_received_and_the_next_call_the_lap() {
    let mut mem = memory::<[u64; 2]>(4);
    let mut writer = Broadcast::<[u64; 2]>::create(Region::new(mem.as_mut_bytes()), 4)
        .unwrap()
        .into_writer();
    let mut reader = writer.reader(Start::Oldest);
    writer.publish_slice(&[[0; 2], [1; 2]]);
    // While the reader copies message 1 (its third word), the writer
    // publishes four more: message 5 overwrites message 1's slot.
    let mut words = 0;
    let mut pending = Some(writer);
    let mut out = [[9; 2]; 3];
    let got = test_hook::with(
        || {
            words += 1;
            if words == 3
                && let Some(mut writer) = pending.take()
            {
                writer.publish_slice(&[[2; 2], [3; 2], [4; 2], [5; 2]]);
            }
        },
        || reader.recv_slice(&mut out),
    );
    assert_eq!(got, Ok(1));
    assert_eq!(out[0], [0; 2]);
    assert_eq!(reader.position(), 1);
    assert_eq!(
        reader.recv_slice(&mut out),
        Err(RecvError::Lagged { missed: 2 })
    );
    assert_eq!(reader.recv_slice(&mut out), Ok(3));
    assert_eq!(out, [[3; 2], [4; 2], [5; 2]]);
}

#[test]
fn readers_join_counted_slots_at_the_oldest_whole_message() {
    let mut mem = memory::<Wide>(8);
    let mut writer = Broadcast::<Wide>::create(Region::new(mem.as_mut_bytes()), 8)
        .unwrap()
        .into_writer();
    // Nothing published: every start is message 0.
    for start in [Start::Newest, Start::Oldest, Start::Next] {
        assert_eq!(writer.reader(start).position(), 0, "{start:?}");
    }
    writer.publish(&wide(0));
    writer.publish(&wide(1));
    assert_eq!(writer.reader(Start::Oldest).position(), 0);
    assert_eq!(writer.reader(Start::Newest).position(), 1);
    // 9 published, 12 announced: 8 slots, 4 of them whole.
    for n in 2..9 {
        writer.publish(&wide(n));
    }
    let mut oldest = writer.reader(Start::Oldest);
    assert_eq!(drain(&mut oldest), wides(4..9));
    assert_eq!(drain(&mut writer.reader(Start::Newest)), [Ok(wide(8))]);
    assert_eq!(writer.reader(Start::Next).position(), 9);
}

#[test]
fn positions_of_counted_slots_wrap_around_u32() {
    let shared = shared::<Wide>(8);
    Broadcast::<Wide>::create(shared.region(), 8).unwrap();
    shared.poke(PUBLISHED, u32::MAX - 9);
    shared.poke(INTENT, u32::MAX - 9);
    let mut writer = Broadcast::<Wide>::attach(shared.region())
        .unwrap()
        .into_writer();
    let mut readers = [
        writer.reader(Start::Next),
        writer.reader(Start::Next).on_lag(Start::Newest),
    ];
    for batch in [0..5, 5..10] {
        for n in batch.clone() {
            writer.publish(&wide(n));
        }
        for reader in &mut readers {
            assert_eq!(drain_slices(reader, 3), wides(batch.clone()));
        }
    }
    // Exactly 2^32 published: without stamps, a joining reader cannot tell
    // this ring from a fresh one (documented), and starts at message 0.
    assert_eq!(writer.published(), 0);
    assert_eq!(writer.reader(Start::Newest).position(), 0);
    assert_eq!(writer.reader(Start::Oldest).position(), 0);
    // Laps across the wrap are counted exactly.
    for n in 10..24 {
        writer.publish(&wide(n));
    }
    let [on_oldest, on_newest] = &mut readers;
    assert_eq!(
        drain(on_newest),
        [Err(RecvError::Lagged { missed: 13 }), Ok(wide(23))]
    );
    let mut expected = std::vec![Err(RecvError::Lagged { missed: 7 })];
    expected.extend(wides(17..24));
    assert_eq!(drain(on_oldest), expected);
}

#[test]
fn a_restarted_writer_of_counted_slots_continues_after_the_last_message() {
    let shared = shared::<Wide>(8);
    let ring = Broadcast::<Wide>::create(shared.region(), 8).unwrap();
    let mut reader = ring.reader(Start::Oldest);
    ring.into_writer()
        .publish_slice(&[wide(0), wide(1), wide(2)]);
    // The first writer died writing message 3, announced up to 8.
    shared.poke(INTENT, 8);
    assert_eq!(drain(&mut reader), wides(0..3));
    let mut second = Broadcast::<Wide>::attach(shared.region())
        .unwrap()
        .into_writer();
    assert_eq!(second.published(), 3);
    second.publish(&wide(3));
    assert_eq!(drain(&mut reader), wides(3..4));
}

#[test]
fn an_intent_no_writer_stores_is_reported_corrupted() {
    let shared = shared::<Wide>(8);
    let mut writer = Broadcast::<Wide>::create(shared.region(), 8)
        .unwrap()
        .into_writer();
    writer.publish_slice(&[wide(0), wide(1), wide(2)]);
    assert_eq!(shared.peek(INTENT), 4);
    let corrupt = |intent: u32| {
        let mut one = writer.reader(Start::Oldest);
        let mut batch = writer.reader(Start::Oldest);
        shared.poke(INTENT, intent);
        let by_one = one.try_recv();
        let by_batch = batch.recv_slice(&mut [wide(9); 3]);
        shared.poke(INTENT, 4);
        // The batch resumes after the newest message.
        assert_eq!(batch.position(), 3);
        (by_one, by_batch)
    };
    let corrupted = (Err(RecvError::Corrupted), Err(RecvError::Corrupted));
    // Behind the messages `published` counts (the batch copies three).
    assert_eq!(corrupt(0), corrupted);
    assert_eq!(corrupt(2).1, Err(RecvError::Corrupted));
    // More than 2^31 ahead: behind, wrapped.
    assert_eq!(corrupt((1 << 31) + 1), corrupted);
    // A lap that `published` does not show: 3 published, at most 4 more
    // announced, so an `intent` of 9 or more is no writer's.
    assert_eq!(corrupt(9), corrupted);
    // An honest `intent` is accepted again.
    assert_eq!(drain(&mut writer.reader(Start::Oldest)), wides(0..3));
    // `published` behind the reader.
    let mut ahead = writer.reader(Start::Next);
    shared.poke(PUBLISHED, 1);
    assert_eq!(
        ahead.recv_slice(&mut [wide(9); 2]),
        Err(RecvError::Corrupted)
    );
    assert_eq!(ahead.position(), 1);
    // A lap claimed from afar is counted, below 2^31.
    shared.poke(PUBLISHED, 1 + (1 << 31));
    assert_eq!(
        ahead.try_recv(),
        Err(RecvError::Lagged {
            missed: (1 << 31) - 1
        })
    );
}

#[test]
fn garbage_in_the_control_words_of_counted_slots_never_panics_or_loops() {
    let shared = shared::<Wide>(4);
    let mut writer = Broadcast::<Wide>::create(shared.region(), 4)
        .unwrap()
        .into_writer();
    let mut readers = [
        writer.reader(Start::Oldest),
        writer.reader(Start::Newest).on_lag(Start::Newest),
        writer.reader(Start::Oldest).on_lag(Start::Next),
    ];
    let mut state = 0x9e37_79b9_u32;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        state
    };
    let mut out = [wide(0); 3];
    for _ in 0..ROUNDS {
        let word = next();
        // The words the crate reads as `u32`s. (The payload words are
        // `u64` atomics, which a `u32` poke must not overlap.)
        let offset = match word % 4 {
            0 => PUBLISHED,
            1 => DOORBELL + 4 * (next() as usize % 2),
            _ => INTENT,
        };
        let value = match next() % 3 {
            0 => word,
            1 => readers[0].position().wrapping_add(next() % 12),
            _ => readers[1].position().wrapping_sub(next() % 3),
        };
        shared.poke(offset, value);
        writer.publish(&wide(u64::from(word)));
        for (index, reader) in readers.iter_mut().enumerate() {
            let got = if index == 1 {
                reader.try_recv().map(|_| 1)
            } else {
                reader.recv_slice(&mut out)
            };
            match got {
                Ok(count) => assert!((1..=3).contains(&count)),
                Err(RecvError::Empty | RecvError::Corrupted) => {}
                Err(RecvError::Lagged { missed }) => {
                    assert!((1..=1 << 31).contains(&missed), "missed {missed}");
                }
            }
        }
        let _ = writer.wake_needed();
    }
}

#[test]
fn a_peer_writing_every_padding_byte_of_counted_slots_disturbs_nothing() {
    // As for stamped slots (run under Miri with both borrow models): here
    // the header's tail and the control lines are all the padding, since a
    // 64-byte message fills its slot.
    let shared = shared::<Wide>(4);
    let mut writer = Broadcast::<Wide>::create(shared.region(), 4)
        .unwrap()
        .into_writer();
    let mut reader = writer.reader(Start::Oldest);
    let padding = [36..128, 136..256, 264..384];
    std::thread::scope(|s| {
        s.spawn(|| shared.scribble(&padding, 20));
        for i in 0..200 {
            writer.publish(&wide(i));
            assert!(!writer.wake_needed());
            assert_eq!(reader.try_recv(), Ok(wide(i)));
        }
    });
    assert_eq!(reader.try_recv(), Err(RecvError::Empty));
}
