//! Unit tests of the ring, including a hostile peer rewriting its counters.

use zerocopy::IntoBytes;

use super::*;
use crate::Line;

fn memory<T: Pod>(capacity: u32) -> std::vec::Vec<Line> {
    std::vec![Line::ZERO; Line::count_for(Spsc::<T>::required_size(capacity).unwrap())]
}

/// Stores raw counter values, as a peer process could.
fn poke<T: Pod>(region: Region<'_>, head: Option<u32>, tail: Option<u32>) {
    let control = region
        .attach::<SpscControl, T>()
        .expect("valid header")
        .control;
    if let Some(head) = head {
        control.head.0.store(head, Ordering::Release);
    }
    if let Some(tail) = tail {
        control.tail.0.store(tail, Ordering::Release);
    }
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
    assert_eq!(rx.pop_into(&mut out), Ok(4));
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
    let mut mem = memory::<u32>(4);
    let region = Region::new(mem.as_mut_bytes());
    Spsc::<u32>::create(region, 4).unwrap();
    poke::<u32>(region, Some(u32::MAX - 1), Some(u32::MAX - 1));
    let (mut tx, mut rx) = Spsc::<u32>::attach(region).unwrap().split();
    for i in 0..100 {
        assert_eq!(tx.push_slice(&[i, i + 1, i + 2]), Ok(3));
        let mut out = [0; 3];
        assert_eq!(rx.pop_into(&mut out), Ok(3));
        assert_eq!(out, [i, i + 1, i + 2]);
    }
}

#[test]
fn consumer_reports_a_producer_claiming_too_many_elements() {
    let mut mem = memory::<u64>(4);
    let region = Region::new(mem.as_mut_bytes());
    let mut rx = Spsc::<u64>::create(region, 4).unwrap().into_consumer();
    poke::<u64>(region, Some(5), None);
    assert_eq!(rx.try_pop(), Err(PopError::Corrupted));
    assert_eq!(rx.pop_into(&mut [0; 2]), Err(Corrupted));
    assert_eq!(rx.len(), 4);
    // A head that moves backwards past the tail is as impossible.
    poke::<u64>(region, Some(u32::MAX), None);
    assert_eq!(rx.try_pop(), Err(PopError::Corrupted));
    // Once the peer behaves again, so does the ring.
    poke::<u64>(region, Some(1), None);
    assert_eq!(rx.try_pop(), Ok(0));
}

#[test]
fn producer_reports_a_consumer_ahead_of_it() {
    let mut mem = memory::<u64>(4);
    let region = Region::new(mem.as_mut_bytes());
    let mut tx = Spsc::<u64>::create(region, 4).unwrap().into_producer();
    for i in 0..4 {
        tx.try_push(i).unwrap();
    }
    poke::<u64>(region, None, Some(9));
    assert_eq!(tx.try_push(7), Err(PushError::Corrupted(7)));
    assert_eq!(tx.push_slice(&[1, 2]), Err(Corrupted));
    assert!(matches!(tx.grant(), Err(PushError::Corrupted(()))));
    assert_eq!(tx.len(), 4);
}

#[test]
fn garbage_counters_never_index_out_of_bounds() {
    let mut mem = memory::<[u64; 3]>(8);
    let region = Region::new(mem.as_mut_bytes());
    let (mut tx, mut rx) = Spsc::<[u64; 3]>::create(region, 8).unwrap().split();
    let mut state = 0x2545_f491_u32;
    for _ in 0..10_000 {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        poke::<[u64; 3]>(region, Some(state), Some(state.rotate_left(7)));
        let _ = tx.try_push([1, 2, 3]);
        let _ = rx.try_pop();
        let _ = rx.pop_into(&mut [[0; 3]; 5]);
        let _ = tx.push_slice(&[[4, 5, 6]; 3]);
        assert!(tx.len() <= 8 && rx.len() <= 8);
    }
}

#[test]
fn attach_rejects_corrupt_counters() {
    let mut mem = memory::<u64>(4);
    let region = Region::new(mem.as_mut_bytes());
    Spsc::<u64>::create(region, 4).unwrap();
    poke::<u64>(region, Some(10), Some(2));
    assert_eq!(
        Spsc::<u64>::attach(region).map(|_| ()),
        Err(AttachError::Corrupted)
    );
}

#[test]
fn static_ring_has_region_bytes() {
    let mut ring = StaticSpsc::<u64, 4>::new();
    ring.split().0.try_push(0xfeed).unwrap();
    let mut mem = memory::<u64>(4);
    let region = Region::new(mem.as_mut_bytes());
    Spsc::<u64>::create(region, 4)
        .unwrap()
        .into_producer()
        .try_push(0xfeed)
        .unwrap();
    let size = Spsc::<u64>::required_size(4).unwrap();
    let base = (&raw const ring).cast::<u8>();
    for fields in [0..28, 128..132, 256..260, 384..392, 512..size] {
        // SAFETY: `ring` is a live value of at least `size` bytes (a control
        // block then the slots, asserted in `assertions`); each range holds
        // initialised fields (header fields, counters, slots), never padding,
        // and nothing writes `ring` while the slice lives.
        let ring_bytes =
            unsafe { core::slice::from_raw_parts(base.add(fields.start), fields.len()) };
        assert_eq!(ring_bytes, &mem.as_bytes()[fields]);
    }
}

#[test]
fn create_checks_capacity_alignment_and_size() {
    let mut mem = memory::<u64>(8);
    let bytes = mem.as_mut_bytes();
    for capacity in [0, 3, 6, MAX_CAPACITY + 1, u32::MAX] {
        assert_eq!(
            Spsc::<u64>::create(Region::new(bytes), capacity).map(|_| ()),
            Err(CreateError::InvalidCapacity { capacity })
        );
    }
    assert_eq!(
        Spsc::<u64>::create(Region::new(&mut bytes[8..]), 4).map(|_| ()),
        Err(CreateError::Misaligned { required: 128 })
    );
    assert_eq!(
        Spsc::<u64>::create(Region::new(bytes), 32).map(|_| ()),
        Err(CreateError::TooSmall {
            needed: 512 + 32 * 8,
            actual: 640
        })
    );
    assert_eq!(
        Spsc::<[u8; 1 << 20]>::create(Region::new(bytes), MAX_CAPACITY).map(|_| ()),
        Err(CreateError::TooSmall {
            needed: 512 + (1 << 51),
            actual: 640
        })
    );
}
