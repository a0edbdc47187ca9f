//! A quote publisher and its readers, in separate processes sharing a named
//! seqlock in `/dev/shm`, and what each does when the other dies.
//!
//! `cargo run --example quote -- demo`
//!
//! The demo starts a publisher and two readers (this binary again), kills the
//! publisher with `SIGKILL`, shows that both readers notice, starts a new
//! publisher that takes the dead one's name over (a third, started while the
//! second lives, is refused), shows the readers reattach and read its quotes,
//! then stops the publisher with `SIGTERM`: it removes the segment, the
//! readers see its last quote and exit, and nothing is left in `/dev/shm`.
//!
//! # Modes
//! - `publish NAME`: creates the seqlock at `NAME` (e.g. `/quotes`), or takes
//!   the name over if its creator is dead; refuses (exit 5) if that creator
//!   lives. Writes a quote every 10 ms until `SIGINT` or `SIGTERM`, then
//!   writes a last quote marked closed, removes the name and exits 0.
//! - `read NAME [--follow]`: opens the seqlock read-only and prints a quote
//!   every 200 ms until the publisher closes (exit 0). A publisher that dies
//!   is reported as `WriterGone` (exit 4); with `--follow` the reader then
//!   waits (up to a minute) for a new publisher to take the name over and
//!   reads its quotes. A publisher that is alive but silent (preempted,
//!   stopped) is waited out.
//! - `demo`: the above, on a name unique to this process.
//!
//! # Liveness without timeouts
//! The publisher's segment holds its *life lock* until it exits or dies
//! (see `ipc_primitives::linux::shm`, Liveness). A reader asks
//! `Segment::creator_alive()` in two places:
//! - in the seqlock read, through `Budget::watching`: a writer stuck
//!   mid-write that is alive is waited out, one that died mid-write ends the
//!   read with `ReadError::WriterGone`;
//! - after each read that found no new quote: a writer that died between
//!   writes leaves a whole, valid, stale quote, which only the lock tells
//!   apart from a quiet market.
//!
//! # Bad input
//! A reader refuses, naming the segment, one it cannot trust or that holds
//! no quote seqlock: missing, owned by someone else, of the wrong size (a
//! structure of another kind), another payload type (another type tag) or
//! garbage (exit 3). Each error is printed with its sources and its typed
//! value (`[WriterGone { .. }]`).
//!
//! # Exit codes
//! 0 done; 1 any other failure; 2 usage; 3 the segment was refused; 4 the
//! publisher died; 5 (publisher) the name belongs to a live publisher.

use std::error::Error;
use std::fmt;
use std::process::{ExitCode, ExitStatus};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ipc_primitives::AttachError;
use ipc_primitives::linux::SysError;
use ipc_primitives::linux::shm::{CreateOptions, Liveness, OpenOptions, Segment, ShmError};
use ipc_primitives::seqlock::{Budget, ReadError, Reader, SeqLock, Version};
use rustix::io::Errno;
use rustix::process::Signal;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

#[path = "support/chain.rs"]
mod chain;
#[path = "support/children.rs"]
mod children;
#[path = "support/parent.rs"]
mod parent;
#[path = "support/shm_path.rs"]
mod shm_path;
#[path = "support/stop_signals.rs"]
mod stop_signals;

use chain::chain;
use children::{ChildError, Children};
use parent::die_with_parent;
use shm_path::shm_path;
use stop_signals::StopSignals;

/// One quote, as the seqlock holds it: 32 bytes, no padding.
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
struct Quote {
    /// Quotes this publisher wrote before this one.
    number: u64,
    /// Best bid, in cents.
    bid: u64,
    /// Best ask, in cents.
    ask: u64,
    /// The publisher's pid.
    publisher: u32,
    /// Non-zero on the publisher's last quote.
    closed: u32,
}

/// The seqlock's type tag: a reader refuses a seqlock of another payload.
const QUOTE_TAG: u64 = u64::from_be_bytes(*b"QUOTE\0v1");
/// How often the publisher writes.
const PERIOD: Duration = Duration::from_millis(10);
/// How often a reader looks.
const POLL: Duration = Duration::from_millis(20);
/// How often, at most, a reader prints a quote.
const PRINT_EVERY: Duration = Duration::from_millis(200);
/// How long a publisher may say nothing before a reader mentions it.
const SILENT_AFTER: Duration = Duration::from_millis(500);
/// How long a reader keeps retrying a segment whose creator has not
/// finished writing its header (`AttachError::NotInitialized`).
const INIT_WAIT: Duration = Duration::from_secs(1);
/// How long a `--follow` reader waits for a new publisher.
const FOLLOW_WAIT: Duration = Duration::from_secs(60);
/// How many times a publisher retries a name another process is moving.
const BUSY_RETRIES: u32 = 100;
/// How long the demo waits for any one thing a child should say or do.
const DEMO_WAIT: Duration = Duration::from_secs(30);
/// Set by the demo on its children: the pid they must die with.
const PARENT_VAR: &str = "IPCP_QUOTE_PARENT";

const EXIT_FAILURE: u8 = 1;
const EXIT_USAGE: u8 = 2;
const EXIT_BAD_SEGMENT: u8 = 3;
const EXIT_WRITER_GONE: u8 = 4;
const EXIT_NAME_IN_USE: u8 = 5;

const USAGE: &str = "usage: quote publish NAME | quote read NAME [--follow] | quote demo";

type BoxError = Box<dyn Error + Send + Sync>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    if let Err(err) = die_with_demo() {
        eprintln!("{}: error: {}", role(&args), chain(err.as_ref()));
        return ExitCode::from(EXIT_FAILURE);
    }
    let code = match args[..] {
        ["publish", name] => report(&args, publish(name)),
        ["read", name] => report(&args, read(name, false)),
        ["read", name, "--follow"] => report(&args, read(name, true)),
        ["demo"] => report(&args, demo()),
        _ => {
            eprintln!("{USAGE}");
            EXIT_USAGE
        }
    };
    ExitCode::from(code)
}

/// "publisher 123", "reader 456", "demo": how this process signs its lines.
fn role(args: &[&str]) -> String {
    let pid = std::process::id();
    match args.first() {
        Some(&"publish") => format!("publisher {pid}"),
        Some(&"read") => format!("reader {pid}"),
        _ => "demo".to_owned(),
    }
}

/// Prints a failure with its sources and its typed value; the exit code.
fn report<E: Failure>(args: &[&str], result: Result<(), E>) -> u8 {
    match result {
        Ok(()) => 0,
        Err(err) => {
            eprintln!("{}: error: {} [{err:?}]", role(args), chain(&err));
            err.exit_code()
        }
    }
}

/// An error with the exit code it ends the process with.
trait Failure: Error {
    fn exit_code(&self) -> u8;
}

/// Under the demo: dies with it, so that no child outlives it (a publisher
/// then removes its segment).
fn die_with_demo() -> Result<(), BoxError> {
    if die_with_parent(PARENT_VAR)? {
        Ok(())
    } else {
        Err("the demo that started this process is gone".into())
    }
}

/// The bytes a quote seqlock takes: its segment's exact size.
fn segment_len() -> usize {
    SeqLock::<Quote>::required_size().expect("a seqlock of 32 bytes fits in usize")
}

// ---------------------------------------------------------------------------
// Publisher
// ---------------------------------------------------------------------------

/// Why a publisher stopped.
#[derive(Debug)]
enum PublishError {
    /// Creating the segment failed (transparent: the error names it).
    Create(ShmError),
    /// A structure could not be created in the segment (contextual).
    Seqlock {
        name: String,
        source: ipc_primitives::CreateError,
    },
    /// Waiting for `SIGINT`/`SIGTERM` failed (transparent).
    Signals(SysError),
}

impl fmt::Display for PublishError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Create(err) => fmt::Display::fmt(err, f),
            Self::Seqlock { name, .. } => write!(f, "cannot create a seqlock in {name:?}"),
            Self::Signals(err) => fmt::Display::fmt(err, f),
        }
    }
}

impl Error for PublishError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            Self::Create(err) => err.source(),
            Self::Seqlock { source, .. } => Some(source),
            Self::Signals(err) => err.source(),
        }
    }
}

impl Failure for PublishError {
    fn exit_code(&self) -> u8 {
        match self {
            Self::Create(ShmError::CreatorAlive { .. }) => EXIT_NAME_IN_USE,
            _ => EXIT_FAILURE,
        }
    }
}

/// `publish NAME`.
fn publish(name: &str) -> Result<(), PublishError> {
    let me = std::process::id();
    // Blocked before anything else, so that a signal sent from now on waits
    // for `next` instead of killing the process with the segment in place.
    let stop = StopSignals::block().map_err(PublishError::Signals)?;
    let (segment, took_over) = create_or_take_over(name).map_err(PublishError::Create)?;
    let mut writer = SeqLock::<Quote>::create(
        segment
            .region()
            .map_err(PublishError::Create)?
            .with_tag(QUOTE_TAG),
    )
    .map_err(|source| PublishError::Seqlock {
        name: name.to_owned(),
        source,
    })?
    .into_writer();
    let mut quote = quote_at(0, me);
    writer.write(&quote);
    let how = if took_over {
        "took over (its publisher was dead)"
    } else {
        "created"
    };
    println!(
        "publisher {me}: {name:?} {how}; publishing a quote every {} ms",
        PERIOD.as_millis()
    );
    let mut next = Instant::now();
    let signal = loop {
        // A steady rate; after a stop (SIGSTOP, a long preemption), no burst.
        next = (next + PERIOD).max(Instant::now());
        if let Some(signal) = stop
            .next(next.saturating_duration_since(Instant::now()))
            .map_err(PublishError::Signals)?
        {
            break signal;
        }
        quote = quote_at(quote.number + 1, me);
        writer.write(&quote);
    };
    quote.closed = 1;
    writer.write(&quote);
    // Dropping the segment (the writer's last use is above) removes the
    // name, if it still names this segment, then releases the life lock.
    drop(segment);
    println!(
        "publisher {me}: {signal}: closed {name:?} after {} quotes; name removed",
        quote.number + 1
    );
    Ok(())
}

/// Creates the segment, or takes the name over from a dead creator (then
/// `true`).
fn create_or_take_over(name: &str) -> Result<(Segment, bool), ShmError> {
    let fresh = CreateOptions::new().unlink_on_drop(true);
    let mut busy = 0;
    loop {
        let result = match fresh.create(name, segment_len()) {
            Err(ShmError::Exists { .. }) => fresh
                .take_over(true)
                .create(name, segment_len())
                .map(|segment| (segment, true)),
            other => other.map(|segment| (segment, false)),
        };
        match result {
            // Another process is moving the name right now: look again.
            Err(ShmError::Busy { .. }) if busy < BUSY_RETRIES => {
                busy += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
            result => return result,
        }
    }
}

/// The `number`th quote: a walk around 100.00, 5 cents wide.
fn quote_at(number: u64, publisher: u32) -> Quote {
    let bid = 10_000 + number.wrapping_mul(7919) % 200;
    Quote {
        number,
        bid,
        ask: bid + 5,
        publisher,
        closed: 0,
    }
}

// ---------------------------------------------------------------------------
// Reader
// ---------------------------------------------------------------------------

/// A reader of the quote seqlock that owns its segment.
type QuoteReader = Reader<'static, Quote, Arc<Segment>>;

/// Why a reader stopped.
#[derive(Debug)]
enum ReadFailure {
    /// The segment could not be opened (transparent: the error names it):
    /// missing, untrusted, or of the wrong size (another kind of structure).
    Open(ShmError),
    /// The segment holds no quote seqlock: another kind, another payload,
    /// garbage (contextual).
    NotQuotes { name: String, source: AttachError },
    /// The publisher died: its life lock is free. `mid_write` if it died
    /// while writing (the seqlock read said `ReadError::WriterGone`), else
    /// its last quote is whole but stale.
    WriterGone {
        name: String,
        publisher: u32,
        version: Version,
        mid_write: bool,
    },
    /// The segment's publisher stayed alive but stopped mid-write, or writes
    /// never let a read through, longer than any budget (contextual).
    Read { name: String, source: ReadError },
}

impl fmt::Display for ReadFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Open(err) => fmt::Display::fmt(err, f),
            Self::NotQuotes { name, .. } => write!(f, "segment {name:?} holds no quote seqlock"),
            Self::WriterGone {
                name,
                publisher,
                version,
                mid_write,
            } => write!(
                f,
                "the publisher {publisher} of {name:?} is gone after {version} quotes ({})",
                if *mid_write {
                    "it died mid-write"
                } else {
                    "its last quote is stale"
                }
            ),
            Self::Read { name, .. } => write!(f, "cannot read the quote in {name:?}"),
        }
    }
}

impl Error for ReadFailure {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            Self::Open(err) => err.source(),
            Self::NotQuotes { source, .. } => Some(source),
            Self::Read { source, .. } => Some(source),
            Self::WriterGone { .. } => None,
        }
    }
}

impl Failure for ReadFailure {
    fn exit_code(&self) -> u8 {
        match self {
            Self::Open(_) | Self::NotQuotes { .. } => EXIT_BAD_SEGMENT,
            Self::WriterGone { .. } => EXIT_WRITER_GONE,
            Self::Read { .. } => EXIT_FAILURE,
        }
    }
}

/// What a reader's watch of one publisher ended with.
enum Ending {
    /// The publisher wrote its last quote.
    Closed(Quote),
    /// The publisher died.
    Gone(ReadFailure),
}

/// `read NAME [--follow]`.
fn read(name: &str, follow: bool) -> Result<(), ReadFailure> {
    let me = std::process::id();
    let mut reader = attach(name)?;
    loop {
        match watch(name, &reader)? {
            Ending::Closed(quote) => {
                println!(
                    "reader {me}: publisher {} closed {name:?} after {} quotes",
                    quote.publisher,
                    quote.number + 1
                );
                return Ok(());
            }
            Ending::Gone(gone) if follow => {
                println!(
                    "reader {me}: {} [{gone:?}]; waiting for a new publisher",
                    chain(&gone)
                );
                reader = wait_for_successor(name, gone)?;
                println!("reader {me}: reattached to {name:?}");
            }
            Ending::Gone(gone) => return Err(gone),
        }
    }
}

/// Opens `name` read-only, checked and of the exact size, and attaches a
/// quote reader; retries for [`INIT_WAIT`] while the creator has not
/// finished its header.
fn attach(name: &str) -> Result<QuoteReader, ReadFailure> {
    let start = Instant::now();
    loop {
        let segment = OpenOptions::new()
            .read_only(true)
            .len(segment_len())
            .open(name)
            .map_err(ReadFailure::Open)?;
        match SeqLock::<Quote>::attach_reader(segment.into_read_region().with_tag(QUOTE_TAG)) {
            Err(AttachError::NotInitialized) if start.elapsed() < INIT_WAIT => {
                std::thread::sleep(POLL);
            }
            result => {
                return result.map_err(|source| ReadFailure::NotQuotes {
                    name: name.to_owned(),
                    source,
                });
            }
        }
    }
}

/// Reads quotes until the publisher closes or dies; waits out one that is
/// alive but silent.
fn watch(name: &str, reader: &QuoteReader) -> Result<Ending, ReadFailure> {
    let me = std::process::id();
    let segment = reader.keeper();
    let alive = || segment.creator_alive() != Liveness::Gone;
    // The last quote read and its version; when the version last changed;
    // when a quote was last printed; whether the silence was reported.
    let mut last: Option<(Quote, Version)> = None;
    let (mut last_change, mut last_print, mut silent) = (Instant::now(), None::<Instant>, false);
    loop {
        // Asked before the read: a publisher's writes all come before its
        // lock goes, so a read after `Gone` sees its last quote, for good.
        let liveness = segment.creator_alive();
        let (quote, version) = match reader.read_versioned(Budget::default().watching(alive)) {
            Ok(read) => read,
            Err(ReadError::WriterGone) => {
                let publisher = last.map_or(0, |(quote, _)| quote.publisher);
                return Ok(Ending::Gone(gone(name, publisher, reader.version(), true)));
            }
            // Alive, but stopped mid-write for a whole budget, or writing
            // through every attempt: look again.
            Err(err @ (ReadError::WriterStalled | ReadError::Contended)) => {
                println!("reader {me}: {err}; retrying");
                continue;
            }
            Err(source) => {
                return Err(ReadFailure::Read {
                    name: name.to_owned(),
                    source,
                });
            }
        };
        if quote.closed != 0 {
            return Ok(Ending::Closed(quote));
        }
        if liveness == Liveness::Gone {
            return Ok(Ending::Gone(gone(name, quote.publisher, version, false)));
        }
        let now = Instant::now();
        if last.is_none_or(|(_, seen)| seen != version) {
            // Version 0: created, nothing written yet.
            if version != 0 && (silent || last_print.is_none_or(|at| now - at >= PRINT_EVERY)) {
                println!(
                    "reader {me}: quote #{} from publisher {}: bid {} ask {}",
                    quote.number,
                    quote.publisher,
                    cents(quote.bid),
                    cents(quote.ask)
                );
                last_print = Some(now);
            }
            (last, last_change, silent) = (Some((quote, version)), now, false);
        } else if !silent && now - last_change >= SILENT_AFTER {
            println!(
                "reader {me}: publisher {} alive but silent for {} ms; waiting",
                quote.publisher,
                SILENT_AFTER.as_millis()
            );
            silent = true;
        }
        std::thread::sleep(POLL);
    }
}

/// The `WriterGone` failure for `name`.
fn gone(name: &str, publisher: u32, version: Version, mid_write: bool) -> ReadFailure {
    ReadFailure::WriterGone {
        name: name.to_owned(),
        publisher,
        version,
        mid_write,
    }
}

/// Waits up to [`FOLLOW_WAIT`] for a live publisher at `name`: until then
/// the name is missing or still names the dead segment. `gone` if none
/// comes.
fn wait_for_successor(name: &str, gone: ReadFailure) -> Result<QuoteReader, ReadFailure> {
    let start = Instant::now();
    while start.elapsed() < FOLLOW_WAIT {
        match attach(name) {
            Ok(reader) if reader.keeper().creator_alive() != Liveness::Gone => return Ok(reader),
            // The dead publisher's segment, still at the name.
            Ok(_) => {}
            Err(ReadFailure::Open(ShmError::Named { source, .. }))
                if source.errno == Errno::NOENT => {}
            Err(err) => return Err(err),
        }
        std::thread::sleep(POLL);
    }
    Err(gone)
}

/// `cents` as `units.cc`.
fn cents(cents: u64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

// ---------------------------------------------------------------------------
// Demo
// ---------------------------------------------------------------------------

/// Why the demo failed: what a child did or did not do, or what it left.
#[derive(Debug)]
enum DemoError {
    /// A child did not do what the demo waited for (transparent).
    Child(ChildError),
    /// The segment outlived the demo.
    LeftBehind { name: String },
}

impl fmt::Display for DemoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Child(err) => fmt::Display::fmt(err, f),
            Self::LeftBehind { name } => write!(f, "{name:?} is left in /dev/shm"),
        }
    }
}

impl Error for DemoError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            Self::Child(err) => err.source(),
            Self::LeftBehind { .. } => None,
        }
    }
}

impl From<ChildError> for DemoError {
    fn from(err: ChildError) -> Self {
        Self::Child(err)
    }
}

impl Failure for DemoError {
    fn exit_code(&self) -> u8 {
        EXIT_FAILURE
    }
}

/// Starts this binary as a publisher (`publish`) or reader (`read`) of the
/// demo's segment; the child's index.
fn spawn(demo: &mut Children, mode: &str, options: &[&str]) -> Result<usize, ChildError> {
    let role = if mode == "publish" {
        "publisher"
    } else {
        "reader"
    };
    let name = demo.segment().to_owned();
    demo.spawn(role, &[&[mode, &name], options].concat())
}

/// Waits for `child` to exit as `expected` (`ok`), and says how it ended.
fn expect_exit(
    demo: &mut Children,
    child: usize,
    expected: &'static str,
    ok: impl Fn(ExitStatus) -> bool,
) -> Result<(), ChildError> {
    let status = demo.expect_exit(child, expected, ok)?;
    println!("demo: {} ended: {status}", demo.who(child));
    Ok(())
}

/// `demo`.
fn demo() -> Result<(), DemoError> {
    let name = format!("/ipcp-quote-{}", std::process::id());
    println!("demo: segment {name:?}");
    let mut demo = Children::new(name.clone(), PARENT_VAR, DEMO_WAIT);

    let first = spawn(&mut demo, "publish", &[])?;
    demo.wait_for(first, "publishing", 0)?;
    let readers = [
        spawn(&mut demo, "read", &["--follow"])?,
        spawn(&mut demo, "read", &["--follow"])?,
    ];
    for reader in readers {
        let first = demo.wait_for(reader, "quote #", 0)?;
        demo.wait_for(reader, "quote #", first + 1)?;
    }

    let mark = demo.mark();
    println!("demo: killing {} with SIGKILL", demo.who(first));
    demo.kill(first, Signal::KILL);
    expect_exit(&mut demo, first, "death by SIGKILL", |status| {
        std::os::unix::process::ExitStatusExt::signal(&status) == Some(libc::SIGKILL)
    })?;
    for reader in readers {
        demo.wait_for(reader, "WriterGone", mark)?;
    }

    println!("demo: starting a new publisher");
    let second = spawn(&mut demo, "publish", &[])?;
    demo.wait_for(second, "took over", 0)?;
    println!("demo: starting a third publisher while the second lives");
    let third = spawn(&mut demo, "publish", &[])?;
    demo.wait_for(third, "CreatorAlive", 0)?;
    expect_exit(&mut demo, third, "exit code 5 (name in use)", |status| {
        status.code() == Some(EXIT_NAME_IN_USE.into())
    })?;
    for reader in readers {
        let reattached = demo.wait_for(reader, "reattached", mark)?;
        demo.wait_for(reader, "quote #", reattached)?;
    }

    println!("demo: stopping {} with SIGTERM", demo.who(second));
    demo.kill(second, Signal::TERM);
    expect_exit(&mut demo, second, "exit code 0", |status| status.success())?;
    for reader in readers {
        demo.wait_for(reader, "closed", mark)?;
        expect_exit(&mut demo, reader, "exit code 0", |status| status.success())?;
    }
    if shm_path(&name).exists() {
        return Err(DemoError::LeftBehind { name });
    }
    println!("demo: done; nothing left in /dev/shm");
    Ok(())
}
