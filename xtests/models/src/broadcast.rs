//! The broadcast ring's model: the list of every message published
//! (absolute `u64` positions; the ring's are their low 32 bits), the
//! writer's `intent` (its announcements, with counted slots), each reader's
//! position in it and the last `published` it saw, and the doorbell.
//! [`Handles`] runs the same operations on a ring, [`honest_check`] checks
//! what an honest writer's ring promises apart from the model.

use std::collections::BTreeMap;

use ipc_primitives::broadcast::{BlockingError, Broadcast, Reader, RecvError, Start, Writer};
use ipc_primitives::{AttachError, ReadRegion, Region};

use super::Elem;

/// Sleeps a sleeping receive ([`Op::Sleep`]) may take before its sleeper
/// gives up, at most.
pub const MAX_SLEEPS: u32 = 3;

/// How many messages a writer of counted slots announces at once, at most
/// (and half the capacity).
pub const ANNOUNCE: u32 = 16;

/// Messages a writer of counted slots announces at once in a ring of
/// `capacity`.
pub fn announce(capacity: u32) -> u32 {
    ANNOUNCE.min(capacity / 2)
}

/// One operation.
#[derive(Debug, Clone, Copy)]
pub enum Op {
    Publish,
    PublishSlice(usize),
    Recv(usize),
    /// `recv_slice` on a reader, into a slice of this length.
    RecvSlice(usize, usize),
    Join(usize, Start),
    OnLag(usize, Start),
    Clone(usize, usize),
    AttachReadOnly(usize, Start),
    RestartWriter,
    /// `recv_or_sleep`: the sleeper returns `Ok` (a spurious wake) up to
    /// `sleeps` times, then gives up; with `publish`, the first sleep
    /// publishes a message and wakes, as the writer would.
    Sleep {
        reader: usize,
        spins: u32,
        sleeps: u32,
        publish: bool,
    },
    WakeNeeded,
    Recreate,
}

/// What an operation returned.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome<T> {
    Done,
    Received(Result<T, RecvError>),
    /// What `recv_slice` received, or its error.
    Sliced(Result<Vec<T>, RecvError>),
    Slept {
        got: Result<T, BlockingError<()>>,
        sleeps: u32,
    },
    WakeNeeded(bool),
    /// A re-attach: the capacity found, or the error.
    Attached(Result<u32, AttachError>),
}

/// A reader as the model sees it.
#[derive(Debug, Clone, Copy)]
pub struct ModelReader {
    /// Absolute position of the next message due.
    pub cursor: u64,
    /// The last `published` it loaded: with counted slots it receives up to
    /// there before it loads `published` again.
    pub seen: u64,
    pub on_lag: Start,
    pub may_sleep: bool,
}

/// The ring as the model sees it.
#[derive(Debug)]
pub struct Model<T> {
    pub capacity: u32,
    /// Whether slots are stamped (else counted).
    pub stamped: bool,
    /// Messages published (absolute).
    pub published: u64,
    /// `intent` as the ring holds it (absolute): with counted slots, the
    /// last message the writer announced, plus one.
    pub intent: u64,
    /// The writer's own copy of its last announcement: a writer that
    /// (re)starts announces afresh from `published`.
    pub writer_intent: u64,
    /// The oldest message that ever existed.
    pub first: u64,
    /// Whether a reader announced itself and no wake consumed it.
    pub announced: bool,
    pub wakes: u32,
    pub readers: Vec<ModelReader>,
    /// Messages whose bytes a peer rewrote: what their slot now holds.
    pub rewritten: BTreeMap<u64, T>,
}

impl<T: Elem> Model<T> {
    /// A ring with `published` messages, the oldest existing `first`,
    /// `intent` as given, and `readers` readers joined at the oldest.
    pub fn new(
        capacity: u32,
        stamped: bool,
        published: u64,
        first: u64,
        intent: u64,
        readers: usize,
    ) -> Self {
        let mut model = Self {
            capacity,
            stamped,
            published,
            intent,
            writer_intent: published,
            first,
            announced: false,
            wakes: 0,
            readers: vec![
                ModelReader {
                    cursor: 0,
                    seen: published,
                    on_lag: Start::Oldest,
                    may_sleep: true,
                };
                readers
            ],
            rewritten: BTreeMap::new(),
        };
        let oldest = model.join(Start::Oldest);
        for reader in &mut model.readers {
            reader.cursor = oldest;
        }
        model
    }

    fn cap(&self) -> u64 {
        u64::from(self.capacity)
    }

    /// How many of the latest messages are always whole: all but the slot
    /// being rewritten (stamped), or all but those announced (counted).
    pub fn retained(&self) -> u64 {
        if self.stamped {
            self.cap() - 1
        } else {
            self.cap() - u64::from(announce(self.capacity))
        }
    }

    /// How far back from `published` the oldest whole message is: a ring's
    /// worth less the slot being rewritten, or, with counted slots, less
    /// the messages `intent` announces past `published` (at least one).
    fn back(&self, published: u64) -> u64 {
        let ahead = if self.stamped {
            1
        } else {
            self.intent
                .saturating_sub(published)
                .clamp(1, self.cap() - 1)
        };
        self.cap() - ahead
    }

    fn join(&self, start: Start) -> u64 {
        let published = self.published;
        // Without stamps a reader knows messages only from `published`: at
        // a multiple of 2^32 it says none, and an oldest message before the
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

    /// Message `position` as its slot holds it.
    pub fn value(&self, position: u64) -> T {
        self.rewritten
            .get(&position)
            .copied()
            .unwrap_or_else(|| T::make(position))
    }

    /// The message slot `slot` holds, if any.
    pub fn held_by(&self, slot: u64) -> Option<u64> {
        let last = self.published.checked_sub(1)?;
        let back = (last + self.cap() - slot % self.cap()) % self.cap();
        let held = last.checked_sub(back)?;
        (held >= self.first).then_some(held)
    }

    fn publish(&mut self) {
        let position = self.published;
        if !self.stamped && self.writer_intent == position {
            self.writer_intent = position + u64::from(announce(self.capacity));
            self.intent = self.writer_intent;
        }
        self.rewritten.remove(&(position.wrapping_sub(self.cap())));
        self.published += 1;
    }

    fn recv(&mut self, i: usize) -> Result<T, RecvError> {
        self.recv_batch(i, 1).map(|values| values[0])
    }

    /// `try_recv` (`len` 1) or `recv_slice` (`len` at least 1): the
    /// messages received, at least one, or why none.
    fn recv_batch(&mut self, i: usize, len: u64) -> Result<Vec<T>, RecvError> {
        let cap = self.cap();
        let reader = self.readers[i];
        let cursor = reader.cursor;
        if self.stamped {
            // Message by message, each whole unless the writer went a whole
            // ring past it; a miss after some messages is left for the next
            // call.
            let mut values = Vec::new();
            let mut next = cursor;
            while (values.len() as u64) < len
                && next < self.published
                && next + cap >= self.published
            {
                values.push(self.value(next));
                next += 1;
            }
            if !values.is_empty() {
                self.readers[i].cursor = next;
                return Ok(values);
            }
            if cursor == self.published {
                return Err(RecvError::Empty);
            }
            return Err(self.lapped(i, self.published));
        }
        // Counted: up to what the reader last saw of `published`, loading it
        // again only when that counts nothing, or a lap.
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
        let count = len.min(seen - cursor);
        // Whole unless the writer announced message `cursor + cap`, which
        // rewrites the first one's slot.
        if self.intent - cursor <= cap {
            self.readers[i].cursor += count;
            return Ok((cursor..cursor + count).map(|p| self.value(p)).collect());
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

    /// Applies `op` (not `Recreate`) and returns what it must return.
    ///
    /// # Panics
    ///
    /// On `Recreate`, which the caller does.
    pub fn expect(&mut self, op: Op) -> Outcome<T> {
        let reader = |cursor: u64, published: u64, may_sleep: bool| ModelReader {
            cursor,
            seen: published,
            on_lag: Start::Oldest,
            may_sleep,
        };
        match op {
            Op::Publish => self.publish(),
            Op::PublishSlice(len) => (0..len).for_each(|_| self.publish()),
            Op::Recv(i) => return Outcome::Received(self.recv(i)),
            Op::RecvSlice(_, 0) => return Outcome::Sliced(Ok(Vec::new())),
            Op::RecvSlice(i, len) => return Outcome::Sliced(self.recv_batch(i, len as u64)),
            Op::Join(i, start) => {
                self.readers[i] = reader(self.join(start), self.published, true);
            }
            Op::OnLag(i, start) => self.readers[i].on_lag = start,
            Op::Clone(i, j) => self.readers[j] = self.readers[i],
            Op::AttachReadOnly(i, start) => {
                self.readers[i] = reader(self.join(start), self.published, false);
                return Outcome::Attached(Ok(self.capacity));
            }
            Op::RestartWriter => {
                self.writer_intent = self.published;
                return Outcome::Attached(Ok(self.capacity));
            }
            Op::Sleep {
                reader,
                spins,
                sleeps,
                publish,
            } => return self.sleep(reader, spins, sleeps, publish),
            Op::WakeNeeded => return Outcome::WakeNeeded(self.wake()),
            Op::Recreate => unreachable!("the caller re-creates the ring"),
        }
        Outcome::Done
    }

    fn wake(&mut self) -> bool {
        let wake = self.announced;
        if wake {
            self.announced = false;
            self.wakes = self.wakes.wrapping_add(1);
        }
        wake
    }

    fn sleep(&mut self, i: usize, spins: u32, sleeps: u32, publish: bool) -> Outcome<T> {
        let waited = |got: Result<T, RecvError>| match got {
            Ok(value) => Ok(value),
            Err(RecvError::Lagged { missed }) => Err(BlockingError::Lagged { missed }),
            Err(_) => Err(BlockingError::Corrupted),
        };
        if !self.readers[i].may_sleep {
            return Outcome::Slept {
                got: Err(BlockingError::ReadOnly),
                sleeps: 0,
            };
        }
        for _ in 0..=spins {
            match self.recv(i) {
                Err(RecvError::Empty) => {}
                got => {
                    return Outcome::Slept {
                        got: waited(got),
                        sleeps: 0,
                    };
                }
            }
        }
        let mut calls = 0;
        loop {
            self.announced = true;
            match self.recv(i) {
                Err(RecvError::Empty) => {}
                got => {
                    return Outcome::Slept {
                        got: waited(got),
                        sleeps: calls,
                    };
                }
            }
            calls += 1;
            if publish && calls == 1 {
                self.publish();
                self.wake();
            } else if calls > sleeps {
                return Outcome::Slept {
                    got: Err(BlockingError::Sleep(())),
                    sleeps: calls,
                };
            }
        }
    }

    /// Checks every handle's state against the model (`readers` in the
    /// model's order).
    ///
    /// # Panics
    ///
    /// On any disagreement.
    pub fn check(&self, writer: &Writer<'_, T>, readers: &[Reader<'_, T>]) {
        assert_eq!(readers.len(), self.readers.len(), "readers");
        assert_eq!(writer.published(), self.published as u32, "writer position");
        assert_eq!(writer.doorbell().epoch(), self.wakes, "wake-ups");
        assert_eq!(writer.capacity(), self.capacity as usize);
        assert_eq!(writer.retained() as u64, self.retained(), "retained");
        for (i, (reader, m)) in readers.iter().zip(&self.readers).enumerate() {
            assert_eq!(reader.position(), m.cursor as u32, "reader {i} position");
            assert_eq!(reader.published(), self.published as u32, "published");
            assert_eq!(
                reader.pending(),
                (self.published - m.cursor) as u32,
                "pending"
            );
            assert_eq!(reader.may_sleep(), m.may_sleep, "reader {i} may sleep");
            assert_eq!(reader.wakes(), self.wakes, "reader {i} wake-ups");
            assert_eq!(reader.retained() as u64, self.retained(), "retained");
            assert_eq!(
                reader.capacity(),
                self.capacity as usize,
                "reader {i} capacity"
            );
        }
    }
}

/// The handles under test.
pub struct Handles<'m, T, const N: usize> {
    /// The writer.
    pub writer: Writer<'m, T>,
    /// The readers, in the model's order.
    pub readers: [Reader<'m, T>; N],
    /// Messages published (absolute): the next message is `T::make(made)`.
    pub made: u64,
}

impl<'m, T: Elem, const N: usize> Handles<'m, T, N> {
    /// A new writer (continuing after `made` messages) and readers of the
    /// ring, joined after it at the oldest.
    ///
    /// # Panics
    ///
    /// If the ring's `published` is not `made`'s low 32 bits.
    pub fn new(ring: Broadcast<'m, T>, made: u64) -> Self {
        let writer = ring.into_writer();
        assert_eq!(u64::from(writer.published()), made % (1 << 32));
        Self {
            readers: core::array::from_fn(|_| writer.reader(Start::Oldest)),
            writer,
            made,
        }
    }

    fn publish(&mut self) {
        self.writer.publish(&T::make(self.made));
        self.made += 1;
    }

    /// Runs `op` (not `Recreate`, which the caller does); `region` maps the
    /// ring again, for re-attachments.
    ///
    /// # Panics
    ///
    /// On `Recreate`, a batch receive that reports more than it was given
    /// room for (or nothing, given room), or a sleep after the sleeper gave
    /// up.
    pub fn perform(&mut self, op: Op, region: impl Fn() -> Region<'m>) -> Outcome<T> {
        match op {
            Op::Publish => self.publish(),
            Op::PublishSlice(len) => {
                let values: Vec<T> = (0..len as u64).map(|k| T::make(self.made + k)).collect();
                self.writer.publish_slice(&values);
                self.made += len as u64;
            }
            Op::Recv(i) => return Outcome::Received(self.readers[i].try_recv()),
            Op::RecvSlice(i, len) => {
                let mut out = vec![T::make(0); len];
                let got = self.readers[i].recv_slice(&mut out).map(|count| {
                    assert!(count <= len, "received {count} into {len}");
                    assert!(count > 0 || len == 0, "Ok(0) for a slice of {len}");
                    out.truncate(count);
                    out
                });
                return Outcome::Sliced(got);
            }
            Op::Join(i, start) => self.readers[i] = self.writer.reader(start),
            Op::OnLag(i, start) => self.readers[i] = self.readers[i].clone().on_lag(start),
            Op::Clone(i, j) => self.readers[j] = self.readers[i].clone(),
            Op::AttachReadOnly(i, start) => {
                let region = ReadRegion::from(region());
                let attached = Broadcast::<T>::attach_reader(region, start);
                let found = attached
                    .as_ref()
                    .map(|r| r.capacity() as u32)
                    .map_err(|e| *e);
                if let Ok(reader) = attached {
                    self.readers[i] = reader;
                }
                return Outcome::Attached(found);
            }
            Op::RestartWriter => {
                let attached = Broadcast::<T>::attach(region());
                let found = attached
                    .as_ref()
                    .map(|r| r.capacity() as u32)
                    .map_err(|e| *e);
                if let Ok(ring) = attached {
                    self.writer = ring.into_writer();
                }
                return Outcome::Attached(found);
            }
            Op::Sleep {
                reader,
                spins,
                sleeps,
                publish,
            } => {
                let mut calls = 0;
                let (writer, made) = (&mut self.writer, &mut self.made);
                let got = self.readers[reader].recv_or_sleep(spins, |event, epoch| {
                    calls += 1;
                    assert!(calls <= MAX_SLEEPS + 1, "slept after the sleeper gave up");
                    let _ = (event, epoch);
                    if publish && calls == 1 {
                        writer.publish(&T::make(*made));
                        *made += 1;
                        let _ = writer.wake_needed();
                        return Ok(());
                    }
                    if calls > sleeps { Err(()) } else { Ok(()) }
                });
                return Outcome::Slept { got, sleeps: calls };
            }
            Op::WakeNeeded => return Outcome::WakeNeeded(self.writer.wake_needed()),
            Op::Recreate => unreachable!("the caller re-creates the ring"),
        }
        Outcome::Done
    }
}

/// What an honest writer's ring promises whatever the model says: never
/// `Corrupted`, and no lap of a reader at most `retained` messages behind
/// (`pending` before the operation).
///
/// # Panics
///
/// On a broken promise.
pub fn honest_check<T>(op: Op, got: &Outcome<T>, pending: &[u32], retained: usize) {
    let (reader, lagged) = match (op, got) {
        (Op::Recv(i), Outcome::Received(Err(err)))
        | (Op::RecvSlice(i, _), Outcome::Sliced(Err(err))) => {
            assert_ne!(
                *err,
                RecvError::Corrupted,
                "an honest writer's ring corrupt"
            );
            (i, matches!(err, RecvError::Lagged { .. }))
        }
        (Op::Sleep { reader, .. }, Outcome::Slept { got: Err(err), .. }) => {
            assert_ne!(
                *err,
                BlockingError::Corrupted,
                "an honest writer's ring corrupt"
            );
            (reader, matches!(err, BlockingError::Lagged { .. }))
        }
        _ => return,
    };
    assert!(
        !lagged || pending[reader] as usize > retained,
        "reader {reader} lapped {} behind, retained {retained}",
        pending[reader]
    );
}
