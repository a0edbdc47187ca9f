//! The daemon handshake: a server accepts a client on a Unix socket, checks who
//! it is, creates that client's ring in a sealed memfd with an eventfd to wake
//! the server, and sends both fds with a versioned [`Hello`].
//!
//! Each client gets its own SPSC ring (fan-in by lanes): a client killed at any
//! instruction can leave at most its own ring half-written, never block the
//! server or another client. The server learns of a death from the socket
//! hang-up ([`Session::peer_closed`], or `EPOLLHUP` on [`Session::socket`]),
//! drains what the client published, and drops the session to free it. A
//! client learns that the server is gone the same way
//! ([`Connection::server_closed`]).
//!
//! ```
//! use ipc_primitives::linux::handshake::{connect, Policy, Server};
//! use ipc_primitives::linux::uds::UnixAddr;
//! use ipc_primitives::linux::wake::Wakeup;
//!
//! let addr = UnixAddr::abstract_name(format!("ipcp-doc-{}", std::process::id()))?;
//! let mut server = Server::<u64>::bind(&addr, 64, Policy::SameUser)?;
//! let client = std::thread::spawn(move || -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//!     let mut conn = connect::<u64>(&addr)?;
//!     conn.push_notify(42)?; // wakes the server if it sleeps
//!     Ok(())
//! });
//! // The outer `?`: the listening socket failed. The inner: this client did.
//! let mut session = server.accept()??;
//! client.join().unwrap().unwrap();
//! assert_eq!(session.consumer_mut().try_pop(), Ok(42));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # A server outlives its clients
//! [`Server::accept`] and [`Server::try_accept`] tell the two kinds of failure
//! apart. A [`ListenerError`] is about the listening socket: nothing more can
//! be accepted, and a daemon stops. A [`ClientError`] is about one client
//! (refused, over the session limit, gone before its hello, or out of fds or
//! memory for its ring): it names the client, the connection is already
//! closed, and the daemon logs it and goes on:
//!
//! ```
//! # use ipc_primitives::linux::handshake::{Policy, Server};
//! # use ipc_primitives::linux::uds::UnixAddr;
//! # let addr = UnixAddr::abstract_name(format!("ipcp-doc-loop-{}", std::process::id()))?;
//! let mut server = Server::<u64>::bind(&addr, 64, Policy::SameUser)?;
//! server.set_max_sessions(Some(64));
//! let mut sessions = Vec::new();
//! // Each time epoll finds the server's fd readable:
//! while let Some(accepted) = server.try_accept()? {
//!     match accepted {
//!         Ok(session) => sessions.push(session),
//!         // Names the client and says what happened (its `source()`).
//!         Err(client) => eprintln!("{client}: {}", client.failure),
//!     }
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Running out of fds does not make the listener spin. The server keeps one
//! spare fd; when `accept4` fails with `EMFILE` or `ENFILE` (the connection
//! stays queued, and the listener stays readable), it closes the spare,
//! accepts the newcomer with the freed fd, tells it
//! [`Status::OutOfResources`], closes it and takes the spare again: each
//! wake-up of an event loop makes progress. [`Server::set_max_sessions`]
//! caps the sessions, so that the fds run out for newcomers rather than for
//! the sessions being served.
//!
//! # The client trusts nothing
//! [`connect`] checks the hello field by field, that both fds came, that the
//! memfd's size is what a ring of the hello's capacity needs (before mapping
//! it: a server cannot make the client map a sparse terabyte), that it is
//! sealed against resizing, that the eventfd is one, and the ring's header.

use core::{fmt, marker::PhantomData, time::Duration};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::Arc;

use rustix::event::PollFlags;
use rustix::io::Errno;
use rustix::process::geteuid;

use super::SysError;
use super::hello::{HELLO_LEN, Hello, HelloError, Status};
use super::poll::{deadline_after, hung_up, poll_fd};
use super::shm::{Segment, ShmError};
use super::uds::{Credentials, SeqpacketListener, SeqpacketStream, UdsError, UnixAddr};
use super::wake::{EventFd, EventFdError, PushNotifyError, Wakeup};
use crate::spsc::{Consumer, Corrupted, PopError, Producer, Spsc};
use crate::{AttachError, CreateError, ElementLayout, Kind, Pod};

/// Fds a hello carries when the client is accepted: the memfd and the eventfd.
const ACCEPTED_FDS: usize = 2;

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

/// One accepted connection: a session, or why that client was dropped.
pub type Accepted<T> = Result<Session<T>, ClientError>;

/// A daemon's listening socket, handing each client a ring of `T`.
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

impl<T: Pod> Server<T> {
    /// Listens on `addr` ([`SeqpacketListener::bind`]); each accepted client
    /// gets a ring of `capacity` elements (a power of two, checked here).
    pub fn bind(addr: &UnixAddr, capacity: u32, policy: Policy) -> Result<Self, HandshakeError> {
        Self::check_capacity(capacity)?;
        Self::with_listener(SeqpacketListener::bind(addr)?, capacity, policy)
    }

    /// A server on a listener bound elsewhere, e.g. with
    /// [`SeqpacketListener::bind_with_mode`] to choose who may connect to a
    /// path; otherwise as [`bind`](Self::bind). Takes its spare fd (see
    /// [A server outlives its clients](self#a-server-outlives-its-clients)):
    /// `fcntl(F_DUPFD_CLOEXEC)`.
    #[doc(alias = "F_DUPFD_CLOEXEC")]
    pub fn with_listener(
        listener: SeqpacketListener,
        capacity: u32,
        policy: Policy,
    ) -> Result<Self, HandshakeError> {
        Self::check_capacity(capacity)?;
        let reserve = take_reserve(listener.as_fd())?;
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

    fn check_capacity(capacity: u32) -> Result<(), CreateError> {
        if Spsc::<T>::required_size(capacity).is_none() || !capacity.is_power_of_two() {
            return Err(CreateError::InvalidCapacity { capacity });
        }
        Ok(())
    }

    /// Caps the sessions alive at once (`None`, the default: no cap). A
    /// client over the cap is told [`Status::SessionLimit`] and reported as
    /// [`ClientFailure::SessionLimit`]; a session frees its place when it is
    /// dropped.
    ///
    /// Each session holds three fds (socket, memfd, eventfd): a cap below a
    /// third of the fds left to the server keeps the fds for the sessions.
    pub fn set_max_sessions(&mut self, max: Option<usize>) {
        self.max_sessions = max;
    }

    /// How many sessions this server handed out are alive.
    pub fn sessions(&self) -> usize {
        Arc::strong_count(&self.seats) - 1
    }

    /// Accepts one client, waiting for one if none is pending (in `poll`,
    /// through signals): see [`try_accept`](Self::try_accept).
    #[doc(alias("accept4", "poll"))]
    pub fn accept(&mut self) -> Result<Accepted<T>, ListenerError> {
        loop {
            if let Some(accepted) = self.try_accept()? {
                return Ok(accepted);
            }
            poll_fd(self.listener.as_fd(), PollFlags::IN, None)
                .map_err(|err| ListenerError(err.into()))?;
        }
    }

    /// Accepts one pending client without waiting for one: `None` if no
    /// client is waiting.
    ///
    /// For a waiting client: checks its credentials against the policy and
    /// the session cap, creates its ring (`memfd_create`, `mmap`) and
    /// eventfd, and sends them with the hello. A client that fails any step
    /// is told why when the hello can say it ([`Status`]), its connection is
    /// closed, and it comes back as a [`ClientError`]: log it and go on.
    /// Out of fds, the newcomer is dropped through the spare fd (see
    /// [A server outlives its clients](self#a-server-outlives-its-clients)).
    ///
    /// [`ListenerError`] means the listening socket failed (or fds ran out
    /// and even the spare fd could not be taken back, because another thread
    /// took the fd it freed): a daemon stops. The one failure of `accept4`
    /// that is neither the listener's nor a client's is the kernel running
    /// out of memory (`ENOMEM`, `ENOBUFS`); it too is a [`ListenerError`],
    /// whose source a daemon may inspect to wait and retry instead.
    #[doc(alias = "accept4")]
    pub fn try_accept(&mut self) -> Result<Option<Accepted<T>>, ListenerError> {
        match self.listener.try_accept() {
            Ok(Some(stream)) => Ok(Some(self.serve(stream))),
            Ok(None) => Ok(None),
            Err(UdsError::Sys(err)) if err.errno == Errno::CONNABORTED => {
                Ok(Some(Err(ClientError::new(None, ClientFailure::Gone))))
            }
            Err(UdsError::Sys(err)) if matches!(err.errno, Errno::MFILE | Errno::NFILE) => {
                self.shed(err)
            }
            Err(err) => Err(ListenerError(err)),
        }
    }

    /// Out of fds (`accept` failed with `err`): closes the spare fd, accepts
    /// the newcomer with it, tells it [`Status::OutOfResources`] and drops
    /// it, then takes the spare fd again.
    fn shed(&mut self, err: SysError) -> Result<Option<Accepted<T>>, ListenerError> {
        let reserve = match self.reserve.take() {
            Some(reserve) => reserve,
            None => take_reserve(self.listener.as_fd()).map_err(|_| ListenerError(err.into()))?,
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
        Ok(shed.map_err(ListenerError)?.map(Err))
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
        let (consumer, wake, size) = self.ring().map_err(|failure| {
            self.tell(&stream, Status::OutOfResources);
            fail(failure)
        })?;
        let hello = hello::<T>(Status::Accepted, self.capacity, size, ACCEPTED_FDS);
        let fds = [consumer.keeper().as_fd(), wake.as_fd()];
        match stream.send_with_fds(&hello.encode(), &fds) {
            Ok(()) => {}
            Err(UdsError::PeerClosed) => return Err(fail(ClientFailure::Gone)),
            Err(err) => return Err(fail(ClientFailure::Socket(err))),
        }
        Ok(Session {
            stream,
            consumer,
            wakeup: Wakeup::EventFd(wake),
            peer,
            _seat: Arc::clone(&self.seats),
        })
    }

    /// A new client's ring (its consuming side, which owns the memfd), its
    /// eventfd, and the ring's size.
    fn ring(&self) -> Result<(OwnedConsumer<T>, EventFd, usize), ClientFailure> {
        let size = Spsc::<T>::required_size(self.capacity).ok_or(ClientFailure::Ring(
            CreateError::InvalidCapacity {
                capacity: self.capacity,
            },
        ))?;
        let segment = Segment::memfd("ipc-primitives-ring", size).map_err(ClientFailure::Memory)?;
        let region = segment.into_region().map_err(ClientFailure::Memory)?;
        let consumer = Spsc::<T>::create(region, self.capacity)
            .map_err(ClientFailure::Ring)?
            .into_consumer();
        let wake = EventFd::new().map_err(ClientFailure::EventFd)?;
        Ok((consumer, wake, size))
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
        self.listener.as_fd().as_raw_fd()
    }
}

fn hello<T>(status: Status, capacity: u32, region_len: usize, fds: usize) -> Hello {
    Hello {
        status,
        kind: Kind::Spsc,
        elem: ElementLayout::of::<T>(),
        capacity,
        region_len: region_len as u64,
        fds: fds as u32,
    }
}

/// The consuming side of a ring in a memfd it owns.
pub type OwnedConsumer<T> = Consumer<'static, T, Arc<Segment>>;
/// The producing side of a ring in a memfd it owns.
pub type OwnedProducer<T> = Producer<'static, T, Arc<Segment>>;

/// The server's side of one client: its credentials, its ring and its eventfd.
///
/// Dropping the session closes the socket and the eventfd, unmaps the ring,
/// and frees its place under [`Server::set_max_sessions`].
pub struct Session<T> {
    stream: SeqpacketStream,
    consumer: OwnedConsumer<T>,
    wakeup: Wakeup,
    peer: Credentials,
    /// Its place in its server's count ([`Server::sessions`]), given back
    /// when it drops.
    _seat: Arc<()>,
}

impl<T> fmt::Debug for Session<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("peer", &self.peer)
            .finish_non_exhaustive()
    }
}

impl<T: Pod> Session<T> {
    /// The client's credentials, as the kernel reported them at connect.
    pub fn credentials(&self) -> Credentials {
        self.peer
    }

    /// The consuming side of the client's ring (for `len`, `is_empty`); it
    /// lives as long as the session.
    pub fn consumer(&self) -> &OwnedConsumer<T> {
        &self.consumer
    }

    /// The consuming side of the client's ring, to pop from.
    pub fn consumer_mut(&mut self) -> &mut OwnedConsumer<T> {
        &mut self.consumer
    }

    /// The consuming side and the wake-up together, for a blocking pop
    /// (`consumer.pop_blocking(wakeup, ..)`).
    pub fn parts(&mut self) -> (&mut OwnedConsumer<T>, &Wakeup) {
        (&mut self.consumer, &self.wakeup)
    }

    /// Pops everything the client has published, passing each element to
    /// `sink`; returns how many. Use it when the client hangs up, before
    /// dropping the session.
    ///
    /// # Errors
    /// [`HandshakeError::Corrupted`] if the client corrupted the ring's
    /// counters.
    pub fn drain(&mut self, mut sink: impl FnMut(T)) -> Result<usize, HandshakeError> {
        let rx = &mut self.consumer;
        let mut count = 0;
        // Bounded: at most one ring's worth was published before the drain.
        for _ in 0..rx.capacity() {
            match rx.try_pop() {
                Ok(value) => {
                    sink(value);
                    count += 1;
                }
                Err(PopError::Empty) => break,
                Err(PopError::Corrupted) => return Err(Corrupted.into()),
            }
        }
        Ok(count)
    }

    /// How the client wakes the server: the eventfd, readable after the client
    /// pushed to a ring whose consumer announced it would sleep.
    pub fn wakeup(&self) -> &Wakeup {
        &self.wakeup
    }

    /// The socket: `EPOLLHUP` on it means the client is gone.
    pub fn socket(&self) -> BorrowedFd<'_> {
        self.stream.as_fd()
    }

    /// Whether the client has closed its end (exited or been killed), without
    /// blocking.
    ///
    /// # Errors
    /// A [`SysError`] if `poll` fails.
    #[doc(alias = "poll")]
    pub fn peer_closed(&self) -> Result<bool, SysError> {
        hung_up(self.stream.as_fd())
    }
}

/// A client's side of the handshake: its ring, and how it wakes the server.
pub struct Connection<T> {
    stream: SeqpacketStream,
    producer: OwnedProducer<T>,
    wakeup: Wakeup,
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
pub fn connect<T: Pod>(addr: &UnixAddr) -> Result<Connection<T>, HandshakeError> {
    connect_timeout(addr, HELLO_TIMEOUT)
}

/// Connects to a server at `addr` and receives this client's ring of `T`,
/// waiting at most `timeout` in all: for room in a full backlog
/// ([`SeqpacketStream::connect_timeout`]), then for the hello (`poll`). A
/// server that is hung, or a listener that never accepts, yields
/// [`HandshakeError::TimedOut`]; signals do not end the wait.
///
/// Checks the hello (magic, version, status, kind, element layout), that
/// both fds arrived, that the memfd's size fits a ring of the hello's
/// capacity (equal to [`Spsc::required_size`], or larger by less than a
/// page) before mapping it, that the memfd is sealed, that the eventfd is
/// one, and attaches to the ring.
#[doc(alias("poll", "fstat"))]
pub fn connect_timeout<T: Pod>(
    addr: &UnixAddr,
    timeout: Duration,
) -> Result<Connection<T>, HandshakeError> {
    let deadline = deadline_after(Some(timeout));
    let stream = SeqpacketStream::connect_until(addr, deadline).map_err(|err| match err {
        UdsError::TimedOut => HandshakeError::TimedOut,
        err => err.into(),
    })?;
    if poll_fd(stream.as_fd(), PollFlags::IN, deadline)?.is_empty() {
        return Err(HandshakeError::TimedOut);
    }
    let mut buf = [0; HELLO_LEN];
    let (len, mut fds) = stream.recv_with_fds(&mut buf, ACCEPTED_FDS)?;
    let hello = Hello::decode(&buf[..len])?;
    match hello.status {
        Status::Accepted => {}
        Status::Refused => return Err(HandshakeError::Refused),
        Status::SessionLimit => return Err(HandshakeError::SessionLimit),
        Status::OutOfResources => return Err(HandshakeError::ServerOutOfResources),
    }
    if hello.kind != Kind::Spsc || hello.elem != ElementLayout::of::<T>() {
        return Err(HandshakeError::WrongRing {
            kind: hello.kind,
            elem: hello.elem,
        });
    }
    if fds.len() != ACCEPTED_FDS || hello.fds as usize != ACCEPTED_FDS {
        return Err(HandshakeError::MissingFds {
            expected: ACCEPTED_FDS,
            found: fds.len(),
        });
    }
    let wake = fds.pop().expect("two fds");
    let memfd = fds.pop().expect("two fds");
    let size = check_region_size::<T>(memfd.as_fd(), hello.capacity)?;
    let wake = EventFd::from_fd(wake)?;
    let segment = Segment::from_fd(memfd)?;
    // The size was read before the seals were checked: a server that sealed
    // the memfd only after sending it could have resized it in between.
    if segment.len() as u64 != size {
        return Err(HandshakeError::RegionSize {
            capacity: hello.capacity,
            needed: Spsc::<T>::required_size(hello.capacity),
            found: segment.len() as u64,
        });
    }
    let producer = Spsc::<T>::attach(segment.into_region()?)?.into_producer();
    Ok(Connection {
        stream,
        producer,
        wakeup: Wakeup::EventFd(wake),
    })
}

/// The memfd's size (`fstat`), if a ring of `capacity` elements of `T` fits
/// it: at least [`Spsc::required_size`], and less than a page more.
#[doc(alias = "fstat")]
fn check_region_size<T: Pod>(memfd: BorrowedFd<'_>, capacity: u32) -> Result<u64, HandshakeError> {
    let found = rustix::fs::fstat(memfd)
        .map_err(SysError::from_call("fstat"))?
        .st_size
        .cast_unsigned();
    let needed = Spsc::<T>::required_size(capacity);
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
    /// The producing side of this client's ring (for `len`, `free_slots`);
    /// it lives as long as the connection.
    pub fn producer(&self) -> &OwnedProducer<T> {
        &self.producer
    }

    /// The producing side of this client's ring, to push to.
    pub fn producer_mut(&mut self) -> &mut OwnedProducer<T> {
        &mut self.producer
    }

    /// The producing side and the wake-up together, for pushes that wake the
    /// server (`producer.push_slice_notify(items, wakeup)`).
    pub fn parts(&mut self) -> (&mut OwnedProducer<T>, &Wakeup) {
        (&mut self.producer, &self.wakeup)
    }

    /// Pushes `value` and wakes the server if it sleeps:
    /// [`Producer::push_notify`] through this connection's wake-up.
    ///
    /// # Errors
    /// As for [`Producer::push_notify`]: a full ring hands `value` back.
    pub fn push_notify(&mut self, value: T) -> Result<(), PushNotifyError<T>> {
        self.producer.push_notify(value, &self.wakeup)
    }

    /// The memory the ring lives in (a sealed memfd): its fd, its length.
    pub fn segment(&self) -> &Segment {
        self.producer.keeper()
    }

    /// How to wake the server after a push: pass it to `push_notify`, or call
    /// `wake` when `wake_needed` says so.
    pub fn wakeup(&self) -> &Wakeup {
        &self.wakeup
    }

    /// The server's credentials.
    ///
    /// # Errors
    /// A [`UdsError`] if `getsockopt(SO_PEERCRED)` fails.
    pub fn server_credentials(&self) -> Result<Credentials, UdsError> {
        self.stream.peer_credentials()
    }

    /// The socket, e.g. to notice the server going away (`EPOLLHUP`).
    pub fn socket(&self) -> BorrowedFd<'_> {
        self.stream.as_fd()
    }

    /// Whether the server has closed this client's connection (exited, been
    /// killed, or dropped the session), without blocking: `poll`.
    ///
    /// A producer whose ring stays full asks this before trying again: no
    /// one will ever drain a ring whose server is gone.
    #[doc(alias = "poll")]
    pub fn server_closed(&self) -> Result<bool, SysError> {
        hung_up(self.stream.as_fd())
    }
}

/// A failure about one client: the server dropped it and goes on.
///
/// Contextual: prints who the client is; [`source`](core::error::Error::source)
/// is the [`ClientFailure`] saying what happened.
#[derive(Debug)]
#[non_exhaustive]
pub struct ClientError {
    /// Who the client is, as `SO_PEERCRED` said; `None` if the failure came
    /// before the kernel could say.
    pub peer: Option<Credentials>,
    /// What happened.
    pub failure: ClientFailure,
}

impl ClientError {
    fn new(peer: Option<Credentials>, failure: ClientFailure) -> Self {
        Self { peer, failure }
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(peer) = self.peer else {
            return f.write_str("dropped a client the kernel did not identify");
        };
        f.write_str("dropped client ")?;
        match peer.pid {
            Some(pid) => write!(f, "pid {}", pid.as_raw_nonzero())?,
            None => f.write_str("(pid in another namespace)")?,
        }
        write!(f, " uid {}", peer.uid.as_raw())
    }
}

impl core::error::Error for ClientError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        Some(&self.failure)
    }
}

/// What happened to a client the server dropped.
#[derive(Debug)]
#[non_exhaustive]
pub enum ClientFailure {
    /// The policy refused its credentials; it was told ([`Status::Refused`]).
    Refused,
    /// The server already served `max` sessions; it was told
    /// ([`Status::SessionLimit`]).
    SessionLimit {
        /// The cap ([`Server::set_max_sessions`]).
        max: usize,
    },
    /// No fd was left to accept it (`accept4` failed with this error): it
    /// was accepted on the spare fd, told [`Status::OutOfResources`], and
    /// dropped.
    OutOfFds(SysError),
    /// It hung up (or its connection was aborted) before its hello was sent.
    Gone,
    /// Its ring's memory could not be created or mapped (e.g. out of fds or
    /// memory); it was told ([`Status::OutOfResources`]).
    Memory(ShmError),
    /// Its ring could not be created in that memory; it was told.
    Ring(CreateError),
    /// Its eventfd could not be created; it was told.
    EventFd(SysError),
    /// Its socket failed: reading its credentials or sending the hello.
    Socket(UdsError),
}

impl fmt::Display for ClientFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Refused => f.write_str("refused by the server's policy"),
            Self::SessionLimit { max } => write!(f, "over the limit of {max} sessions"),
            Self::OutOfFds(_) => f.write_str("out of fds: accepted on the spare fd and closed"),
            Self::Gone => f.write_str("hung up before its hello"),
            Self::Memory(_) => f.write_str("creating its ring's memory failed"),
            Self::Ring(_) => f.write_str("creating its ring failed"),
            Self::EventFd(_) => f.write_str("creating its eventfd failed"),
            Self::Socket(_) => f.write_str("its socket failed"),
        }
    }
}

impl core::error::Error for ClientFailure {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Refused | Self::SessionLimit { .. } | Self::Gone => None,
            Self::OutOfFds(err) | Self::EventFd(err) => Some(err),
            Self::Memory(err) => Some(err),
            Self::Ring(err) => Some(err),
            Self::Socket(err) => Some(err),
        }
    }
}

/// The server's listening socket failed: it cannot accept any more clients.
///
/// Contextual: [`source`](core::error::Error::source) is the socket's error.
#[derive(Debug)]
pub struct ListenerError(UdsError);

impl fmt::Display for ListenerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the server's listening socket failed")
    }
}

impl core::error::Error for ListenerError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// Why binding a server, or a client's handshake, failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum HandshakeError {
    /// A socket operation failed.
    Socket(UdsError),
    /// Creating or mapping the ring's memfd failed.
    Shm(ShmError),
    /// Another system call failed (e.g. `poll`).
    Sys(SysError),
    /// The wake-up fd the server sent is not a usable eventfd.
    EventFd(EventFdError),
    /// The ring could not be created.
    Create(CreateError),
    /// The ring the server sent does not validate.
    Attach(AttachError),
    /// The hello message is malformed.
    Hello(HelloError),
    /// The hello describes a ring of another kind or element type.
    WrongRing {
        /// The kind in the hello.
        kind: Kind,
        /// The element layout in the hello.
        elem: ElementLayout,
    },
    /// The hello arrived without its fds.
    MissingFds {
        /// Fds an accepted hello carries.
        expected: usize,
        /// Fds that arrived.
        found: usize,
    },
    /// The memfd's size does not fit a ring of the hello's capacity; it was
    /// not mapped.
    RegionSize {
        /// The capacity in the hello.
        capacity: u32,
        /// Bytes such a ring of this client's type needs; `None` if no
        /// such ring can exist.
        needed: Option<usize>,
        /// Bytes in the memfd.
        found: u64,
    },
    /// The server's policy refused this client.
    Refused,
    /// The server already serves as many clients as it allows.
    SessionLimit,
    /// The server ran out of fds or memory setting up this client.
    ServerOutOfResources,
    /// No connection or no hello in time.
    TimedOut,
    /// The peer corrupted the ring's counters.
    Corrupted,
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Socket(err) => write!(f, "handshake socket: {err}"),
            Self::Shm(err) => write!(f, "handshake memory: {err}"),
            Self::Sys(err) => write!(f, "handshake: {err}"),
            Self::EventFd(err) => write!(f, "handshake wake-up fd: {err}"),
            Self::Create(err) => write!(f, "creating the client's ring: {err}"),
            Self::Attach(err) => write!(f, "attaching to the ring: {err}"),
            Self::Hello(err) => write!(f, "bad hello: {err}"),
            Self::WrongRing { kind, elem } => write!(
                f,
                "server offers a {kind} of {elem}, not this client's type"
            ),
            Self::MissingFds { expected, found } => {
                write!(f, "hello carried {found} fds, expected {expected}")
            }
            Self::RegionSize {
                capacity,
                needed: Some(needed),
                found,
            } => write!(
                f,
                "the server's memfd is {found} bytes; a ring of {capacity} elements of this type needs {needed}"
            ),
            Self::RegionSize {
                capacity, found, ..
            } => write!(
                f,
                "the server's memfd is {found} bytes, for an impossible ring of {capacity} elements"
            ),
            Self::Refused => f.write_str("the server's policy refused this client"),
            Self::SessionLimit => f.write_str("the server serves as many clients as it allows"),
            Self::ServerOutOfResources => {
                f.write_str("the server ran out of fds or memory for this client")
            }
            Self::TimedOut => f.write_str("no connection or no hello from the server in time"),
            Self::Corrupted => fmt::Display::fmt(&Corrupted, f),
        }
    }
}

impl core::error::Error for HandshakeError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Socket(err) => Some(err),
            Self::Shm(err) => Some(err),
            Self::Sys(err) => Some(err),
            Self::EventFd(err) => Some(err),
            Self::Create(err) => Some(err),
            Self::Attach(err) => Some(err),
            Self::Hello(err) => Some(err),
            _ => None,
        }
    }
}

macro_rules! from_errors {
    ($($variant:ident($err:ty)),*) => {$(
        impl From<$err> for HandshakeError {
            fn from(err: $err) -> Self {
                Self::$variant(err)
            }
        }
    )*};
}

from_errors!(
    Socket(UdsError),
    Shm(ShmError),
    Sys(SysError),
    EventFd(EventFdError),
    Create(CreateError),
    Attach(AttachError),
    Hello(HelloError)
);

impl From<Corrupted> for HandshakeError {
    fn from(Corrupted: Corrupted) -> Self {
        Self::Corrupted
    }
}

#[cfg(test)]
mod tests {
    use core::sync::atomic::{AtomicUsize, Ordering};
    use std::os::fd::OwnedFd;
    use std::thread;
    use std::vec::Vec;

    use super::*;

    fn unique_addr() -> UnixAddr {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        UnixAddr::abstract_name(format!("ipcp-hs-{}-{n}", std::process::id())).unwrap()
    }

    /// A fake server that accepts one connection and sends `bytes` with `fds`.
    fn fake_server(addr: &UnixAddr, bytes: Vec<u8>, fds: Vec<OwnedFd>) -> thread::JoinHandle<()> {
        let listener = SeqpacketListener::bind(addr).unwrap();
        thread::spawn(move || {
            let stream = listener.accept().unwrap();
            let borrowed: Vec<_> = fds.iter().map(AsFd::as_fd).collect();
            stream.send_with_fds(&bytes, &borrowed).unwrap();
            // Keep the socket open until the client has read.
            let _ = stream.recv(&mut [0; 1]);
        })
    }

    #[test]
    fn accepted_client_pushes_and_server_drains_after_hang_up() {
        let addr = unique_addr();
        let mut server = Server::<[u64; 8]>::bind(&addr, 16, Policy::SameUser).unwrap();
        let client = thread::spawn({
            let addr = addr.clone();
            move || {
                let mut conn = connect::<[u64; 8]>(&addr).unwrap();
                let server = conn.server_credentials().unwrap();
                assert_eq!(server.pid, Some(rustix::process::getpid()));
                let tx = conn.producer_mut();
                for i in 0..10 {
                    tx.try_push([i; 8]).unwrap();
                }
            }
        });
        let mut session = server.accept().unwrap().unwrap();
        assert_eq!(session.credentials().uid, geteuid());
        client.join().unwrap();
        assert!(session.peer_closed().unwrap());
        let mut got = Vec::new();
        assert_eq!(session.drain(|m| got.push(m[0])).unwrap(), 10);
        assert_eq!(got, (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn live_client_is_not_reported_closed() {
        let addr = unique_addr();
        let mut server = Server::<u32>::bind(&addr, 4, Policy::AnyUser).unwrap();
        let conn = thread::scope(|s| {
            let client = s.spawn(|| connect::<u32>(&addr).unwrap());
            let session = server.accept().unwrap().unwrap();
            let conn = client.join().unwrap();
            assert!(!session.peer_closed().unwrap());
            assert!(!conn.server_closed().unwrap());
            drop(session);
            assert!(conn.server_closed().unwrap(), "the session was dropped");
            conn
        });
        drop(conn);
    }

    #[test]
    fn policy_refusal_is_reported_to_both_sides() {
        let addr = unique_addr();
        let mut server =
            Server::<u32>::bind(&addr, 4, Policy::Custom(Box::new(|_| false))).unwrap();
        let client = thread::spawn({
            let addr = addr.clone();
            move || connect::<u32>(&addr)
        });
        let refused = server.accept().unwrap().unwrap_err();
        assert!(matches!(refused.failure, ClientFailure::Refused));
        assert_eq!(refused.peer.map(|peer| peer.uid), Some(geteuid()));
        assert_eq!(
            error_chain(&refused),
            format!(
                "dropped client pid {} uid {}: refused by the server's policy",
                rustix::process::getpid().as_raw_nonzero(),
                geteuid().as_raw()
            )
        );
        assert!(matches!(
            client.join().unwrap(),
            Err(HandshakeError::Refused)
        ));
    }

    #[test]
    fn client_of_another_type_is_told_what_the_server_offers() {
        let addr = unique_addr();
        let mut server = Server::<u64>::bind(&addr, 4, Policy::SameUser).unwrap();
        let client = thread::spawn({
            let addr = addr.clone();
            move || connect::<u32>(&addr)
        });
        let _session = server.accept().unwrap().unwrap();
        let err = client.join().unwrap().unwrap_err();
        assert!(matches!(
            err,
            HandshakeError::WrongRing { kind: Kind::Spsc, elem } if elem == ElementLayout::of::<u64>()
        ));
    }

    #[test]
    fn hello_without_fds_is_refused() {
        let addr = unique_addr();
        let hello = hello::<u32>(Status::Accepted, 4, 4096, ACCEPTED_FDS);
        let server = fake_server(&addr, hello.encode().to_vec(), Vec::new());
        let err = connect::<u32>(&addr).unwrap_err();
        assert!(matches!(
            err,
            HandshakeError::MissingFds {
                expected: 2,
                found: 0
            }
        ));
        server.join().unwrap();
    }

    #[test]
    fn garbage_hello_is_refused() {
        let addr = unique_addr();
        let server = fake_server(&addr, b"not a hello".to_vec(), Vec::new());
        let err = connect::<u32>(&addr).unwrap_err();
        assert!(matches!(
            err,
            HandshakeError::Hello(HelloError::Length {
                expected: HELLO_LEN,
                found: 11
            })
        ));
        server.join().unwrap();
    }

    #[test]
    fn unsealed_memfd_is_refused() {
        let addr = unique_addr();
        let memfd = rustix::fs::memfd_create("unsealed", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
        let size = Spsc::<u32>::required_size(4).unwrap();
        rustix::fs::ftruncate(&memfd, size as u64).unwrap();
        let wake = EventFd::new().unwrap();
        let hello = hello::<u32>(Status::Accepted, 4, size, ACCEPTED_FDS);
        let server = fake_server(&addr, hello.encode().to_vec(), vec![memfd, wake.into()]);
        let err = connect::<u32>(&addr).unwrap_err();
        assert!(
            matches!(err, HandshakeError::Shm(ShmError::NotSealed { .. })),
            "{err}"
        );
        server.join().unwrap();
    }

    #[test]
    fn a_server_that_never_answers_times_out() {
        let addr = unique_addr();
        // Listening, but never accepting: the connection waits in the backlog.
        let _listener = SeqpacketListener::bind(&addr).unwrap();
        let err = connect_timeout::<u32>(&addr, Duration::from_millis(50)).unwrap_err();
        assert!(matches!(err, HandshakeError::TimedOut), "{err}");
    }

    /// `err` and its sources, joined by ": ", as `anyhow` prints a chain.
    fn error_chain(err: &dyn core::error::Error) -> String {
        let mut text = err.to_string();
        let mut source = err.source();
        while let Some(err) = source {
            text = format!("{text}: {err}");
            source = err.source();
        }
        text
    }

    #[test]
    fn a_session_limit_refuses_newcomers_with_a_status_until_a_session_ends() {
        let addr = unique_addr();
        let mut server = Server::<u32>::bind(&addr, 4, Policy::SameUser).unwrap();
        server.set_max_sessions(Some(1));
        let client = |addr: &UnixAddr| {
            let addr = addr.clone();
            thread::spawn(move || connect::<u32>(&addr))
        };

        let first = client(&addr);
        let session = server.accept().unwrap().unwrap();
        let first = first.join().unwrap().unwrap();
        assert_eq!(server.sessions(), 1);

        let second = client(&addr);
        let over = server.accept().unwrap().unwrap_err();
        assert!(matches!(
            over.failure,
            ClientFailure::SessionLimit { max: 1 }
        ));
        assert_eq!(over.peer.map(|peer| peer.uid), Some(geteuid()));
        assert!(matches!(
            second.join().unwrap(),
            Err(HandshakeError::SessionLimit)
        ));

        drop(session);
        assert_eq!(server.sessions(), 0);
        let third = client(&addr);
        let _session = server.accept().unwrap().unwrap();
        third.join().unwrap().unwrap();
        drop(first);
    }

    #[test]
    fn a_client_gone_before_its_hello_is_a_client_error() {
        let addr = unique_addr();
        let mut server = Server::<u32>::bind(&addr, 4, Policy::SameUser).unwrap();
        assert!(server.try_accept().unwrap().is_none(), "nobody waits");
        drop(SeqpacketStream::connect(&addr).unwrap());
        let gone = server.try_accept().unwrap().expect("a connection waits");
        let gone = gone.unwrap_err();
        assert!(matches!(gone.failure, ClientFailure::Gone), "{gone:?}");
        assert_eq!(gone.peer.map(|peer| peer.uid), Some(geteuid()));
        assert!(server.try_accept().unwrap().is_none());
        assert_eq!(server.sessions(), 0);
    }

    #[test]
    fn the_server_fd_is_its_listener() {
        let addr = unique_addr();
        let server = Server::<u32>::bind(&addr, 4, Policy::SameUser).unwrap();
        assert_eq!(server.as_raw_fd(), server.as_fd().as_raw_fd());
        let events = crate::linux::poll::poll_now(server.as_fd(), PollFlags::IN).unwrap();
        assert!(events.is_empty());
        let _client = SeqpacketStream::connect(&addr).unwrap();
        let events = crate::linux::poll::poll_now(server.as_fd(), PollFlags::IN).unwrap();
        assert_eq!(events, PollFlags::IN);
    }

    #[test]
    fn refusals_name_their_reason_on_the_client() {
        for (status, expected) in [
            (Status::SessionLimit, "SessionLimit"),
            (Status::OutOfResources, "ServerOutOfResources"),
        ] {
            let addr = unique_addr();
            let hello = hello::<u32>(status, 4, 0, 0);
            let server = fake_server(&addr, hello.encode().to_vec(), Vec::new());
            let err = connect::<u32>(&addr).unwrap_err();
            assert_eq!(format!("{err:?}"), expected);
            server.join().unwrap();
        }
    }

    /// A sealed memfd of a sparse terabyte, sent for a ring of 4 `u32`s: the
    /// client refuses it from its size, before mapping it.
    #[test]
    fn a_memfd_of_the_wrong_size_is_refused_before_mapping() {
        const TIB: u64 = 1 << 40;
        let needed = Spsc::<u32>::required_size(4).unwrap();
        let page = rustix::param::page_size() as u64;
        for size in [TIB, needed as u64 - 1, needed as u64 + page] {
            let addr = unique_addr();
            let memfd = rustix::fs::memfd_create(
                "huge",
                rustix::fs::MemfdFlags::CLOEXEC | rustix::fs::MemfdFlags::ALLOW_SEALING,
            )
            .unwrap();
            rustix::fs::ftruncate(&memfd, size).unwrap();
            rustix::fs::fcntl_add_seals(&memfd, crate::linux::shm::REQUIRED_SEALS).unwrap();
            let wake = EventFd::new().unwrap();
            let hello = hello::<u32>(Status::Accepted, 4, size as usize, ACCEPTED_FDS);
            let server = fake_server(&addr, hello.encode().to_vec(), vec![memfd, wake.into()]);
            let err = connect::<u32>(&addr).unwrap_err();
            assert!(
                matches!(
                    err,
                    HandshakeError::RegionSize { capacity: 4, needed: Some(n), found }
                        if n == needed && found == size
                ),
                "{err:?}"
            );
            server.join().unwrap();
        }
    }

    #[test]
    fn bind_checks_the_capacity() {
        let err = Server::<u32>::bind(&unique_addr(), 3, Policy::SameUser).unwrap_err();
        assert!(matches!(
            err,
            HandshakeError::Create(CreateError::InvalidCapacity { capacity: 3 })
        ));
    }
}
