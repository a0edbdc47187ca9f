//! The record ring's model: a `VecDeque` of the records in flight and the
//! word positions the documented rules give (a header word and
//! `ceil(len / 8)` payload words per record, padding to the end when a
//! record would straddle it, one word kept free after the last record for
//! the marker, records of at most `(capacity / 2 - 1) * 8` bytes), and the
//! consumer's event.

use std::collections::VecDeque;

use ipc_primitives::bytes::{Consumer, PopError, Producer, ReserveError, max_record};

/// Byte offset of the first data word (the `# Layout` table of
/// `ipc_primitives::bytes`).
pub const DATA: usize = 512;

/// Whether a write of `len` bytes at `offset` fits a grant of `reserved`.
pub fn write_fits(offset: usize, len: usize, reserved: usize) -> bool {
    offset.checked_add(len).is_some_and(|end| end <= reserved)
}

/// What the ring should hold and report.
#[derive(Debug)]
pub struct Model {
    /// Capacity in words.
    pub capacity: u32,
    /// The shared `head` (words published, wrapping).
    pub head: u32,
    /// The shared `tail` (words consumed, wrapping).
    pub tail: u32,
    /// Records in flight, oldest first, with the words each takes (its
    /// padding included).
    pub queue: VecDeque<(Vec<u8>, u32)>,
    /// Records made so far: each has distinct bytes.
    pub made: u32,
    /// The consumer is announced on the event.
    pub announced: bool,
    /// The event's epoch.
    pub epoch: u32,
}

impl Model {
    /// An empty ring of `capacity` words whose positions start at `start`.
    pub fn new(capacity: u32, start: u32) -> Self {
        Self {
            capacity,
            head: start,
            tail: start,
            queue: VecDeque::new(),
            made: 0,
            announced: false,
            epoch: 0,
        }
    }

    /// The largest record.
    pub fn max(&self) -> usize {
        max_record(self.capacity)
    }

    /// A record of `len` bytes never made before.
    pub fn fresh(&mut self, len: usize) -> Vec<u8> {
        self.made = self.made.wrapping_add(1);
        super::record(self.made, len)
    }

    /// Words of padding a record of `len` bytes needs before it now.
    pub fn padding(&self, len: usize) -> u32 {
        let words = 1 + len.div_ceil(8) as u32;
        let to_end = self.capacity - self.head % self.capacity;
        if words > to_end { to_end } else { 0 }
    }

    /// What `reserve(len)` must return.
    pub fn reserve(&self, len: usize) -> Result<(), ReserveError> {
        let max = self.max();
        if len > max {
            return Err(ReserveError::TooLarge { len, max });
        }
        // Padding, header and payload, and the word after them for the
        // marker.
        let need = self.padding(len) + 1 + len.div_ceil(8) as u32 + 1;
        if need > self.capacity - self.used() {
            return Err(ReserveError::Full);
        }
        Ok(())
    }

    /// Byte offset in the region of the payload of a grant of `reserved`
    /// bytes made now.
    pub fn payload_offset(&self, reserved: usize) -> usize {
        let start = self.head.wrapping_add(self.padding(reserved));
        DATA + ((start % self.capacity) as usize + 1) * 8
    }

    /// Records `record`, sent with room reserved for `reserved` bytes.
    pub fn commit(&mut self, record: Vec<u8>, reserved: usize) {
        let words = self.padding(reserved) + 1 + record.len().div_ceil(8) as u32;
        self.head = self.head.wrapping_add(words);
        self.queue.push_back((record, words));
    }

    /// The oldest record, popped.
    pub fn pop(&mut self) -> Option<Vec<u8>> {
        let (record, words) = self.queue.pop_front()?;
        self.tail = self.tail.wrapping_add(words);
        Some(record)
    }

    /// What a pop into `room` bytes must return, popping the model if it
    /// succeeds.
    pub fn expect_pop(&mut self, room: usize) -> Result<Vec<u8>, PopError> {
        match self.queue.front() {
            None => Err(PopError::Empty),
            Some((record, _)) if record.len() > room => Err(PopError::TooSmall {
                needed: record.len(),
            }),
            Some(_) => Ok(self.pop().expect("a record")),
        }
    }

    /// Words published and not consumed.
    pub fn used(&self) -> u32 {
        self.head.wrapping_sub(self.tail)
    }
}

/// Checks everything both handles report against the model.
///
/// # Panics
///
/// On any disagreement.
pub fn check(tx: &Producer<'_>, rx: &Consumer<'_>, model: &Model) {
    assert_eq!(rx.used_words(), model.used() as usize, "used words");
    assert_eq!(rx.is_empty(), model.queue.is_empty(), "is_empty");
    assert_eq!(tx.capacity(), model.capacity as usize, "producer capacity");
    assert_eq!(rx.capacity(), model.capacity as usize, "consumer capacity");
    assert_eq!(tx.max_record(), model.max(), "producer max_record");
    assert_eq!(rx.max_record(), model.max(), "consumer max_record");
    assert_eq!(tx.event().epoch(), model.epoch, "event epoch");
}
