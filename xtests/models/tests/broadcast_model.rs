//! Property tests of the broadcast ring against a model: the list of every
//! message published, and each reader's position in it.
//!
//! Random sequences of every operation (publish one or a batch, receive one
//! or a batch of any length, join at each `Start`, change where a reader
//! resumes after a lap, clone a reader, re-attach a reader read-only,
//! restart the writer, sleep and wake) run against a ring of capacity 2 to
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

use core::fmt::Debug;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use ipc_primitives::broadcast::{BlockingError, Broadcast, Reader, RecvError, Start, Writer};
use ipc_primitives::{Line, Pod, ReadRegion, Region};
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
/// Messages a writer of counted slots announces at once, at most (and half
/// the capacity).
const ANNOUNCE: u64 = 16;

/// An element type under test, with a distinct value for every position.
trait Elem: Pod + Copy + PartialEq + Debug {
    fn make(n: u64) -> Self;
}

impl Elem for u64 {
    fn make(n: u64) -> Self {
        n.wrapping_mul(0x9e37_79b9_7f4a_7c15)
    }
}

/// 12 bytes: a message of two words whose second is half used.
impl Elem for [u32; 3] {
    fn make(n: u64) -> Self {
        [n as u32, (n >> 32) as u32 ^ 0xa5a5_a5a5, !(n as u32)]
    }
}

/// 64 bytes: a message of a whole line, so slots are counted.
impl Elem for [u64; 8] {
    fn make(n: u64) -> Self {
        core::array::from_fn(|k| n.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (k as u64) << 56)
    }
}

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

#[derive(Debug, Clone)]
enum Op {
    Publish,
    PublishSlice(usize),
    Recv(usize),
    /// `recv_slice` into a slice of this length (0 included).
    RecvSlice(usize, usize),
    Join(usize, Start),
    OnLag(usize, Start),
    Clone(usize, usize),
    /// Re-attach a reader through a read-only region, joining at a `Start`.
    AttachReadOnly(usize, Start),
    /// Drop the writer and attach a new one, as a restarting publisher.
    RestartWriter,
    /// `recv_or_sleep` with a sleeper that gives up at once.
    SleepOnce(usize),
    WakeNeeded,
}

fn start() -> impl Strategy<Value = Start> {
    prop_oneof![Just(Start::Oldest), Just(Start::Newest), Just(Start::Next)]
}

fn op() -> impl Strategy<Value = Op> {
    let reader = 0..READERS;
    prop_oneof![
        6 => Just(Op::Publish),
        2 => (0usize..40).prop_map(Op::PublishSlice),
        6 => reader.clone().prop_map(Op::Recv),
        3 => (reader.clone(), 0usize..40).prop_map(|(i, len)| Op::RecvSlice(i, len)),
        2 => (reader.clone(), start()).prop_map(|(i, s)| Op::Join(i, s)),
        1 => (reader.clone(), start()).prop_map(|(i, s)| Op::OnLag(i, s)),
        1 => (reader.clone(), reader.clone()).prop_map(|(i, j)| Op::Clone(i, j)),
        1 => (reader.clone(), start()).prop_map(|(i, s)| Op::AttachReadOnly(i, s)),
        1 => Just(Op::RestartWriter),
        2 => reader.prop_map(Op::SleepOnce),
        2 => Just(Op::WakeNeeded),
    ]
}

/// A reader as the model sees it.
#[derive(Debug, Clone, Copy)]
struct ModelReader {
    /// Absolute position of the next message due.
    cursor: u64,
    /// The last `published` it loaded: with counted slots it receives up to
    /// there before it loads `published` again.
    seen: u64,
    on_lag: Start,
    may_sleep: bool,
}

/// The ring as the model sees it: positions are absolute (`u64`); the ring's
/// own are their low 32 bits.
#[derive(Debug)]
struct Model {
    capacity: u64,
    /// Whether slots are stamped (else counted).
    stamped: bool,
    /// Messages published (absolute).
    published: u64,
    /// `intent` as the ring holds it (counted slots): the writer's last
    /// announcement, one past the last message it may be writing.
    intent: u64,
    /// The writer's own copy of it: a restarted writer announces afresh.
    writer_intent: u64,
    /// The oldest message that ever existed.
    first: u64,
    /// Whether a reader announced itself and no wake consumed it.
    announced: bool,
    wakes: u32,
    readers: [ModelReader; READERS],
}

impl Model {
    /// Messages a writer of counted slots announces at once.
    fn announce(&self) -> u64 {
        ANNOUNCE.min(self.capacity / 2)
    }

    /// How many of the latest messages are always whole.
    fn retained(&self) -> u64 {
        if self.stamped {
            self.capacity - 1
        } else {
            self.capacity - self.announce()
        }
    }

    /// How far back from `published` the oldest whole message is: a ring
    /// less the slot being rewritten, or less what `intent` announces.
    fn back(&self, published: u64) -> u64 {
        let ahead = if self.stamped {
            1
        } else {
            self.intent
                .saturating_sub(published)
                .clamp(1, self.capacity - 1)
        };
        self.capacity - ahead
    }

    fn join(&self, start: Start) -> u64 {
        let published = self.published;
        // Without stamps only `published` says what exists: at a multiple
        // of 2^32 it says nothing, and an oldest message from before the
        // count wrapped is message 0 of the new count (as documented).
        let low = u64::from(published as u32);
        match start {
            Start::Next => published,
            Start::Newest if published > self.first && (self.stamped || low != 0) => published - 1,
            Start::Newest => published,
            Start::Oldest if self.stamped => published
                .saturating_sub(self.back(published))
                .max(self.first),
            Start::Oldest if self.back(published) > low => published - low,
            Start::Oldest => published - self.back(published),
        }
    }

    fn publish(&mut self) -> u64 {
        let position = self.published;
        if !self.stamped && self.writer_intent == position {
            self.writer_intent = position + self.announce();
            self.intent = self.writer_intent;
        }
        self.published += 1;
        position
    }

    /// A receive of one message.
    fn recv(&mut self, i: usize) -> Result<u64, RecvError> {
        self.recv_batch(i, 1).map(|(first, _)| first)
    }

    /// A receive of up to `len` (at least 1) messages: the first received
    /// and how many, or why none. Single-threaded, a slot holds the last
    /// message written to it whole.
    fn recv_batch(&mut self, i: usize, len: u64) -> Result<(u64, u64), RecvError> {
        let cap = self.capacity;
        let reader = self.readers[i];
        let cursor = reader.cursor;
        if self.stamped {
            // Message by message, each whole unless the writer went a whole
            // ring past it; a miss after some is left for the next call.
            let available = self.published.saturating_sub(cursor);
            if available > 0 && cursor + cap >= self.published {
                let count = len.min(available);
                self.readers[i].cursor += count;
                return Ok((cursor, count));
            }
            if available == 0 {
                return Err(RecvError::Empty);
            }
            return Err(self.lapped(i, self.published));
        }
        // Counted: up to what the reader last saw of `published`, loading
        // it again when that counts nothing, or a lap.
        let mut seen = reader.seen;
        if seen == cursor || seen - cursor >= cap {
            seen = self.published;
            self.readers[i].seen = seen;
            if seen == cursor {
                return Err(RecvError::Empty);
            }
        }
        if seen - cursor >= cap {
            return Err(self.lapped(i, seen));
        }
        // Whole unless the writer announced message `cursor + cap`, which
        // rewrites the first one's slot.
        if self.intent - cursor <= cap {
            let count = len.min(seen - cursor);
            self.readers[i].cursor += count;
            return Ok((cursor, count));
        }
        Err(self.lapped(i, self.published))
    }

    /// A lap found with `published` loaded: the reader resumes as it chose.
    fn lapped(&mut self, i: usize, published: u64) -> RecvError {
        let reader = self.readers[i];
        let resume = match reader.on_lag {
            Start::Oldest => published - self.back(published),
            Start::Newest => published - 1,
            Start::Next => published,
        };
        self.readers[i].cursor = resume;
        self.readers[i].seen = published;
        RecvError::Lagged {
            missed: resume - reader.cursor,
        }
    }
}

fn check_reader<T: Elem>(
    reader: &Reader<'_, T>,
    model: &Model,
    m: &ModelReader,
    i: usize,
) -> TestCaseResult {
    prop_assert_eq!(reader.position(), m.cursor as u32, "reader {} position", i);
    prop_assert_eq!(reader.published(), model.published as u32, "published");
    prop_assert_eq!(
        reader.pending(),
        (model.published - m.cursor) as u32,
        "reader {} pending",
        i
    );
    prop_assert_eq!(reader.may_sleep(), m.may_sleep);
    prop_assert_eq!(reader.wakes(), model.wakes);
    prop_assert_eq!(reader.capacity() as u64, model.capacity);
    prop_assert_eq!(reader.retained() as u64, model.retained(), "retained");
    Ok(())
}

/// Runs `ops` on a ring of `capacity` `T`s, fresh or (with `restart`)
/// restarted after `2^32 - restart` messages.
fn run<T: Elem>(capacity: u32, restart: Option<u32>, ops: &[Op]) -> TestCaseResult {
    let size = Broadcast::<T>::required_size(capacity).unwrap();
    let mut memory = Memory::new(size);
    let cap = u64::from(capacity);
    let stride = ipc_primitives::ElementLayout::of::<T>().stride;
    let stamped = stride <= STAMPED_STRIDE;
    let announce = ANNOUNCE.min(cap / 2);
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
    let mut model = Model {
        capacity: cap,
        stamped,
        published,
        intent,
        writer_intent: published,
        first,
        announced: false,
        wakes: 0,
        readers: [ModelReader {
            cursor: 0,
            seen: published,
            on_lag: Start::Oldest,
            may_sleep: true,
        }; READERS],
    };
    let mut writer: Writer<'_, T> = Broadcast::<T>::attach(memory.region())
        .unwrap()
        .into_writer();
    prop_assert_eq!(u64::from(writer.published()), published % (1 << 32));
    let mut readers: [Reader<'_, T>; READERS] =
        core::array::from_fn(|_| writer.reader(Start::Oldest));
    let joined = model.join(Start::Oldest);
    for m in &mut model.readers {
        m.cursor = joined;
    }
    for op in ops {
        match *op {
            Op::Publish => {
                let value = next_value::<T>(&mut model);
                writer.publish(&value);
            }
            Op::PublishSlice(len) => {
                let values: Vec<T> = (0..len).map(|_| next_value::<T>(&mut model)).collect();
                writer.publish_slice(&values);
            }
            Op::Recv(i) => {
                let pending = readers[i].pending();
                let got = readers[i].try_recv();
                honest(got.as_ref().err(), pending, &writer)?;
                let expected = model.recv(i).map(T::make);
                prop_assert_eq!(got, expected, "reader {}", i);
            }
            Op::RecvSlice(i, len) => {
                let pending = readers[i].pending();
                let mut out = vec![T::make(u64::MAX); len];
                let got = readers[i].recv_slice(&mut out);
                honest(got.as_ref().err(), pending, &writer)?;
                let expected = match len {
                    0 => Ok(0),
                    _ => model.recv_batch(i, len as u64).map(|(first, count)| {
                        for (k, value) in out.iter().take(count as usize).enumerate() {
                            assert_eq!(*value, T::make(first + k as u64), "message {k}");
                        }
                        count as usize
                    }),
                };
                prop_assert_eq!(got, expected, "reader {} batch of {}", i, len);
            }
            Op::Join(i, start) => {
                readers[i] = writer.reader(start);
                model.readers[i] = ModelReader {
                    cursor: model.join(start),
                    seen: model.published,
                    on_lag: Start::Oldest,
                    may_sleep: true,
                };
            }
            Op::OnLag(i, start) => {
                readers[i] = readers[i].clone().on_lag(start);
                model.readers[i].on_lag = start;
            }
            Op::Clone(i, j) => {
                readers[j] = readers[i].clone();
                model.readers[j] = model.readers[i];
            }
            Op::AttachReadOnly(i, start) => {
                let region = ReadRegion::from(memory.region());
                readers[i] = Broadcast::<T>::attach_reader(region, start).unwrap();
                model.readers[i] = ModelReader {
                    cursor: model.join(start),
                    seen: model.published,
                    on_lag: Start::Oldest,
                    may_sleep: false,
                };
            }
            Op::RestartWriter => {
                writer = Broadcast::<T>::attach(memory.region())
                    .unwrap()
                    .into_writer();
                model.writer_intent = model.published;
            }
            Op::SleepOnce(i) => {
                let got = readers[i].recv_or_sleep(0, |_, _| Err("gave up"));
                let expected = if model.readers[i].may_sleep {
                    match model.recv(i) {
                        Ok(position) => Ok(T::make(position)),
                        Err(RecvError::Empty) => {
                            model.announced = true;
                            Err(BlockingError::Sleep("gave up"))
                        }
                        Err(RecvError::Lagged { missed }) => Err(BlockingError::Lagged { missed }),
                        Err(RecvError::Corrupted) => Err(BlockingError::Corrupted),
                    }
                } else {
                    Err(BlockingError::ReadOnly)
                };
                prop_assert_eq!(got, expected, "reader {} sleeping", i);
            }
            Op::WakeNeeded => {
                prop_assert_eq!(writer.wake_needed(), model.announced);
                if model.announced {
                    model.announced = false;
                    model.wakes = model.wakes.wrapping_add(1);
                }
            }
        }
        prop_assert_eq!(writer.published(), model.published as u32);
        prop_assert_eq!(writer.doorbell().epoch(), model.wakes);
        prop_assert_eq!(writer.retained() as u64, model.retained());
        for (i, (reader, m)) in readers.iter().zip(&model.readers).enumerate() {
            check_reader(reader, &model, m, i)?;
        }
    }
    // Whatever is left comes out as the model says, boundedly.
    for (i, reader) in readers.iter_mut().enumerate() {
        for _ in 0..=model.capacity + 1 {
            let expected = model.recv(i).map(T::make);
            prop_assert_eq!(reader.try_recv(), expected, "reader {} draining", i);
            if expected == Err(RecvError::Empty) {
                break;
            }
        }
    }
    Ok(())
}

/// What an honest writer's ring promises, apart from the model: a receive
/// that failed (`err`) by a reader `pending` behind is never `Corrupted`,
/// nor a lap of a reader at most `retained()` behind.
fn honest<T: Pod>(err: Option<&RecvError>, pending: u32, writer: &Writer<'_, T>) -> TestCaseResult {
    prop_assert_ne!(err, Some(&RecvError::Corrupted));
    if let Some(RecvError::Lagged { .. }) = err {
        prop_assert!(
            pending as usize > writer.retained(),
            "lapped {} behind, retained {}",
            pending,
            writer.retained()
        );
    }
    Ok(())
}

/// The next message: the model's next position, made a `T`.
fn next_value<T: Elem>(model: &mut Model) -> T {
    T::make(model.publish())
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
