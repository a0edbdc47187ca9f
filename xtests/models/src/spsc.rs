//! The SPSC ring's model: a `VecDeque` of the elements in flight, the shared
//! counters, what each slot holds, and the consumer's event.

use std::collections::VecDeque;

use ipc_primitives::spsc::{Consumer, Producer};

use super::Elem;

/// Whether `write_bytes(offset, len)` fits in a `size`-byte element.
pub fn write_fits(offset: usize, len: usize, size: usize) -> bool {
    offset.checked_add(len).is_some_and(|end| end <= size)
}

/// What the ring should hold and report.
#[derive(Debug)]
pub struct Model<T> {
    /// Elements waiting, oldest first.
    pub queue: VecDeque<T>,
    /// Number of slots.
    pub capacity: usize,
    /// Values handed out so far; `T::make(0)` is never handed out.
    pub made: u64,
    /// The shared `head` counter (elements ever pushed, wrapping).
    pub head: u32,
    /// The shared `tail` counter (elements ever popped, wrapping).
    pub tail: u32,
    /// What each slot holds: grants overwrite only what they write.
    pub slots: Vec<T>,
    /// The consumer is announced on the event.
    pub announced: bool,
    /// The event's epoch.
    pub epoch: u32,
}

impl<T: Elem> Model<T> {
    /// An empty ring whose counters start at `start`, with zeroed slots.
    pub fn new(capacity: usize, start: u32) -> Self {
        Self {
            queue: VecDeque::new(),
            capacity,
            made: 0,
            head: start,
            tail: start,
            slots: vec![T::from_raw(&[]); capacity],
            announced: false,
            epoch: 0,
        }
    }

    /// A value never handed out before.
    pub fn fresh(&mut self) -> T {
        self.made += 1;
        T::make(self.made)
    }

    /// Free slots.
    pub fn free(&self) -> usize {
        self.capacity - self.queue.len()
    }

    /// The slot holding counter value `counter`.
    pub fn slot_index(&self, counter: u32) -> usize {
        counter as usize & (self.capacity - 1)
    }

    /// Records `value` pushed into the next slot.
    pub fn push(&mut self, value: T) {
        let index = self.slot_index(self.head);
        self.slots[index] = value;
        self.queue.push_back(value);
        self.head = self.head.wrapping_add(1);
    }

    /// The slot the next push writes.
    pub fn next_slot(&mut self) -> &mut T {
        let index = self.slot_index(self.head);
        &mut self.slots[index]
    }

    /// Records a pop, returning the element.
    pub fn pop(&mut self) -> Option<T> {
        let value = self.queue.pop_front()?;
        self.tail = self.tail.wrapping_add(1);
        Some(value)
    }
}

/// Checks everything both handles report against the model.
///
/// # Panics
///
/// On any disagreement.
pub fn check<T: Elem>(tx: &Producer<'_, T>, rx: &Consumer<'_, T>, model: &Model<T>) {
    let len = model.queue.len();
    assert_eq!(tx.len(), len, "producer len");
    assert_eq!(rx.len(), len, "consumer len");
    assert_eq!(tx.is_empty(), len == 0, "producer is_empty");
    assert_eq!(rx.is_empty(), len == 0, "consumer is_empty");
    assert_eq!(tx.free_slots(), model.free(), "free_slots");
    assert_eq!(tx.capacity() as usize, model.capacity, "producer capacity");
    assert_eq!(rx.capacity() as usize, model.capacity, "consumer capacity");
    assert_eq!(tx.peer_event().epoch(), model.epoch, "event epoch");
}
