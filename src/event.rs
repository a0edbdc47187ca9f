//! The event word: blocking without a system call per message.
//!
//! A side that wants to sleep announces it on a shared [`Event`], re-checks its
//! condition, and only then sleeps; the other side publishes, issues a `SeqCst`
//! fence, and signals only if somebody announced. A producer whose consumer is
//! awake therefore makes no system call at all.
//!
//! ```text
//!  waiter                               notifier
//!  epoch = event.epoch                  publish (Release)
//!  event.waiting = 1                    fence(SeqCst)
//!  fence(SeqCst)                        if event.waiting == 1:
//!  re-check the ring: ready? -> return      event.waiting = 0
//!  sleep unless event.epoch != epoch         event.epoch += 1
//!                                           wake the sleeper
//! ```
//!
//! The two `SeqCst` fences order "announce, then check" against "publish, then
//! look": either the notifier sees the announcement, or the waiter's re-check
//! sees the data. The epoch closes the last gap: a wake that lands between the
//! re-check and the sleep changes the epoch, and a futex wait on the old epoch
//! returns at once (an eventfd keeps its count, to the same effect). No wake-up
//! is lost; `tests/loom_wait.rs` model-checks it.
//!
//! The notifier's fence is most of what a notifying push costs beyond the push
//! (it waits for the push's stores to leave the core, and the awake consumer
//! keeps pulling those lines back).
//!
//! The core never sleeps itself: it hands the [`Event`] and epoch to a closure
//! that does (see [`Consumer::pop_or_sleep`](crate::spsc::Consumer::pop_or_sleep));
//! the Linux adapters provide eventfd and futex sleepers
//! (`linux::wake`, with the `linux` feature).

// History: an asymmetric variant, in which the notifier kept only a compiler
// fence and the waiter ran Linux `membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED)`
// before its re-check, passed loom but lost wake-ups on the test machine (a
// blocking benchmark and a unit test each hung once), so it is not offered.

use core::fmt;

use crate::sync::{AtomicU32, Ordering, fence};

/// A shared word a sleeper announces itself on. Each event has one sleeper and
/// one notifier (a ring's consumer and producer).
///
/// # Layout
/// 8 bytes, `#[repr(C)]`, two `u32` atomics and no padding: `waiting` (1 while
/// the sleeper is announced) at 0, `epoch` (bumped by the notifier on each
/// wake, the futex word) at 4.
#[repr(C)]
pub struct Event {
    /// 1 from the sleeper's announcement until it stops waiting or is woken.
    /// Written by both sides with plain stores.
    waiting: AtomicU32,
    /// Wakes so far, wrapping. Written only by the notifier.
    epoch: AtomicU32,
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("waiting", &self.waiting.load(Ordering::Relaxed))
            .field("epoch", &self.epoch.load(Ordering::Relaxed))
            .finish()
    }
}

impl Event {
    pub(crate) fn reset(&self) {
        self.waiting.store(0, Ordering::Relaxed);
        self.epoch.store(0, Ordering::Relaxed);
    }

    /// Sleeper, before re-checking its condition: announces itself and returns
    /// the epoch to sleep on.
    pub(crate) fn announce(&self) -> u32 {
        let epoch = self.epoch.load(Ordering::Acquire);
        self.waiting.store(1, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        epoch
    }

    /// Sleeper: no longer waiting (its condition holds, or it gives up).
    pub(crate) fn withdraw(&self) {
        self.waiting.store(0, Ordering::Relaxed);
    }

    /// Notifier, after publishing: whether the sleeper must be woken. If so,
    /// the announcement is consumed and the epoch advanced, so the caller wakes
    /// once per announcement.
    #[inline]
    pub(crate) fn needs_wake(&self) -> bool {
        fence(Ordering::SeqCst);
        if self.waiting.load(Ordering::Relaxed) == 0 {
            return false;
        }
        self.waiting.store(0, Ordering::Relaxed);
        let epoch = self.epoch.load(Ordering::Relaxed);
        self.epoch.store(epoch.wrapping_add(1), Ordering::Release);
        true
    }

    /// The word a futex sleeps on: the epoch.
    #[cfg(all(feature = "linux", target_os = "linux", not(loom)))]
    pub(crate) fn futex_word(&self) -> &AtomicU32 {
        &self.epoch
    }

    /// Whether a sleeper has announced itself and not been woken or withdrawn:
    /// what an operator's tool shows as "asleep".
    #[must_use]
    pub fn has_sleeper(&self) -> bool {
        self.waiting.load(Ordering::Relaxed) != 0
    }

    /// The current epoch: a sleeper handed `epoch` should sleep only while this
    /// still equals it (a futex does that check atomically in the kernel).
    #[must_use]
    pub fn epoch(&self) -> u32 {
        self.epoch.load(Ordering::Acquire)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::vec::Vec;

    use super::*;
    use crate::Corrupted;
    use crate::spsc::{BlockingError, StaticSpsc};

    #[test]
    fn a_notifier_wakes_once_per_announcement() {
        let mut ring = StaticSpsc::<u32, 4>::new();
        let (tx, _rx) = ring.split();
        let event = tx.event();
        assert!(!event.needs_wake(), "nobody announced");
        assert_eq!(event.epoch(), 0);
        let epoch = event.announce();
        assert_eq!(epoch, 0);
        assert!(event.needs_wake(), "an announced sleeper is woken");
        assert_eq!(event.epoch(), 1, "each wake advances the epoch");
        assert!(!event.needs_wake(), "the announcement was consumed");
        assert_eq!(event.epoch(), 1);
        assert_eq!(event.announce(), 1);
        event.withdraw();
        assert!(!event.needs_wake(), "a withdrawn sleeper is not woken");
        assert_eq!(std::format!("{event:?}"), "Event { waiting: 0, epoch: 1 }");
    }

    #[test]
    fn prepare_to_sleep_announces_only_on_an_empty_ring() {
        let mut ring = StaticSpsc::<u32, 4>::new();
        let (mut tx, mut rx) = ring.split();
        assert_eq!(rx.prepare_to_sleep(), Ok(Some(0)));
        tx.try_push(5).unwrap();
        assert!(
            tx.wake_needed(),
            "the push must wake the announced consumer"
        );
        assert_eq!(rx.event().epoch(), 1);
        // Something is there: no announcement stays behind.
        assert_eq!(rx.prepare_to_sleep(), Ok(None));
        tx.try_push(6).unwrap();
        assert!(!tx.wake_needed(), "the consumer withdrew");
        assert_eq!((rx.try_pop(), rx.try_pop()), (Ok(5), Ok(6)));
    }

    #[test]
    fn pop_or_sleep_pops_what_is_there_without_sleeping() {
        let mut ring = StaticSpsc::<u32, 4>::new();
        let (mut tx, mut rx) = ring.split();
        tx.try_push(1).unwrap();
        let slept = rx.pop_or_sleep(0, |_, _| -> Result<(), ()> { panic!("slept") });
        assert_eq!(slept, Ok(1));
        assert!(
            !tx.wake_needed(),
            "no announcement for an element already there"
        );
    }

    #[test]
    fn pop_or_sleep_sleeps_on_the_announced_epoch_until_the_push() {
        let mut ring = StaticSpsc::<u32, 4>::new();
        let (mut tx, mut rx) = ring.split();
        let mut epochs = Vec::new();
        let got = rx.pop_or_sleep(3, |event: &Event, epoch| -> Result<(), ()> {
            // One sleep is all a correct ring needs; a broken one must fail
            // here, not loop (and fill memory) for ever.
            assert!(epochs.is_empty(), "slept again after a push and a wake");
            epochs.push(epoch);
            // The "producer" pushes during the first sleep, and wakes.
            if epochs.len() == 1 {
                tx.try_push(9).unwrap();
                assert!(tx.wake_needed());
                assert_ne!(event.epoch(), epoch, "a wake moves the epoch");
            }
            Ok(())
        });
        assert_eq!(got, Ok(9));
        assert_eq!(epochs, [0]);
    }

    #[test]
    fn pop_or_sleep_withdraws_when_the_sleeper_gives_up() {
        let mut ring = StaticSpsc::<u32, 4>::new();
        let (mut tx, mut rx) = ring.split();
        let got = rx.pop_or_sleep(0, |_, _| Err("timed out"));
        assert_eq!(got, Err(BlockingError::Sleep("timed out")));
        tx.try_push(1).unwrap();
        assert!(!tx.wake_needed(), "the announcement was withdrawn");
        assert_eq!(
            std::format!("{}", BlockingError::Sleep("timed out")),
            "timed out",
            "transparent: the sleeper's error says what happened"
        );
        assert_eq!(
            std::format!("{}", BlockingError::<&str>::Corrupted),
            std::format!("{Corrupted}")
        );
    }
}
