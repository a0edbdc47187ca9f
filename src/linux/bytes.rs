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

use crate::bytes::{Consumer, Grant, PopError, Producer, ReserveError};
use crate::linux::SysError;
use crate::linux::wake::{SleepFailure, SpinThenBlock, Wakeup};
use crate::wait::SleepError;

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
    /// [`PopBlockingError::TimedOut`] once `timeout` has passed with the ring
    /// empty; `TooSmall` (the record stays) and `Corrupted` as for
    /// [`Consumer::pop_into`]; `Sys` if sleeping failed.
    #[doc(alias("poll", "futex"))]
    pub fn pop_blocking(
        &mut self,
        buf: &mut [u8],
        wakeup: &Wakeup,
        strategy: SpinThenBlock,
        timeout: Option<Duration>,
    ) -> Result<usize, PopBlockingError> {
        let deadline = timeout.and_then(|timeout| Instant::now().checked_add(timeout));
        loop {
            self.wait_or_sleep(strategy.spins, |event, epoch| {
                wakeup.sleep(event, epoch, deadline)
            })
            .map_err(|err| match err {
                SleepError::Corrupted => PopBlockingError::Corrupted,
                SleepError::Sleep(SleepFailure::TimedOut) => PopBlockingError::TimedOut,
                SleepError::Sleep(SleepFailure::Sys(err)) => PopBlockingError::Sys(err),
            })?;
            match self.pop_into(buf) {
                Ok(len) => return Ok(len),
                // Not after a wait that found words published; were it so,
                // waiting again is bounded by the deadline.
                Err(PopError::Empty) => {}
                Err(PopError::TooSmall { needed }) => {
                    return Err(PopBlockingError::TooSmall { needed });
                }
                Err(PopError::Corrupted) => return Err(PopBlockingError::Corrupted),
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
    /// [`PushNotifyError::Reserve`] if nothing was sent;
    /// [`PushNotifyError::Wake`] if the record *was* sent but waking the
    /// consumer failed (it may sleep until its timeout; retry with
    /// `wakeup.wake(producer.event())`).
    #[doc(alias("write", "futex"))]
    pub fn push_notify(&mut self, record: &[u8], wakeup: &Wakeup) -> Result<(), PushNotifyError> {
        self.push(record).map_err(PushNotifyError::Reserve)?;
        self.notify(wakeup).map_err(PushNotifyError::Wake)
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

/// Why [`Consumer::pop_blocking`] returned no record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PopBlockingError {
    /// The timeout passed with the ring still empty.
    TimedOut,
    /// The next record is longer than the buffer; it stays in the ring.
    TooSmall {
        /// The record's length in bytes.
        needed: usize,
    },
    /// The producer's counter or a record header is impossible; see
    /// [`Corrupted`](crate::Corrupted).
    Corrupted,
    /// Sleeping failed (transparent).
    Sys(SysError),
}

impl fmt::Display for PopBlockingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TimedOut => f.write_str("timed out waiting for a record"),
            Self::TooSmall { needed } => {
                fmt::Display::fmt(&PopError::TooSmall { needed: *needed }, f)
            }
            Self::Corrupted => fmt::Display::fmt(&crate::Corrupted, f),
            Self::Sys(err) => fmt::Display::fmt(err, f),
        }
    }
}

impl core::error::Error for PopBlockingError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Sys(err) => err.source(),
            _ => None,
        }
    }
}

/// Why [`Producer::push_notify`] failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PushNotifyError {
    /// Nothing was sent (transparent).
    Reserve(ReserveError),
    /// The record was sent, but waking the consumer failed (contextual: the
    /// source is the failed call).
    Wake(SysError),
}

impl fmt::Display for PushNotifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Reserve(err) => fmt::Display::fmt(err, f),
            Self::Wake(_) => f.write_str("record sent, but waking the consumer failed"),
        }
    }
}

impl core::error::Error for PushNotifyError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Reserve(err) => err.source(),
            Self::Wake(err) => Some(err),
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
                                Err(PushNotifyError::Reserve(ReserveError::Full)) => {
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
            Err(PopBlockingError::TimedOut)
        );
        tx.push(b"five!").unwrap();
        assert!(!tx.wake_needed(), "a timed-out consumer withdrew");
        assert_eq!(
            rx.pop_blocking(&mut buf, &wakeup, SpinThenBlock::new(3), short),
            Err(PopBlockingError::TooSmall { needed: 5 })
        );
        assert_eq!(rx.pop_vec::<5>().unwrap().as_slice(), b"five!");
        assert_eq!(
            tx.push_notify(&[0; 57], &wakeup),
            Err(PushNotifyError::Reserve(ReserveError::TooLarge {
                len: 57,
                max: 56
            }))
        );
    }

    #[test]
    fn errors_print_each_cause_once() {
        let sys = SysError::new("futex(FUTEX_WAIT)", Errno::INVAL);
        let failed_write = SysError::new("write", Errno::BADF);
        let wake = PushNotifyError::Wake(failed_write);
        assert_eq!(
            wake.to_string(),
            "record sent, but waking the consumer failed"
        );
        assert_eq!(
            wake.source().map(ToString::to_string),
            Some(failed_write.to_string())
        );
        let pop = PopBlockingError::Sys(sys);
        assert_eq!(pop.to_string(), sys.to_string());
        assert_eq!(
            pop.source().map(ToString::to_string),
            sys.source().map(ToString::to_string)
        );
        assert_eq!(
            PushNotifyError::Reserve(ReserveError::Full).to_string(),
            "ring is full"
        );
        assert!(
            PushNotifyError::Reserve(ReserveError::Full)
                .source()
                .is_none()
        );
        assert_eq!(
            PopBlockingError::TimedOut.to_string(),
            "timed out waiting for a record"
        );
        assert_eq!(
            PopBlockingError::TooSmall { needed: 9 }.to_string(),
            "buffer too small for the next record of 9 bytes"
        );
        assert_eq!(
            PopBlockingError::Corrupted.to_string(),
            crate::Corrupted.to_string()
        );
    }
}
