//! `examples/quote.rs` end to end, as a user runs it: real processes, their
//! output lines and exit codes. A reader whose publisher is `SIGKILL`ed
//! exits with `WriterGone`; a new publisher takes the dead one's name over,
//! and one started while a publisher lives is refused; a reader waits out a
//! stopped publisher; a reader given a segment that holds no quotes names it
//! and the typed error; the demo runs; nothing is left in `/dev/shm` and no
//! process is left running.
//!
//! Run: `cargo test --test quote_example`. The test builds the example
//! itself before running it (`$CARGO build --example quote`, with this
//! test's target dir, profile and features; a no-op when it is up to date),
//! so a `--test` filter never runs a missing or stale binary.
#![cfg(all(feature = "linux", target_os = "linux", not(loom), not(miri)))]

mod example_bin;

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use example_bin::{Proc, shm_path};
use ipc_primitives::linux::shm::{CreateOptions, Mode};
use ipc_primitives::seqlock::SeqLock;
use ipc_primitives::spsc::Spsc;
use rustix::process::Signal;

/// The example's payload: 32 bytes, as `[u64; 4]` (number, bid, ask, then
/// the publisher's pid and the closed flag as two `u32`s).
type QuoteLayout = [u64; 4];
/// The example's type tag for it.
const QUOTE_TAG: u64 = u64::from_be_bytes(*b"QUOTE\0v1");
/// Byte offset of a seqlock's sequence word (its `# Layout` table).
const SEQ_OFFSET: u64 = 128;

const EXIT_BAD_SEGMENT: i32 = 3;
const EXIT_WRITER_GONE: i32 = 4;
const EXIT_NAME_IN_USE: i32 = 5;

// ---------------------------------------------------------------------------
// The example binary
// ---------------------------------------------------------------------------

/// The example binary, built once per test process.
fn example() -> &'static Path {
    static EXAMPLE: OnceLock<PathBuf> = OnceLock::new();
    EXAMPLE.get_or_init(|| example_bin::build(&["quote"]).join("quote"))
}

// ---------------------------------------------------------------------------
// Processes and names
// ---------------------------------------------------------------------------

/// A segment name unique to this test process and `test`; removed on drop
/// if a failing test (or a killed publisher) left it.
struct ShmName(String);

impl ShmName {
    fn new(test: &str) -> Self {
        Self(format!("/ipcp-quote-test-{}-{test}", std::process::id()))
    }

    /// Whether the name is in `/dev/shm`.
    fn exists(&self) -> bool {
        shm_path(&self.0).exists()
    }
}

impl Drop for ShmName {
    fn drop(&mut self) {
        if self.exists() {
            let _ = ipc_primitives::linux::shm::unlink(&self.0);
        }
    }
}

/// Whether process `pid` is the example binary, running or a zombie.
fn example_runs_as(pid: u32) -> bool {
    std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|exe| exe == example())
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[test]
fn the_demo_runs_end_to_end_and_leaves_nothing_behind() {
    let mut demo = Proc::run(example(), &["demo"]);
    let output = demo.exits_with(0);
    let name = format!("/ipcp-quote-{}", demo.pid());
    for (what, count) in [
        ("WriterGone", 2),
        ("took over (its publisher was dead)", 1),
        ("CreatorAlive", 1),
        ("reattached", 2),
        ("SIGTERM: closed", 1),
        ("demo: done; nothing left in /dev/shm", 1),
    ] {
        assert_eq!(output.matches(what).count(), count, "{what}:\n{output}");
    }
    assert!(!shm_path(&name).exists(), "{name} is left behind");
    // Every child it started (they sign their lines with their pid) is gone.
    let children: Vec<u32> = output
        .lines()
        .filter_map(|line| {
            let line = line.split_once(": ")?.1;
            let (role, rest) = line.split_once(' ')?;
            matches!(role, "publisher" | "reader").then_some(())?;
            rest.split_once(':')?.0.parse().ok()
        })
        .collect();
    assert!(children.len() >= 5, "{output}");
    for pid in children {
        assert!(!example_runs_as(pid), "child {pid} is left running");
    }
}

#[test]
fn a_reader_reports_a_killed_publisher_and_a_successor_takes_the_name_over() {
    let name = ShmName::new("takeover");
    let mut first = Proc::run(example(), &["publish", &name.0]);
    first.expect(&["created", &name.0]);
    let mut reader = Proc::run(example(), &["read", &name.0]);
    reader.expect(&["quote #", &format!("from publisher {}", first.pid())]);

    first.signal(Signal::KILL);
    assert_eq!(first.finish().signal(), Some(libc::SIGKILL));
    let output = reader.exits_with(EXIT_WRITER_GONE);
    assert!(
        output.contains(&format!(
            "[WriterGone {{ name: {:?}, publisher: {}",
            name.0,
            first.pid()
        )),
        "{output}"
    );
    assert!(name.exists(), "the killed publisher's segment stays");
    // A reader that comes later says so at once, with no stale quote.
    let mut late = Proc::run(example(), &["read", &name.0]);
    let output = late.exits_with(EXIT_WRITER_GONE);
    assert!(output.contains("[WriterGone {"), "{output}");
    assert!(!output.contains("quote #"), "{output}");

    let mut second = Proc::run(example(), &["publish", &name.0]);
    second.expect(&["took over (its publisher was dead)", &name.0]);
    let mut third = Proc::run(example(), &["publish", &name.0]);
    let output = third.exits_with(EXIT_NAME_IN_USE);
    assert!(
        output.contains(&format!("[Create(CreatorAlive {{ name: {:?} }})]", name.0)),
        "{output}"
    );

    let mut reader = Proc::run(example(), &["read", &name.0]);
    reader.expect(&["quote #", &format!("from publisher {}", second.pid())]);
    second.signal(Signal::TERM);
    second.exits_with(0);
    reader.expect(&[&format!("publisher {} closed {:?}", second.pid(), name.0)]);
    reader.exits_with(0);
    assert!(!name.exists(), "the publisher left its segment");
}

#[test]
fn a_following_reader_reattaches_to_the_successor() {
    let name = ShmName::new("follow");
    let mut first = Proc::run(example(), &["publish", &name.0]);
    first.expect(&["created"]);
    let mut reader = Proc::run(example(), &["read", &name.0, "--follow"]);
    reader.expect(&["quote #"]);
    first.signal(Signal::KILL);
    first.finish();
    reader.expect(&["WriterGone", "waiting for a new publisher"]);

    let mut second = Proc::run(example(), &["publish", &name.0]);
    second.expect(&["took over"]);
    reader.expect(&["reattached", &name.0]);
    reader.expect(&["quote #", &format!("from publisher {}", second.pid())]);
    second.signal(Signal::INT);
    second.exits_with(0);
    reader.exits_with(0);
    assert!(!name.exists());
}

#[test]
fn a_reader_waits_out_a_stopped_publisher() {
    let name = ShmName::new("stopped");
    let mut publisher = Proc::run(example(), &["publish", &name.0]);
    publisher.expect(&["created"]);
    let mut reader = Proc::run(example(), &["read", &name.0]);
    reader.expect(&["quote #"]);

    publisher.signal(Signal::STOP);
    reader.expect(&["alive but silent", "waiting"]);
    publisher.signal(Signal::CONT);
    reader.expect(&["quote #"]);
    publisher.signal(Signal::TERM);
    publisher.exits_with(0);
    let output = reader.exits_with(0);
    assert!(!output.contains("WriterGone"), "{output}");
    assert!(!name.exists(), "the publisher left its segment");
}

/// This test plays the publisher: it stops mid-write (its sequence odd),
/// alive, then dies (drops its segment, which releases the life lock as a
/// crash does).
#[test]
fn a_reader_waits_out_a_stalled_write_and_reports_a_death_mid_write() {
    let name = ShmName::new("midwrite");
    let len = SeqLock::<QuoteLayout>::required_size().unwrap();
    let creator = CreateOptions::new()
        .unlink_on_drop(true)
        .create(&name.0, len)
        .unwrap();
    SeqLock::<QuoteLayout>::create(creator.region().unwrap().with_tag(QUOTE_TAG))
        .unwrap()
        .into_writer()
        .write(&[7, 10_000, 10_005, 0]);
    let mut reader = Proc::run(example(), &["read", &name.0]);
    reader.expect(&["quote #7", "bid 100.00 ask 100.05"]);

    // Mid-write: the second write's odd sequence, never completed.
    rustix::io::pwrite(&creator, &3_u64.to_ne_bytes(), SEQ_OFFSET).unwrap();
    reader.expect(&["stayed stopped mid-write", "retrying"]);
    drop(creator);
    let output = reader.exits_with(EXIT_WRITER_GONE);
    assert!(
        output.contains(&format!(
            "[WriterGone {{ name: {:?}, publisher: 0, version: 1, mid_write: true }}]",
            name.0
        )),
        "{output}"
    );
    assert!(!name.exists());
}

/// What a reader says of `name`, which holds no quotes: its exit code and
/// output.
fn read_refused(name: &str) -> String {
    let mut reader = Proc::run(example(), &["read", name]);
    reader.exits_with(EXIT_BAD_SEGMENT)
}

#[test]
fn a_reader_names_a_segment_that_holds_no_quotes_and_the_typed_error() {
    let quote_len = SeqLock::<QuoteLayout>::required_size().unwrap();
    let live = CreateOptions::new().unlink_on_drop(true);

    // Another kind of structure: a ring, of another size.
    let name = ShmName::new("ring");
    let ring_len = Spsc::<u64>::required_size(4).unwrap();
    let segment = live.create(&name.0, ring_len).unwrap();
    let _ring = Spsc::<u64>::create(segment.region().unwrap(), 4).unwrap();
    let output = read_refused(&name.0);
    assert!(
        output.contains(&format!(
            "[Open(WrongSize {{ name: {:?}, expected: Some({quote_len}), found: {ring_len} }})]",
            name.0
        )),
        "{output}"
    );

    // A seqlock of the right size, of another payload (no type tag).
    let name = ShmName::new("other");
    let segment = live.create(&name.0, quote_len).unwrap();
    SeqLock::<QuoteLayout>::create(segment.region().unwrap())
        .unwrap()
        .into_writer()
        .write(&[1, 2, 3, 4]);
    let output = read_refused(&name.0);
    assert!(
        output.contains(&format!(
            "[NotQuotes {{ name: {:?}, source: WrongTag {{",
            name.0
        )),
        "{output}"
    );

    // Garbage of the right size.
    let name = ShmName::new("garbage");
    let segment = live.create(&name.0, quote_len).unwrap();
    let garbage = vec![0xde; quote_len];
    rustix::io::pwrite(&segment, &garbage, 0).unwrap();
    let output = read_refused(&name.0);
    assert!(
        output.contains(&format!(
            "[NotQuotes {{ name: {:?}, source: WrongMagic {{ found: 3739147998 }} }}]",
            name.0
        )),
        "{output}"
    );

    // A segment others may write: they could truncate it under the reader.
    let name = ShmName::new("untrusted");
    let _segment = live
        .mode(Mode::from_raw_mode(0o666))
        .create(&name.0, quote_len)
        .unwrap();
    let output = read_refused(&name.0);
    assert!(
        output.contains(&format!("[Open(Untrusted {{ name: {:?}", name.0)),
        "{output}"
    );

    // Nothing at the name.
    let name = ShmName::new("missing");
    let output = read_refused(&name.0);
    assert!(
        output.contains(&format!("[Open(Named {{ name: {:?}", name.0)),
        "{output}"
    );

    // Not a name.
    let output = read_refused("no-slash");
    assert!(output.contains("[Open(InvalidName {"), "{output}");
}

#[test]
fn bad_arguments_print_the_usage() {
    for args in [
        &[][..],
        &["read"],
        &["publish", "/a", "/b"],
        &["read", "/a", "--x"],
    ] {
        let output = Proc::run(example(), args).exits_with(2);
        assert!(output.contains("usage: quote"), "{args:?}: {output}");
    }
}
