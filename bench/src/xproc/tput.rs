//! Throughput of 64-byte messages from the leader (producer, core 0) to the
//! peer (consumer, core 1), with `inproc`'s producer and consumer loops: the
//! producer writes every word of message `seq`, the consumer checks every
//! word of every message. The consumer times itself from the moment it says
//! `ready` (the producer starts when it hears that) to the last message, as
//! `inproc` times its consumer from the start barrier.
//!
//! - `spsc_tput`: this crate's ring in a memfd segment, capacity
//!   [`CAPACITY`], both sides spinning when full or empty.
//! - `rtrb_tput`: rtrb between two pinned threads of the leader process (the
//!   peer idles), exactly as `inproc` runs it; `spsc_inproc_tput` is this
//!   crate's ring the same way, to tell the ring from the two processes.
//! - `spsc_tput_8`, `rtrb_tput_8`: the same with 8-byte messages (one word,
//!   four times as many per run: [`inproc::messages`]). This ring's slots
//!   are then 16 bytes (an 8-byte stamp beside each payload), 4 to a line;
//!   rtrb's are 8.
//! - `uds_tput`, `uds_tput_1k`: a Unix stream socketpair, one `write` per
//!   message of 64 bytes or 1 KiB; the consumer reads as much as is there
//!   (up to 64 KiB) per `read`, the best case for the socket.
//! - `pipe_tput`: a pipe, the same way.

use std::{
    error::Error,
    fs::File,
    io::{self, Read, Write},
    os::{
        fd::{AsFd, OwnedFd},
        unix::net::UnixStream,
    },
    time::{Duration, Instant},
};

use ipc_primitives::{Pod, linux::shm::Segment, spsc::Spsc};
use serde_json::{Value, json};
use zerocopy::{FromBytes, IntoBytes};

use super::{
    Outcome,
    peer::{Follower, Leader, field_u64, take_fds},
};
use crate::{
    inproc::{self, CAPACITY, MESSAGES},
    loops::{Words, consume, produce, spsc_pop, spsc_push},
};

/// Messages per run through a socket or a pipe (one system call per
/// message): about 0.2 s at this machine's rates; a quarter as many of
/// 1 KiB.
const UDS_MESSAGES: u64 = 200_000;
const PIPE_MESSAGES: u64 = 400_000;

/// Messages per second from the consumer's `done`.
pub fn rate(messages: u64, done: &Value) -> Result<Outcome, Box<dyn Error>> {
    let ns = field_u64(done, "ns")?;
    Ok(Outcome::Rate(messages as f64 / (ns as f64 * 1e-9)))
}

/// The consumer's `done`: its time since `start`.
pub fn elapsed(start: Instant) -> Value {
    json!({ "ns": start.elapsed().as_nanos() as u64 })
}

/// A memfd segment sized for one throughput ring of `T`.
pub fn ring_segment<T: Pod>() -> Result<Segment, Box<dyn Error>> {
    let len = Spsc::<T>::required_size(CAPACITY as u32).ok_or("ring size overflows")?;
    Ok(Segment::memfd("xproc-tput", len)?)
}

/// `spsc_tput` (`W` = 8) and `spsc_tput_8` (`W` = 1).
pub fn spsc<const W: usize>(
    leader: &mut Leader,
    key: &'static str,
) -> Result<Outcome, Box<dyn Error>> {
    let messages = inproc::messages::<W>();
    let seg = ring_segment::<Words<W>>()?;
    let mut tx = Spsc::<Words<W>>::create(seg.region()?, CAPACITY as u32)?.into_producer();
    leader.start(
        &json!({ "scenario": key, "messages": messages }),
        &[seg.as_fd()],
    )?;
    produce(messages, |msg| spsc_push(&mut tx, msg));
    rate(messages, &leader.finish()?)
}

pub fn spsc_follow<const W: usize>(
    follower: &Follower,
    cmd: &Value,
    fds: Vec<OwnedFd>,
) -> Result<Value, Box<dyn Error>> {
    let messages = field_u64(cmd, "messages")?;
    let key = cmd["scenario"].as_str().unwrap_or_default();
    let [fd] = take_fds(fds)?;
    let seg = Segment::from_fd(fd)?;
    let mut rx = Spsc::<Words<W>>::attach(seg.region()?)?.into_consumer();
    follower.ready()?;
    let start = Instant::now();
    consume(key, messages, || spsc_pop(&mut rx));
    Ok(elapsed(start))
}

/// Messages per second of an in-process contender of `inproc`, which moves
/// `messages` messages.
fn in_process(
    messages: u64,
    run: fn() -> Result<Duration, Box<dyn Error>>,
) -> Result<Outcome, Box<dyn Error>> {
    Ok(Outcome::Rate(messages as f64 / run()?.as_secs_f64()))
}

/// `rtrb_tput` (`W` = 8) and `rtrb_tput_8` (`W` = 1).
pub fn rtrb<const W: usize>(
    _leader: &mut Leader,
    _key: &'static str,
) -> Result<Outcome, Box<dyn Error>> {
    in_process(inproc::messages::<W>(), inproc::rtrb::<W>)
}

pub fn spsc_inproc(_leader: &mut Leader, _key: &'static str) -> Result<Outcome, Box<dyn Error>> {
    in_process(MESSAGES, inproc::ours::<8>)
}

/// Writes `messages` messages of `W` words to `out`, one `write` each.
fn write_messages<const W: usize>(mut out: impl Write, messages: u64) {
    produce(messages, |msg: Words<W>| {
        out.write_all(msg.as_bytes()).expect("write");
        Ok(())
    });
}

/// `uds_tput` (`W` = 8) and `uds_tput_1k` (`W` = 128).
pub fn uds<const W: usize>(
    leader: &mut Leader,
    key: &'static str,
) -> Result<Outcome, Box<dyn Error>> {
    let messages = if W > 8 {
        UDS_MESSAGES / 4
    } else {
        UDS_MESSAGES
    };
    let (mine, theirs) = UnixStream::pair()?;
    leader.start(
        &json!({ "scenario": key, "messages": messages }),
        &[theirs.as_fd()],
    )?;
    drop(theirs);
    write_messages::<W>(&mine, messages);
    rate(messages, &leader.finish()?)
}

pub fn pipe(leader: &mut Leader, key: &'static str) -> Result<Outcome, Box<dyn Error>> {
    let (reader, writer) = io::pipe()?;
    leader.start(
        &json!({ "scenario": key, "messages": PIPE_MESSAGES }),
        &[reader.as_fd()],
    )?;
    drop(reader);
    write_messages::<8>(&writer, PIPE_MESSAGES);
    rate(PIPE_MESSAGES, &leader.finish()?)
}

/// The consumer of `uds_tput*` and `pipe_tput`: reads the byte stream, cut
/// into messages of `W` words.
pub fn stream_follow<const W: usize>(
    follower: &Follower,
    cmd: &Value,
    fds: Vec<OwnedFd>,
) -> Result<Value, Box<dyn Error>> {
    let messages = field_u64(cmd, "messages")?;
    let name = cmd["scenario"].as_str().unwrap_or_default();
    let [fd] = take_fds(fds)?;
    let mut reader = MsgReader::<_, W>::new(File::from(fd));
    follower.ready()?;
    let start = Instant::now();
    consume(name, messages, || Some(reader.next()));
    Ok(elapsed(start))
}

/// Cuts a byte stream into messages of `W` words, reading as much as is
/// there each time.
struct MsgReader<R, const W: usize> {
    src: R,
    buf: Vec<u8>,
    /// Unread bytes are `buf[start..end]`.
    start: usize,
    end: usize,
}

impl<R: Read, const W: usize> MsgReader<R, W> {
    const BUF: usize = 64 * 1024;

    fn new(src: R) -> Self {
        Self {
            src,
            buf: vec![0; Self::BUF],
            start: 0,
            end: 0,
        }
    }

    /// The next message, blocking until it is all there.
    ///
    /// # Panics
    /// If the stream fails or ends first.
    #[inline(always)]
    fn next(&mut self) -> Words<W> {
        let len = size_of::<Words<W>>();
        while self.end - self.start < len {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            match self.src.read(&mut self.buf[self.end..]) {
                Ok(0) => panic!("stream ended early"),
                Ok(read) => self.end += read,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => panic!("read: {err}"),
            }
        }
        let bytes = &self.buf[self.start..self.start + len];
        self.start += len;
        Words::<W>::read_from_bytes(bytes).expect("a message's bytes")
    }
}

#[cfg(test)]
mod tests {
    use std::io::{self, Read};

    use zerocopy::IntoBytes;

    use super::MsgReader;

    /// Hands out its bytes a few at a time, as a socket may.
    struct Trickle {
        bytes: Vec<u8>,
        pos: usize,
        step: usize,
    }

    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let len = self.step.min(buf.len()).min(self.bytes.len() - self.pos);
            buf[..len].copy_from_slice(&self.bytes[self.pos..self.pos + len]);
            self.pos += len;
            Ok(len)
        }
    }

    #[test]
    fn messages_are_cut_out_of_any_chunking() {
        let msgs: Vec<[u64; 8]> = (0..100).map(|seq| [seq; 8]).collect();
        for step in [1, 7, 64, 100, 4096] {
            let bytes = msgs.as_bytes().to_vec();
            let mut reader = MsgReader::<_, 8>::new(Trickle {
                bytes,
                pos: 0,
                step,
            });
            for msg in &msgs {
                assert_eq!(&reader.next(), msg, "step {step}");
            }
        }
    }
}
