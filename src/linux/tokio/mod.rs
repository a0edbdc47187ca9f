//! Rings on tokio's reactor (feature `tokio`): `recv().await` on a consumer,
//! `send().await` on a producer, `accept().await` on a handshake server,
//! sessions and client connections that end with a typed error when their
//! peer hangs up (`AsyncSession::recv`, `AsyncConnection::send`).
//!
//! Dropping any of them closes its ring and wakes the peer if it sleeps
//! (`close_notify`): a peer blocked without a timeout learns `Closed` at once.
//!
//! Each type owns what it waits on and registers each fd with the reactor
//! once (`tokio::io::unix::AsyncFd`); a waiting task holds no thread and uses
//! no CPU. The protocol is the blocking one ([`crate::event`]): announce,
//! check again, then await the eventfd; the peer makes a system call only
//! for a sleeper. After each wake the eventfd is drained and its readiness
//! cleared.
//!
//! ```
//! use ipc_primitives::linux::shm::Segment;
//! use ipc_primitives::linux::tokio::{AsyncConsumer, AsyncProducer};
//! use ipc_primitives::linux::wake::Wakeup;
//! use ipc_primitives::spsc::Spsc;
//!
//! let runtime = tokio::runtime::Builder::new_current_thread().enable_io().build()?;
//! runtime.block_on(async {
//!     // Owned handles: each keeps the memfd mapped ('static, Send).
//!     let len = Spsc::<u64>::required_size(4).ok_or("too large")?;
//!     let segment = Segment::memfd("doc-async", len)?;
//!     let (tx, rx) = Spsc::<u64>::create(segment.into_region()?, 4)?.split();
//!     let wakeup = Wakeup::eventfds()?;
//!     let peer = wakeup.try_clone()?; // the other side's copy of both fds
//!     let mut rx = AsyncConsumer::new(rx, wakeup)?;
//!     let mut tx = AsyncProducer::new(tx, peer)?;
//!     let sender = tokio::spawn(async move {
//!         // 4 slots for 100 values: `send` awaits space again and again.
//!         for seq in 0..100u64 {
//!             tx.send(seq).await.map_err(|(_, err)| err)?;
//!         }
//!         Ok::<_, ipc_primitives::spsc::BlockingError<_>>(())
//!     });
//!     for seq in 0..100 {
//!         assert_eq!(rx.recv().await?, seq);
//!     }
//!     sender.await??;
//!     Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
//! })?;
//! # Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
//! ```

use core::fmt;

use crate::linux::SysError;

mod client;
mod consumer;
mod producer;
mod readiness;
mod server;

pub use client::AsyncConnection;
pub use consumer::AsyncConsumer;
pub use producer::AsyncProducer;
pub use server::{AsyncServer, AsyncSession};

/// Why a ring's side could not be put on tokio's reactor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RegisterError {
    /// The [`Wakeup`](crate::linux::wake::Wakeup) has no eventfd for this
    /// side to wait on (a futex cannot be awaited; a producer needs
    /// [`Wakeup::EventFds`](crate::linux::wake::Wakeup::EventFds)).
    NoEventFd,
    /// Registering with the reactor (`epoll_ctl`) failed (transparent:
    /// prints, and has the source of, the [`SysError`]).
    Sys(SysError),
}

impl From<SysError> for RegisterError {
    fn from(err: SysError) -> Self {
        Self::Sys(err)
    }
}

impl fmt::Display for RegisterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoEventFd => {
                f.write_str("no eventfd to wait on (a futex wake-up cannot be awaited)")
            }
            Self::Sys(err) => fmt::Display::fmt(err, f),
        }
    }
}

impl core::error::Error for RegisterError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::NoEventFd => None,
            Self::Sys(err) => err.source(),
        }
    }
}
