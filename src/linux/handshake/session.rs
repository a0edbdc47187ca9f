//! The server's side of one client.

use core::fmt;
use core::time::Duration;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Arc;

use super::OwnedConsumer;
use crate::linux::SysError;
use crate::linux::poll::hung_up;
use crate::linux::uds::{Credentials, SeqpacketStream};
use crate::linux::wake::watch::Peer;
use crate::linux::wake::{SpinThenBlock, WaitError, Wakeup, WakingSide};
use crate::spsc::{BlockingError, PopError};
use crate::{Corrupted, Pod};

/// The server's side of one client: its credentials, its ring and its
/// eventfds.
///
/// Dropping the session closes the ring's consuming side and wakes the client
/// if it waits for space ([`Consumer::close_notify`](crate::spsc::Consumer::close_notify)),
/// so that its blocking push ends with [`BlockingError::Closed`] at once;
/// then closes the socket and the eventfds, unmaps the ring, and frees its
/// place under [`Server::set_max_sessions`](super::Server::set_max_sessions).
pub struct Session<T> {
    // Declared first, so closed (and the client woken) before the socket
    // hangs up: the client learns `Closed`, not a hang-up.
    side: WakingSide<OwnedConsumer<T>>,
    link: Link,
}

impl<T> fmt::Debug for Session<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("peer", &self.link.peer)
            .finish_non_exhaustive()
    }
}

/// What every session holds beside its ring: the client's socket, its
/// credentials and its place in its server's count.
#[derive(Debug)]
pub struct Link {
    pub(super) stream: SeqpacketStream,
    pub(super) peer: Credentials,
    /// Its place in its server's count
    /// ([`Server::sessions`](super::Server::sessions)), given back when it
    /// drops.
    _seat: Arc<()>,
}

impl Link {
    pub(super) fn new(stream: SeqpacketStream, peer: Credentials, seat: Arc<()>) -> Self {
        Self {
            stream,
            peer,
            _seat: seat,
        }
    }

    /// Whether the client has closed its end, without blocking: `poll`.
    pub(super) fn peer_closed(&self) -> Result<bool, SysError> {
        hung_up(self.stream.as_fd())
    }
}

impl<T: Pod> Session<T> {
    pub(super) fn new(link: Link, consumer: OwnedConsumer<T>, wakeup: Wakeup) -> Self {
        Self {
            side: WakingSide::new(consumer, wakeup),
            link,
        }
    }

    /// The client's credentials, as the kernel reported them at connect.
    pub fn credentials(&self) -> Credentials {
        self.link.peer
    }

    /// The consuming side of the client's ring (for `len`, `is_empty`); it
    /// keeps the ring mapped while it lives (see [`OwnedConsumer`]).
    pub fn consumer(&self) -> &OwnedConsumer<T> {
        self.side.side()
    }

    /// The consuming side of the client's ring, to pop from.
    pub fn consumer_mut(&mut self) -> &mut OwnedConsumer<T> {
        self.side.side_mut()
    }

    /// The consuming side and the wake-up together, for a blocking pop
    /// (`consumer.pop_blocking(wakeup, ..)`).
    pub fn parts(&mut self) -> (&mut OwnedConsumer<T>, &Wakeup) {
        self.side.parts()
    }

    /// Pops the oldest element, waiting for one while the ring is empty
    /// ([`Consumer::pop_blocking`](crate::spsc::Consumer::pop_blocking)
    /// through this session's eventfd, which also wakes a client waiting for
    /// space), and stops once the client hangs up: one `poll` on the eventfd
    /// and the socket.
    ///
    /// # Errors
    /// `Sleep(`[`WaitError::PeerGone`]`)` once the client has hung up and
    /// everything it pushed has been popped; [`BlockingError::Closed`] once
    /// it closed the ring and it is empty; otherwise as for `pop_blocking`.
    #[doc(alias("poll", "futex"))]
    pub fn pop_blocking(
        &mut self,
        strategy: SpinThenBlock,
        timeout: Option<Duration>,
    ) -> Result<T, BlockingError<WaitError>> {
        let peer = Peer::Socket(self.link.stream.as_fd());
        let (consumer, wakeup) = self.side.parts();
        consumer.pop_watching(wakeup, strategy, timeout, peer)
    }

    /// Pops everything the client has published, passing each element to
    /// `sink`; returns how many. Use it when the client hangs up, before
    /// dropping the session.
    ///
    /// # Errors
    /// [`Corrupted`] if the client corrupted the ring's counters; the
    /// elements before were passed to `sink`.
    pub fn drain(&mut self, mut sink: impl FnMut(T)) -> Result<usize, Corrupted> {
        let rx = self.side.side_mut();
        let mut count = 0;
        // Bounded: at most one ring's worth was published before the drain.
        for _ in 0..rx.capacity() {
            match rx.try_pop() {
                Ok(value) => {
                    sink(value);
                    count += 1;
                }
                Err(PopError::Empty) => break,
                Err(PopError::Corrupted) => return Err(Corrupted),
            }
        }
        Ok(count)
    }

    /// How the client wakes the server: the eventfd, readable after the client
    /// pushed to a ring whose consumer announced it would sleep.
    pub fn wakeup(&self) -> &Wakeup {
        self.side.wakeup()
    }

    /// The consuming side, the wake-up and the socket together, for waits
    /// that also watch the client's hang-up.
    #[cfg(feature = "tokio")]
    pub(crate) fn parts_and_socket(&mut self) -> (&mut OwnedConsumer<T>, &Wakeup, BorrowedFd<'_>) {
        let (consumer, wakeup) = self.side.parts();
        (consumer, wakeup, self.link.stream.as_fd())
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
