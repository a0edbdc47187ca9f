//! Wake-ups for the [`event`](crate::event) protocol: eventfd and futex, and the
//! blocking pops and pushes and notifying pushes built on them.
//!
//! A consumer that finds its ring empty announces itself on the ring's
//! [`Event`] and sleeps; the producer, after a push, asks
//! [`Producer::wake_needed`] and makes a system call only if it says so. A
//! producer whose consumer is awake therefore makes none.
//! [`Consumer::pop_blocking`] and [`Producer::push_notify`] do both halves;
//! a [`Wakeup`] says how the consumer sleeps.
//!
//! The other direction is the mirror image: a producer that finds its ring
//! full announces itself on the ring's `space` event and sleeps
//! ([`Producer::push_blocking`]); the consumer, after its pops, asks
//! [`Consumer::wake_needed`] and wakes it only if it says so
//! ([`Consumer::pop_blocking`] does, and [`Consumer::notify`] after other
//! pops).
//!
//! # Eventfd or futex
//! Both sides of a ring must use the same kind (agree on it in the handshake).
//!
//! - **[`EventFd`]**: the consumer sleeps in `poll` on an eventfd and the
//!   producer writes to it. The fd is pollable, so an event loop (`epoll`, mio,
//!   tokio's `AsyncFd`) waits on it beside its sockets and other rings: the
//!   choice for a daemon. It is one more fd to hand the peer over the Unix
//!   socket, next to the memory's. With [`Wakeup::EventFd`] a producer
//!   waiting for space sleeps on the futex; [`Wakeup::EventFds`] gives it an
//!   eventfd of its own, for a producer in an event loop too (what the
//!   handshake hands out).
//! - **Futex** ([`Wakeup::Futex`], [`futex_wait`], [`futex_wake`]): the consumer
//!   sleeps in the kernel on the event's epoch word itself, in the shared
//!   memory. No fd, nothing to pass, the least overhead; but only a thread
//!   blocked in `futex_wait` can wait on it, not an event loop. The futexes are
//!   shared (never `FUTEX_PRIVATE_FLAG`), as memory mapped by two processes
//!   requires.
//!
//! ```
//! use core::time::Duration;
//! use std::thread;
//!
//! use ipc_primitives::linux::wake::{SpinThenBlock, Wakeup};
//! use ipc_primitives::spsc::StaticSpsc;
//!
//! let mut ring = StaticSpsc::<u64, 64>::new();
//! let (mut tx, mut rx) = ring.split();
//! let wakeup = Wakeup::eventfd()?; // or `Wakeup::Futex`
//!
//! thread::scope(|s| {
//!     let wakeup = &wakeup;
//!     s.spawn(move || {
//!         // 32 messages fit in 64 slots, so no push finds the ring full.
//!         for seq in 0..32 {
//!             tx.push_notify(seq, wakeup).expect("push");
//!         }
//!     });
//!     let timeout = Some(Duration::from_secs(10));
//!     for seq in 0..32 {
//!         assert_eq!(rx.pop_blocking(wakeup, SpinThenBlock::default(), timeout)?, seq);
//!     }
//!     Ok::<(), Box<dyn std::error::Error>>(())
//! })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Event loops
//! A consumer driven by `epoll` (or tokio's `AsyncFd`) registers the
//! [`EventFd`] for reading and, for each ring: pops until empty; calls
//! [`Consumer::prepare_to_sleep`]; on `Ok(None)` pops again, on `Ok(Some(_))`
//! leaves the ring to the event loop. When the eventfd is readable it calls
//! [`EventFd::drain`] and pops again. The producer uses
//! [`Producer::push_notify`] as usual.
//!
//! # Trust
//! A peer can wake the consumer as often as it likes (writing the eventfd, or
//! changing the epoch word so that `futex_wait` returns at once) or never (by
//! not waking it). Neither is undefined behaviour, but a consumer of an
//! untrusted peer should pass a timeout, which bounds every wait here.
//!
//! An eventfd's `O_NONBLOCK` flag belongs to the open file, which the peer
//! shares and can change. Reads here never block whatever the flag
//! (`preadv2(RWF_NOWAIT)`; on older kernels, whose eventfds refuse it, they
//! fall back to `read`, which relies on the flag). A write blocks only if the
//! counter is at its maximum (`u64::MAX - 1`) *and* the flag was cleared,
//! which only a hostile holder of the fd can arrange.
//!
//! [`Event`]: crate::event::Event
//! [`Producer::wake_needed`]: crate::spsc::Producer::wake_needed
//! [`Producer::push_notify`]: crate::spsc::Producer::push_notify
//! [`Producer::push_blocking`]: crate::spsc::Producer::push_blocking
//! [`Consumer::wake_needed`]: crate::spsc::Consumer::wake_needed
//! [`Consumer::notify`]: crate::spsc::Consumer::notify
//! [`Consumer::pop_blocking`]: crate::spsc::Consumer::pop_blocking
//! [`Consumer::prepare_to_sleep`]: crate::spsc::Consumer::prepare_to_sleep

use core::fmt;

mod blocking;
mod eventfd;
mod futex;
pub(crate) mod wakeup;
pub(crate) mod waking_side;
pub(crate) mod watch;

pub(crate) use blocking::wake_if;
pub use blocking::{PushNotifyError, SpinThenBlock};
pub use eventfd::{EventFd, EventFdError};
pub use futex::{futex_wait, futex_wake};
pub use wakeup::Wakeup;
pub(crate) use waking_side::WakingSide;
pub use watch::LIVENESS_CHECK;

use super::SysError;

/// Why a wait for a wake-up ([`EventFd::wait`], [`futex_wait`],
/// [`Wakeup::sleep`], and so a blocking pop, push or receive) ended without
/// one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WaitError {
    /// The timeout or deadline passed.
    TimedOut,
    /// The other side is gone (its process exited, or closed its end), and
    /// everything it sent before has been taken: nothing more will come.
    PeerGone,
    /// A system call failed (transparent: prints, and has the source of, the
    /// [`SysError`]).
    Sys(SysError),
}

impl From<SysError> for WaitError {
    fn from(err: SysError) -> Self {
        Self::Sys(err)
    }
}

impl fmt::Display for WaitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TimedOut => f.write_str("timed out waiting for a wake-up"),
            Self::PeerGone => f.write_str("the other side is gone (exited or closed its end)"),
            Self::Sys(err) => fmt::Display::fmt(err, f),
        }
    }
}

impl core::error::Error for WaitError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::TimedOut | Self::PeerGone => None,
            Self::Sys(err) => err.source(),
        }
    }
}

#[cfg(test)]
mod space_tests;
#[cfg(test)]
mod tests;
