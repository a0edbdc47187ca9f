//! What can go wrong with a Unix socket, and the address it is about.

use core::fmt;

use rustix::io::Errno;

use super::UnixAddr;
use crate::linux::SysError;

/// Why a Unix socket operation failed.
///
/// Failures of [`bind`](super::SeqpacketListener::bind) and
/// [`connect`](super::SeqpacketStream::connect) come in an [`AddrError`]
/// that names the address; the other operations are on a socket the caller
/// holds.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum UdsError {
    /// A system call failed (transparent: prints, and has the source of, the
    /// [`SysError`]).
    Sys(SysError),
    /// The address does not fit in `sun_path`.
    AddrTooLong {
        /// Length of the given path or name, in bytes.
        len: usize,
        /// The most this kind of address allows.
        max: usize,
    },
    /// The socket path is empty or contains a NUL byte.
    InvalidPath,
    /// The address is taken: a listener is live on it.
    AddrInUse,
    /// The path exists and is not a socket; it was left untouched.
    NotASocket,
    /// A socket file is at the path, but connecting to it to learn whether
    /// a listener is live failed (e.g. `EACCES`: this process may not
    /// connect to it); it was left untouched.
    ProbeFailed {
        /// Why the probing `connect` failed.
        errno: Errno,
    },
    /// What was at the path kept changing while a stale socket was being
    /// replaced; whatever is there was left in place.
    PathChanged,
    /// A socket file mode with bits outside `0o777`.
    InvalidMode {
        /// The mode asked for.
        mode: u32,
    },
    /// A mode for an abstract address, which has no file to carry one.
    ModeOfAbstract,
    /// The listener's backlog stayed full until the timeout.
    TimedOut,
    /// The message did not fit the buffer; the kernel dropped the rest.
    Truncated {
        /// Length of the message as sent, in bytes.
        len: usize,
        /// Size of the buffer it was received into.
        capacity: usize,
    },
    /// The message carried more ancillary data (fds) than there was room
    /// for; the kernel closed what did not fit, the rest were closed here.
    ControlTruncated,
    /// A message carried more fds than allowed; all of them were closed.
    TooManyFds {
        /// Fds in the message.
        count: usize,
        /// The most allowed.
        max: usize,
    },
    /// Sending an empty message: the receiver could not tell it from a
    /// hang-up.
    EmptyMessage,
    /// The peer closed its end (end of stream, `EPIPE` or `ECONNRESET`).
    PeerClosed,
}

impl fmt::Display for UdsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sys(err) => fmt::Display::fmt(err, f),
            Self::AddrTooLong { len, max } => {
                write!(f, "socket address is {len} bytes, at most {max} fit")
            }
            Self::InvalidPath => f.write_str("socket path is empty or contains a NUL byte"),
            Self::AddrInUse => f.write_str("address is in use by a live listener"),
            Self::NotASocket => {
                f.write_str("something other than a socket is there; not removing it")
            }
            Self::ProbeFailed { errno } => write!(
                f,
                "a socket file is there, but connecting to it to see whether it is live failed ({errno}); not removing it"
            ),
            Self::PathChanged => f.write_str(
                "what is there kept changing while its stale socket was being replaced; leaving it",
            ),
            Self::InvalidMode { mode } => {
                write!(f, "socket file mode {mode:#o} has bits outside 0o777")
            }
            Self::ModeOfAbstract => f.write_str("an abstract socket address has no file mode"),
            Self::TimedOut => f.write_str("the listener's backlog stayed full until the timeout"),
            Self::Truncated { len, capacity } => write!(
                f,
                "message of {len} bytes truncated to the {capacity}-byte buffer"
            ),
            Self::ControlTruncated => {
                f.write_str("message carried more fds than there was room for")
            }
            Self::TooManyFds { count, max } => {
                write!(f, "message carries {count} fds, at most {max} allowed")
            }
            Self::EmptyMessage => f.write_str("cannot send an empty message"),
            Self::PeerClosed => f.write_str("peer closed the connection"),
        }
    }
}

impl core::error::Error for UdsError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Sys(err) => err.source(),
            _ => None,
        }
    }
}

impl From<SysError> for UdsError {
    fn from(err: SysError) -> Self {
        Self::Sys(err)
    }
}

/// A failure about a socket address: binding or connecting to it, accepting
/// on a listener there, or (with a
/// [`HandshakeError`](crate::linux::handshake::HandshakeError)) a handshake
/// with the server there.
///
/// Contextual: prints the address only; [`source`](core::error::Error::source)
/// is [`error`](Self::error), saying what happened. One pointer wide (the
/// address is long), so that results carrying it stay small.
#[derive(Clone, PartialEq, Eq)]
pub struct AddrError<E = UdsError>(Box<Located<E>>);

#[derive(Clone, PartialEq, Eq)]
struct Located<E> {
    addr: UnixAddr,
    error: E,
}

impl<E> AddrError<E> {
    /// `error`, about `addr`.
    pub(crate) fn new(addr: &UnixAddr, error: E) -> Self {
        Self(Box::new(Located {
            addr: addr.clone(),
            error,
        }))
    }

    /// The address the failure is about.
    pub fn addr(&self) -> &UnixAddr {
        &self.0.addr
    }

    /// What happened.
    pub fn error(&self) -> &E {
        &self.0.error
    }

    /// What happened, without the address.
    pub fn into_error(self) -> E {
        self.0.error
    }
}

impl<E: fmt::Debug> fmt::Debug for AddrError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AddrError")
            .field("addr", &format_args!("{}", self.0.addr))
            .field("error", &self.0.error)
            .finish()
    }
}

impl<E> fmt::Display for AddrError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "socket {}", self.0.addr)
    }
}

impl<E: core::error::Error + 'static> core::error::Error for AddrError<E> {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        Some(&self.0.error)
    }
}
