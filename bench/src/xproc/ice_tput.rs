//! iceoryx2's publish-subscribe moving a stream, beside this crate's
//! broadcast and record-ring throughput.
//!
//! - `iceoryx2_tput_r1`, `_r4`: one publisher (the leader, core 0) and 1 or
//!   4 subscriber processes (all on core 1), 64-byte samples, as
//!   `broadcast_tput_r1` and `_r4` move them.
//! - `iceoryx2_tput_1k`: 1 KiB samples to one subscriber, as
//!   `varlen_tput_1k` moves records.
//!
//! Samples are slices of `u64` (iceoryx2's variable-length payload), every
//! word the sample's sequence number; each subscriber checks every word, in
//! order. No sample may be lost, so the service is set up for a lossless
//! stream: a subscriber buffer of [`CAPACITY`] samples, no safe overflow,
//! and the publisher retrying until delivered (iceoryx2's own flow control,
//! where the broadcast bench adds acknowledgements outside the ring). A
//! subscriber that finds nothing spins a while, then yields the core to
//! the other subscribers. A run moves a tenth of the samples the crate's
//! structures move. The rate is samples over the time from the first
//! send to the last subscriber's last sample (one monotonic clock for every
//! process).

use std::{
    error::Error,
    os::fd::OwnedFd,
    time::{SystemTime, UNIX_EPOCH},
};

use iceoryx2::{port::publisher::Publisher, prelude::*};
use serde_json::{Value, json};

use super::{
    Outcome,
    peer::{Follower, Leader, PeerCommand, field_u64},
    varlen::tput_messages,
};
use crate::{
    inproc::CAPACITY,
    loops::{Backoff, monotonic_ns},
};

type IceService = ipc::Service;
type Stream =
    iceoryx2::service::port_factory::publish_subscribe::PortFactory<IceService, [u64], ()>;

/// A node that leaves the process's signal handlers alone.
fn node() -> Result<Node<IceService>, Box<dyn Error>> {
    iceoryx2::prelude::set_log_level_from_env_or(LogLevel::Error);
    Ok(NodeBuilder::new()
        .signal_handling_mode(SignalHandlingMode::Disabled)
        .create::<IceService>()?)
}

/// The stream service `name` for `readers` subscribers: created by the
/// leader, opened by each subscriber with the same settings.
fn service(
    node: &Node<IceService>,
    name: &str,
    readers: usize,
    create: bool,
) -> Result<Stream, Box<dyn Error>> {
    let builder = node
        .service_builder(&name.try_into()?)
        .publish_subscribe::<[u64]>()
        .max_publishers(1)
        .max_subscribers(readers)
        .history_size(0)
        .subscriber_max_buffer_size(CAPACITY)
        .enable_safe_overflow(false);
    Ok(if create {
        builder.create()?
    } else {
        builder.open()?
    })
}

/// Sends `messages` samples of `W` words to `READERS` subscribers.
pub fn tput<const READERS: usize, const W: usize>(
    leader: &mut Leader,
    key: &'static str,
) -> Result<Outcome, Box<dyn Error>> {
    // A tenth of what the crate's structures move: iceoryx2 streams at
    // well under a million samples a second here, and a run should take
    // seconds, not minutes.
    let messages = tput_messages::<W>() / 10;
    // A fresh name for every run: nothing left over from another can match.
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos();
    let name = format!("ipc-primitives-bench/{}/{now}/stream", std::process::id());
    let node = node()?;
    let stream = service(&node, &name, READERS, true)?;
    let publisher: Publisher<IceService, [u64], ()> = stream
        .publisher_builder()
        .initial_max_slice_len(W)
        .backpressure_strategy(BackpressureStrategy::RetryUntilDelivered)
        .create()?;
    let cmds: Vec<PeerCommand<'_>> = (0..READERS)
        .map(|reader| {
            let cmd = json!({
                "scenario": key, "messages": messages, "reader": reader,
                "readers": READERS, "words": W, "service": name,
            });
            (cmd, Vec::new())
        })
        .collect();
    leader.start_all(cmds)?;
    let start = monotonic_ns();
    for seq in 0..messages {
        let sample = publisher.loan_slice_uninit(W)?;
        sample.write_from_fn(|_| seq).send()?;
    }
    let ends = leader
        .finish_all()?
        .iter()
        .map(|done| field_u64(done, "end_ns"))
        .collect::<Result<Vec<_>, _>>()?;
    let end = ends.into_iter().max().ok_or("no subscriber")?;
    Ok(Outcome::Rate(
        messages as f64 / (end.saturating_sub(start) as f64 * 1e-9),
    ))
}

/// One subscriber of `iceoryx2_tput_*`: receives and checks every sample.
pub fn tput_follow(
    follower: &Follower,
    cmd: &Value,
    _fds: Vec<OwnedFd>,
) -> Result<Value, Box<dyn Error>> {
    let messages = field_u64(cmd, "messages")?;
    let reader = field_u64(cmd, "reader")?;
    let readers = usize::try_from(field_u64(cmd, "readers")?)?;
    let words = usize::try_from(field_u64(cmd, "words")?)?;
    let key = cmd["scenario"].as_str().unwrap_or_default();
    let name = cmd["service"].as_str().ok_or("no service name")?;
    let node = node()?;
    let subscriber = service(&node, name, readers, false)?
        .subscriber_builder()
        .create()?;
    let mut backoff = Backoff::default();
    follower.ready()?;
    let mut seq = 0;
    while seq < messages {
        match subscriber.receive()? {
            Some(sample) => {
                if sample.len() != words || sample.iter().any(|&word| word != seq) {
                    return Err(format!(
                        "{key}: subscriber {reader}: sample {seq} arrived as {:?}",
                        &*sample
                    )
                    .into());
                }
                seq += 1;
                backoff.reset();
            }
            None => backoff.wait(),
        }
    }
    Ok(json!({ "end_ns": monotonic_ns() }))
}
