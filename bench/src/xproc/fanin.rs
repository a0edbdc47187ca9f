//! Fan-in: this crate's lanes, [`PRODUCERS`] producer processes into one
//! consumer.
//!
//! - `fanin_tput`: each peer process (all on core 1) claims the lane of its
//!   own index and pushes its share of [`MESSAGES`] 64-byte records, each
//!   word holding the record's sequence number in its lane; a producer
//!   whose lane is full spins a while, then yields the core to the other
//!   producers. The leader (core 0) is the consumer: it pops from every
//!   lane (round-robin, the default budget), checks each record's length,
//!   that it comes next in its lane, and every word. Lanes of
//!   [`LANE_WORDS`] words (about 900 records each). The rate is every
//!   record over the time from the consumer's start to the last record.

use std::{
    error::Error,
    os::fd::{AsFd, OwnedFd},
    time::Instant,
};

use ipc_primitives::{
    lanes::{Delivery, Lanes, PopError},
    linux::shm::Segment,
};
use serde_json::{Value, json};
use zerocopy::IntoBytes;

use super::{
    Outcome,
    peer::{Follower, Leader, PeerCommand, field_u64, take_fds},
    varlen::push_record,
};
use crate::{
    inproc::MESSAGES,
    loops::{Backoff, Msg, message},
};

/// Producer processes.
pub const PRODUCERS: usize = 4;
/// Words of each lane: 910 records of 64 bytes.
const LANE_WORDS: u32 = 8192;

pub fn tput(leader: &mut Leader, key: &'static str) -> Result<Outcome, Box<dyn Error>> {
    let per_lane = MESSAGES / PRODUCERS as u64;
    let len = Lanes::required_size(PRODUCERS, LANE_WORDS).ok_or("lanes size overflows")?;
    let seg = Segment::memfd("xproc-fanin", len)?;
    let mut rx = Lanes::create(seg.region()?, PRODUCERS, LANE_WORDS)?.into_consumer();
    let cmds: Vec<PeerCommand<'_>> = (0..PRODUCERS)
        .map(|lane| {
            let cmd = json!({ "scenario": key, "messages": per_lane, "lane": lane });
            (cmd, vec![seg.as_fd()])
        })
        .collect();
    leader.start_all(cmds)?;
    let mut next = [0_u64; PRODUCERS];
    let mut msg: Msg = [0; 8];
    let total = per_lane * PRODUCERS as u64;
    let start = Instant::now();
    let mut received = 0;
    while received < total {
        match rx.pop_into(msg.as_mut_bytes()) {
            Ok(Delivery { lane, len }) => {
                let seq = next.get_mut(lane).ok_or("a record from no lane")?;
                if len != size_of::<Msg>() || msg != message(*seq) {
                    return Err(format!(
                        "{key}: lane {lane}: record {seq} arrived as {len} bytes {msg:?}"
                    )
                    .into());
                }
                *seq += 1;
                received += 1;
            }
            Err(PopError::Empty) => std::hint::spin_loop(),
            Err(err) => return Err(format!("{key}: {err}").into()),
        }
    }
    let ns = start.elapsed().as_nanos() as f64;
    leader.finish_all()?;
    Ok(Outcome::Rate(total as f64 / (ns * 1e-9)))
}

/// One producer: claims its lane, pushes its records.
pub fn tput_follow(
    follower: &Follower,
    cmd: &Value,
    fds: Vec<OwnedFd>,
) -> Result<Value, Box<dyn Error>> {
    let messages = field_u64(cmd, "messages")?;
    let lane = usize::try_from(field_u64(cmd, "lane")?)?;
    let [fd] = take_fds(fds)?;
    let seg = Segment::from_fd(fd)?;
    let lanes = Lanes::attach(seg.region()?)?;
    let mut tx = lanes
        .claim_lane(lane)
        .ok_or_else(|| format!("lane {lane} is not free"))?;
    let mut backoff = Backoff::default();
    follower.ready()?;
    for seq in 0..messages {
        let msg: Msg = message(seq);
        while push_record(&mut tx, msg.as_bytes(), ()).is_err() {
            backoff.wait();
        }
        backoff.reset();
    }
    // Releases the lane (the consumer busy-polls: no wake-up is needed).
    drop(tx);
    Ok(Value::Null)
}
