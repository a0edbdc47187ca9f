//! `async_rtt`: `spsc_blocking_rtt` with the peer awaiting each ping through
//! `recv().await` on a current-thread tokio runtime (the crate's `tokio`
//! feature) instead of a blocking pop. The leader's half is the same, so the
//! two differ only in how the sleeping peer is woken: the reactor's
//! `epoll_wait` and task wake-up against a blocking `poll` on the eventfd.
//! Every ping finds the peer asleep (its spin budget is 0).

use std::{error::Error, os::fd::OwnedFd};

use ipc_primitives::linux::tokio::AsyncConsumer;
use serde_json::Value;

use super::{
    Outcome,
    peer::{Follower, Leader},
    rtt::{self, BlockingPeer, SLOW, answer},
};

pub fn async_rtt(leader: &mut Leader, key: &'static str) -> Result<Outcome, Box<dyn Error>> {
    rtt::blocking(leader, key, "eventfd", 0, SLOW)
}

pub fn async_follow(
    follower: &Follower,
    cmd: &Value,
    fds: Vec<OwnedFd>,
) -> Result<Value, Box<dyn Error>> {
    let BlockingPeer {
        plan,
        key,
        rx,
        mut tx,
        wake_ping,
        wake_pong,
        ..
    } = BlockingPeer::new(cmd, fds)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    runtime.block_on(async {
        let mut rx = AsyncConsumer::new(rx, wake_ping)?;
        follower.ready()?;
        for seq in 0..plan.total() {
            let got = rx.recv().await?;
            tx.push_notify(answer(&key, seq, &got), &wake_pong)
                .map_err(|err| err.to_string())?;
        }
        Ok(Value::Null)
    })
}
