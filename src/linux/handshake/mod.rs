//! The daemon handshake: a server accepts a client on a Unix socket, checks who
//! it is, creates that client's ring in a sealed memfd with two eventfds (one
//! for the client to wake the server after a push, one for the server to wake
//! a client waiting for space after a pop), and sends the three fds with a
//! versioned [hello message](super::hello).
//!
//! Each client gets its own SPSC ring (or its own record ring: see
//! [Record rings](#record-rings)) (fan-in by lanes): a client killed at any
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
//! apart. An [`AddrError`](crate::linux::uds::AddrError) naming the server's
//! address is about the listening socket: nothing more can be accepted, and
//! a daemon stops. A [`ClientError`] is about one client
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
//! accepts the newcomer with the freed fd, tells it it is out of resources,
//! closes it and takes the spare again: each
//! wake-up of an event loop makes progress. [`Server::set_max_sessions`]
//! caps the sessions, so that the fds run out for newcomers rather than for
//! the sessions being served.
//!
//! # The client trusts nothing
//! [`connect`] checks the hello field by field, that both fds came, that the
//! memfd's size is what a ring of the hello's capacity needs (before mapping
//! it: a server cannot make the client map a sparse terabyte), that it is
//! sealed against resizing, that both eventfds are eventfds, and the ring's
//! header.
//! Every failure comes in an [`AddrError`](crate::linux::uds::AddrError)
//! naming the server's address, holding the [`HandshakeError`].
//!
//! # Record rings
//! `Server<`[`Records`]`>` hands each client a ring of variable-length
//! records ([`crate::bytes`]), such as log lines, instead of an SPSC ring:
//! the same accept, policy, session cap, hello and checks, the hello naming
//! the structure ([`Kind::Bytes`](crate::Kind::Bytes)) so that a client of
//! the other kind refuses it ([`HandshakeError::WrongRing`]). The client
//! connects with [`connect_records`] and writes in place
//! ([`RecordConnection::reserve_blocking`], which waits while the ring is
//! full); the server drains a bounded number of records at a time
//! ([`RecordSession::drain`]). `examples/logd.rs` is a whole daemon.
//!
//! ```
//! use ipc_primitives::linux::handshake::{connect_records, Policy, Records, Server};
//! use ipc_primitives::linux::uds::UnixAddr;
//!
//! let addr = UnixAddr::abstract_name(format!("ipcp-doc-rec-{}", std::process::id()))?;
//! // 1024 words: records of up to 4088 bytes.
//! let mut server = Server::<Records>::bind(&addr, 1024, Policy::SameUser)?;
//! let client = std::thread::spawn(move || -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//!     let mut conn = connect_records(&addr)?;
//!     conn.push_notify(b"hello")?;
//!     conn.push_notify(&[b'x'; 4088])?;
//!     Ok(())
//! });
//! let mut session = server.accept()??;
//! client.join().unwrap().unwrap();
//! let mut lens = Vec::new();
//! session.drain(16, |record| lens.push(record.len()))?;
//! assert_eq!(lens, [5, 4088]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The record ring has no end-of-stream mark: each side learns that the
//! other is gone from the socket's hang-up ([`RecordSession::peer_closed`],
//! [`RecordConnection::server_closed`]), and a blocking push ends with
//! [`WaitError::PeerGone`](crate::linux::wake::WaitError::PeerGone) when
//! the server drops the session.

use std::sync::Arc;

mod client;
mod error;
mod offer;
mod records;
mod server;
mod session;

/// Why the server's hello could not be decoded ([`HandshakeError::Hello`]).
pub use super::hello::HelloError;
pub use client::{
    Connection, HELLO_TIMEOUT, connect, connect_records, connect_records_timeout, connect_timeout,
};
pub use error::{ClientError, ClientFailure, HandshakeError};
pub use offer::{Offer, Records};
pub use records::{DrainError, RecordConnection, RecordSession};
pub use server::{Accepted, Policy, Server};
use session::Link;
pub use session::Session;

use super::hello::{Hello, Status};
use super::shm::Segment;
use crate::spsc::{Consumer, Producer};
use offer::private::Ring;

/// Fds a hello carries when the client is accepted: the memfd, the `ready`
/// eventfd and the `space` eventfd, in that order.
const ACCEPTED_FDS: usize = 3;

/// The consuming side of a ring in a memfd it owns.
///
/// The lifetime rule, everywhere in the crate: a handle keeps the memory it
/// uses mapped for as long as the handle lives (an owned one through its
/// `Arc<Segment>`, a borrowed one through its borrow), so there is nothing
/// else to keep alive, for a [`Session`]'s consumer as for any other.
pub type OwnedConsumer<T> = Consumer<'static, T, Arc<Segment>>;
/// The producing side of a ring in a memfd it owns: `'static` and `Send`,
/// so a struct, a `static` or another thread can hold it.
///
/// ```
/// use std::sync::{Mutex, OnceLock};
///
/// use ipc_primitives::linux::handshake::OwnedProducer;
/// use ipc_primitives::linux::shm::Segment;
/// use ipc_primitives::linux::wake::Wakeup;
/// use ipc_primitives::spsc::Spsc;
///
/// /// A global logger: the ring's producer and how to wake its reader.
/// struct Logger {
///     ring: OwnedProducer<u64>,
///     wakeup: Wakeup,
/// }
///
/// static LOGGER: OnceLock<Mutex<Logger>> = OnceLock::new();
///
/// let len = Spsc::<u64>::required_size(64).ok_or("too large")?;
/// let segment = Segment::memfd("logger", len)?;
/// let ring = Spsc::<u64>::create(segment.into_region()?, 64)?.into_producer();
/// let logger = Logger { ring, wakeup: Wakeup::eventfd()? };
/// assert!(LOGGER.set(Mutex::new(logger)).is_ok());
///
/// std::thread::spawn(|| {
///     let mut logger = LOGGER.get().unwrap().lock().unwrap();
///     let Logger { ring, wakeup } = &mut *logger;
///     ring.push_notify(7, wakeup).unwrap();
/// })
/// .join()
/// .unwrap();
/// assert_eq!(LOGGER.get().unwrap().lock().unwrap().ring.len(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub type OwnedProducer<T> = Producer<'static, T, Arc<Segment>>;

/// The hello a server sends for what `T` offers.
fn hello<T: Ring>(status: Status, capacity: u32, region_len: usize, fds: usize) -> Hello {
    Hello {
        status,
        kind: T::KIND,
        elem: T::elem(),
        capacity,
        region_len: region_len as u64,
        fds: fds as u32,
    }
}

#[cfg(test)]
mod tests;
