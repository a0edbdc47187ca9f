//! The one-command demo: shared memory against a plain Unix socket, for two
//! workloads, between real processes.
//!
//! `cargo run --release --example demo` (about 5 s; `-- --seconds N` for
//! another length). No root, no setup, nothing left behind.
//!
//! - **Logging**: 4 client processes write log lines of 24 to 2,000 bytes
//!   to one daemon (this process). Over shared memory each client writes
//!   into a lane of its own (`ipc_primitives::lanes`); the daemon scans the
//!   lanes fairly and sleeps on one doorbell they all ring. Every line
//!   carries its client, a sequence number and the time it was sent; the
//!   daemon checks that each client's lines arrive complete and in order.
//! - **Market data**: one publisher (this process) sends ticks as fast as it
//!   can to 3 reader processes. Over shared memory it writes a broadcast
//!   ring (`ipc_primitives::broadcast`) and never waits for a reader: a
//!   reader that falls a whole ring behind is told exactly how many ticks
//!   it missed. Over sockets it writes each tick to each reader's socket.
//!
//! Each workload runs over shared memory, then over `SOCK_SEQPACKET`
//! socket pairs, measured the same way: messages, lost (or missed),
//! latency from the sender's `CLOCK_MONOTONIC` to the receiver's (one clock
//! for every process), and throughput. The summary table compares them.
//!
//! The children are this program run again (`--child ROLE ...`), each given
//! its segment (an anonymous memfd, never a name in `/dev/shm`) or its end
//! of a socket pair as its standard input. `Ctrl-C` (or `SIGTERM`) stops
//! the run: children are killed and reaped and the figures so far printed.
//! A child that fails is named, and the demo exits 1.

use std::error::Error;
use std::fmt;
use std::io::{IsTerminal, Read, Write};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};
use std::process::{Child, ChildStdout, Command, ExitCode, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ipc_primitives::broadcast::{self, Broadcast, Reader, Start, Writer};
use ipc_primitives::bytes::ReserveError;
use ipc_primitives::lanes::{Lanes, LanesConsumer, PopError};
use ipc_primitives::linux::lanes::LockedLane;
use ipc_primitives::linux::shm::Segment;
use ipc_primitives::linux::wake::{PushNotifyError, SpinThenBlock, WaitError, Wakeup};
use rustix::event::{PollFd, PollFlags};
use rustix::io::Errno;
use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// Log clients.
const CLIENTS: usize = 4;
/// Tick readers.
const READERS: usize = 3;
/// Words (8 bytes) per client lane: 64 KiB, about 60 lines, in the range a
/// socket buffer holds (a deeper lane only queues longer while the daemon is
/// behind, a shallower one leaves clients asleep while it catches up).
const LANE_WORDS: u32 = 8 * 1024;
/// Ticks the broadcast ring holds (2 MiB); it keeps the last `CAPACITY - 1`
/// whole: 65 ms at [`TICK_RATE`].
const CAPACITY: u32 = 64 * 1024;
/// Ticks per second the publisher offers: as fast as it can if it cannot
/// keep up.
const TICK_RATE: u64 = 1_000_000;
/// The shortest sleep of a publisher ahead of schedule: ticks fall due
/// meanwhile and go out back to back.
const BATCH: Duration = Duration::from_micros(100);
/// The longest log line, header included.
const MAX_LINE: usize = 2000;
/// Seconds of measured work by default, split between the four runs.
const DEFAULT_SECONDS: f64 = 4.0;
/// How long a child may take to say what is expected of it.
const PATIENCE: Duration = Duration::from_secs(30);
/// The first argument that makes this program a child.
const CHILD: &str = "--child";

type Result<T, E = DemoError> = std::result::Result<T, E>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some(CHILD) {
        return child(&args[1..]);
    }
    let seconds = match args.as_slice() {
        [] => DEFAULT_SECONDS,
        [flag, n] if flag == "--seconds" => match n.parse::<f64>() {
            Ok(n) if n > 0.0 && n <= 3600.0 => n,
            _ => return usage(),
        },
        _ => return usage(),
    };
    let mut stop = match StopSignals::block() {
        Ok(stop) => stop,
        Err(err) => return fail(&err),
    };
    let runs = [
        (Workload::Logging, Transport::SharedMemory),
        (Workload::Logging, Transport::Socket),
        (Workload::Market, Transport::SharedMemory),
        (Workload::Market, Transport::Socket),
    ];
    let each = Duration::from_secs_f64(seconds / runs.len() as f64);
    println!(
        "ipc-primitives demo: {CLIENTS} log clients -> 1 daemon, then 1 market-data publisher \
         -> {READERS} readers, each over shared memory and over a Unix socket ({:.1} s each)",
        each.as_secs_f64()
    );
    let mut rows = Vec::new();
    let mut outcome = Ok(());
    for (n, &(workload, transport)) in runs.iter().enumerate() {
        let mut progress = Progress::new(format!(
            "[{}/{}] {workload}, {transport}",
            n + 1,
            runs.len()
        ));
        let row = match workload {
            Workload::Logging => logging(transport, each, &mut progress, &mut stop),
            Workload::Market => market(transport, each, &mut progress, &mut stop),
        };
        progress.finish(row.as_ref().ok());
        match row {
            Ok(row) => rows.push(row),
            Err(err) => {
                outcome = Err(err);
                break;
            }
        }
    }
    if !rows.is_empty() {
        summary(&rows);
    }
    match outcome {
        Ok(())
            if rows
                .iter()
                .any(|row| row.lost > 0 && row.workload == Workload::Logging) =>
        {
            eprintln!("demo: log lines were lost");
            ExitCode::FAILURE
        }
        Ok(()) => ExitCode::SUCCESS,
        Err(DemoError::Interrupted(signal)) => {
            println!("{signal}: stopped early; every child was stopped and reaped");
            ExitCode::SUCCESS
        }
        Err(err) => fail(&err),
    }
}

fn usage() -> ExitCode {
    eprintln!("usage: demo [--seconds N]   (N: seconds of measured work, default 4)");
    ExitCode::from(2)
}

/// Prints `err` and its sources; exit code 1.
fn fail(err: &dyn Error) -> ExitCode {
    eprint!("demo: {err}");
    let mut source = err.source();
    while let Some(cause) = source {
        eprint!(": {cause}");
        source = cause.source();
    }
    eprintln!();
    ExitCode::FAILURE
}

// ---------------------------------------------------------------------------
// What runs, and what a run measures
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Workload {
    Logging,
    Market,
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Logging => "logging",
            Self::Market => "market data",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    SharedMemory,
    Socket,
}

impl Transport {
    /// Its name on a child's command line.
    fn arg(self) -> &'static str {
        match self {
            Self::SharedMemory => "shm",
            Self::Socket => "socket",
        }
    }

    fn from_arg(arg: &str) -> Option<Self> {
        [Self::SharedMemory, Self::Socket]
            .into_iter()
            .find(|transport| transport.arg() == arg)
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::SharedMemory => "shared memory",
            Self::Socket => "Unix socket",
        })
    }
}

/// One line of the summary.
#[derive(Debug)]
struct Row {
    workload: Workload,
    transport: Transport,
    /// Log lines received; ticks published.
    messages: u64,
    /// Log lines sent but not received; ticks readers missed (lapped).
    lost: u64,
    latency: Histogram,
    /// Messages per second.
    rate: f64,
}

/// The time on `CLOCK_MONOTONIC`, in nanoseconds: the same clock in every
/// process of the machine, so a receiver can subtract a sender's stamp.
fn now_ns() -> u64 {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    // Non-negative on CLOCK_MONOTONIC.
    now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
}

// ---------------------------------------------------------------------------
// Logging: CLIENTS processes -> the daemon (this process)
// ---------------------------------------------------------------------------

/// What starts each log line; the rest is text.
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
struct LineHeader {
    /// The client's count of lines before this one.
    seq: u64,
    /// When the client sent it ([`now_ns`]).
    sent_ns: u64,
    client: u32,
    /// The line's length, header included.
    len: u32,
}

const HEADER: usize = size_of::<LineHeader>();

/// Runs the logging workload over `transport` for `time`.
fn logging(
    transport: Transport,
    time: Duration,
    progress: &mut Progress,
    stop: &mut StopSignals,
) -> Result<Row> {
    let (mut inbox, ends) = Inbox::new(transport)?;
    let mut clients = Vec::with_capacity(CLIENTS);
    for (id, end) in ends.into_iter().enumerate() {
        let args = [
            "log-client",
            transport.arg(),
            &id.to_string(),
            &time.as_secs_f64().to_string(),
        ];
        clients.push(Kid::spawn(format!("log client {id}"), &args, end)?);
    }
    let mut next = [0_u64; CLIENTS];
    let mut latency = Histogram::default();
    let (mut first, mut last) = (None, Instant::now());
    let mut accept = |line: &[u8]| -> Result<()> {
        let now = now_ns();
        let Ok((header, _)) = LineHeader::read_from_prefix(line) else {
            return Err(DemoError::Check(format!(
                "a line of {} bytes, no header",
                line.len()
            )));
        };
        let client = header.client as usize;
        let Some(expected) = next.get_mut(client) else {
            return Err(DemoError::Check(format!(
                "a line from unknown client {client}"
            )));
        };
        if header.seq != *expected || header.len as usize != line.len() {
            return Err(DemoError::Check(format!(
                "client {client}: line {} of {} bytes ({} received) arrived where line \
                 {expected} was due: lost, reordered or cut",
                header.seq,
                header.len,
                line.len()
            )));
        }
        *expected += 1;
        latency.record(now.saturating_sub(header.sent_ns));
        last = Instant::now();
        first.get_or_insert(last);
        Ok(())
    };
    let mut received = 0_u64;
    let mut checked = Instant::now();
    loop {
        received += inbox.receive(Duration::from_millis(20), &mut accept)?;
        if checked.elapsed() < Duration::from_millis(50) {
            continue;
        }
        checked = Instant::now();
        stop.check()?;
        progress.update(&format!("{} lines", count(received)));
        let mut running = false;
        for client in &mut clients {
            running |= !client.exited()?;
        }
        if !running {
            break;
        }
    }
    // Every client has exited: what they sent is all in the lanes (or the
    // sockets) now.
    loop {
        let more = inbox.receive(Duration::ZERO, &mut accept)?;
        if more == 0 {
            break;
        }
        received += more;
    }
    let mut lost = 0;
    for (id, client) in clients.iter_mut().enumerate() {
        let sent: u64 = client.result(stop)?.field("sent")?;
        lost += sent.saturating_sub(next[id]);
    }
    let window = first.map_or(time, |first| last.duration_since(first));
    Ok(Row {
        workload: Workload::Logging,
        transport,
        messages: received,
        lost,
        latency,
        rate: received as f64 / window.as_secs_f64().max(1e-9),
    })
}

/// The daemon's side: the clients' lanes, or their sockets.
enum Inbox {
    Lanes(Box<LanesConsumer<'static, Arc<Segment>>>),
    Sockets(Vec<Option<OwnedFd>>),
}

impl Inbox {
    /// The daemon's side and each client's (its standard input).
    fn new(transport: Transport) -> Result<(Self, Vec<OwnedFd>)> {
        match transport {
            Transport::SharedMemory => {
                let len = Lanes::required_size(CLIENTS, LANE_WORDS)
                    .ok_or(DemoError::Check("lanes too large".into()))?;
                let segment = Segment::memfd("demo-log", len).context("memfd for the lanes")?;
                let region = segment.into_region().context("map the lanes")?;
                let lanes =
                    Lanes::create(region, CLIENTS, LANE_WORDS).context("create the lanes")?;
                let ends = (0..CLIENTS)
                    .map(|_| lanes.keeper().as_fd().try_clone_to_owned())
                    .collect::<Result<_, _>>()
                    .context("dup the memfd")?;
                Ok((Self::Lanes(Box::new(lanes.into_consumer())), ends))
            }
            Transport::Socket => {
                let (ours, theirs) = socket_pairs(CLIENTS)?;
                Ok((Self::Sockets(ours.into_iter().map(Some).collect()), theirs))
            }
        }
    }

    /// Passes every line that has arrived to `accept`, waiting up to `wait`
    /// for the first; returns how many.
    fn receive(
        &mut self,
        wait: Duration,
        accept: &mut impl FnMut(&[u8]) -> Result<()>,
    ) -> Result<u64> {
        let mut buf = [0; MAX_LINE];
        let mut got = 0;
        match self {
            Self::Lanes(lanes) => loop {
                // Lanes in fair order; a batch at most, then the caller looks
                // at the clock.
                let popped = if got == 0 && !wait.is_zero() {
                    match lanes.pop_blocking(
                        &mut buf,
                        &Wakeup::Futex,
                        SpinThenBlock::default(),
                        Some(wait),
                    ) {
                        Err(ipc_primitives::lanes::BlockingError::Sleep(WaitError::TimedOut)) => {
                            return Ok(0);
                        }
                        other => other.map_err(|err| DemoError::Check(format!("lanes: {err}")))?,
                    }
                } else {
                    match lanes.pop_into(&mut buf) {
                        Err(PopError::Empty) => return Ok(got),
                        other => other.map_err(|err| DemoError::Check(format!("lanes: {err}")))?,
                    }
                };
                accept(&buf[..popped.len])?;
                got += 1;
                if got == 4096 {
                    return Ok(got);
                }
            },
            Self::Sockets(sockets) => {
                let timeout = rustix::time::Timespec::try_from(wait).unwrap_or_default();
                let mut fds: Vec<PollFd<'_>> = sockets
                    .iter()
                    .flatten()
                    .map(|fd| PollFd::new(fd, PollFlags::IN))
                    .collect();
                if fds.is_empty() {
                    return Ok(0);
                }
                retry(|| rustix::event::poll(&mut fds, Some(&timeout))).context("poll")?;
                drop(fds);
                for (client, slot) in sockets.iter_mut().enumerate() {
                    let Some(fd) = slot else { continue };
                    for _ in 0..256 {
                        match rustix::net::recv(&*fd, &mut buf, RecvFlags::DONTWAIT) {
                            Ok((0, _)) => {
                                *slot = None; // the client closed its end
                                break;
                            }
                            Ok((len, _)) => {
                                accept(&buf[..len])?;
                                got += 1;
                            }
                            Err(Errno::AGAIN | Errno::INTR) => break,
                            Err(err) => {
                                return Err(DemoError::Sys(
                                    format!("recv from client {client}"),
                                    err,
                                ));
                            }
                        }
                    }
                }
                Ok(got)
            }
        }
    }
}

/// A log client: sends lines for `seconds`, then reports how many.
fn log_client(transport: Transport, id: u32, seconds: f64) -> Result<()> {
    let mut outbox = Outbox::new(transport)?;
    let mut line = vec![b'.'; MAX_LINE];
    let text = format!(" client {id} writes a line of its log. ");
    for (byte, text) in line[HEADER..].iter_mut().zip(text.bytes().cycle()) {
        *byte = text;
    }
    let mut rng = u64::from(id).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let end = now_ns() + (seconds * 1e9) as u64;
    let mut seq = 0;
    loop {
        let sent_ns = now_ns();
        if sent_ns >= end {
            break;
        }
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let len = HEADER + (rng % (MAX_LINE - HEADER + 1) as u64) as usize;
        let header = LineHeader {
            seq,
            sent_ns,
            client: id,
            len: len as u32,
        };
        line[..HEADER].copy_from_slice(header.as_bytes());
        outbox.send(&line[..len])?;
        seq += 1;
    }
    outbox.close()?;
    println!("result sent={seq}");
    Ok(())
}

/// A client's side: its lane, or its socket.
enum Outbox {
    Lane(Box<LockedLane<'static, Arc<Segment>>>),
    Socket(OwnedFd),
}

impl Outbox {
    /// From the segment or socket this process was given as standard input.
    fn new(transport: Transport) -> Result<Self> {
        let fd = std::io::stdin()
            .as_fd()
            .try_clone_to_owned()
            .context("dup stdin")?;
        Ok(match transport {
            Transport::SharedMemory => {
                let segment = Segment::from_fd(fd).context("map the lanes")?;
                let lanes = Lanes::attach(segment.into_region().context("map the lanes")?)
                    .context("attach the lanes")?;
                let lane = lanes.claim_locked(lanes.keeper()).context("claim a lane")?;
                Self::Lane(Box::new(
                    lane.ok_or(DemoError::Check("no free lane".into()))?,
                ))
            }
            Transport::Socket => Self::Socket(fd),
        })
    }

    /// Sends `line`, waiting while the lane (or socket) is full.
    fn send(&mut self, line: &[u8]) -> Result<()> {
        match self {
            Self::Lane(lane) => {
                loop {
                    match lane.push_notify(line, &Wakeup::Futex) {
                        Ok(()) => return Ok(()),
                        // Full: the daemon is behind. Lanes have no wake-up
                        // for space: sleep, leaving the daemon the core, and
                        // look again.
                        Err(PushNotifyError::Push(ReserveError::Full)) => {
                            std::thread::sleep(Duration::from_micros(100));
                        }
                        Err(err) => return Err(DemoError::Check(format!("push: {err}"))),
                    }
                }
            }
            Self::Socket(fd) => {
                retry(|| rustix::net::send(&*fd, line, SendFlags::empty())).context("send")?;
                Ok(())
            }
        }
    }

    /// Releases the lane (or closes the socket).
    fn close(self) -> Result<()> {
        if let Self::Lane(lane) = self {
            lane.release(&Wakeup::Futex).context("release the lane")?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Market data: the publisher (this process) -> READERS processes
// ---------------------------------------------------------------------------

/// One tick of one instrument.
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
struct Tick {
    /// The publisher's count of ticks before this one; [`END`] for the last.
    seq: u64,
    /// When the publisher sent it ([`now_ns`]).
    sent_ns: u64,
    instrument: u64,
    price: u64,
}

/// The sequence number of the tick that ends the run.
const END: u64 = u64::MAX;

/// Runs the market-data workload over `transport` for `time`.
fn market(
    transport: Transport,
    time: Duration,
    progress: &mut Progress,
    stop: &mut StopSignals,
) -> Result<Row> {
    let (mut fanout, ends) = Fanout::new(transport)?;
    let mut readers = Vec::with_capacity(READERS);
    for (id, end) in ends.into_iter().enumerate() {
        let args = ["tick-reader", transport.arg(), &id.to_string()];
        readers.push(Kid::spawn(format!("tick reader {id}"), &args, end)?);
    }
    for reader in &mut readers {
        reader.line(stop)?; // "ready": it reads from the first tick on
    }
    let start = Instant::now();
    let start_ns = now_ns();
    let mut checked = start;
    let mut tick = Tick {
        seq: 0,
        sent_ns: 0,
        instrument: 0,
        price: 10_000,
    };
    loop {
        // On schedule, or behind it (then at once). Ahead of it, sleep
        // rather than spin, leaving the cores to the readers, and send what
        // fell due meanwhile back to back.
        let due = start_ns + tick.seq * 1_000_000_000 / TICK_RATE;
        let now = now_ns();
        if now < due {
            std::thread::sleep(Duration::from_nanos(due - now).max(BATCH));
        }
        tick.sent_ns = now_ns();
        tick.instrument = tick.seq % 16;
        tick.price = 10_000 + tick.seq % 97;
        fanout.publish(&tick)?;
        tick.seq += 1;
        if tick.seq.is_multiple_of(256) && checked.elapsed() >= Duration::from_millis(50) {
            checked = Instant::now();
            stop.check()?;
            progress.update(&format!("{} ticks", count(tick.seq)));
            if checked.duration_since(start) >= time {
                break;
            }
        }
    }
    let elapsed = start.elapsed();
    fanout.finish()?;
    let mut missed = 0;
    let mut latency = Histogram::default();
    for reader in &mut readers {
        let result = reader.result(stop)?;
        missed += result.field::<u64>("missed")?;
        latency.merge(
            &Histogram::decode(result.text("latency")?).ok_or_else(|| {
                DemoError::Check(format!("{}: unreadable latencies", reader.name))
            })?,
        );
    }
    Ok(Row {
        workload: Workload::Market,
        transport,
        messages: tick.seq,
        lost: missed,
        latency,
        rate: tick.seq as f64 / elapsed.as_secs_f64(),
    })
}

/// The publisher's side: the broadcast ring, or one socket per reader.
enum Fanout {
    Ring(Writer<'static, Tick, Arc<Segment>>),
    Sockets(Vec<OwnedFd>),
}

impl Fanout {
    /// The publisher's side and each reader's (its standard input).
    fn new(transport: Transport) -> Result<(Self, Vec<OwnedFd>)> {
        match transport {
            Transport::SharedMemory => {
                let len = Broadcast::<Tick>::required_size(CAPACITY)
                    .ok_or(DemoError::Check("ring too large".into()))?;
                let segment = Segment::memfd("demo-ticks", len).context("memfd for the ring")?;
                let region = segment.into_region().context("map the ring")?;
                let ring = Broadcast::<Tick>::create(region, CAPACITY)
                    .context("create the ring")?
                    .into_writer();
                let ends = (0..READERS)
                    .map(|_| ring.keeper().as_fd().try_clone_to_owned())
                    .collect::<Result<_, _>>()
                    .context("dup the memfd")?;
                Ok((Self::Ring(ring), ends))
            }
            Transport::Socket => {
                let (ours, theirs) = socket_pairs(READERS)?;
                Ok((Self::Sockets(ours), theirs))
            }
        }
    }

    /// Sends `tick` to every reader: one store into the ring, or one
    /// `send` per reader (waiting while its socket is full).
    fn publish(&mut self, tick: &Tick) -> Result<()> {
        match self {
            Self::Ring(ring) => ring.publish_notify(tick).context("wake the readers"),
            Self::Sockets(sockets) => {
                for (reader, fd) in sockets.iter().enumerate() {
                    retry(|| rustix::net::send(fd, tick.as_bytes(), SendFlags::empty())).map_err(
                        |err| DemoError::Sys(format!("send to tick reader {reader}"), err),
                    )?;
                }
                Ok(())
            }
        }
    }

    /// Sends the [`END`] tick, and closes the sockets.
    fn finish(mut self) -> Result<()> {
        self.publish(&Tick {
            seq: END,
            sent_ns: now_ns(),
            instrument: 0,
            price: 0,
        })
    }
}

/// A tick reader: reads until the [`END`] tick, then reports what it saw.
fn tick_reader(transport: Transport) -> Result<()> {
    let fd = std::io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .context("dup stdin")?;
    let mut feed = match transport {
        Transport::SharedMemory => {
            let segment = Segment::from_fd(fd).context("map the ring")?;
            let ring = Broadcast::<Tick>::attach(segment.into_region().context("map the ring")?)
                .context("attach the ring")?;
            Feed::Ring(ring.into_reader(Start::Oldest))
        }
        Transport::Socket => Feed::Socket(fd),
    };
    println!("ready");
    std::io::stdout().flush().context("write to the demo")?;
    let (mut seen, mut missed) = (0_u64, 0_u64);
    let mut latency = Histogram::default();
    loop {
        match feed.next()? {
            Ok(tick) if tick.seq == END => break,
            Ok(tick) => {
                latency.record(now_ns().saturating_sub(tick.sent_ns));
                seen += 1;
            }
            Err(lapped) => missed += lapped,
        }
    }
    println!(
        "result seen={seen} missed={missed} latency={}",
        latency.encode()
    );
    Ok(())
}

/// A reader's side: the ring, or its socket.
enum Feed {
    Ring(Reader<'static, Tick, Arc<Segment>>),
    Socket(OwnedFd),
}

impl Feed {
    /// The next tick, or how many the publisher's ring lapped this reader by.
    fn next(&mut self) -> Result<Result<Tick, u64>> {
        match self {
            Self::Ring(ring) => match ring.recv_blocking(SpinThenBlock::default(), None) {
                Ok(tick) => Ok(Ok(tick)),
                Err(broadcast::BlockingError::Lagged { missed }) => Ok(Err(missed)),
                Err(err) => Err(DemoError::Check(format!("ring: {err}"))),
            },
            Self::Socket(fd) => {
                let mut tick = [0; size_of::<Tick>()];
                let (len, _) = retry(|| rustix::net::recv(&*fd, &mut tick, RecvFlags::empty()))
                    .context("recv")?;
                Tick::read_from_bytes(&tick[..len])
                    .map(Ok)
                    .map_err(|_| DemoError::Check(format!("a tick of {len} bytes")))
            }
        }
    }
}

/// `n` `SOCK_SEQPACKET` socket pairs: our ends and theirs.
fn socket_pairs(n: usize) -> Result<(Vec<OwnedFd>, Vec<OwnedFd>)> {
    (0..n)
        .map(|_| {
            rustix::net::socketpair(
                AddressFamily::UNIX,
                SocketType::SEQPACKET,
                SocketFlags::CLOEXEC,
                None,
            )
        })
        .collect::<Result<Vec<_>, _>>()
        .map(|pairs| pairs.into_iter().unzip())
        .map_err(|err| DemoError::Sys("socketpair".into(), err))
}

/// `call`, again while it fails with `EINTR`.
fn retry<T>(mut call: impl FnMut() -> rustix::io::Result<T>) -> rustix::io::Result<T> {
    loop {
        match call() {
            Err(Errno::INTR) => {}
            other => return other,
        }
    }
}

// ---------------------------------------------------------------------------
// Children
// ---------------------------------------------------------------------------

/// Runs the role `args` name, in a child.
fn child(args: &[String]) -> ExitCode {
    // Dies with the demo, whatever happens to it; leaves `Ctrl-C` to it.
    let setup =
        rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
            .map_err(|err| DemoError::Sys("prctl(PR_SET_PDEATHSIG)".into(), err))
            .and_then(|()| StopSignals::block().map(drop));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = setup.and_then(|()| match args.as_slice() {
        ["log-client", transport, id, seconds] => {
            match (Transport::from_arg(transport), id.parse(), seconds.parse()) {
                (Some(transport), Ok(id), Ok(seconds)) => log_client(transport, id, seconds),
                _ => Err(DemoError::Check(format!("bad arguments {args:?}"))),
            }
        }
        ["tick-reader", transport, _id] => match Transport::from_arg(transport) {
            Some(transport) => tick_reader(transport),
            None => Err(DemoError::Check(format!("bad arguments {args:?}"))),
        },
        _ => Err(DemoError::Check(format!("unknown role {args:?}"))),
    });
    match run {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => fail(&err),
    }
}

/// A child process, its standard output read line by line. Killed and
/// reaped when dropped, so none outlives the demo.
struct Kid {
    name: String,
    child: Child,
    out: ChildStdout,
    pending: Vec<u8>,
    status: Option<ExitStatus>,
}

impl Kid {
    /// Starts this program as the child `args` describe, `stdin` as its
    /// standard input.
    fn spawn(name: String, args: &[&str], stdin: OwnedFd) -> Result<Self> {
        let exe = std::env::current_exe().context("find this program")?;
        let mut child = Command::new(exe)
            .arg(CHILD)
            .args(args)
            .stdin(stdin)
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|err| DemoError::Io(format!("start {name}"), err))?;
        let out = child.stdout.take().expect("piped");
        Ok(Self {
            name,
            child,
            out,
            pending: Vec::new(),
            status: None,
        })
    }

    /// Whether it has exited; an error if it failed.
    fn exited(&mut self) -> Result<bool> {
        if self.status.is_none() {
            self.status = self
                .child
                .try_wait()
                .map_err(|err| DemoError::Io(format!("wait for {}", self.name), err))?;
        }
        match self.status {
            Some(status) if !status.success() => Err(DemoError::Child {
                name: self.name.clone(),
                status,
            }),
            status => Ok(status.is_some()),
        }
    }

    /// The next line it writes, waiting for it (a while at most).
    fn line(&mut self, stop: &mut StopSignals) -> Result<String> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(end) = self.pending.iter().position(|&byte| byte == b'\n') {
                let line: Vec<u8> = self.pending.drain(..=end).collect();
                return Ok(String::from_utf8_lossy(&line[..end]).into_owned());
            }
            stop.check()?;
            if Instant::now() >= deadline {
                return Err(DemoError::Check(format!(
                    "{} said nothing for {PATIENCE:?}",
                    self.name
                )));
            }
            let mut fd = [PollFd::new(&self.out, PollFlags::IN)];
            let timeout = rustix::time::Timespec {
                tv_sec: 0,
                tv_nsec: 100_000_000,
            };
            if retry(|| rustix::event::poll(&mut fd, Some(&timeout))).context("poll")? == 0 {
                continue;
            }
            let mut buf = [0; 4096];
            match self.out.read(&mut buf) {
                Ok(0) => {
                    // It closed its output: it has exited, or will at once.
                    let status = self
                        .child
                        .wait()
                        .map_err(|err| DemoError::Io(format!("wait for {}", self.name), err))?;
                    self.status = Some(status);
                    self.exited()?;
                    return Err(DemoError::Check(format!(
                        "{} exited without a word",
                        self.name
                    )));
                }
                Ok(n) => self.pending.extend_from_slice(&buf[..n]),
                Err(err) => return Err(DemoError::Io(format!("read from {}", self.name), err)),
            }
        }
    }

    /// Its `result ...` line, once it has exited successfully.
    fn result(&mut self, stop: &mut StopSignals) -> Result<Report> {
        let line = self.line(stop)?;
        let report = line
            .strip_prefix("result ")
            .map(|fields| Report {
                name: self.name.clone(),
                fields: fields.to_owned(),
            })
            .ok_or_else(|| DemoError::Check(format!("{}: {line:?} is no result", self.name)))?;
        while !self.exited()? {
            stop.check()?;
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(report)
    }
}

impl Drop for Kid {
    fn drop(&mut self) {
        if self.status.is_none() {
            // Errors: it is gone already.
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A child's `result key=value ...` line.
struct Report {
    name: String,
    fields: String,
}

impl Report {
    fn text(&self, key: &str) -> Result<&str> {
        self.fields
            .split(' ')
            .find_map(|field| field.strip_prefix(key)?.strip_prefix('='))
            .ok_or_else(|| DemoError::Check(format!("{}: no {key} in its result", self.name)))
    }

    fn field<T: std::str::FromStr>(&self, key: &str) -> Result<T> {
        let text = self.text(key)?;
        text.parse()
            .map_err(|_| DemoError::Check(format!("{}: {key}={text}", self.name)))
    }
}

/// `SIGINT` and `SIGTERM`, blocked so that they wait in the kernel until
/// [`check`](Self::check) takes one: no handler, nothing async.
///
/// libc, not rustix: rustix has signal masks and `sigtimedwait` only in its
/// experimental `runtime` module.
struct StopSignals {
    set: libc::sigset_t,
}

impl StopSignals {
    /// Blocks the two signals: `sigemptyset`, `sigaddset`, `pthread_sigmask`.
    fn block() -> Result<Self> {
        let mut set = MaybeUninit::<libc::sigset_t>::uninit();
        // SAFETY: `sigemptyset` initialises the set behind the pointer, which
        // is valid for writes of a `sigset_t`; it cannot fail for a valid
        // pointer.
        unsafe { libc::sigemptyset(set.as_mut_ptr()) };
        // SAFETY: initialised by `sigemptyset` just above.
        let mut set = unsafe { set.assume_init() };
        for signal in [libc::SIGINT, libc::SIGTERM] {
            // SAFETY: `set` is an initialised `sigset_t`, and the signals are
            // valid, so this cannot fail.
            unsafe { libc::sigaddset(&mut set, signal) };
        }
        // SAFETY: `set` is initialised; a null old set asks for none back.
        let failed = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
        if failed != 0 {
            return Err(DemoError::Sys(
                "pthread_sigmask".into(),
                Errno::from_raw_os_error(failed),
            ));
        }
        Ok(Self { set })
    }

    /// [`DemoError::Interrupted`] if one of the signals came:
    /// `sigtimedwait` with a zero timeout.
    fn check(&mut self) -> Result<()> {
        let zero = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `set` and `zero` are initialised and outlive the call; a
        // null `info` asks for no details.
        match unsafe { libc::sigtimedwait(&self.set, std::ptr::null_mut(), &zero) } {
            libc::SIGINT => Err(DemoError::Interrupted("SIGINT")),
            libc::SIGTERM => Err(DemoError::Interrupted("SIGTERM")),
            _ => Ok(()), // EAGAIN: none pending (EINTR: a stop and continue)
        }
    }
}

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

#[derive(Debug)]
enum DemoError {
    /// `SIGINT` or `SIGTERM` came.
    Interrupted(&'static str),
    /// A child exited with a failure.
    Child {
        name: String,
        status: ExitStatus,
    },
    /// A check failed or something unexpected came.
    Check(String),
    /// A system call failed (contextual: what was being done).
    Sys(String, Errno),
    Io(String, std::io::Error),
    /// A library call failed (contextual).
    Lib(&'static str, Box<dyn Error + Send + Sync>),
}

impl fmt::Display for DemoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Interrupted(signal) => write!(f, "interrupted by {signal}"),
            Self::Child { name, status } => write!(f, "{name} failed ({status})"),
            Self::Check(what) => f.write_str(what),
            Self::Sys(what, _) | Self::Io(what, _) => f.write_str(what),
            Self::Lib(what, _) => f.write_str(what),
        }
    }
}

impl Error for DemoError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            Self::Sys(_, errno) => Some(errno),
            Self::Io(_, err) => Some(err),
            Self::Lib(_, err) => Some(&**err),
            _ => None,
        }
    }
}

/// `.context("what")` for the library's and std's errors.
trait Context<T> {
    fn context(self, what: &'static str) -> Result<T>;
}

impl<T, E: Error + Send + Sync + 'static> Context<T> for Result<T, E> {
    fn context(self, what: &'static str) -> Result<T> {
        self.map_err(|err| DemoError::Lib(what, Box::new(err)))
    }
}

// ---------------------------------------------------------------------------
// Figures: latency histogram, progress line, summary
// ---------------------------------------------------------------------------

/// Latencies in nanoseconds, in buckets an eighth of a power of two wide
/// (values within 12.5 %).
#[derive(Debug, Clone, PartialEq)]
struct Histogram {
    counts: Vec<u64>,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            counts: vec![0; 512],
        }
    }
}

impl Histogram {
    fn bucket(ns: u64) -> usize {
        if ns < 8 {
            return ns as usize;
        }
        let exp = 63 - ns.leading_zeros() as usize; // 3 and up
        (exp - 2) * 8 + ((ns >> (exp - 3)) & 7) as usize
    }

    /// The smallest value of `bucket`.
    fn floor(bucket: usize) -> u64 {
        if bucket < 8 {
            return bucket as u64;
        }
        (8 + bucket as u64 % 8) << (bucket / 8 - 1)
    }

    fn record(&mut self, ns: u64) {
        self.counts[Self::bucket(ns)] += 1;
    }

    fn merge(&mut self, other: &Self) {
        for (count, more) in self.counts.iter_mut().zip(&other.counts) {
            *count += more;
        }
    }

    /// The latency below which a fraction `q` of the values lie (the middle of
    /// its bucket); `None` if there are none.
    fn quantile(&self, q: f64) -> Option<u64> {
        let total: u64 = self.counts.iter().sum();
        let rank = ((total as f64 * q).ceil() as u64).max(1);
        let mut below = 0;
        for (bucket, &count) in self.counts.iter().enumerate() {
            below += count;
            if below >= rank && total > 0 {
                let (low, high) = (Self::floor(bucket), Self::floor(bucket + 1));
                return Some(low + (high - low) / 2);
            }
        }
        None
    }

    /// `bucket:count,...` for the buckets that hold any.
    fn encode(&self) -> String {
        let fields: Vec<String> = self
            .counts
            .iter()
            .enumerate()
            .filter(|(_, count)| **count > 0)
            .map(|(bucket, count)| format!("{bucket}:{count}"))
            .collect();
        fields.join(",")
    }

    fn decode(text: &str) -> Option<Self> {
        let mut histogram = Self::default();
        for field in text.split(',').filter(|field| !field.is_empty()) {
            let (bucket, count) = field.split_once(':')?;
            *histogram.counts.get_mut(bucket.parse::<usize>().ok()?)? = count.parse().ok()?;
        }
        Some(histogram)
    }
}

/// The live progress line: rewritten in place on a terminal, a plain line a
/// second otherwise (logs and tests stay readable).
struct Progress {
    what: String,
    start: Instant,
    shown: Instant,
    tty: bool,
}

impl Progress {
    fn new(what: String) -> Self {
        let tty = std::io::stdout().is_terminal();
        if tty {
            print!("{what} ...");
            let _ = std::io::stdout().flush();
        }
        let now = Instant::now();
        Self {
            what,
            start: now,
            shown: now,
            tty,
        }
    }

    fn update(&mut self, status: &str) {
        let every = if self.tty {
            Duration::from_millis(100)
        } else {
            Duration::from_secs(1)
        };
        if self.shown.elapsed() < every {
            return;
        }
        self.shown = Instant::now();
        let line = format!(
            "{}: {:.1} s, {status}",
            self.what,
            self.start.elapsed().as_secs_f64()
        );
        if self.tty {
            print!("\r{line:<78}");
            let _ = std::io::stdout().flush();
        } else {
            println!("{line}");
        }
    }

    fn finish(&self, row: Option<&Row>) {
        let status = match row {
            Some(row) => format!(
                "{} messages, {}/s",
                count(row.messages),
                count(row.rate as u64)
            ),
            None => "stopped".into(),
        };
        let line = format!("{}: {status}", self.what);
        if self.tty {
            println!("\r{line:<78}");
        } else {
            println!("{line}");
        }
    }
}

/// `1234567` as `1,234,567`.
fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// A latency for people: `850 ns`, `12.3 µs`, `4.1 ms`.
fn latency(ns: Option<u64>) -> String {
    match ns {
        None => "-".into(),
        Some(ns) if ns < 1_000 => format!("{ns} ns"),
        Some(ns) if ns < 1_000_000 => format!("{:.1} µs", ns as f64 / 1e3),
        Some(ns) => format!("{:.1} ms", ns as f64 / 1e6),
    }
}

/// The table, what its columns mean, and what it shows.
fn summary(rows: &[Row]) {
    println!();
    println!(
        "{:<12} {:<14} {:>12} {:>10} {:>10} {:>10} {:>14}",
        "workload", "transport", "messages", "lost", "p50", "p99", "throughput"
    );
    for row in rows {
        let lost = match row.workload {
            Workload::Logging => count(row.lost),
            Workload::Market => format!("{} *", count(row.lost)),
        };
        println!(
            "{:<12} {:<14} {:>12} {:>10} {:>10} {:>10} {:>12}/s",
            row.workload.to_string(),
            row.transport.to_string(),
            count(row.messages),
            lost,
            latency(row.latency.quantile(0.5)),
            latency(row.latency.quantile(0.99)),
            count(row.rate as u64),
        );
    }
    println!();
    println!(
        "messages: log lines the daemon received from {CLIENTS} clients (as fast as they can \
         send); ticks the publisher sent to each of {READERS} readers (up to {} a second).",
        count(TICK_RATE)
    );
    println!(
        "lost: log lines sent but never received; every line was checked in order per client."
    );
    println!(
        "* market data: ticks readers missed because the publisher lapped them (the ring keeps the \
         last {} ticks); each reader is told how many, the publisher never waits for one.",
        count(u64::from(CAPACITY) - 1)
    );
    println!(
        "latency: from the sender's clock (CLOCK_MONOTONIC, before sending) to the receiver's \
         (after receiving). throughput: lines received, ticks published, per second."
    );
    let find = |workload, transport| {
        rows.iter()
            .find(|row| row.workload == workload && row.transport == transport)
    };
    println!();
    if let (Some(shm), Some(sock)) = (
        find(Workload::Logging, Transport::SharedMemory),
        find(Workload::Logging, Transport::Socket),
    ) {
        let lost = if shm.lost + sock.lost == 0 {
            "nothing lost on either".to_owned()
        } else {
            format!(
                "{} lines lost over shared memory, {} over the socket",
                shm.lost, sock.lost
            )
        };
        println!(
            "Logging: shared memory carried {:.1}x the socket's lines per second, at {} instead \
             of {} median latency; {lost}.",
            shm.rate / sock.rate.max(1e-9),
            latency(shm.latency.quantile(0.5)),
            latency(sock.latency.quantile(0.5)),
        );
    }
    if let (Some(shm), Some(sock)) = (
        find(Workload::Market, Transport::SharedMemory),
        find(Workload::Market, Transport::Socket),
    ) {
        let missed = if shm.lost == 0 {
            "no reader fell a lap behind".to_owned()
        } else {
            format!(
                "its readers missed {:.1}% of the ticks, each gap reported",
                100.0 * shm.lost as f64 / (shm.messages as f64 * READERS as f64).max(1.0)
            )
        };
        println!(
            "Market data: asked for {} ticks/s, the shared-memory publisher sent {}/s, {:.1}x the \
             socket one, which goes at its slowest reader's pace; {missed}.",
            count(TICK_RATE),
            count(shm.rate as u64),
            shm.rate / sock.rate.max(1e-9),
        );
    }
}
