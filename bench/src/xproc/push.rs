//! The producer's cost per message with the consumer awake.
//!
//! The leader (core 0) pushes [`MESSAGES`] 64-byte messages into a ring in a
//! memfd segment, spinning whenever it is full, and times the whole batch;
//! the peer (core 1) busy-polls `try_pop` and checks every message, and
//! never announces that it will sleep.
//!
//! - `push_ns`: plain `try_push`.
//! - `push_fence_ns` (for reference): `try_push`, then a `SeqCst` fence, the
//!   one thing `push_notify` adds that may cost more than a few cycles: it
//!   waits for the push's stores to reach the cache, which the consumer's
//!   core keeps taking back.
//! - `push_notify_ns`: `Producer::push_notify` with an eventfd `Wakeup`
//!   attached: after each push a `SeqCst` fence and a look at the ring's
//!   event word, and a system call only if the consumer were asleep. It
//!   never is, so the wake count (the event's epoch, and the eventfd's
//!   counter, which nobody reads) must stay 0; both are reported.
//!
//! Also reported: how often a push found the ring full, per message. A
//! producer that is faster than the consumer spends its spare time there,
//! which hides part of its own cost.

use std::{
    error::Error,
    os::fd::{AsFd, OwnedFd},
    sync::atomic::{Ordering, fence},
    time::Instant,
};

use ipc_primitives::{
    linux::{
        shm::Segment,
        wake::{EventFd, PushNotifyError, Wakeup},
    },
    spsc::{PushError, Spsc},
};
use serde_json::{Value, json};

use super::{
    Cost, Outcome,
    peer::{Follower, Leader, field_u64},
    tput::ring_segment,
};
use crate::{
    inproc::{CAPACITY, MESSAGES},
    loops::{Msg, consume, produce, spsc_pop},
};

/// How the leader pushes.
enum Mode {
    Plain,
    Fence,
    Notify(Wakeup),
}

pub fn push(leader: &mut Leader, key: &'static str) -> Result<Outcome, Box<dyn Error>> {
    lead(leader, key, Mode::Plain)
}

pub fn push_fence(leader: &mut Leader, key: &'static str) -> Result<Outcome, Box<dyn Error>> {
    lead(leader, key, Mode::Fence)
}

pub fn push_notify(leader: &mut Leader, key: &'static str) -> Result<Outcome, Box<dyn Error>> {
    lead(leader, key, Mode::Notify(Wakeup::eventfd()?))
}

/// Times the pushes.
fn lead(leader: &mut Leader, key: &str, mode: Mode) -> Result<Outcome, Box<dyn Error>> {
    let seg = ring_segment::<Msg>()?;
    let mut tx = Spsc::<Msg>::create(seg.region()?, CAPACITY as u32)?.into_producer();
    let eventfd = match &mode {
        Mode::Notify(wakeup) => wakeup.as_eventfd(),
        _ => None,
    };
    let mut fds = vec![seg.as_fd()];
    fds.extend(eventfd.map(AsFd::as_fd));
    leader.start(&json!({ "scenario": key, "messages": MESSAGES }), &fds)?;

    let epoch = tx.peer_event().epoch();
    let mut full = 0_u64;
    let mut count_full = |msg| {
        full += 1;
        Err(msg)
    };
    let start = Instant::now();
    match &mode {
        Mode::Plain => produce(MESSAGES, |msg| match tx.try_push(msg) {
            Ok(()) => Ok(()),
            Err(PushError::Full(msg)) => count_full(msg),
            Err(err) => panic!("{key}: {err}"),
        }),
        Mode::Fence => produce(MESSAGES, |msg| match tx.try_push(msg) {
            Ok(()) => {
                fence(Ordering::SeqCst);
                Ok(())
            }
            Err(PushError::Full(msg)) => count_full(msg),
            Err(err) => panic!("{key}: {err}"),
        }),
        Mode::Notify(wakeup) => produce(MESSAGES, |msg| match tx.push_notify(msg, wakeup) {
            Ok(()) => Ok(()),
            Err(PushNotifyError::Push(PushError::Full(msg))) => count_full(msg),
            Err(err) => panic!("{key}: {err}"),
        }),
    }
    let ns = start.elapsed().as_nanos() as f64;
    leader.finish()?;

    Ok(Outcome::Cost(Cost {
        ns_per_msg: ns / MESSAGES as f64,
        full_per_msg: full as f64 / MESSAGES as f64,
        wakes: u64::from(tx.peer_event().epoch().wrapping_sub(epoch)),
        signals: eventfd.map(EventFd::drain).transpose()?.unwrap_or(0),
    }))
}

/// The consumer of all three: busy-polls, checks, never sleeps. Adopts the
/// eventfd, if one came, only to check that it is one.
pub fn follow(
    follower: &Follower,
    cmd: &Value,
    fds: Vec<OwnedFd>,
) -> Result<Value, Box<dyn Error>> {
    let messages = field_u64(cmd, "messages")?;
    let mut fds = fds.into_iter();
    let seg = Segment::from_fd(fds.next().ok_or("missing segment fd")?)?;
    let _eventfd = fds.next().map(EventFd::from_fd).transpose()?;
    let mut rx = Spsc::<Msg>::attach(seg.region()?)?.into_consumer();
    let name = cmd["scenario"].as_str().unwrap_or_default();
    follower.ready()?;
    consume(name, messages, || spsc_pop(&mut rx));
    Ok(Value::Null)
}
