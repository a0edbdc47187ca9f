//! Multi-process tests of the broadcast ring: a writer process, reader
//! processes (one on a read-only mapping, two that stop themselves with
//! `SIGSTOP` and are lapped), real POSIX shm, real futex wake-ups.
//!
//! Children are this test binary run again (see `tests/multiprocess.rs` for
//! how: `multiprocess/harness.rs` is shared); they print what the parent
//! checks as `IPCP-RESULT` lines.
//!
//! 1. The parent writes 200,300 messages (sequence number, derived words,
//!    checksum) into a named segment; four readers attach before it starts:
//!    one sleeping in `recv_blocking_watching` (futex), one polling on a
//!    `PROT_READ` mapping, and two that stop themselves after 300 messages
//!    and are continued once the writer is done. Every message a reader
//!    receives is checked whole and the one due (the read-only one drains in
//!    batches, `recv_slice`); every gap must be one `Lagged` whose count is
//!    exact (received + missed = published, for each reader). It runs twice:
//!    with 64-byte messages, so the ring's slots are counted (no stamps) and
//!    it keeps `retained() = capacity - 16` whole (the writer announces 16
//!    messages at a time), and with 56-byte ones, in stamped slots, which
//!    keep `capacity - 1`. The stopped readers must report exactly `oldest -
//!    300` missed, resuming at the oldest whole message (`oldest`: the
//!    capacity before the announced messages past `published`, at least one),
//!    and `published - 1 - 300` (resuming at the newest).
//! 2. The writer's throughput with no reader, with a reader stopped by
//!    `SIGSTOP`, and with a reader polling, interleaved: measured and
//!    printed, not asserted (the writer never reads reader state, so a
//!    stopped reader cannot slow it; timing assertions would be flaky).
//! 3. A writer process publishes and is killed while the parent sleeps in
//!    `recv_blocking_watching`: the parent receives every message, then
//!    learns the writer is gone (`PeerGone`, not a timeout).
//!
//! Every test counts this process's open fds and `/dev/shm` names before and
//! after. Runtime: about 5 s in the test profile on a 2-core machine.
#![cfg(all(feature = "linux", target_os = "linux", not(loom), not(miri)))]

#[path = "multiprocess/harness.rs"]
mod harness;
#[path = "multiprocess/message.rs"]
mod message;

use core::time::Duration;
use std::os::unix::process::ExitStatusExt;
use std::sync::Arc;
use std::time::Instant;

use ipc_primitives::broadcast::{BlockingError, Broadcast, Reader, RecvError, Start, Writer};
use ipc_primitives::linux::shm::{CreateOptions, OpenOptions, Segment};
use ipc_primitives::linux::wake::{SpinThenBlock, WaitError};
use rustix::process::{Pid, Signal, kill_process};

use harness::{Accounting, Proc, READY, RESULT, ShmName, env, env_parse};
use ipc_primitives::Pod;
use message::{Msg, Stream, message};

/// What a ring of these tests carries: the 64-byte [`Msg`] itself (counted
/// slots), or [`Short`] (stamped slots).
trait Wire: Pod + Copy + Default + core::fmt::Debug {
    /// The value of `IPCP_WIRE` that names it to a child.
    const NAME: &'static str;
    /// Messages the writer announces at a time: `capacity - retained()`.
    const ANNOUNCED: u64;
    fn wrap(msg: &Msg) -> Self;
    fn unwrap(&self) -> Msg;
}

impl Wire for Msg {
    const NAME: &'static str = "counted";
    const ANNOUNCED: u64 = 16;
    fn wrap(msg: &Msg) -> Self {
        *msg
    }
    fn unwrap(&self) -> Msg {
        *self
    }
}

/// A [`Msg`] in 56 bytes, small enough for stamped slots: every word but
/// word 6, which is derived from the sequence number in word 0 and restored
/// from it (the checksum in the last word still covers it).
type Short = [u64; 7];

impl Wire for Short {
    const NAME: &'static str = "stamped";
    const ANNOUNCED: u64 = 1;
    fn wrap(msg: &Msg) -> Self {
        [msg[0], msg[1], msg[2], msg[3], msg[4], msg[5], msg[7]]
    }
    fn unwrap(&self) -> Msg {
        let mut msg = message(self[1], self[0]);
        msg[..6].copy_from_slice(&self[..6]);
        msg[7] = self[6];
        msg
    }
}

/// The entry point of every child: plays the role `IPCP_CHILD_ROLE` names,
/// or does nothing when the test binary runs normally.
#[test]
fn child() {
    harness::run_child(|role| match role {
        "reader" => match env("IPCP_WIRE").as_str() {
            Msg::NAME => reader::<Msg>(),
            Short::NAME => reader::<Short>(),
            other => panic!("unknown IPCP_WIRE {other:?}"),
        },
        "stopped-reader" => match env("IPCP_WIRE").as_str() {
            Msg::NAME => stopped_reader::<Msg>(),
            Short::NAME => stopped_reader::<Short>(),
            other => panic!("unknown IPCP_WIRE {other:?}"),
        },
        "writer" => writer(),
        other => panic!("unknown child role {other:?}"),
    });
}

/// Slots in the rings of these tests.
const CAPACITY: u32 = 1024;
/// Messages published before the self-stopping readers stop: fewer than the
/// ring keeps whole, so nobody can be lapped before then.
const BEFORE_STOP: u64 = 300;
/// Messages published in all in test 1.
const MESSAGES: u64 = BEFORE_STOP + 200_000;
/// Messages per round of test 2.
const ROUND: u64 = 1_000_000;
/// Messages the writer process of test 3 publishes.
const WRITER_MESSAGES: u64 = 10_000;
/// A bound on every blocking receive, far longer than any pause here.
const NEVER: Duration = Duration::from_secs(30);
/// The id in every message's word 1.
const WRITER_ID: u64 = 5;

/// Runs `body` between the fd and `/dev/shm` snapshots, one test at a time.
fn accounted(body: impl FnOnce()) {
    let accounting = Accounting::begin();
    body();
    accounting.check();
}

/// Prints a line for the parent.
fn report(key: &str, value: impl core::fmt::Display) {
    println!("{RESULT}{key} {value}");
}

/// The value of the `RESULT` line `key` a child printed.
fn result(lines: &[String], key: &str) -> u64 {
    let prefix = format!("{key} ");
    let found: Vec<_> = lines
        .iter()
        .filter_map(|line| line.strip_prefix(&prefix))
        .collect();
    match found[..] {
        [value] => value.parse().unwrap_or_else(|_| panic!("{key} {value:?}")),
        _ => panic!("expected one {key:?} line, got {lines:?}"),
    }
}

/// The writer of a fresh ring in a new named segment, which it keeps alive;
/// the name is unlinked when it drops.
fn named_writer<W: Wire>(name: &str) -> Writer<'static, W, Arc<Segment>> {
    let len = Broadcast::<W>::required_size(CAPACITY).expect("ring size");
    let segment = CreateOptions::new()
        .unlink_on_drop(true)
        .create(name, len)
        .expect("create the named segment");
    Broadcast::<W>::create(segment.into_region().expect("writable"), CAPACITY)
        .expect("create the ring")
        .into_writer()
}

/// Publishes the next `count` messages, waking sleepers, in bursts of 256
/// with a short pause between them (time for readers to keep up, or to fall
/// asleep).
fn publish_paced<W: Wire, K>(writer: &mut Writer<'_, W, K>, count: u64) {
    let mut burst = Vec::with_capacity(256);
    let end = u64::from(writer.published()) + count;
    while u64::from(writer.published()) < end {
        let from = u64::from(writer.published());
        burst.clear();
        burst.extend((from..end.min(from + 256)).map(|seq| W::wrap(&message(WRITER_ID, seq))));
        writer.publish_slice_notify(&burst).expect("futex wake");
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// What a reader got: messages checked in order, gaps counted.
struct Tally {
    /// The position the reader joined at.
    joined: u64,
    /// The messages due, from `joined` on.
    stream: Stream,
    missed: u64,
    gaps: u64,
}

impl Tally {
    fn new<W: Wire, K>(reader: &Reader<'_, W, K>) -> Self {
        let joined = u64::from(reader.position());
        let mut stream = Stream::new(WRITER_ID);
        stream.next = joined;
        Self {
            joined,
            stream,
            missed: 0,
            gaps: 0,
        }
    }

    fn received(&self) -> u64 {
        self.stream.next - self.joined - self.missed
    }

    /// Takes one receive's result; `Empty` and timeouts are the caller's.
    fn take<W: Wire, T>(&mut self, position: u32, got: Result<W, T>) -> Option<T> {
        assert_eq!(u64::from(position), self.stream.next, "position");
        match got {
            Ok(msg) => self.stream.accept(&msg.unwrap()),
            Err(err) => return Some(err),
        }
        None
    }

    fn lagged(&mut self, missed: u64, position: u32) {
        self.missed += missed;
        self.gaps += 1;
        self.stream.next += missed;
        assert_eq!(
            u64::from(position),
            self.stream.next,
            "a lap's count is exact"
        );
    }

    fn report(&self) {
        report("joined", self.joined);
        report("received", self.received());
        report("missed", self.missed);
        report("gaps", self.gaps);
    }
}

/// Where a reader lapped by this file's writers resumes at [`Start::Oldest`]
/// once `published` messages are out. The writer (from position 0)
/// announces [`Wire::ANNOUNCED`] messages at a time, so it has announced
/// those up to the next multiple of it, whose slots it may be rewriting, and
/// at least the next one (a stamped writer's next slot); the `CAPACITY`
/// positions before that are whole: at least `retained`.
fn oldest_whole<W: Wire>(published: u64, retained: usize) -> u64 {
    assert_eq!(u64::from(CAPACITY) - retained as u64, W::ANNOUNCED);
    let announced = (published.next_multiple_of(W::ANNOUNCED) - published).max(1);
    let oldest = published + announced - u64::from(CAPACITY);
    assert!(published - oldest >= retained as u64, "retained() holds");
    oldest
}

/// Receives by polling until `count` have been received or skipped, one
/// message per call (`batch` 1, `try_recv`) or up to `batch` (`recv_slice`).
fn poll_all<W: Wire, K>(
    reader: &mut Reader<'_, W, K>,
    tally: &mut Tally,
    count: u64,
    batch: usize,
) {
    let mut out = vec![W::default(); batch];
    let mut idle = 0_u32;
    while tally.stream.next < count {
        let position = reader.position();
        let got = if batch == 1 {
            reader.try_recv().map(|msg| {
                out[0] = msg;
                1
            })
        } else {
            reader.recv_slice(&mut out)
        };
        match got {
            Ok(received) => {
                idle = 0;
                for (msg, at) in out[..received].iter().zip(position..) {
                    let taken = tally.take(at, Ok::<_, RecvError>(*msg));
                    assert!(taken.is_none());
                }
            }
            Err(RecvError::Lagged { missed }) => tally.lagged(missed, reader.position()),
            Err(RecvError::Empty) => {
                idle += 1;
                if idle < 64 {
                    core::hint::spin_loop();
                } else {
                    std::thread::yield_now();
                }
            }
            Err(RecvError::Corrupted) => panic!("corrupted at {position}"),
        }
    }
}

/// Child: a reader of the named ring `IPCP_SHM` joining at the oldest
/// message, which receives `IPCP_COUNT` messages (or skips them, counted):
/// `IPCP_MODE=blocking` sleeps in `recv_blocking_watching` on a writable
/// mapping, `polling` polls on a read-only one.
fn reader<W: Wire>() {
    let name = env("IPCP_SHM");
    let count: u64 = env_parse("IPCP_COUNT");
    match env("IPCP_MODE").as_str() {
        "blocking" => {
            let segment = Segment::open(&name).expect("open");
            let mut reader = Broadcast::<W>::attach(segment.region().expect("region"))
                .expect("attach")
                .into_reader(Start::Oldest);
            let mut tally = Tally::new(&reader);
            println!("{READY}");
            while tally.stream.next < count {
                let position = reader.position();
                let got =
                    reader.recv_blocking_watching(&segment, SpinThenBlock::default(), Some(NEVER));
                match tally.take(position, got) {
                    None => {}
                    Some(BlockingError::Lagged { missed }) => {
                        tally.lagged(missed, reader.position());
                    }
                    Some(err) => panic!("recv_blocking at {position}: {err}"),
                }
            }
            report("wakes", reader.wakes());
            tally.report();
        }
        "polling" => {
            let segment = OpenOptions::new()
                .read_only(true)
                .open(&name)
                .expect("open read-only");
            assert!(!segment.is_writable());
            let mut reader = Broadcast::<W>::attach_reader(
                segment.read_region().expect("region"),
                Start::Oldest,
            )
            .expect("attach");
            let mut tally = Tally::new(&reader);
            println!("{READY}");
            poll_all(&mut reader, &mut tally, count, 32);
            tally.report();
        }
        other => panic!("unknown mode {other}"),
    }
}

/// Child: a reader on a read-only mapping, joining at the next message, that
/// receives messages up to position `IPCP_STOP_AT`, stops itself
/// (`SIGSTOP`), and once continued receives the rest of `IPCP_COUNT`,
/// resuming after the lap as `IPCP_ON_LAG` says; it checks the lap's count
/// against what the writer published meanwhile.
fn stopped_reader<W: Wire>() {
    let name = env("IPCP_SHM");
    let count: u64 = env_parse("IPCP_COUNT");
    let stop_at: u64 = env_parse("IPCP_STOP_AT");
    let on_lag = match env("IPCP_ON_LAG").as_str() {
        "oldest" => Start::Oldest,
        "newest" => Start::Newest,
        other => panic!("unknown IPCP_ON_LAG {other}"),
    };
    let segment = OpenOptions::new()
        .read_only(true)
        .open(&name)
        .expect("open read-only");
    let mut reader =
        Broadcast::<W>::attach_reader(segment.read_region().expect("region"), Start::Next)
            .expect("attach")
            .on_lag(on_lag);
    let mut tally = Tally::new(&reader);
    println!("{READY}");
    poll_all(&mut reader, &mut tally, stop_at, 1);
    assert_eq!(tally.missed, 0, "lapped before it stopped");
    report("stopping", stop_at);
    let me = Pid::from_raw(std::process::id() as i32).expect("a pid");
    kill_process(me, Signal::STOP).expect("SIGSTOP myself");
    // This thread may run on for a moment before another starts the group
    // stop; it only watches `published` (the parent continues it once the
    // writer has published all `count`).
    while u64::from(reader.published()) < count {
        std::thread::sleep(Duration::from_millis(1));
    }
    poll_all(&mut reader, &mut tally, count, 1);
    let expected = match on_lag {
        Start::Oldest => oldest_whole::<W>(count, reader.retained()) - stop_at,
        _ => count - 1 - stop_at,
    };
    assert_eq!((tally.missed, tally.gaps), (expected, 1), "the lap's count");
    tally.report();
}

/// Child: creates the named ring `IPCP_SHM`, publishes `IPCP_COUNT`
/// messages with pauses, says so, and waits to be killed.
fn writer() {
    let count: u64 = env_parse("IPCP_COUNT");
    // The parent removes the name: this process dies holding it.
    let mut writer = named_writer::<Msg>(&env("IPCP_SHM"));
    println!("{READY}");
    // Starts once the reader sleeps (announces itself on the doorbell), so
    // that it joins before the first message.
    while writer.doorbell().epoch() == 0 {
        writer.notify().expect("futex wake");
        std::thread::sleep(Duration::from_millis(1));
    }
    publish_paced(&mut writer, count);
    report("published", writer.published());
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Waits until every thread of the child is stopped (state `T` in
/// `/proc/<pid>/task/<tid>/stat`).
fn wait_stopped(proc: &mut Proc) {
    let stopped = |pid: i32| {
        let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("list threads");
        tasks.into_iter().all(|task| {
            let stat = std::fs::read_to_string(task.expect("a thread").path().join("stat"));
            let stat = stat.unwrap_or_default();
            let state = stat
                .rsplit_once(") ")
                .and_then(|(_, rest)| rest.chars().next());
            state == Some('T')
        })
    };
    while !stopped(proc.pid()) {
        proc.check_alive("the reader to stop itself");
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn signal(proc: &Proc, signal: Signal) {
    let pid = Pid::from_raw(proc.pid()).expect("a pid");
    kill_process(pid, signal).expect("kill");
}

// ---------------------------------------------------------------------------
// 1. Every reader gets every message, or an exact count of what it missed
// ---------------------------------------------------------------------------

#[test]
fn readers_of_counted_slots_get_every_message_or_an_exact_count_of_the_missed() {
    every_message_or_an_exact_count::<Msg>();
}

#[test]
fn readers_of_stamped_slots_get_every_message_or_an_exact_count_of_the_missed() {
    every_message_or_an_exact_count::<Short>();
}

fn every_message_or_an_exact_count<W: Wire>() {
    accounted(|| {
        let name = ShmName::new("bcast");
        let mut writer = named_writer::<W>(&name.0);
        let vars = |mode: &str| {
            vec![
                ("IPCP_SHM", name.0.clone()),
                ("IPCP_WIRE", W::NAME.to_owned()),
                ("IPCP_COUNT", MESSAGES.to_string()),
                ("IPCP_MODE", mode.to_owned()),
            ]
        };
        let stopping = |on_lag: &str| {
            vec![
                ("IPCP_SHM", name.0.clone()),
                ("IPCP_WIRE", W::NAME.to_owned()),
                ("IPCP_COUNT", MESSAGES.to_string()),
                ("IPCP_STOP_AT", BEFORE_STOP.to_string()),
                ("IPCP_ON_LAG", on_lag.to_owned()),
            ]
        };
        let timeout = Duration::from_secs(120);
        let mut blocking = Proc::spawn("reader", &vars("blocking"), timeout);
        let mut polling = Proc::spawn("reader", &vars("polling"), timeout);
        let mut oldest = Proc::spawn("stopped-reader", &stopping("oldest"), timeout);
        let mut newest = Proc::spawn("stopped-reader", &stopping("newest"), timeout);
        for proc in [&mut blocking, &mut polling, &mut oldest, &mut newest] {
            proc.expect_line(READY);
        }
        let start = Instant::now();
        publish_paced(&mut writer, BEFORE_STOP);
        for proc in [&mut oldest, &mut newest] {
            proc.expect_line(&format!("{RESULT}stopping"));
            wait_stopped(proc);
        }
        publish_paced(&mut writer, MESSAGES - BEFORE_STOP);
        let elapsed = start.elapsed();
        for proc in [&oldest, &newest] {
            signal(proc, Signal::CONT);
        }
        for (proc, what, missed) in [
            (
                &mut oldest,
                "stopped, resuming at the oldest",
                Some(oldest_whole::<W>(MESSAGES, writer.retained()) - BEFORE_STOP),
            ),
            (
                &mut newest,
                "stopped, resuming at the newest",
                Some(MESSAGES - 1 - BEFORE_STOP),
            ),
            (&mut blocking, "blocking, writable mapping", None),
            (&mut polling, "polling, read-only mapping", None),
        ] {
            let lines = proc.wait_success();
            let (received, lost) = (result(&lines, "received"), result(&lines, "missed"));
            assert_eq!(
                result(&lines, "joined"),
                0,
                "{what}: joined before the first message"
            );
            assert_eq!(
                received + lost,
                MESSAGES,
                "{what}: every message received or counted"
            );
            if let Some(missed) = missed {
                assert_eq!(lost, missed, "{what}");
            }
            eprintln!(
                "{what}: {received} received, {lost} missed in {} gaps",
                result(&lines, "gaps")
            );
        }
        eprintln!(
            "{MESSAGES} messages, {} slots, published in {elapsed:.2?}, {} wake-ups",
            W::NAME,
            writer.doorbell().epoch()
        );
    });
}

// ---------------------------------------------------------------------------
// 2. The writer's throughput: no reader, a stopped one, a polling one
// ---------------------------------------------------------------------------

/// Publishes `ROUND` messages as fast as it can; returns messages per second.
fn round<K>(writer: &mut Writer<'_, Msg, K>) -> f64 {
    let from = u64::from(writer.published());
    let start = Instant::now();
    for seq in from..from + ROUND {
        writer
            .publish_notify(&message(WRITER_ID, seq))
            .expect("futex wake");
    }
    ROUND as f64 / start.elapsed().as_secs_f64()
}

fn median(mut rates: Vec<f64>) -> f64 {
    rates.sort_by(f64::total_cmp);
    rates[rates.len() / 2]
}

#[test]
fn a_stopped_reader_does_not_slow_the_writer() {
    accounted(|| {
        let name = ShmName::new("bcast-tput");
        let mut writer = named_writer::<Msg>(&name.0);
        let (mut none, mut stopped, mut polling) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..3 {
            none.push(round(&mut writer));

            let at = u64::from(writer.published()) + 10;
            let mut reader = Proc::spawn(
                "stopped-reader",
                &[
                    ("IPCP_SHM", name.0.clone()),
                    ("IPCP_WIRE", Msg::NAME.to_owned()),
                    ("IPCP_COUNT", (at + ROUND).to_string()),
                    ("IPCP_STOP_AT", at.to_string()),
                    ("IPCP_ON_LAG", "oldest".to_owned()),
                ],
                Duration::from_secs(60),
            );
            reader.expect_line(READY);
            // Its first messages, then it stops itself.
            for seq in u64::from(writer.published())..at {
                writer.publish(&message(WRITER_ID, seq));
            }
            reader.expect_line(&format!("{RESULT}stopping"));
            wait_stopped(&mut reader);
            stopped.push(round(&mut writer));
            // Continued, it counts exactly what it missed.
            signal(&reader, Signal::CONT);
            let lines = reader.wait_success();
            let published = u64::from(writer.published());
            assert_eq!(
                result(&lines, "missed"),
                oldest_whole::<Msg>(published, writer.retained()) - at
            );

            let mut reader = Proc::spawn(
                "reader",
                &[
                    ("IPCP_SHM", name.0.clone()),
                    ("IPCP_WIRE", Msg::NAME.to_owned()),
                    (
                        "IPCP_COUNT",
                        (u64::from(writer.published()) + ROUND).to_string(),
                    ),
                    ("IPCP_MODE", "polling".to_owned()),
                ],
                Duration::from_secs(60),
            );
            reader.expect_line(READY);
            polling.push(round(&mut writer));
            let lines = reader.wait_success();
            let seen =
                result(&lines, "joined") + result(&lines, "received") + result(&lines, "missed");
            assert_eq!(
                seen,
                u64::from(writer.published()),
                "every message received or counted"
            );
        }
        let (none, stopped, polling) = (median(none), median(stopped), median(polling));
        eprintln!(
            "writer throughput, 64-byte messages, publish_notify, median of 3 rounds of {ROUND}: \
             no reader {:.1} M/s; a stopped reader {:.1} M/s ({:.3}x); a polling reader \
             {:.1} M/s ({:.3}x)",
            none / 1e6,
            stopped / 1e6,
            stopped / none,
            polling / 1e6,
            polling / none,
        );
    });
}

// ---------------------------------------------------------------------------
// 3. A reader learns the writer is gone
// ---------------------------------------------------------------------------

#[test]
fn a_sleeping_reader_learns_the_writer_is_gone() {
    accounted(|| {
        let name = ShmName::new("bcast-gone");
        let mut child = Proc::spawn(
            "writer",
            &[
                ("IPCP_SHM", name.0.clone()),
                ("IPCP_COUNT", WRITER_MESSAGES.to_string()),
            ],
            Duration::from_secs(60),
        );
        child.expect_line(READY);
        let segment = Segment::open(&name.0).expect("open the writer's segment");
        // The writer publishes once this reader first sleeps.
        let mut reader = Broadcast::<Msg>::attach(segment.region().expect("region"))
            .expect("attach")
            .into_reader(Start::Oldest);
        let mut tally = Tally::new(&reader);
        assert_eq!(tally.joined, 0, "the writer waits for this reader");
        let mut killer = None;
        loop {
            let position = reader.position();
            let got =
                reader.recv_blocking_watching(&segment, SpinThenBlock::default(), Some(NEVER));
            match tally.take(position, got) {
                None => {}
                Some(BlockingError::Lagged { missed }) => tally.lagged(missed, reader.position()),
                Some(BlockingError::Sleep(WaitError::PeerGone)) => break,
                Some(err) => panic!("at {position}: {err}"),
            }
            if killer.is_none() && tally.stream.next == WRITER_MESSAGES {
                // Everything is here: kill the writer while this reader sleeps.
                let pid = Pid::from_raw(child.pid()).expect("a pid");
                killer = Some(std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(200));
                    kill_process(pid, Signal::KILL).expect("kill the writer");
                }));
            }
        }
        killer.expect("all messages arrived").join().unwrap();
        assert_eq!(tally.stream.next, WRITER_MESSAGES);
        assert!(child.wait().0.signal() == Some(9), "killed");
        eprintln!(
            "writer gone: {} received, {} missed, then PeerGone",
            tally.received(),
            tally.missed
        );
    });
}
