//! `examples/logd.rs` end to end, as a user runs it: a daemon process and
//! client processes over real sockets, memfds and eventfds. Several clients'
//! records of every length from 1 byte to the largest arrive complete and in
//! per-client order; a record over the largest is refused at its client and
//! loses nothing sent before; a client `SIGKILL`ed in the middle of a record
//! and a client that scribbles on its ring are named by pid while everyone
//! else's records arrive; a flooding client and one that connects and sends
//! garbage do not stop the daemon; `SIGTERM` writes what was published,
//! removes the socket and exits 0. After each test: no socket file, nothing
//! new in `/dev/shm`, no process left.
//!
//! Run: `cargo test --test logd_example`. The test builds the example itself
//! (`$CARGO build --example logd`, with this test's target dir, profile and
//! features; a no-op when it is up to date).
#![cfg(all(feature = "linux", target_os = "linux", not(loom), not(miri)))]

mod example_bin;

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use example_bin::{Proc, shm_entries};
use ipc_primitives::linux::uds::{SeqpacketStream, UnixAddr};
use rustix::process::Signal;

/// The example's longest text: its ring's largest record (1024 words) less
/// its 16-byte header.
const MAX_TEXT: usize = 4072;

// ---------------------------------------------------------------------------
// The example binary
// ---------------------------------------------------------------------------

/// The example binary, built once per test process.
fn example() -> &'static Path {
    static EXAMPLE: OnceLock<PathBuf> = OnceLock::new();
    EXAMPLE.get_or_init(|| example_bin::build(&["logd"]).join("logd"))
}

// ---------------------------------------------------------------------------
// Processes, sockets, output
// ---------------------------------------------------------------------------

/// A test's directory: the daemon's socket and output file. Checks on
/// [`Place::done`] that the socket is gone and `/dev/shm` holds nothing new.
struct Place {
    dir: PathBuf,
    shm_before: Vec<String>,
}

impl Place {
    fn new() -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("logd-test-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create the test's directory");
        Self {
            dir,
            shm_before: shm_entries(),
        }
    }

    fn socket(&self) -> PathBuf {
        self.dir.join("logd.sock")
    }

    fn out(&self) -> PathBuf {
        self.dir.join("logd.out")
    }

    /// The daemon, writing to [`out`](Self::out); returns once it listens.
    fn daemon(&self) -> Proc {
        let socket = self.socket();
        let out = self.out();
        let mut daemon = Proc::run(
            example(),
            &[
                "--socket",
                socket.to_str().expect("a UTF-8 path"),
                "--out",
                out.to_str().expect("a UTF-8 path"),
            ],
        );
        daemon.expect_unordered(&["listening on"]);
        daemon
    }

    /// Each client's texts, in the order the daemon wrote them, by pid.
    fn records(&self) -> BTreeMap<u32, Vec<String>> {
        let out = std::fs::read_to_string(self.out()).expect("read the daemon's output");
        let mut by_pid: BTreeMap<u32, Vec<String>> = BTreeMap::new();
        for line in out.lines() {
            // `<time> pid <pid> uid <uid> <LEVEL> <text>`
            let fields: Vec<&str> = line.splitn(7, ' ').collect();
            assert!(
                fields.len() == 7 && fields[1] == "pid",
                "a log line: {line:?}"
            );
            let pid = fields[2].parse().expect("a pid");
            by_pid.entry(pid).or_default().push(fields[6].to_owned());
        }
        by_pid
    }

    /// No socket file, nothing new in `/dev/shm`; removes the directory.
    fn done(self) {
        assert!(!self.socket().exists(), "the daemon removed its socket");
        let now = shm_entries();
        let new: Vec<_> = now
            .iter()
            .filter(|e| !self.shm_before.contains(e))
            .collect();
        assert!(new.is_empty(), "new entries in /dev/shm: {new:?}");
        std::fs::remove_dir_all(&self.dir).expect("remove the test's directory");
    }
}

/// A client of the daemon at `socket`, with `args` after `--socket`.
fn client(socket: &Path, args: &[&str]) -> Proc {
    let socket = socket.to_str().expect("a UTF-8 path");
    let mut all = vec!["client", "--socket", socket];
    all.extend_from_slice(args);
    let mut client = Proc::run(example(), &all);
    if !args.is_empty() {
        // Generated load: nothing to read on stdin.
        client.stdin = None;
    }
    client
}

/// The example's generated record `n` (its `generated`): `"<n> "` then
/// letters, cut to `len` bytes.
fn generated(n: u64, len: usize) -> String {
    let mut text = format!("{n} ").into_bytes();
    text.extend((0..len).map(|i| b'a' + ((n as usize + i) % 26) as u8));
    text.truncate(len);
    String::from_utf8(text).expect("ASCII")
}

/// The example's `generated_len`.
fn generated_len(n: u64, max: usize) -> usize {
    if n % 50 == 49 {
        max
    } else {
        1 + (n as usize).wrapping_mul(7919) % max
    }
}

/// The texts of `--lines lines --len len`, up to the first too long.
fn expected(lines: u64, len: usize) -> Vec<String> {
    (0..lines)
        .map(|n| generated(n, generated_len(n, len)))
        .take_while(|text| text.len() <= MAX_TEXT)
        .collect()
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

/// Three clients, 300 records each of 1 to 4072 bytes: every record
/// arrives, complete and in its client's order.
#[test]
fn several_clients_records_of_every_length_arrive_in_order() {
    let place = Place::new();
    let mut daemon = place.daemon();
    let mut clients: Vec<Proc> = (0..3)
        .map(|_| client(&place.socket(), &["--lines", "300", "--len", "4072"]))
        .collect();
    for client in &mut clients {
        client.exits_with(0);
    }
    for client in &clients {
        daemon.expect_unordered(&[
            &format!("client pid {} uid", client.pid()),
            "hung up; 300 records",
        ]);
    }
    daemon.signal(Signal::TERM);
    daemon.exits_with(0);
    let records = place.records();
    let want = expected(300, 4072);
    assert!(want.iter().any(|text| text.len() == 1) && want.iter().any(|t| t.len() == MAX_TEXT));
    for client in &clients {
        assert!(
            records[&client.pid()] == want,
            "client {}'s records",
            client.pid()
        );
    }
    assert_eq!(records.len(), 3);
    place.done();
}

/// A record one byte over the largest is refused at the client with a
/// clear error and exit code 2; every record before it arrives.
#[test]
fn a_record_over_the_maximum_is_refused_at_the_client_losing_nothing() {
    let place = Place::new();
    let mut daemon = place.daemon();
    let mut client = client(&place.socket(), &["--lines", "100", "--len", "4073"]);
    let output = client.exits_with(2);
    let want = expected(100, 4073);
    assert!(
        output.contains(&format!(
            "record {} refused: 4073 bytes of text, more than the 4072 a record carries; \
             the ones before were sent",
            want.len()
        )),
        "{output}"
    );
    daemon.expect_unordered(&[&format!("client pid {} uid", client.pid()), "hung up"]);
    daemon.signal(Signal::INT);
    daemon.exits_with(0);
    assert_eq!(place.records()[&client.pid()], want);
    place.done();
}

/// A client `SIGKILL`ed holding a half-written record, and one that
/// scribbles on its ring, are each named by pid; the killed one's committed
/// records and an honest client's all arrive.
#[test]
fn a_killed_client_and_a_scribbler_are_named_and_the_others_arrive() {
    let place = Place::new();
    let mut daemon = place.daemon();
    let mut honest = client(&place.socket(), &["--lines", "2000", "--len", "300"]);
    let mut killed = client(&place.socket(), &["--lines", "20", "--len", "50", "--hang"]);
    killed.expect_unordered(&["holding a half-written record"]);
    killed.signal(Signal::KILL);
    let status = killed.finish();
    assert_eq!(status.signal(), Some(Signal::KILL.as_raw()), "{status}");
    daemon.expect_unordered(&[
        &format!("client pid {} uid", killed.pid()),
        "hung up; 20 records",
    ]);
    let mut scribbler = client(
        &place.socket(),
        &["--lines", "5", "--len", "10", "--scribble"],
    );
    scribbler.expect_unordered(&["dropped by the daemon"]);
    scribbler.exits_with(0);
    daemon.expect_unordered(&[
        &format!("client pid {} uid", scribbler.pid()),
        "dropped after",
        "shared memory is corrupted",
    ]);
    honest.exits_with(0);
    daemon.expect_unordered(&[
        &format!("client pid {} uid", honest.pid()),
        "hung up; 2000 records",
    ]);
    daemon.signal(Signal::TERM);
    daemon.exits_with(0);
    let records = place.records();
    assert_eq!(records[&killed.pid()], expected(20, 50));
    assert!(
        records[&honest.pid()] == expected(2000, 300),
        "the honest client's records"
    );
    place.done();
}

/// A client floods (100 000 small records through its 8 KiB ring), another
/// connects and sends garbage on its socket then sits: the daemon serves an
/// honest client all the same, and still stops cleanly on `SIGTERM`.
#[test]
fn a_flood_and_a_client_sending_garbage_do_not_stop_the_daemon() {
    let place = Place::new();
    let mut daemon = place.daemon();
    let addr = UnixAddr::path(place.socket()).expect("a socket path");
    let squatter = SeqpacketStream::connect(&addr).expect("connect");
    let _ = squatter.send(b"not a hello, not anything");
    let mut flood = client(&place.socket(), &["--lines", "100000", "--len", "8"]);
    let mut honest = client(&place.socket(), &["--lines", "500", "--len", "1000"]);
    honest.exits_with(0);
    flood.exits_with(0);
    daemon.expect_unordered(&[
        &format!("client pid {} uid", honest.pid()),
        "hung up; 500 records",
    ]);
    daemon.expect_unordered(&[
        &format!("client pid {} uid", flood.pid()),
        "hung up; 100000 records",
    ]);
    daemon.signal(Signal::TERM);
    let output = daemon.exits_with(0);
    assert!(
        output.contains("still connected at the stop; 0 records"),
        "{output}"
    );
    drop(squatter);
    let records = place.records();
    assert!(records[&honest.pid()] == expected(500, 1000));
    assert!(records[&flood.pid()] == expected(100_000, 8));
    place.done();
}

/// Records published while the daemon was stopped (`SIGSTOP`) are written
/// when `SIGTERM` ends it: it drains, removes its socket and exits 0.
#[test]
fn sigterm_writes_what_was_published_removes_the_socket_and_exits_0() {
    let place = Place::new();
    let mut daemon = place.daemon();
    let mut client = client(&place.socket(), &[]);
    daemon.expect_unordered(&[&format!("client pid {} uid", client.pid()), "connected"]);
    daemon.signal(Signal::STOP);
    let mut stdin = client.stdin.take().expect("piped");
    for n in 0..100 {
        writeln!(stdin, "line {n} written while the daemon was stopped").expect("write");
    }
    drop(stdin);
    client.expect_unordered(&["sent 100 records"]);
    client.exits_with(0);
    daemon.signal(Signal::TERM);
    daemon.signal(Signal::CONT);
    let output = daemon.exits_with(0);
    assert!(output.contains("SIGTERM: wrote what every client published; socket removed"));
    let want: Vec<String> = (0..100)
        .map(|n| format!("line {n} written while the daemon was stopped"))
        .collect();
    assert_eq!(place.records()[&client.pid()], want);
    place.done();
}
