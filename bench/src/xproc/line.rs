//! Raw ping-pongs on shared lines between the two processes.
//!
//! - `raw_line_rtt` and the probe: the physical limit of a cross-core round
//!   trip. One `u64` in a shared 128-byte line holds a sequence the two sides
//!   bump in turn: the leader stores `2n + 1` and spins (with `pause`, i.e.
//!   `core::hint::spin_loop`) until it reads `2n + 2`; the peer spins until
//!   it reads `2n + 1` and stores `2n + 2`. No payload, no ring: one line
//!   crossing the machine and back. A short run of it (the probe) goes
//!   beside every run of every scenario, so that each figure can be judged
//!   against the state the machine was in at the time.
//! - `raw_line_56_rtt` (for reference): the pattern of a ring whose consumer
//!   polls a sequence word beside the payload, at its limit: the ping is 7
//!   payload words and a sequence word in one 64-byte line, the pong the same
//!   in another; each side writes the payload (relaxed stores, as the rings
//!   copy), then the sequence (`Release`), and spins on the other line's
//!   sequence (`Acquire`), then reads and checks the payload. One line
//!   transfer each way, carrying 56 bytes: what `spsc_rtt_56` can reach.
//! - `raw_payload_rtt` (for reference): the same sequence line, plus the
//!   64-byte ping and pong in lines of their own, written before the bump
//!   and read (and checked) after it, as `spsc_rtt` carries them. The limit
//!   for any protocol that keeps its index apart from its payload: each way,
//!   the reader fetches the index line, then the payload line.
//! - `raw_record_rtt` (for reference): the pattern of the record ring at its
//!   limit, with 64-byte records: each way, a ring of 512 words holds
//!   records of a header word and 8 payload words, one after the other (a
//!   record that would pass the end starts again at word 0), so a record
//!   spans two lines and shares them with its neighbours, as in the record
//!   ring. The writer stores the payload (relaxed), then the header
//!   (`Release`), a seal unique to the message; the reader spins on the
//!   header at its position (`Acquire`), then reads and checks the payload.
//!   No `head`, `tail`, marker or length: what any ring of length-prefixed
//!   records that polls its headers can reach with 64-byte records.

use std::{
    error::Error,
    hint,
    os::fd::{AsFd, OwnedFd},
    sync::atomic::{AtomicU64, Ordering},
};

use ipc_primitives::linux::shm::{Segment, ShmError};
use serde_json::Value;

use super::{
    Latency, Outcome,
    peer::{Follower, Leader, take_fds},
    rtt::{self, Plan, answer, check_pong, ping},
};
use crate::loops::Msg;

/// The probe: short, and timed like any round trip.
pub const PROBE: Plan = Plan {
    warmup: 1_000,
    samples: 20_000,
    block: 20_000,
};

/// Word offsets of the payloads in a line segment: a 128-byte line each,
/// apart from the sequence's line at word 0.
pub const PING_WORDS: usize = 16;
pub const PONG_WORDS: usize = 32;

/// Bytes of a line segment: one page.
const SEGMENT_BYTES: usize = 4096;

/// A fresh one-page memfd segment, all zero.
pub fn segment(label: &str) -> Result<Segment, ShmError> {
    Segment::memfd(label, SEGMENT_BYTES)
}

/// The words of `seg` as atomics, for raw protocols in memory no structure
/// of the crate lives in.
///
/// The library offers no safe way to do this: `Segment` hands out only a
/// `Region`, which its structures consume.
#[allow(unsafe_code)]
pub fn atomics(seg: &Segment) -> &[AtomicU64] {
    let region = seg
        .region()
        .expect("a bench segment holds no structure: its region is free");
    let ptr = region.as_ptr().as_ptr().cast::<AtomicU64>();
    // SAFETY: `slice::from_raw_parts` needs, for the lifetime of `seg`, `len`
    // initialised values valid for `AtomicU64` at an aligned `ptr`, and no
    // access to them but through the slice's `UnsafeCell`s:
    // - the mapping is page-aligned (`Segment::region`), more than the 8 an
    //   `AtomicU64` needs, and `len` words cover at most its bytes;
    // - `Segment` keeps its `region.len()` bytes mapped read-write until it
    //   drops, which the borrow of `seg` prevents; a memfd's seals (checked
    //   by `Segment::from_fd` on the peer's side too) keep its size fixed;
    // - mapped bytes are initialised (a fresh memfd reads as zeros) and any
    //   bit pattern is a valid `u64`;
    // - this process and the peer touch these words only through `AtomicU64`
    //   operations of the same size, the condition `AtomicU64::from_ptr`
    //   states for memory shared with others; no structure of the crate is
    //   placed in these segments (the region is taken above, so none can
    //   be), so nothing else reads or writes them.
    unsafe { std::slice::from_raw_parts(ptr, region.len() / size_of::<u64>()) }
}

/// Writes every word of `msg` into `words` (Release: the signal that follows
/// publishes them).
pub fn store_msg(words: &[AtomicU64], msg: &Msg) {
    for (word, &value) in words.iter().zip(msg) {
        word.store(value, Ordering::Release);
    }
}

/// Reads a message out of `words`, word by word.
pub fn load_msg(words: &[AtomicU64]) -> Msg {
    let mut msg = [0; 8];
    for (value, word) in msg.iter_mut().zip(words) {
        *value = word.load(Ordering::Acquire);
    }
    msg
}

/// One raw ping-pong run on a fresh line, timed per round trip.
fn lead(leader: &mut Leader, plan: Plan) -> Result<Latency, Box<dyn Error>> {
    let seg = segment("xproc-line")?;
    let line = &atomics(&seg)[0];
    // The probe's key too: the peer follows both the same way.
    rtt::lead(leader, "raw_line_rtt", plan, &[seg.as_fd()], |seq| {
        let ping = 2 * seq + 1;
        line.store(ping, Ordering::Release);
        while line.load(Ordering::Acquire) != ping + 1 {
            hint::spin_loop();
        }
    })
}

/// `raw_line_rtt`.
pub fn raw_line(leader: &mut Leader, _key: &'static str) -> Result<Outcome, Box<dyn Error>> {
    lead(leader, rtt::FAST).map(Outcome::Latency)
}

/// The probe beside each run.
pub fn probe(leader: &mut Leader) -> Result<Latency, Box<dyn Error>> {
    lead(leader, PROBE)
}

/// The peer's half of `raw_line_rtt` and of the probe.
pub fn follow(
    follower: &Follower,
    cmd: &Value,
    fds: Vec<OwnedFd>,
) -> Result<Value, Box<dyn Error>> {
    let seg = peer_segment(fds)?;
    let line = &atomics(&seg)[0];
    rtt::follow(follower, cmd, |seq| {
        let ping = 2 * seq + 1;
        while line.load(Ordering::Acquire) != ping {
            hint::spin_loop();
        }
        line.store(ping + 1, Ordering::Release);
        Ok(())
    })
}

/// The one segment a raw scenario's peer is handed.
fn peer_segment(fds: Vec<OwnedFd>) -> Result<Segment, Box<dyn Error>> {
    let [fd] = take_fds(fds)?;
    Ok(Segment::from_fd(fd)?)
}

/// `raw_payload_rtt`.
pub fn raw_payload(leader: &mut Leader, key: &'static str) -> Result<Outcome, Box<dyn Error>> {
    let seg = segment("xproc-payload")?;
    let words = atomics(&seg);
    let line = &words[0];
    rtt::lead(leader, key, rtt::FAST, &[seg.as_fd()], |seq| {
        let bump = 2 * seq + 1;
        store_msg(&words[PING_WORDS..], &ping::<8>(seq));
        line.store(bump, Ordering::Release);
        while line.load(Ordering::Acquire) != bump + 1 {
            hint::spin_loop();
        }
        check_pong(key, seq, &load_msg(&words[PONG_WORDS..]));
    })
    .map(Outcome::Latency)
}

/// The peer's half of `raw_payload_rtt`.
pub fn payload_follow(
    follower: &Follower,
    cmd: &Value,
    fds: Vec<OwnedFd>,
) -> Result<Value, Box<dyn Error>> {
    let seg = peer_segment(fds)?;
    let words = atomics(&seg);
    let line = &words[0];
    rtt::follow(follower, cmd, |seq| {
        let bump = 2 * seq + 1;
        while line.load(Ordering::Acquire) != bump {
            hint::spin_loop();
        }
        let got = load_msg(&words[PING_WORDS..]);
        store_msg(&words[PONG_WORDS..], &answer("raw_payload_rtt", seq, &got));
        line.store(bump + 1, Ordering::Release);
        Ok(())
    })
}

/// Payload words of `raw_line_56_rtt`: the sequence word fills the line.
const LINE_PAYLOAD: usize = 7;

/// Writes `payload` and then `seq` into the line at `words` (payload words
/// relaxed, the sequence `Release`).
fn send_line(words: &[AtomicU64], payload: &[u64; LINE_PAYLOAD], seq: u64) {
    for (word, &value) in words.iter().zip(payload) {
        word.store(value, Ordering::Relaxed);
    }
    words[LINE_PAYLOAD].store(seq, Ordering::Release);
}

/// Spins until the line at `words` holds `seq`, then reads its payload.
fn receive_line(words: &[AtomicU64], seq: u64) -> [u64; LINE_PAYLOAD] {
    while words[LINE_PAYLOAD].load(Ordering::Acquire) != seq {
        hint::spin_loop();
    }
    let mut payload = [0; LINE_PAYLOAD];
    for (value, word) in payload.iter_mut().zip(words) {
        *value = word.load(Ordering::Relaxed);
    }
    payload
}

/// `raw_line_56_rtt`.
pub fn raw_line_56(leader: &mut Leader, key: &'static str) -> Result<Outcome, Box<dyn Error>> {
    let seg = segment("xproc-line-56")?;
    let words = atomics(&seg);
    rtt::lead(leader, key, rtt::FAST, &[seg.as_fd()], |seq| {
        send_line(&words[PING_WORDS..], &ping(seq), seq + 1);
        let got = receive_line(&words[PONG_WORDS..], seq + 1);
        check_pong(key, seq, &got);
    })
    .map(Outcome::Latency)
}

/// The peer's half of `raw_line_56_rtt`.
pub fn line_56_follow(
    follower: &Follower,
    cmd: &Value,
    fds: Vec<OwnedFd>,
) -> Result<Value, Box<dyn Error>> {
    let seg = peer_segment(fds)?;
    let words = atomics(&seg);
    rtt::follow(follower, cmd, |seq| {
        let got = receive_line(&words[PING_WORDS..], seq + 1);
        let pong = answer("raw_line_56_rtt", seq, &got);
        send_line(&words[PONG_WORDS..], &pong, seq + 1);
        Ok(())
    })
}

/// Words of each ring of `raw_record_rtt`.
const RECORD_RING: usize = 512;
/// Words of a record of `raw_record_rtt`: a header, then 64 payload bytes.
const RECORD: usize = 9;

/// One direction of `raw_record_rtt`: a ring of records and a position.
struct RecordLane<'a> {
    words: &'a [AtomicU64],
    pos: usize,
}

impl<'a> RecordLane<'a> {
    fn new(words: &'a [AtomicU64]) -> Self {
        Self {
            words: &words[..RECORD_RING],
            pos: 0,
        }
    }

    /// The header that seals message `seq`: never a payload word of a ping
    /// (below 2^63) or of a pong before it.
    fn seal(seq: u64) -> u64 {
        (seq + 1) | 1 << 63
    }

    /// Moves past the record at the position.
    fn advance(&mut self) {
        self.pos += RECORD;
        if self.pos + RECORD > RECORD_RING {
            self.pos = 0;
        }
    }

    /// Writes message `seq`: its payload, then its header.
    fn send(&mut self, seq: u64, msg: &Msg) {
        let record = &self.words[self.pos..self.pos + RECORD];
        for (word, &value) in record[1..].iter().zip(msg) {
            word.store(value, Ordering::Relaxed);
        }
        record[0].store(Self::seal(seq), Ordering::Release);
        self.advance();
    }

    /// Spins until message `seq` is sealed at the position, then reads it.
    fn receive(&mut self, seq: u64) -> Msg {
        let record = &self.words[self.pos..self.pos + RECORD];
        while record[0].load(Ordering::Acquire) != Self::seal(seq) {
            hint::spin_loop();
        }
        let mut msg = [0; 8];
        for (value, word) in msg.iter_mut().zip(&record[1..]) {
            *value = word.load(Ordering::Relaxed);
        }
        self.advance();
        msg
    }
}

/// The two rings of `raw_record_rtt` in `seg`: pings, then pongs.
fn record_lanes(seg: &Segment) -> (RecordLane<'_>, RecordLane<'_>) {
    let words = atomics(seg);
    (
        RecordLane::new(words),
        RecordLane::new(&words[RECORD_RING..]),
    )
}

/// `raw_record_rtt`.
pub fn raw_record(leader: &mut Leader, key: &'static str) -> Result<Outcome, Box<dyn Error>> {
    let seg = Segment::memfd("xproc-record", 2 * RECORD_RING * size_of::<u64>())?;
    let (mut pings, mut pongs) = record_lanes(&seg);
    rtt::lead(leader, key, rtt::FAST, &[seg.as_fd()], |seq| {
        pings.send(seq, &ping(seq));
        check_pong(key, seq, &pongs.receive(seq));
    })
    .map(Outcome::Latency)
}

/// The peer's half of `raw_record_rtt`.
pub fn record_follow(
    follower: &Follower,
    cmd: &Value,
    fds: Vec<OwnedFd>,
) -> Result<Value, Box<dyn Error>> {
    let seg = peer_segment(fds)?;
    let (mut pings, mut pongs) = record_lanes(&seg);
    rtt::follow(follower, cmd, |seq| {
        let got = pings.receive(seq);
        pongs.send(seq, &answer("raw_record_rtt", seq, &got));
        Ok(())
    })
}
