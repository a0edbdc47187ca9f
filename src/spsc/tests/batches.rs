//! All-or-nothing batches, write chunks, `peek` and `is_full`: what a user
//! switching from rtrb expects.

use super::*;

#[test]
fn push_all_and_pop_exact_move_everything_or_nothing() {
    let mut ring = StaticSpsc::<u32, 4>::new();
    let (mut tx, mut rx) = ring.split();
    assert_eq!(tx.push_all(&[1, 2, 3]), Ok(()));
    assert_eq!(tx.push_all(&[4, 5]), Err(ChunkError::TooFewSlots(1)));
    assert_eq!(
        tx.full_count(),
        1,
        "a refused batch counts as finding the ring full"
    );
    assert_eq!(tx.len(), 3, "nothing of the refused batch was pushed");
    assert_eq!(tx.push_all(&[]), Ok(()));
    let mut out = [0; 4];
    assert_eq!(rx.pop_exact(&mut out), Err(ChunkError::TooFewSlots(3)));
    assert_eq!(rx.len(), 3, "nothing was popped");
    assert_eq!(rx.pop_exact(&mut out[..2]), Ok(()));
    assert_eq!(out[..2], [1, 2]);
    assert_eq!(rx.pop_exact(&mut []), Ok(()));
    assert_eq!(tx.push_all(&[4, 5, 6]), Ok(()));
    assert!(tx.is_full());
    assert_eq!(tx.push_all(&[7; 5]), Err(ChunkError::TooFewSlots(0)));
    assert_eq!(rx.pop_exact(&mut out), Ok(()));
    assert_eq!(out, [3, 4, 5, 6]);
    assert!(!tx.is_full() && rx.is_empty());
}

#[test]
fn a_batch_larger_than_the_ring_is_refused_not_truncated() {
    let mut ring = StaticSpsc::<u8, 2>::new();
    let (mut tx, mut rx) = ring.split();
    assert_eq!(tx.push_all(&[1, 2, 3]), Err(ChunkError::TooFewSlots(2)));
    assert!(tx.write_chunk(usize::MAX).is_err());
    tx.push_all(&[1, 2]).unwrap();
    let mut out = [0; 3];
    assert_eq!(rx.pop_exact(&mut out), Err(ChunkError::TooFewSlots(2)));
}

#[test]
fn a_write_chunk_publishes_what_it_commits_and_nothing_on_drop() {
    let mut ring = StaticSpsc::<[u16; 3], 4>::new();
    let (mut tx, mut rx) = ring.split();
    {
        let mut chunk = tx.write_chunk(3).unwrap();
        assert_eq!((chunk.len(), chunk.is_empty()), (3, false));
        chunk.slot(0).unwrap().write(&[1, 1, 1]);
        let mut second = chunk.slot(1).unwrap();
        second.write(&[0; 3]);
        second.write_bytes(2, &7_u16.to_ne_bytes()).unwrap();
        assert_eq!(
            second.write_bytes(5, &[0; 2]),
            Err(OutOfBounds {
                offset: 5,
                len: 2,
                size: 6
            })
        );
        assert!(chunk.slot(3).is_none(), "past the chunk");
        assert!(rx.is_empty(), "nothing visible before the commit");
        chunk.commit(2);
    }
    assert_eq!(rx.try_pop(), Ok([1, 1, 1]));
    assert_eq!(rx.try_pop(), Ok([0, 7, 0]));
    assert_eq!(rx.try_pop(), Err(PopError::Empty));
    {
        let mut dropped = tx.write_chunk(4).unwrap();
        dropped.slot(0).unwrap().write(&[9; 3]);
    }
    assert!(rx.is_empty(), "a dropped chunk publishes nothing");
    let mut all = tx.write_chunk(4).unwrap();
    for index in 0..4 {
        all.slot(index).unwrap().write(&[index as u16; 3]);
    }
    all.commit(usize::MAX);
    let mut out = [[0; 3]; 4];
    assert_eq!(rx.pop_exact(&mut out), Ok(()));
    assert_eq!(out, [[0; 3], [1; 3], [2; 3], [3; 3]]);
    let empty = tx.write_chunk(0).unwrap();
    assert!(empty.is_empty());
    empty.commit_all();
    assert!(rx.is_empty());
}

#[test]
fn a_write_chunk_wraps_around_the_end() {
    let mut ring = StaticSpsc::<u64, 4>::new();
    let (mut tx, mut rx) = ring.split();
    tx.push_all(&[0, 1, 2]).unwrap();
    let mut out = [0; 3];
    rx.pop_exact(&mut out).unwrap();
    let mut chunk = tx.write_chunk(4).unwrap();
    for index in 0..4 {
        chunk.slot(index).unwrap().write(&(10 + index as u64));
    }
    chunk.commit_all();
    let mut out = [0; 4];
    assert_eq!(rx.pop_exact(&mut out), Ok(()));
    assert_eq!(out, [10, 11, 12, 13]);
}

#[test]
fn peek_copies_the_oldest_without_popping() {
    let mut ring = StaticSpsc::<u32, 2>::new();
    let (mut tx, mut rx) = ring.split();
    assert_eq!(rx.peek(), Err(PopError::Empty));
    tx.try_push(5).unwrap();
    tx.try_push(6).unwrap();
    assert_eq!((rx.peek(), rx.peek()), (Ok(5), Ok(5)));
    assert_eq!(rx.len(), 2);
    assert!(tx.is_full(), "a peek frees nothing");
    assert_eq!(rx.try_pop(), Ok(5));
    assert_eq!(rx.peek(), Ok(6));
}

#[test]
fn batches_report_a_corrupt_peer_and_move_nothing() {
    let shared = shared::<u32>(4);
    let (mut tx, mut rx) = Spsc::<u32>::create(shared.region(), 4).unwrap().split();
    tx.push_all(&[1, 2, 3, 4]).unwrap();
    // The consumer's counter ahead of the producer's: impossible. The full
    // ring makes the producer read it.
    poke_tail(&shared, 7);
    assert_eq!(tx.push_all(&[5]), Err(ChunkError::Corrupted));
    assert!(matches!(tx.write_chunk(1), Err(ChunkError::Corrupted)));
    poke_tail(&shared, 0);
    // The producer's counter claims more than the ring holds.
    poke_head(&shared, 9);
    let mut out = [0; 4];
    assert_eq!(rx.pop_exact(&mut out), Ok(()), "stamped elements pop");
    assert_eq!(out, [1, 2, 3, 4]);
    assert_eq!(rx.pop_exact(&mut out[..1]), Err(ChunkError::Corrupted));
    assert_eq!(rx.peek(), Err(PopError::Corrupted));
}

#[test]
fn empty_batches_write_no_shared_counter() {
    // Polling an empty ring, or pushing nothing, must not write the side's
    // line (the peer's core would have to fetch it back). A marker no side
    // would write shows whether a counter was stored.
    const MARK: u32 = 0x7e57;
    let shared = shared::<u64>(4);
    let (mut tx, mut rx) = Spsc::<u64>::create(shared.region(), 4).unwrap().split();
    poke_head(&shared, MARK);
    assert_eq!(tx.push_slice(&[]), Ok(0));
    assert_eq!(tx.push_all(&[]), Ok(()));
    tx.write_chunk(0).unwrap().commit_all();
    assert_eq!(shared.peek(HEAD), MARK, "pushing nothing published");
    assert_eq!(tx.full_count(), 0, "pushing nothing found the ring full");
    poke_head(&shared, 0);
    poke_tail(&shared, MARK);
    assert_eq!(rx.pop_slice(&mut [0; 4]), Ok(0));
    assert_eq!(rx.pop_slice(&mut []), Ok(0));
    assert_eq!(rx.pop_exact(&mut []), Ok(()));
    assert_eq!(rx.try_pop(), Err(PopError::Empty));
    assert_eq!(shared.peek(TAIL), MARK, "an empty poll released");
    poke_tail(&shared, 0);
    assert_eq!(tx.push_slice(&[1, 2, 3, 4]), Ok(4));
    poke_head(&shared, MARK);
    assert_eq!(tx.push_slice(&[5]), Ok(0));
    assert_eq!(shared.peek(HEAD), MARK, "a push into a full ring published");
    assert_eq!(tx.full_count(), 1);
}
