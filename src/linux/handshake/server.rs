//! The daemon's side: a listening socket that hands each client a ring.

use core::{fmt, marker::PhantomData};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::Arc;

use rustix::event::PollFlags;
use rustix::io::Errno;
use rustix::process::geteuid;

use super::offer::private::Ring;
use super::{ACCEPTED_FDS, ClientError, ClientFailure, HandshakeError, Link, Offer, hello};
use crate::CreateError;
use crate::linux::SysError;
use crate::linux::hello::Status;
use crate::linux::poll::poll_fd;
use crate::linux::shm::Segment;
use crate::linux::uds::{
    AddrError, Credentials, SeqpacketListener, SeqpacketStream, UdsError, UnixAddr,
};
use crate::linux::wake::{EventFd, Wakeup};

/// Which clients a server accepts, judged on their `SO_PEERCRED` credentials.
pub enum Policy {
    /// Only processes whose effective uid is this process's effective uid.
    /// A server running as the overflow uid (`nobody`) would also accept
    /// peers whose uid has no mapping in its user namespace (see
    /// [`Credentials::uid`]); use [`Custom`](Self::Custom) there.
    SameUser,
    /// Any process that can connect to the socket.
    AnyUser,
    /// Whatever the function accepts.
    Custom(Box<dyn Fn(&Credentials) -> bool + Send + Sync>),
}

impl Policy {
    fn allows(&self, peer: &Credentials) -> bool {
        match self {
            Self::SameUser => peer.uid == geteuid(),
            Self::AnyUser => true,
            Self::Custom(allows) => allows(peer),
        }
    }
}

impl fmt::Debug for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::SameUser => "SameUser",
            Self::AnyUser => "AnyUser",
            Self::Custom(_) => "Custom(..)",
        })
    }
}

/// One accepted connection: a session ([`Session`](super::Session) for an
/// SPSC ring, [`RecordSession`](super::RecordSession) for
/// [`Records`](super::Records)), or why that client was dropped.
pub type Accepted<T> = Result<<T as Ring>::Session, ClientError>;

/// A daemon's listening socket, handing each client a ring of `T` (an SPSC
/// ring of any [`Pod`](crate::Pod) `T`), or a record ring
/// (`Server<`[`Records`](super::Records)`>`): see [`Offer`].
pub struct Server<T> {
    listener: SeqpacketListener,
    capacity: u32,
    policy: Policy,
    max_sessions: Option<usize>,
    /// One more strong count for each session alive (each holds a clone).
    seats: Arc<()>,
    /// The spare fd closed to accept and drop a newcomer when fds run out;
    /// `None` only while it could not be taken again.
    reserve: Option<OwnedFd>,
    _t: PhantomData<fn() -> T>,
}

impl<T> fmt::Debug for Server<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("listener", &self.listener)
            .field("capacity", &self.capacity)
            .field("policy", &self.policy)
            .field("max_sessions", &self.max_sessions)
            .field("sessions", &(Arc::strong_count(&self.seats) - 1))
            .finish_non_exhaustive()
    }
}

impl<T: Offer> Server<T> {
    /// Listens on `addr` ([`SeqpacketListener::bind`]:
    /// [bind(2)](https://man7.org/linux/man-pages/man2/bind.2.html),
    /// [listen(2)](https://man7.org/linux/man-pages/man2/listen.2.html)); each accepted client gets a ring of
    /// `capacity` elements (of a record ring: `capacity` 8-byte words).
    ///
    /// # Errors
    /// An [`AddrError`] naming `addr`, holding [`HandshakeError::Create`] for
    /// a capacity no such ring can have (not a power of two up to
    /// [`MAX_CAPACITY`](crate::spsc::MAX_CAPACITY) (or
    /// [`bytes::MAX_CAPACITY`](crate::bytes::MAX_CAPACITY)), or too large for
    /// memory), and [`HandshakeError::Socket`] if binding failed or the
    /// spare fd could not be taken.
    #[doc(alias("socket", "listen"))]
    pub fn bind(
        addr: &UnixAddr,
        capacity: u32,
        policy: Policy,
    ) -> Result<Self, AddrError<HandshakeError>> {
        Self::check_capacity(capacity).map_err(|err| AddrError::new(addr, err))?;
        let listener = SeqpacketListener::bind(addr)
            .map_err(|err| AddrError::new(addr, HandshakeError::Socket(err.into_error())))?;
        Self::with_listener(listener, capacity, policy)
    }

    /// A server on a listener bound elsewhere, e.g. with
    /// [`SeqpacketListener::bind_with_mode`] to choose who may connect to a
    /// path; otherwise as [`bind`](Self::bind). Takes its spare fd (see
    /// [A server outlives its clients](super#a-server-outlives-its-clients)):
    /// `fcntl(F_DUPFD_CLOEXEC)`
    /// ([fcntl(2)](https://man7.org/linux/man-pages/man2/fcntl.2.html)).
    ///
    /// # Errors
    /// An [`AddrError`] naming the listener's address, holding
    /// [`HandshakeError::Create`] for an invalid capacity (as for
    /// [`bind`](Self::bind)) and [`HandshakeError::Socket`] if the spare fd
    /// could not be taken.
    #[doc(alias = "F_DUPFD_CLOEXEC")]
    pub fn with_listener(
        listener: SeqpacketListener,
        capacity: u32,
        policy: Policy,
    ) -> Result<Self, AddrError<HandshakeError>> {
        let fail = |err: HandshakeError| AddrError::new(listener.addr(), err);
        Self::check_capacity(capacity).map_err(fail)?;
        let reserve = take_reserve(listener.as_fd())
            .map_err(|err| fail(HandshakeError::Socket(UdsError::Sys(err))))?;
        Ok(Self {
            listener,
            capacity,
            policy,
            max_sessions: None,
            seats: Arc::new(()),
            reserve: Some(reserve),
            _t: PhantomData,
        })
    }

    fn check_capacity(capacity: u32) -> Result<(), HandshakeError> {
        match T::required_size(capacity) {
            Some(_) => Ok(()),
            None => Err(CreateError::InvalidCapacity { capacity }.into()),
        }
    }

    /// Caps the sessions alive at once (`None`, the default: no cap). A
    /// client over the cap is told `Status::SessionLimit` and reported as
    /// [`ClientFailure::SessionLimit`]; a session frees its place when it is
    /// dropped.
    ///
    /// Each session holds four fds (socket, memfd, two eventfds): a cap below
    /// a quarter of the fds left to the server keeps the fds for the
    /// sessions.
    pub fn set_max_sessions(&mut self, max: Option<usize>) {
        self.max_sessions = max;
    }

    /// How many sessions this server handed out are alive.
    pub fn sessions(&self) -> usize {
        Arc::strong_count(&self.seats) - 1
    }

    /// The address the server listens on.
    pub fn addr(&self) -> &UnixAddr {
        self.listener.addr()
    }

    /// Accepts one client, waiting for one if none is pending (in `poll`,
    /// through signals, [poll(2)](https://man7.org/linux/man-pages/man2/poll.2.html)): see
    /// [`try_accept`](Self::try_accept).
    ///
    /// # Errors
    /// As for [`try_accept`](Self::try_accept), and if `poll` fails.
    #[doc(alias("accept4", "poll"))]
    pub fn accept(&mut self) -> Result<Accepted<T>, AddrError> {
        loop {
            if let Some(accepted) = self.try_accept()? {
                return Ok(accepted);
            }
            poll_fd(self.listener.as_fd(), PollFlags::IN, None)
                .map_err(|err| AddrError::new(self.listener.addr(), UdsError::Sys(err)))?;
        }
    }

    /// Accepts one pending client without waiting for one
    /// ([accept4(2)](https://man7.org/linux/man-pages/man2/accept4.2.html)): `None` if no client is waiting.
    ///
    /// For a waiting client: checks its credentials against the policy and
    /// the session cap, creates its ring (`memfd_create`, `mmap`) and its
    /// two eventfds, and sends them with the hello. A client that fails any step
    /// is told why when the hello can say it, its connection is
    /// closed, and it comes back as a [`ClientError`]: log it and go on.
    /// Out of fds, the newcomer is dropped through the spare fd (see
    /// [A server outlives its clients](super#a-server-outlives-its-clients)).
    ///
    /// # Errors
    /// An [`AddrError`] naming the server's address: the listening socket
    /// failed (or fds ran out and even the spare fd could not be taken back,
    /// because another thread took the fd it freed), and a daemon stops. The
    /// one failure of `accept4` that is neither the listener's nor a
    /// client's is the kernel running out of memory (`ENOMEM`, `ENOBUFS`);
    /// it too comes here, and a daemon may inspect it to wait and retry
    /// instead.
    #[doc(alias = "accept4")]
    pub fn try_accept(&mut self) -> Result<Option<Accepted<T>>, AddrError> {
        match self.listener.try_accept() {
            Ok(Some(stream)) => Ok(Some(self.serve(stream))),
            Ok(None) => Ok(None),
            Err(UdsError::Sys(err)) if err.errno == Errno::CONNABORTED => {
                Ok(Some(Err(ClientError::new(None, ClientFailure::Gone))))
            }
            Err(UdsError::Sys(err)) if matches!(err.errno, Errno::MFILE | Errno::NFILE) => {
                self.shed(err)
            }
            Err(err) => Err(AddrError::new(self.listener.addr(), err)),
        }
    }

    /// Out of fds (`accept` failed with `err`): closes the spare fd, accepts
    /// the newcomer with it, tells it `Status::OutOfResources` and drops
    /// it, then takes the spare fd again.
    fn shed(&mut self, err: SysError) -> Result<Option<Accepted<T>>, AddrError> {
        let listener_failed = |err: UdsError| AddrError::new(self.listener.addr(), err);
        let reserve = match self.reserve.take() {
            Some(reserve) => reserve,
            None => take_reserve(self.listener.as_fd())
                .map_err(|_| listener_failed(UdsError::Sys(err)))?,
        };
        drop(reserve);
        let shed = self.listener.try_accept().map(|accepted| {
            accepted.map(|stream| {
                let peer = stream.peer_credentials().ok();
                self.tell(&stream, Status::OutOfResources);
                ClientError::new(peer, ClientFailure::OutOfFds(err))
            })
        });
        // The newcomer's fd is closed by now: take it back as the spare.
        self.reserve = take_reserve(self.listener.as_fd()).ok();
        // `None`: another thread accepted it, or it hung up.
        Ok(shed.map_err(listener_failed)?.map(Err))
    }

    /// Serves one accepted connection.
    fn serve(&self, stream: SeqpacketStream) -> Accepted<T> {
        let peer = stream
            .peer_credentials()
            .map_err(|err| ClientError::new(None, ClientFailure::Socket(err)))?;
        let fail = |failure| ClientError::new(Some(peer), failure);
        if !self.policy.allows(&peer) {
            self.tell(&stream, Status::Refused);
            return Err(fail(ClientFailure::Refused));
        }
        if let Some(max) = self.max_sessions
            && self.sessions() >= max
        {
            self.tell(&stream, Status::SessionLimit);
            return Err(fail(ClientFailure::SessionLimit { max }));
        }
        let (consumer, [ready, space], size) = self.ring().map_err(|failure| {
            self.tell(&stream, Status::OutOfResources);
            fail(failure)
        })?;
        let hello = hello::<T>(Status::Accepted, self.capacity, size, ACCEPTED_FDS);
        let fds = [T::memfd(&consumer).as_fd(), ready.as_fd(), space.as_fd()];
        match stream.send_with_fds(&hello.encode(), &fds) {
            Ok(()) => {}
            Err(UdsError::PeerClosed) => return Err(fail(ClientFailure::Gone)),
            Err(err) => return Err(fail(ClientFailure::Socket(err))),
        }
        let link = Link::new(stream, peer, Arc::clone(&self.seats));
        Ok(T::session(
            link,
            consumer,
            Wakeup::EventFds { ready, space },
        ))
    }

    /// A new client's ring (its consuming side, which owns the memfd), its
    /// `ready` and `space` eventfds, and the ring's size.
    fn ring(&self) -> Result<(T::Consumer, [EventFd; 2], usize), ClientFailure> {
        let size = T::required_size(self.capacity).ok_or(ClientFailure::Ring(
            CreateError::InvalidCapacity {
                capacity: self.capacity,
            },
        ))?;
        let segment = Segment::memfd("ipc-primitives-ring", size).map_err(ClientFailure::Memory)?;
        let region = segment.into_region().map_err(ClientFailure::Memory)?;
        let consumer = T::create(region, self.capacity).map_err(ClientFailure::Ring)?;
        let ready = EventFd::new().map_err(ClientFailure::EventFd)?;
        let space = EventFd::new().map_err(ClientFailure::EventFd)?;
        Ok((consumer, [ready, space], size))
    }

    /// Best effort: the client learns why it is dropped; the outcome stands
    /// either way.
    fn tell(&self, stream: &SeqpacketStream, status: Status) {
        let _ = stream.send(&hello::<T>(status, self.capacity, 0, 0).encode());
    }
}

/// The spare fd: a duplicate of the listener's, `fcntl(F_DUPFD_CLOEXEC)`.
fn take_reserve(listener: BorrowedFd<'_>) -> Result<OwnedFd, SysError> {
    rustix::io::fcntl_dupfd_cloexec(listener, 0)
        .map_err(SysError::from_call("fcntl(F_DUPFD_CLOEXEC)"))
}

impl<T> AsFd for Server<T> {
    /// The listening socket, readable when a client is waiting to be
    /// accepted: register it with `epoll` and call
    /// [`try_accept`](Server::try_accept) until it returns `None`.
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.listener.as_fd()
    }
}

impl<T> AsRawFd for Server<T> {
    /// The listening socket's fd number, for event loops that take one.
    fn as_raw_fd(&self) -> RawFd {
        self.listener.as_raw_fd()
    }
}
