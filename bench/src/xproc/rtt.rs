//! Round trips between the two processes.
//!
//! The leader (core 0) sends a ping and waits for the pong; the peer (core 1)
//! waits for the ping, checks it and sends the pong. A ping is a message of
//! 64 bytes ([`Msg`]) unless said otherwise, holding its sequence number in
//! every word; the peer checks every word and answers with every word
//! inverted, which the leader checks in turn: both payloads are written and
//! read in full. Scenarios:
//!
//! - `spsc_rtt`, `spsc_rtt_56`, `spsc_rtt_8`: two of this crate's rings (one
//!   each way, capacity [`RING_CAPACITY`]) in memfd segments, carrying
//!   messages of 64, 56 and 8 bytes; both sides busy-poll `try_pop` with a
//!   spin-loop hint between tries. Up to 56 bytes, a slot is an 8-byte
//!   stamp and the payload: 16 bytes for 8, 64 (one line) for 56; a 64-byte
//!   message takes the index protocol, its slot the payload alone.
//! - `iceoryx2_rtt`: iceoryx2 publish-subscribe (`ipc::Service`), one
//!   service each way, set up as iceoryx2's own benchmark does (history 0,
//!   subscriber buffer 1, safe overflow, one publisher and one subscriber);
//!   the publisher loans a sample, writes the ping into it and sends it;
//!   both sides busy-poll `receive()` and copy the payload out.
//! - `uds_rtt`: a blocking Unix stream socketpair: `write` 64 bytes, `read`
//!   64 bytes.
//! - `eventfd_rtt`: two blocking eventfds, one each way: `write` signals,
//!   a blocking `read` waits. The payload travels through shared memory (a
//!   line each way, written before the signal and read after the wake-up),
//!   so the work matches the blocking ring's.
//! - `spsc_blocking_rtt`: two rings with eventfd wake-ups:
//!   `Producer::push_notify` and `Consumer::pop_blocking` with
//!   `SpinThenBlock::new(0)`, so that every wait sleeps, as in the raw
//!   eventfd ping-pong. Each round trip is two sleeps and two wake-ups.
//! - `spsc_blocking_spin_rtt`: the same with the default spin budget
//!   (`SpinThenBlock::default()`), which usually catches the reply before
//!   sleeping.
//! - `spsc_futex_blocking_rtt`: the same as `spsc_blocking_rtt` with
//!   `Wakeup::Futex`.
//!
//! Blocking pops are given no timeout, as the raw eventfd read has none; the
//! watchdog bounds every run instead.
//!
//! Timing is [`measure`]'s: one clock read per round trip for the
//! percentiles, and an untimed block for a mean without timer cost. Each
//! run also counts how often the two processes slept (their voluntary
//! context switches, see [`voluntary_switches`](super::peer::voluntary_switches)):
//! per round trip, 2 says every wait of a blocking scenario slept, 0 that
//! both sides spun.

use std::{
    error::Error,
    hint,
    io::{Read, Write},
    os::{
        fd::{AsFd, BorrowedFd, OwnedFd},
        unix::net::UnixStream,
    },
    sync::Arc,
    time::{Instant, SystemTime, UNIX_EPOCH},
};

use iceoryx2::{
    port::{publisher::Publisher, subscriber::Subscriber},
    prelude::*,
};
use ipc_primitives::{
    Pod,
    linux::{
        shm::Segment,
        wake::{EventFd, SpinThenBlock, Wakeup},
    },
    spsc::{Consumer, Producer, Spsc},
};
use rustix::event::EventfdFlags;
use serde_json::{Value, json};
use zerocopy::IntoBytes;

use super::{
    Latency, Outcome,
    line::{self, PING_WORDS, PONG_WORDS, atomics, load_msg, store_msg},
    peer::{Follower, Leader, field_u64, take_fds},
};
use crate::{
    loops::{Msg, Words, message, pop_spinning, push_spinning, spsc_pop, spsc_push},
    stats::Percentiles,
};

/// Slots of each round-trip ring (one message is ever in flight).
pub const RING_CAPACITY: u32 = 64;

/// How many round trips a run makes.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Untimed, first.
    pub warmup: u64,
    /// Timed one by one, for the percentiles.
    pub samples: u64,
    /// Timed as a whole, for the block mean.
    pub block: u64,
}

/// For round trips under about 1 us: 0.1-0.5 s a run.
pub const FAST: Plan = Plan {
    warmup: 10_000,
    samples: 100_000,
    block: 100_000,
};

/// For round trips that may or may not sleep.
pub const MIXED: Plan = Plan {
    warmup: 2_000,
    samples: 50_000,
    block: 20_000,
};

/// For round trips through the kernel (10-30 us): 0.3-0.7 s a run, and
/// still 20 samples past the p999.
pub const SLOW: Plan = Plan {
    warmup: 500,
    samples: 20_000,
    block: 2_000,
};

impl Plan {
    /// Round trips in all.
    pub fn total(self) -> u64 {
        self.warmup + self.samples + self.block
    }

    pub fn to_json(self) -> Value {
        json!({ "warmup": self.warmup, "samples": self.samples, "block": self.block })
    }

    /// The plan in a command's `"plan"`.
    pub fn from_cmd(cmd: &Value) -> Result<Self, Box<dyn Error>> {
        let plan = &cmd["plan"];
        Ok(Self {
            warmup: field_u64(plan, "warmup")?,
            samples: field_u64(plan, "samples")?,
            block: field_u64(plan, "block")?,
        })
    }
}

/// Runs `plan`'s round trips through `round_trip(seq)`, `seq` counting from
/// 0 across all three phases: the warm-up untimed; then each sample timed
/// from the previous clock read to the next (so it includes one clock read,
/// about 40 ns here); then the block timed as a whole, whose mean carries no
/// per-round-trip timer cost.
#[inline(always)]
pub fn measure(plan: Plan, mut round_trip: impl FnMut(u64)) -> Latency {
    let mut seq = 0;
    for _ in 0..plan.warmup {
        round_trip(seq);
        seq += 1;
    }
    let mut samples = Vec::with_capacity(plan.samples as usize);
    let mut last = Instant::now();
    for _ in 0..plan.samples {
        round_trip(seq);
        seq += 1;
        let now = Instant::now();
        samples.push(now.duration_since(last).as_nanos() as u64);
        last = now;
    }
    let start = Instant::now();
    for _ in 0..plan.block {
        round_trip(seq);
        seq += 1;
    }
    let block_mean = start.elapsed().as_nanos() as f64 / plan.block.max(1) as f64;
    Latency {
        pct: Percentiles::of(&mut samples),
        block_mean,
        round_trips: plan.total(),
        sleeps: None,
    }
}

/// The leader's half of a round-trip scenario: starts the peer on `key`
/// with `plan`, handing it `fds`, times `round_trip(seq)` over the plan
/// ([`measure`]) and waits for the peer to finish.
pub fn lead(
    leader: &mut Leader,
    key: &str,
    plan: Plan,
    fds: &[BorrowedFd<'_>],
    round_trip: impl FnMut(u64),
) -> Result<Latency, Box<dyn Error>> {
    leader.start(&json!({ "scenario": key, "plan": plan.to_json() }), fds)?;
    let latency = measure(plan, round_trip);
    leader.finish()?;
    Ok(latency)
}

/// The peer's half of a round-trip scenario whose command is `cmd`: reports
/// ready, then answers each round trip of the command's plan through
/// `answer_one(seq)`.
#[inline(always)]
pub fn follow(
    follower: &Follower,
    cmd: &Value,
    mut answer_one: impl FnMut(u64) -> Result<(), Box<dyn Error>>,
) -> Result<Value, Box<dyn Error>> {
    let plan = Plan::from_cmd(cmd)?;
    follower.ready()?;
    for seq in 0..plan.total() {
        answer_one(seq)?;
    }
    Ok(Value::Null)
}

/// The ping with sequence number `seq`.
#[inline(always)]
pub fn ping<const W: usize>(seq: u64) -> Words<W> {
    message(seq)
}

/// The answer to `ping`: every word inverted.
#[inline(always)]
pub fn pong<const W: usize>(ping: &Words<W>) -> Words<W> {
    ping.map(|word| !word)
}

/// Panics unless `got` is `want`, naming the scenario and the message.
#[inline(always)]
pub fn check<const W: usize>(
    scenario: &str,
    what: &str,
    seq: u64,
    got: &Words<W>,
    want: &Words<W>,
) {
    if got != want {
        panic!("{scenario}: {what} {seq} arrived as {got:x?}, expected {want:x?}");
    }
}

/// The leader's checks of a pong, and the peer's of a ping, answered.
#[inline(always)]
pub fn check_pong<const W: usize>(scenario: &str, seq: u64, got: &Words<W>) {
    check(scenario, "pong", seq, got, &pong(&ping(seq)));
}

#[inline(always)]
pub fn answer<const W: usize>(scenario: &str, seq: u64, got: &Words<W>) -> Words<W> {
    check(scenario, "ping", seq, got, &ping(seq));
    pong(got)
}

/// A memfd segment sized for one round-trip ring of `T`.
fn ring_segment<T: Pod>(label: &str) -> Result<Segment, Box<dyn Error>> {
    let len = Spsc::<T>::required_size(RING_CAPACITY).ok_or("ring size overflows")?;
    Ok(Segment::memfd(label, len)?)
}

// ---- spsc_rtt, spsc_rtt_56, spsc_rtt_8 ------------------------------------

/// Round trips of `W`-word messages.
pub fn spsc<const W: usize>(
    leader: &mut Leader,
    key: &'static str,
) -> Result<Outcome, Box<dyn Error>> {
    let ping_seg = ring_segment::<Words<W>>("xproc-ping")?;
    let pong_seg = ring_segment::<Words<W>>("xproc-pong")?;
    let mut tx = Spsc::<Words<W>>::create(ping_seg.region()?, RING_CAPACITY)?.into_producer();
    let mut rx = Spsc::<Words<W>>::create(pong_seg.region()?, RING_CAPACITY)?.into_consumer();
    let fds = [ping_seg.as_fd(), pong_seg.as_fd()];
    lead(leader, key, FAST, &fds, |seq| {
        push_spinning(|msg| spsc_push(&mut tx, msg), ping::<W>(seq));
        check_pong(key, seq, &pop_spinning(|| spsc_pop(&mut rx)));
    })
    .map(Outcome::Latency)
}

pub fn spsc_follow<const W: usize>(
    follower: &Follower,
    cmd: &Value,
    fds: Vec<OwnedFd>,
) -> Result<Value, Box<dyn Error>> {
    let key = cmd["scenario"].as_str().unwrap_or_default();
    let [ping_fd, pong_fd] = take_fds(fds)?;
    let (ping_seg, pong_seg) = (Segment::from_fd(ping_fd)?, Segment::from_fd(pong_fd)?);
    let mut rx = Spsc::<Words<W>>::attach(ping_seg.region()?)?.into_consumer();
    let mut tx = Spsc::<Words<W>>::attach(pong_seg.region()?)?.into_producer();
    follow(follower, cmd, |seq| {
        let got = pop_spinning(|| spsc_pop(&mut rx));
        push_spinning(|msg| spsc_push(&mut tx, msg), answer(key, seq, &got));
        Ok(())
    })
}

// ---- iceoryx2_rtt -----------------------------------------------------------

type IceService = ipc::Service;

/// A node that leaves the process's signal handlers alone.
fn ice_node() -> Result<Node<IceService>, Box<dyn Error>> {
    iceoryx2::prelude::set_log_level_from_env_or(LogLevel::Error);
    Ok(NodeBuilder::new()
        .signal_handling_mode(SignalHandlingMode::Disabled)
        .create::<IceService>()?)
}

/// The ports of one side: a publisher on `send` and a subscriber on `recv`.
/// The leader creates both services, the peer opens them, with the
/// settings of iceoryx2's own round-trip benchmark.
struct IcePorts {
    publisher: Publisher<IceService, Msg, ()>,
    subscriber: Subscriber<IceService, Msg, ()>,
    // Kept alive (dropped last) as long as the ports.
    _node: Node<IceService>,
}

impl IcePorts {
    fn new(send: &str, recv: &str, create: bool) -> Result<Self, Box<dyn Error>> {
        let node = ice_node()?;
        let service = |name: &str| -> Result<_, Box<dyn Error>> {
            let builder = node
                .service_builder(&name.try_into()?)
                .publish_subscribe::<Msg>()
                .max_publishers(1)
                .max_subscribers(1)
                .history_size(0)
                .subscriber_max_buffer_size(1)
                .enable_safe_overflow(true);
            Ok(if create {
                builder.create()?
            } else {
                builder.open()?
            })
        };
        let (send, recv) = (service(send)?, service(recv)?);
        Ok(Self {
            publisher: send.publisher_builder().create()?,
            subscriber: recv.subscriber_builder().create()?,
            _node: node,
        })
    }

    #[inline(always)]
    fn send(&self, msg: Msg) {
        let sample = self.publisher.loan_uninit().expect("iceoryx2: loan");
        sample.write_payload(msg).send().expect("iceoryx2: send");
    }

    #[inline(always)]
    fn receive(&self) -> Msg {
        loop {
            if let Some(sample) = self.subscriber.receive().expect("iceoryx2: receive") {
                return *sample;
            }
            hint::spin_loop();
        }
    }
}

pub fn iceoryx2(leader: &mut Leader, key: &'static str) -> Result<Outcome, Box<dyn Error>> {
    // Fresh names for every run: nothing left over from another can match.
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos();
    let base = format!("ipc-primitives-bench/{}/{now}", std::process::id());
    let (ping_name, pong_name) = (format!("{base}/ping"), format!("{base}/pong"));
    let ports = IcePorts::new(&ping_name, &pong_name, true)?;
    leader.start(
        &json!({
            "scenario": key,
            "plan": FAST.to_json(),
            "ping": ping_name,
            "pong": pong_name,
        }),
        &[],
    )?;
    let latency = measure(FAST, |seq| {
        ports.send(ping(seq));
        check_pong(key, seq, &ports.receive());
    });
    leader.finish()?;
    Ok(Outcome::Latency(latency))
}

pub fn iceoryx2_follow(
    follower: &Follower,
    cmd: &Value,
    _fds: Vec<OwnedFd>,
) -> Result<Value, Box<dyn Error>> {
    let plan = Plan::from_cmd(cmd)?;
    let name = |key: &str| {
        cmd[key]
            .as_str()
            .map(str::to_owned)
            .ok_or("no service name")
    };
    let ports = IcePorts::new(&name("pong")?, &name("ping")?, false)?;
    follower.ready()?;
    for seq in 0..plan.total() {
        let got = ports.receive();
        ports.send(answer("iceoryx2_rtt", seq, &got));
    }
    Ok(Value::Null)
}

// ---- uds_rtt -----------------------------------------------------------------

pub fn uds(leader: &mut Leader, key: &'static str) -> Result<Outcome, Box<dyn Error>> {
    let (mut mine, theirs) = UnixStream::pair()?;
    lead(leader, key, SLOW, &[theirs.as_fd()], |seq| {
        mine.write_all(ping::<8>(seq).as_bytes())
            .expect("uds_rtt: write");
        let mut got = [0; 8];
        mine.read_exact(got.as_mut_bytes()).expect("uds_rtt: read");
        check_pong(key, seq, &got);
    })
    .map(Outcome::Latency)
}

pub fn uds_follow(
    follower: &Follower,
    cmd: &Value,
    fds: Vec<OwnedFd>,
) -> Result<Value, Box<dyn Error>> {
    let [fd] = take_fds(fds)?;
    let mut socket = UnixStream::from(fd);
    follow(follower, cmd, |seq| {
        let mut got = [0; 8];
        socket.read_exact(got.as_mut_bytes())?;
        socket.write_all(answer("uds_rtt", seq, &got).as_bytes())?;
        Ok(())
    })
}

// ---- eventfd_rtt ---------------------------------------------------------------

/// A blocking eventfd (no `EFD_NONBLOCK`): a `read` sleeps until signalled.
fn blocking_eventfd() -> Result<OwnedFd, Box<dyn Error>> {
    Ok(rustix::event::eventfd(0, EventfdFlags::CLOEXEC)?)
}

/// `write` of 1 to an eventfd.
#[inline(always)]
fn signal(fd: &OwnedFd) {
    rustix::io::retry_on_intr(|| rustix::io::write(fd, &1_u64.to_ne_bytes()))
        .expect("eventfd write");
}

/// A blocking `read` of an eventfd.
#[inline(always)]
fn wait(fd: &OwnedFd) {
    let mut count = [0; 8];
    rustix::io::retry_on_intr(|| rustix::io::read(fd, &mut count)).expect("eventfd read");
}

pub fn eventfd(leader: &mut Leader, key: &'static str) -> Result<Outcome, Box<dyn Error>> {
    let seg = line::segment("xproc-eventfd")?;
    let words = atomics(&seg);
    let (ping_fd, pong_fd) = (blocking_eventfd()?, blocking_eventfd()?);
    let fds = [seg.as_fd(), ping_fd.as_fd(), pong_fd.as_fd()];
    lead(leader, key, SLOW, &fds, |seq| {
        store_msg(&words[PING_WORDS..], &ping(seq));
        signal(&ping_fd);
        wait(&pong_fd);
        check_pong(key, seq, &load_msg(&words[PONG_WORDS..]));
    })
    .map(Outcome::Latency)
}

pub fn eventfd_follow(
    follower: &Follower,
    cmd: &Value,
    fds: Vec<OwnedFd>,
) -> Result<Value, Box<dyn Error>> {
    let [seg_fd, ping_fd, pong_fd] = take_fds(fds)?;
    let seg = Segment::from_fd(seg_fd)?;
    let words = atomics(&seg);
    follow(follower, cmd, |seq| {
        wait(&ping_fd);
        let got = load_msg(&words[PING_WORDS..]);
        store_msg(&words[PONG_WORDS..], &answer("eventfd_rtt", seq, &got));
        signal(&pong_fd);
        Ok(())
    })
}

// ---- spsc_blocking_rtt, spsc_blocking_spin_rtt, spsc_futex_blocking_rtt -------

/// Two rings with wake-ups; `wakeup` is `"eventfd"` or `"futex"`.
pub(super) fn blocking(
    leader: &mut Leader,
    key: &'static str,
    wakeup: &str,
    spins: u32,
    plan: Plan,
) -> Result<Outcome, Box<dyn Error>> {
    let ping_seg = ring_segment::<Msg>("xproc-ping")?;
    let pong_seg = ring_segment::<Msg>("xproc-pong")?;
    let mut tx = Spsc::<Msg>::create(ping_seg.region()?, RING_CAPACITY)?.into_producer();
    let mut rx = Spsc::<Msg>::create(pong_seg.region()?, RING_CAPACITY)?.into_consumer();
    let (wake_ping, wake_pong) = match wakeup {
        "eventfd" => (Wakeup::eventfd()?, Wakeup::eventfd()?),
        _ => (Wakeup::Futex, Wakeup::Futex),
    };
    let mut fds = vec![ping_seg.as_fd(), pong_seg.as_fd()];
    fds.extend(wake_ping.as_eventfd().map(AsFd::as_fd));
    fds.extend(wake_pong.as_eventfd().map(AsFd::as_fd));
    let cmd = json!({ "scenario": key, "plan": plan.to_json(), "wakeup": wakeup, "spins": spins });
    leader.start(&cmd, &fds)?;
    let strategy = SpinThenBlock::new(spins);
    let latency = measure(plan, |seq| {
        tx.push_notify(ping(seq), &wake_ping).expect("push_notify");
        let got = rx
            .pop_blocking(&wake_pong, strategy, None)
            .expect("pop_blocking");
        check_pong(key, seq, &got);
    });
    leader.finish()?;
    Ok(Outcome::Latency(latency))
}

pub fn spsc_blocking(leader: &mut Leader, key: &'static str) -> Result<Outcome, Box<dyn Error>> {
    blocking(leader, key, "eventfd", 0, SLOW)
}

pub fn spsc_blocking_spin(
    leader: &mut Leader,
    key: &'static str,
) -> Result<Outcome, Box<dyn Error>> {
    blocking(leader, key, "eventfd", SpinThenBlock::DEFAULT_SPINS, MIXED)
}

pub fn spsc_futex_blocking(
    leader: &mut Leader,
    key: &'static str,
) -> Result<Outcome, Box<dyn Error>> {
    blocking(leader, key, "futex", 0, SLOW)
}

/// The peer's half of a blocking round trip, as the leader's command and fds
/// set it up: its handles own their segments.
pub struct BlockingPeer {
    pub plan: Plan,
    pub key: String,
    pub strategy: SpinThenBlock,
    /// Pops the pings.
    pub rx: Consumer<'static, Msg, Arc<Segment>>,
    /// Pushes the pongs.
    pub tx: Producer<'static, Msg, Arc<Segment>>,
    pub wake_ping: Wakeup,
    pub wake_pong: Wakeup,
}

impl BlockingPeer {
    pub fn new(cmd: &Value, fds: Vec<OwnedFd>) -> Result<Self, Box<dyn Error>> {
        let plan = Plan::from_cmd(cmd)?;
        let key = cmd["scenario"].as_str().unwrap_or_default().to_owned();
        let strategy = SpinThenBlock::new(u32::try_from(field_u64(cmd, "spins")?)?);
        let mut fds = fds.into_iter();
        let mut next_fd = || fds.next().ok_or("missing fd");
        let ping_seg = Segment::from_fd(next_fd()?)?;
        let pong_seg = Segment::from_fd(next_fd()?)?;
        let (wake_ping, wake_pong) = match cmd["wakeup"].as_str() {
            Some("eventfd") => (
                Wakeup::EventFd(EventFd::from_fd(next_fd()?)?),
                Wakeup::EventFd(EventFd::from_fd(next_fd()?)?),
            ),
            Some("futex") => (Wakeup::Futex, Wakeup::Futex),
            other => return Err(format!("unknown wake-up {other:?}").into()),
        };
        Ok(Self {
            plan,
            key,
            strategy,
            rx: Spsc::<Msg>::attach(ping_seg.into_region()?)?.into_consumer(),
            tx: Spsc::<Msg>::attach(pong_seg.into_region()?)?.into_producer(),
            wake_ping,
            wake_pong,
        })
    }
}

pub fn blocking_follow(
    follower: &Follower,
    cmd: &Value,
    fds: Vec<OwnedFd>,
) -> Result<Value, Box<dyn Error>> {
    let BlockingPeer {
        plan,
        key,
        strategy,
        mut rx,
        mut tx,
        wake_ping,
        wake_pong,
    } = BlockingPeer::new(cmd, fds)?;
    follower.ready()?;
    for seq in 0..plan.total() {
        let got = rx.pop_blocking(&wake_ping, strategy, None)?;
        tx.push_notify(answer(&key, seq, &got), &wake_pong)
            .map_err(|err| err.to_string())?;
    }
    Ok(Value::Null)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{FAST, Plan, measure, ping, pong};

    #[test]
    fn pongs_invert_every_word() {
        assert_eq!(pong(&ping::<8>(5)), [!5; 8]);
        assert_eq!(pong(&pong(&ping::<1>(9))), ping(9));
    }

    #[test]
    fn plans_travel_in_commands() {
        let plan = Plan::from_cmd(&json!({ "plan": FAST.to_json() })).unwrap();
        assert_eq!(plan.total(), FAST.total());
        assert!(Plan::from_cmd(&json!({})).is_err());
    }

    #[test]
    fn measure_numbers_every_round_trip_once() {
        let plan = Plan {
            warmup: 3,
            samples: 5,
            block: 2,
        };
        let mut seen = Vec::new();
        measure(plan, |seq| seen.push(seq));
        assert_eq!(seen, (0..10).collect::<Vec<_>>());
    }
}
