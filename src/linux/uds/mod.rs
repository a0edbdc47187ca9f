//! Unix domain sockets: seqpacket streams, fd passing, peer credentials.
//!
//! The socket is how a daemon finds its clients, checks who they are
//! ([`SeqpacketStream::peer_credentials`]) and hands them memory and wake-up
//! fds ([`SeqpacketStream::send_with_fds`]). Everything here is
//! `SOCK_SEQPACKET`: connection-oriented, reliable, and it keeps message
//! boundaries, so one `send` is one `recv`.
//!
//! - Every fd this module creates or receives is close-on-exec.
//! - A received message that did not fit (data or fds) is an error, never a
//!   silent cut; fds that did arrive are [`OwnedFd`]s and are closed with the
//!   error, so nothing leaks.
//! - Both types implement [`AsFd`](std::os::fd::AsFd), so they can be
//!   registered with `poll`/`epoll`.
//! - A failure to bind or connect to an address comes in an [`AddrError`]
//!   that names it.
//!
//! # Example
//!
//! ```
//! use std::io::{Read, Write};
//! use std::os::fd::AsFd;
//!
//! use ipc_primitives::linux::uds::SeqpacketStream;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let (daemon, client) = SeqpacketStream::pair()?;
//!
//! // The daemon hands over the write end of a pipe with a message.
//! let (mut reader, writer) = std::io::pipe()?;
//! daemon.send_with_fds(b"ring 0", &[writer.as_fd()])?;
//! drop(writer);
//!
//! // The client gets the bytes and its own fd for the same pipe.
//! let mut buf = [0; 64];
//! let (len, fds) = client.recv_with_fds(&mut buf, 1)?;
//! assert_eq!(&buf[..len], b"ring 0");
//! let mut received = std::fs::File::from(fds.into_iter().next().unwrap());
//! received.write_all(b"hello")?;
//! drop(received);
//! let mut text = String::new();
//! reader.read_to_string(&mut text)?;
//! assert_eq!(text, "hello");
//!
//! // Each side can check who is at the other end.
//! let creds = daemon.peer_credentials()?;
//! assert_eq!(creds.pid, Some(rustix::process::getpid()));
//! assert_eq!(creds.uid, rustix::process::geteuid());
//! # Ok(())
//! # }
//! ```

use std::os::fd::{BorrowedFd, OwnedFd};

use rustix::io::Errno;
use rustix::net::{AddressFamily, SocketFlags, SocketType};

mod addr;
mod bind;
mod cred;
mod error;
mod listener;
mod stream;

pub use addr::UnixAddr;
pub use cred::Credentials;
pub use error::{AddrError, UdsError};
pub use listener::SeqpacketListener;
pub use stream::SeqpacketStream;

use super::SysError;

/// Most fds one message can carry (the kernel's `SCM_MAX_FD`).
pub const MAX_FDS: usize = 253;

/// Size of `sun_path`: the most bytes a filesystem address can have.
pub const MAX_PATH_LEN: usize = 108;

/// Most bytes an abstract name can have (`sun_path` minus its leading NUL).
pub const MAX_ABSTRACT_LEN: usize = MAX_PATH_LEN - 1;

/// `socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC)`.
fn seqpacket_socket() -> Result<OwnedFd, UdsError> {
    let fd = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
        None,
    )
    .map_err(SysError::from_call("socket"))?;
    Ok(fd)
}

/// `connect` on a non-blocking socket, retrying `EINTR`. `EAGAIN` means the
/// listener's backlog is full; Unix sockets never answer `EINPROGRESS`.
fn connect_nonblocking(fd: BorrowedFd<'_>, addr: &UnixAddr) -> Result<(), Errno> {
    rustix::io::retry_on_intr(|| rustix::net::connect(fd, &addr.0))
}

#[cfg(test)]
mod tests;
