//! The one wait of the Linux layer: `poll` on one fd until a deadline.
//!
//! Every blocking wait in [`linux`](super) goes through [`poll_fd`] (or
//! [`poll_fds`], where a sleep also watches a socket): the eventfd sleep, the
//! blocking accept, the handshake's wait for the hello, the hang-up checks.
//! One convention for time: a deadline is an
//! `Option<Instant>`, `None` waiting for ever; a timeout becomes one through
//! [`deadline_after`]. A signal (`EINTR`) never ends a wait early: the poll
//! is repeated with the time left.

use core::time::Duration;
use std::os::fd::BorrowedFd;
use std::time::Instant;

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::io::Errno;

use super::SysError;

/// The deadline `timeout` from now: `None` (for ever) for `None`, and for a
/// timeout too long to represent.
pub(crate) fn deadline_after(timeout: Option<Duration>) -> Option<Instant> {
    timeout.and_then(|timeout| Instant::now().checked_add(timeout))
}

/// Waits until `fd` reports one of `events` (or an error or hang-up, which
/// `poll` always reports) or `deadline` passes: `poll`. Returns the events
/// that occurred, empty if the deadline passed first.
///
/// Polls once even if `deadline` has already passed, so `Some(Instant::now())`
/// asks without waiting. `EINTR` is retried with the time left.
#[doc(alias = "poll")]
pub(crate) fn poll_fd(
    fd: BorrowedFd<'_>,
    events: PollFlags,
    deadline: Option<Instant>,
) -> Result<PollFlags, SysError> {
    let mut fds = [PollFd::from_borrowed_fd(fd, events)];
    poll_fds(&mut fds, deadline)?;
    Ok(fds[0].revents())
}

/// Waits until one of `fds` reports one of its events (or an error or
/// hang-up) or `deadline` passes, as [`poll_fd`] does for one fd; each
/// entry's `revents` then says what occurred (none if the deadline passed
/// first).
#[doc(alias = "poll")]
pub(crate) fn poll_fds(fds: &mut [PollFd<'_>], deadline: Option<Instant>) -> Result<(), SysError> {
    loop {
        // A wait too long for a `timespec` is a wait for ever.
        let timeout = deadline
            .map(|deadline| deadline.saturating_duration_since(Instant::now()))
            .and_then(|left| Timespec::try_from(left).ok());
        match rustix::event::poll(fds, timeout.as_ref()) {
            Ok(_) => return Ok(()),
            Err(Errno::INTR) => {}
            Err(errno) => return Err(SysError::new("poll", errno)),
        }
    }
}

/// The events `fd` reports now, without waiting: [`poll_fd`] with a deadline
/// that has passed.
pub(crate) fn poll_now(fd: BorrowedFd<'_>, events: PollFlags) -> Result<PollFlags, SysError> {
    poll_fd(fd, events, Some(Instant::now()))
}

/// Whether the peer of the connected socket `fd` has hung up (closed its end,
/// exited, been killed), without waiting: `poll` for `POLLRDHUP`.
pub(crate) fn hung_up(fd: BorrowedFd<'_>) -> Result<bool, SysError> {
    poll_now(fd, PollFlags::RDHUP).map(is_hang_up)
}

/// Whether `revents` from a `poll` for `POLLRDHUP` on a connected socket say
/// its peer hung up.
pub(crate) fn is_hang_up(revents: PollFlags) -> bool {
    revents.intersects(PollFlags::HUP | PollFlags::RDHUP | PollFlags::ERR)
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;

    use super::*;

    #[test]
    fn waits_until_readable_or_the_deadline() {
        let (reader, writer) = rustix::pipe::pipe().unwrap();
        let soon = deadline_after(Some(Duration::from_millis(20)));
        assert_eq!(
            poll_fd(reader.as_fd(), PollFlags::IN, soon),
            Ok(PollFlags::empty())
        );
        assert!(Instant::now() >= soon.unwrap());
        assert_eq!(
            poll_now(reader.as_fd(), PollFlags::IN),
            Ok(PollFlags::empty())
        );
        rustix::io::write(&writer, b"x").unwrap();
        assert_eq!(
            poll_fd(reader.as_fd(), PollFlags::IN, None),
            Ok(PollFlags::IN)
        );
        drop(writer);
        assert!(
            poll_now(reader.as_fd(), PollFlags::IN)
                .unwrap()
                .contains(PollFlags::HUP)
        );
    }

    #[test]
    fn a_passed_deadline_still_polls_once() {
        let (reader, writer) = rustix::pipe::pipe().unwrap();
        rustix::io::write(&writer, b"x").unwrap();
        let past = Instant::now().checked_sub(Duration::from_secs(1));
        assert_eq!(
            poll_fd(reader.as_fd(), PollFlags::IN, past),
            Ok(PollFlags::IN)
        );
    }

    #[test]
    fn an_unrepresentable_timeout_is_for_ever() {
        assert_eq!(deadline_after(None), None);
        assert_eq!(deadline_after(Some(Duration::MAX)), None);
        assert!(deadline_after(Some(Duration::ZERO)).is_some());
    }

    #[test]
    fn hang_up_is_seen_on_a_socket() {
        let (a, b) = rustix::net::socketpair(
            rustix::net::AddressFamily::UNIX,
            rustix::net::SocketType::SEQPACKET,
            rustix::net::SocketFlags::CLOEXEC,
            None,
        )
        .unwrap();
        assert_eq!(hung_up(a.as_fd()), Ok(false));
        drop(b);
        assert_eq!(hung_up(a.as_fd()), Ok(true));
    }
}
