//! The consumer of every lane.

use core::num::NonZeroU32;
use core::{cell::Cell, fmt, marker::PhantomData};

use super::{CLOSING, FREE, LOCKED, LaneState, MAX_LANES, PopError, STATE_MASK, View, is_claimed};
use crate::Corrupted;
use crate::bytes::{self, Cursor, Found};
use crate::event::Event;
use crate::sync::{self, Ordering};

/// Where a popped record came from, and its length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Delivery {
    /// The lane the record came from.
    pub lane: usize,
    /// The record's length in bytes.
    pub len: usize,
}

/// Reads records from every lane of a lane set, fairly (see
/// [Fairness](super#fairness)). One per lane set; `Send` but not `Sync` or
/// `Clone`.
///
/// Its position in each lane is kept here, never read back from shared
/// memory. Every pop copies the record out; give it a buffer of
/// [`max_record`](Self::max_record) bytes and every record fits.
pub struct LanesConsumer<'a, K = ()> {
    pub(crate) view: View<'a>,
    keeper: K,
    /// This side's position in each lane (the first `lanes` are used).
    cursors: [Cursor; MAX_LANES],
    /// Bit `i`: lane `i` is quarantined (its producer broke the protocol).
    corrupt: u64,
    /// The lane whose turn it is, below `lanes`.
    next: usize,
    /// Records taken from `next` in this turn.
    taken: u32,
    /// Most records per turn.
    budget: u32,
    _not_sync: PhantomData<Cell<()>>,
}

impl<K> fmt::Debug for LanesConsumer<'_, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LanesConsumer")
            .field("lanes", &self.view.lanes)
            .field("next", &self.next)
            .field("taken", &self.taken)
            .field("budget", &self.budget)
            .field("quarantined", &format_args!("{:#x}", self.corrupt))
            .finish_non_exhaustive()
    }
}

impl<'a, K> LanesConsumer<'a, K> {
    /// The budget a new consumer has: records per lane per turn.
    pub const DEFAULT_BUDGET: u32 = 8;

    pub(super) fn new(view: View<'a>, keeper: K) -> Self {
        Self {
            cursors: core::array::from_fn(|lane| {
                if lane < view.lanes {
                    Cursor::new(&view.ring(lane))
                } else {
                    Cursor::default()
                }
            }),
            view,
            keeper,
            corrupt: 0,
            next: 0,
            taken: 0,
            budget: Self::DEFAULT_BUDGET,
            _not_sync: PhantomData,
        }
    }

    fn is_corrupt(&self, lane: usize) -> bool {
        self.corrupt & (1 << lane) != 0
    }

    /// What lane `lane` offers now: its next record, validated, if it is
    /// claimed or closing and not quarantined. Frees it if it is closing and
    /// drained (resetting it first if it was quarantined).
    fn look(&mut self, lane: usize) -> Result<Option<Found>, Corrupted> {
        // `Acquire`: pairs with the producer's `Release` swap to `CLOSING`,
        // so the `head` loaded after it is the lane's last.
        let state = self.view.state(lane).load(Ordering::Acquire);
        let closing = state & STATE_MASK == CLOSING;
        if !is_claimed(state) && !closing {
            return Ok(None);
        }
        let ring = self.view.ring(lane);
        if self.is_corrupt(lane) {
            if closing {
                self.cursors[lane].reset(&ring);
                self.corrupt &= !(1 << lane);
                self.free(lane, state);
            }
            return Ok(None);
        }
        match self.cursors[lane].next(&ring) {
            Ok(found) => Ok(Some(found)),
            Err(bytes::PopError::Empty) => {
                if closing {
                    self.free(lane, state);
                }
                Ok(None)
            }
            Err(_) => {
                self.corrupt |= 1 << lane;
                Err(Corrupted)
            }
        }
    }

    /// Frees closing lane `lane`, whose state word held `state`.
    fn free(&self, lane: usize, state: u32) {
        let free = (state & !STATE_MASK) | FREE;
        // `Release`: pairs with a claim's `Acquire`: this side's last `tail`
        // store (and a reset's `head` store) come before the next owner's
        // loads. A failed swap leaves the lane to a later scan.
        let _ = self.view.state(lane).compare_exchange(
            state,
            free,
            Ordering::Release,
            Ordering::Relaxed,
        );
    }

    /// Ends the current lane's turn.
    fn advance(&mut self) {
        self.next = (self.next + 1) % self.view.lanes;
        self.taken = 0;
    }

    /// The lane whose turn it is and its next record, visiting each lane at
    /// most once past the current one.
    fn find(&mut self) -> Result<(usize, Found), PopError> {
        for _ in 0..=self.view.lanes {
            let lane = self.next;
            if self.taken < self.budget {
                match self.look(lane) {
                    Ok(Some(found)) => return Ok((lane, found)),
                    Ok(None) => {}
                    Err(Corrupted) => {
                        self.advance();
                        return Err(PopError::Corrupted { lane });
                    }
                }
            }
            self.advance();
        }
        Err(PopError::Empty)
    }

    /// Pops the next record, in fair order, into the start of `buf`.
    ///
    /// # Errors
    /// [`PopError::Empty`] if no lane has a record; [`PopError::TooSmall`]
    /// if `buf` is shorter than the record (it stays, and is next again);
    /// [`PopError::Corrupted`] when a lane is found corrupt (it is then
    /// quarantined: the next pop goes on with the other lanes).
    pub fn pop_into(&mut self, buf: &mut [u8]) -> Result<Delivery, PopError> {
        let (lane, found) = self.find()?;
        let out = buf.get_mut(..found.len).ok_or(PopError::TooSmall {
            lane,
            needed: found.len,
        })?;
        self.cursors[lane].take(&self.view.ring(lane), found, out);
        self.taken += 1;
        Ok(Delivery {
            lane,
            len: found.len,
        })
    }

    /// Pops the next record, copying it into `buf`, and returns what `f`
    /// makes of its lane and the copy (exactly the record's bytes).
    ///
    /// # Errors
    /// As for [`pop_into`](Self::pop_into); `f` is not called.
    pub fn pop_with<R>(
        &mut self,
        buf: &mut [u8],
        f: impl FnOnce(usize, &[u8]) -> R,
    ) -> Result<R, PopError> {
        let Delivery { lane, len } = self.pop_into(buf)?;
        Ok(f(lane, &buf[..len]))
    }

    /// Marks lane `lane`'s claim released for its owner, which must be known
    /// to be dead (or gone for good): the consumer then delivers what the
    /// owner committed and frees the lane. Returns whether the lane was
    /// claimed (and now closes).
    ///
    /// The lane set cannot tell a dead owner from a slow one: reclaiming a
    /// live owner's lane lets a new producer claim it beside the old one,
    /// which corrupts the lane (the consumer then quarantines it; no
    /// undefined behaviour). On Linux, `reclaim_dead` asks the locks of
    /// owners that claimed holding one (and reclaims no other claim).
    pub fn reclaim(&mut self, lane: usize) -> bool {
        self.reclaim_claim(lane, false)
    }

    /// [`reclaim`](Self::reclaim), of a `LOCKED` claim only if
    /// `locked_only`.
    pub(crate) fn reclaim_claim(&mut self, lane: usize, locked_only: bool) -> bool {
        if lane >= self.view.lanes {
            return false;
        }
        let word = self.view.state(lane);
        let state = word.load(Ordering::Acquire);
        let reclaimable = if locked_only {
            state & STATE_MASK == LOCKED
        } else {
            is_claimed(state)
        };
        if !reclaimable {
            return false;
        }
        let closing = (state & !STATE_MASK) | CLOSING;
        word.compare_exchange(state, closing, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    }

    /// Whether some lane has a record waiting, a closing lane to free, or a
    /// corruption to report.
    fn has_work(&mut self) -> bool {
        (0..self.view.lanes).any(|lane| {
            let state = self.view.state(lane).load(Ordering::Acquire);
            if state & STATE_MASK == CLOSING {
                true
            } else {
                is_claimed(state)
                    && !self.is_corrupt(lane)
                    && self.cursors[lane].ready(&self.view.ring(lane)) != Ok(false)
            }
        })
    }

    /// Announces on the doorbell that the consumer is about to sleep and
    /// checks every lane once more (see [`crate::event`]).
    ///
    /// `Some(epoch)`: nothing to do; sleep until woken (a producer rings the
    /// doorbell after its next commit or release). `None`: something arrived
    /// meanwhile; pop it (the announcement is withdrawn).
    pub fn prepare_to_sleep(&mut self) -> Option<u32> {
        let doorbell = self.view.doorbell;
        let epoch = doorbell.announce();
        if self.has_work() {
            doorbell.withdraw();
            None
        } else {
            Some(epoch)
        }
    }

    /// Waits until some lane has something to pop: looks once, retries
    /// `spins` times, then sleeps through `sleep` (as
    /// [`bytes::Consumer::wait_or_sleep`] does). A pop after it may still
    /// find nothing (it only freed a closing lane): wait again.
    ///
    /// # Errors
    /// What `sleep` returned when it gave up.
    pub fn wait_or_sleep<E>(
        &mut self,
        spins: u32,
        mut sleep: impl FnMut(&Event, u32) -> Result<(), E>,
    ) -> Result<(), E> {
        for _ in 0..=spins {
            if self.has_work() {
                return Ok(());
            }
            sync::spin_loop();
        }
        while let Some(epoch) = self.prepare_to_sleep() {
            if let Err(err) = sleep(self.view.doorbell, epoch) {
                self.view.doorbell.withdraw();
                return Err(err);
            }
        }
        Ok(())
    }

    /// Records per lane per turn (see [Fairness](super#fairness)).
    pub fn budget(&self) -> u32 {
        self.budget
    }

    /// Sets the records per lane per turn: 1 alternates lanes record by
    /// record; more lets a busy lane send a batch per turn.
    pub fn set_budget(&mut self, budget: NonZeroU32) {
        self.budget = budget.get();
    }

    /// The state of lane `lane` as its state word shows it now (`None` past
    /// the last lane).
    pub fn state(&self, lane: usize) -> Option<LaneState> {
        (lane < self.view.lanes)
            .then(|| LaneState::of(self.view.state(lane).load(Ordering::Acquire)))
    }

    /// Words published in lane `lane` and not yet popped, headers and
    /// padding included (at most the capacity, which is also what a corrupt
    /// counter shows as; 0 past the last lane).
    pub fn used_words(&self, lane: usize) -> usize {
        if lane >= self.view.lanes {
            return 0;
        }
        self.cursors[lane].used(&self.view.ring(lane)) as usize
    }

    /// Whether lane `lane` is quarantined: found corrupt, skipped until it
    /// is released or reclaimed.
    pub fn is_quarantined(&self, lane: usize) -> bool {
        lane < self.view.lanes && self.is_corrupt(lane)
    }

    /// Number of lanes.
    pub fn lanes(&self) -> usize {
        self.view.lanes
    }

    /// Capacity of each lane, in words.
    pub fn capacity(&self) -> usize {
        self.view.words as usize
    }

    /// The largest record, in bytes.
    pub fn max_record(&self) -> usize {
        bytes::max_record(self.view.words)
    }

    /// The doorbell the consumer sleeps on.
    pub fn doorbell(&self) -> &Event {
        self.view.doorbell
    }

    /// What keeps the region's memory alive.
    pub fn keeper(&self) -> &K {
        &self.keeper
    }
}
