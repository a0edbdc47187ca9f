//! [Fan-in lanes](crate::lanes) on Linux: claims that hold a lock for their
//! life, so the consumer can tell a dead owner from a slow one, and a
//! blocking pop.
//!
//! # Liveness of a lane's owner
//! [`Lanes::claim_locked`] opens the segment's file again (an open file
//! description of the claim's own, through `/proc/self/fd`), write-locks the
//! lane's lock byte (`fcntl(F_OFD_SETLK)`) *before* it swaps the lane to
//! `LOCKED` (claimed by an owner holding its lock), and keeps the lock until
//! the lane is released (then it closes that description). The kernel drops
//! the lock when the owner dies, whatever it was doing. So a lane that is
//! `LOCKED` while nobody holds its lock has a dead owner:
//! [`LanesConsumer::reclaim_dead`] asks with one `fcntl(F_OFD_GETLK)` per
//! such lane (it places no lock) and reclaims those. A lane claimed with the
//! plain [`Lanes::claim`] (state `CLAIMED`) has no lock to ask, so
//! `reclaim_dead` never reclaims it.
//!
//! Lane `i`'s lock byte is `offset + 64 + i`, where `offset` is where the
//! lane set starts in the segment's file: inside the lane set's own header
//! line, so lane sets laid out side by side in one segment
//! ([`crate::parts`]) never share a lock byte, and never bytes 0 and 1, the
//! segment's own locks ([`crate::linux::shm`]'s liveness). That is why both
//! calls take the [`Segment`] whose region holds the lane set, and refuse
//! another ([`LaneLockError::NotInSegment`]).
//!
//! A producer that can open the segment can also hold any lane's lock
//! without owning the lane, or mark a lane `CLAIMED` or `LOCKED`; that
//! keeps the consumer from reclaiming it, or has it reclaim it, as for any
//! forged state word (see [Trust](crate::lanes#trust)).
//!
//! ```
//! use core::time::Duration;
//!
//! use ipc_primitives::lanes::Lanes;
//! use ipc_primitives::linux::shm::Segment;
//! use ipc_primitives::linux::wake::{SpinThenBlock, Wakeup};
//!
//! let len = Lanes::required_size(4, 512).ok_or("too large")?;
//! let segment = Segment::memfd("log", len)?;
//! let lanes = Lanes::create(segment.region()?, 4, 512)?;
//!
//! // A client (normally another process, with its own mapping).
//! let mut client = lanes.claim_locked(&segment)?.ok_or("no free lane")?;
//! client.push_notify(b"client started", &Wakeup::Futex)?;
//!
//! let mut daemon = lanes.into_consumer();
//! let mut buf = vec![0; daemon.max_record()];
//! let timeout = Some(Duration::from_secs(1));
//! let got = daemon.pop_blocking(&mut buf, &Wakeup::Futex, SpinThenBlock::default(), timeout)?;
//! assert_eq!(&buf[..got.len], b"client started");
//!
//! // The owner is alive: its lane is not reclaimed.
//! assert_eq!(daemon.reclaim_dead(&segment)?, 0);
//! client.release(&Wakeup::Futex)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use core::fmt;
use core::ops::{Deref, DerefMut};
use core::time::Duration;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::Instant;

use rustix::fs::{Mode, OFlags};

use crate::lanes::{
    BlockingError, Delivery, LaneProducer, LaneState, Lanes, LanesConsumer, PopError,
};
use crate::linux::SysError;
use crate::linux::shm::{Segment, lock};
use crate::linux::wake::{SpinThenBlock, WaitError, Wakeup};

/// Byte of the segment's file that lane 0's owner locks, counted from the
/// lane set's start; lane `i` locks `LANE_LOCKS + i`. Within the lane set's
/// header line (128 bytes, `MAX_LANES` = 64 after this).
const LANE_LOCKS: libc::off_t = 64;

/// How long a blocking pop sleeps at most before it scans every lane again,
/// whatever the doorbell says: a producer can suppress wake-ups (see
/// [Trust](crate::lanes#trust)).
pub const RESCAN: Duration = Duration::from_millis(100);

/// Why a lane's lock could not be taken or asked about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LaneLockError {
    /// The lane set does not lie in the given segment's mapping (it was made
    /// in another segment's region, or another mapping's of the same
    /// object), so its lock bytes are unknown: pass the segment whose region
    /// holds it.
    NotInSegment,
    /// A system call failed.
    Sys(SysError),
}

impl From<SysError> for LaneLockError {
    fn from(err: SysError) -> Self {
        Self::Sys(err)
    }
}

impl fmt::Display for LaneLockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotInSegment => f.write_str(
                "the lane set is not in the given segment's mapping: \
                 pass the segment whose region holds it",
            ),
            Self::Sys(err) => fmt::Display::fmt(err, f),
        }
    }
}

impl core::error::Error for LaneLockError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            // Transparent: its `Display` is the inner error's.
            Self::Sys(err) => err.source(),
            Self::NotInSegment => None,
        }
    }
}

/// The lock bytes of one lane set in one segment's file.
#[derive(Debug, Clone, Copy)]
struct LockBytes {
    /// Lane 0's byte: the lane set's offset in the file, plus `LANE_LOCKS`.
    first: libc::off_t,
}

impl LockBytes {
    /// The lock bytes of the lane set at `span` (address and length, from
    /// its view) in `segment`'s file.
    fn of(segment: &Segment, (addr, len): (usize, usize)) -> Result<Self, LaneLockError> {
        let offset = segment
            .offset_of(addr, len)
            .and_then(|offset| libc::off_t::try_from(offset).ok())
            .ok_or(LaneLockError::NotInSegment)?;
        Ok(Self {
            // At most the mapping's length, far below `off_t::MAX`.
            first: offset + LANE_LOCKS,
        })
    }

    /// The lock byte of `lane`.
    fn lane(self, lane: usize) -> libc::off_t {
        // `lane` is below `MAX_LANES` (64): fits.
        self.first + lane as libc::off_t
    }
}

/// A claimed lane whose owner holds the lane's lock ([`LaneProducer`] through
/// `Deref`); dropping it releases the lane, then the lock.
pub struct LockedLane<'a, K = ()> {
    // Declared first: dropped (released) before the lock goes.
    lane: LaneProducer<'a, K>,
    /// The open file description holding the lock; closing it unlocks.
    lock: OwnedFd,
}

impl<K> fmt::Debug for LockedLane<'_, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockedLane")
            .field("lane", &self.lane)
            .field("lock", &self.lock)
            .finish()
    }
}

impl<'a, K> Deref for LockedLane<'a, K> {
    type Target = LaneProducer<'a, K>;

    fn deref(&self) -> &Self::Target {
        &self.lane
    }
}

impl<K> DerefMut for LockedLane<'_, K> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.lane
    }
}

impl<K> LockedLane<'_, K> {
    /// Releases the lane, wakes the consumer through `wakeup` if it sleeps
    /// (so it frees the lane soon), then drops the lock.
    ///
    /// # Errors
    /// The lane was released, but waking the consumer failed.
    #[doc(alias("write", "futex"))]
    pub fn release(self, wakeup: &Wakeup) -> Result<(), SysError> {
        if self.lane.release_in_place() {
            wakeup.wake(self.lane.event())?;
        }
        Ok(())
    }
}

/// Claims that hold a lock, for a producer in a Linux process.
impl<'a, K: Clone> Lanes<'a, K> {
    /// Claims the first free lane as `LOCKED`, holding for the claim's life
    /// a write lock on its [lock byte](self#liveness-of-a-lanes-owner) of
    /// `segment`'s file (the segment whose region holds the lanes), taken
    /// through an open file description of the claim's own: `open` of
    /// `/proc/self/fd/<segment>`, then per lane `fcntl(F_OFD_SETLK)` before
    /// the claim. `None` if no lane is free.
    ///
    /// Only such claims are reclaimed by [`LanesConsumer::reclaim_dead`];
    /// a lane claimed with [`claim`](Lanes::claim) is never.
    ///
    /// # Errors
    /// [`LaneLockError::NotInSegment`] if the lanes are not in `segment`'s
    /// mapping; [`LaneLockError::Sys`] for a failed system call (the file
    /// cannot be opened again read-write, e.g. a read-only segment).
    #[doc(alias("F_OFD_SETLK", "open"))]
    pub fn claim_locked(
        &self,
        segment: &Segment,
    ) -> Result<Option<LockedLane<'a, K>>, LaneLockError> {
        let bytes = LockBytes::of(segment, self.view.span())?;
        let lock = reopen(segment.as_fd())?;
        for lane in 0..self.lanes() {
            if !matches!(self.state(lane), Some(LaneState::Free { .. })) {
                continue;
            }
            if !lock::try_write_lock(lock.as_fd(), bytes.lane(lane))? {
                // Another claim holds it (and will own the lane, or let go).
                continue;
            }
            match self.claim_lane_as(lane, true) {
                Some(lane) => return Ok(Some(LockedLane { lane, lock })),
                None => lock::unlock(lock.as_fd(), bytes.lane(lane))?,
            }
        }
        Ok(None)
    }
}

/// A new open file description of `file`'s file, read-write:
/// `open("/proc/self/fd/<fd>", O_RDWR | O_CLOEXEC)`.
#[doc(alias = "open")]
fn reopen(file: BorrowedFd<'_>) -> Result<OwnedFd, SysError> {
    let path = format!("/proc/self/fd/{}", file.as_raw_fd());
    rustix::fs::open(path.as_str(), OFlags::RDWR | OFlags::CLOEXEC, Mode::empty())
        .map_err(SysError::from_call("open"))
}

/// Reclaiming dead owners' lanes and blocking pops, for the consumer in a
/// Linux process.
impl<K> LanesConsumer<'_, K> {
    /// Reclaims every lane claimed with [`Lanes::claim_locked`] whose lock
    /// nobody holds (its owner died, see
    /// [Liveness](self#liveness-of-a-lanes-owner)): one `fcntl(F_OFD_GETLK)`
    /// on `segment` (the segment whose region holds the lanes) per such lane.
    /// Lanes claimed with the plain [`Lanes::claim`] hold no lock and are
    /// never reclaimed here (see [`reclaim`](LanesConsumer::reclaim)).
    /// Returns how many were reclaimed; their committed records are then
    /// delivered, and the lanes freed.
    ///
    /// # Errors
    /// [`LaneLockError::NotInSegment`] if the lanes are not in `segment`'s
    /// mapping; [`LaneLockError::Sys`] for a failed system call (lanes
    /// reclaimed before it stay reclaimed).
    #[doc(alias = "F_OFD_GETLK")]
    pub fn reclaim_dead(&mut self, segment: &Segment) -> Result<usize, LaneLockError> {
        let bytes = LockBytes::of(segment, self.view.span())?;
        let mut reclaimed = 0;
        for lane in 0..self.lanes() {
            if !matches!(
                self.state(lane),
                Some(LaneState::Claimed { locked: true, .. })
            ) {
                continue;
            }
            // A live owner locked the byte before it claimed the lane and
            // holds it until it has released the lane: if nobody holds it
            // now, the claim seen above is a dead owner's (or was released
            // meanwhile, and `reclaim_claim` finds it no longer claimed).
            if !lock::write_locked(segment.as_fd(), bytes.lane(lane))?
                && self.reclaim_claim(lane, true)
            {
                reclaimed += 1;
            }
        }
        Ok(reclaimed)
    }

    /// Pops the next record, in fair order, into the start of `buf`, waiting
    /// for one if every lane is empty: retries `strategy.spins` times, then
    /// sleeps on the doorbell through `wakeup` until a producer rings it,
    /// scanning every lane again at least every [`RESCAN`].
    ///
    /// With [`Wakeup::Futex`] producers need nothing but the segment; with
    /// an eventfd each producer must hold the consumer's eventfd (sent to it
    /// over a socket).
    ///
    /// # Errors
    /// `Sleep(`[`WaitError::TimedOut`]`)` once `timeout` has passed with
    /// every lane empty, `Sleep(`[`WaitError::Sys`]`)` if sleeping failed;
    /// [`BlockingError::TooSmall`] and [`BlockingError::Corrupted`] as for
    /// [`LanesConsumer::pop_into`].
    #[doc(alias("poll", "futex"))]
    pub fn pop_blocking(
        &mut self,
        buf: &mut [u8],
        wakeup: &Wakeup,
        strategy: SpinThenBlock,
        timeout: Option<Duration>,
    ) -> Result<Delivery, BlockingError<WaitError>> {
        let deadline = timeout.and_then(|timeout| Instant::now().checked_add(timeout));
        loop {
            match self.pop_into(buf) {
                Ok(delivery) => return Ok(delivery),
                Err(PopError::TooSmall { lane, needed }) => {
                    return Err(BlockingError::TooSmall { lane, needed });
                }
                Err(PopError::Corrupted { lane }) => {
                    return Err(BlockingError::Corrupted { lane });
                }
                Err(_) => {}
            }
            self.wait_or_sleep(strategy.spins, |event, epoch| {
                let rescan = Instant::now() + RESCAN;
                let until = deadline.map_or(rescan, |deadline| deadline.min(rescan));
                match wakeup.sleep(event, epoch, Some(until)) {
                    // Only the rescan's time is up: scan again.
                    Err(WaitError::TimedOut)
                        if deadline.is_none_or(|deadline| Instant::now() < deadline) =>
                    {
                        Ok(())
                    }
                    other => other,
                }
            })
            .map_err(BlockingError::Sleep)?;
        }
    }
}

#[cfg(test)]
mod tests {
    use core::error::Error;
    use std::thread;

    use rustix::io::Errno;

    use super::*;

    const TIMEOUT: Option<Duration> = Some(Duration::from_secs(10));

    fn segment(lanes: usize) -> Segment {
        Segment::memfd("lanes-test", Lanes::required_size(lanes, 64).unwrap()).unwrap()
    }

    /// Lane `lane`'s lock byte for a lane set at the start of the file.
    fn lock_byte(lane: usize) -> libc::off_t {
        LockBytes { first: LANE_LOCKS }.lane(lane)
    }

    /// Kills `claim`'s owner as the kernel sees it: the lane stays claimed,
    /// and its lock goes with its file description.
    fn die(claim: LockedLane<'_>) {
        let LockedLane { lane, lock } = claim;
        core::mem::forget(lane);
        drop(lock);
    }

    #[test]
    fn two_lane_sets_in_one_segment_have_lock_bytes_of_their_own() {
        use crate::Kind;
        use crate::parts::Plan;
        let mut plan = Plan::<2>::new();
        let part = Lanes::required_size(2, 64).unwrap();
        plan.add(Kind::Lanes, part).unwrap();
        plan.add(Kind::Lanes, part).unwrap();
        let segment = Segment::memfd("two-sets", plan.size().unwrap()).unwrap();
        let mut parts = plan.create(segment.region().unwrap()).unwrap();
        let a = Lanes::create(parts.next().unwrap(), 2, 64).unwrap();
        let b = Lanes::create(parts.next().unwrap(), 2, 64).unwrap();
        let dead_a = a.claim_locked(&segment).unwrap().unwrap();
        let live_b = b.claim_locked(&segment).unwrap().unwrap();
        assert_eq!((dead_a.lane(), live_b.lane()), (0, 0));
        die(dead_a);
        let mut rx = a.into_consumer();
        // Set B's live owner holds its own byte, not set A's lane 0's.
        assert_eq!(rx.reclaim_dead(&segment), Ok(1));
        let mut rx_b = b.into_consumer();
        assert_eq!(rx_b.reclaim_dead(&segment), Ok(0));
        drop(live_b);
    }

    #[test]
    fn lanes_outside_the_segment_are_refused() {
        let segment = segment(1);
        let lanes = Lanes::create(segment.region().unwrap(), 1, 64).unwrap();
        let other = segment_from(&segment);
        assert_eq!(
            lanes.claim_locked(&other).unwrap_err(),
            LaneLockError::NotInSegment
        );
        assert_eq!(lanes.state(0), Some(LaneState::Free { generation: 0 }));
        let mut rx = lanes.into_consumer();
        let err = rx.reclaim_dead(&other).unwrap_err();
        assert_eq!(err, LaneLockError::NotInSegment);
        assert!(err.to_string().contains("not in the given segment"));
    }

    /// Another mapping of `segment`'s object, as a peer's.
    fn segment_from(segment: &Segment) -> Segment {
        Segment::from_fd(segment.as_fd().try_clone_to_owned().unwrap()).unwrap()
    }

    #[test]
    fn a_live_plain_claim_is_never_reclaimed_by_asking_locks() {
        let segment = segment(2);
        let lanes = Lanes::create(segment.region().unwrap(), 2, 64).unwrap();
        let mut live = lanes.claim().unwrap();
        live.push(b"alive").unwrap();
        assert_eq!(
            lanes.state(0),
            Some(LaneState::Claimed {
                generation: 1,
                locked: false
            })
        );
        let mut rx = lanes.into_consumer();
        assert_eq!(rx.reclaim_dead(&segment), Ok(0));
        let mut buf = [0; 64];
        assert_eq!(rx.pop_into(&mut buf), Ok(Delivery { lane: 0, len: 5 }));
        assert_eq!(rx.pop_into(&mut buf), Err(PopError::Empty));
        assert!(matches!(rx.state(0), Some(LaneState::Claimed { .. })));
        live.push(b"still mine").unwrap();
        assert_eq!(rx.pop_into(&mut buf), Ok(Delivery { lane: 0, len: 10 }));
    }

    #[test]
    fn a_live_claim_is_never_reclaimed_and_a_dead_one_is() {
        let segment = segment(3);
        let lanes = Lanes::create(segment.region().unwrap(), 3, 64).unwrap();
        let mut alive = lanes.claim_locked(&segment).unwrap().unwrap();
        let dying = lanes.claim_locked(&segment).unwrap().unwrap();
        assert_eq!((alive.lane(), dying.lane()), (0, 1));
        // Another description sees each claim's lock.
        let probe = reopen(segment.as_fd()).unwrap();
        assert_eq!(lock::write_locked(probe.as_fd(), lock_byte(0)), Ok(true));
        assert_eq!(lock::write_locked(probe.as_fd(), lock_byte(2)), Ok(false));
        alive.push(b"alive").unwrap();
        // The owner of lane 1 dies: its claim is never released, and the
        // kernel drops its lock with its file description.
        let mut dying = dying;
        dying.push(b"last words").unwrap();
        die(dying);
        let mut rx = lanes.into_consumer();
        // The consumer's own description (the segment's) sees both: claims
        // in this process lock through descriptions of their own.
        assert_eq!(rx.reclaim_dead(&segment), Ok(1));
        assert_eq!(rx.state(1), Some(LaneState::Closing { generation: 1 }));
        assert_eq!(
            rx.state(0),
            Some(LaneState::Claimed {
                generation: 1,
                locked: true
            })
        );
        assert_eq!(rx.reclaim_dead(&segment), Ok(0));
        let mut buf = [0; 64];
        let mut got = Vec::new();
        while let Ok(Delivery { lane, len }) = rx.pop_into(&mut buf) {
            got.push((lane, buf[..len].to_vec()));
        }
        assert_eq!(got, [(0, b"alive".to_vec()), (1, b"last words".to_vec())]);
        assert_eq!(rx.state(1), Some(LaneState::Free { generation: 1 }));
        alive.release(&Wakeup::Futex).unwrap();
        assert_eq!(lock::write_locked(probe.as_fd(), lock_byte(0)), Ok(false));
        assert_eq!(rx.pop_into(&mut buf), Err(PopError::Empty));
        assert_eq!(rx.state(0), Some(LaneState::Free { generation: 1 }));
    }

    #[test]
    fn a_lane_whose_lock_is_held_elsewhere_is_skipped() {
        let segment = segment(2);
        let lanes = Lanes::create(segment.region().unwrap(), 2, 64).unwrap();
        let squatter = reopen(segment.as_fd()).unwrap();
        assert_eq!(
            lock::try_write_lock(squatter.as_fd(), lock_byte(0)),
            Ok(true)
        );
        let claim = lanes.claim_locked(&segment).unwrap().unwrap();
        assert_eq!(claim.lane(), 1);
        assert!(lanes.claim_locked(&segment).unwrap().is_none());
        drop(squatter);
        let other = lanes.claim_locked(&segment).unwrap().unwrap();
        assert_eq!(other.lane(), 0);
        assert_eq!(
            std::format!("{:?}", other).split(',').next(),
            Some("LockedLane { lane: LaneProducer { lane: 0")
        );
    }

    #[test]
    fn a_blocking_pop_scans_again_when_no_producer_rings() {
        let segment = segment(2);
        let lanes = Lanes::create(segment.region().unwrap(), 2, 64).unwrap();
        let mut quiet = lanes.claim_locked(&segment).unwrap().unwrap();
        let mut rx = lanes.into_consumer();
        let mut buf = [0; 64];
        thread::scope(|s| {
            s.spawn(|| {
                thread::sleep(Duration::from_millis(20));
                // A push that never checks the doorbell, as a producer that
                // suppresses wake-ups would.
                quiet.push(b"unannounced").unwrap();
            });
            // Longer than a rescan, far shorter than the timeout: the
            // record is found by a rescan, not by a wake.
            let got = rx.pop_blocking(
                &mut buf,
                &Wakeup::Futex,
                SpinThenBlock::new(0),
                Some(RESCAN * 30),
            );
            assert_eq!(got, Ok(Delivery { lane: 0, len: 11 }));
        });
        assert_eq!(
            rx.pop_blocking(
                &mut buf,
                &Wakeup::Futex,
                SpinThenBlock::new(2),
                Some(Duration::from_millis(5))
            ),
            Err(BlockingError::Sleep(WaitError::TimedOut))
        );
    }

    #[test]
    fn records_cross_threads_with_blocking_pops_from_two_producers() {
        let segment = segment(2);
        let lanes = Lanes::create(segment.region().unwrap(), 2, 64).unwrap();
        let wakeup = Wakeup::eventfd().unwrap();
        let producers = [
            lanes.claim_locked(&segment).unwrap().unwrap(),
            lanes.claim_locked(&segment).unwrap().unwrap(),
        ];
        let mut rx = lanes.into_consumer();
        thread::scope(|s| {
            for mut producer in producers {
                let wakeup = &wakeup;
                s.spawn(move || {
                    for n in 0..1_000_u32 {
                        let record = n.to_le_bytes();
                        while producer.push_notify(&record, wakeup).is_err() {
                            thread::yield_now();
                        }
                    }
                    producer.release(wakeup).unwrap();
                });
            }
            let mut next = [0_u32; 2];
            let mut buf = [0; 64];
            while next != [1_000; 2] {
                let Delivery { lane, len } = rx
                    .pop_blocking(&mut buf, &wakeup, SpinThenBlock::new(0), TIMEOUT)
                    .unwrap();
                assert_eq!(buf[..len], next[lane].to_le_bytes(), "lane {lane}");
                next[lane] += 1;
            }
        });
    }

    #[test]
    fn errors_print_each_cause_once() {
        let sys = SysError::new("futex(FUTEX_WAIT)", Errno::INVAL);
        let err = BlockingError::Sleep(WaitError::Sys(sys));
        assert_eq!(err.to_string(), sys.to_string());
        assert!(err.source().is_none(), "a leaf, printed once");
        assert_eq!(
            BlockingError::<WaitError>::TooSmall { lane: 1, needed: 9 }.to_string(),
            PopError::TooSmall { lane: 1, needed: 9 }.to_string()
        );
        assert_eq!(
            BlockingError::<WaitError>::Corrupted { lane: 2 }.to_string(),
            PopError::Corrupted { lane: 2 }.to_string()
        );
        assert!(BlockingError::Sleep(WaitError::TimedOut).source().is_none());
        let err = LaneLockError::from(sys);
        assert_eq!(err.to_string(), sys.to_string());
        assert!(err.source().is_none(), "transparent over a leaf");
    }
}
