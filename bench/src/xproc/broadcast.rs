//! This crate's broadcast ring (one writer, many readers) between
//! processes.
//!
//! - `broadcast_rtt`: two rings of 64-byte messages, one each way, one
//!   reader each, both sides busy-polling `try_recv`; otherwise as
//!   `spsc_rtt` (the same pings, pongs and checks, rings mapped read-write
//!   on both sides).
//! - `broadcast_rtt_ro`: the same, with the peer's reader on a read-only
//!   mapping (`PROT_READ`) of the ring it reads, as a reader that must not
//!   write would map it.
//! - `broadcast_tput_r1`, `_r2`, `_r4`: the leader (core 0) publishes
//!   [`MESSAGES`] 64-byte messages through a ring of [`TPUT_CAPACITY`]
//!   slots to 1, 2 or 4 reader processes, all on
//!   core 1; every reader maps the ring read-only, receives in batches of up
//!   to [`BATCH`] (`recv_slice`, what a reader draining a busy ring calls)
//!   and checks every word of every message, in order. The writer never
//!   waits for readers, so the bench adds flow control outside the ring:
//!   each reader stores how many messages it has received in a line of its
//!   own (another segment) after each batch that passes a multiple of
//!   [`ACK_EVERY`], and the writer, before it would lap the
//!   slowest, re-reads those lines (spinning, then yielding, while it
//!   must wait). A lap would be a failed run. A lone reader that finds the
//!   ring empty spins a while before it yields; readers sharing the core
//!   yield it at once, since spinning there only takes the time another
//!   reader needs to catch up (what a user would do: a reader that shares
//!   its core sleeps or yields, never spins). The rate
//!   is messages over the time from the writer's first publish to the last
//!   reader's last message (one monotonic clock for every process).
//!
//! Readers sharing one core each get a share of it: with `n` readers on
//! core 1, each message is checked `n` times there.

use std::{
    error::Error,
    hint,
    os::fd::{AsFd, OwnedFd},
    sync::atomic::{AtomicU64, Ordering},
    thread,
};

use ipc_primitives::{
    broadcast::{Broadcast, Reader, RecvError, Start, Writer},
    linux::shm::Segment,
};
use serde_json::{Value, json};

use super::{
    Outcome,
    line::{self, atomics},
    peer::{Follower, Leader, PeerCommand, field_u64, take_fds},
    rtt::{self, FAST, answer, check_pong, ping},
};
use crate::{
    inproc::MESSAGES,
    loops::{Backoff, Msg, message, monotonic_ns},
};

/// Slots of each round-trip ring.
const RTT_CAPACITY: u32 = 64;
/// Slots of the throughput ring: 4 times the SPSC scenarios' 1024. Readers
/// that share a core take turns, and a turn lasts as long as the ring lets
/// the writer run ahead: at 1024 slots, `perf` showed about a fifth of that
/// core in task switches with 4 readers (`broadcast_tput_r4` 0.67 to 0.79
/// of `spsc_tput`, against 0.78 to 1.0 at 4096). A publisher sizes its ring
/// for its readers' scheduling so, too.
const TPUT_CAPACITY: u32 = 4096;
/// A reader stores its count after this many messages.
const ACK_EVERY: u64 = 16;
/// Messages a reader receives at most per `recv_slice`.
const BATCH: usize = 64;
/// Words between two readers' counts in the acknowledgement segment: a
/// 128-byte line each.
const ACK_STRIDE: usize = 16;

/// A memfd segment sized for a broadcast ring of `capacity` messages.
fn ring_segment(label: &str, capacity: u32) -> Result<Segment, Box<dyn Error>> {
    let len = Broadcast::<Msg>::required_size(capacity).ok_or("ring size overflows")?;
    Ok(Segment::memfd(label, len)?)
}

/// A read-only reader (`attach_reader`, which never writes) of the ring in
/// `seg`, from the first message.
fn read_only_reader(seg: &Segment) -> Result<Reader<'_, Msg>, Box<dyn Error>> {
    Ok(Broadcast::<Msg>::attach_reader(
        seg.read_region()?,
        Start::Oldest,
    )?)
}

/// The next message, busy-polling; panics on a lap or a corrupt ring (one
/// message is ever in flight: neither can happen).
#[inline(always)]
fn recv_spinning(key: &str, reader: &mut Reader<'_, Msg>) -> Msg {
    loop {
        match reader.try_recv() {
            Ok(msg) => return msg,
            Err(RecvError::Empty) => hint::spin_loop(),
            Err(err) => panic!("{key}: {err}"),
        }
    }
}

// ---- broadcast_rtt, broadcast_rtt_ro ---------------------------------------

/// The round trip whose peer maps the ring it reads read-only.
const RTT_READ_ONLY: &str = "broadcast_rtt_ro";

pub fn rtt(leader: &mut Leader, key: &'static str) -> Result<Outcome, Box<dyn Error>> {
    let ping_seg = ring_segment("xproc-ping", RTT_CAPACITY)?;
    let pong_seg = ring_segment("xproc-pong", RTT_CAPACITY)?;
    let mut tx = Broadcast::<Msg>::create(ping_seg.region()?, RTT_CAPACITY)?.into_writer();
    let mut rx =
        Broadcast::<Msg>::create(pong_seg.region()?, RTT_CAPACITY)?.into_reader(Start::Oldest);
    let fds = [ping_seg.as_fd(), pong_seg.as_fd()];
    rtt::lead(leader, key, FAST, &fds, |seq| {
        tx.publish(&ping(seq));
        check_pong(key, seq, &recv_spinning(key, &mut rx));
    })
    .map(Outcome::Latency)
}

pub fn rtt_follow(
    follower: &Follower,
    cmd: &Value,
    fds: Vec<OwnedFd>,
) -> Result<Value, Box<dyn Error>> {
    let key = cmd["scenario"].as_str().unwrap_or_default();
    let [ping_fd, pong_fd] = take_fds(fds)?;
    let ping_seg = if key == RTT_READ_ONLY {
        Segment::from_fd_read_only(ping_fd)?
    } else {
        Segment::from_fd(ping_fd)?
    };
    let pong_seg = Segment::from_fd(pong_fd)?;
    let mut rx = read_only_reader(&ping_seg)?;
    let mut tx: Writer<'_, Msg> = Broadcast::<Msg>::attach(pong_seg.region()?)?.into_writer();
    rtt::follow(follower, cmd, |seq| {
        let got = recv_spinning(key, &mut rx);
        tx.publish(&answer(key, seq, &got));
        Ok(())
    })
}

// ---- broadcast_tput_r1, _r2, _r4 ---------------------------------------------

/// Publishes to `READERS` reader processes.
pub fn tput<const READERS: usize>(
    leader: &mut Leader,
    key: &'static str,
) -> Result<Outcome, Box<dyn Error>> {
    let capacity = TPUT_CAPACITY;
    let seg = ring_segment("xproc-broadcast", capacity)?;
    let acks_seg = line::segment("xproc-acks")?;
    let acks = atomics(&acks_seg);
    let mut tx = Broadcast::<Msg>::create(seg.region()?, capacity)?.into_writer();
    let cmds: Vec<PeerCommand<'_>> = (0..READERS)
        .map(|reader| {
            let cmd = json!({
                "scenario": key,
                "messages": MESSAGES,
                "reader": reader,
                "readers": READERS,
            });
            (cmd, vec![seg.as_fd(), acks_seg.as_fd()])
        })
        .collect();
    leader.start_all(cmds)?;
    let counts: Vec<&AtomicU64> = (0..READERS).map(|r| &acks[r * ACK_STRIDE]).collect();
    // Never lap the slowest reader: the ring keeps `retained` whole.
    let window = tx.retained() as u64;
    let slowest = || {
        counts
            .iter()
            .map(|c| c.load(Ordering::Acquire))
            .min()
            .unwrap_or(0)
    };
    let mut allowed = window;
    let mut backoff = Backoff::default();
    let start = monotonic_ns();
    for seq in 0..MESSAGES {
        while seq >= allowed {
            allowed = slowest() + window;
            if seq >= allowed {
                backoff.wait();
            }
        }
        backoff.reset();
        tx.publish(&message(seq));
    }
    let ends = leader
        .finish_all()?
        .iter()
        .map(|done| field_u64(done, "end_ns"))
        .collect::<Result<Vec<_>, _>>()?;
    let end = ends.into_iter().max().ok_or("no reader")?;
    Ok(Outcome::Rate(
        MESSAGES as f64 / (end.saturating_sub(start) as f64 * 1e-9),
    ))
}

/// One reader of `broadcast_tput_r*`: receives and checks every message,
/// counting them in its line of the acknowledgement segment.
pub fn tput_follow(
    follower: &Follower,
    cmd: &Value,
    fds: Vec<OwnedFd>,
) -> Result<Value, Box<dyn Error>> {
    let messages = field_u64(cmd, "messages")?;
    let reader = usize::try_from(field_u64(cmd, "reader")?)?;
    let alone = field_u64(cmd, "readers")? == 1;
    let key = cmd["scenario"].as_str().unwrap_or_default();
    let [ring_fd, acks_fd] = take_fds(fds)?;
    let ring_seg = Segment::from_fd_read_only(ring_fd)?;
    let acks_seg = Segment::from_fd(acks_fd)?;
    let count_line = atomics(&acks_seg)
        .get(reader * ACK_STRIDE)
        .ok_or("reader index out of range")?;
    let mut rx = read_only_reader(&ring_seg)?;
    let mut batch = [Msg::default(); BATCH];
    let mut backoff = Backoff::default();
    follower.ready()?;
    let mut seq = 0;
    while seq < messages {
        match rx.recv_slice(&mut batch) {
            Ok(count) => {
                for msg in &batch[..count] {
                    if msg.iter().any(|&word| word != seq) {
                        return Err(format!("{key}: message {seq} arrived as {msg:?}").into());
                    }
                    seq += 1;
                }
                if seq % ACK_EVERY < count as u64 || seq == messages {
                    count_line.store(seq, Ordering::Release);
                }
                backoff.reset();
            }
            Err(RecvError::Empty) if alone => backoff.wait(),
            Err(RecvError::Empty) => thread::yield_now(),
            Err(err) => return Err(format!("{key}: reader {reader} at {seq}: {err}").into()),
        }
    }
    Ok(json!({ "end_ns": monotonic_ns() }))
}
