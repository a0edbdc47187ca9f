//! Receiving on tokio: a consumer that awaits its eventfd.

use core::future::poll_fn;
use core::task::Poll;
use std::os::fd::{AsFd, BorrowedFd};

use super::RegisterError;
use super::readiness::Readiness;
use crate::Pod;
use crate::linux::SysError;
use crate::linux::wake::{WaitError, Wakeup, WakingSide};
use crate::spsc::{BlockingError, Consumer, PopError};
use rustix::io::Errno;

/// A ring's consumer on tokio's reactor: [`recv`](Self::recv) awaits the
/// next element, its task asleep (no thread, no CPU) while the ring is empty.
///
/// It owns the consumer and the [`Wakeup`] (whose consumer's eventfd it
/// registers, once); an owned consumer (`Consumer<'static, T, Arc<Segment>>`)
/// makes it `'static` and `Send`, for `tokio::spawn`. Dropping it closes the
/// ring and wakes the producer if it waits for space
/// ([`Consumer::close_notify`]); [`into_parts`](Self::into_parts) does
/// neither.
#[derive(Debug)]
pub struct AsyncConsumer<'a, T, K = ()> {
    // Declared before `side`, so dropped before the eventfd closes.
    ready: Readiness,
    side: WakingSide<Consumer<'a, T, K>>,
}

impl<'a, T: Pod, K> AsyncConsumer<'a, T, K> {
    /// Registers the consumer's eventfd of `wakeup` with the current tokio
    /// runtime (`epoll_ctl`). The producer wakes it with
    /// [`Producer::push_notify`](crate::spsc::Producer::push_notify) (or an
    /// [`AsyncProducer`](super::AsyncProducer)) through the same eventfd.
    ///
    /// # Errors
    /// [`RegisterError::NoEventFd`] for [`Wakeup::Futex`], which no reactor
    /// can wait on; [`RegisterError::Sys`] if the registration failed. The
    /// consumer is dropped: the ring is closed and the producer woken.
    ///
    /// # Panics
    /// Outside a tokio runtime with I/O enabled (as tokio does).
    #[doc(alias = "epoll_ctl")]
    pub fn new(consumer: Consumer<'a, T, K>, wakeup: Wakeup) -> Result<Self, RegisterError> {
        let side = WakingSide::new(consumer, wakeup);
        let eventfd = side.wakeup().as_eventfd().ok_or(RegisterError::NoEventFd)?;
        // SAFETY: the eventfd belongs to `side`'s wake-up, which `Self` owns
        // and drops after `ready`.
        let ready = unsafe { Readiness::register(eventfd.as_fd()) }?;
        Ok(Self { ready, side })
    }

    /// Pops the oldest element, awaiting one while the ring is empty, then
    /// wakes the producer if it waits for space
    /// ([`Consumer::notify`](crate::spsc::Consumer::notify)).
    ///
    /// Cancel-safe: dropping the future before it completes loses no
    /// element (at most, the producer makes one unneeded wake).
    ///
    /// # Errors
    /// [`BlockingError::Closed`] once the producer closed the ring and it is
    /// empty; [`BlockingError::Corrupted`] as for `try_pop`;
    /// `Sleep(`[`WaitError::Sys`]`)` if the reactor or a read failed.
    pub async fn recv(&mut self) -> Result<T, BlockingError<WaitError>> {
        let (consumer, wakeup) = self.side.parts();
        recv(consumer, wakeup, &self.ready, None).await
    }

    /// The consumer, for `len`, `try_pop` and the rest.
    pub fn consumer(&mut self) -> &mut Consumer<'a, T, K> {
        self.side.side_mut()
    }

    /// The wake-up, e.g. to [`Consumer::notify`] through it.
    pub fn wakeup(&self) -> &Wakeup {
        self.side.wakeup()
    }

    /// The consumer and the wake-up back, the ring still open; the
    /// registration ends.
    pub fn into_parts(self) -> (Consumer<'a, T, K>, Wakeup) {
        let Self { ready, side } = self;
        drop(ready);
        side.into_parts()
    }
}

/// The receive of [`AsyncConsumer`] and [`AsyncSession`](super::AsyncSession):
/// the protocol of [`Consumer::pop_or_sleep`] with an await for its sleep,
/// which also ends once `hang_up`'s socket hangs up.
pub(super) async fn recv<T: Pod, K>(
    consumer: &mut Consumer<'_, T, K>,
    wakeup: &Wakeup,
    ready: &Readiness,
    hang_up: Option<(&Readiness, BorrowedFd<'_>)>,
) -> Result<T, BlockingError<WaitError>> {
    // The constructors registered this eventfd, so there is one.
    let eventfd = wakeup
        .as_eventfd()
        .ok_or(BlockingError::Sleep(WaitError::Sys(SysError::new(
            "eventfd",
            Errno::BADF,
        ))))?;
    loop {
        match consumer.try_pop() {
            Ok(value) => {
                // A failure stays announced for the next pop.
                let _ = consumer.notify(wakeup);
                return Ok(value);
            }
            Err(PopError::Empty) => {}
            Err(_) => return Err(BlockingError::Corrupted),
        }
        if consumer.prepare_to_sleep()?.is_none() {
            continue;
        }
        // After the announcement's fence: either the producer's close sees
        // the announcement, or this sees its flag.
        if consumer.is_abandoned() {
            consumer.event().withdraw();
            return match consumer.try_pop() {
                Ok(value) => Ok(value),
                Err(PopError::Empty) => Err(BlockingError::Closed),
                Err(_) => Err(BlockingError::Corrupted),
            };
        }
        let woken = poll_fn(|cx| {
            if let Poll::Ready(woken) = ready.poll_woken(cx, eventfd) {
                return Poll::Ready(woken);
            }
            match hang_up {
                Some((socket_ready, socket)) => socket_ready.poll_hung_up(cx, socket).map(Err),
                None => Poll::Pending,
            }
        })
        .await;
        if let Err(err) = woken {
            consumer.event().withdraw();
            // What the peer pushed before it went is still there.
            return match (err, consumer.try_pop()) {
                (WaitError::PeerGone, Ok(value)) => Ok(value),
                (_, Err(PopError::Corrupted)) => Err(BlockingError::Corrupted),
                // A producer that closed before it hung up (its handle
                // dropped first) closed the ring: say so.
                (WaitError::PeerGone, Err(PopError::Empty)) if consumer.is_abandoned() => {
                    Err(BlockingError::Closed)
                }
                (err, _) => Err(BlockingError::Sleep(err)),
            };
        }
    }
}
