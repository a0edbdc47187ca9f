//! Sending on tokio from a handshake client: the connection's `space`
//! eventfd and socket on the reactor.

use core::fmt;
use std::os::fd::AsFd;

use super::RegisterError;
use super::producer::send;
use super::readiness::Readiness;
use crate::Pod;
use crate::linux::handshake::Connection;
use crate::linux::wake::WaitError;
use crate::spsc::BlockingError;

/// A [`Connection`] on tokio's reactor: [`send`](Self::send) pushes,
/// awaiting space while the server is behind, and ends with a typed error
/// once the server hangs up or closes the ring. Owns the connection;
/// `'static` and `Send`, for `tokio::spawn`. Dropping it closes the ring and
/// wakes the server (as dropping the connection does).
///
/// ```no_run
/// use ipc_primitives::linux::handshake::connect;
/// use ipc_primitives::linux::tokio::AsyncConnection;
/// use ipc_primitives::linux::uds::UnixAddr;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
/// let conn = connect::<u64>(&UnixAddr::path("/run/logd.sock")?)?;
/// let mut conn = AsyncConnection::new(conn)?;
/// for seq in 0..1000 {
///     conn.send(seq).await.map_err(|(_, err)| err)?;
/// }
/// // Dropping it closes the ring: the server's `recv` ends with `Closed`.
/// # Ok(())
/// # }
/// ```
pub struct AsyncConnection<T> {
    // Declared before `conn`, so dropped before its fds close.
    space: Readiness,
    hang_up: Readiness,
    conn: Connection<T>,
}

impl<T> fmt::Debug for AsyncConnection<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncConnection")
            .field("conn", &self.conn)
            .finish_non_exhaustive()
    }
}

impl<T: Pod> AsyncConnection<T> {
    /// Registers `conn`'s `space` eventfd and socket with the current tokio
    /// runtime (`epoll_ctl`, once each).
    ///
    /// # Errors
    /// [`RegisterError::NoEventFd`] if the connection has no `space` eventfd
    /// (a handshake connection always has one); [`RegisterError::Sys`] if a
    /// registration failed. The connection is dropped: the ring is closed
    /// and the server woken.
    ///
    /// # Panics
    /// Outside a tokio runtime with I/O enabled (as tokio does).
    #[doc(alias = "epoll_ctl")]
    pub fn new(conn: Connection<T>) -> Result<Self, RegisterError> {
        let eventfd = conn
            .wakeup()
            .as_space_eventfd()
            .ok_or(RegisterError::NoEventFd)?;
        // SAFETY: the eventfd and the socket belong to `conn`, which `Self`
        // owns and drops after both registrations.
        let space = unsafe { Readiness::register(eventfd.as_fd()) }?;
        // SAFETY: as above.
        let hang_up = unsafe { Readiness::register(conn.socket()) }?;
        Ok(Self {
            space,
            hang_up,
            conn,
        })
    }

    /// Pushes `value`, awaiting a free slot while the ring is full, then
    /// wakes the server if it sleeps.
    ///
    /// Cancel-safe: a future dropped before it completes has not pushed.
    ///
    /// # Errors
    /// Each hands `value` back: [`BlockingError::Closed`] if the ring is full
    /// and the server closed it (dropped its session);
    /// `Sleep(`[`WaitError::PeerGone`]`)` if the ring is full and the server
    /// hung up without closing (it exited or was killed): no one will drain
    /// it; [`BlockingError::Corrupted`] as for `try_push`;
    /// `Sleep(`[`WaitError::Sys`]`)` if the reactor or a call failed.
    pub async fn send(&mut self, value: T) -> Result<(), (T, BlockingError<WaitError>)> {
        let (producer, wakeup, socket) = self.conn.parts_and_socket();
        send(
            producer,
            wakeup,
            &self.space,
            Some((&self.hang_up, socket)),
            value,
        )
        .await
    }

    /// The connection: the producer, the server's credentials.
    pub fn connection(&mut self) -> &mut Connection<T> {
        &mut self.conn
    }
}
