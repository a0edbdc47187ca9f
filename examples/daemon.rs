//! A logging daemon and its client processes, in one command:
//!
//! `cargo run --release --example daemon`
//!
//! The daemon listens on an abstract Unix socket and starts client processes
//! (this binary again, with `client <id> <socket>`). Each client connects, is
//! checked against the daemon's policy (same user, from `SO_PEERCRED`),
//! receives its own ring in a sealed memfd plus an eventfd, and writes log
//! records into the ring: no system call per record while the daemon is
//! awake, one eventfd write when the daemon announced it would sleep.
//!
//! The daemon sleeps in epoll on the listener, every client's eventfd and
//! every client's socket. It drains rings when woken, checks that every
//! client's records arrive complete and in order, and notices when a client
//! exits from the socket hang-up, drains what is left and frees its ring.
//!
//! # Modes
//! - no arguments: the demo above; exits 0 once every client's records
//!   arrived.
//! - `serve <socket> [--max-sessions N] [--mode OCTAL]`: the daemon alone, at
//!   `<socket>` (a path if it starts with `/`, else an abstract name), until
//!   its stdin (a pipe or a terminal) closes; then it removes its socket file
//!   and exits 0. A path
//!   socket gets mode `--mode` (default `600`: only this user can connect;
//!   `666` lets anyone connect and be judged by the policy, which logs them).
//! - `client <id> <socket> [records]`: one client.
//!
//! # A daemon outlives its clients
//! A failure about one client — refused by the policy, over the session cap
//! (64 by default), hung up before its hello, out of fds for it, a ring it
//! corrupted or records out of order — is logged on stderr with the client's
//! pid and uid, and that client alone is dropped. Only a failure of the
//! listening socket or of epoll stops the daemon. Out of fds, the server
//! drops each newcomer through a spare fd instead of spinning on `EMFILE`.
//!
//! **Fairness:** each round, every client with records waiting gets at most
//! [`BATCH`] records popped, in the order they became ready; a client with
//! more left goes to the back of the queue, behind every other ready client.
//! At most [`ACCEPT_BATCH`] newcomers are accepted per wake-up. So a client
//! that keeps its ring full gets its share, never more, and a flood of
//! connections never stops the daemon from draining.
//!
//! A client whose ring stays full asks whether the daemon hung up
//! (`Connection::server_closed`) and stops with [`DaemonGone`] if it did,
//! instead of spinning for ever.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd};
use std::process::{Child, Command, ExitCode};
use std::time::Instant;

use ipc_primitives::linux::handshake::{ClientError, Connection, Policy, Server, Session, connect};
use ipc_primitives::linux::uds::{Credentials, SeqpacketListener, UnixAddr};
use ipc_primitives::linux::wake::PushNotifyError;
use ipc_primitives::message::Message;
use ipc_primitives::spsc::{PopError, PushError};
use rustix::buffer::spare_capacity;
use rustix::event::epoll;
use rustix::fs::Mode;
use rustix::io::Errno;

#[path = "support/chain.rs"]
mod chain;
#[path = "support/options.rs"]
mod options;

use chain::chain;
use options::Options;

/// One log record: up to 120 bytes of text, tagged with the client's id.
type Record = Message<120>;

const CLIENTS: u32 = 3;
const RECORDS_PER_CLIENT: u32 = 300_000;
const RING_CAPACITY: u32 = 1024;
/// Most records popped from one client per round.
const BATCH: u32 = 256;
/// Most connections accepted per wake-up.
const ACCEPT_BATCH: usize = 64;
/// Default cap on sessions: 4 fds each, well under the usual 1024 fds.
const MAX_SESSIONS: usize = 64;

const LISTENER: u64 = u64::MAX;
const STDIN: u64 = u64::MAX - 1;

type Error = Box<dyn std::error::Error>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", chain(err.as_ref()));
            ExitCode::FAILURE
        }
    }
}

fn run(args: &[&str]) -> Result<(), Error> {
    match args {
        ["client", id, socket] => run_client(id.parse()?, socket, None),
        ["client", id, socket, records] => run_client(id.parse()?, socket, Some(records.parse()?)),
        ["serve", socket, options @ ..] => serve(socket, options),
        [] => demo(),
        _ => Err(
            "usage: daemon [serve <socket> [--max-sessions N] [--mode OCTAL] \
                  | client <id> <socket> [records]]"
                .into(),
        ),
    }
}

/// A socket argument: a path if it starts with `/`, else an abstract name.
fn socket_addr(socket: &str) -> Result<UnixAddr, Error> {
    Ok(if socket.starts_with('/') {
        UnixAddr::path(socket)?
    } else {
        UnixAddr::abstract_name(socket)?
    })
}

fn record_text(id: u32, n: u32) -> String {
    format!("client {id}: request {n} served in {} us", n % 997)
}

/// Why a client stopped before sending all its records.
#[derive(Debug)]
struct DaemonGone {
    sent: u32,
}

impl fmt::Display for DaemonGone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the daemon hung up after {} records", self.sent)
    }
}

impl std::error::Error for DaemonGone {}

/// A client: connect, then log `records` records ([`RECORDS_PER_CLIENT`]
/// if `None`), waking the daemon only if it sleeps.
fn run_client(id: u32, socket: &str, records: Option<u32>) -> Result<(), Error> {
    let mut conn: Connection<Record> = connect(&socket_addr(socket)?)?;
    for n in 0..records.unwrap_or(RECORDS_PER_CLIENT) {
        let mut record = Record::new(id, record_text(id, n).as_bytes())?;
        loop {
            match conn.push_notify(record) {
                Ok(()) => break,
                Err(PushNotifyError::Push(PushError::Full(back))) => {
                    // Full: the daemon is busy, or gone for good.
                    if conn.server_closed()? {
                        return Err(DaemonGone { sent: n }.into());
                    }
                    record = back;
                    std::thread::yield_now();
                }
                Err(err) => return Err(err.into()),
            }
        }
    }
    Ok(())
}

/// What the daemon knows of one client.
struct Client {
    session: Session<Record>,
    /// Records received, each checked to be the next in order.
    next: u32,
    /// In the ready queue: it may have records waiting.
    queued: bool,
}

/// How a bounded drain ended.
enum Drained {
    /// The ring is empty and the daemon announced it will sleep: the client's
    /// next push signals the eventfd.
    Asleep,
    /// The batch ran out with records (maybe) left.
    More,
}

impl Client {
    /// Pops at most `limit` records, checking each; announces sleep once the
    /// ring is empty.
    fn drain(&mut self, limit: u32) -> Result<Drained, Error> {
        let rx = self.session.consumer_mut();
        for _ in 0..limit {
            match rx.try_pop() {
                Ok(record) => {
                    let id = record.tag();
                    if record.payload() != record_text(id, self.next).as_bytes() {
                        return Err(format!(
                            "record {} of client {id} damaged or out of order",
                            self.next
                        )
                        .into());
                    }
                    self.next += 1;
                }
                Err(PopError::Empty) => {
                    // `None`: a record came in between; keep going.
                    if rx.prepare_to_sleep()?.is_some() {
                        return Ok(Drained::Asleep);
                    }
                }
                Err(PopError::Corrupted) => return Err("its ring's counters are corrupted".into()),
                Err(err) => return Err(err.into()),
            }
        }
        Ok(Drained::More)
    }

    fn eventfd(&self) -> BorrowedFd<'_> {
        self.session
            .wakeup()
            .as_eventfd()
            .expect("the handshake hands out eventfds")
            .as_fd()
    }
}

/// Reads what stdin holds (and ignores it); whether it is at its end.
fn stdin_closed() -> Result<bool, Error> {
    match rustix::io::read(std::io::stdin(), &mut [0; 256]) {
        Ok(0) => Ok(true),
        Ok(_) | Err(Errno::INTR | Errno::AGAIN) => Ok(false),
        Err(errno) => Err(errno.into()),
    }
}

/// "client pid P uid U", as the kernel named the peer.
fn who(peer: &Credentials) -> String {
    let pid = peer
        .pid
        .map_or_else(|| "?".to_owned(), |pid| pid.as_raw_nonzero().to_string());
    format!("client pid {pid} uid {}", peer.uid.as_raw())
}

/// The daemon: its server, its epoll set, and its clients.
struct Daemon {
    server: Server<Record>,
    epoll: rustix::fd::OwnedFd,
    clients: BTreeMap<u64, Client>,
    /// Clients that may have records waiting, served in turn.
    ready: VecDeque<u64>,
    next_token: u64,
    /// Each client that hung up: who, and how many records it sent.
    finished: Vec<(Credentials, u32)>,
    dropped: usize,
    wakes: u64,
}

impl Daemon {
    fn new(server: Server<Record>) -> Result<Self, Error> {
        let epoll = epoll::create(epoll::CreateFlags::CLOEXEC)?;
        epoll::add(
            &epoll,
            &server,
            epoll::EventData::new_u64(LISTENER),
            epoll::EventFlags::IN,
        )?;
        Ok(Self {
            server,
            epoll,
            clients: BTreeMap::new(),
            ready: VecDeque::new(),
            next_token: 0,
            finished: Vec::new(),
            dropped: 0,
            wakes: 0,
        })
    }

    /// One wake-up: waits for events (not at all if a client has records
    /// waiting), handles them, then serves one round. Returns whether stdin
    /// closed.
    fn turn(&mut self, events: &mut Vec<epoll::Event>) -> Result<bool, Error> {
        let timeout = rustix::time::Timespec::default();
        let timeout = if self.ready.is_empty() {
            None
        } else {
            Some(&timeout)
        };
        events.clear();
        match epoll::wait(&self.epoll, spare_capacity(events), timeout) {
            Ok(_) | Err(Errno::INTR) => {}
            Err(errno) => return Err(errno.into()),
        }
        let mut stop = false;
        for event in events.iter() {
            match event.data.u64() {
                LISTENER => self.accept_some()?,
                STDIN => stop |= stdin_closed()?,
                token if token % 2 == 0 => self.woken(token / 2),
                token => self.hung_up(token / 2)?,
            }
        }
        self.serve_round()?;
        Ok(stop)
    }

    /// Accepts at most [`ACCEPT_BATCH`] pending clients; logs each one
    /// dropped. A listener failure is the daemon's own.
    fn accept_some(&mut self) -> Result<(), Error> {
        for _ in 0..ACCEPT_BATCH {
            match self.server.try_accept()? {
                None => break,
                Some(Ok(session)) => self.add(session)?,
                Some(Err(err)) => self.log_dropped(&err),
            }
        }
        Ok(())
    }

    fn log_dropped(&mut self, err: &ClientError) {
        self.dropped += 1;
        eprintln!("daemon: {}", chain(err));
    }

    fn add(&mut self, session: Session<Record>) -> Result<(), Error> {
        let token = self.next_token;
        self.next_token += 1;
        println!("daemon: accepted {}", who(&session.credentials()));
        let client = Client {
            session,
            next: 0,
            queued: false,
        };
        epoll::add(
            &self.epoll,
            client.eventfd(),
            epoll::EventData::new_u64(2 * token),
            epoll::EventFlags::IN,
        )?;
        epoll::add(
            &self.epoll,
            client.session.socket(),
            epoll::EventData::new_u64(2 * token + 1),
            epoll::EventFlags::RDHUP,
        )?;
        self.clients.insert(token, client);
        self.woken(token);
        Ok(())
    }

    /// The client's eventfd fired (or it is new): queue it for a drain.
    fn woken(&mut self, token: u64) {
        let Some(client) = self.clients.get_mut(&token) else {
            return;
        };
        self.wakes += 1;
        // Reading the eventfd only resets its counter; a failure would show
        // again as a readable fd, so it needs no handling here.
        if let Some(eventfd) = client.session.wakeup().as_eventfd() {
            let _ = eventfd.drain();
        }
        if !client.queued {
            client.queued = true;
            self.ready.push_back(token);
        }
    }

    /// Serves each client that was ready at the start of the round once, at
    /// most [`BATCH`] records each; one with more left goes to the back.
    fn serve_round(&mut self) -> Result<(), Error> {
        for _ in 0..self.ready.len() {
            let Some(token) = self.ready.pop_front() else {
                break;
            };
            let Some(client) = self.clients.get_mut(&token) else {
                continue;
            };
            match client.drain(BATCH) {
                Ok(Drained::More) => self.ready.push_back(token),
                Ok(Drained::Asleep) => client.queued = false,
                Err(err) => self.drop_client(token, &err)?,
            }
        }
        Ok(())
    }

    /// The client hung up: drains what it left (at most one ring's worth:
    /// nothing can refill it now), then frees its session.
    fn hung_up(&mut self, token: u64) -> Result<(), Error> {
        let Some(mut client) = self.remove(token)? else {
            return Ok(());
        };
        let peer = client.session.credentials();
        match client.drain(RING_CAPACITY) {
            Ok(_) => {
                println!(
                    "daemon: finished {}: {} records, complete and in order",
                    who(&peer),
                    client.next
                );
                self.finished.push((peer, client.next));
            }
            Err(err) => self.log_failure(&peer, err.as_ref()),
        }
        Ok(())
    }

    /// A failure about one client after its handshake: log it, drop it.
    fn drop_client(&mut self, token: u64, err: &Error) -> Result<(), Error> {
        if let Some(client) = self.remove(token)? {
            self.log_failure(&client.session.credentials(), err.as_ref());
        }
        Ok(())
    }

    fn log_failure(&mut self, peer: &Credentials, err: &dyn std::error::Error) {
        self.dropped += 1;
        eprintln!("daemon: dropped {}: {}", who(peer), chain(err));
    }

    /// Takes a client out of the epoll set and the table.
    fn remove(&mut self, token: u64) -> Result<Option<Client>, Error> {
        let Some(client) = self.clients.remove(&token) else {
            return Ok(None);
        };
        epoll::delete(&self.epoll, client.session.socket())?;
        epoll::delete(&self.epoll, client.eventfd())?;
        Ok(Some(client))
    }
}

/// The server's policy, cap and wake-ups: same user, at most `max_sessions`.
fn server(listener: SeqpacketListener, max_sessions: usize) -> Result<Server<Record>, Error> {
    let mut server = Server::with_listener(listener, RING_CAPACITY, Policy::SameUser)?;
    server.set_max_sessions(Some(max_sessions));
    Ok(server)
}

/// `serve <socket> [--max-sessions N] [--mode OCTAL]`: until stdin closes.
fn serve(socket: &str, options: &[&str]) -> Result<(), Error> {
    let options = Options::parse(options, &["--max-sessions", "--mode"], &[])?;
    let max_sessions = options.parsed("--max-sessions")?.unwrap_or(MAX_SESSIONS);
    let mode = match options.value("--mode") {
        Some(octal) => u32::from_str_radix(octal, 8)?,
        None => 0o600,
    };
    let addr = socket_addr(socket)?;
    let mut listener = if addr.as_path().is_some() {
        SeqpacketListener::bind_with_mode(&addr, Mode::from_raw_mode(mode))?
    } else {
        SeqpacketListener::bind(&addr)?
    };
    listener.set_unlink_on_drop(true);
    let mut daemon = Daemon::new(server(listener, max_sessions)?)?;
    epoll::add(
        &daemon.epoll,
        std::io::stdin(),
        epoll::EventData::new_u64(STDIN),
        epoll::EventFlags::IN,
    )?;
    println!("daemon: listening on {socket}");
    std::io::stdout().flush()?;
    let mut events = Vec::with_capacity(64);
    while !daemon.turn(&mut events)? {}
    println!(
        "daemon: stopped; {} clients finished, {} dropped",
        daemon.finished.len(),
        daemon.dropped
    );
    Ok(())
}

/// The demo: the daemon and [`CLIENTS`] clients, each record checked.
fn demo() -> Result<(), Error> {
    let name = format!("ipc-primitives-daemon-{}", std::process::id());
    let listener = SeqpacketListener::bind(&UnixAddr::abstract_name(&name)?)?;
    let mut daemon = Daemon::new(server(listener, MAX_SESSIONS)?)?;

    let start = Instant::now();
    let mut children: Vec<Child> = (0..CLIENTS)
        .map(|id| {
            Command::new(std::env::current_exe()?)
                .args(["client", &id.to_string(), &name])
                .spawn()
        })
        .collect::<Result<_, _>>()?;

    let mut events = Vec::with_capacity(16);
    while daemon.finished.len() + daemon.dropped < CLIENTS as usize {
        daemon.turn(&mut events)?;
    }
    let secs = start.elapsed().as_secs_f64();
    for child in &mut children {
        if !child.wait()?.success() {
            return Err("a client failed".into());
        }
    }

    let total: u32 = daemon.finished.iter().map(|(_, n)| n).sum();
    println!(
        "daemon: {total} records of 128 bytes from {CLIENTS} processes in {secs:.2} s ({:.1} M records/s), woken {} times",
        f64::from(total) / secs / 1e6,
        daemon.wakes
    );
    if daemon.dropped > 0
        || daemon
            .finished
            .iter()
            .any(|&(_, n)| n != RECORDS_PER_CLIENT)
    {
        return Err("records were lost".into());
    }
    Ok(())
}
