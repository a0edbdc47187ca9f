//! The reading side of a broadcast ring.

use core::fmt;

use super::{BlockingError, RecvError, Ring, Start};
use crate::event::Event;
use crate::payload::{self, Pod};
use crate::sync::{self, AtomicU32, Ordering, fence};

/// Receives every message the writer publishes, in order, from its own
/// cursor. Any number of readers, in any number of processes; `Send`, `Sync`
/// and `Clone` (a clone is a second reader at the same position).
///
/// Receiving copies the message out; nothing hands out a reference into
/// memory the writer rewrites.
///
/// Aligned to its own 128-byte line: it writes its cursor on every receive,
/// and two readers sharing a line (kept in one struct, say) would bounce it
/// between the cores they run on.
#[repr(align(128))]
pub struct Reader<'a, T, K = ()> {
    ring: Ring<'a, T>,
    /// The position of the next message to receive, wrapping; this reader's
    /// own, never stored in shared memory.
    cursor: u32,
    /// The last `published` loaded: with counted slots, messages up to it
    /// are received without loading `published` again.
    seen: u32,
    /// Where to resume after a lap.
    on_lag: Start,
    /// Whether the memory is writable, so that the reader may announce itself
    /// on the doorbell (a reader from [`Broadcast::attach_reader`] never
    /// writes).
    ///
    /// [`Broadcast::attach_reader`]: super::Broadcast::attach_reader
    may_sleep: bool,
    /// Keeps the ring's memory alive (see [`Broadcast`](super::Broadcast)).
    keeper: K,
}

impl<T, K: Clone> Clone for Reader<'_, T, K> {
    fn clone(&self) -> Self {
        Self {
            ring: self.ring,
            cursor: self.cursor,
            seen: self.seen,
            on_lag: self.on_lag,
            may_sleep: self.may_sleep,
            keeper: self.keeper.clone(),
        }
    }
}

impl<T, K> fmt::Debug for Reader<'_, T, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reader")
            .field("cursor", &self.cursor)
            .field("on_lag", &self.on_lag)
            .field("may_sleep", &self.may_sleep)
            .finish_non_exhaustive()
    }
}

impl<'a, T: Pod, K> Reader<'a, T, K> {
    pub(super) fn new(ring: Ring<'a, T>, start: Start, may_sleep: bool, keeper: K) -> Self {
        let published = ring.published();
        let mut reader = Self {
            ring,
            cursor: published,
            seen: published,
            on_lag: Start::Oldest,
            may_sleep,
            keeper,
        };
        reader.cursor = reader.join(start, published);
        reader
    }

    /// Whether the slot of `position` holds message `position` whole: by its
    /// stamp, or, without stamps, by `published` (not wrapped to below it).
    #[inline]
    fn holds(&self, position: u32, published: u32) -> bool {
        match self.ring.stamp(position) {
            Some(stamp) => stamp_holds(stamp, position),
            None => position < published,
        }
    }

    /// The cursor of a reader joining at `start`, `published` being what
    /// the ring says now.
    fn join(&self, start: Start, published: u32) -> u32 {
        match start {
            Start::Next => published,
            // The newest, if one was ever published: its stamp says so (a
            // fresh ring's slots hold stamps no message has).
            Start::Newest => {
                let newest = published.wrapping_sub(1);
                if self.holds(newest, published) {
                    newest
                } else {
                    published
                }
            }
            // The oldest whole message, unless fewer were ever published:
            // before that many messages of a ring, there is nothing back
            // there (a stamp, or `published`, says so) and the oldest is
            // message 0.
            Start::Oldest => {
                let oldest = self.ring.oldest(published);
                if published.wrapping_sub(oldest) <= published || self.holds(oldest, published) {
                    oldest
                } else {
                    0
                }
            }
        }
    }

    /// Where to resume after a lap, which [`try_recv`](Self::try_recv)
    /// reports as [`RecvError::Lagged`]: [`Start::Oldest`] (the default: the
    /// oldest message still whole), [`Start::Newest`] (skip to the latest),
    /// or [`Start::Next`] (skip everything published so far). The `missed`
    /// count includes what the choice skips.
    #[must_use]
    pub fn on_lag(mut self, resume: Start) -> Self {
        self.on_lag = resume;
        self
    }

    /// Receives the next message, if one was published.
    ///
    /// Bounded: at most two looks at the slot and two at `published` (with
    /// stamps), or one at `published` and two at `intent` (without; see
    /// [Protocol](super#protocol)).
    ///
    /// # Errors
    /// [`RecvError::Empty`] if nothing new was published;
    /// [`RecvError::Lagged`] if the writer lapped this reader, which then
    /// resumes as [`on_lag`](Self::on_lag) says (the next call receives);
    /// [`RecvError::Corrupted`] if the writer broke the protocol (see
    /// [Protocol](super#protocol)), after which the reader resumes after the
    /// newest message.
    #[inline]
    pub fn try_recv(&mut self) -> Result<T, RecvError> {
        let received = if self.ring.stamped() {
            self.next_stamped()
        } else {
            self.counted().and_then(|_| {
                let value = payload::load(self.ring.message(self.cursor));
                self.validate(1).map(|()| value)
            })
        };
        received.map_err(|miss| self.settle(miss))
    }

    /// Receives messages into `out`, in order, as many as were published
    /// and fit; returns how many (at least 1, unless `out` is empty).
    ///
    /// Without stamps (elements over 56 bytes) the whole batch costs one look
    /// at `published` and one at `intent`, however long it is: what a reader
    /// that drains a busy ring should call. With stamps it receives message
    /// by message, as [`try_recv`](Self::try_recv) does.
    ///
    /// ```
    /// use ipc_primitives::broadcast::{Broadcast, RecvError, Start};
    /// use ipc_primitives::{Line, Region};
    /// use zerocopy::IntoBytes;
    ///
    /// type Quote = [u64; 8]; // 64 bytes: counted slots
    /// let len = Broadcast::<Quote>::required_size(64).ok_or("ring too large")?;
    /// let mut memory = vec![Line::ZERO; Line::count_for(len)];
    /// let mut writer = Broadcast::<Quote>::create(Region::new(memory.as_mut_bytes()), 64)?
    ///     .into_writer();
    /// let mut reader = writer.reader(Start::Oldest);
    /// for tick in 0..10 {
    ///     writer.publish(&[tick; 8]);
    /// }
    /// let mut batch = [[0; 8]; 8];
    /// assert_eq!(reader.recv_slice(&mut batch), Ok(8));
    /// assert_eq!(reader.recv_slice(&mut batch), Ok(2));
    /// assert_eq!(batch[1], [9; 8]);
    /// assert_eq!(reader.recv_slice(&mut batch), Err(RecvError::Empty));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// As for [`try_recv`](Self::try_recv), when no message could be
    /// received. An error after some messages were received is returned by
    /// the next call: nothing is skipped silently.
    pub fn recv_slice(&mut self, out: &mut [T]) -> Result<usize, RecvError> {
        if out.is_empty() {
            return Ok(0);
        }
        let received = if self.ring.stamped() {
            self.slice_stamped(out)
        } else {
            self.counted().and_then(|ahead| {
                let count = out.len().min(ahead as usize);
                let mut position = self.cursor;
                for value in &mut out[..count] {
                    payload::load_into(self.ring.message(position), value);
                    position = position.wrapping_add(1);
                }
                // In range: `count` is at most `ahead`, a `u32`.
                self.validate(count as u32).map(|()| count)
            })
        };
        received.map_err(|miss| self.settle(miss))
    }

    /// Stamped slots: receives into `out` message by message, up to the
    /// first miss, which is returned only if nothing was received.
    fn slice_stamped(&mut self, out: &mut [T]) -> Result<usize, Miss> {
        for (count, value) in out.iter_mut().enumerate() {
            match self.next_stamped() {
                Ok(received) => *value = received,
                Err(miss) if count == 0 => return Err(miss),
                Err(_) => return Ok(count),
            }
        }
        Ok(out.len())
    }

    /// Stamped slots: the message at the cursor, which then moves past it.
    #[inline]
    fn next_stamped(&mut self) -> Result<T, Miss> {
        let cursor = self.cursor;
        let whole = cursor.wrapping_add(1);
        let mut last_pass = false;
        loop {
            let stamp = self.ring.stamp(cursor);
            if let Some(stamp) = stamp.filter(|stamp| stamp_holds(stamp, cursor)) {
                let value = payload::load(self.ring.message(cursor));
                // Orders the copy before the re-check (pairs with the writer's
                // `Release` fence after its busy stamp): if the copy saw any
                // word of a later message, the stamp reads busy or later.
                fence(Ordering::Acquire);
                if stamp.load(Ordering::Relaxed) == whole {
                    self.cursor = whole;
                    return Ok(value);
                }
                // Torn. With the writer's `Release` busy stamp, `published`
                // below then shows the lap.
                fence(Ordering::Acquire);
            }
            let published = self.ring.published();
            let ahead = published.wrapping_sub(cursor);
            // One behind is nothing new too: the writer stores a message's
            // stamp before `published`, so a reader that received the latest
            // message through its stamp may still load the `published` of
            // before it (never older: it saw that one stored).
            if ahead == 0 || ahead == u32::MAX {
                return Err(Miss::Empty);
            }
            judge(ahead, self.ring.capacity(), published)?;
            if last_pass {
                // Published and not being rewritten, yet not whole: no
                // correct writer leaves a slot so.
                return Err(Miss::Corrupted { published });
            }
            // Published and not being rewritten: the stamp load above saw an
            // older value. `published` was stored after the stamp, and its
            // load was fenced, so the next look sees the whole stamp or a
            // later one.
            last_pass = true;
        }
    }

    /// Counted slots: how many messages after the cursor are published (at
    /// least 1), from `seen`, loading `published` into it only when `seen`
    /// counts none.
    #[inline]
    fn counted(&mut self) -> Result<u32, Miss> {
        let cap = self.ring.capacity();
        let mut ahead = self.seen.wrapping_sub(self.cursor);
        // None known, or a lap: look again (a lap is then judged on the
        // newest `published`).
        if ahead == 0 || ahead >= cap {
            self.seen = self.ring.published();
            ahead = self.seen.wrapping_sub(self.cursor);
            if ahead == 0 {
                return Err(Miss::Empty);
            }
        }
        judge(ahead, cap, self.seen)?;
        Ok(ahead)
    }

    /// Counted slots: whether the `count` messages just copied from the
    /// cursor on are whole, by one look at `intent`; if so the cursor moves
    /// past them.
    #[inline]
    fn validate(&mut self, count: u32) -> Result<(), Miss> {
        // Orders the copies before the `intent` load (pairs with the writer's
        // `Release` fence after its `intent` store): if a copy saw any word
        // of a later message, `intent` counts that message.
        fence(Ordering::Acquire);
        let begun = self
            .ring
            .intent
            .load(Ordering::Relaxed)
            .wrapping_sub(self.cursor);
        let cap = self.ring.capacity();
        if (count..=cap).contains(&begun) {
            self.cursor = self.cursor.wrapping_add(count);
            return Ok(());
        }
        // Overwritten (or about to be: announced), or a corrupt `intent`.
        // After this fence (pairs with the writer's `Release` store of
        // `intent`) `published` is at least `intent - announce`.
        fence(Ordering::Acquire);
        let published = self.ring.published();
        self.seen = published;
        let ahead = published.wrapping_sub(self.cursor);
        // An honest writer announces at most `announce` messages past
        // `published` (it may have published more since `intent` was
        // loaded).
        let shown = ahead <= 1 << 31 && ahead + self.ring.announce() >= begun;
        if begun > cap && begun <= 1 << 31 && shown {
            Err(Miss::Lapped { published })
        } else {
            Err(Miss::Corrupted { published })
        }
    }

    /// Moves the cursor past what a look found instead of a message, and
    /// says what it was.
    fn settle(&mut self, miss: Miss) -> RecvError {
        match miss {
            Miss::Empty => RecvError::Empty,
            Miss::Lapped { published } => self.lapped(published),
            Miss::Corrupted { published } => {
                self.cursor = published;
                self.seen = published;
                RecvError::Corrupted
            }
        }
    }

    /// Moves the cursor past a lap (`published` at least a capacity ahead)
    /// and says how many messages that skips.
    fn lapped(&mut self, published: u32) -> RecvError {
        let resume = match self.on_lag {
            Start::Oldest => self.ring.oldest(published),
            Start::Newest => published.wrapping_sub(1),
            Start::Next => published,
        };
        let missed = resume.wrapping_sub(self.cursor);
        self.seen = published;
        if missed == 0 || missed > 1 << 31 {
            // Only from a corrupt `intent` (an honest one puts the oldest
            // whole message past a lapped cursor).
            self.cursor = published;
            return RecvError::Corrupted;
        }
        self.cursor = resume;
        RecvError::Lagged {
            missed: u64::from(missed),
        }
    }

    /// Receives the next message, first looking once and retrying `spins`
    /// times, then sleeping through `sleep` until one arrives. A message
    /// already there is received without announcing anything (no `SeqCst`
    /// fence).
    ///
    /// `sleep(doorbell, epoch)` should return when woken, when the doorbell's
    /// epoch is no longer `epoch`, or spuriously (all are fine: the ring is
    /// checked again), and `Err` to give up, e.g. on a timeout. The writer
    /// must call [`Writer::wake_needed`](super::Writer::wake_needed) after
    /// publishing and wake every sleeper when it says so. The announcement
    /// is never withdrawn (see [Sleeping](super#sleeping)).
    ///
    /// # Errors
    /// [`BlockingError::ReadOnly`] at once for a reader attached through a
    /// read-only region; [`BlockingError::Lagged`] and [`BlockingError::Corrupted`]
    /// as for [`try_recv`](Self::try_recv); [`BlockingError::Sleep`] with what
    /// `sleep` returned.
    pub fn recv_or_sleep<E>(
        &mut self,
        spins: u32,
        mut sleep: impl FnMut(&Event, u32) -> Result<(), E>,
    ) -> Result<T, BlockingError<E>> {
        if !self.may_sleep {
            return Err(BlockingError::ReadOnly);
        }
        for _ in 0..=spins {
            match self.try_recv() {
                Err(RecvError::Empty) => sync::spin_loop(),
                other => return other.map_err(waiting),
            }
        }
        let doorbell = self.ring.doorbell;
        loop {
            let epoch = doorbell.announce();
            match self.try_recv() {
                Err(RecvError::Empty) => sleep(doorbell, epoch).map_err(BlockingError::Sleep)?,
                other => return other.map_err(waiting),
            }
        }
    }

    /// The position of the next message to receive, wrapping: messages
    /// received and skipped since the ring was created, if this reader
    /// joined at the start.
    pub fn position(&self) -> u32 {
        self.cursor
    }

    /// Messages published so far, wrapping. Reads only.
    pub fn published(&self) -> u32 {
        self.ring.published()
    }

    /// Messages published and not yet received, wrapping; more than the
    /// capacity means a lap is coming. Reads only.
    pub fn pending(&self) -> u32 {
        self.ring.published().wrapping_sub(self.cursor)
    }

    /// Wake-ups the writer has sent, wrapping (the doorbell's epoch). Reads
    /// only.
    pub fn wakes(&self) -> u32 {
        self.ring.wakes()
    }

    /// Whether this reader may sleep: false for one attached through a
    /// read-only region.
    pub fn may_sleep(&self) -> bool {
        self.may_sleep
    }

    /// Number of slots.
    pub fn capacity(&self) -> usize {
        self.ring.capacity() as usize
    }

    /// How many of the latest messages the ring always keeps whole: a
    /// reader at most this far behind is never lapped (see
    /// [Joining and losing messages](super#joining-and-losing-messages)).
    pub fn retained(&self) -> usize {
        self.ring.retained() as usize
    }

    /// What keeps the ring's memory alive: `()` for borrowed memory.
    pub fn keeper(&self) -> &K {
        &self.keeper
    }
}

/// Whether `stamp` says its slot holds message `position` whole (loaded
/// relaxed, then an `Acquire` fence: the payload stores of a whole message
/// are then visible).
#[inline]
fn stamp_holds(stamp: &AtomicU32, position: u32) -> bool {
    let stamp = stamp.load(Ordering::Relaxed);
    fence(Ordering::Acquire);
    stamp == position.wrapping_add(1)
}

/// What a look found instead of a message, before the reader moves past it
/// ([`Reader::settle`]): a batch that received some messages leaves a miss
/// after them for the next call to find again.
enum Miss {
    /// Nothing new.
    Empty,
    /// Lapped: the message at the cursor is overwritten, or announced to
    /// be; `published` is what the ring said then.
    Lapped { published: u32 },
    /// The writer broke the protocol; the reader resumes at `published`.
    Corrupted { published: u32 },
}

/// Judges `published`, `ahead` of the cursor (not 0): a lap from `capacity`
/// ahead; behind the cursor, or more than 2^31 ahead, corrupt.
#[inline]
fn judge(ahead: u32, capacity: u32, published: u32) -> Result<(), Miss> {
    if ahead > 1 << 31 {
        // Behind the reader: no correct writer goes backwards.
        Err(Miss::Corrupted { published })
    } else if ahead >= capacity {
        Err(Miss::Lapped { published })
    } else {
        Ok(())
    }
}

/// A receive error as a waiting receive reports it (never `Empty`, on which
/// it keeps waiting).
fn waiting<E>(err: RecvError) -> BlockingError<E> {
    match err {
        RecvError::Lagged { missed } => BlockingError::Lagged { missed },
        RecvError::Empty | RecvError::Corrupted => BlockingError::Corrupted,
    }
}
