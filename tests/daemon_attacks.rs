//! `examples/daemon.rs` under attack: the example binary (which the test
//! builds itself, see `tests/example_bin`) runs as a long-lived server (`daemon serve <socket>`), real client
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

mod example_bin;

use std::fs;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use example_bin::{PATIENCE, Proc};
use ipc_primitives::linux::handshake::{Connection, connect};
use ipc_primitives::linux::uds::{SeqpacketStream, UnixAddr};
use ipc_primitives::message::Message;
use rustix::process::Signal;

/// The example's record type.
type Record = Message<120>;

const ROLE_VAR: &str = "DAEMON_ATTACK_ROLE";
const ADDR_VAR: &str = "DAEMON_ATTACK_SOCKET";
/// Byte offset of an SPSC ring's `head` counter (its `# Layout` table).
const HEAD_OFFSET: u64 = 128;

// ---------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------

/// The example binary, built once per test process.
fn example() -> &'static Path {
    static EXAMPLE: OnceLock<PathBuf> = OnceLock::new();
    EXAMPLE.get_or_init(|| example_bin::build(&["daemon"]).join("daemon"))
}

/// The example's client `id` sending `records` records to `socket`.
fn client(id: u32, socket: &str, records: u32) -> Proc {
    let mut command = Command::new(example());
    command.args(["client", &id.to_string(), socket, &records.to_string()]);
    Proc::spawn(format!("client {id}"), command)
}

/// This test binary playing `role` against `socket`.
fn attacker(role: &str, socket: &str) -> Proc {
    let mut command = Command::new(std::env::current_exe().expect("current_exe"));
    command
        .args(["--exact", "child", "--nocapture", "--test-threads=1", "-q"])
        .env(ROLE_VAR, role)
        .env(ADDR_VAR, socket);
    Proc::spawn(role, command)
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
    daemon.expect_where("the daemon to listen", |line| {
        line.starts_with("out: daemon: listening on")
    });
    (daemon, socket)
}

/// The daemon's log line that its client `pid` finished, with `records`.
fn finished(pid: u32, records: u32) -> impl Fn(&str) -> bool {
    move |line| {
        line.starts_with(&format!("out: daemon: finished client pid {pid} uid "))
            && line.ends_with(&format!(": {records} records, complete and in order"))
    }
}

/// The daemon's log line that it dropped client `pid` for `why`.
fn dropped(pid: u32, why: &'static str) -> impl Fn(&str) -> bool {
    move |line| {
        line.starts_with(&format!("err: daemon: dropped client pid {pid} uid "))
            && line.contains(why)
    }
}

/// Runs a good client to completion: it exits 0 and the daemon reports its
/// records complete.
fn good_client(daemon: &mut Proc, socket: &str, id: u32, records: u32) {
    let mut client = client(id, socket, records);
    let status = client.finish();
    let output = client.lines();
    assert!(status.success(), "good client {id} failed: {output:#?}");
    daemon.expect_where("a good client's records", finished(client.pid(), records));
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
    let mut streaming = client(2, &socket, u32::MAX);
    let accepted = format!("out: daemon: accepted client pid {} ", streaming.pid());
    daemon.expect_where("the streaming client", |line| line.starts_with(&accepted));

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
    let mut victim = attacker("connect-and-wait", &socket);
    victim.expect_where("the victim to connect", |line| line == "out: connected");
    victim.signal(Signal::KILL);
    let status = victim.finish();
    assert_eq!(status.signal(), Some(Signal::KILL.as_raw()));
    daemon.signal(Signal::CONT);
    daemon.expect_where(
        "the dead client",
        dropped(victim.pid(), "hung up before its hello"),
    );
    good_client(&mut daemon, &socket, 5, 1000);

    // A client that writes garbage over its ring's header and counters.
    let mut scribbler = attacker("scribble", &socket);
    daemon.expect_where(
        "the scribbler",
        dropped(scribbler.pid(), "its ring's counters are corrupted"),
    );
    let status = scribbler.finish();
    let output = scribbler.lines();
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
        let line = daemon.expect_where("each silent client's outcome", |line| {
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
        daemon.expect_where("each silent session to end", finished(me, 0));
    }
    good_client(&mut daemon, &socket, 7, 100_000);

    // The streaming client was served all along: every record it sent
    // arrives, in order, when it is stopped.
    streaming.signal(Signal::KILL);
    streaming.finish();
    let line = daemon.expect_where("the streaming client's records", |line| {
        line.starts_with(&format!(
            "out: daemon: finished client pid {} ",
            streaming.pid()
        ))
    });
    assert!(!line.contains(": 0 records"), "{line}");

    let status = daemon.finish();
    let output = daemon.lines();
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
    let status = nobody.finish();
    let output = nobody.lines();
    fs::remove_dir_all(&dir).expect("remove nobody's copy");
    assert!(!status.success());
    assert!(
        output
            .iter()
            .any(|line| line.contains("the server's policy refused this client")),
        "{output:#?}"
    );
    daemon.expect_where("nobody's refusal", move |line| {
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
            daemon.expect_where("a silent session", |line| {
                line.starts_with(&format!("out: daemon: accepted client pid {me} "))
            });
            stream
        })
        .collect();

    let mut over = client(1, &socket, 1000);
    let status = over.finish();
    let output = over.lines();
    assert!(!status.success());
    assert!(
        output
            .iter()
            .any(|line| line.contains("the server serves as many clients as it allows")),
        "{output:#?}"
    );
    daemon.expect_where(
        "the refusal",
        dropped(over.pid(), "over the limit of 2 sessions"),
    );

    drop(silent.pop());
    daemon.expect_where("the silent session to end", finished(me, 0));
    good_client(&mut daemon, &socket, 2, 1000);
    drop(silent);
    let status = daemon.finish();
    let output = daemon.lines();
    assert!(status.success(), "{output:#?}");
    assert!(!Path::new(&socket).exists());
}

/// Clients whose daemon is killed stop with an error, rather than spin on a
/// ring nobody drains.
#[test]
fn clients_stop_when_the_daemon_dies() {
    let dir = TempDir::new("orphans");
    let (mut daemon, socket) = daemon(&dir, 1024, &[]);
    let mut clients: Vec<Proc> = (0..2).map(|id| client(id, &socket, u32::MAX)).collect();
    for client in &clients {
        let accepted = format!("out: daemon: accepted client pid {} ", client.pid());
        daemon.expect_where("the clients", |line| line.starts_with(&accepted));
    }
    daemon.signal(Signal::KILL);
    daemon.finish();
    for client in &mut clients {
        let status = client.finish();
        let output = client.lines();
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
    let status = demo.finish();
    let output = demo.lines();
    assert!(status.success(), "{output:#?}");
    assert!(
        output
            .iter()
            .any(|line| line.contains("records of 128 bytes from 3 processes")),
        "{output:#?}"
    );
}
