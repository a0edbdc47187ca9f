//! A logging daemon over per-client record rings, and its client.
//!
//! ```text
//! cargo run --example logd -- --socket /tmp/logd.sock [--out FILE]
//! echo "hello" | cargo run --example logd -- client --socket /tmp/logd.sock
//! cargo run --example logd -- client --socket /tmp/logd.sock --lines 10000 --len 4072
//! ```
//!
//! Each client connects through the crate's handshake and receives its own
//! record ring ([`ipc_primitives::bytes`], 8 KiB, in a sealed memfd) and
//! wake-up eventfds. It writes each record (level, timestamp, pid, then text
//! of 1 to [`MAX_TEXT`] bytes) in place in its ring: no system call per
//! record while the daemon is awake, one eventfd write when the daemon
//! announced it sleeps, and a sleep in `poll` while its ring is full.
//!
//! The daemon sleeps in `epoll` on the listener, a signalfd, and each
//! client's eventfd and socket. It writes each client's records, in order,
//! one line each, to stdout or `--out FILE`:
//! `<seconds>.<nanoseconds> pid <pid> uid <uid> <LEVEL> <text>`, the pid
//! and uid as the kernel reported them at connect (a record claiming
//! another pid says so).
//!
//! # A daemon outlives its clients
//! - A client that dies, even in the middle of a record, is noticed from its
//!   socket's hang-up: what it committed is written, the half-written record
//!   never was published, and its line on stderr says how many records it
//!   sent.
//! - A client that scribbles on its ring (an impossible counter or length)
//!   or sends a malformed record is dropped with an error line naming its pid
//!   and uid; the others go on.
//! - A client that floods gets at most [`BATCH`] records written per round,
//!   as every other client does; its blocking pushes then wait for room.
//! - A client that connects and then does nothing, or sends garbage on its
//!   socket, costs one session (at most [`MAX_SESSIONS`]) and nothing else.
//!
//! On `SIGINT` or `SIGTERM` the daemon writes what every client published,
//! removes its socket file and exits 0.
//!
//! # Client
//! `client --socket PATH [--level info|warn|error|debug]` sends each line of
//! stdin; `--lines N --len L` sends `N` generated records of 1 to `L` bytes
//! instead (record `n` is `"<n> "` then letters, cut to its length; every
//! 50th has `L` bytes). `--hang` then reserves a record, writes half of it
//! and waits to be killed; `--scribble` writes an impossible counter into its
//! ring and waits for the daemon to drop it. A record longer than
//! [`MAX_TEXT`] is refused at the client with an error and exit code 2; the
//! records before it are all delivered.

use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufWriter, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ipc_primitives::bytes;
use ipc_primitives::linux::Errno;
use ipc_primitives::linux::bytes::PushBlockingError;
use ipc_primitives::linux::handshake::{
    ClientError, Policy, RecordConnection, RecordSession, Records, Server, connect_records,
};
use ipc_primitives::linux::uds::{Credentials, SeqpacketListener, UnixAddr};
use ipc_primitives::linux::wake::SpinThenBlock;
use rustix::buffer::spare_capacity;
use rustix::event::epoll;
use rustix::fs::Mode;

#[path = "support/chain.rs"]
mod chain;
#[path = "support/options.rs"]
mod options;
#[path = "support/stop_signals.rs"]
mod stop_signals;

use chain::chain;
use options::Options;
use stop_signals::StopSignals;

/// Each client's ring: 1024 words, 8 KiB.
const RING_WORDS: u32 = 1024;
/// A record's header: level (1 byte), 3 zero bytes, pid (`u32`), timestamp
/// in nanoseconds since the epoch (`u64`), little-endian.
const HEADER: usize = 16;
/// The longest text a record carries: the ring's largest record less the
/// header (4072 bytes).
const MAX_TEXT: usize = bytes::max_record(RING_WORDS) - HEADER;
/// Most records written per client per round.
const BATCH: usize = 64;
/// Most clients served at once (each holds 4 fds).
const MAX_SESSIONS: usize = 64;
/// Most connections accepted per wake-up.
const ACCEPT_BATCH: usize = 16;

const LISTENER: u64 = u64::MAX;
const SIGNALS: u64 = u64::MAX - 1;

const LEVELS: [&str; 4] = ["DEBUG", "INFO", "WARN", "ERROR"];

type Error = Box<dyn std::error::Error>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        ["client", options @ ..] => client(options),
        options => daemon(options),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("logd: error: {}", chain(err.as_ref()));
            match err.downcast_ref::<TooLong>() {
                Some(_) => ExitCode::from(2),
                None => ExitCode::FAILURE,
            }
        }
    }
}

/// The options in `args` (see [`Options::parse`]); refused with a pointer to
/// the usage.
fn options<'a>(args: &[&'a str], valued: &[&str], switches: &[&str]) -> Result<Options<'a>, Error> {
    Options::parse(args, valued, switches)
        .map_err(|err| format!("{err}; see the top of examples/logd.rs").into())
}

// ---------------------------------------------------------------------------
// The client
// ---------------------------------------------------------------------------

/// A record longer than [`MAX_TEXT`]: refused at the client.
#[derive(Debug)]
struct TooLong {
    record: u64,
    /// Bytes of its text.
    text: usize,
}

impl fmt::Display for TooLong {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "record {} refused: {} bytes of text, more than the {MAX_TEXT} a record \
             carries; the ones before were sent",
            self.record, self.text
        )
    }
}

impl std::error::Error for TooLong {}

/// Text of generated record `n`, `len` bytes: `"<n> "` then letters.
fn generated(n: u64, len: usize) -> Vec<u8> {
    let mut text = format!("{n} ").into_bytes();
    text.extend((0..len).map(|i| b'a' + ((n as usize + i) % 26) as u8));
    text.truncate(len);
    text
}

/// Length of generated record `n` of at most `max` bytes: every 50th is
/// `max`, the others spread over `1..=max`.
fn generated_len(n: u64, max: usize) -> usize {
    if n % 50 == 49 {
        max
    } else {
        1 + (n as usize).wrapping_mul(7919) % max
    }
}

fn client(args: &[&str]) -> Result<(), Error> {
    let valued = ["--socket", "--level", "--lines", "--len"];
    let options = options(args, &valued, &["--hang", "--scribble"])?;
    let socket = UnixAddr::path(
        options
            .value("--socket")
            .ok_or("client needs --socket PATH")?,
    )?;
    let level = match options.value("--level") {
        Some(value) => LEVELS
            .iter()
            .position(|l| l.eq_ignore_ascii_case(value))
            .ok_or(format!("unknown level {value:?}"))? as u8,
        None => 1,
    };
    let lines: Option<u64> = options.parsed("--lines")?;
    let len = options.parsed("--len")?.unwrap_or(MAX_TEXT);
    let (hang, scribble) = (options.has("--hang"), options.has("--scribble"));
    let mut conn = connect_records(&socket)?;
    let me = std::process::id();
    let mut sent = 0;
    match lines {
        Some(lines) => {
            for n in 0..lines {
                send(
                    &mut conn,
                    level,
                    me,
                    &generated(n, generated_len(n, len)),
                    n,
                )?;
                sent += 1;
            }
        }
        None => {
            for line in std::io::stdin().lock().split(b'\n') {
                send(&mut conn, level, me, &line?, sent)?;
                sent += 1;
            }
        }
    }
    // Counted in the ring itself, by the pushes: system calls made.
    let counters = conn.producer().counters();
    println!(
        "client pid {me}: sent {sent} records; woke the daemon {} times; found the ring full {} times",
        counters.wakes, counters.full
    );
    std::io::stdout().flush()?;
    if hang {
        // Killed here, in the middle of a record: it is never published.
        let (mut grant, _) = conn.reserve_blocking(HEADER + 100, SpinThenBlock::default(), None)?;
        grant.write(0, &[level; HEADER / 2])?;
        println!("client pid {me}: holding a half-written record");
        std::io::stdout().flush()?;
        loop {
            std::thread::sleep(Duration::from_secs(60));
        }
    }
    if scribble {
        // `head` (byte 128 of the ring) half the counter's range away from
        // where it is, neither ahead nor behind by any number of words the
        // ring holds, written through the memfd as any process holding it
        // could; then wake the daemon to look.
        let head = conn.producer().counters().published;
        rustix::io::pwrite(
            conn.segment(),
            &head.wrapping_add(1 << 31).to_ne_bytes(),
            128,
        )?;
        if let Some(ready) = conn.wakeup().as_eventfd() {
            ready.signal()?;
        }
        println!("client pid {me}: scribbled on its ring");
        std::io::stdout().flush()?;
        while !conn.server_closed()? {
            rustix::event::poll(
                &mut [rustix::event::PollFd::new(
                    &conn.socket(),
                    rustix::event::PollFlags::RDHUP,
                )],
                None,
            )?;
        }
        println!("client pid {me}: dropped by the daemon");
    }
    Ok(())
}

/// Sends one record from process `pid`, written in place: header, then
/// `text`. Waits while the ring is full; stops if the daemon goes. No system
/// call unless the daemon sleeps or the ring is full.
fn send(
    conn: &mut RecordConnection,
    level: u8,
    pid: u32,
    text: &[u8],
    n: u64,
) -> Result<(), Error> {
    let len = HEADER + text.len();
    let (mut grant, wakeup) = conn
        .reserve_blocking(len, SpinThenBlock::default(), None)
        .map_err(|err| -> Error {
            match err {
                PushBlockingError::TooLarge { .. } => Box::new(TooLong {
                    record: n,
                    text: text.len(),
                }),
                err => err.into(),
            }
        })?;
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |t| t.as_nanos() as u64);
    let mut header = [0; HEADER];
    header[0] = level;
    header[4..8].copy_from_slice(&pid.to_le_bytes());
    header[8..].copy_from_slice(&nanos.to_le_bytes());
    grant.write(0, &header)?;
    grant.write(HEADER, text)?;
    grant.commit_notify(len, wakeup)?;
    Ok(())
}

// ---------------------------------------------------------------------------
// The daemon
// ---------------------------------------------------------------------------

/// "client pid P uid U", as the kernel named the peer.
fn who(peer: &Credentials) -> String {
    let pid = peer
        .pid
        .map_or_else(|| "?".to_owned(), |pid| pid.as_raw_nonzero().to_string());
    format!("client pid {pid} uid {}", peer.uid.as_raw())
}

/// One record as a line, or why it is malformed.
fn format_record(peer: &Credentials, record: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
    let (Some(header), Some(text)) = (record.get(..HEADER), record.get(HEADER..)) else {
        return Err(format!(
            "sent a record of {} bytes, shorter than its header",
            record.len()
        ));
    };
    let level = *LEVELS
        .get(usize::from(header[0]))
        .ok_or(format!("sent a record of unknown level {}", header[0]))?;
    let claimed = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    let mut nanos = [0; 8];
    nanos.copy_from_slice(&header[8..]);
    let nanos = u64::from_le_bytes(nanos);
    let pid = peer
        .pid
        .map_or(0, |pid| pid.as_raw_nonzero().get().cast_unsigned());
    write!(
        out,
        "{}.{:09} pid {pid} uid {} {level} ",
        nanos / 1_000_000_000,
        nanos % 1_000_000_000,
        peer.uid.as_raw(),
    )
    .map_err(|err| err.to_string())?;
    if claimed != pid {
        write!(out, "(claims pid {claimed}) ").map_err(|err| err.to_string())?;
    }
    for ch in String::from_utf8_lossy(text).chars() {
        if ch.is_control() {
            write!(out, "{}", ch.escape_default()).map_err(|err| err.to_string())?;
        } else {
            let mut buf = [0; 4];
            out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
        }
    }
    out.push(b'\n');
    Ok(())
}

/// What the daemon keeps of one client.
struct Client {
    session: RecordSession,
    records: u64,
    /// In the ready queue.
    queued: bool,
}

impl Client {
    fn eventfd(&self) -> BorrowedFd<'_> {
        let ready = self.session.wakeup().as_eventfd();
        ready.expect("the handshake hands out eventfds").as_fd()
    }

    /// Writes at most `max` records to `out`; whether records are left
    /// (`false`: the ring is empty and the daemon announced it sleeps).
    fn drain(&mut self, max: usize, out: &mut Vec<u8>) -> Result<bool, String> {
        let peer = self.session.credentials();
        let mut malformed = None;
        let drained = self.session.drain(max, |record| {
            if malformed.is_none()
                && let Err(err) = format_record(&peer, record, out)
            {
                malformed = Some(err);
            }
        });
        let drained = drained.map_err(|err| format!("{err}"))?;
        if let Some(err) = malformed {
            return Err(err);
        }
        self.records += drained as u64;
        if drained == max {
            return Ok(true);
        }
        self.session
            .prepare_to_sleep()
            .map(|asleep| !asleep)
            .map_err(|err| err.to_string())
    }

    /// Everything it published (it hung up, or the daemon stops): at most a
    /// ring's worth, since nothing refills it now.
    fn drain_all(&mut self, out: &mut Vec<u8>) -> Result<(), String> {
        for _ in 0..=RING_WORDS as usize / BATCH {
            if !self.drain(BATCH, out)? {
                break;
            }
        }
        Ok(())
    }
}

struct Daemon {
    server: Server<Records>,
    epoll: OwnedFd,
    stop: StopSignals,
    clients: std::collections::BTreeMap<u64, Client>,
    ready: std::collections::VecDeque<u64>,
    next_token: u64,
    out: Box<dyn Write>,
    /// Lines formatted this round, written once per round.
    lines: Vec<u8>,
}

fn daemon(args: &[&str]) -> Result<(), Error> {
    let options = options(args, &["--socket", "--out"], &[])?;
    let out: Box<dyn Write> = match options.value("--out") {
        Some(path) => Box::new(BufWriter::new(File::create(path)?)),
        None => Box::new(std::io::stdout()),
    };
    let socket = options.value("--socket").map(UnixAddr::path).transpose()?;
    let socket = socket.ok_or("usage: logd --socket PATH [--out FILE] (or logd client ...)")?;
    // Blocked before the socket exists, so that a signal sent once a client
    // could connect waits in the signalfd.
    let stop = StopSignals::block()?;
    // Readable while a stop signal waits in `stop`; open until this returns.
    let signals = stop.fd()?;
    let mut listener = SeqpacketListener::bind_with_mode(&socket, Mode::from_raw_mode(0o600))?;
    listener.set_unlink_on_drop(true);
    let mut server = Server::<Records>::with_listener(listener, RING_WORDS, Policy::SameUser)?;
    server.set_max_sessions(Some(MAX_SESSIONS));
    let epoll = epoll::create(epoll::CreateFlags::CLOEXEC)?;
    let data = epoll::EventData::new_u64;
    epoll::add(&epoll, &server, data(LISTENER), epoll::EventFlags::IN)?;
    epoll::add(&epoll, &signals, data(SIGNALS), epoll::EventFlags::IN)?;
    let mut daemon = Daemon {
        server,
        epoll,
        stop,
        clients: Default::default(),
        ready: Default::default(),
        next_token: 0,
        out,
        lines: Vec::new(),
    };
    eprintln!(
        "logd: listening on {}; records of up to {MAX_TEXT} bytes of text",
        socket
            .as_path()
            .map_or(String::new(), |p| p.display().to_string())
    );
    let mut events = Vec::with_capacity(64);
    let signal = loop {
        if let Some(signal) = daemon.turn(&mut events)? {
            break signal;
        }
    };
    let tokens: Vec<u64> = daemon.clients.keys().copied().collect();
    for token in tokens {
        daemon.finish(token, "still connected at the stop")?;
    }
    daemon.flush()?;
    eprintln!("logd: {signal}: wrote what every client published; socket removed");
    Ok(())
}

impl Daemon {
    /// One wake-up: waits (not at all while a client has records left),
    /// handles the events, serves a round. `Some(signal)` to stop.
    fn turn(&mut self, events: &mut Vec<epoll::Event>) -> Result<Option<&'static str>, Error> {
        let zero = rustix::time::Timespec::default();
        let timeout = (!self.ready.is_empty()).then_some(&zero);
        events.clear();
        match epoll::wait(&self.epoll, spare_capacity(events), timeout) {
            Ok(_) | Err(Errno::INTR) => {}
            Err(errno) => return Err(errno.into()),
        }
        let mut stop = None;
        for event in events.iter() {
            match event.data.u64() {
                LISTENER => self.accept_some()?,
                SIGNALS => stop = self.stop.next(Duration::ZERO)?,
                token if token % 2 == 0 => self.woken(token / 2),
                token => self.finish(token / 2, "hung up")?,
            }
        }
        self.serve_round()?;
        self.flush()?;
        Ok(stop)
    }

    fn accept_some(&mut self) -> Result<(), Error> {
        for _ in 0..ACCEPT_BATCH {
            match self.server.try_accept()? {
                None => break,
                Some(Ok(session)) => self.add(session)?,
                Some(Err(err)) => log_dropped(&err),
            }
        }
        Ok(())
    }

    fn add(&mut self, session: RecordSession) -> Result<(), Error> {
        let token = self.next_token;
        self.next_token += 1;
        eprintln!("logd: {}: connected", who(&session.credentials()));
        let client = Client {
            session,
            records: 0,
            queued: false,
        };
        let data = epoll::EventData::new_u64;
        epoll::add(
            &self.epoll,
            client.eventfd(),
            data(2 * token),
            epoll::EventFlags::IN,
        )?;
        let socket = client.session.socket();
        epoll::add(
            &self.epoll,
            socket,
            data(2 * token + 1),
            epoll::EventFlags::RDHUP,
        )?;
        self.clients.insert(token, client);
        self.woken(token);
        Ok(())
    }

    /// The client's eventfd fired (or it is new): queue it.
    fn woken(&mut self, token: u64) {
        let Some(client) = self.clients.get_mut(&token) else {
            return;
        };
        // A failed read shows again as a readable fd: nothing to handle.
        let _ = client
            .session
            .wakeup()
            .as_eventfd()
            .map(|ready| ready.drain());
        if !client.queued {
            client.queued = true;
            self.ready.push_back(token);
        }
    }

    /// Each client ready at the start of the round gets at most [`BATCH`]
    /// records written; one with more goes to the back.
    fn serve_round(&mut self) -> Result<(), Error> {
        for _ in 0..self.ready.len() {
            let Some(token) = self.ready.pop_front() else {
                break;
            };
            let Some(client) = self.clients.get_mut(&token) else {
                continue;
            };
            match client.drain(BATCH, &mut self.lines) {
                Ok(true) => self.ready.push_back(token),
                Ok(false) => client.queued = false,
                Err(err) => {
                    let who = who(&client.session.credentials());
                    let records = client.records;
                    self.remove(token)?;
                    eprintln!("logd: {who}: dropped after {records} records: {err}");
                }
            }
        }
        Ok(())
    }

    /// The client hung up (or the daemon stops): writes what it published,
    /// then frees its session.
    fn finish(&mut self, token: u64, why: &str) -> Result<(), Error> {
        let Some(mut client) = self.remove(token)? else {
            return Ok(());
        };
        let who = who(&client.session.credentials());
        match client.drain_all(&mut self.lines) {
            Ok(()) => eprintln!("logd: {who}: {why}; {} records", client.records),
            Err(err) => eprintln!(
                "logd: {who}: {why}; dropped after {} records: {err}",
                client.records
            ),
        }
        Ok(())
    }

    fn remove(&mut self, token: u64) -> Result<Option<Client>, Error> {
        let Some(client) = self.clients.remove(&token) else {
            return Ok(None);
        };
        epoll::delete(&self.epoll, client.eventfd())?;
        epoll::delete(&self.epoll, client.session.socket())?;
        Ok(Some(client))
    }

    /// Writes the round's lines: one `write` per round, not per record.
    fn flush(&mut self) -> Result<(), Error> {
        self.out.write_all(&self.lines)?;
        self.out.flush()?;
        self.lines.clear();
        Ok(())
    }
}

fn log_dropped(err: &ClientError) {
    eprintln!("logd: {}", chain(err));
}
