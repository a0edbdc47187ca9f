//! Property tests of the broadcast ring against its model
//! (`models::broadcast`): the list of every message published, and each
//! reader's position in it.
//!
//! Random sequences of every operation (publish one or a batch, receive one
//! or a batch of any length, join at each `Start`, change where a reader
//! resumes after a lap, clone a reader, re-attach a reader read-only,
//! restart the writer, sleep (giving up, waking spuriously, or with a
//! message published mid-sleep) and wake) run against a ring of capacity 2 to
//! 64, holding `u64`s or 12-byte elements (stamped slots) or 64-byte ones
//! (counted slots, validated by the writer's `intent`), either fresh or
//! restarted just below 2^32 messages with the last `capacity` of them in
//! its slots (with stamps, the last one sometimes stamped but not yet
//! published, which the new writer publishes), so that positions wrap.
//! Every receive must return exactly the model's messages, `Empty` or
//! `Lagged { missed }` with the model's count;
//! positions, `published`, `pending`, `retained`, wake-ups and the
//! doorbell's announcements are compared after every operation. Apart from
//! the model: no receive is ever `Corrupted`, and a reader at most
//! `retained()` behind is never lapped.
#![cfg(not(loom))]

use core::ptr::NonNull;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use ipc_primitives::broadcast::{Broadcast, RecvError, Start};
use ipc_primitives::{Line, Region};
use models::Elem;
use models::broadcast::{Handles, MAX_SLEEPS, Model, Op, Outcome, announce, honest_check};
use proptest::prelude::*;
use proptest::test_runner::TestCaseResult;
use zerocopy::IntoBytes;

/// Proptest cases per test: few under Miri, which interprets every step.
fn config() -> ProptestConfig {
    if cfg!(miri) {
        ProptestConfig {
            cases: 3,
            // Miri isolates the file system, so no regression files.
            failure_persistence: None,
            ..ProptestConfig::default()
        }
    } else {
        ProptestConfig::with_cases(256)
    }
}

/// Longest operation sequence generated.
const MAX_OPS: usize = if cfg!(miri) { 40 } else { 300 };

/// Readers the model keeps at once.
const READERS: usize = 3;

/// Byte offsets of the documented layout (`ipc_primitives::broadcast`).
const PUBLISHED: usize = 128;
const INTENT: usize = 132;
const SLOTS: usize = 384;
/// Bytes of a stamped slot before its message.
const STAMP: usize = 8;
/// The largest stride whose slots are stamped.
const STAMPED_STRIDE: u32 = 56;

/// Zeroed, 128-aligned memory that several regions map at once, as the
/// processes sharing a segment would; freed on drop.
struct Memory {
    base: NonNull<u8>,
    lines: usize,
}

impl Memory {
    fn new(bytes: usize) -> Self {
        let lines = vec![Line::ZERO; Line::count_for(bytes)].into_boxed_slice();
        let lines_len = lines.len();
        let base = NonNull::from(Box::leak(lines).as_mut_bytes()).cast();
        Self {
            base,
            lines: lines_len,
        }
    }

    fn len(&self) -> usize {
        self.lines * 128
    }

    /// A region over all of it.
    fn region(&self) -> Region<'_> {
        // SAFETY: the bytes are owned by `self` (valid for reads and writes
        // and initialised while it is borrowed); this process reaches them
        // only through broadcast rings (one kind) and, while no ring handle
        // is live, `store_u32` and `store_words` below.
        unsafe { Region::from_raw_parts(self.base, self.len()) }
    }

    /// Stores `value` in the `u32` at `offset` (a control word or a stamp),
    /// as the process that wrote the ring before this one did: atomically,
    /// at the width the ring accesses it (Miri checks that).
    fn store_u32(&mut self, offset: usize, value: u32) {
        assert!(offset.is_multiple_of(4) && offset + 4 <= self.len());
        // SAFETY: in bounds and aligned (asserted; the base is 128-aligned);
        // every access the ring makes to these bytes is a `u32` atomic one.
        let word = unsafe { AtomicU32::from_ptr(self.base.as_ptr().add(offset).cast()) };
        word.store(value, Ordering::Relaxed);
    }

    /// Stores `bytes` from `offset` (a slot's message), zero-padded to whole
    /// 8-byte words, each as one `u64` atomic store: the width at which the
    /// ring copies messages.
    fn store_words(&mut self, offset: usize, bytes: &[u8]) {
        assert!(offset.is_multiple_of(8) && offset + bytes.len().next_multiple_of(8) <= self.len());
        for (index, chunk) in bytes.chunks(8).enumerate() {
            let mut word = [0; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            // SAFETY: in bounds and aligned (asserted); the ring accesses
            // these bytes only as `u64` atomics.
            let cell =
                unsafe { AtomicU64::from_ptr(self.base.as_ptr().add(offset + 8 * index).cast()) };
            cell.store(u64::from_ne_bytes(word), Ordering::Relaxed);
        }
    }
}

impl Drop for Memory {
    fn drop(&mut self) {
        let lines = NonNull::slice_from_raw_parts(self.base.cast::<Line>(), self.lines);
        // SAFETY: `base` and `lines` are the boxed slice leaked in `new`, and
        // no region outlives `self` (they borrow it).
        drop(unsafe { Box::from_raw(lines.as_ptr()) });
    }
}

fn start() -> impl Strategy<Value = Start> {
    prop_oneof![Just(Start::Oldest), Just(Start::Newest), Just(Start::Next)]
}

fn op() -> impl Strategy<Value = Op> {
    let reader = 0..READERS;
    // Giving up at once (`sleeps` 0, no publish) is the commonest sleep.
    let sleep = (
        reader.clone(),
        0u32..3,
        prop_oneof![2 => Just(0u32), 1 => 1..=MAX_SLEEPS],
        proptest::bool::weighted(0.25),
    )
        .prop_map(|(reader, spins, sleeps, publish)| Op::Sleep {
            reader,
            spins,
            sleeps,
            publish,
        });
    prop_oneof![
        6 => Just(Op::Publish),
        2 => (0usize..40).prop_map(Op::PublishSlice),
        6 => reader.clone().prop_map(Op::Recv),
        3 => (reader.clone(), 0usize..40).prop_map(|(i, len)| Op::RecvSlice(i, len)),
        2 => (reader.clone(), start()).prop_map(|(i, s)| Op::Join(i, s)),
        1 => (reader.clone(), start()).prop_map(|(i, s)| Op::OnLag(i, s)),
        1 => (reader.clone(), reader.clone()).prop_map(|(i, j)| Op::Clone(i, j)),
        1 => (reader, start()).prop_map(|(i, s)| Op::AttachReadOnly(i, s)),
        1 => Just(Op::RestartWriter),
        2 => sleep,
        2 => Just(Op::WakeNeeded),
    ]
}

/// Runs `ops` on a ring of `capacity` `T`s, fresh or (with `restart`)
/// restarted after `2^33 - restart` messages.
fn run<T: Elem>(capacity: u32, restart: Option<u32>, ops: &[Op]) -> TestCaseResult {
    let size = Broadcast::<T>::required_size(capacity).unwrap();
    let mut memory = Memory::new(size);
    let cap = u64::from(capacity);
    let stride = ipc_primitives::ElementLayout::of::<T>().stride;
    let stamped = stride <= STAMPED_STRIDE;
    let announce = u64::from(announce(capacity));
    // Restarted: with counted slots, the last writer may have stopped
    // anywhere in an announcement.
    let (published, first, intent) = match restart {
        None => (0, 0, 0),
        Some(behind) => {
            let published = (1u64 << 32) * 2 - u64::from(behind);
            let intent = published + u64::from(behind) % (announce + 1);
            (published, published - cap, if stamped { 0 } else { intent })
        }
    };
    Broadcast::<T>::create(memory.region(), capacity).unwrap();
    if let Some(behind) = restart {
        // What the last writer left: `published`, `intent`, and its last
        // `capacity` messages whole in their slots. With stamps, an odd
        // `behind` has it die between the last one's stamp and `published`:
        // the new writer publishes that message.
        let unpublished = u64::from(stamped && behind % 2 == 1);
        memory.store_u32(PUBLISHED, (published - unpublished) as u32);
        memory.store_u32(INTENT, intent as u32);
        let stamp = if stamped { STAMP } else { 0 };
        let slot = stamp + stride as usize;
        for position in first..published {
            let at = SLOTS + (position % cap) as usize * slot;
            if stamped {
                memory.store_u32(at, (position as u32).wrapping_add(1));
            }
            memory.store_words(at + stamp, T::make(position).as_bytes());
        }
    }
    let mut model = Model::<T>::new(capacity, stamped, published, first, intent, READERS);
    // Checks that the ring's `published` is `published`'s low 32 bits.
    let ring = Broadcast::<T>::attach(memory.region()).unwrap();
    let mut handles = Handles::<T, READERS>::new(ring, published);
    model.check(&handles.writer, &handles.readers);
    for &op in ops {
        let pending: [u32; READERS] = core::array::from_fn(|i| handles.readers[i].pending());
        let got = handles.perform(op, || memory.region());
        honest_check(op, &got, &pending, handles.writer.retained());
        prop_assert_eq!(got, model.expect(op), "{:?}", op);
        model.check(&handles.writer, &handles.readers);
    }
    // Whatever is left comes out as the model says, boundedly.
    for (i, reader) in handles.readers.iter_mut().enumerate() {
        for _ in 0..=cap + 1 {
            let expected = model.expect(Op::Recv(i));
            prop_assert_eq!(
                Outcome::Received(reader.try_recv()),
                expected.clone(),
                "reader {} draining",
                i
            );
            if expected == Outcome::Received(Err(RecvError::Empty)) {
                break;
            }
        }
    }
    Ok(())
}

/// 2 to 64: counted rings of 32 and 64 announce the most (16) at once.
fn capacity() -> impl Strategy<Value = u32> {
    (1u32..7).prop_map(|log| 1 << log)
}

fn restart() -> impl Strategy<Value = Option<u32>> {
    prop_oneof![Just(None), (1u32..64).prop_map(Some)]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn u64_messages_match_the_model(
        capacity in capacity(),
        restart in restart(),
        ops in proptest::collection::vec(op(), 0..MAX_OPS),
    ) {
        run::<u64>(capacity, restart, &ops)?;
    }

    #[test]
    fn twelve_byte_messages_match_the_model(
        capacity in capacity(),
        restart in restart(),
        ops in proptest::collection::vec(op(), 0..MAX_OPS),
    ) {
        run::<[u32; 3]>(capacity, restart, &ops)?;
    }

    #[test]
    fn counted_slots_match_the_model(
        capacity in capacity(),
        restart in restart(),
        ops in proptest::collection::vec(op(), 0..MAX_OPS),
    ) {
        run::<[u64; 8]>(capacity, restart, &ops)?;
    }
}
