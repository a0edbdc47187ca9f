//! Sending on tokio: a producer that awaits space.

use core::future::poll_fn;
use std::os::fd::AsFd;

use super::RegisterError;
use super::readiness::Readiness;
use crate::Pod;
use crate::linux::SysError;
use crate::linux::wake::{WaitError, Wakeup, wake_if};
use crate::spsc::{BlockingError, Producer, PushError};
use rustix::io::Errno;

/// A ring's producer on tokio's reactor: [`send`](Self::send) pushes,
/// awaiting space while the ring is full, and wakes the consumer.
///
/// It needs a [`Wakeup::EventFds`]: the consumer wakes it through the
/// `space` eventfd after its pops (an [`AsyncConsumer`](super::AsyncConsumer)
/// or [`Consumer::pop_blocking`](crate::spsc::Consumer::pop_blocking) do).
#[derive(Debug)]
pub struct AsyncProducer<'a, T, K = ()> {
    // Declared before `wakeup`, so dropped before the eventfd closes.
    space: Readiness,
    producer: Producer<'a, T, K>,
    wakeup: Wakeup,
}

impl<'a, T: Pod, K> AsyncProducer<'a, T, K> {
    /// Registers the `space` eventfd of `wakeup` with the current tokio
    /// runtime (`epoll_ctl`).
    ///
    /// # Errors
    /// [`RegisterError::NoEventFd`] unless `wakeup` is
    /// [`Wakeup::EventFds`]; [`RegisterError::Sys`] if the registration
    /// failed. The producer is dropped (which closes the ring).
    ///
    /// # Panics
    /// Outside a tokio runtime with I/O enabled (as tokio does).
    #[doc(alias = "epoll_ctl")]
    pub fn new(producer: Producer<'a, T, K>, wakeup: Wakeup) -> Result<Self, RegisterError> {
        let eventfd = wakeup.as_space_eventfd().ok_or(RegisterError::NoEventFd)?;
        // SAFETY: the eventfd belongs to `wakeup`, which `Self` owns and
        // drops after `space`.
        let space = unsafe { Readiness::register(eventfd.as_fd()) }?;
        Ok(Self {
            space,
            producer,
            wakeup,
        })
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
        let mut value = value;
        let Self {
            space,
            producer,
            wakeup,
        } = self;
        // `new` checked that there is one.
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
            if let Err(err) = poll_fn(|cx| space.poll_woken(cx, eventfd)).await {
                producer.event().withdraw();
                return Err((value, BlockingError::Sleep(err)));
            }
        }
    }

    /// The producer, for `len`, `try_push` and the rest.
    pub fn producer(&mut self) -> &mut Producer<'a, T, K> {
        &mut self.producer
    }

    /// The wake-up, e.g. to [`Producer::close_notify`] through it.
    pub fn wakeup(&self) -> &Wakeup {
        &self.wakeup
    }

    /// The producer and the wake-up back; the registration ends.
    pub fn into_parts(self) -> (Producer<'a, T, K>, Wakeup) {
        let Self {
            space,
            producer,
            wakeup,
        } = self;
        drop(space);
        (producer, wakeup)
    }
}
