//! Accepting and serving on tokio: the server's listener and each session's
//! eventfd and socket on the reactor.

use core::fmt;
use core::future::poll_fn;
use std::os::fd::AsFd;

use super::RegisterError;
use super::consumer::recv;
use super::readiness::Readiness;
use crate::Pod;
use crate::linux::handshake::{Accepted, Server, Session};
use crate::linux::uds::{AddrError, UdsError};
use crate::linux::wake::WaitError;
use crate::spsc::BlockingError;

/// A [`Server`] on tokio's reactor: [`accept`](Self::accept) awaits the
/// next client.
pub struct AsyncServer<T> {
    // Declared before `server`, so dropped before the listener closes.
    listening: Readiness,
    server: Server<T>,
}

impl<T> fmt::Debug for AsyncServer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncServer")
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

impl<T: Pod> AsyncServer<T> {
    /// Registers `server`'s listening socket with the current tokio runtime
    /// (`epoll_ctl`).
    ///
    /// # Errors
    /// [`RegisterError::Sys`] if the registration failed.
    ///
    /// # Panics
    /// Outside a tokio runtime with I/O enabled (as tokio does).
    #[doc(alias = "epoll_ctl")]
    pub fn new(server: Server<T>) -> Result<Self, RegisterError> {
        // SAFETY: the listener belongs to `server`, which `Self` owns and
        // drops after `listening`.
        let listening = unsafe { Readiness::register(server.as_fd()) }?;
        Ok(Self { listening, server })
    }

    /// Accepts one client, awaiting one if none is pending:
    /// [`Server::try_accept`] each time the listener is readable.
    ///
    /// # Errors
    /// As for [`Server::try_accept`]: the outer error is the listener's (a
    /// daemon stops), the inner [`ClientError`](crate::linux::handshake::ClientError)
    /// one client's (log it and go on). A reactor failure comes as the
    /// listener's.
    pub async fn accept(&mut self) -> Result<Accepted<T>, AddrError> {
        let Self { listening, server } = self;
        let accepted = poll_fn(|cx| {
            listening.poll_until(cx, || match server.try_accept() {
                Ok(accepted) => accepted.map(Ok),
                Err(err) => Some(Err(err)),
            })
        })
        .await;
        match accepted {
            Ok(result) => result,
            Err(sys) => Err(AddrError::new(server.addr(), UdsError::Sys(sys))),
        }
    }

    /// The server, for its address, session count and cap.
    pub fn server(&mut self) -> &mut Server<T> {
        &mut self.server
    }
}

/// A [`Session`] on tokio's reactor: [`recv`](Self::recv) awaits the
/// client's next element, and ends with a typed error once the client hangs
/// up. Owns the session; `'static` and `Send`, for `tokio::spawn`. Dropping
/// it closes the ring and wakes the client if it waits for space (as
/// dropping the session does).
pub struct AsyncSession<T> {
    // Declared before `session`, so dropped before its fds close.
    ready: Readiness,
    hang_up: Readiness,
    session: Session<T>,
}

impl<T> fmt::Debug for AsyncSession<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncSession")
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

impl<T: Pod> AsyncSession<T> {
    /// Registers `session`'s eventfd and socket with the current tokio
    /// runtime (`epoll_ctl`, once each).
    ///
    /// # Errors
    /// [`RegisterError::NoEventFd`] if the session has no eventfd (a
    /// handshake session always has one); [`RegisterError::Sys`] if a
    /// registration failed. The session is dropped.
    ///
    /// # Panics
    /// Outside a tokio runtime with I/O enabled (as tokio does).
    #[doc(alias = "epoll_ctl")]
    pub fn new(session: Session<T>) -> Result<Self, RegisterError> {
        let eventfd = session
            .wakeup()
            .as_eventfd()
            .ok_or(RegisterError::NoEventFd)?;
        // SAFETY: the eventfd and the socket belong to `session`, which
        // `Self` owns and drops after both registrations.
        let ready = unsafe { Readiness::register(eventfd.as_fd()) }?;
        // SAFETY: as above.
        let hang_up = unsafe { Readiness::register(session.socket()) }?;
        Ok(Self {
            ready,
            hang_up,
            session,
        })
    }

    /// Pops the client's oldest element, awaiting one while the ring is
    /// empty, then wakes the client if it waits for space.
    ///
    /// Cancel-safe: dropping the future loses no element.
    ///
    /// # Errors
    /// `Sleep(`[`WaitError::PeerGone`]`)` once the client hung up (exited,
    /// was killed, or dropped its connection) and everything it pushed was
    /// popped; [`BlockingError::Closed`] once it closed the ring and the
    /// ring is empty; [`BlockingError::Corrupted`] if it corrupted the
    /// ring; `Sleep(`[`WaitError::Sys`]`)` if the reactor or a call failed.
    pub async fn recv(&mut self) -> Result<T, BlockingError<WaitError>> {
        let (consumer, wakeup, socket) = self.session.parts_and_socket();
        recv(consumer, wakeup, &self.ready, Some((&self.hang_up, socket))).await
    }

    /// The session: credentials, consumer, `drain`.
    pub fn session(&mut self) -> &mut Session<T> {
        &mut self.session
    }
}
