//! The reading side of a seqlock.

use core::fmt;

use super::{Lock, Patience, ReadError, Retry, Spins, Version};
use crate::payload::{self, Pod};
use crate::sync::{Ordering, fence};

/// Copies the value out. `Send` and `Sync`, and `Clone` (`Copy` over
/// borrowed memory): share it freely.
pub struct Reader<'a, T, K = ()> {
    lock: Lock<'a, T>,
    /// Keeps the lock's memory alive (see [`SeqLock`](super::SeqLock)).
    keeper: K,
}

impl<T, K: Clone> Clone for Reader<'_, T, K> {
    fn clone(&self) -> Self {
        Self {
            lock: self.lock,
            keeper: self.keeper.clone(),
        }
    }
}

impl<T, K: Copy> Copy for Reader<'_, T, K> {}

impl<T, K> fmt::Debug for Reader<'_, T, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reader").finish_non_exhaustive()
    }
}

impl<'a, T: Pod, K> Reader<'a, T, K> {
    pub(super) fn new(lock: Lock<'a, T>, keeper: K) -> Self {
        Self { lock, keeper }
    }

    /// What keeps the lock's memory alive: `()` for borrowed memory.
    pub fn keeper(&self) -> &K {
        &self.keeper
    }

    /// Reads the value, waiting up to a second ([`Budget::default`]) while the
    /// writer is mid-write.
    ///
    /// # Errors
    /// See [How long a reader waits](super#how-long-a-reader-waits).
    ///
    /// [`Budget::default`]: super::Budget
    #[cfg(any(test, feature = "std"))]
    #[cfg_attr(docsrs, doc(cfg(feature = "std")))]
    pub fn read(&self) -> Result<T, ReadError> {
        self.read_with(super::Budget::default())
    }

    /// Reads the value, making at most [`Spins::DEFAULT`] attempts: for
    /// contexts that cannot wait.
    ///
    /// # Errors
    /// See [How long a reader waits](super#how-long-a-reader-waits).
    #[inline]
    pub fn try_read(&self) -> Result<T, ReadError> {
        self.read_with(Spins::DEFAULT)
    }

    /// Reads the value, asking `patience` after each failed attempt.
    ///
    /// # Errors
    /// See [How long a reader waits](super#how-long-a-reader-waits).
    #[inline]
    pub fn read_with(&self, patience: impl Patience) -> Result<T, ReadError> {
        self.read_versioned(patience).map(|(value, _)| value)
    }

    /// Reads the value and the version it was written as (writes completed
    /// before it), asking `patience` after each failed attempt.
    ///
    /// # Errors
    /// See [How long a reader waits](super#how-long-a-reader-waits).
    pub fn read_versioned(&self, mut patience: impl Patience) -> Result<(T, Version), ReadError> {
        let seq = self.lock.seq;
        // The odd value of the first attempt that found the writer mid-write,
        // and whether every failed attempt since saw exactly that value.
        let mut stalled_at = None;
        let mut stalled = true;
        let mut attempt = 0u32;
        loop {
            // With the fence, pairs with the writer's publishing `Release`
            // store: a copy made after it sees at least that write's data.
            // (A relaxed load and a fence rather than an `Acquire` load: only
            // relaxed loads are guaranteed to work on a read-only mapping.)
            let before = seq.load(Ordering::Relaxed);
            fence(Ordering::Acquire);
            if before & 1 == 0 {
                let value = payload::load(self.lock.data);
                // Orders the copy before the re-check (pairs with the writer's
                // `Release` fence): if the copy saw any store of a later write,
                // the re-check sees that write's odd mark or later.
                fence(Ordering::Acquire);
                if seq.load(Ordering::Relaxed) == before {
                    return Ok((value, before / 2));
                }
                stalled = false;
            } else if *stalled_at.get_or_insert(before) != before {
                stalled = false;
            }
            attempt = attempt.saturating_add(1);
            match patience.again(attempt) {
                Retry::Again => {}
                Retry::WriterGone => return Err(ReadError::WriterGone),
                Retry::GiveUp if stalled => return Err(ReadError::WriterStalled),
                Retry::GiveUp => return Err(ReadError::Contended),
            }
        }
    }

    /// Writes completed so far; the value read next is at least this new.
    pub fn version(&self) -> Version {
        let seq = self.lock.seq.load(Ordering::Relaxed);
        fence(Ordering::Acquire);
        seq / 2
    }
}
