//! Rings of elements over 56 bytes: slots without stamps, the index
//! protocol (see [Protocol](super::super#protocol)).

use super::*;

/// 64 bytes: the smallest element whose slots have no stamp.
type Wide = [u64; 8];

/// An element that says which position it was pushed at.
fn wide(position: u64) -> Wide {
    core::array::from_fn(|word| position << 8 | word as u64)
}

#[test]
fn elements_over_56_bytes_fill_their_slots_without_a_stamp() {
    assert_eq!(Spsc::<Wide>::required_size(4), Some(SLOTS + 4 * 64));
    assert_eq!(Spsc::<[u8; 57]>::required_size(4), Some(SLOTS + 4 * 64));
    assert_eq!(Spsc::<[u8; 56]>::required_size(4), Some(SLOTS + 4 * 64));
    let shared = shared::<Wide>(4);
    let mut tx = Spsc::<Wide>::create(shared.region(), 4)
        .unwrap()
        .into_producer();
    tx.try_push(wide(0)).unwrap();
    tx.try_push(wide(1)).unwrap();
    // The second slot starts 64 bytes after the first, with the payload's
    // first word: no stamp between them.
    let word =
        |offset: usize| u64::from(shared.peek(offset)) | u64::from(shared.peek(offset + 4)) << 32;
    assert_eq!(word(SLOTS), wide(0)[0]);
    assert_eq!(word(SLOTS + 56), wide(0)[7]);
    assert_eq!(word(SLOTS + 64), wide(1)[0]);
    assert_eq!(shared.peek(HEAD), 2);
}

#[test]
fn every_way_in_and_out_keeps_order_across_many_laps() {
    let mut ring = StaticSpsc::<Wide, 8>::new();
    let (mut tx, mut rx) = ring.split();
    let mut sent = 0u64;
    let mut received = 0u64;
    let mut out = [[0; 8]; 5];
    for round in 0..500u64 {
        match round % 4 {
            0 => {
                while tx.try_push(wide(sent)).is_ok() {
                    sent += 1;
                }
            }
            1 => {
                let items: [Wide; 3] = core::array::from_fn(|i| wide(sent + i as u64));
                sent += tx.push_slice(&items).unwrap() as u64;
            }
            2 => {
                if let Ok(mut chunk) = tx.write_chunk(2) {
                    chunk.write_at(0, &wide(sent));
                    chunk.write_at(1, &wide(sent + 1));
                    chunk.commit_all();
                    sent += 2;
                }
            }
            _ => {
                if let Ok(mut grant) = tx.grant() {
                    grant.write(&wide(sent));
                    grant.commit();
                    sent += 1;
                }
            }
        }
        match round % 3 {
            0 => {
                if let Ok(value) = rx.peek() {
                    assert_eq!(value, wide(received));
                    assert_eq!(rx.try_pop(), Ok(value));
                    received += 1;
                }
            }
            1 => {
                let count = rx.pop_slice(&mut out).unwrap();
                for value in &out[..count] {
                    assert_eq!(*value, wide(received));
                    received += 1;
                }
            }
            _ => {
                if rx.pop_exact(&mut out[..2]).is_ok() {
                    assert_eq!(out[..2], [wide(received), wide(received + 1)]);
                    received += 2;
                }
            }
        }
        assert_eq!(rx.len() as u64, sent - received);
    }
    assert!(sent > 8 * 50, "many laps: {sent}");
}

#[test]
fn the_consumer_pops_only_what_head_counts_and_reads_it_once_per_batch() {
    let shared = shared::<Wide>(4);
    let (mut tx, mut rx) = Spsc::<Wide>::create(shared.region(), 4).unwrap().split();
    for position in 0..3 {
        tx.try_push(wide(position)).unwrap();
    }
    // As if the producer had written the third payload but not yet `head`:
    // nothing but `head` publishes, so the consumer stops before it.
    poke_head(&shared, 2);
    assert_eq!(rx.try_pop(), Ok(wide(0)));
    // `head` was read once for both: a later (impossible) value is not seen
    // until the consumer needs more than it counted.
    poke_head(&shared, 99);
    assert_eq!(rx.try_pop(), Ok(wide(1)));
    assert_eq!(rx.try_pop(), Err(PopError::Corrupted));
    poke_head(&shared, 3);
    assert_eq!(rx.try_pop(), Ok(wide(2)));
    assert_eq!(rx.try_pop(), Err(PopError::Empty));
}

#[test]
fn a_head_behind_the_consumer_is_corrupt_not_empty() {
    let shared = shared::<Wide>(4);
    let (mut tx, mut rx) = Spsc::<Wide>::create(shared.region(), 4).unwrap().split();
    tx.try_push(wide(0)).unwrap();
    assert_eq!(rx.try_pop(), Ok(wide(0)));
    // Stamped rings take this for a head not yet published (the consumer
    // follows stamps); here nothing is popped before `head` counts it.
    poke_head(&shared, 0);
    assert_eq!(rx.try_pop(), Err(PopError::Corrupted));
    assert_eq!(rx.len(), 4, "shown as full: no possible count");
    poke_head(&shared, 1);
    assert_eq!(rx.try_pop(), Err(PopError::Empty));
    poke_head(&shared, 1);
    poke_tail(&shared, 2);
    assert_eq!(
        Spsc::<Wide>::attach(shared.region()).map(|_| ()),
        Err(AttachError::Corrupted)
    );
}

#[test]
fn a_new_producer_starts_at_head() {
    let shared = shared::<Wide>(4);
    {
        let mut tx = Spsc::<Wide>::create(shared.region(), 4)
            .unwrap()
            .into_producer();
        tx.try_push(wide(7)).unwrap();
        // As if the producer died after writing the payload, before `head`:
        // the element was never sent, and its slot is free again.
        poke_head(&shared, 0);
    }
    let (mut tx, mut rx) = Spsc::<Wide>::attach(shared.region()).unwrap().split();
    assert_eq!(shared.peek(HEAD), 0, "nothing adopted");
    tx.try_push(wide(1)).unwrap();
    assert_eq!(
        (rx.try_pop(), rx.try_pop()),
        (Ok(wide(1)), Err(PopError::Empty))
    );
}

#[test]
fn garbage_counters_never_index_out_of_bounds() {
    // Counters only: the payload words are `u64` atomics, which `poke`'s
    // `u32` would overlap (Miri cannot model mixed-size atomics); a payload
    // is never interpreted, and the hostile fuzz target rewrites it whole.
    assert_garbage_counters_never_index_out_of_bounds(wide(1));
}

#[test]
fn a_static_ring_of_wide_elements_has_region_bytes() {
    assert_static_ring_has_region_bytes::<Wide, 4>(wide(5));
}

#[test]
fn inspection_reads_a_ring_without_stamps_by_its_own_rules() {
    let shared = shared::<Wide>(4);
    let (mut tx, mut rx) = Spsc::<Wide>::create(shared.region(), 4).unwrap().split();
    tx.push_slice(&[wide(0), wide(1)]).unwrap();
    assert_eq!(rx.try_pop(), Ok(wide(0)));
    let look = || {
        inspect(
            crate::ReadRegion::from(shared.region()),
            ElementLayout::of::<Wide>(),
        )
    };
    let (counters, fill) = look().expect("the ring's own layout");
    assert_eq!((counters.pushed, counters.popped, fill), (2, 1, Some(1)));
    // A head behind the tail: possible in a stamped ring, not here.
    poke_head(&shared, 0);
    assert_eq!(look().expect("still attachable").1, None);
}
