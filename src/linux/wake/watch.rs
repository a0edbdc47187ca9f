//! Sleeping while watching whether the other side is still there: a socket's
//! hang-up, or a named segment's creator.

use core::time::Duration;
use std::os::fd::{AsFd, BorrowedFd};
use std::time::Instant;

use rustix::event::{PollFd, PollFlags};

use super::WaitError;
use super::wakeup::{Channel, drained_a_wake};
use crate::event::Event;
use crate::linux::poll::{hung_up, is_hang_up, poll_fds};
use crate::linux::shm::{Liveness, Segment};

/// How often a sleep that cannot wait on the peer's liveness itself (a futex
/// sleep, or a named segment's creator) asks whether the peer is alive.
pub const LIVENESS_CHECK: Duration = Duration::from_millis(100);

/// How a sleeper learns that the other side is gone.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Peer<'a> {
    /// It does not: a sleep ends on a wake or at the deadline only.
    Unwatched,
    /// The other side holds the other end of this connected socket: gone
    /// once it hangs up.
    Socket(BorrowedFd<'a>),
    /// The other side created this named segment: gone once
    /// [`Segment::creator_alive`] says so.
    Creator(&'a Segment),
}

impl Peer<'_> {
    /// Whether the peer is gone, asked without waiting.
    fn gone(self) -> Result<bool, WaitError> {
        Ok(match self {
            Self::Unwatched => false,
            Self::Socket(socket) => hung_up(socket)?,
            Self::Creator(segment) => segment.creator_alive() == Liveness::Gone,
        })
    }
}

/// The sleeps of one blocking call that watches its peer.
#[derive(Debug)]
pub(crate) struct Watch<'a> {
    peer: Peer<'a>,
    /// When to ask [`Peer::gone`] next, for sleeps that cannot wait on it.
    next_check: Instant,
}

impl<'a> Watch<'a> {
    pub(crate) fn new(peer: Peer<'a>) -> Self {
        Self {
            peer,
            next_check: Instant::now() + LIVENESS_CHECK,
        }
    }

    /// Sleeps on `event`, announced at `epoch`, through `channel` as
    /// [`Channel::sleep`] does, and ends with [`WaitError::PeerGone`] once
    /// the peer is gone: at once for a socket beside an eventfd (one `poll`
    /// on both), within [`LIVENESS_CHECK`] otherwise.
    pub(crate) fn sleep(
        &mut self,
        channel: Channel<'_>,
        event: &Event,
        epoch: u32,
        deadline: Option<Instant>,
    ) -> Result<(), WaitError> {
        match (self.peer, channel) {
            (Peer::Unwatched, channel) => channel.sleep(event, epoch, deadline),
            (Peer::Socket(socket), Channel::EventFd(eventfd)) => {
                if drained_a_wake(eventfd, event, epoch)? {
                    return Ok(());
                }
                let mut fds = [
                    PollFd::from_borrowed_fd(eventfd.as_fd(), PollFlags::IN),
                    PollFd::from_borrowed_fd(socket, PollFlags::RDHUP),
                ];
                poll_fds(&mut fds, deadline)?;
                let [woken, socket] = fds.map(|fd| fd.revents());
                if is_hang_up(socket) {
                    Err(WaitError::PeerGone)
                } else if woken.is_empty() {
                    Err(WaitError::TimedOut)
                } else {
                    Ok(())
                }
            }
            (peer, channel) => {
                // Sleep until the deadline or the next check, whichever
                // comes first.
                let until =
                    deadline.map_or(self.next_check, |deadline| deadline.min(self.next_check));
                match channel.sleep(event, epoch, Some(until)) {
                    Err(WaitError::TimedOut) if Some(until) == deadline => {
                        return Err(WaitError::TimedOut);
                    }
                    Ok(()) | Err(WaitError::TimedOut) => {}
                    Err(err) => return Err(err),
                }
                // Also after a wake: a peer waking this side all the time
                // must not stop the checks.
                let now = Instant::now();
                if now >= self.next_check {
                    self.next_check = now + LIVENESS_CHECK;
                    if peer.gone()? {
                        return Err(WaitError::PeerGone);
                    }
                }
                Ok(())
            }
        }
    }
}
