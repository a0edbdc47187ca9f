//! The broadcast loop both processes run: publish values into its ring,
//! receive the peer's, then lap the peer's reader on purpose and check that
//! its count of what it missed is exact.
//!
//! A broadcast writer never waits for readers, so flow control comes from
//! the values themselves: a side publishes its value `n` only once it has
//! received the peer's value `n - WINDOW`. The peer published that one only
//! after receiving this side's `n - 2 * WINDOW`, so no reader is ever more
//! than `2 * WINDOW` behind, less than either ring keeps whole.

use ipc_primitives::broadcast::{Reader, RecvError, Writer};

use crate::exchange::check_popped;
use crate::payloads::Sample;
use crate::watchdog::Watchdog;

/// How far a side publishes ahead of what it has received.
const WINDOW: u64 = 20;

/// Values a reader takes at most per `recv_slice`.
const BATCH: usize = 5;

/// What one side checked.
#[derive(Debug)]
pub(crate) struct Tally {
    /// Values received one by one (`try_recv`) and in batches (`recv_slice`).
    pub(crate) one_by_one: u64,
    pub(crate) in_batches: u64,
    /// The lap at the end: messages the reader was told it missed, then
    /// received whole, of the `capacity + LAP_EXTRA` published at once.
    pub(crate) missed: u64,
    pub(crate) after_lap: u64,
}

/// Values published at once at the end, past the capacity: the reader must
/// be lapped.
pub(crate) const LAP_EXTRA: u64 = 10;

/// Moves `messages` values each way through the two broadcast rings, then
/// a marker, then `capacity + LAP_EXTRA` more values at once; once the
/// peer's are out too, checks the lap its reader reports: one `Lagged`
/// whose count and the values received after it add up to what was
/// published, at least `retained()` of them received, each the right one.
pub(crate) fn run<Out: Sample, In: Sample>(
    mut tx: Writer<'_, Out>,
    mut rx: Reader<'_, In>,
    messages: u64,
    mut peer_failed: impl FnMut() -> Option<String>,
) -> Result<Tally, String> {
    if 2 * WINDOW >= tx.retained().min(rx.retained()) as u64 {
        return Err("the window must stay below what the rings keep whole".into());
    }
    let mut tally = Tally {
        one_by_one: 0,
        in_batches: 0,
        missed: 0,
        after_lap: 0,
    };
    let mut published = 0;
    let mut received = 0;
    let mut batch = [In::make(0); BATCH];
    let mut watchdog = Watchdog::new();
    let mut turn = 0_u64;
    while published < messages || received < messages {
        let mut progress = false;
        if published < messages && published < received + WINDOW {
            tx.publish(&Out::make(published));
            published += 1;
            progress = true;
        }
        if received < messages {
            // Alternate the two ways in, so both protocols take both.
            turn += 1;
            let got = if turn.is_multiple_of(2) {
                rx.try_recv().map(|value| {
                    batch[0] = value;
                    tally.one_by_one += 1;
                    1
                })
            } else {
                let want = BATCH.min((messages - received) as usize);
                rx.recv_slice(&mut batch[..want]).inspect(|&count| {
                    tally.in_batches += count as u64;
                })
            };
            match got {
                Ok(count) => {
                    for value in &batch[..count] {
                        check_popped(value, received)?;
                        received += 1;
                    }
                    progress = true;
                }
                Err(RecvError::Empty) => {}
                Err(err) => {
                    return Err(format!("broadcast of {} at #{received}: {err}", In::NAME));
                }
            }
        }
        watchdog.turn(progress, &mut peer_failed, || {
            format!("broadcast: published {published}, received {received}")
        })?;
    }
    // A marker past the last value says this side received them all: the
    // peer laps this side's reader only once it sees the marker published.
    tx.publish(&Out::make(messages));
    wait_published(&rx, messages + 1, &mut peer_failed)?;
    // The peer has received every value: lap its reader, which stopped
    // reading, and be lapped (the peer's marker included).
    let burst = rx.capacity() as u64 + LAP_EXTRA;
    for index in messages + 1..messages + 1 + burst {
        tx.publish(&Out::make(index));
    }
    wait_published(&rx, messages + 1 + burst, &mut peer_failed)?;
    let burst = burst + 1;
    let mut next = messages;
    loop {
        match rx.try_recv() {
            Ok(value) => {
                check_popped(&value, next)?;
                next += 1;
                tally.after_lap += 1;
            }
            Err(RecvError::Lagged { missed }) if tally.missed == 0 && tally.after_lap == 0 => {
                tally.missed = missed;
                next += missed;
            }
            Err(RecvError::Empty) => break,
            Err(err) => return Err(format!("broadcast of {} after the lap: {err}", In::NAME)),
        }
    }
    let whole = rx.retained() as u64;
    if tally.missed == 0 || tally.missed + tally.after_lap != burst || tally.after_lap < whole {
        return Err(format!(
            "broadcast of {}: lapped by {burst}, told of {} missed and received {} after \
             (at least {whole} must be whole)",
            In::NAME,
            tally.missed,
            tally.after_lap
        ));
    }
    Ok(tally)
}

/// Waits until the peer has published `count` values in all.
fn wait_published<In: Sample>(
    rx: &Reader<'_, In>,
    count: u64,
    peer_failed: &mut impl FnMut() -> Option<String>,
) -> Result<(), String> {
    let mut watchdog = Watchdog::new();
    while u64::from(rx.published()) < count {
        watchdog.turn(false, peer_failed, || {
            format!("broadcast: waiting for the peer's value #{}", count - 1)
        })?;
    }
    Ok(())
}
