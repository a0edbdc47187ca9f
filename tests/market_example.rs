//! `examples/market.rs` end to end, as a user runs it: real processes, their
//! output lines and exit codes. The no-argument mode runs and every reader
//! accounts for every tick; a late reader joins; readers exit with the
//! publisher-gone code when the publisher is `SIGKILL`ed; a stopped reader
//! does not stop the publisher and then reports what it missed; readers wait
//! out a stopped publisher; `SIGTERM`
//! and `SIGINT` make the publisher remove its segment; a reader refuses a
//! segment that holds no feed. After each test nothing is left in
//! `/dev/shm` and no process runs.
//!
//! Run: `cargo test --test market_example`. The test builds the example
//! itself (`$CARGO build --example market`, with this test's target dir,
//! profile and features; a no-op when it is up to date).
#![cfg(all(feature = "linux", target_os = "linux", not(loom), not(miri)))]

mod example_bin;

use std::collections::HashMap;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use example_bin::{Proc, shm_path};
use ipc_primitives::Kind;
use ipc_primitives::broadcast::Broadcast;
use ipc_primitives::linux::shm::CreateOptions;
use ipc_primitives::parts::Plan;
use ipc_primitives::seqlock::SeqLock;
use rustix::process::Signal;

/// The example's tick ring holds this many slots.
const CAPACITY: u64 = 4096;

const EXIT_BAD_SEGMENT: i32 = 3;
const EXIT_PUBLISHER_GONE: i32 = 4;
const EXIT_NAME_IN_USE: i32 = 5;

// ---------------------------------------------------------------------------
// The example binary
// ---------------------------------------------------------------------------

/// The example binary, built once per test process.
fn example() -> &'static Path {
    static EXAMPLE: OnceLock<PathBuf> = OnceLock::new();
    EXAMPLE.get_or_init(|| example_bin::build(&["market"]).join("market"))
}

// ---------------------------------------------------------------------------
// Processes and names
// ---------------------------------------------------------------------------

/// A segment name unique to this test process and `test`. Dropping it
/// asserts nothing is left there (removing what a killed publisher left,
/// which a test names with [`remove`](Self::remove) first).
struct ShmName(String);

impl ShmName {
    fn new(test: &str) -> Self {
        Self(format!("/ipcp-market-test-{}-{test}", std::process::id()))
    }

    fn exists(&self) -> bool {
        shm_path(&self.0).exists()
    }

    /// Removes what a `SIGKILL`ed publisher left.
    fn remove(&self) {
        ipc_primitives::linux::shm::unlink(&self.0).expect("unlink the dead publisher's segment");
    }
}

impl Drop for ShmName {
    fn drop(&mut self) {
        if self.exists() {
            let _ = ipc_primitives::linux::shm::unlink(&self.0);
            if !std::thread::panicking() {
                panic!("{} was left in /dev/shm", self.0);
            }
        }
    }
}

/// Whether process `pid` is the example binary, running or a zombie.
fn example_runs_as(pid: u32) -> bool {
    std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|exe| exe == example())
}

/// A reader's `result` line, as `key=value` pairs.
struct Outcome(HashMap<String, String>);

impl Outcome {
    /// The one `result` line in `output`.
    fn of(output: &str) -> Self {
        let mut lines = output.lines().filter(|line| line.contains(": result "));
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("no result:\n{output}"));
        assert!(lines.next().is_none(), "two results:\n{output}");
        Self(
            line.split_whitespace()
                .filter_map(|word| word.split_once('='))
                .map(|(key, value)| (key.to_owned(), value.to_owned()))
                .collect(),
        )
    }

    fn get(&self, key: &str) -> u64 {
        self.0
            .get(key)
            .and_then(|value| value.parse().ok())
            .unwrap_or_else(|| panic!("no number {key} in {:?}", self.0))
    }

    /// The invariants every reader's result meets: every tick published
    /// after it joined was seen or reported missed; the latency
    /// percentiles are printed and ordered; no quote torn or stale, no tick
    /// out of order; `closed` as expected, and then the reader reached the
    /// publisher's last tick.
    fn check(&self, closed: bool) {
        let (seen, missed) = (self.get("seen"), self.get("missed"));
        let (joined, end) = (self.get("joined"), self.get("end"));
        assert!(seen > 0, "{:?}", self.0);
        assert_eq!(seen + missed, end - joined, "{:?}", self.0);
        let [p50, p99, p999, max] = ["p50_ns", "p99_ns", "p999_ns", "max_ns"].map(|k| self.get(k));
        assert!(
            0 < p50 && p50 <= p99 && p99 <= p999 && p999 <= max,
            "{:?}",
            self.0
        );
        for key in ["torn", "stale", "out_of_order"] {
            assert_eq!(self.get(key), 0, "{key}: {:?}", self.0);
        }
        assert_eq!(self.0["closed"], closed.to_string(), "{:?}", self.0);
        if closed {
            assert_eq!(end, self.get("published"), "{:?}", self.0);
        }
    }
}

/// The bytes of the example's segment: its plan (a ring of 40-byte ticks,
/// a 16-byte status, 16 quotes of 32 bytes).
fn feed_size() -> usize {
    let mut plan = Plan::<18>::new();
    let ring = Broadcast::<[u64; 5]>::required_size(CAPACITY as u32).unwrap();
    plan.add(Kind::Broadcast, ring).unwrap();
    plan.add(Kind::SeqLock, SeqLock::<[u64; 2]>::required_size().unwrap())
        .unwrap();
    for _ in 0..16 {
        plan.add(Kind::SeqLock, SeqLock::<[u64; 4]>::required_size().unwrap())
            .unwrap();
    }
    plan.size().unwrap()
}

/// A publisher on `name` that runs until signalled, once it publishes.
fn publisher(name: &ShmName) -> Proc {
    let mut publisher = Proc::run(example(), &["publish", "--name", &name.0]);
    publisher.expect(&["created", &name.0]);
    publisher
}

/// A reader on `name` with `options`, once it has joined.
/// The count in the publisher's next progress line.
fn next_progress(publisher: &mut Proc) -> u64 {
    let line = publisher.expect(&["ticks published"]);
    let count = line.split_whitespace().rev().nth(2);
    count
        .and_then(|count| count.parse().ok())
        .unwrap_or_else(|| panic!("no count in {line:?}"))
}

fn reader(name: &ShmName, options: &[&str]) -> Proc {
    let mut args = vec!["read", "--name", &name.0];
    args.extend(options);
    let mut reader = Proc::run(example(), &args);
    reader.expect(&["joined", &name.0]);
    reader
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[test]
fn the_default_mode_runs_three_readers_and_prints_a_summary() {
    let mut market = Proc::run(example(), &[]);
    let output = market.exits_with(0);
    let results: Vec<&str> = output
        .lines()
        .filter(|line| line.contains(": result "))
        .collect();
    assert_eq!(results.len(), 3, "{output}");
    for line in results {
        Outcome::of(line).check(true);
    }
    for header in [
        "joined at",
        "seen",
        "missed",
        "p50 us",
        "p99 us",
        "p99.9 us",
    ] {
        assert!(output.contains(header), "{header}:\n{output}");
    }
    assert!(output.contains("late, oldest, sleeps"), "{output}");
    let name = format!("/ipcp-market-{}", market.pid());
    assert!(!shm_path(&name).exists(), "{name} is left behind");
    // Every child it started (they sign their lines with their pid) is gone.
    let children: Vec<u32> = output
        .lines()
        .filter_map(|line| {
            let (role, rest) = line.strip_prefix("out: ")?.split_once(' ')?;
            matches!(role, "publisher" | "reader").then_some(())?;
            rest.split_once(':')?.0.parse().ok()
        })
        .collect();
    assert!(children.len() >= 4, "{output}");
    for pid in children {
        assert!(!example_runs_as(pid), "child {pid} is left running");
    }
}

#[test]
fn late_readers_join_at_the_newest_or_the_oldest_tick() {
    let name = ShmName::new("late");
    let mut publisher = publisher(&name);
    // Started once a ring's worth of ticks is gone by.
    next_progress(&mut publisher);
    let joined = |reader: &Proc| -> (u64, u64) {
        let line = reader
            .lines()
            .iter()
            .find(|line| line.contains("joined"))
            .unwrap();
        let number = |after: &str| -> u64 {
            let rest = &line[line.find(after).expect(after) + after.len()..];
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().unwrap()
        };
        (number("at tick "), number("; "))
    };
    let mut newest = reader(&name, &[]);
    let mut oldest = reader(&name, &["--oldest"]);
    let (at, published) = joined(&oldest);
    // The oldest still whole: a ring (less the slot being rewritten) back,
    // or more if the publisher went on before the reader printed.
    assert!(published - at >= CAPACITY - 1, "{:?}", oldest.lines());
    let (at, published) = joined(&newest);
    assert!(at > 0 && at < published, "{:?}", newest.lines());
    newest.expect(&["seen"]);
    oldest.expect(&["seen"]);

    publisher.signal(Signal::TERM);
    publisher.exits_with(0);
    Outcome::of(&newest.exits_with(0)).check(true);
    Outcome::of(&oldest.exits_with(0)).check(true);
    assert!(!name.exists(), "the publisher left its segment");
}

#[test]
fn readers_exit_with_the_publisher_gone_code_when_it_is_killed() {
    let name = ShmName::new("killed");
    let mut publisher = publisher(&name);
    let mut sleeping = reader(&name, &[]);
    let mut polling = reader(&name, &["--read-only"]);
    sleeping.expect(&["seen"]);
    polling.expect(&["seen"]);

    publisher.signal(Signal::KILL);
    assert_eq!(publisher.finish().signal(), Some(libc::SIGKILL));
    for reader in [&mut sleeping, &mut polling] {
        let output = reader.exits_with(EXIT_PUBLISHER_GONE);
        assert!(output.contains("error: the publisher died"), "{output}");
        Outcome::of(&output).check(false);
    }
    assert!(
        name.exists(),
        "a killed publisher cannot remove its segment"
    );
    name.remove();
}

#[test]
fn a_stopped_reader_does_not_slow_the_publisher_and_then_reports_what_it_missed() {
    let name = ShmName::new("stopped");
    let mut publisher = publisher(&name);
    let mut sleeping = reader(&name, &[]);
    let mut polling = reader(&name, &["--read-only"]);
    sleeping.expect(&["seen"]);
    polling.expect(&["seen"]);

    sleeping.signal(Signal::STOP);
    polling.signal(Signal::STOP);
    // Progress lines printed after the stop: the count keeps rising, by more
    // than a ring, so both readers are lapped.
    let first = next_progress(&mut publisher);
    let mut last = first;
    while last < first + 2 * CAPACITY {
        let next = next_progress(&mut publisher);
        assert!(next > last, "the publisher stalled at {last} ticks");
        last = next;
    }
    sleeping.signal(Signal::CONT);
    polling.signal(Signal::CONT);
    sleeping.expect(&["seen"]);
    polling.expect(&["seen"]);

    publisher.signal(Signal::TERM);
    publisher.exits_with(0);
    for reader in [&mut sleeping, &mut polling] {
        let result = Outcome::of(&reader.exits_with(0));
        result.check(true);
        assert!(result.get("missed") > 0, "{:?}", result.0);
    }
    assert!(!name.exists(), "the publisher left its segment");
}

#[test]
fn readers_wait_out_a_stopped_publisher() {
    let name = ShmName::new("quiet");
    let mut publisher = publisher(&name);
    let mut sleeping = reader(&name, &[]);
    let mut polling = reader(&name, &["--read-only"]);

    publisher.signal(Signal::STOP);
    sleeping.expect(&["publisher alive but silent; waiting"]);
    polling.expect(&["publisher alive but silent; waiting"]);
    publisher.signal(Signal::CONT);
    next_progress(&mut publisher);
    publisher.signal(Signal::TERM);
    publisher.exits_with(0);
    for reader in [&mut sleeping, &mut polling] {
        Outcome::of(&reader.exits_with(0)).check(true);
    }
    assert!(!name.exists(), "the publisher left its segment");
}

#[test]
fn sigterm_and_sigint_make_the_publisher_remove_its_segment() {
    for (signal, called) in [(Signal::TERM, "SIGTERM"), (Signal::INT, "SIGINT")] {
        let name = ShmName::new(called);
        let mut publisher = publisher(&name);
        assert!(name.exists());
        // A second publisher is refused while the first lives.
        let mut second = Proc::run(example(), &["publish", "--name", &name.0]);
        let output = second.exits_with(EXIT_NAME_IN_USE);
        assert!(output.contains("is alive; not taking it over"), "{output}");

        publisher.signal(signal);
        let output = publisher.exits_with(0);
        assert!(output.contains(&format!("{called}: published")), "{output}");
        assert!(!name.exists(), "{called}: the publisher left its segment");
    }
}

#[test]
fn a_reader_refuses_a_segment_that_holds_no_feed() {
    // Another size: refused before mapping.
    let name = ShmName::new("other");
    let _segment = CreateOptions::new()
        .unlink_on_drop(true)
        .create(&name.0, 4096)
        .unwrap();
    let mut reader = Proc::run(example(), &["read", "--name", &name.0]);
    let output = reader.exits_with(EXIT_BAD_SEGMENT);
    assert!(output.contains("cannot open the feed"), "{output}");
    assert!(output.contains(&name.0), "{output}");

    // The right size, but garbage where the directory should be.
    let name = ShmName::new("garbage");
    let segment = CreateOptions::new()
        .unlink_on_drop(true)
        .create(&name.0, feed_size())
        .unwrap();
    rustix::io::pwrite(&segment, &vec![0xde; feed_size()], 0).unwrap();
    let mut reader = Proc::run(example(), &["read", "--name", &name.0, "--read-only"]);
    let output = reader.exits_with(EXIT_BAD_SEGMENT);
    assert!(output.contains("holds no market feed"), "{output}");
    assert!(output.contains("magic"), "{output}");

    // Nothing at the name, for as long as the reader waits.
    let missing = ShmName::new("missing");
    let mut reader = Proc::run(example(), &["read", "--name", &missing.0]);
    let output = reader.exits_with(EXIT_BAD_SEGMENT);
    assert!(output.contains("cannot open the feed"), "{output}");
}

#[test]
fn bad_arguments_print_the_usage() {
    for args in [
        &["read"][..],
        &["publish", "--name"],
        &["publish", "--name", "/a", "--rate", "fast"],
        &["publish", "--name", "/a", "--seconds", "0"],
        &["subscribe"],
        &["read", "--name", "/a", "--late"],
        &["publish", "--name", "/a", "--oldest"],
    ] {
        let output = Proc::run(example(), args).exits_with(2);
        assert!(output.contains("usage: market"), "{args:?}: {output}");
    }
}
