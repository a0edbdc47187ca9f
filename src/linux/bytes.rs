//! Blocking pops and notifying pushes for a [record ring](crate::bytes) on
//! Linux, through a [`Wakeup`] (eventfd or futex) as for the SPSC ring (see
//! [`crate::linux::wake`]).
//!
//! ```
//! use core::time::Duration;
//! use std::thread;
//!
//! use ipc_primitives::bytes::StaticRecordRing;
//! use ipc_primitives::linux::wake::{SpinThenBlock, Wakeup};
//!
//! let mut ring = StaticRecordRing::<256>::new();
//! let (mut tx, mut rx) = ring.split();
//! let wakeup = Wakeup::Futex;
//!
//! thread::scope(|s| {
//!     s.spawn(|| {
//!         for line in ["started", "listening on :80", "ready"] {
//!             tx.push_notify(line.as_bytes(), &wakeup).expect("push");
//!         }
//!     });
//!     let mut buf = vec![0; rx.max_record()];
//!     for line in ["started", "listening on :80", "ready"] {
//!         let timeout = Some(Duration::from_secs(10));
//!         let len = rx.pop_blocking(&mut buf, &wakeup, SpinThenBlock::default(), timeout)?;
//!         assert_eq!(&buf[..len], line.as_bytes());
//!     }
//!     Ok::<(), Box<dyn std::error::Error>>(())
//! })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use core::fmt;
use core::time::Duration;
use std::time::Instant;

use crate::bytes::{BlockingError, Consumer, Grant, PopError, Producer, ReserveError};
use crate::event::Event;
use crate::linux::SysError;
use crate::linux::poll::deadline_after;
use crate::linux::wake::watch::{Peer, Watch};
use crate::linux::wake::{PushNotifyError, SpinThenBlock, WaitError, Wakeup, wake_if};
use crate::sync;

/// Blocking pops, for a record ring's consumer in a Linux process.
impl<K> Consumer<'_, K> {
    /// Pops the next record into the start of `buf`, waiting for one if the
    /// ring is empty: retries `strategy.spins` times, then sleeps through
    /// `wakeup` until the producer wakes it (see
    /// [`Consumer::wait_or_sleep`]). Returns the record's length.
    ///
    /// `timeout` `None` waits for ever; the producer must wake through the
    /// same kind of [`Wakeup`], e.g. with
    /// [`push_notify`](Producer::push_notify).
    ///
    /// # Errors
    /// `Sleep(`[`WaitError::TimedOut`]`)` once `timeout` has passed with the
    /// ring empty, `Sleep(`[`WaitError::Sys`]`)` if sleeping failed;
    /// [`BlockingError::TooSmall`] (the record stays) and
    /// [`BlockingError::Corrupted`] as for [`Consumer::pop_into`].
    #[doc(alias("poll", "futex"))]
    pub fn pop_blocking(
        &mut self,
        buf: &mut [u8],
        wakeup: &Wakeup,
        strategy: SpinThenBlock,
        timeout: Option<Duration>,
    ) -> Result<usize, BlockingError<WaitError>> {
        let deadline = timeout.and_then(|timeout| Instant::now().checked_add(timeout));
        loop {
            self.wait_or_sleep(strategy.spins, |event, epoch| {
                wakeup.sleep(event, epoch, deadline)
            })?;
            match self.pop_into(buf) {
                Ok(len) => return Ok(len),
                // Not after a wait that found words published; were it so,
                // waiting again is bounded by the deadline.
                Err(PopError::Empty) => {}
                Err(PopError::TooSmall { needed }) => {
                    return Err(BlockingError::TooSmall { needed });
                }
                Err(PopError::Corrupted) => return Err(BlockingError::Corrupted),
            }
        }
    }
}

/// Pushes that wake a sleeping consumer, for a record ring's producer in a
/// Linux process.
impl<K> Producer<'_, K> {
    /// Sends `record` ([`Producer::push`]), then wakes the consumer through
    /// `wakeup` if it is asleep ([`Producer::wake_needed`]): no system call
    /// while it is awake.
    ///
    /// # Errors
    /// [`PushNotifyError::Push`] if nothing was sent;
    /// [`PushNotifyError::Wake`] (`pushed` 1) if the record *was* sent but
    /// waking the consumer failed (it may sleep until its timeout; retry with
    /// `wakeup.wake(producer.event())`).
    #[doc(alias("write", "futex"))]
    pub fn push_notify(
        &mut self,
        record: &[u8],
        wakeup: &Wakeup,
    ) -> Result<(), PushNotifyError<ReserveError>> {
        self.push(record).map_err(PushNotifyError::Push)?;
        self.notify(wakeup)
            .map_err(|error| PushNotifyError::Wake { pushed: 1, error })
    }

    /// Wakes the consumer through `wakeup` if it announced it sleeps.
    fn notify(&self, wakeup: &Wakeup) -> Result<(), SysError> {
        if self.wake_needed() {
            wakeup.wake(self.event())?;
        }
        Ok(())
    }
}

/// Commits that wake a sleeping consumer.
impl<K> Grant<'_, '_, K> {
    /// [`commit`](Grant::commit)s the first `len` bytes, then wakes the
    /// consumer through `wakeup` if it is asleep.
    ///
    /// # Errors
    /// The record was published, but waking the consumer failed.
    ///
    /// # Panics
    /// If `len` exceeds the bytes reserved.
    #[doc(alias("write", "futex"))]
    pub fn commit_notify(self, len: usize, wakeup: &Wakeup) -> Result<(), SysError> {
        let producer = self.commit_returning(len);
        producer.notify(wakeup)
    }
}

/// Waiting for room, for a record ring whose `space` event the two sides
/// share (the handshake's [`RecordConnection`](crate::linux::handshake::RecordConnection)
/// and [`RecordSession`](crate::linux::handshake::RecordSession)).
///
/// The protocol is that of [`crate::event`] in the other direction: the
/// producer announces on `space` and re-checks for room before it sleeps;
/// the consumer, after releasing words, wakes it if it announced.
impl<K> Producer<'_, K> {
    /// Waits until a record of `len` bytes fits: looks once, retries
    /// `strategy.spins` times, then sleeps on `space` through
    /// `wakeup`'s `space` direction until the consumer frees room, watching
    /// `peer`.
    pub(crate) fn wait_for_room(
        &mut self,
        len: usize,
        space: &Event,
        wakeup: &Wakeup,
        strategy: SpinThenBlock,
        timeout: Option<Duration>,
        peer: Peer<'_>,
    ) -> Result<(), PushBlockingError> {
        let refused = |err| match err {
            ReserveError::TooLarge { len, max } => PushBlockingError::TooLarge { len, max },
            // `room` says `Ok(None)` for a full ring.
            ReserveError::Full | ReserveError::Corrupted => PushBlockingError::Corrupted,
        };
        // The first look reserves (a grant dropped publishes nothing), and so
        // counts one full ring per wait (`full_count`); the others ask
        // without counting, not one count per spin.
        match self.reserve(len) {
            Ok(_) => return Ok(()),
            Err(ReserveError::Full) => {}
            Err(err) => return Err(refused(err)),
        }
        let fits = |producer: &mut Self| {
            producer
                .room(len)
                .map(|room| room.is_some())
                .map_err(refused)
        };
        for _ in 0..strategy.spins {
            sync::spin_loop();
            if fits(self)? {
                return Ok(());
            }
        }
        let deadline = deadline_after(timeout);
        let mut watch = Watch::new(peer);
        let channel = wakeup.space();
        loop {
            let epoch = space.announce();
            let found = fits(self);
            if !matches!(found, Ok(false)) {
                space.withdraw();
                return found.map(drop);
            }
            if let Err(err) = watch.sleep(channel, space, epoch, deadline) {
                space.withdraw();
                return Err(PushBlockingError::Sleep(err));
            }
        }
    }
}

impl<K> Consumer<'_, K> {
    /// Wakes a producer waiting for room on `space` (through `wakeup`'s
    /// `space` direction) if it announced itself: a `SeqCst` fence, and a
    /// system call only if it sleeps. Call it after popping; a failed wake
    /// stays announced for the next call.
    pub(crate) fn notify_space(&self, space: &Event, wakeup: &Wakeup) -> Result<(), SysError> {
        wake_if(space.needs_wake(), wakeup.space(), space)
    }
}

/// Why a blocking push to a record ring sent nothing.
///
/// Transparent: `Sleep` prints, and has the source of, the [`WaitError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PushBlockingError {
    /// The record is longer than any this ring takes; it never will fit.
    TooLarge {
        /// Bytes asked for.
        len: usize,
        /// The ring's largest record.
        max: usize,
    },
    /// The consumer's counter is impossible; see [`Corrupted`](crate::Corrupted).
    Corrupted,
    /// The wait for room ended: timed out, the consumer is gone
    /// ([`WaitError::PeerGone`]), or a system call failed.
    Sleep(WaitError),
    /// The record *was* sent, but waking the consumer failed (transparent:
    /// prints, and has the source of, the [`SysError`]); the next commit
    /// tries again.
    Wake(SysError),
}

impl fmt::Display for PushBlockingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::TooLarge { len, max } => {
                fmt::Display::fmt(&ReserveError::TooLarge { len, max }, f)
            }
            Self::Corrupted => fmt::Display::fmt(&crate::Corrupted, f),
            Self::Sleep(err) => fmt::Display::fmt(&err, f),
            Self::Wake(err) => fmt::Display::fmt(&err, f),
        }
    }
}

impl core::error::Error for PushBlockingError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Sleep(err) => err.source(),
            Self::Wake(err) => err.source(),
            Self::TooLarge { .. } | Self::Corrupted => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use core::error::Error;
    use std::thread;

    use rustix::io::Errno;

    use super::*;
    use crate::bytes::StaticRecordRing;

    const TIMEOUT: Option<Duration> = Some(Duration::from_secs(10));

    /// Records of every length up to the largest cross between two threads
    /// with blocking pops, through each kind of wake-up, the consumer
    /// sleeping often (no spins, a producer that pauses).
    #[test]
    fn records_cross_with_blocking_pops_and_notifying_pushes() {
        for wakeup in [Wakeup::Futex, Wakeup::eventfd().unwrap()] {
            let mut ring = StaticRecordRing::<64>::new();
            let (mut tx, mut rx) = ring.split();
            let max = tx.max_record();
            thread::scope(|s| {
                let wakeup = &wakeup;
                s.spawn(move || {
                    for n in 0..2_000_usize {
                        let record: Vec<u8> = (0..n % (max + 1)).map(|i| (n + i) as u8).collect();
                        loop {
                            match tx.push_notify(&record, wakeup) {
                                Ok(()) => break,
                                Err(PushNotifyError::Push(ReserveError::Full)) => {
                                    thread::yield_now();
                                }
                                Err(err) => panic!("push {n}: {err}"),
                            }
                        }
                        if n % 97 == 0 {
                            thread::sleep(Duration::from_millis(1));
                        }
                    }
                });
                let mut buf = vec![0; max];
                for n in 0..2_000_usize {
                    let len = rx
                        .pop_blocking(&mut buf, wakeup, SpinThenBlock::new(0), TIMEOUT)
                        .unwrap_or_else(|err| panic!("pop {n}: {err}"));
                    assert_eq!(len, n % (max + 1), "record {n}");
                    assert!(
                        buf[..len]
                            .iter()
                            .enumerate()
                            .all(|(i, &b)| b == (n + i) as u8),
                        "record {n} intact"
                    );
                }
            });
            assert!(rx.is_empty());
        }
    }

    #[test]
    fn commit_notify_wakes_a_sleeping_consumer() {
        let mut ring = StaticRecordRing::<16>::new();
        let (mut tx, mut rx) = ring.split();
        let wakeup = Wakeup::Futex;
        thread::scope(|s| {
            s.spawn(|| {
                thread::sleep(Duration::from_millis(20));
                let mut grant = tx.reserve(8).unwrap();
                grant.write(0, b"in place").unwrap();
                grant.commit_notify(8, &wakeup).unwrap();
            });
            let mut buf = [0; 8];
            let len = rx
                .pop_blocking(&mut buf, &wakeup, SpinThenBlock::new(0), TIMEOUT)
                .unwrap();
            assert_eq!(&buf[..len], b"in place");
        });
    }

    #[test]
    fn pop_blocking_times_out_reports_a_small_buffer_and_corruption() {
        let mut ring = StaticRecordRing::<16>::new();
        let (mut tx, mut rx) = ring.split();
        let wakeup = Wakeup::Futex;
        let short = Some(Duration::from_millis(5));
        let mut buf = [0; 4];
        assert_eq!(
            rx.pop_blocking(&mut buf, &wakeup, SpinThenBlock::new(3), short),
            Err(BlockingError::Sleep(WaitError::TimedOut))
        );
        tx.push(b"five!").unwrap();
        assert!(!tx.wake_needed(), "a timed-out consumer withdrew");
        assert_eq!(
            rx.pop_blocking(&mut buf, &wakeup, SpinThenBlock::new(3), short),
            Err(BlockingError::TooSmall { needed: 5 })
        );
        assert_eq!(rx.pop_vec::<5>().unwrap().as_slice(), b"five!");
        assert_eq!(
            tx.push_notify(&[0; 57], &wakeup),
            Err(PushNotifyError::Push(ReserveError::TooLarge {
                len: 57,
                max: 56
            }))
        );
    }

    #[test]
    fn errors_print_each_cause_once() {
        let sys = SysError::new("futex(FUTEX_WAIT)", Errno::INVAL);
        let failed_write = SysError::new("write", Errno::BADF);
        let wake = PushNotifyError::<ReserveError>::Wake {
            pushed: 1,
            error: failed_write,
        };
        assert_eq!(wake.to_string(), "pushed 1, but waking the consumer failed");
        assert_eq!(
            wake.source().map(ToString::to_string),
            Some(failed_write.to_string())
        );
        let pop = BlockingError::Sleep(WaitError::Sys(sys));
        assert_eq!(pop.to_string(), sys.to_string());
        assert!(pop.source().is_none(), "a leaf, printed once");
        let full = PushNotifyError::Push(ReserveError::Full);
        assert_eq!(full.to_string(), "ring is full");
        assert!(full.source().is_none());
        assert_eq!(
            BlockingError::<WaitError>::TooSmall { needed: 9 }.to_string(),
            "buffer too small for the next record of 9 bytes"
        );
        assert_eq!(
            BlockingError::<WaitError>::Corrupted.to_string(),
            crate::Corrupted.to_string()
        );
    }
}
