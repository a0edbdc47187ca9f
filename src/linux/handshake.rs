//! The daemon handshake: a server accepts a client on a Unix socket, checks who
//! it is, creates that client's ring in a sealed memfd with an eventfd to wake
//! the server, and sends both fds with a versioned [`Hello`].
//!
//! Each client gets its own SPSC ring (fan-in by lanes): a client killed at any
//! instruction can leave at most its own ring half-written, never block the
//! server or another client. The server learns of a death from the socket
//! hang-up ([`Session::peer_closed`], or `EPOLLHUP` on [`Session::socket`]),
//! drains what the client published, and drops the session to free it.
//!
//! ```
//! use ipc_primitives::linux::handshake::{connect, Policy, Server};
//! use ipc_primitives::linux::uds::UnixAddr;
//! use ipc_primitives::linux::wake::Wakeup;
//!
//! let addr = UnixAddr::abstract_name(format!("ipcp-doc-{}", std::process::id()))?;
//! let server = Server::<u64>::bind(&addr, 64, Policy::SameUser)?;
//! let client = std::thread::spawn(move || -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//!     let mut conn = connect::<u64>(&addr)?;
//!     conn.producer_mut().try_push(42).unwrap();
//!     if conn.producer().wake_needed() {
//!         conn.wakeup().wake(conn.producer().event())?;
//!     }
//!     Ok(())
//! });
//! let mut session = server.accept()?;
//! client.join().unwrap().unwrap();
//! assert_eq!(session.consumer_mut().try_pop(), Ok(42));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use core::{fmt, marker::PhantomData, time::Duration};
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Arc;

use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::process::geteuid;

use super::SysError;
use super::hello::{HELLO_LEN, Hello, HelloError, Status};
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

/// A daemon's listening socket, handing each client a ring of `T`.
pub struct Server<T> {
    listener: SeqpacketListener,
    capacity: u32,
    policy: Policy,
    _t: PhantomData<fn() -> T>,
}

impl<T> fmt::Debug for Server<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("listener", &self.listener)
            .field("capacity", &self.capacity)
            .field("policy", &self.policy)
            .finish()
    }
}

impl<T: Pod> Server<T> {
    /// Listens on `addr`; each accepted client gets a ring of `capacity`
    /// elements (a power of two, checked here).
    pub fn bind(addr: &UnixAddr, capacity: u32, policy: Policy) -> Result<Self, HandshakeError> {
        if Spsc::<T>::required_size(capacity).is_none() || !capacity.is_power_of_two() {
            return Err(CreateError::InvalidCapacity { capacity }.into());
        }
        Ok(Self {
            listener: SeqpacketListener::bind(addr)?,
            capacity,
            policy,
            _t: PhantomData,
        })
    }

    /// Accepts one client: checks its credentials, creates its ring and
    /// eventfd, and sends them. A refused client is told so (a hello with
    /// status `Refused`) and gets [`HandshakeError::PolicyRefused`] here.
    pub fn accept(&self) -> Result<Session<T>, HandshakeError> {
        let stream = self.listener.accept()?;
        let peer = stream.peer_credentials()?;
        if !self.policy.allows(&peer) {
            // Best effort: the client learns why; the refusal stands either way.
            let _ = stream.send(&hello::<T>(Status::Refused, self.capacity, 0, 0).encode());
            return Err(HandshakeError::PolicyRefused { peer });
        }
        let size = Spsc::<T>::required_size(self.capacity).ok_or(CreateError::InvalidCapacity {
            capacity: self.capacity,
        })?;
        let segment = Segment::memfd("ipc-primitives-ring", size)?;
        let consumer = Spsc::<T>::create(segment.into_region()?, self.capacity)?.into_consumer();
        let wake = EventFd::new()?;
        let hello = hello::<T>(Status::Accepted, self.capacity, size, ACCEPTED_FDS);
        stream.send_with_fds(&hello.encode(), &[consumer.keeper().as_fd(), wake.as_fd()])?;
        Ok(Session {
            stream,
            consumer,
            wakeup: Wakeup::EventFd(wake),
            peer,
        })
    }
}

impl<T> AsFd for Server<T> {
    /// The listening socket, readable when a client is waiting to be accepted.
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.listener.as_fd()
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

/// The server's side of one client: its credentials, its ring and its eventfd.
///
/// Dropping the session closes the socket and the eventfd and unmaps the ring.
pub struct Session<T> {
    stream: SeqpacketStream,
    consumer: Consumer<'static, T, Arc<Segment>>,
    wakeup: Wakeup,
    peer: Credentials,
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

    /// The consuming side of the client's ring (for `len`, `is_empty`).
    pub fn consumer(&self) -> &Consumer<'static, T, Arc<Segment>> {
        &self.consumer
    }

    /// The consuming side of the client's ring, to pop from.
    pub fn consumer_mut(&mut self) -> &mut Consumer<'static, T, Arc<Segment>> {
        &mut self.consumer
    }

    /// The consuming side and the wake-up together, for a blocking pop
    /// (`consumer.pop_blocking(wakeup, ..)`).
    pub fn parts(&mut self) -> (&mut Consumer<'static, T, Arc<Segment>>, &Wakeup) {
        (&mut self.consumer, &self.wakeup)
    }

    /// Pops everything the client has published, passing each element to
    /// `sink`; returns how many. Use it when the client hangs up, before
    /// dropping the session.
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
    #[doc(alias = "poll")]
    pub fn peer_closed(&self) -> Result<bool, SysError> {
        let mut fds = [PollFd::new(&self.stream, PollFlags::RDHUP)];
        poll(&mut fds, Some(&Timespec::default())).map_err(SysError::from_call("poll"))?;
        let hung_up = PollFlags::HUP | PollFlags::RDHUP | PollFlags::ERR;
        Ok(fds[0].revents().intersects(hung_up))
    }
}

/// A client's side of the handshake: its ring, and how it wakes the server.
pub struct Connection<T> {
    stream: SeqpacketStream,
    producer: Producer<'static, T, Arc<Segment>>,
    wakeup: Wakeup,
}

impl<T> fmt::Debug for Connection<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("stream", &self.stream)
            .finish_non_exhaustive()
    }
}

/// How long [`connect`] waits for the server's hello.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(5);

/// Connects to a server at `addr` and receives this client's ring of `T`,
/// waiting at most [`HELLO_TIMEOUT`] for the hello.
///
/// Checks the hello (magic, version, status, kind, element layout), that both
/// fds arrived, that the memfd is sealed, and attaches to the ring.
pub fn connect<T: Pod>(addr: &UnixAddr) -> Result<Connection<T>, HandshakeError> {
    connect_timeout(addr, HELLO_TIMEOUT)
}

/// [`connect`], waiting at most `timeout` for the server's hello: a server
/// that is hung, or a listener that never accepts, yields
/// [`HandshakeError::TimedOut`].
#[doc(alias = "poll")]
pub fn connect_timeout<T: Pod>(
    addr: &UnixAddr,
    timeout: Duration,
) -> Result<Connection<T>, HandshakeError> {
    let stream = SeqpacketStream::connect(addr)?;
    let mut fds = [PollFd::new(&stream, PollFlags::IN)];
    let timeout = Timespec::try_from(timeout).unwrap_or(Timespec {
        tv_sec: i64::MAX,
        tv_nsec: 0,
    });
    if poll(&mut fds, Some(&timeout)).map_err(SysError::from_call("poll"))? == 0 {
        return Err(HandshakeError::TimedOut);
    }
    let mut buf = [0; HELLO_LEN];
    let (len, mut fds) = stream.recv_with_fds(&mut buf, ACCEPTED_FDS)?;
    let hello = Hello::decode(&buf[..len])?;
    if hello.status == Status::Refused {
        return Err(HandshakeError::Refused);
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
    let wake = EventFd::from_fd(fds.pop().expect("two fds"))?;
    let segment = Segment::from_fd(fds.pop().expect("two fds"))?;
    let producer = Spsc::<T>::attach(segment.into_region()?)?.into_producer();
    Ok(Connection {
        stream,
        producer,
        wakeup: Wakeup::EventFd(wake),
    })
}

impl<T: Pod> Connection<T> {
    /// The producing side of this client's ring (for `len`, `free_slots`).
    pub fn producer(&self) -> &Producer<'static, T, Arc<Segment>> {
        &self.producer
    }

    /// The producing side of this client's ring, to push to.
    pub fn producer_mut(&mut self) -> &mut Producer<'static, T, Arc<Segment>> {
        &mut self.producer
    }

    /// The producing side and the wake-up together, for pushes that wake the
    /// server (`producer.push_slice_notify(items, wakeup)`).
    pub fn parts(&mut self) -> (&mut Producer<'static, T, Arc<Segment>>, &Wakeup) {
        (&mut self.producer, &self.wakeup)
    }

    /// Pushes `value` and wakes the server if it sleeps:
    /// [`Producer::push_notify`] through this connection's wake-up.
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
    pub fn server_credentials(&self) -> Result<Credentials, UdsError> {
        self.stream.peer_credentials()
    }

    /// The socket, e.g. to notice the server going away (`EPOLLHUP`).
    pub fn socket(&self) -> BorrowedFd<'_> {
        self.stream.as_fd()
    }
}

/// Why a handshake failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum HandshakeError {
    /// A socket operation failed.
    Socket(UdsError),
    /// Creating or mapping the ring's memfd failed.
    Shm(ShmError),
    /// Another system call failed (e.g. creating the eventfd).
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
    /// Client side: the server's policy refused this client.
    Refused,
    /// Client side: no hello arrived in time.
    TimedOut,
    /// Server side: the policy refused a client with these credentials.
    PolicyRefused {
        /// Who was refused.
        peer: Credentials,
    },
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
            Self::Refused => f.write_str("the server's policy refused this client"),
            Self::TimedOut => f.write_str("no hello from the server in time"),
            Self::PolicyRefused { peer } => {
                f.write_str("policy refused client ")?;
                match peer.pid {
                    Some(pid) => write!(f, "pid {}", pid.as_raw_nonzero())?,
                    None => f.write_str("(pid in another namespace)")?,
                }
                write!(f, " uid {}", peer.uid.as_raw())
            }
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
        let server = Server::<[u64; 8]>::bind(&addr, 16, Policy::SameUser).unwrap();
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
        let mut session = server.accept().unwrap();
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
        let server = Server::<u32>::bind(&addr, 4, Policy::AnyUser).unwrap();
        let conn = thread::scope(|s| {
            let client = s.spawn(|| connect::<u32>(&addr).unwrap());
            let session = server.accept().unwrap();
            let conn = client.join().unwrap();
            assert!(!session.peer_closed().unwrap());
            conn
        });
        drop(conn);
    }

    #[test]
    fn policy_refusal_is_reported_to_both_sides() {
        let addr = unique_addr();
        let server = Server::<u32>::bind(&addr, 4, Policy::Custom(Box::new(|_| false))).unwrap();
        let client = thread::spawn({
            let addr = addr.clone();
            move || connect::<u32>(&addr)
        });
        let refused = server.accept().unwrap_err();
        assert!(matches!(refused, HandshakeError::PolicyRefused { peer } if peer.uid == geteuid()));
        assert!(matches!(
            client.join().unwrap(),
            Err(HandshakeError::Refused)
        ));
    }

    #[test]
    fn client_of_another_type_is_told_what_the_server_offers() {
        let addr = unique_addr();
        let server = Server::<u64>::bind(&addr, 4, Policy::SameUser).unwrap();
        let client = thread::spawn({
            let addr = addr.clone();
            move || connect::<u32>(&addr)
        });
        let _session = server.accept().unwrap();
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
        rustix::fs::ftruncate(&memfd, 4096).unwrap();
        let wake = EventFd::new().unwrap();
        let hello = hello::<u32>(Status::Accepted, 4, 4096, ACCEPTED_FDS);
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

    #[test]
    fn bind_checks_the_capacity() {
        let err = Server::<u32>::bind(&unique_addr(), 3, Policy::SameUser).unwrap_err();
        assert!(matches!(
            err,
            HandshakeError::Create(CreateError::InvalidCapacity { capacity: 3 })
        ));
    }
}
