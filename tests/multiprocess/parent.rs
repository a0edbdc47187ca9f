//! What the parents of several multi-process test binaries share: a named
//! ring to serve from, and a checked blocking pop of a child's messages.
#![allow(dead_code, reason = "each test binary uses a subset of these helpers")]

use core::time::Duration;
use std::sync::Arc;

use ipc_primitives::linux::handshake::Session;
use ipc_primitives::linux::shm::{CreateOptions, Segment};
use ipc_primitives::linux::wake::{EventFd, SpinThenBlock, WaitError, Wakeup};
use ipc_primitives::spsc::{BlockingError, Consumer, PopError, Spsc};

use crate::harness::{Proc, ShmName};
use crate::message::{Msg, Stream};

/// How long a blocking pop waits before the parent checks on the child. The
/// producers never pause for more than 20 ms, so a pop that times out with
/// messages in the ring was not woken: a lost wake-up.
pub(crate) const POP_TIMEOUT: Duration = Duration::from_secs(5);

/// The consumer of a fresh ring of `capacity` messages in a named segment,
/// which it keeps alive; the name is unlinked when it drops.
pub(crate) fn named_ring(name: &ShmName, capacity: u32) -> Consumer<'static, Msg, Arc<Segment>> {
    let len = Spsc::<Msg>::required_size(capacity).expect("ring size");
    let segment = CreateOptions::new()
        .unlink_on_drop(true)
        .create(&name.0, len)
        .expect("create the named segment");
    Spsc::<Msg>::create(segment.into_region().expect("a writable segment"), capacity)
        .expect("create the ring")
        .into_consumer()
}

/// The eventfd a session's client wakes the server with.
pub(crate) fn eventfd_of(session: &Session<Msg>) -> &EventFd {
    session
        .wakeup()
        .as_eventfd()
        .expect("the handshake hands out eventfd wake-ups")
}

/// Pops `count` messages of client `client` with `pop_blocking`, checking
/// each; `strategy(seq)` says how to wait for message `seq`. A pop that times
/// out with messages waiting fails (a lost wake-up); one that times out on an
/// empty ring checks that the child still runs and is within its time.
pub(crate) fn pop_all_blocking<K>(
    rx: &mut Consumer<'_, Msg, K>,
    wakeup: &Wakeup,
    client: u64,
    count: u64,
    child: &mut Proc,
    strategy: impl Fn(u64) -> SpinThenBlock,
) {
    let mut stream = Stream::new(client);
    while stream.next < count {
        match rx.pop_blocking(wakeup, strategy(stream.next), Some(POP_TIMEOUT)) {
            Ok(msg) => stream.accept(&msg),
            Err(BlockingError::Sleep(WaitError::TimedOut)) => {
                let waiting = rx.len();
                assert_eq!(
                    waiting, 0,
                    "lost wake-up: pop_blocking slept {POP_TIMEOUT:?} with {waiting} messages \
                     in the ring (at message {} of {count})",
                    stream.next
                );
                child.check_alive(&format!("message {} of {count}", stream.next));
            }
            Err(err) => panic!("pop_blocking at message {}: {err}", stream.next),
        }
    }
    assert_eq!(
        rx.try_pop(),
        Err(PopError::Empty),
        "more than {count} arrived"
    );
}
