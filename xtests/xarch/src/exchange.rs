//! The loop both processes run: push values into its ring, pop the peer's,
//! write its seqlock, read the peer's, checking every value it receives.

use std::time::Duration;

use ipc_primitives::seqlock::{Budget, Reader, Version, Writer};
use ipc_primitives::spsc::{Consumer, PopError, Producer, PushError};

use crate::payloads::Sample;
use crate::watchdog::Watchdog;

/// How long a seqlock read may wait for a writer mid-write: far longer than
/// any preemption, so giving up means the writer is broken.
const READ_LIMIT: Duration = Duration::from_secs(10);

/// Writes at idle turns, per value sent (see `run`).
const IDLE_WRITES: u64 = 16;

/// One process's ends of the four structures.
#[derive(Debug)]
pub(crate) struct Ends<'a, Out, In, Own, Theirs> {
    /// This process's ring, which it fills.
    pub(crate) tx: Producer<'a, Out>,
    /// The peer's ring, which this process drains.
    pub(crate) rx: Consumer<'a, In>,
    /// This process's seqlock.
    pub(crate) writer: Writer<'a, Own>,
    /// The peer's seqlock.
    pub(crate) reader: Reader<'a, Theirs>,
}

/// What one process saw; every count is of values checked bit-exact.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    pub(crate) pushed: u64,
    pub(crate) popped: u64,
    pub(crate) writes: u64,
    pub(crate) reads: u64,
    /// Distinct versions among the reads.
    pub(crate) versions: u64,
    /// The version of the last read.
    last_version: u64,
}

/// Moves `messages` values each way and reads the peer's seqlock at every
/// turn, failing at the first value that is not exactly the one expected.
///
/// `peer_failed` is asked now and then while nothing moves (see
/// [`Watchdog`]): `Some(why)` ends the exchange with that error.
pub(crate) fn run<Out: Sample, In: Sample, Own: Sample, Theirs: Sample>(
    ends: Ends<'_, Out, In, Own, Theirs>,
    messages: u64,
    mut peer_failed: impl FnMut() -> Option<String>,
) -> Result<Tally, String> {
    let Ends {
        mut tx,
        mut rx,
        mut writer,
        reader,
    } = ends;
    let mut tally = Tally::default();
    let mut watchdog = Watchdog::new();
    while tally.pushed < messages || tally.popped < messages {
        let mut progress = false;
        if tally.pushed < messages {
            match tx.try_push(Out::make(tally.pushed)) {
                Ok(()) => {
                    tally.pushed += 1;
                    progress = true;
                }
                Err(PushError::Full(_)) => {}
                Err(err) => {
                    return Err(format!("push of {} #{}: {err}", Out::NAME, tally.pushed));
                }
            }
        }
        if tally.popped < messages {
            match rx.try_pop() {
                Ok(value) => {
                    check_popped(&value, tally.popped)?;
                    tally.popped += 1;
                    progress = true;
                }
                Err(PopError::Empty) => {}
                Err(err) => {
                    return Err(format!("pop of {} #{}: {err}", In::NAME, tally.popped));
                }
            }
        }
        // At every turn that moved a value, and at idle turns too while
        // they number under `IDLE_WRITES` per value, so that the reader
        // keeps meeting writes in flight while versions stay far below
        // 2^31 (the 32-bit sequence's range).
        if progress || tally.writes < IDLE_WRITES * messages {
            // Value number k is written as the (k + 1)-th write, which the
            // reader checks against the version it reads.
            writer.write(&Own::make(wide(writer.version())));
            tally.writes += 1;
        }
        check_read(&reader, &mut tally)?;
        watchdog.turn(progress, &mut peer_failed, || {
            format!(
                "pushed {}, popped {} of {messages}",
                tally.pushed, tally.popped
            )
        })?;
    }
    // Every read since the peer's first write ran beside the peer's loop, which
    // wrote at each of its pushes: a reader that saw one version only never
    // overlapped a writer, and would prove nothing.
    if tally.versions < 2 {
        return Err(format!(
            "the {} reads saw {} version(s): no read overlapped the peer's writes",
            tally.reads, tally.versions
        ));
    }
    Ok(tally)
}

/// Checks that the `index`-th value popped is value number `index`.
pub(crate) fn check_popped<T: Sample>(value: &T, index: u64) -> Result<(), String> {
    if value.is(index) {
        return Ok(());
    }
    let what = if value.is(value.index()) {
        format!(
            "a whole value, but number {}: lost or reordered",
            value.index()
        )
    } else {
        "a value that is no value the peer writes: garbled".to_owned()
    };
    Err(format!(
        "popped {} #{index}: {what}\n  got      {value:x?}\n  expected {:x?}",
        T::NAME,
        T::make(index)
    ))
}

/// Reads the peer's seqlock and checks that the value is whole and is the one
/// the version says, and that versions never go back.
fn check_read<T: Sample>(reader: &Reader<'_, T>, tally: &mut Tally) -> Result<(), String> {
    let (value, version) = reader
        .read_versioned(Budget::new(READ_LIMIT))
        .map_err(|err| format!("read of {} after {} reads: {err}", T::NAME, tally.reads))?;
    let version = wide(version);
    let whole = match version.checked_sub(1) {
        // Nothing written yet: the creator's zeroes.
        None => value.as_bytes().iter().all(|&byte| byte == 0),
        Some(index) => value.is(index),
    };
    if !whole {
        return Err(format!(
            "read of {} at version {version} (read #{}) is torn or not the value that version \
             wrote\n  got {value:x?}",
            T::NAME,
            tally.reads
        ));
    }
    if version < tally.last_version {
        return Err(format!(
            "{} went back from version {} to {version}",
            T::NAME,
            tally.last_version
        ));
    }
    if version != tally.last_version || tally.reads == 0 {
        tally.versions += 1;
    }
    tally.last_version = version;
    tally.reads += 1;
    Ok(())
}

/// A seqlock version as a `u64` (it is a `u32` on 32-bit targets).
#[allow(
    clippy::useless_conversion,
    reason = "`Version` is `u64` on 64-bit targets only"
)]
fn wide(version: Version) -> u64 {
    version.into()
}
