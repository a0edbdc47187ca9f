//! What can go wrong in a handshake, on either side.

use core::fmt;

use crate::linux::SysError;
use crate::linux::hello::HelloError;
use crate::linux::shm::ShmError;
use crate::linux::uds::{Credentials, UdsError};
use crate::linux::wake::EventFdError;
use crate::{AttachError, CreateError, ElementLayout, Kind};

/// Why setting up a server, or a client's handshake with one, failed.
///
/// It comes in an [`AddrError`](crate::linux::uds::AddrError) that names the
/// server's address. Each variant holding another error is transparent
/// (prints, and has the source of, that error) unless its doc says it is
/// contextual (prints what it was about; the source is that error).
#[derive(Debug)]
#[non_exhaustive]
pub enum HandshakeError {
    /// A socket operation failed.
    Socket(UdsError),
    /// The memory the server sent is unusable: it could not be mapped, or is
    /// not sealed (contextual).
    Shm(ShmError),
    /// The hello's second fd, the `ready` eventfd the client wakes the
    /// server through, is not a usable eventfd (contextual).
    EventFd(EventFdError),
    /// The hello's third fd, the `space` eventfd the server wakes a client
    /// waiting for space through, is not a usable eventfd (contextual).
    SpaceEventFd(EventFdError),
    /// No ring can have the capacity the server was given.
    Create(CreateError),
    /// The ring the server sent does not validate (contextual).
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
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Socket(err) => fmt::Display::fmt(err, f),
            Self::Shm(_) => f.write_str("the memory the server sent is unusable"),
            Self::EventFd(_) => {
                f.write_str("the server's `ready` eventfd (the hello's second fd) is unusable")
            }
            Self::SpaceEventFd(_) => {
                f.write_str("the server's `space` eventfd (the hello's third fd) is unusable")
            }
            Self::Create(err) => fmt::Display::fmt(err, f),
            Self::Attach(_) => f.write_str("the ring the server sent does not validate"),
            Self::Hello(err) => fmt::Display::fmt(err, f),
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
        }
    }
}

impl core::error::Error for HandshakeError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Socket(err) => err.source(),
            Self::Shm(err) => Some(err),
            Self::EventFd(err) | Self::SpaceEventFd(err) => Some(err),
            Self::Create(err) => err.source(),
            Self::Attach(err) => Some(err),
            Self::Hello(err) => err.source(),
            Self::WrongRing { .. }
            | Self::MissingFds { .. }
            | Self::RegionSize { .. }
            | Self::Refused
            | Self::SessionLimit
            | Self::ServerOutOfResources
            | Self::TimedOut => None,
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
    Create(CreateError),
    Attach(AttachError),
    Hello(HelloError)
);

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
    pub(super) fn new(peer: Option<Credentials>, failure: ClientFailure) -> Self {
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
    /// The policy refused its credentials; it was told
    /// (`Status::Refused`).
    Refused,
    /// The server already served `max` sessions; it was told
    /// (`Status::SessionLimit`).
    SessionLimit {
        /// The cap ([`Server::set_max_sessions`](super::Server::set_max_sessions)).
        max: usize,
    },
    /// No fd was left to accept it (`accept4` failed with this error): it
    /// was accepted on the spare fd, told
    /// `Status::OutOfResources`,
    /// and dropped.
    OutOfFds(SysError),
    /// It hung up (or its connection was aborted) before its hello was sent.
    Gone,
    /// Its ring's memory could not be created or mapped (e.g. out of fds or
    /// memory); it was told
    /// (`Status::OutOfResources`).
    Memory(ShmError),
    /// Its ring could not be created in that memory; it was told.
    Ring(CreateError),
    /// One of its two eventfds could not be created; it was told.
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
