//! `examples/daemon.rs` under attack: the built example binary (which `cargo
//! test` builds next to this test's binary, in `target/<profile>/examples/`)
//! runs as a long-lived server (`daemon serve <socket>`), real client
//! processes attack it, and good clients must still be served.
//!
//! The attackers: a client running as `nobody`, a client killed before its
//! hello, a client that writes `0xdeadbeef` over its own ring's header and
//! counters, and
//! 1,000 silent connections while the daemon may hold only 256 fds. The
//! daemon must log each (who, what happened), serve the good clients, and
//! exit 0 when its stdin closes, leaving no socket file and no process. A
//! client whose daemon is killed must stop with an error instead of spinning.
//!
//! The attackers that are not the example's own client are this test binary
//! run again with `DAEMON_ATTACK_ROLE` set (the `child` test plays the role).
#![cfg(all(feature = "linux", target_os = "linux", not(loom), not(miri)))]

use core::time::Duration;
use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::Instant;

use ipc_primitives::linux::handshake::{Connection, connect};
use ipc_primitives::linux::uds::{SeqpacketStream, UnixAddr};
use ipc_primitives::message::Message;
use rustix::process::{Pid, Signal, kill_process};

/// The example's record type.
type Record = Message<120>;

const ROLE_VAR: &str = "DAEMON_ATTACK_ROLE";
const ADDR_VAR: &str = "DAEMON_ATTACK_SOCKET";
/// Byte offset of an SPSC ring's `head` counter (its `# Layout` table).
const HEAD_OFFSET: u64 = 128;
/// How long any one process may run before the test gives up on it.
const PATIENCE: Duration = Duration::from_secs(120);

// ---------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------

/// The example binary, built by `cargo test` beside this test's binary.
fn example() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    // target/<profile>/deps/<this test> -> target/<profile>/examples/daemon
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps");
    let example = profile_dir.join("examples").join("daemon");
    assert!(
        example.exists(),
        "{} is missing: `cargo test` builds it; with a --test filter, run \
         `cargo build --example daemon` first",
        example.display()
    );
    example
}

/// A process whose stdout and stderr lines are read by threads into one
/// channel. Killed (and reaped) on drop.
struct Proc {
    what: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    /// Every line read so far.
    seen: Vec<String>,
    /// Lines read that no [`expect`](Self::expect) has matched yet.
    unmatched: Vec<String>,
    status: Option<ExitStatus>,
    deadline: Instant,
}

impl Proc {
    fn spawn(what: &str, mut command: Command) -> Self {
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .unwrap_or_else(|err| panic!("spawn {what}: {err}"));
        let (send, lines) = channel();
        for (stream, out) in [
            (
                "out",
                child
                    .stdout
                    .take()
                    .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
            ),
            (
                "err",
                child
                    .stderr
                    .take()
                    .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
            ),
        ] {
            let send = send.clone();
            let out = out.expect("piped");
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines() {
                    let Ok(line) = line else { break };
                    if send.send(format!("{stream}: {line}")).is_err() {
                        break;
                    }
                }
            });
        }
        Self {
            what: what.to_owned(),
            stdin: child.stdin.take(),
            child,
            lines,
            seen: Vec::new(),
            unmatched: Vec::new(),
            status: None,
            deadline: Instant::now() + PATIENCE,
        }
    }

    /// The example's client `id` sending `records` records to `socket`.
    fn client(id: u32, socket: &str, records: u32) -> Self {
        let mut command = Command::new(example());
        command.args(["client", &id.to_string(), socket, &records.to_string()]);
        Self::spawn(&format!("client {id}"), command)
    }

    /// This test binary playing `role` against `socket`.
    fn attacker(role: &str, socket: &str) -> Self {
        let mut command = Command::new(std::env::current_exe().expect("current_exe"));
        command
            .args(["--exact", "child", "--nocapture", "--test-threads=1", "-q"])
            .env(ROLE_VAR, role)
            .env(ADDR_VAR, socket);
        Self::spawn(role, command)
    }

    fn pid(&self) -> i32 {
        i32::try_from(self.child.id()).expect("pid fits i32")
    }

    fn signal(&self, signal: Signal) {
        let pid = Pid::from_raw(self.pid()).expect("a child's pid is not 0");
        kill_process(pid, signal).unwrap_or_else(|err| panic!("kill {}: {err}", self.what));
    }

    fn exited(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().expect("waitpid");
        }
        self.status
    }

    /// Waits for a line (stdout lines start `out: `, stderr lines `err: `)
    /// that `matches` and no earlier call matched, and returns it. Panics if
    /// the process exits first or its time runs out.
    fn expect(&mut self, what: &str, matches: impl Fn(&str) -> bool) -> String {
        if let Some(at) = self.unmatched.iter().position(|line| matches(line)) {
            return self.unmatched.remove(at);
        }
        loop {
            match self.lines.recv_timeout(Duration::from_millis(20)) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if matches(&line) {
                        return line;
                    }
                    self.unmatched.push(line);
                }
                Err(RecvTimeoutError::Timeout) => {
                    assert!(
                        self.exited().is_none(),
                        "{} exited while the test waited for {what}; it printed {:#?}",
                        self.what,
                        self.seen
                    );
                    assert!(
                        Instant::now() < self.deadline,
                        "{} timed out waiting for {what}; it printed {:#?}",
                        self.what,
                        self.seen
                    );
                }
                Err(RecvTimeoutError::Disconnected) => panic!(
                    "{} closed its output before {what}; it printed {:#?}",
                    self.what, self.seen
                ),
            }
        }
    }

    /// Waits for the process to exit and returns its status and every line
    /// it printed.
    fn wait(&mut self) -> (ExitStatus, Vec<String>) {
        drop(self.stdin.take());
        let status = loop {
            if let Some(status) = self.exited() {
                break status;
            }
            assert!(
                Instant::now() < self.deadline,
                "{} did not exit in time; it printed {:#?}",
                self.what,
                self.seen
            );
            std::thread::sleep(Duration::from_millis(5));
        };
        // The readers end at end of file, once the process and its children
        // have closed the pipes.
        while let Ok(line) = self.lines.recv_timeout(PATIENCE) {
            self.seen.push(line);
        }
        (status, self.seen.clone())
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.exited().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A fresh directory for the daemon's socket, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("ipcp-daemon-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).expect("create temp dir");
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The example serving at `dir/daemon.sock` with `options`, its fds capped
/// at `nofile` (`prlimit`, which execs it: the pid is the daemon's). Returns
/// it once it listens, and the socket's path.
fn daemon(dir: &TempDir, nofile: u32, options: &[&str]) -> (Proc, String) {
    let socket = dir
        .0
        .join("daemon.sock")
        .to_str()
        .expect("utf-8")
        .to_owned();
    let mut command = Command::new("prlimit");
    command
        .arg(format!("--nofile={nofile}:{nofile}"))
        .arg("--")
        .arg(example())
        .args(["serve", &socket])
        .args(options);
    let mut daemon = Proc::spawn("daemon", command);
    daemon.expect("the daemon to listen", |line| {
        line.starts_with("out: daemon: listening on")
    });
    (daemon, socket)
}

/// The daemon's log line that its client `pid` finished, with `records`.
fn finished(pid: i32, records: u32) -> impl Fn(&str) -> bool {
    move |line| {
        line.starts_with(&format!("out: daemon: finished client pid {pid} uid "))
            && line.ends_with(&format!(": {records} records, complete and in order"))
    }
}

/// The daemon's log line that it dropped client `pid` for `why`.
fn dropped(pid: i32, why: &'static str) -> impl Fn(&str) -> bool {
    move |line| {
        line.starts_with(&format!("err: daemon: dropped client pid {pid} uid "))
            && line.contains(why)
    }
}

/// Runs a good client to completion: it exits 0 and the daemon reports its
/// records complete.
fn good_client(daemon: &mut Proc, socket: &str, id: u32, records: u32) {
    let mut client = Proc::client(id, socket, records);
    let (status, output) = client.wait();
    assert!(status.success(), "good client {id} failed: {output:#?}");
    daemon.expect("a good client's records", finished(client.pid(), records));
}

// ---------------------------------------------------------------------------
// The attackers' roles
// ---------------------------------------------------------------------------

/// The entry point of the attacker processes.
#[test]
fn child() {
    let Ok(role) = std::env::var(ROLE_VAR) else {
        return;
    };
    let socket = std::env::var(ADDR_VAR).expect("socket");
    let addr = UnixAddr::path(&socket).expect("path");
    match role.as_str() {
        "connect-and-wait" => {
            let _stream = SeqpacketStream::connect(&addr).expect("connect");
            println!("connected");
            // Killed by the test before the daemon answers.
            std::thread::sleep(PATIENCE);
            panic!("never killed");
        }
        "scribble" => scribble(&addr),
        other => panic!("unknown role {other:?}"),
    }
    std::process::exit(0);
}

/// Connects, writes `0xdeadbeef` over the ring header's first word and over
/// its `head` counter (through the memfd, as any process holding it can),
/// wakes the daemon, and waits for the daemon to drop it. The header is read
/// only when a side attaches, so the daemon notices the counter: more
/// records than slots.
fn scribble(addr: &UnixAddr) {
    let conn: Connection<Record> = connect(addr).expect("connect");
    let garbage = 0xdead_beef_u32.to_ne_bytes();
    rustix::io::pwrite(conn.segment(), &garbage, 0).expect("pwrite the header");
    rustix::io::pwrite(conn.segment(), &garbage, HEAD_OFFSET).expect("pwrite head");
    conn.wakeup()
        .as_eventfd()
        .expect("an eventfd")
        .signal()
        .expect("wake the daemon");
    println!("scribbled");
    let start = Instant::now();
    while !conn.server_closed().expect("poll") {
        assert!(start.elapsed() < PATIENCE, "the daemon never dropped it");
        std::thread::sleep(Duration::from_millis(1));
    }
    println!("dropped by the daemon");
}

// ---------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------

/// Every attack in turn, while a good client streams records the whole time
/// and others come and go: the daemon logs each attacker by pid, goes on
/// serving, and exits cleanly.
#[test]
fn the_daemon_serves_good_clients_through_every_attack() {
    const SILENT: usize = 1000;
    let dir = TempDir::new("attacks");
    // A cap above what 256 fds allow: the fds run out first, and the daemon
    // must drop newcomers through its spare fd without spinning.
    let (mut daemon, socket) = daemon(&dir, 256, &["--max-sessions", "500", "--mode", "666"]);
    good_client(&mut daemon, &socket, 1, 100_000);

    // A good client that streams until the end of the test.
    let mut streaming = Proc::client(2, &socket, u32::MAX);
    let accepted = format!("out: daemon: accepted client pid {} ", streaming.pid());
    daemon.expect("the streaming client", |line| line.starts_with(&accepted));

    // A client running as nobody: refused by the policy, and told so.
    if rustix::process::geteuid().is_root() {
        nobody_is_refused(&mut daemon, &socket);
    } else {
        eprintln!("skipped the nobody client: running it as uid 65534 needs root");
    }
    good_client(&mut daemon, &socket, 4, 1000);

    // A client killed before its hello: the daemon is stopped while it
    // connects, so the connection waits in the backlog until it is dead.
    daemon.signal(Signal::STOP);
    let mut victim = Proc::attacker("connect-and-wait", &socket);
    victim.expect("the victim to connect", |line| line == "out: connected");
    victim.signal(Signal::KILL);
    let (status, _) = victim.wait();
    assert_eq!(status.signal(), Some(Signal::KILL.as_raw()));
    daemon.signal(Signal::CONT);
    daemon.expect(
        "the dead client",
        dropped(victim.pid(), "hung up before its hello"),
    );
    good_client(&mut daemon, &socket, 5, 1000);

    // A client that writes garbage over its ring's header and counters.
    let mut scribbler = Proc::attacker("scribble", &socket);
    daemon.expect(
        "the scribbler",
        dropped(scribbler.pid(), "its ring's counters are corrupted"),
    );
    let (status, output) = scribbler.wait();
    assert!(status.success(), "{output:#?}");
    assert!(output.contains(&"out: dropped by the daemon".to_owned()));
    good_client(&mut daemon, &socket, 6, 1000);

    // 1,000 silent clients at once: the daemon has 256 fds.
    let addr = UnixAddr::path(&socket).expect("path");
    let silent: Vec<SeqpacketStream> = (0..SILENT)
        .map(|_| SeqpacketStream::connect_timeout(&addr, PATIENCE).expect("connect"))
        .collect();
    let me = std::process::id();
    // Out of fds, a newcomer fails at `accept4` (and is accepted on the spare
    // fd), at `memfd_create` or at `eventfd`, depending on how many fds are
    // left: each is dropped and told `OutOfResources`.
    let out_of_fds = [
        "out of fds: accepted on the spare fd and closed",
        "creating its ring's memory failed",
        "creating its eventfd failed",
    ];
    let mut sessions = 0;
    let mut shed = 0;
    while sessions + shed < SILENT {
        let line = daemon.expect("each silent client's outcome", |line| {
            line.contains(&format!(" client pid {me} "))
        });
        if line.starts_with("out: daemon: accepted") {
            sessions += 1;
        } else if out_of_fds.iter().any(|why| line.contains(why)) {
            shed += 1;
        } else {
            panic!("unexpected outcome for a silent client: {line}");
        }
    }
    assert!(shed > 0, "the fds never ran out: {sessions} sessions");
    eprintln!("{SILENT} silent clients: {sessions} sessions, {shed} dropped for want of fds");
    assert!(daemon.exited().is_none(), "the daemon survived the flood");
    drop(silent);
    for _ in 0..sessions {
        daemon.expect("each silent session to end", finished(me as i32, 0));
    }
    good_client(&mut daemon, &socket, 7, 100_000);

    // The streaming client was served all along: every record it sent
    // arrives, in order, when it is stopped.
    streaming.signal(Signal::KILL);
    streaming.wait();
    let line = daemon.expect("the streaming client's records", |line| {
        line.starts_with(&format!(
            "out: daemon: finished client pid {} ",
            streaming.pid()
        ))
    });
    assert!(!line.contains(": 0 records"), "{line}");

    let (status, output) = daemon.wait();
    assert!(status.success(), "the daemon failed: {output:#?}");
    assert!(
        output
            .iter()
            .any(|line| line.starts_with("out: daemon: stopped;"))
    );
    let drops = output
        .iter()
        .filter(|line| line.starts_with("err: daemon:"))
        .count();
    assert!(
        drops <= SILENT + 3,
        "{drops} drops logged for {SILENT} silent clients and 3 attackers: the daemon spun"
    );
    assert!(
        !Path::new(&socket).exists(),
        "the daemon removed its socket file"
    );
}

/// Runs the example's client as `nobody` (uid and gid 65534): the policy
/// refuses it, it says so, and the daemon logs it by pid and uid.
fn nobody_is_refused(daemon: &mut Proc, socket: &str) {
    // The build tree may sit below a directory `nobody` cannot enter (a
    // clone in a `mktemp -d` directory is mode 0700): run a copy from a
    // directory anyone can enter.
    let dir = std::env::temp_dir().join(format!("ipc-primitives-nobody-{}", std::process::id()));
    fs::create_dir_all(&dir).expect("a directory for nobody's copy");
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).expect("chmod 755");
    let binary = dir.join("daemon");
    fs::copy(example(), &binary).expect("copy the example for nobody");
    let mut nobody = {
        let mut command = Command::new(&binary);
        command.args(["client", "3", socket]).uid(65534).gid(65534);
        Proc::spawn("nobody's client", command)
    };
    let (status, output) = nobody.wait();
    fs::remove_dir_all(&dir).expect("remove nobody's copy");
    assert!(!status.success());
    assert!(
        output
            .iter()
            .any(|line| line.contains("the server's policy refused this client")),
        "{output:#?}"
    );
    daemon.expect("nobody's refusal", move |line| {
        line == format!(
            "err: daemon: dropped client pid {} uid 65534: refused by the server's policy",
            nobody.pid()
        )
    });
}

/// At its session cap, the daemon tells a newcomer why it is refused, and
/// serves again once a session ends.
#[test]
fn at_its_session_cap_the_daemon_refuses_newcomers_with_a_status() {
    let dir = TempDir::new("cap");
    let (mut daemon, socket) = daemon(&dir, 1024, &["--max-sessions", "2"]);
    let addr = UnixAddr::path(&socket).expect("path");
    let me = std::process::id();
    let mut silent: Vec<_> = (0..2)
        .map(|_| {
            let stream = SeqpacketStream::connect(&addr).expect("connect");
            daemon.expect("a silent session", |line| {
                line.starts_with(&format!("out: daemon: accepted client pid {me} "))
            });
            stream
        })
        .collect();

    let mut over = Proc::client(1, &socket, 1000);
    let (status, output) = over.wait();
    assert!(!status.success());
    assert!(
        output
            .iter()
            .any(|line| line.contains("the server serves as many clients as it allows")),
        "{output:#?}"
    );
    daemon.expect(
        "the refusal",
        dropped(over.pid(), "over the limit of 2 sessions"),
    );

    drop(silent.pop());
    daemon.expect("the silent session to end", finished(me as i32, 0));
    good_client(&mut daemon, &socket, 2, 1000);
    drop(silent);
    let (status, output) = daemon.wait();
    assert!(status.success(), "{output:#?}");
    assert!(!Path::new(&socket).exists());
}

/// Clients whose daemon is killed stop with an error, rather than spin on a
/// ring nobody drains.
#[test]
fn clients_stop_when_the_daemon_dies() {
    let dir = TempDir::new("orphans");
    let (mut daemon, socket) = daemon(&dir, 1024, &[]);
    let mut clients: Vec<Proc> = (0..2)
        .map(|id| Proc::client(id, &socket, u32::MAX))
        .collect();
    for client in &clients {
        let accepted = format!("out: daemon: accepted client pid {} ", client.pid());
        daemon.expect("the clients", |line| line.starts_with(&accepted));
    }
    daemon.signal(Signal::KILL);
    daemon.wait();
    for client in &mut clients {
        let (status, output) = client.wait();
        assert_eq!(status.code(), Some(1), "{output:#?}");
        assert!(
            output
                .iter()
                .any(|line| line.starts_with("err: error: the daemon hung up after")),
            "{output:#?}"
        );
    }
}

/// The README's first command: the demo starts its clients, checks every
/// record and exits 0.
#[test]
fn the_demo_serves_its_clients_and_exits_0() {
    let mut demo = Proc::spawn("demo", Command::new(example()));
    let (status, output) = demo.wait();
    assert!(status.success(), "{output:#?}");
    assert!(
        output
            .iter()
            .any(|line| line.contains("records of 128 bytes from 3 processes")),
        "{output:#?}"
    );
}
