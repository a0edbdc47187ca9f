//! `examples/demo.rs` end to end, as a user runs it: the real program and
//! its child processes. A short run (`--seconds 1`) exits 0 and prints the
//! summary table with both workloads over both transports and nothing lost
//! by the logging workload over shared memory; a run stopped by `SIGINT`
//! exits 0 too, says so, and prints what it measured so far. After each, no
//! process of the example is left (its children were reaped) and nothing
//! new is left in `/dev/shm`.
//!
//! Run: `cargo test --test demo_example`. The test builds the example itself
//! first (`$CARGO build --example demo`, with this test's target dir,
//! profile and features; a no-op when it is up to date). No assertion is
//! about speed.
#![cfg(all(feature = "linux", target_os = "linux", not(loom), not(miri)))]

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process};

mod example_bin;

use example_bin::{PATIENCE, shm_entries};

/// One demo at a time: each test checks that no process of the example is
/// left, which another test's running demo would break.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// The example binary, built once per test process.
fn example() -> &'static Path {
    static EXAMPLE: OnceLock<PathBuf> = OnceLock::new();
    EXAMPLE.get_or_init(|| example_bin::build(&["demo"]).join("demo"))
}

/// The demo running with `args`, stdout piped (so not a terminal: plain
/// progress lines). Killed and reaped if the test fails.
struct Demo {
    child: Child,
}

impl Demo {
    fn spawn(args: &[&str]) -> Self {
        let child = Command::new(example())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the demo");
        Self { child }
    }

    /// Reads its output until it exits; its status and output.
    fn finish(&mut self) -> (ExitStatus, String) {
        let mut out = self.child.stdout.take().expect("piped");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut text = String::new();
            let read = out.read_to_string(&mut text).map(|_| text);
            let _ = tx.send(read);
        });
        let deadline = Instant::now() + PATIENCE;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                break status;
            }
            assert!(Instant::now() < deadline, "the demo ran for {PATIENCE:?}");
            std::thread::sleep(Duration::from_millis(20));
        };
        // The output ends when every process holding it has gone: a child
        // left running keeps it open.
        let text = rx
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|_| panic!("the demo exited, but its output is still open"))
            .expect("read the demo's output");
        print!("{text}");
        (status, text)
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The pids of processes running the example (the demo or its children),
/// zombies included.
fn example_processes() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .expect("/proc")
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .filter(|pid: &u32| {
            std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|exe| exe == example())
        })
        .collect()
}

/// Asserts that no process of the example is left and that every entry new
/// in `/dev/shm` since `before` goes (others' tests may hold one for a
/// moment; one the demo left would stay).
fn assert_nothing_left(before: &BTreeSet<String>) {
    let left = example_processes();
    for &pid in &left {
        // Ours (they run this target dir's example): gone before failing.
        let _ = kill_process(Pid::from_raw(pid as i32).expect("a pid"), Signal::KILL);
    }
    assert_eq!(left, Vec::<u32>::new(), "processes left");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let new: Vec<String> = shm_entries()
            .into_iter()
            .collect::<BTreeSet<_>>()
            .difference(before)
            .cloned()
            .collect();
        if new.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "left in /dev/shm: {new:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The summary row for `workload` over `transport`, split in words.
fn row<'a>(output: &'a str, workload: &str, transport: &str) -> Vec<&'a str> {
    let prefix = format!("{workload:<12} {transport:<14} ");
    let line = output
        .lines()
        .find(|line| line.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no summary row for {workload} over {transport}"));
    line[prefix.len()..].split_whitespace().collect()
}

#[test]
fn a_short_run_compares_both_transports_and_loses_nothing() {
    let _one = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(|poison| poison.into_inner());
    let before = shm_entries().into_iter().collect::<BTreeSet<_>>();
    let (status, output) = Demo::spawn(&["--seconds", "1"]).finish();
    assert!(status.success(), "{status}");
    assert!(
        output.contains("workload     transport"),
        "the table's header"
    );
    for workload in ["logging", "market data"] {
        for transport in ["shared memory", "Unix socket"] {
            let row = row(&output, workload, transport);
            let messages: u64 = row[0].replace(',', "").parse().expect("messages");
            assert!(messages > 0, "{workload} over {transport}: no messages");
        }
    }
    // Columns: messages, lost, p50, p99, throughput.
    assert_eq!(row(&output, "logging", "shared memory")[1], "0", "lost");
    assert_eq!(row(&output, "logging", "Unix socket")[1], "0", "lost");
    assert!(output.contains("Logging: shared memory carried"));
    assert!(output.contains("Market data: asked for"));
    assert_nothing_left(&before);
}

#[test]
fn sigint_stops_the_children_and_leaves_nothing_behind() {
    let _one = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(|poison| poison.into_inner());
    let before = shm_entries().into_iter().collect::<BTreeSet<_>>();
    let mut demo = Demo::spawn(&["--seconds", "60"]);
    // Long enough for the children of the first run to be at work.
    let started = Instant::now();
    while example_processes().len() < 5 {
        assert!(started.elapsed() < PATIENCE, "the demo started no clients");
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(300));
    let pid = Pid::from_raw(demo.child.id() as i32).expect("a pid");
    kill_process(pid, Signal::INT).expect("kill(SIGINT)");
    let (status, output) = demo.finish();
    assert!(status.success(), "{status}");
    assert!(
        output.contains("SIGINT: stopped early"),
        "says why it stopped"
    );
    assert_nothing_left(&before);
}
