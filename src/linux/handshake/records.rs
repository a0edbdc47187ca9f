//! Both sides of a handshake that hands out a record ring: see
//! [Record rings](super#record-rings).

use core::fmt;
use core::time::Duration;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Arc;

use super::Link;
use crate::bytes::{Consumer, Grant, PopError, Producer, ReserveError};
use crate::event::Event;
use crate::linux::SysError;
use crate::linux::bytes::PushBlockingError;
use crate::linux::poll::hung_up;
use crate::linux::shm::Segment;
use crate::linux::uds::{Credentials, SeqpacketStream, UdsError};
use crate::linux::wake::watch::Peer;
use crate::linux::wake::{PushNotifyError, SpinThenBlock, Wakeup};

/// The consuming side of a record ring in a memfd it owns.
type OwnedRecordConsumer = Consumer<'static, Arc<Segment>>;
/// The producing side of a record ring in a memfd it owns.
type OwnedRecordProducer = Producer<'static, Arc<Segment>>;

/// A record ring's side and the ring's `space` event, which the side's
/// keeper keeps mapped.
#[derive(Debug)]
pub struct Side<S> {
    pub(super) side: S,
    pub(super) space: &'static Event,
}

impl<S> Side<S> {
    pub(super) fn new(side: S, space: &'static Event) -> Self {
        Self { side, space }
    }
}

/// The server's side of one client's record ring: its credentials, its
/// ring and its eventfds. Dropping it hangs up, which ends a client's
/// blocking push with `PeerGone`.
///
/// A daemon drains each session a bounded number of records at a time
/// ([`drain`](Self::drain)), so that a client that floods its ring cannot
/// starve the others; once a session is empty it announces that it sleeps
/// ([`prepare_to_sleep`](Self::prepare_to_sleep)) and waits for its
/// [`wakeup`](Self::wakeup)'s eventfd and its [`socket`](Self::socket) in
/// `epoll`.
pub struct RecordSession {
    pub(super) side: Side<OwnedRecordConsumer>,
    wakeup: Wakeup,
    /// A record's copy: [`max_record`](Self::max_record) bytes.
    buf: Vec<u8>,
    link: Link,
}

impl fmt::Debug for RecordSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordSession")
            .field("peer", &self.link.peer)
            .finish_non_exhaustive()
    }
}

impl RecordSession {
    pub(super) fn new(link: Link, side: Side<OwnedRecordConsumer>, wakeup: Wakeup) -> Self {
        let buf = vec![0; side.side.max_record()];
        Self {
            side,
            wakeup,
            buf,
            link,
        }
    }

    /// The client's credentials, as the kernel reported them at connect.
    pub fn credentials(&self) -> Credentials {
        self.link.peer
    }

    /// The consuming side of the client's ring (for `used_words`,
    /// `counters`).
    pub fn consumer(&self) -> &Consumer<'static, Arc<Segment>> {
        &self.side.side
    }

    /// The largest record the client can send, in bytes.
    pub fn max_record(&self) -> usize {
        self.buf.len()
    }

    /// Pops up to `max` records, in order, passing a copy of each to `sink`,
    /// then wakes the client if it waits for room: a `SeqCst` fence per
    /// call, a system call only if the client sleeps. Returns how many were
    /// popped (fewer than `max`: the ring is empty).
    ///
    /// # Errors
    /// [`DrainError::Corrupted`] if the client wrote an impossible counter
    /// or record header: the records before were passed to `sink`, and the
    /// session is of no further use (drop it). [`DrainError::Wake`] if the
    /// records were popped but waking the client failed (it stays
    /// announced, and the next drain tries again).
    #[doc(alias = "write")]
    pub fn drain(&mut self, max: usize, mut sink: impl FnMut(&[u8])) -> Result<usize, DrainError> {
        let mut count = 0;
        let mut corrupted = false;
        while count < max {
            match self.side.side.pop_into(&mut self.buf) {
                Ok(len) => {
                    sink(&self.buf[..len]);
                    count += 1;
                }
                Err(PopError::Empty) => break,
                // `TooSmall` cannot happen with a buffer of the largest
                // record; were it to, the header is a lie.
                Err(PopError::Corrupted | PopError::TooSmall { .. }) => {
                    corrupted = true;
                    break;
                }
            }
        }
        let woken = self.side.side.notify_space(self.side.space, &self.wakeup);
        if corrupted {
            return Err(DrainError::Corrupted);
        }
        woken.map_err(DrainError::Wake)?;
        Ok(count)
    }

    /// Announces that the server is about to sleep and looks at the ring
    /// once more: `Ok(true)`, it is empty, sleep until the
    /// [`wakeup`](Self::wakeup)'s eventfd is readable (the client's next
    /// commit writes it); `Ok(false)`, a record arrived meanwhile, drain
    /// again. Drain the eventfd ([`EventFd::drain`](crate::linux::wake::EventFd::drain))
    /// when it wakes an event loop.
    ///
    /// # Errors
    /// [`DrainError::Corrupted`] if the client's counter is impossible.
    pub fn prepare_to_sleep(&mut self) -> Result<bool, DrainError> {
        match self.side.side.prepare_to_sleep() {
            Ok(epoch) => Ok(epoch.is_some()),
            Err(_) => Err(DrainError::Corrupted),
        }
    }

    /// How the client wakes the server: the `ready` eventfd, readable after
    /// a commit to a ring whose server announced it sleeps.
    pub fn wakeup(&self) -> &Wakeup {
        &self.wakeup
    }

    /// The socket: `EPOLLHUP` on it means the client is gone.
    pub fn socket(&self) -> BorrowedFd<'_> {
        self.link.stream.as_fd()
    }

    /// Whether the client has closed its end (exited or been killed), without
    /// blocking: `poll`
    /// ([poll(2)](https://man7.org/linux/man-pages/man2/poll.2.html)).
    ///
    /// # Errors
    /// A [`SysError`] if `poll` fails.
    #[doc(alias = "poll")]
    pub fn peer_closed(&self) -> Result<bool, SysError> {
        self.link.peer_closed()
    }
}

/// Why [`RecordSession::drain`] stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DrainError {
    /// The client wrote an impossible counter or record header; see
    /// [`Corrupted`](crate::Corrupted).
    Corrupted,
    /// The records were popped, but waking the client failed (transparent:
    /// prints, and has the source of, the [`SysError`]).
    Wake(SysError),
}

impl fmt::Display for DrainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Corrupted => fmt::Display::fmt(&crate::Corrupted, f),
            Self::Wake(err) => fmt::Display::fmt(err, f),
        }
    }
}

impl core::error::Error for DrainError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Corrupted => None,
            Self::Wake(err) => err.source(),
        }
    }
}

/// A client's side of a record-ring handshake
/// ([`connect_records`](super::connect_records)): its ring, and how it wakes
/// the server. Pushes make no system call while the server is awake.
pub struct RecordConnection {
    side: Side<OwnedRecordProducer>,
    wakeup: Wakeup,
    stream: SeqpacketStream,
}

impl fmt::Debug for RecordConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordConnection")
            .field("stream", &self.stream)
            .finish_non_exhaustive()
    }
}

impl RecordConnection {
    pub(super) fn new(
        stream: SeqpacketStream,
        side: Side<OwnedRecordProducer>,
        wakeup: Wakeup,
    ) -> Self {
        Self {
            side,
            wakeup,
            stream,
        }
    }

    /// The producing side of this client's ring (for `capacity`,
    /// `counters`, or a `reserve` that does not wait).
    pub fn producer(&self) -> &Producer<'static, Arc<Segment>> {
        &self.side.side
    }

    /// The producing side and the wake-up together, for grants committed
    /// with [`Grant::commit_notify`].
    pub fn parts(&mut self) -> (&mut Producer<'static, Arc<Segment>>, &Wakeup) {
        (&mut self.side.side, &self.wakeup)
    }

    /// The largest record this ring takes, in bytes.
    pub fn max_record(&self) -> usize {
        self.side.side.max_record()
    }

    /// Sends `record` and wakes the server if it sleeps
    /// ([`Producer::push_notify`]): no system call while it is awake.
    ///
    /// # Errors
    /// As for [`Producer::push_notify`]: `Push(Full)` if there is no room
    /// now, `Push(TooLarge)` if it never fits; nothing was sent.
    pub fn push_notify(&mut self, record: &[u8]) -> Result<(), PushNotifyError<ReserveError>> {
        self.side.side.push_notify(record, &self.wakeup)
    }

    /// Reserves room for a record of up to `len` bytes, waiting while the
    /// ring is full (spinning `strategy.spins` times, then sleeping in
    /// `poll` on the `space` eventfd and the socket until the server frees
    /// room or hangs up). Write the record in place, then commit it with
    /// [`Grant::commit_notify`] through the wake-up returned beside it.
    ///
    /// # Errors
    /// Nothing is reserved: [`PushBlockingError::TooLarge`] if `len` exceeds
    /// [`max_record`](Self::max_record) (at once, without waiting);
    /// `Sleep(`[`WaitError::PeerGone`](crate::linux::wake::WaitError::PeerGone)`)`
    /// once the server has hung up, `Sleep(TimedOut)` after `timeout`;
    /// [`PushBlockingError::Corrupted`] if the server's counter is
    /// impossible.
    #[doc(alias("poll", "write"))]
    pub fn reserve_blocking(
        &mut self,
        len: usize,
        strategy: SpinThenBlock,
        timeout: Option<Duration>,
    ) -> Result<(Grant<'_, 'static, Arc<Segment>>, &Wakeup), PushBlockingError> {
        let peer = Peer::Socket(self.stream.as_fd());
        let producer = &mut self.side.side;
        producer.wait_for_room(len, self.side.space, &self.wakeup, strategy, timeout, peer)?;
        match producer.reserve(len) {
            Ok(grant) => Ok((grant, &self.wakeup)),
            // Only this side takes room: what was there is there still.
            Err(ReserveError::Full | ReserveError::Corrupted) => Err(PushBlockingError::Corrupted),
            Err(ReserveError::TooLarge { len, max }) => {
                Err(PushBlockingError::TooLarge { len, max })
            }
        }
    }

    /// Sends `record`, waiting while the ring is full, then wakes the server
    /// if it sleeps: [`reserve_blocking`](Self::reserve_blocking), copy,
    /// [`Grant::commit_notify`].
    ///
    /// # Errors
    /// As for [`reserve_blocking`](Self::reserve_blocking), nothing sent;
    /// [`PushBlockingError::Wake`] if the record *was* sent but waking the
    /// server failed.
    #[doc(alias("poll", "write"))]
    pub fn push_blocking(
        &mut self,
        record: &[u8],
        strategy: SpinThenBlock,
        timeout: Option<Duration>,
    ) -> Result<(), PushBlockingError> {
        let (mut grant, wakeup) = self.reserve_blocking(record.len(), strategy, timeout)?;
        // In bounds: the grant is `record.len()` bytes.
        let _ = grant.write(0, record);
        grant
            .commit_notify(record.len(), wakeup)
            .map_err(PushBlockingError::Wake)
    }

    /// How to wake the server after a commit.
    pub fn wakeup(&self) -> &Wakeup {
        &self.wakeup
    }

    /// The memory the ring lives in (a sealed memfd).
    pub fn segment(&self) -> &Segment {
        self.side.side.keeper()
    }

    /// The server's credentials: `getsockopt(SO_PEERCRED)`.
    ///
    /// # Errors
    /// A [`UdsError`] if `getsockopt(SO_PEERCRED)` fails.
    #[doc(alias("getsockopt", "SO_PEERCRED"))]
    pub fn server_credentials(&self) -> Result<Credentials, UdsError> {
        self.stream.peer_credentials()
    }

    /// The socket, e.g. to notice the server going away (`EPOLLHUP`).
    pub fn socket(&self) -> BorrowedFd<'_> {
        self.stream.as_fd()
    }

    /// Whether the server has closed this client's connection, without
    /// blocking: `poll`.
    ///
    /// # Errors
    /// A [`SysError`] if `poll` fails.
    #[doc(alias = "poll")]
    pub fn server_closed(&self) -> Result<bool, SysError> {
        hung_up(self.stream.as_fd())
    }
}
