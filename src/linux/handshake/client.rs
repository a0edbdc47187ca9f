//! The client's side: connect, check everything the server sends, attach.

use core::{fmt, time::Duration};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::event::PollFlags;

use super::offer::{Attach, private::Ring};
use super::{ACCEPTED_FDS, HandshakeError, OwnedProducer, RecordConnection, Records};
use crate::Pod;
use crate::linux::SysError;
use crate::linux::hello::{HELLO_LEN, Hello, Status};
use crate::linux::poll::{deadline_after, hung_up, poll_fd};
use crate::linux::shm::{Segment, ShmError};
use crate::linux::uds::{AddrError, Credentials, SeqpacketStream, UdsError, UnixAddr};
use crate::linux::wake::watch::Peer;
use crate::linux::wake::{EventFd, PushNotifyError, SpinThenBlock, WaitError, Wakeup, WakingSide};
use crate::spsc::{BlockingError, PushError};

/// A client's side of the handshake: its ring, and how it wakes the server.
///
/// Dropping the connection closes the ring's producing side and wakes the
/// server if it sleeps ([`Producer::close_notify`](crate::spsc::Producer::close_notify)),
/// so that its blocking pop ends with [`BlockingError::Closed`] at once (after
/// popping what is left); then hangs up and unmaps the ring.
pub struct Connection<T> {
    // Declared first, so closed (and the server woken) before the socket
    // hangs up: the server learns `Closed`, not a hang-up.
    side: WakingSide<OwnedProducer<T>>,
    stream: SeqpacketStream,
}

impl<T> fmt::Debug for Connection<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("stream", &self.stream)
            .finish_non_exhaustive()
    }
}

/// How long [`connect`] waits for the connection and the server's hello.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(5);

/// Connects to a server at `addr` and receives this client's ring of `T`,
/// waiting at most [`HELLO_TIMEOUT`]: see [`connect_timeout`].
///
/// # Errors
/// As for [`connect_timeout`].
pub fn connect<T: Pod>(addr: &UnixAddr) -> Result<Connection<T>, AddrError<HandshakeError>> {
    connect_timeout(addr, HELLO_TIMEOUT)
}

/// Connects to a server at `addr` and receives this client's ring of `T`,
/// waiting at most `timeout` in all: for room in a full backlog
/// ([`SeqpacketStream::connect_timeout`]), then for the hello (`poll`,
/// [poll(2)](https://man7.org/linux/man-pages/man2/poll.2.html)). Signals do
/// not end the wait.
///
/// Checks the hello (magic, version, status, kind, element layout), that
/// its three fds arrived, that the memfd's size fits a ring of the hello's
/// capacity (equal to [`Spsc::required_size`](crate::spsc::Spsc::required_size), or larger by less than a
/// page) before mapping it, that the memfd is sealed, that both eventfds are
/// eventfds ([`EventFd::from_fd`]), and attaches to the ring. The
/// connection's wake-up is [`Wakeup::EventFds`]: the client wakes the server
/// through `ready`, and sleeps for space on `space`, in `poll` or an event
/// loop.
///
/// # Errors
/// An [`AddrError`] naming `addr`, holding what went wrong
/// ([`HandshakeError`]): [`HandshakeError::TimedOut`] for a server that is
/// hung or a listener that never accepts; [`HandshakeError::Refused`],
/// [`HandshakeError::SessionLimit`] or
/// [`HandshakeError::ServerOutOfResources`] when the server says so; the
/// other variants for a socket that failed or anything the server sent that
/// does not check out.
#[doc(alias("connect", "poll", "fstat"))]
pub fn connect_timeout<T: Pod>(
    addr: &UnixAddr,
    timeout: Duration,
) -> Result<Connection<T>, AddrError<HandshakeError>> {
    handshake::<T>(addr, timeout).map_err(|err| AddrError::new(addr, err))
}

/// Connects to a `Server<`[`Records`]`>` at `addr` and receives this
/// client's record ring, waiting at most [`HELLO_TIMEOUT`]: see
/// [`connect_records_timeout`].
///
/// # Errors
/// As for [`connect_records_timeout`].
pub fn connect_records(addr: &UnixAddr) -> Result<RecordConnection, AddrError<HandshakeError>> {
    connect_records_timeout(addr, HELLO_TIMEOUT)
}

/// Connects to a `Server<`[`Records`]`>` at `addr` and receives this
/// client's record ring, checking everything as [`connect_timeout`] does for
/// an SPSC ring: the hello must offer a record ring
/// ([`Kind::Bytes`](crate::Kind::Bytes), else
/// [`HandshakeError::WrongRing`]), the memfd must fit a record ring of the
/// hello's capacity in words and be sealed, and both wake-up fds must be
/// eventfds.
///
/// # Errors
/// As for [`connect_timeout`].
#[doc(alias("connect", "poll", "fstat"))]
pub fn connect_records_timeout(
    addr: &UnixAddr,
    timeout: Duration,
) -> Result<RecordConnection, AddrError<HandshakeError>> {
    handshake::<Records>(addr, timeout).map_err(|err| AddrError::new(addr, err))
}

/// [`connect_timeout`], its errors not yet naming `addr`.
fn handshake<T: Attach>(
    addr: &UnixAddr,
    timeout: Duration,
) -> Result<T::Connection, HandshakeError> {
    let deadline = deadline_after(Some(timeout));
    let stream = SeqpacketStream::connect_until(addr, deadline).map_err(|err| match err {
        UdsError::TimedOut => HandshakeError::TimedOut,
        err => err.into(),
    })?;
    let ready = poll_fd(stream.as_fd(), PollFlags::IN, deadline).map_err(UdsError::Sys)?;
    if ready.is_empty() {
        return Err(HandshakeError::TimedOut);
    }
    let mut buf = [0; HELLO_LEN];
    let (len, fds) = stream.recv_with_fds(&mut buf, ACCEPTED_FDS)?;
    let hello = Hello::decode(&buf[..len])?;
    match hello.status {
        Status::Accepted => {}
        Status::Refused => return Err(HandshakeError::Refused),
        Status::SessionLimit => return Err(HandshakeError::SessionLimit),
        Status::OutOfResources => return Err(HandshakeError::ServerOutOfResources),
    }
    if hello.kind != T::KIND || hello.elem != T::elem() {
        return Err(HandshakeError::WrongRing {
            kind: hello.kind,
            elem: hello.elem,
        });
    }
    let found = fds.len();
    let fds = <[OwnedFd; ACCEPTED_FDS]>::try_from(fds).ok();
    let Some([memfd, ready, space]) = fds.filter(|_| hello.fds as usize == ACCEPTED_FDS) else {
        return Err(HandshakeError::MissingFds {
            expected: ACCEPTED_FDS,
            found,
        });
    };
    let size = check_region_size::<T>(memfd.as_fd(), hello.capacity)?;
    let ready = EventFd::from_fd(ready).map_err(HandshakeError::EventFd)?;
    let space = EventFd::from_fd(space).map_err(HandshakeError::SpaceEventFd)?;
    let segment = Segment::from_fd(memfd)?;
    // The size was read before the seals were checked: a server that sealed
    // the memfd only after sending it could have resized it in between.
    if segment.len() as u64 != size {
        return Err(HandshakeError::RegionSize {
            capacity: hello.capacity,
            needed: T::required_size(hello.capacity),
            found: segment.len() as u64,
        });
    }
    let wakeup = Wakeup::EventFds { ready, space };
    Ok(T::connect(segment.into_region()?, stream, wakeup)?)
}

/// The memfd's size (`fstat`), if a ring of `capacity` elements of `T` fits
/// it: at least what the ring needs, and less than a page more.
fn check_region_size<T: Ring>(memfd: BorrowedFd<'_>, capacity: u32) -> Result<u64, HandshakeError> {
    let found = rustix::fs::fstat(memfd)
        .map_err(|errno| ShmError::Sys(SysError::new("fstat", errno)))?
        .st_size
        .cast_unsigned();
    let needed = T::required_size(capacity);
    let page = rustix::param::page_size() as u64;
    match needed {
        Some(needed) if (needed as u64..needed as u64 + page).contains(&found) => Ok(found),
        _ => Err(HandshakeError::RegionSize {
            capacity,
            needed,
            found,
        }),
    }
}

impl<T: Pod> Connection<T> {
    pub(super) fn new(stream: SeqpacketStream, producer: OwnedProducer<T>, wakeup: Wakeup) -> Self {
        Self {
            side: WakingSide::new(producer, wakeup),
            stream,
        }
    }

    /// The producing side of this client's ring (for `len`, `free_slots`);
    /// it keeps the ring mapped while it lives (see [`OwnedConsumer`](super::OwnedConsumer)).
    pub fn producer(&self) -> &OwnedProducer<T> {
        self.side.side()
    }

    /// The producing side of this client's ring, to push to.
    pub fn producer_mut(&mut self) -> &mut OwnedProducer<T> {
        self.side.side_mut()
    }

    /// The producing side and the wake-up together, for pushes that wake the
    /// server (`producer.push_slice_notify(items, wakeup)`).
    pub fn parts(&mut self) -> (&mut OwnedProducer<T>, &Wakeup) {
        self.side.parts()
    }

    /// Pushes `value` and wakes the server if it sleeps:
    /// [`Producer::push_notify`](crate::spsc::Producer::push_notify) through
    /// this connection's wake-up.
    ///
    /// # Errors
    /// As for [`Producer::push_notify`](crate::spsc::Producer::push_notify):
    /// a full ring hands `value` back.
    pub fn push_notify(&mut self, value: T) -> Result<(), PushNotifyError<PushError<T>>> {
        let (producer, wakeup) = self.side.parts();
        producer.push_notify(value, wakeup)
    }

    /// Pushes `value`, waiting for space while the ring is full
    /// ([`Producer::push_blocking`](crate::spsc::Producer::push_blocking)
    /// through this connection's wake-up), and stops once the server hangs
    /// up: no one will ever drain a ring whose server is gone. The server
    /// wakes this producer after its pops
    /// ([`Session::pop_blocking`](super::Session::pop_blocking) does).
    ///
    /// # Errors
    /// Each hands `value` back: `Sleep(`[`WaitError::PeerGone`]`)` once the
    /// server has hung up (noticed within
    /// [`LIVENESS_CHECK`](crate::linux::wake::LIVENESS_CHECK)),
    /// [`BlockingError::Closed`] if it closed the ring; otherwise as for
    /// `push_blocking`.
    #[doc(alias("poll", "futex"))]
    pub fn push_blocking(
        &mut self,
        value: T,
        strategy: SpinThenBlock,
        timeout: Option<Duration>,
    ) -> Result<(), (T, BlockingError<WaitError>)> {
        let peer = Peer::Socket(self.stream.as_fd());
        let (producer, wakeup) = self.side.parts();
        producer.push_watching(value, wakeup, strategy, timeout, peer)
    }

    /// The memory the ring lives in (a sealed memfd): its fd, its length.
    pub fn segment(&self) -> &Segment {
        self.side.side().keeper()
    }

    /// How to wake the server after a push: pass it to `push_notify`, or call
    /// `wake` when `wake_needed` says so.
    pub fn wakeup(&self) -> &Wakeup {
        self.side.wakeup()
    }

    /// The server's credentials: `getsockopt(SO_PEERCRED)`
    /// ([unix(7)](https://man7.org/linux/man-pages/man7/unix.7.html)).
    ///
    /// # Errors
    /// A [`UdsError`] if `getsockopt(SO_PEERCRED)` fails.
    #[doc(alias("getsockopt", "SO_PEERCRED"))]
    pub fn server_credentials(&self) -> Result<Credentials, UdsError> {
        self.stream.peer_credentials()
    }

    /// The producing side, the wake-up and the socket together, for waits
    /// that also watch the server's hang-up.
    #[cfg(feature = "tokio")]
    pub(crate) fn parts_and_socket(&mut self) -> (&mut OwnedProducer<T>, &Wakeup, BorrowedFd<'_>) {
        let (producer, wakeup) = self.side.parts();
        (producer, wakeup, self.stream.as_fd())
    }

    /// The socket, e.g. to notice the server going away (`EPOLLHUP`).
    pub fn socket(&self) -> BorrowedFd<'_> {
        self.stream.as_fd()
    }

    /// Whether the server has closed this client's connection (exited, been
    /// killed, or dropped the session), without blocking: `poll`
    /// ([poll(2)](https://man7.org/linux/man-pages/man2/poll.2.html)).
    ///
    /// A producer whose ring stays full asks this before trying again: no
    /// one will ever drain a ring whose server is gone.
    ///
    /// # Errors
    /// A [`SysError`] if `poll` fails.
    #[doc(alias = "poll")]
    pub fn server_closed(&self) -> Result<bool, SysError> {
        hung_up(self.stream.as_fd())
    }
}
