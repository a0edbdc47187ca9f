//! A side's closed word: how a handle closes its side of the ring, and only
//! the side it opened.

use crate::sync::{AtomicU32, Ordering};

/// One handle's hold on its side's word (`producer_closed` or
/// `consumer_closed`). Bit 0 is set once the side is closed; the bits above
/// number the handles that opened it. A handle closes the side only while its
/// number is still the word's, so one replaced by a newer handle (assigned
/// over, `tx = ring.split().0`, or left in a process that lost the side)
/// cannot close its successor's side when it is dropped.
pub(super) struct Side<'a> {
    word: &'a AtomicU32,
    opened: u32,
}

impl<'a> Side<'a> {
    /// Opens the side under a new number (even: open).
    pub(super) fn open(word: &'a AtomicU32) -> Self {
        // Relaxed: only this side's handle writes the word, and opening
        // publishes nothing.
        let opened = (word.load(Ordering::Relaxed) | 1).wrapping_add(1);
        word.store(opened, Ordering::Relaxed);
        Self { word, opened }
    }

    /// Closes the side, unless a later handle opened it since. The check and
    /// the store are two steps: two live handles on one side, which the
    /// ring's contract already rules out, could close a side that a third
    /// just opened.
    pub(super) fn close(&self) {
        // Relaxed: reads this side's own last write (this handle's, or a
        // newer one's in this thread or a process that took over).
        if self.word.load(Ordering::Relaxed) == self.opened {
            // Release: pairs with `is_closed`'s `Acquire`, so everything this
            // side did before (elements published, slots released) is
            // visible to a peer that sees the side closed.
            self.word.store(self.opened | 1, Ordering::Release);
        }
    }
}

/// Whether the side whose word this is was closed by the handle that last
/// opened it.
pub(super) fn is_closed(word: &AtomicU32) -> bool {
    word.load(Ordering::Acquire) & 1 != 0
}
