//! Blocking without a system call per message: the event-word protocol.
//!
//! A side that wants to sleep announces it on a shared [`Event`], re-checks its
//! condition, and only then sleeps; the other side publishes, issues a `SeqCst`
//! fence, and signals only if somebody announced. A producer whose consumer is
//! awake therefore makes no system call at all.
//!
//! ```text
//!  waiter                                 notifier
//!  epoch = event.epoch                    publish (Release)
//!  event.waiting = 1                      fence(SeqCst)  (asymmetric: compiler fence)
//!  fence(SeqCst)                          if event.waiting == 1:
//!  if event.barrier == 1:                     event.waiting = 0
//!      process-wide barrier                   event.epoch += 1
//!  re-check the ring: ready? -> return        wake the sleeper
//!  sleep unless event.epoch != epoch
//! ```
//!
//! The two `SeqCst` fences order "announce, then check" against "publish, then
//! look": either the notifier sees the announcement, or the waiter's re-check
//! sees the data. The epoch closes the last gap: a wake that lands between the
//! re-check and the sleep changes the epoch, and a futex wait on the old epoch
//! returns at once (an eventfd keeps its count, to the same effect). No wake-up
//! is lost; `tests/loom_wait.rs` model-checks it.
//!
//! # The asymmetric mode
//!
//! The notifier's fence is most of what a notifying push costs: it waits for
//! the push's stores to leave the core, and the awake consumer keeps pulling
//! those lines back. A notifier may instead rely on a process-wide barrier the
//! waiter runs (Linux `membarrier`, which interrupts every core running the
//! notifier's process with a full fence): it sets `event.barrier`, issues one
//! `SeqCst` fence, and from then on keeps only a compiler fence. This moves the
//! cost to the sleep path, which already pays a system call. Why no wake-up is
//! lost:
//! - A waiter that reads `barrier == 1` runs the barrier after announcing and
//!   before re-checking. The barrier puts a full fence in the notifier's thread
//!   at some point after the announcement and before the re-check: what the
//!   notifier published before that point the re-check sees; what it looks at
//!   after it sees the announcement.
//! - A waiter that reads `barrier == 0` has its fence before the notifier's
//!   mode-switch fence in the single `SeqCst` order (else the store of
//!   `barrier` would be visible), so every look the notifier makes in the
//!   asymmetric mode, all after that fence, sees the announcement.
//!
//! The first case reasons about the hardware, outside the Rust memory model:
//! a compiler fence keeps the notifier's publish before its look in program
//! order, and the barrier acts as a fence run in the notifier's thread (the
//! idiom of folly's `asymmetric_thread_fence_heavy` and liburcu). The flag is
//! sticky: it stays set for a ring's life (a fresh `create` clears it, which
//! must not happen under a live producer anyway), and a new producer handle
//! starts with the fence again, which is always safe. A peer that sets the
//! flag unasked only makes the consumer's sleeps dearer.
//!
//! The mode is only as good as the barrier: see
//! [`Producer::use_sleeper_barrier`](crate::spsc::Producer::use_sleeper_barrier).
//! A waiter without one passes [`no_barrier`] and gets an error, not a lost
//! wake-up, if its notifier switched.
//!
//! The core never sleeps itself: it hands the [`Event`] and epoch to a closure
//! that does (see [`Consumer::pop_or_sleep`](crate::spsc::Consumer::pop_or_sleep));
//! the Linux adapters provide eventfd and futex sleepers and the `membarrier`
//! barrier.

use core::fmt;

use crate::sync::{AtomicU32, Ordering, compiler_fence, const_fn_unless_loom, fence};

/// A shared word a sleeper announces itself on. Each event has one sleeper and
/// one notifier (a ring's consumer and producer).
///
/// # Layout
/// 12 bytes, `#[repr(C)]`: `waiting` (`u32`, 1 while the sleeper is announced) at
/// 0, `epoch` (`u32`, bumped by the notifier on each wake, the futex word) at 4,
/// `barrier` (`u32`, non-zero once the notifier relies on the sleeper's
/// process-wide barrier) at 8.
#[repr(C)]
pub struct Event {
    /// 1 from the sleeper's announcement until it stops waiting or is woken.
    /// Written by both sides with plain stores.
    waiting: AtomicU32,
    /// Wakes so far, wrapping. Written only by the notifier.
    epoch: AtomicU32,
    /// Non-zero once the notifier skips its fence (the asymmetric mode).
    /// Written only by the notifier.
    barrier: AtomicU32,
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("waiting", &self.waiting.load(Ordering::Relaxed))
            .field("epoch", &self.epoch.load(Ordering::Relaxed))
            .field("barrier", &self.barrier.load(Ordering::Relaxed))
            .finish()
    }
}

impl Event {
    const_fn_unless_loom! {
        pub(crate) fn new() -> Self {
            Self {
                waiting: AtomicU32::new(0),
                epoch: AtomicU32::new(0),
                barrier: AtomicU32::new(0),
            }
        }
    }

    pub(crate) fn reset(&self) {
        self.waiting.store(0, Ordering::Relaxed);
        self.epoch.store(0, Ordering::Relaxed);
        self.barrier.store(0, Ordering::Relaxed);
    }

    /// Sleeper, before re-checking its condition: announces itself and returns
    /// the epoch to sleep on, and whether it must run its process-wide barrier
    /// before the re-check.
    pub(crate) fn announce(&self) -> (u32, bool) {
        let epoch = self.epoch.load(Ordering::Acquire);
        self.waiting.store(1, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        (epoch, self.barrier.load(Ordering::Relaxed) != 0)
    }

    /// Notifier: switches to the asymmetric mode. Every later
    /// [`needs_wake`](Self::needs_wake) may pass `sleeper_barrier`.
    pub(crate) fn require_barrier(&self) {
        self.barrier.store(1, Ordering::Relaxed);
        fence(Ordering::SeqCst);
    }

    /// Sleeper: no longer waiting (its condition holds, or it gives up).
    pub(crate) fn withdraw(&self) {
        self.waiting.store(0, Ordering::Relaxed);
    }

    /// Notifier, after publishing: whether the sleeper must be woken. If so,
    /// the announcement is consumed and the epoch advanced, so the caller wakes
    /// once per announcement. `sleeper_barrier`: the notifier switched to the
    /// asymmetric mode ([`require_barrier`](Self::require_barrier)), so only a
    /// compiler fence is needed here.
    #[inline]
    pub(crate) fn needs_wake(&self, sleeper_barrier: bool) -> bool {
        if sleeper_barrier {
            compiler_fence(Ordering::SeqCst);
        } else {
            fence(Ordering::SeqCst);
        }
        if self.waiting.load(Ordering::Relaxed) == 0 {
            return false;
        }
        self.waiting.store(0, Ordering::Relaxed);
        let epoch = self.epoch.load(Ordering::Relaxed);
        self.epoch.store(epoch.wrapping_add(1), Ordering::Release);
        true
    }

    /// Whether the notifier switched to the asymmetric mode, so that a sleeper
    /// must run a process-wide barrier before its re-check (see the module
    /// docs).
    #[must_use]
    pub fn barrier_required(&self) -> bool {
        self.barrier.load(Ordering::Relaxed) != 0
    }

    /// The word a futex sleeps on: the epoch.
    #[cfg(all(feature = "linux", target_os = "linux", not(loom)))]
    pub(crate) fn futex_word(&self) -> &AtomicU32 {
        &self.epoch
    }

    /// The current epoch: a sleeper handed `epoch` should sleep only while this
    /// still equals it (a futex does that check atomically in the kernel).
    #[must_use]
    pub fn epoch(&self) -> u32 {
        self.epoch.load(Ordering::Acquire)
    }
}

/// Why [`Consumer::pop_or_sleep`](crate::spsc::Consumer::pop_or_sleep) returned
/// without an element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SleepError<E> {
    /// The producer's counter is impossible; see [`Corrupted`](crate::spsc::Corrupted).
    Corrupted,
    /// The sleeper gave up (a timeout, a failed system call, or a
    /// process-wide barrier its notifier relies on and it could not run).
    Sleep(E),
}

impl<E: fmt::Display> fmt::Display for SleepError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Corrupted => fmt::Display::fmt(&crate::spsc::Corrupted, f),
            Self::Sleep(err) => write!(f, "stopped waiting: {err}"),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> core::error::Error for SleepError<E> {}

/// The barrier argument for a sleeper that has no process-wide barrier: it
/// refuses, so that a notifier in the asymmetric mode yields
/// [`SleepError::Sleep(NoBarrier)`](SleepError::Sleep) instead of a lost
/// wake-up.
///
/// # Errors
/// Always [`NoBarrier`].
pub fn no_barrier() -> Result<(), NoBarrier> {
    Err(NoBarrier)
}

/// The notifier relies on a process-wide memory barrier this sleeper cannot
/// run; see [`no_barrier`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct NoBarrier;

impl fmt::Display for NoBarrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the producer relies on a process-wide memory barrier this sleeper cannot run")
    }
}

impl core::error::Error for NoBarrier {}
