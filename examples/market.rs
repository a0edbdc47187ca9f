//! Market data fan-out: one publisher, many reader processes, one named
//! segment holding the latest quote per instrument (a seqlock each) and every
//! tick (a broadcast ring). Readers never slow the publisher; each reports
//! the ticks it saw and missed and the publish-to-read latency.
//!
//! `cargo run --release --example market`
//!
//! With no arguments it runs a publisher and three readers (this binary
//! again) for a few seconds and prints a summary table; then nothing is left
//! in `/dev/shm`.
//!
//! # Modes
//! - `publish --name NAME [--rate TICKS_PER_S] [--seconds S]`: creates the
//!   segment (or takes the name over from a dead publisher; refuses, exit 5,
//!   if its publisher lives) and publishes ticks for 16 instruments at the
//!   rate (default 100000/s) for `S` seconds, or until `SIGINT`/`SIGTERM`;
//!   then marks the feed closed, removes the name and exits 0. Prints the
//!   ticks published every second.
//! - `read --name NAME [--oldest] [--read-only]`: attaches and reads every
//!   tick until the publisher is gone, then prints a `result` line. It joins
//!   at the newest tick (started late, it skips the past), or with
//!   `--oldest` at the oldest tick still whole in the ring. By default it
//!   maps the segment read-write only to sleep on the ring's doorbell (its
//!   one write to shared memory is the announcement that it sleeps); with
//!   `--read-only` it maps the segment read-only, never writes, and polls
//!   every [`POLL`] instead.
//!
//! # What a reader checks
//! Every tick carries its number (its position in the ring) and a
//! `CLOCK_MONOTONIC` timestamp taken by the publisher just before it
//! publishes (one clock for every process). The reader checks that
//! - the numbers it receives follow each other, except across a
//!   `Lagged { missed }`, so that at the end `seen + missed` equals the
//!   ticks published after it joined (`end - joined`), and, if the publisher
//!   closed the feed, `end` is its final count: nothing is lost silently;
//! - the seqlock's quote of the tick's instrument is whole (its prices are
//!   those its tick number gives: never torn) and not older than the tick
//!   (the publisher writes the quote before it publishes the tick): never
//!   stale.
//!
//! # Knowing the publisher is gone
//! The publisher holds its segment's life lock while it lives (see
//! `ipc_primitives::linux::shm`, Liveness). A sleeping reader's
//! `recv_blocking_watching` returns `WaitError::PeerGone` once the lock is
//! gone and every tick is received; a polling reader asks
//! `Segment::creator_alive` whenever the ring is empty; a seqlock read
//! watches it through `Budget::watching`. The reader then reads the feed's
//! status: closed means the publisher finished (exit 0); otherwise it died
//! (exit 4).
//!
//! # Exit codes
//! 0 done; 1 any other failure; 2 usage; 3 the segment was missing or
//! refused; 4 the publisher died; 5 (publisher) the name belongs to a live
//! publisher; 6 (reader) a check failed.

use std::error::Error;
use std::fmt;
use std::process::{ExitCode, ExitStatus};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ipc_primitives::broadcast::{self, BlockingError, Broadcast, RecvError, Start};
use ipc_primitives::linux::shm::{CreateOptions, Liveness, OpenOptions, Segment, ShmError};
use ipc_primitives::linux::wake::{SpinThenBlock, WaitError};
use ipc_primitives::parts::Plan;
use ipc_primitives::seqlock::{self, Budget, ReadError, SeqLock};
use ipc_primitives::{AttachError, Kind, ReadRegion};
use rustix::io::Errno;
use rustix::time::{ClockId, clock_gettime};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

#[path = "support/chain.rs"]
mod chain;
#[path = "support/children.rs"]
mod children;
#[path = "support/options.rs"]
mod options;
#[path = "support/parent.rs"]
mod parent;
#[path = "support/shm_path.rs"]
mod shm_path;
#[path = "support/stop_signals.rs"]
mod stop_signals;

use chain::chain;
use children::{ChildError, Children};
use options::{OptionError, Options};
use parent::die_with_parent;
use shm_path::shm_path;
use stop_signals::StopSignals;

/// One tick: 40 bytes, no padding.
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
struct Tick {
    /// Ticks published before this one: its position in the ring.
    number: u64,
    /// `CLOCK_MONOTONIC` when it was published, in nanoseconds.
    sent_ns: u64,
    /// Best bid and ask, in cents: [`price`] of the instrument and number.
    bid: u64,
    ask: u64,
    /// Below [`INSTRUMENTS`].
    instrument: u32,
    unused: u32,
}

/// The latest quote of one instrument, as its seqlock holds it: 32 bytes.
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
struct Quote {
    /// The number of the tick that set it.
    tick: u64,
    bid: u64,
    ask: u64,
    instrument: u32,
    unused: u32,
}

/// The feed's status seqlock: ticks published, and whether the publisher
/// closed the feed (it writes that last, before it removes the name).
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
struct Status {
    ticks: u64,
    closed: u64,
}

/// Type tags: a reader refuses a segment whose parts hold other payloads.
const TICK_TAG: u64 = u64::from_be_bytes(*b"MKTTICK1");
const QUOTE_TAG: u64 = u64::from_be_bytes(*b"MKTQUOT1");
const STATUS_TAG: u64 = u64::from_be_bytes(*b"MKTSTAT1");

/// Instruments quoted.
const INSTRUMENTS: usize = 16;
/// Parts of the segment: the ring, the status, a quote per instrument.
const PARTS: usize = 2 + INSTRUMENTS;
/// Slots of the tick ring: at 100000 ticks/s, 40 ms of ticks.
const CAPACITY: u32 = 4096;
/// The publisher publishes the ticks due every `STEP`, then wakes sleeping
/// readers once (one `futex` call per step at most, none if none sleeps).
const STEP: Duration = Duration::from_millis(1);
/// How often publisher and readers print progress.
const REPORT_EVERY: Duration = Duration::from_secs(1);
/// How often a `--read-only` reader looks at an empty ring.
const POLL: Duration = Duration::from_millis(1);
/// How long a sleeping reader sleeps before it says the publisher is silent.
const SILENT_AFTER: Duration = Duration::from_secs(1);
/// How long a reader waits for the segment to appear and be initialised.
const ATTACH_WAIT: Duration = Duration::from_secs(5);
/// How long the default mode waits for any one thing a child should do.
const CHILD_WAIT: Duration = Duration::from_secs(60);
/// The default mode's run.
const RUN_SECONDS: &str = "3";
/// Set by the default mode on its children: the pid they must die with.
const PARENT_VAR: &str = "IPCP_MARKET_PARENT";

const EXIT_FAILURE: u8 = 1;
const EXIT_USAGE: u8 = 2;
const EXIT_BAD_SEGMENT: u8 = 3;
const EXIT_PUBLISHER_GONE: u8 = 4;
const EXIT_NAME_IN_USE: u8 = 5;
const EXIT_CHECK_FAILED: u8 = 6;

const USAGE: &str = "usage: market [publish --name NAME [--rate TICKS_PER_S] [--seconds S] \
                     | read --name NAME [--oldest] [--read-only]]";

type BoxError = Box<dyn Error + Send + Sync>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let who = match args.first() {
        Some(&"publish") => format!("publisher {}", std::process::id()),
        Some(&"read") => format!("reader {}", std::process::id()),
        _ => "market".to_owned(),
    };
    let result = follow_parent().and_then(|()| match args[..] {
        [] => run_all(),
        ["publish", ref options @ ..] => publish(options),
        ["read", ref options @ ..] => read(options),
        _ => Err(Failure::new(EXIT_USAGE, USAGE)),
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("{who}: error: {}", chain(&err));
            ExitCode::from(err.code)
        }
    }
}

// ---------------------------------------------------------------------------
// Shared by every mode
// ---------------------------------------------------------------------------

/// Why a process failed: what it was doing (printed), the exit code, and
/// the error that caused it (its `source`, not printed by `Display`).
#[derive(Debug)]
struct Failure {
    code: u8,
    context: String,
    source: Option<BoxError>,
}

impl Failure {
    fn new(code: u8, context: impl Into<String>) -> Self {
        Self {
            code,
            context: context.into(),
            source: None,
        }
    }

    /// A `map_err` adapter: `context`, caused by the error it is given.
    fn caused<E: Into<BoxError>>(code: u8, context: impl Into<String>) -> impl FnOnce(E) -> Self {
        let context = context.into();
        move |source| Self {
            code,
            context,
            source: Some(source.into()),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.context)
    }
}

impl Error for Failure {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.source
            .as_deref()
            .map(|err| err as &(dyn Error + 'static))
    }
}

/// A usage error: what is wrong, then the usage.
fn usage(err: OptionError) -> Failure {
    Failure::new(EXIT_USAGE, format!("{err}; {USAGE}"))
}

/// Under the default mode: dies with the parent, so that no child outlives
/// it (a publisher then removes its segment).
fn follow_parent() -> Result<(), Failure> {
    let alive = die_with_parent(PARENT_VAR)
        .map_err(Failure::caused(EXIT_FAILURE, "cannot follow the parent"))?;
    if !alive {
        return Err(Failure::new(EXIT_FAILURE, "the parent process is gone"));
    }
    Ok(())
}

/// The segment's parts, in order: the tick ring, the status, the quotes.
fn plan() -> Plan<PARTS> {
    let mut plan = Plan::new();
    let ring = Broadcast::<Tick>::required_size(CAPACITY).expect("a 160 KiB ring fits");
    let status = SeqLock::<Status>::required_size().expect("a seqlock fits");
    let quote = SeqLock::<Quote>::required_size().expect("a seqlock fits");
    let parts = [(Kind::Broadcast, ring), (Kind::SeqLock, status)]
        .into_iter()
        .chain([(Kind::SeqLock, quote); INSTRUMENTS]);
    for (kind, len) in parts {
        plan.add(kind, len)
            .expect("PARTS parts of at most 160 KiB fit");
    }
    plan
}

/// The prices of `instrument` at tick `number`: a walk, 1 to 5 cents wide.
fn price(instrument: u32, number: u64) -> (u64, u64) {
    let bid = 10_000 + u64::from(instrument) * 1_000 + number.wrapping_mul(7919) % 200;
    (bid, bid + 1 + u64::from(instrument % 5))
}

/// `CLOCK_MONOTONIC` in nanoseconds: the same clock in every process.
fn now_ns() -> u64 {
    let now = clock_gettime(ClockId::Monotonic);
    // Monotonic time is never negative.
    now.tv_sec.unsigned_abs() * 1_000_000_000 + now.tv_nsec.unsigned_abs()
}

// ---------------------------------------------------------------------------
// Publisher
// ---------------------------------------------------------------------------

/// `publish --name NAME [--rate R] [--seconds S]`.
fn publish(options: &[&str]) -> Result<(), Failure> {
    let me = std::process::id();
    let options =
        Options::parse(options, &["--name", "--rate", "--seconds"], &[]).map_err(usage)?;
    let name = options
        .value("--name")
        .ok_or_else(|| Failure::new(EXIT_USAGE, USAGE))?;
    let rate: f64 = options
        .parsed("--rate")
        .map_err(usage)?
        .unwrap_or(100_000.0);
    let seconds = options
        .parsed("--seconds")
        .map_err(usage)?
        .unwrap_or(f64::INFINITY);
    if !(rate > 0.0 && seconds > 0.0) {
        let positive = format!("--rate and --seconds must be positive; {USAGE}");
        return Err(Failure::new(EXIT_USAGE, positive));
    }
    // Blocked before anything else, so that a signal sent from now on waits
    // for `next` instead of killing the process with the segment in place.
    let stop = StopSignals::block().map_err(Failure::caused(EXIT_FAILURE, "signals"))?;
    let plan = plan();
    let size = plan.size().expect("the plan fits in memory");
    let segment = CreateOptions::new()
        .unlink_on_drop(true)
        .take_over(true)
        .create(name, size)
        .map_err(|err| {
            let code = match err {
                ShmError::CreatorAlive { .. } => EXIT_NAME_IN_USE,
                _ => EXIT_FAILURE,
            };
            Failure::caused(code, "cannot create the segment")(err)
        })?;
    let lay_out = format!("cannot lay out {name:?}");
    let mut parts = plan
        .create(
            segment
                .region()
                .map_err(Failure::caused(EXIT_FAILURE, &lay_out))?,
        )
        .map_err(Failure::caused(EXIT_FAILURE, &lay_out))?;
    let mut part = || parts.next().expect("each part was planned");
    let mut ticks = Broadcast::<Tick>::create(part().with_tag(TICK_TAG), CAPACITY)
        .map_err(Failure::caused(EXIT_FAILURE, &lay_out))?
        .into_writer();
    let mut status = SeqLock::<Status>::create(part().with_tag(STATUS_TAG))
        .map_err(Failure::caused(EXIT_FAILURE, &lay_out))?
        .into_writer();
    let mut quotes = (0..INSTRUMENTS)
        .map(|_| SeqLock::<Quote>::create(part().with_tag(QUOTE_TAG)).map(SeqLock::into_writer))
        .collect::<Result<Vec<_>, _>>()
        .map_err(Failure::caused(EXIT_FAILURE, &lay_out))?;
    println!(
        "publisher {me}: {name:?} created: {INSTRUMENTS} instruments, a ring of {CAPACITY} \
         ticks; publishing {rate} ticks/s"
    );

    let start = Instant::now();
    let (mut next, mut report) = (start, start + REPORT_EVERY);
    let (mut published, mut due) = (0u64, 0.0f64);
    let why = loop {
        let now = Instant::now();
        if now.duration_since(start).as_secs_f64() >= seconds {
            break "time up";
        }
        // The ticks of one step (a fraction carried over); after a stop
        // (SIGSTOP, a long preemption) no burst: `next` below restarts.
        due += rate * STEP.as_secs_f64();
        for _ in 0..due as u64 {
            // A scattered instrument per tick: `published * φ`, top 4 bits.
            let instrument = (published.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 60) as u32;
            let (bid, ask) = price(instrument, published);
            // The quote first: a reader that receives the tick then finds a
            // quote at least as new.
            quotes[instrument as usize].write(&Quote {
                tick: published,
                bid,
                ask,
                instrument,
                unused: 0,
            });
            ticks.publish(&Tick {
                number: published,
                sent_ns: now_ns(),
                bid,
                ask,
                instrument,
                unused: 0,
            });
            published += 1;
        }
        due = due.fract();
        ticks
            .notify()
            .map_err(Failure::caused(EXIT_FAILURE, "cannot wake readers"))?;
        status.write(&Status {
            ticks: published,
            closed: 0,
        });
        if now >= report {
            println!("publisher {me}: {published} ticks published");
            // After a stop, one line, not one per second missed.
            report = now + REPORT_EVERY;
        }
        next = (next + STEP).max(Instant::now());
        let signal = stop
            .next(next.saturating_duration_since(Instant::now()))
            .map_err(Failure::caused(EXIT_FAILURE, "signals"))?;
        if let Some(signal) = signal {
            break signal;
        }
    };
    status.write(&Status {
        ticks: published,
        closed: 1,
    });
    let seconds = start.elapsed().as_secs_f64();
    // Dropping the segment (the writers' last use is above) removes the
    // name, then releases the life lock: readers see the publisher gone.
    drop(segment);
    println!(
        "publisher {me}: {why}: published {published} ticks in {seconds:.1} s; closed and \
         removed {name:?}"
    );
    Ok(())
}

// ---------------------------------------------------------------------------
// Reader
// ---------------------------------------------------------------------------

/// The handles keep the segment mapped (each holds an `Arc` of it).
type Keeper = Arc<Segment>;

/// What a reader reads: every tick, the status, the latest quotes.
struct Feed {
    ticks: broadcast::Reader<'static, Tick, Keeper>,
    status: seqlock::Reader<'static, Status, Keeper>,
    quotes: Vec<seqlock::Reader<'static, Quote, Keeper>>,
}

/// Opens `name` and attaches, retrying for [`ATTACH_WAIT`] while the name is
/// missing or its publisher has not laid it out yet.
fn attach(name: &str, read_only: bool, start: Start) -> Result<Feed, Failure> {
    let deadline = Instant::now() + ATTACH_WAIT;
    loop {
        let open = OpenOptions::new()
            .read_only(read_only)
            .len(plan().size().expect("the plan fits in memory"))
            .open(name);
        // Whether to try again, and the failure to report if not.
        let (early, failure) = match open.map(|segment| attach_parts(segment, read_only, start)) {
            Ok(Ok(feed)) => return Ok(feed),
            Ok(Err(err)) => (
                err == AttachError::NotInitialized,
                Failure::caused(EXIT_BAD_SEGMENT, format!("{name:?} holds no market feed"))(err),
            ),
            Err(err) => (
                matches!(&err, ShmError::Named { source, .. } if source.errno == Errno::NOENT),
                Failure::caused(EXIT_BAD_SEGMENT, "cannot open the feed")(err),
            ),
        };
        if !early || Instant::now() >= deadline {
            return Err(failure);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Validates the segment's directory and attaches to every part: read-only,
/// or read-write for a ring reader that may sleep.
fn attach_parts(segment: Segment, read_only: bool, start: Start) -> Result<Feed, AttachError> {
    let plan = plan();
    let (ticks, mut rest): (_, Box<dyn Iterator<Item = ReadRegion<'static, Keeper>>>) = if read_only
    {
        let mut parts = plan.attach_read(segment.into_read_region())?;
        let ring = parts.next().expect("planned").with_tag(TICK_TAG);
        (Broadcast::attach_reader(ring, start)?, Box::new(parts))
    } else {
        let region = segment.into_region().expect("opened read-write");
        let mut parts = plan.attach(region)?;
        let ring = parts.next().expect("planned").with_tag(TICK_TAG);
        let reader = Broadcast::attach(ring)?.into_reader(start);
        (reader, Box::new(parts.map(ReadRegion::from)))
    };
    let status = SeqLock::attach_reader(rest.next().expect("planned").with_tag(STATUS_TAG))?;
    let quotes = rest
        .map(|part| SeqLock::attach_reader(part.with_tag(QUOTE_TAG)))
        .collect::<Result<_, _>>()?;
    Ok(Feed {
        ticks,
        status,
        quotes,
    })
}

/// What a reader got from the ring.
enum Next {
    Tick(Tick),
    Lagged(u64),
    /// Nothing for [`SILENT_AFTER`], the publisher alive.
    Silent,
    /// The publisher is gone and every tick it published was received.
    Gone,
}

/// Receives through the doorbell: sleeps while the ring is empty.
fn sleep_for_next(feed: &mut Feed, segment: &Segment) -> Result<Next, BlockingError<WaitError>> {
    let wait = SpinThenBlock::default();
    match feed
        .ticks
        .recv_blocking_watching(segment, wait, Some(SILENT_AFTER))
    {
        Ok(tick) => Ok(Next::Tick(tick)),
        Err(BlockingError::Lagged { missed }) => Ok(Next::Lagged(missed)),
        Err(BlockingError::Sleep(WaitError::TimedOut)) => Ok(Next::Silent),
        Err(BlockingError::Sleep(WaitError::PeerGone)) => Ok(Next::Gone),
        Err(err) => Err(err),
    }
}

/// Receives on a read-only mapping: polls every [`POLL`] while the ring is
/// empty, asking then whether the publisher lives.
fn poll_for_next(feed: &mut Feed, segment: &Segment) -> Result<Next, RecvError> {
    let since = Instant::now();
    loop {
        // Asked before the look: a publisher's ticks all come before its
        // lock goes, so an empty ring after `Gone` stays empty.
        let liveness = segment.creator_alive();
        match feed.ticks.try_recv() {
            Ok(tick) => return Ok(Next::Tick(tick)),
            Err(RecvError::Lagged { missed }) => return Ok(Next::Lagged(missed)),
            Err(RecvError::Empty) if liveness == Liveness::Gone => return Ok(Next::Gone),
            Err(RecvError::Empty) if since.elapsed() >= SILENT_AFTER => return Ok(Next::Silent),
            Err(RecvError::Empty) => std::thread::sleep(POLL),
            Err(err) => return Err(err),
        }
    }
}

/// What a reader counted.
#[derive(Default)]
struct Counts {
    seen: u64,
    missed: u64,
    /// Ticks whose number was not the one due (never, unless the ring is
    /// broken): a silent loss or a duplicate.
    out_of_order: u64,
    /// Ticks or quotes whose prices are not those their number gives.
    torn: u64,
    /// Quotes older than a tick of their instrument already received.
    stale: u64,
    /// Quotes not checked: the publisher rewrote the quote during every
    /// attempt for a second ([`ReadError::Contended`]), or was stopped
    /// mid-write ([`ReadError::WriterStalled`]).
    unchecked: u64,
    latency: Histogram,
}

/// `read --name NAME [--oldest] [--read-only]`.
fn read(options: &[&str]) -> Result<(), Failure> {
    let me = std::process::id();
    let options =
        Options::parse(options, &["--name"], &["--oldest", "--read-only"]).map_err(usage)?;
    let name = options
        .value("--name")
        .ok_or_else(|| Failure::new(EXIT_USAGE, USAGE))?;
    let (start, joined_as) = if options.has("--oldest") {
        (Start::Oldest, "oldest")
    } else {
        (Start::Newest, "newest")
    };
    let read_only = options.has("--read-only");
    let mut feed = attach(name, read_only, start)?;
    let segment = Arc::clone(feed.ticks.keeper());
    let joined = feed.ticks.position();
    let how = if read_only {
        "read-only, polls"
    } else {
        "sleeps on the doorbell"
    };
    println!(
        "reader {me}: joined {name:?} at tick {joined} ({joined_as}; {} published; {how})",
        feed.ticks.published()
    );
    let mut counts = Counts::default();
    let mut report = Instant::now() + REPORT_EVERY;
    let (mut silent, mut died_mid_write) = (false, false);
    loop {
        let due = feed.ticks.position();
        let next = if read_only {
            poll_for_next(&mut feed, &segment).map_err(BoxError::from)
        } else {
            sleep_for_next(&mut feed, &segment).map_err(BoxError::from)
        };
        let next = next.map_err(Failure::caused(EXIT_FAILURE, format!("reading {name:?}")))?;
        match next {
            Next::Tick(tick) => {
                if check(&mut counts, &feed, &segment, &tick, due) == Err(ReadError::WriterGone) {
                    died_mid_write = true;
                    break;
                }
                silent = false;
            }
            Next::Lagged(missed) => counts.missed += missed,
            Next::Silent if !silent => {
                println!("reader {me}: publisher alive but silent; waiting");
                silent = true;
            }
            Next::Silent => {}
            Next::Gone => break,
        }
        let now = Instant::now();
        if now >= report {
            println!(
                "reader {me}: {} seen, {} missed",
                counts.seen, counts.missed
            );
            report = now + REPORT_EVERY;
        }
    }
    finish(&feed, &segment, &counts, joined, died_mid_write)
}

/// Counts `tick` (the one at position `due`) and checks it and its
/// instrument's quote. `Err(WriterGone)` if the publisher died mid-write.
fn check(
    counts: &mut Counts,
    feed: &Feed,
    segment: &Segment,
    tick: &Tick,
    due: u32,
) -> Result<(), ReadError> {
    let received_ns = now_ns();
    counts.seen += 1;
    counts
        .latency
        .record(received_ns.saturating_sub(tick.sent_ns));
    // Positions are `u32` and wrap; numbers are `u64`.
    if tick.number as u32 != due {
        counts.out_of_order += 1;
    }
    let Some(quotes) = feed.quotes.get(tick.instrument as usize) else {
        counts.torn += 1;
        return Ok(());
    };
    if (tick.bid, tick.ask) != price(tick.instrument, tick.number) {
        counts.torn += 1;
    }
    let alive = || segment.creator_alive() != Liveness::Gone;
    match quotes.read_with(Budget::default().watching(alive)) {
        Ok(quote) => {
            if quote.instrument != tick.instrument
                || (quote.bid, quote.ask) != price(quote.instrument, quote.tick)
            {
                counts.torn += 1;
            } else if quote.tick < tick.number {
                counts.stale += 1;
            }
            Ok(())
        }
        Err(ReadError::WriterGone) => Err(ReadError::WriterGone),
        Err(_) => {
            counts.unchecked += 1;
            Ok(())
        }
    }
}

/// Prints the reader's result and judges it: checks passed and the
/// publisher closed the feed (exit 0), checks failed (6), or the publisher
/// died (4).
fn finish(
    feed: &Feed,
    segment: &Segment,
    counts: &Counts,
    joined: u32,
    died_mid_write: bool,
) -> Result<(), Failure> {
    let me = std::process::id();
    let end = feed.ticks.position();
    // The publisher's last status is whole (it is gone: nobody writes it).
    let status = feed.status.read_with(Budget::default()).ok();
    let closed = !died_mid_write && status.is_some_and(|status| status.closed != 0);
    let since_joined = u64::from(end.wrapping_sub(joined));
    let [p50, p99, p999] = [0.5, 0.99, 0.999].map(|q| counts.latency.quantile(q));
    println!(
        "reader {me}: result seen={} missed={} joined={joined} end={end} published={} \
         torn={} stale={} out_of_order={} unchecked={} p50_ns={p50} p99_ns={p99} \
         p999_ns={p999} max_ns={} closed={closed}",
        counts.seen,
        counts.missed,
        status.map_or(0, |status| status.ticks),
        counts.torn,
        counts.stale,
        counts.out_of_order,
        counts.unchecked,
        counts.latency.max,
    );
    let mut broken = Vec::new();
    if counts.seen + counts.missed != since_joined {
        broken.push(format!(
            "seen + missed = {} but {since_joined} ticks were published since it joined",
            counts.seen + counts.missed
        ));
    }
    if closed && status.is_some_and(|status| status.ticks as u32 != end) {
        broken.push("the feed closed with ticks this reader never reached".to_owned());
    }
    for (count, what) in [
        (counts.torn, "torn"),
        (counts.stale, "stale"),
        (counts.out_of_order, "out of order"),
    ] {
        if count > 0 {
            broken.push(format!("{count} ticks or quotes {what}"));
        }
    }
    if !broken.is_empty() {
        return Err(Failure::new(EXIT_CHECK_FAILED, broken.join("; ")));
    }
    let publisher = segment.creator_alive();
    if closed {
        println!("reader {me}: the publisher closed the feed; done");
        Ok(())
    } else {
        Err(Failure::new(
            EXIT_PUBLISHER_GONE,
            format!(
                "the publisher died ({}; its segment's lock is {publisher:?}) after tick {end}",
                if died_mid_write {
                    "mid-write"
                } else {
                    "between writes"
                }
            ),
        ))
    }
}

/// Latencies in nanoseconds, in log-linear buckets: 16 per power of two
/// (within 6.25%), exact below 16 ns.
struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            counts: vec![0; 16 * 61],
            total: 0,
            max: 0,
        }
    }
}

impl Histogram {
    fn record(&mut self, value: u64) {
        let bucket = if value < 16 {
            value as usize
        } else {
            let log = 63 - value.leading_zeros();
            ((log - 3) * 16) as usize + ((value >> (log - 4)) & 15) as usize
        };
        self.counts[bucket] += 1;
        self.total += 1;
        self.max = self.max.max(value);
    }

    /// The `q` quantile: the upper end of its bucket (0 if empty).
    fn quantile(&self, q: f64) -> u64 {
        let rank = (q * self.total as f64).ceil().max(1.0) as u64;
        let mut below = 0;
        for (bucket, &count) in self.counts.iter().enumerate() {
            below += count;
            if below >= rank {
                if bucket < 16 {
                    return bucket as u64;
                }
                let (log, sub) = (bucket as u64 / 16 + 3, bucket as u64 % 16);
                let upper = ((16 + sub + 1) << (log - 4)) - 1;
                return upper.min(self.max);
            }
        }
        0
    }
}

// ---------------------------------------------------------------------------
// Default mode: a publisher, three readers, a summary
// ---------------------------------------------------------------------------

impl From<ChildError> for Failure {
    fn from(err: ChildError) -> Self {
        Failure::caused(EXIT_FAILURE, "a child failed")(err)
    }
}

/// Starts this binary with `args` on the segment, as `role`; its index.
fn spawn(children: &mut Children, role: &str, args: &[&str]) -> Result<usize, ChildError> {
    let name = children.segment().to_owned();
    children.spawn(role, &[args, &["--name", &name]].concat())
}

/// No arguments: a publisher for [`RUN_SECONDS`], two readers from the
/// start (one sleeping, one read-only), one started a second late at the
/// oldest tick; then a table of what each saw.
fn run_all() -> Result<(), Failure> {
    let name = format!("/ipcp-market-{}", std::process::id());
    let mut children = Children::new(name, PARENT_VAR, CHILD_WAIT);
    let publisher = spawn(
        &mut children,
        "publisher",
        &["publish", "--seconds", RUN_SECONDS],
    )?;
    children.wait_for(publisher, "publishing", 0)?;
    let mut readers = vec![
        (spawn(&mut children, "reader", &["read"])?, "newest, sleeps"),
        (
            spawn(&mut children, "reader", &["read", "--read-only"])?,
            "newest, read-only, polls",
        ),
    ];
    children.wait_for(publisher, "ticks published", 0)?;
    readers.push((
        spawn(&mut children, "reader", &["read", "--oldest"])?,
        "late, oldest, sleeps",
    ));
    // Each child's lines are kept, so the publisher's last line and each
    // reader's result may come in any order.
    let total = children.wait_for(publisher, " ticks in ", 0)?;
    let total = children.line(total).to_owned();
    let mut results = Vec::new();
    for &(reader, _) in &readers {
        let result = children.wait_for(reader, " result ", 0)?;
        results.push(children.line(result).to_owned());
    }
    let exit_0 = |status: ExitStatus| status.success();
    children.expect_exit(publisher, "exit code 0", exit_0)?;
    for &(reader, _) in &readers {
        children.expect_exit(reader, "exit code 0", exit_0)?;
    }
    println!();
    println!("market: {total}");
    println!(
        "{:<26} {:>10} {:>10} {:>8} {:>8} {:>8} {:>9} {:>6}",
        "reader", "joined at", "seen", "missed", "p50 us", "p99 us", "p99.9 us", "torn"
    );
    for ((_, how), line) in readers.iter().zip(results) {
        let field = |key: &str| {
            line.split_whitespace()
                .find_map(|word| word.strip_prefix(key)?.strip_prefix('='))
                .unwrap_or("?")
                .to_owned()
        };
        let micros = |key: &str| {
            field(key)
                .parse::<f64>()
                .map_or("?".to_owned(), |ns| format!("{:.1}", ns / 1000.0))
        };
        println!(
            "{how:<26} {:>10} {:>10} {:>8} {:>8} {:>8} {:>9} {:>6}",
            field("joined"),
            field("seen"),
            field("missed"),
            micros("p50_ns"),
            micros("p99_ns"),
            micros("p999_ns"),
            field("torn"),
        );
    }
    // Asked before `children` drops (which removes what a failure left).
    if shm_path(children.segment()).exists() {
        let left = format!("the publisher left {:?} in /dev/shm", children.segment());
        return Err(Failure::new(EXIT_FAILURE, left));
    }
    println!("market: a polling reader's latency includes its {POLL:?} poll period; one that");
    println!("market: joins at the oldest tick starts a ring behind, and its latency counts that");
    println!("market: backlog. Every reader saw every tick after it joined or was told what it");
    println!("market: missed (Lagged); no quote torn or stale; nothing left in /dev/shm");
    Ok(())
}
