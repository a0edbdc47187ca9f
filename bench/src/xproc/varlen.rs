//! This crate's record ring (variable-length records, one producer, one
//! consumer) between the two processes.
//!
//! - `varlen_rtt`: two record rings (1024 words each), one each way,
//!   carrying 64-byte records (the pings and pongs of `spsc_rtt`); both
//!   sides busy-poll `pop_into` into a buffer made once per message (a poll
//!   that finds nothing writes nothing) and check every word.
//! - `varlen_tput_64`, `varlen_tput_1k`: records of 64 bytes and 1 KiB
//!   (each word holding the record's sequence number) from the leader
//!   (`push`, spinning while full) to the peer (`pop_into` a buffer,
//!   checking the length and every word), in a ring of about
//!   [`CAPACITY`] records' worth of words; timed by the consumer as
//!   `spsc_tput` is. Against `uds_tput` and `uds_tput_1k`.
//! - `varlen_ns_42` and `spsc_ns_42`: the cost per message, in ns, of a
//!   42-byte record in a record ring that also takes 4 KiB records (8192
//!   words: records up to 32 KiB), and of a 42-byte fixed element
//!   (`[u8; 42]`) in this crate's SPSC ring of [`CAPACITY`] slots; the same
//!   stream as the throughput scenarios, consumer-timed, every byte checked.

use std::{
    error::Error,
    os::fd::{AsFd, OwnedFd},
    time::Instant,
};

use ipc_primitives::{
    bytes::{Consumer, PopError, Producer, RecordRing, ReserveError},
    linux::shm::Segment,
    spsc::Spsc,
};
use serde_json::{Value, json};
use zerocopy::IntoBytes;

use super::{
    Outcome,
    peer::{Follower, Leader, field_u64, take_fds},
    rtt::{self, FAST, answer, check_pong, ping},
    tput::{self, rate},
};
use crate::{
    inproc::{CAPACITY, MESSAGES},
    loops::{Words, consume, pop_spinning, produce, push_spinning, spsc_pop, spsc_push},
};

/// Words of each round-trip ring.
const RTT_WORDS: u32 = 1024;
/// Words of the ring of 42-byte records: it takes records up to 32 KiB.
const WORDS_42: u32 = 8192;
/// Bytes of the small record of the cost check.
const SMALL: usize = 42;
/// The small record, fixed size.
type Small = [u8; SMALL];

/// Words of a throughput ring of `W`-word records: about [`CAPACITY`]
/// records (each a header word and its payload).
const fn tput_words<const W: usize>() -> u32 {
    (CAPACITY * (W + 1) / 2).next_power_of_two() as u32
}

/// Records of `W` words a throughput run moves: [`MESSAGES`] of 64 bytes,
/// an eighth as many of 1 KiB.
pub const fn tput_messages<const W: usize>() -> u64 {
    if W > 8 { MESSAGES / 8 } else { MESSAGES }
}

/// A memfd segment sized for a record ring of `words` words.
fn ring_segment(label: &str, words: u32) -> Result<Segment, Box<dyn Error>> {
    let len = RecordRing::required_size(words).ok_or("ring size overflows")?;
    Ok(Segment::memfd(label, len)?)
}

/// [`produce`]'s step: pushes `record`, handing `back` back while full.
#[inline(always)]
pub(super) fn push_record<T>(tx: &mut Producer<'_>, record: &[u8], back: T) -> Result<(), T> {
    match tx.push(record) {
        Ok(()) => Ok(()),
        Err(ReserveError::Full) => Err(back),
        Err(err) => panic!("record ring: producer: {err}"),
    }
}

/// [`consume`]'s step: pops a record into `buf`, `None` while empty, and
/// panics unless it is `buf.len()` bytes long.
#[inline(always)]
fn pop_record(rx: &mut Consumer<'_>, buf: &mut [u8]) -> Option<()> {
    match rx.pop_into(buf) {
        Ok(len) if len == buf.len() => Some(()),
        Ok(len) => panic!(
            "record ring: a record of {len} bytes, expected {}",
            buf.len()
        ),
        Err(PopError::Empty) => None,
        Err(err) => panic!("record ring: consumer: {err}"),
    }
}

/// A `W`-word message through `pop_record`.
#[inline(always)]
fn pop_words<const W: usize>(rx: &mut Consumer<'_>) -> Option<Words<W>> {
    let mut msg = [0; W];
    pop_record(rx, msg.as_mut_bytes()).map(|()| msg)
}

// ---- varlen_rtt -----------------------------------------------------------------

pub fn rtt(leader: &mut Leader, key: &'static str) -> Result<Outcome, Box<dyn Error>> {
    let ping_seg = ring_segment("xproc-ping", RTT_WORDS)?;
    let pong_seg = ring_segment("xproc-pong", RTT_WORDS)?;
    let mut tx = RecordRing::create(ping_seg.region()?, RTT_WORDS)?.into_producer();
    let mut rx = RecordRing::create(pong_seg.region()?, RTT_WORDS)?.into_consumer();
    let fds = [ping_seg.as_fd(), pong_seg.as_fd()];
    rtt::lead(leader, key, FAST, &fds, |seq| {
        let msg = ping::<8>(seq);
        push_spinning(|()| push_record(&mut tx, msg.as_bytes(), ()), ());
        // A buffer per message, made before the wait, so that a poll finding
        // the ring empty writes nothing, like `spsc_pop`'s.
        let mut got = [0; 8];
        pop_spinning(|| pop_record(&mut rx, got.as_mut_bytes()));
        check_pong(key, seq, &got);
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
    let (ping_seg, pong_seg) = (Segment::from_fd(ping_fd)?, Segment::from_fd(pong_fd)?);
    let mut rx = RecordRing::attach(ping_seg.region()?)?.into_consumer();
    let mut tx = RecordRing::attach(pong_seg.region()?)?.into_producer();
    rtt::follow(follower, cmd, |seq| {
        let mut got = [0; 8];
        pop_spinning(|| pop_record(&mut rx, got.as_mut_bytes()));
        let pong = answer(key, seq, &got);
        push_spinning(|()| push_record(&mut tx, pong.as_bytes(), ()), ());
        Ok(())
    })
}

// ---- varlen_tput_64, varlen_tput_1k ------------------------------------------------

/// Records of `W` words.
pub fn tput<const W: usize>(
    leader: &mut Leader,
    key: &'static str,
) -> Result<Outcome, Box<dyn Error>> {
    let (words, messages) = (tput_words::<W>(), tput_messages::<W>());
    let seg = ring_segment("xproc-varlen", words)?;
    let mut tx = RecordRing::create(seg.region()?, words)?.into_producer();
    leader.start(
        &json!({ "scenario": key, "messages": messages }),
        &[seg.as_fd()],
    )?;
    produce(messages, |msg: Words<W>| {
        push_record(&mut tx, msg.as_bytes(), msg)
    });
    rate(messages, &leader.finish()?)
}

pub fn tput_follow<const W: usize>(
    follower: &Follower,
    cmd: &Value,
    fds: Vec<OwnedFd>,
) -> Result<Value, Box<dyn Error>> {
    let messages = field_u64(cmd, "messages")?;
    let key = cmd["scenario"].as_str().unwrap_or_default();
    let [fd] = take_fds(fds)?;
    let seg = Segment::from_fd(fd)?;
    let mut rx = RecordRing::attach(seg.region()?)?.into_consumer();
    follower.ready()?;
    let start = Instant::now();
    consume(key, messages, || pop_words::<W>(&mut rx));
    Ok(tput::elapsed(start))
}

// ---- varlen_ns_42, spsc_ns_42 --------------------------------------------------

/// The small record with sequence number `seq`: its bytes in every word,
/// the last two bytes its low two.
#[inline(always)]
fn small(seq: u64) -> Small {
    let mut out = [0; SMALL];
    for chunk in out.chunks_mut(8) {
        chunk.copy_from_slice(&seq.to_ne_bytes()[..chunk.len()]);
    }
    out
}

/// Pushes the small records `0..MESSAGES` through `push`, spinning while it
/// hands them back.
#[inline(always)]
fn produce_small(mut push: impl FnMut(Small) -> Result<(), Small>) {
    for seq in 0..MESSAGES {
        push_spinning(&mut push, small(seq));
    }
}

/// Pops and checks the small records `0..messages`; returns the peer's
/// `done`: the time from `ready` to the last one.
#[inline(always)]
fn consume_small(
    follower: &Follower,
    key: &str,
    messages: u64,
    mut pop: impl FnMut() -> Option<Small>,
) -> Result<Value, Box<dyn Error>> {
    follower.ready()?;
    let start = Instant::now();
    for seq in 0..messages {
        let got = pop_spinning(&mut pop);
        if got != small(seq) {
            return Err(format!("{key}: record {seq} arrived as {got:?}").into());
        }
    }
    Ok(tput::elapsed(start))
}

/// ns per message from the consumer's `done`.
fn ns_per_msg(done: &Value) -> Result<Outcome, Box<dyn Error>> {
    Ok(Outcome::NsPerMsg(
        field_u64(done, "ns")? as f64 / MESSAGES as f64,
    ))
}

pub fn varlen_42(leader: &mut Leader, key: &'static str) -> Result<Outcome, Box<dyn Error>> {
    let seg = ring_segment("xproc-varlen-42", WORDS_42)?;
    let ring = RecordRing::create(seg.region()?, WORDS_42)?;
    if ring.max_record() < 4096 {
        return Err(format!("{key}: the ring must take 4 KiB records").into());
    }
    let mut tx = ring.into_producer();
    leader.start(
        &json!({ "scenario": key, "messages": MESSAGES }),
        &[seg.as_fd()],
    )?;
    produce_small(|msg| push_record(&mut tx, &msg, msg));
    ns_per_msg(&leader.finish()?)
}

pub fn varlen_42_follow(
    follower: &Follower,
    cmd: &Value,
    fds: Vec<OwnedFd>,
) -> Result<Value, Box<dyn Error>> {
    let messages = field_u64(cmd, "messages")?;
    let key = cmd["scenario"].as_str().unwrap_or_default();
    let [fd] = take_fds(fds)?;
    let seg = Segment::from_fd(fd)?;
    let mut rx = RecordRing::attach(seg.region()?)?.into_consumer();
    consume_small(follower, key, messages, || {
        let mut msg = [0; SMALL];
        pop_record(&mut rx, &mut msg).map(|()| msg)
    })
}

pub fn spsc_42(leader: &mut Leader, key: &'static str) -> Result<Outcome, Box<dyn Error>> {
    let seg = tput::ring_segment::<Small>()?;
    let mut tx = Spsc::<Small>::create(seg.region()?, CAPACITY as u32)?.into_producer();
    leader.start(
        &json!({ "scenario": key, "messages": MESSAGES }),
        &[seg.as_fd()],
    )?;
    produce_small(|msg| spsc_push(&mut tx, msg));
    ns_per_msg(&leader.finish()?)
}

pub fn spsc_42_follow(
    follower: &Follower,
    cmd: &Value,
    fds: Vec<OwnedFd>,
) -> Result<Value, Box<dyn Error>> {
    let messages = field_u64(cmd, "messages")?;
    let key = cmd["scenario"].as_str().unwrap_or_default();
    let [fd] = take_fds(fds)?;
    let seg = Segment::from_fd(fd)?;
    let mut rx = Spsc::<Small>::attach(seg.region()?)?.into_consumer();
    consume_small(follower, key, messages, || spsc_pop(&mut rx))
}

#[cfg(test)]
mod tests {
    use super::{small, tput_words};
    use ipc_primitives::bytes::max_record;

    #[test]
    fn small_records_differ_in_every_word() {
        let (a, b) = (small(1), small(2));
        assert!(a.chunks(8).zip(b.chunks(8)).all(|(a, b)| a != b));
    }

    #[test]
    fn tput_rings_hold_about_a_thousand_records() {
        for (words, record) in [(tput_words::<8>(), 64), (tput_words::<128>(), 1024)] {
            assert!(max_record(words) >= record);
            let records = words as usize / (1 + record / 8);
            assert!((900..2100).contains(&records), "{records} records");
        }
    }
}
