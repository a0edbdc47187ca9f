//! Fan-in across processes: the peer claims lanes of the creator's lane set
//! and fills them with records; the creator's consumer drains them,
//! checking each lane's records in order, and frees the lanes once the peer
//! has released them.

use ipc_primitives::lanes::{Delivery, LaneState, Lanes, LanesConsumer, PopError};

use crate::records::{Checker, MAX_RECORD, RING_WORDS, Sender, Stream};
use crate::watchdog::Watchdog;

/// Lanes in the set.
pub(crate) const LANES: usize = 4;

/// Lanes the peer claims, the first ones: the consumer scans the others
/// too, and must find nothing there.
pub(crate) const CLAIMED: usize = 2;

/// Records through each claimed lane when `records` cross each way through
/// the record rings: as many through the lanes in all.
pub(crate) const fn per_lane(records: u64) -> u64 {
    records / CLAIMED as u64
}

/// Checks that the lane set has the geometry both processes expect.
fn check_shape(lanes: usize, words: usize) -> Result<(), String> {
    if (lanes, words) == (LANES, RING_WORDS as usize) {
        Ok(())
    } else {
        Err(format!(
            "lane set of {lanes} lanes of {words} words, {LANES} of {RING_WORDS} expected"
        ))
    }
}

/// Claims [`CLAIMED`] lanes and sends `per_lane` records through each, a
/// record to each lane in turn, then releases them; returns the lanes.
///
/// `creator_gone` is asked now and then while nothing moves (see
/// [`Watchdog`]): `Some(why)` ends the loop with that error.
pub(crate) fn produce(
    lanes: &Lanes<'_>,
    per_lane: u64,
    mut creator_gone: impl FnMut() -> Option<String>,
) -> Result<[usize; CLAIMED], String> {
    check_shape(lanes.lanes(), lanes.capacity())?;
    let mut producers = Vec::with_capacity(CLAIMED);
    for _ in 0..CLAIMED {
        let producer = lanes.claim().ok_or("no free lane to claim")?;
        producers.push((Sender::new(Stream::Lane(producer.lane())), producer));
    }
    let mut watchdog = Watchdog::new();
    while producers.iter().any(|(sender, _)| sender.sent() < per_lane) {
        let mut progress = false;
        for (sender, producer) in &mut producers {
            if sender.sent() < per_lane {
                progress |= sender.try_send(producer)?;
            }
        }
        watchdog.turn(progress, &mut creator_gone, || {
            let sent: Vec<_> = producers.iter().map(|(sender, _)| sender.sent()).collect();
            format!("sent {sent:?} of {per_lane} records per lane")
        })?;
    }
    let claimed = core::array::from_fn(|k| producers[k].1.lane());
    // Released: the consumer delivers what is left, then frees the lanes.
    // It spins, so whether it needs waking does not matter.
    for (_, producer) in producers {
        let _ = producer.release();
    }
    Ok(claimed)
}

/// Receives `per_lane` records from each of the first [`CLAIMED`] lanes,
/// checking each lane's records in order and that no other lane delivers
/// any. Turns between `pop_into` and `pop_with`.
///
/// `peer_failed` is asked now and then while nothing moves (see
/// [`Watchdog`]): `Some(why)` ends the loop with that error.
pub(crate) fn consume(
    consumer: &mut LanesConsumer<'_>,
    per_lane: u64,
    mut peer_failed: impl FnMut() -> Option<String>,
) -> Result<(), String> {
    check_shape(consumer.lanes(), consumer.capacity())?;
    let mut checkers: [_; CLAIMED] = core::array::from_fn(|lane| Checker::new(Stream::Lane(lane)));
    let mut take = |lane: usize, record: &[u8]| -> Result<(), String> {
        let checker = checkers
            .get_mut(lane)
            .ok_or_else(|| format!("a record from lane {lane}, which the peer did not claim"))?;
        if checker.received() == per_lane {
            return Err(format!(
                "lane {lane} delivered more than {per_lane} records"
            ));
        }
        checker.check_next(record)
    };
    let mut buf = [0; MAX_RECORD];
    let mut watchdog = Watchdog::new();
    let mut pops = 0;
    while pops < per_lane * CLAIMED as u64 {
        let popped = if pops % 2 == 0 {
            consumer
                .pop_into(&mut buf)
                .map(|Delivery { lane, len }| take(lane, &buf[..len]))
        } else {
            consumer.pop_with(&mut buf, &mut take)
        };
        let progress = match popped {
            Ok(verdict) => verdict.map(|()| true)?,
            Err(PopError::Empty) => false,
            Err(err) => return Err(format!("pop after {pops} records from the lanes: {err}")),
        };
        pops += u64::from(progress);
        watchdog.turn(progress, &mut peer_failed, || {
            format!("received {pops} of {per_lane} records from each of {CLAIMED} lanes")
        })?;
    }
    Ok(())
}

/// Checks, once the peer has exited, that its lanes are drained and free:
/// one more pop finds nothing (and frees the lanes the peer released), the
/// claimed lanes are free after one claim each, the others never claimed.
pub(crate) fn check_freed(consumer: &mut LanesConsumer<'_>) -> Result<(), String> {
    let mut buf = [0; MAX_RECORD];
    match consumer.pop_into(&mut buf) {
        Err(PopError::Empty) => {}
        Ok(Delivery { lane, len }) => {
            return Err(format!(
                "lane {lane} delivered a record of {len} bytes after the last"
            ));
        }
        Err(err) => return Err(format!("pop after the last record from the lanes: {err}")),
    }
    for lane in 0..LANES {
        let expected = LaneState::Free {
            generation: u32::from(lane < CLAIMED),
        };
        let state = consumer.state(lane);
        if state != Some(expected) {
            return Err(format!(
                "lane {lane} is {state:?} once the peer released its lanes, {expected:?} expected"
            ));
        }
    }
    Ok(())
}
