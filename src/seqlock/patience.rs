//! How long a reader keeps trying while the writer is mid-write.

use crate::sync;

/// What a reader does after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Retry {
    /// Try again.
    Again,
    /// Stop: the reader reports [`WriterStalled`](super::ReadError::WriterStalled)
    /// or [`Contended`](super::ReadError::Contended).
    GiveUp,
    /// Stop: the writer is known to be dead
    /// ([`WriterGone`](super::ReadError::WriterGone)).
    WriterGone,
}

/// Decides, after each failed read attempt, whether a reader tries again.
///
/// Implemented by [`Spins`], by [`Budget`](super::Budget) (with `std`), and by
/// any `FnMut(u32) -> Retry`, which is handed the number of attempts made so
/// far (from 1). An implementation must give up eventually: a dead writer
/// never finishes its write.
pub trait Patience {
    /// Called after the `attempts`-th failed attempt.
    fn again(&mut self, attempts: u32) -> Retry;
}

impl<F: FnMut(u32) -> Retry> Patience for F {
    fn again(&mut self, attempts: u32) -> Retry {
        self(attempts)
    }
}

/// Makes at most this many attempts, with a spin-loop hint between them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Spins(pub u32);

impl Spins {
    /// The attempts [`Reader::try_read`](super::Reader::try_read) makes: about
    /// 10 us on a 2020s x86-64 core when the writer is stalled.
    pub const DEFAULT: Self = Self(1024);
}

impl Patience for Spins {
    fn again(&mut self, attempts: u32) -> Retry {
        if attempts < self.0 {
            sync::spin_loop();
            Retry::Again
        } else {
            Retry::GiveUp
        }
    }
}

#[cfg(any(test, feature = "std"))]
pub use budget::Budget;

#[cfg(any(test, feature = "std"))]
mod budget {
    use core::time::Duration;
    use std::time::Instant;

    use super::{Patience, Retry};
    use crate::sync;

    /// Spins for a few attempts, then yields the CPU between attempts, until a
    /// time budget is spent; optionally asks whether the writer is alive.
    ///
    /// The default budget, one second, is hundreds of scheduler time slices:
    /// a live writer preempted mid-write is back long before. A `Budget` is
    /// meant for one read; its clock starts once the spins are over (at the
    /// first attempt that yields).
    #[derive(Debug, Clone, Copy)]
    pub struct Budget<A = fn() -> bool> {
        spins: u32,
        limit: Duration,
        alive: A,
        started: Option<Instant>,
        last_check: Option<Instant>,
    }

    impl Budget {
        /// Attempts spun before the reader starts yielding.
        pub const SPINS: u32 = 128;
        /// The default time budget.
        pub const DEFAULT_LIMIT: Duration = Duration::from_secs(1);
        /// How often, at most, the writer's liveness is asked.
        pub const CHECK_EVERY: Duration = Duration::from_millis(1);

        /// A budget of `limit`, after [`SPINS`](Self::SPINS) spins.
        pub fn new(limit: Duration) -> Self {
            Self {
                spins: Self::SPINS,
                limit,
                alive: || true,
                started: None,
                last_check: None,
            }
        }
    }

    impl Default for Budget {
        fn default() -> Self {
            Self::new(Self::DEFAULT_LIMIT)
        }
    }

    impl<A: FnMut() -> bool> Budget<A> {
        /// The same budget, which also stops with
        /// [`Retry::WriterGone`] as soon as `alive` returns false. `alive` is
        /// asked once the spins are over, at most every
        /// [`CHECK_EVERY`](Budget::CHECK_EVERY).
        pub fn watching<B: FnMut() -> bool>(self, alive: B) -> Budget<B> {
            Budget {
                spins: self.spins,
                limit: self.limit,
                alive,
                started: self.started,
                last_check: self.last_check,
            }
        }
    }

    impl<A: FnMut() -> bool> Patience for Budget<A> {
        fn again(&mut self, attempts: u32) -> Retry {
            if attempts < self.spins {
                sync::spin_loop();
                return Retry::Again;
            }
            let now = Instant::now();
            let started = *self.started.get_or_insert(now);
            if self
                .last_check
                .is_none_or(|last| now.duration_since(last) >= Budget::CHECK_EVERY)
            {
                self.last_check = Some(now);
                if !(self.alive)() {
                    return Retry::WriterGone;
                }
            }
            if now.duration_since(started) >= self.limit {
                return Retry::GiveUp;
            }
            std::thread::yield_now();
            Retry::Again
        }
    }
}
