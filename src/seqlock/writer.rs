//! The writing side of a seqlock.

use core::{cell::Cell, fmt, marker::PhantomData};

use super::{Lock, Version};
use crate::payload::{self, Pod};
use crate::sync::{Ordering, WordInt, fence};

/// Overwrites the value. One per seqlock; `Send` but not `Sync` or `Clone`.
pub struct Writer<'a, T, K = ()> {
    lock: Lock<'a, T>,
    /// The sequence this writer last published: even, the authoritative copy.
    seq: WordInt,
    /// Keeps the lock's memory alive (see [`SeqLock`](super::SeqLock)).
    keeper: K,
    _not_sync: PhantomData<Cell<()>>,
}

impl<T, K> fmt::Debug for Writer<'_, T, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Writer")
            .field("seq", &self.seq)
            .finish_non_exhaustive()
    }
}

impl<'a, T: Pod, K> Writer<'a, T, K> {
    pub(super) fn new(lock: Lock<'a, T>, keeper: K) -> Self {
        // Pairs with the last writer's `Release` publication: continue after it.
        let seq = lock.seq.load(Ordering::Acquire);
        // Odd means a writer died mid-write: continue from the next even value.
        Self {
            lock,
            seq: seq.wrapping_add(seq & 1),
            keeper,
            _not_sync: PhantomData,
        }
    }

    /// Publishes `value`. Never waits for readers.
    #[inline]
    pub fn write(&mut self, value: &T) {
        let seq = self.lock.seq;
        seq.store(self.seq.wrapping_add(1), Ordering::Relaxed);
        // Orders the odd mark before the data stores: a reader whose copy saw
        // any of them re-reads the sequence as odd or later (pairs with the
        // reader's `Acquire` fence). Without it the data stores could become
        // visible first and a reader would accept a torn copy.
        fence(Ordering::Release);
        payload::store(self.lock.data, value);
        self.seq = self.seq.wrapping_add(2);
        // Publishes the data (pairs with the reader's first `Acquire` load).
        seq.store(self.seq, Ordering::Release);
    }

    /// Writes completed through this lock (the published sequence halved).
    pub fn version(&self) -> Version {
        self.seq / 2
    }

    /// What keeps the lock's memory alive: `()` for borrowed memory.
    pub fn keeper(&self) -> &K {
        &self.keeper
    }
}
