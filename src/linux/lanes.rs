//! [Fan-in lanes](crate::lanes) on Linux: claims that hold a lock for their
//! life, so the consumer can tell a dead owner from a slow one, and a
//! blocking pop.
//!
//! # Liveness of a lane's owner
//! [`Lanes::claim_locked`] opens the segment's file again (an open file
//! description of the claim's own, through `/proc/self/fd`), write-locks
//! byte `at + 64 + lane` of it, where `at` is the lane set's byte offset in
//! the segment, so that two lane sets of one segment (a
//! [`Plan`](crate::parts::Plan)'s parts) never share a lock byte
//! (`fcntl(F_OFD_SETLK)`), *before* it swaps the lane
//! to `CLAIMED`, and keeps the lock until the lane is released (then it
//! closes that description). The kernel drops the lock when the owner dies,
//! whatever it was doing. So a lane that is `CLAIMED` while nobody holds its
//! lock has a dead owner: [`LanesConsumer::reclaim_dead`] asks with one
//! `fcntl(F_OFD_GETLK)` per claimed lane (it places no lock) and reclaims
//! those. Every producer must claim with `claim_locked`: a lane claimed
//! with the core's [`Lanes::claim`] holds no lock and looks dead. Bytes 0
//! and 1 of the file are the segment's own locks ([`crate::linux::shm`]'s
//! liveness).
//!
//! A producer that can open the segment can also hold any lane's lock
//! without owning the lane; that keeps the consumer from reclaiming it,
//! nothing worse.
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
use rustix::io::Errno;

use crate::lanes::{
    BlockingError, Delivery, LaneProducer, LaneState, Lanes, LanesConsumer, PopError,
};
use crate::linux::SysError;
use crate::linux::shm::{Segment, lock};
use crate::linux::wake::{SpinThenBlock, WaitError, Wakeup};

/// Byte of the segment's file, counted from the lane set's first byte, that
/// lane 0's owner locks; lane `i` locks the one `i` bytes after it.
const LANE_LOCKS: usize = 64;

/// How long a blocking pop sleeps at most before it scans every lane again,
/// whatever the doorbell says: a producer can suppress wake-ups (see
/// [Trust](crate::lanes#trust)).
pub const RESCAN: Duration = Duration::from_millis(100);

/// The lock bytes of a lane set: its lanes' bytes of the segment's file.
#[derive(Debug, Clone, Copy)]
struct LockBytes {
    /// The lane set's byte offset in the segment.
    at: usize,
}

impl LockBytes {
    /// The lock bytes of the lane set whose first byte is at address
    /// `start` of this process, in `segment`'s mapping; `call` names the
    /// caller in the error if the set is not in that mapping.
    fn of(segment: &Segment, start: usize, call: &'static str) -> Result<Self, SysError> {
        segment
            .offset_of(start)
            .map(|at| Self { at })
            .ok_or(SysError::new(call, Errno::INVAL))
    }

    /// The lock byte of `lane`: `LANE_LOCKS + lane` bytes after the lane
    /// set's first byte. Inside the set (its header alone is 128 bytes and
    /// `lane` is below `MAX_LANES`, 64), so two sets in one segment never
    /// share one, and never bytes 0 and 1 of the file, the segment's own.
    fn lane(self, lane: usize) -> libc::off_t {
        // Within the mapping's length, which fits `off_t`.
        (self.at + LANE_LOCKS + lane) as libc::off_t
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
    /// Claims the first free lane, holding for the claim's life a write lock
    /// on its byte of `file` (the segment the lanes live in), taken through
    /// an open file description of the claim's own: `open` of
    /// `/proc/self/fd/<file>`, then per lane `fcntl(F_OFD_SETLK)` before the
    /// claim. `None` if no lane is free. Each lane set in a segment has
    /// lock bytes of its own (see [Liveness](self#liveness-of-a-lanes-owner)).
    ///
    /// # Errors
    /// A failed system call (the file cannot be opened again read-write,
    /// e.g. a read-only segment); `EINVAL` (call `claim_locked`) if the lanes
    /// do not lie in `segment`'s mapping.
    #[doc(alias("F_OFD_SETLK", "open"))]
    pub fn claim_locked(&self, segment: &Segment) -> Result<Option<LockedLane<'a, K>>, SysError> {
        let bytes = LockBytes::of(segment, self.start(), "claim_locked")?;
        let lock = reopen(segment.as_fd())?;
        for lane in 0..self.lanes() {
            if !matches!(self.state(lane), Some(LaneState::Free { .. })) {
                continue;
            }
            if !lock::try_write_lock(lock.as_fd(), bytes.lane(lane))? {
                // Another claim holds it (and will own the lane, or let go).
                continue;
            }
            match self.claim_lane(lane) {
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
    /// Reclaims every claimed lane whose lock nobody holds (its owner died,
    /// see [Liveness](self#liveness-of-a-lanes-owner)): one
    /// `fcntl(F_OFD_GETLK)` on `segment` per claimed lane. Returns how many
    /// were reclaimed; their committed records are then delivered, and the
    /// lanes freed.
    ///
    /// Every producer of the set must claim with
    /// [`claim_locked`](Lanes::claim_locked): a lane claimed with the core's
    /// [`claim`](Lanes::claim) holds no lock, so it looks dead here and is
    /// reclaimed under its live owner.
    ///
    /// # Errors
    /// A failed system call (lanes reclaimed before it stay reclaimed);
    /// `EINVAL` (call `reclaim_dead`) if the lanes do not lie in `segment`'s
    /// mapping.
    #[doc(alias = "F_OFD_GETLK")]
    pub fn reclaim_dead(&mut self, segment: &Segment) -> Result<usize, SysError> {
        let bytes = LockBytes::of(segment, self.start(), "reclaim_dead")?;
        let mut reclaimed = 0;
        for lane in 0..self.lanes() {
            if !matches!(self.state(lane), Some(LaneState::Claimed { .. })) {
                continue;
            }
            // A live owner locked the byte before it claimed the lane and
            // holds it until it has released the lane: if nobody holds it
            // now, the claim seen above is a dead owner's (or was released
            // meanwhile, and `reclaim` finds it no longer claimed).
            if !lock::write_locked(segment.as_fd(), bytes.lane(lane))? && self.reclaim(lane) {
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

    use super::*;
    use crate::layout::Kind;
    use crate::parts::Plan;

    /// The lock byte of `lane` of a lane set at the start of its segment.
    fn lock_byte(lane: usize) -> libc::off_t {
        LockBytes { at: 0 }.lane(lane)
    }

    const TIMEOUT: Option<Duration> = Some(Duration::from_secs(10));

    fn segment(lanes: usize) -> Segment {
        Segment::memfd("lanes-test", Lanes::required_size(lanes, 64).unwrap()).unwrap()
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
        let LockedLane { lane, lock } = dying;
        let mut lane = lane;
        lane.push(b"last words").unwrap();
        core::mem::forget(lane);
        drop(lock);
        let mut rx = lanes.into_consumer();
        // The consumer's own description (the segment's) sees both: claims
        // in this process lock through descriptions of their own.
        assert_eq!(rx.reclaim_dead(&segment), Ok(1));
        assert_eq!(rx.state(1), Some(LaneState::Closing { generation: 1 }));
        assert_eq!(rx.state(0), Some(LaneState::Claimed { generation: 1 }));
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
    fn two_lane_sets_in_one_segment_lock_bytes_of_their_own() {
        let set = Lanes::required_size(1, 64).unwrap();
        let mut plan = Plan::<2>::new();
        plan.add(Kind::Lanes, set).unwrap();
        plan.add(Kind::Lanes, set).unwrap();
        let segment = Segment::memfd("lanes-test", plan.size().unwrap()).unwrap();
        let mut parts = plan.create(segment.region().unwrap()).unwrap();
        let a = Lanes::create(parts.next().unwrap(), 1, 64).unwrap();
        let b = Lanes::create(parts.next().unwrap(), 1, 64).unwrap();
        // Lane 0 of set A: its owner dies.
        let LockedLane { lane, lock } = a.claim_locked(&segment).unwrap().unwrap();
        core::mem::forget(lane);
        drop(lock);
        // Lane 0 of set B: its owner lives.
        let live = b.claim_locked(&segment).unwrap().unwrap();
        let (mut rx_a, mut rx_b) = (a.into_consumer(), b.into_consumer());
        assert_eq!(rx_b.reclaim_dead(&segment), Ok(0), "B's owner lives");
        assert_eq!(rx_a.reclaim_dead(&segment), Ok(1), "A's owner died");
        assert_eq!(rx_a.state(0), Some(LaneState::Closing { generation: 1 }));
        live.release(&Wakeup::Futex).unwrap();
    }

    #[test]
    fn lanes_outside_the_segment_given_are_refused() {
        let (ours, other) = (segment(1), segment(1));
        let lanes = Lanes::create(ours.region().unwrap(), 1, 64).unwrap();
        let refused = SysError::new("claim_locked", Errno::INVAL);
        assert_eq!(
            lanes.claim_locked(&other).map(|c| c.is_some()),
            Err(refused)
        );
        assert_eq!(lanes.state(0), Some(LaneState::Free { generation: 0 }));
        let mut rx = lanes.into_consumer();
        assert_eq!(
            rx.reclaim_dead(&other),
            Err(SysError::new("reclaim_dead", Errno::INVAL))
        );
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
    }
}
