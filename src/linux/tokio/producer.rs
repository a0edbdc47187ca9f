//! Sending on tokio: a producer that awaits space.

use core::future::poll_fn;
use core::task::Poll;
use std::os::fd::{AsFd, BorrowedFd};

use super::RegisterError;
use super::readiness::Readiness;
use crate::Pod;
use crate::linux::SysError;
use crate::linux::wake::{WaitError, Wakeup, WakingSide, wake_if};
use crate::spsc::{BlockingError, Producer, PushError};
use rustix::io::Errno;

/// A ring's producer on tokio's reactor: [`send`](Self::send) pushes,
/// awaiting space while the ring is full, and wakes the consumer.
///
/// It needs a [`Wakeup::EventFds`]: the consumer wakes it through the
/// `space` eventfd after its pops (an [`AsyncConsumer`](super::AsyncConsumer)
/// or [`Consumer::pop_blocking`](crate::spsc::Consumer::pop_blocking) do).
/// Dropping it closes the ring and wakes the consumer if it sleeps
/// ([`Producer::close_notify`]); [`into_parts`](Self::into_parts) does
/// neither.
#[derive(Debug)]
pub struct AsyncProducer<'a, T, K = ()> {
    // Declared before `side`, so dropped before the eventfd closes.
    space: Readiness,
    side: WakingSide<Producer<'a, T, K>>,
}

impl<'a, T: Pod, K> AsyncProducer<'a, T, K> {
    /// Registers the `space` eventfd of `wakeup` with the current tokio
    /// runtime (`epoll_ctl`).
    ///
    /// # Errors
    /// [`RegisterError::NoEventFd`] unless `wakeup` is
    /// [`Wakeup::EventFds`]; [`RegisterError::Sys`] if the registration
    /// failed. The producer is dropped: the ring is closed and the consumer
    /// woken.
    ///
    /// # Panics
    /// Outside a tokio runtime with I/O enabled (as tokio does).
    #[doc(alias = "epoll_ctl")]
    pub fn new(producer: Producer<'a, T, K>, wakeup: Wakeup) -> Result<Self, RegisterError> {
        let side = WakingSide::new(producer, wakeup);
        let eventfd = side
            .wakeup()
            .as_space_eventfd()
            .ok_or(RegisterError::NoEventFd)?;
        // SAFETY: the eventfd belongs to `side`'s wake-up, which `Self` owns
        // and drops after `space`.
        let space = unsafe { Readiness::register(eventfd.as_fd()) }?;
        Ok(Self { space, side })
    }

    /// Pushes `value`, awaiting a free slot while the ring is full, then
    /// wakes the consumer if it sleeps (as
    /// [`Producer::push_notify`](crate::spsc::Producer::push_notify)).
    ///
    /// Cancel-safe: a future dropped before it completes has not pushed.
    ///
    /// # Errors
    /// Each hands `value` back: [`BlockingError::Closed`] if the ring is
    /// full and the consumer closed it; [`BlockingError::Corrupted`] as for
    /// `try_push`; `Sleep(`[`WaitError::Sys`]`)` if the reactor or a read
    /// failed. A failed wake of the consumer after the push is not an error
    /// here: the consumer stays announced, and the next send wakes it (as
    /// for `push_blocking`).
    pub async fn send(&mut self, value: T) -> Result<(), (T, BlockingError<WaitError>)> {
        let (producer, wakeup) = self.side.parts();
        send(producer, wakeup, &self.space, None, value).await
    }

    /// The producer, for `len`, `try_push` and the rest.
    pub fn producer(&mut self) -> &mut Producer<'a, T, K> {
        self.side.side_mut()
    }

    /// The wake-up, e.g. to wake the consumer after a `try_push` through it.
    pub fn wakeup(&self) -> &Wakeup {
        self.side.wakeup()
    }

    /// The producer and the wake-up back, the ring still open; the
    /// registration ends.
    pub fn into_parts(self) -> (Producer<'a, T, K>, Wakeup) {
        let Self { space, side } = self;
        drop(space);
        side.into_parts()
    }
}

/// The send of [`AsyncProducer`] and [`AsyncConnection`](super::AsyncConnection):
/// the protocol of [`Producer::push_or_sleep`] with an await for its sleep
/// (on `space`, the registration of `wakeup`'s `space` eventfd), which also
/// ends once `hang_up`'s socket hangs up.
pub(super) async fn send<T: Pod, K>(
    producer: &mut Producer<'_, T, K>,
    wakeup: &Wakeup,
    space: &Readiness,
    hang_up: Option<(&Readiness, BorrowedFd<'_>)>,
    value: T,
) -> Result<(), (T, BlockingError<WaitError>)> {
    let mut value = value;
    // The constructors registered this eventfd, so there is one.
    let Some(eventfd) = wakeup.as_space_eventfd() else {
        let missing = WaitError::Sys(SysError::new("eventfd", Errno::BADF));
        return Err((value, BlockingError::Sleep(missing)));
    };
    loop {
        match producer.try_push(value) {
            Ok(()) => {
                // A failure stays announced for the next push.
                let _ = wake_if(
                    producer.wake_needed(),
                    wakeup.ready(),
                    producer.peer_event(),
                );
                return Ok(());
            }
            Err(PushError::Full(back)) => value = back,
            Err(err) => return Err((err.into_inner(), BlockingError::Corrupted)),
        }
        match producer.prepare_to_sleep() {
            Err(_) => return Err((value, BlockingError::Corrupted)),
            Ok(None) => continue,
            Ok(Some(_)) => {}
        }
        if producer.is_abandoned() {
            producer.event().withdraw();
            return Err((value, BlockingError::Closed));
        }
        let woken = poll_fn(|cx| {
            if let Poll::Ready(woken) = space.poll_woken(cx, eventfd) {
                return Poll::Ready(woken);
            }
            match hang_up {
                Some((socket_ready, socket)) => socket_ready.poll_hung_up(cx, socket).map(Err),
                None => Poll::Pending,
            }
        })
        .await;
        if let Err(err) = woken {
            producer.event().withdraw();
            // A consumer that closed before it hung up (its handle dropped
            // first) closed the ring: say so.
            let err = match err {
                WaitError::PeerGone if producer.is_abandoned() => BlockingError::Closed,
                err => BlockingError::Sleep(err),
            };
            return Err((value, err));
        }
    }
}
