//! Variable-length records through record rings: the streams that cross
//! (each record's length and bytes derived from its stream and index), the
//! ways to send and receive one, and the loop both processes run to move
//! records each way through a pair of [`RecordRing`]s.
//!
//! [`RecordRing`]: ipc_primitives::bytes::RecordRing

use core::fmt;

use ipc_primitives::bytes::{self, Consumer, PopError, Producer, ReserveError};

use crate::payloads::mix;
use crate::watchdog::Watchdog;

/// Words in every record ring and lane: few, so that records wrap the ring
/// (behind padding) every few records and positions run many laps.
pub(crate) const RING_WORDS: u32 = 64;

/// The largest record such a ring takes: 248 bytes.
pub(crate) const MAX_RECORD: usize = bytes::max_record(RING_WORDS);

/// Record lengths, 0 to [`MAX_RECORD`].
const LENGTHS: u64 = MAX_RECORD as u64 + 1;

/// Steps through the lengths: coprime with [`LENGTHS`] (249 = 3 x 83), so
/// every run of [`LENGTHS`] records holds each length once.
const LENGTH_STEP: u64 = 97;

/// A sequence of records, told apart by its bytes: a record of one stream
/// is no record of another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stream {
    /// Through the ring the creator fills.
    Creator,
    /// Through the ring the peer fills.
    Peer,
    /// Through this lane of the lane set.
    Lane(usize),
}

impl Stream {
    fn seed(self) -> u64 {
        match self {
            Self::Creator => 1,
            Self::Peer => 2,
            Self::Lane(lane) => 3 + lane as u64,
        }
    }

    /// The length of record `index`: every length once in each run of
    /// [`LENGTHS`] records, in an order that shifts from run to run.
    fn len(self, index: u64) -> usize {
        let shift = mix(self.seed() ^ ((index / LENGTHS) << 8));
        // Below `LENGTHS`: fits.
        ((index % LENGTHS * LENGTH_STEP + shift % LENGTHS) % LENGTHS) as usize
    }

    /// Record `index`, in the start of `buf`: little-endian words, each
    /// mixed from the stream, the index and its place.
    fn record(self, index: u64, buf: &mut [u8; MAX_RECORD]) -> &[u8] {
        let record = &mut buf[..self.len(index)];
        let seed = mix((self.seed() << 56) ^ index);
        for (k, chunk) in (0..).zip(record.chunks_mut(8)) {
            chunk.copy_from_slice(&mix(seed.wrapping_add(k)).to_le_bytes()[..chunk.len()]);
        }
        record
    }

    /// Checks that `got` is record `index`, byte for byte.
    fn check(self, index: u64, got: &[u8]) -> Result<(), String> {
        let mut buf = [0; MAX_RECORD];
        let expected = self.record(index, &mut buf);
        if got == expected {
            return Ok(());
        }
        let mut other = [0; MAX_RECORD];
        let what = match (index.saturating_sub(2)..index + 3)
            .find(|&near| near != index && self.record(near, &mut other) == got)
        {
            Some(near) => format!("record #{near}: lost, repeated or reordered"),
            None if got.len() != expected.len() => {
                format!("{} bytes, {} expected", got.len(), expected.len())
            }
            None => {
                let at = got.iter().zip(expected).take_while(|(a, b)| a == b).count();
                let end = got.len().min(at + 16);
                format!(
                    "{} bytes as expected, garbled from byte {at}\n  got      {:02x?}\n  \
                     expected {:02x?}",
                    got.len(),
                    &got[at..end],
                    &expected[at..end]
                )
            }
        };
        Err(format!("record #{index} of {self}: {what}"))
    }
}

impl fmt::Display for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Creator => f.write_str("the creator's ring"),
            Self::Peer => f.write_str("the peer's ring"),
            Self::Lane(lane) => write!(f, "lane {lane}"),
        }
    }
}

/// How a record is sent: each way in turn, by the record's index.
#[derive(Debug, Clone, Copy)]
enum Way {
    /// `push`.
    Push,
    /// `reserve` of the length, one `write`, `commit`.
    Whole,
    /// `reserve` of the length, the second half written before the first,
    /// `commit`.
    Halves,
    /// `reserve` of [`MAX_RECORD`], one `write`, `commit` of the length:
    /// a grant larger than its record.
    Larger,
}

impl Way {
    fn of(index: u64) -> Self {
        [Self::Push, Self::Whole, Self::Halves, Self::Larger][(index % 4) as usize]
    }
}

/// The sending end of a stream: the next record, made once and sent when
/// the ring has room (so a sender waiting for room only polls the ring).
#[derive(Debug)]
pub(crate) struct Sender {
    stream: Stream,
    /// Records sent: the index of the one in `buf`.
    sent: u64,
    /// Record `sent`, in its first `len` bytes.
    buf: [u8; MAX_RECORD],
    len: usize,
}

impl Sender {
    pub(crate) fn new(stream: Stream) -> Self {
        let mut sender = Self {
            stream,
            sent: 0,
            buf: [0; MAX_RECORD],
            len: 0,
        };
        sender.len = stream.record(0, &mut sender.buf).len();
        sender
    }

    /// Records sent so far.
    pub(crate) fn sent(&self) -> u64 {
        self.sent
    }

    /// Sends the next record if the ring has room for it, by the [`Way`]
    /// its index picks; returns whether it went.
    pub(crate) fn try_send<K>(&mut self, tx: &mut Producer<'_, K>) -> Result<bool, String> {
        let record = &self.buf[..self.len];
        let way = Way::of(self.sent);
        let fail = |err: &dyn fmt::Display| {
            format!(
                "send of record #{} of {} ({} bytes, {way:?}): {err}",
                self.sent,
                self.stream,
                record.len()
            )
        };
        let reserve = match way {
            Way::Push => {
                return match tx.push(record) {
                    Ok(()) => Ok(self.next()),
                    Err(ReserveError::Full) => Ok(false),
                    Err(err) => Err(fail(&err)),
                };
            }
            Way::Whole | Way::Halves => record.len(),
            Way::Larger => MAX_RECORD,
        };
        let mut grant = match tx.reserve(reserve) {
            Ok(grant) => grant,
            Err(ReserveError::Full) => return Ok(false),
            Err(err) => return Err(fail(&err)),
        };
        let written = match way {
            Way::Halves => {
                let (first, second) = record.split_at(record.len() / 2);
                grant
                    .write(first.len(), second)
                    .and_then(|()| grant.write(0, first))
            }
            _ => grant.write(0, record),
        };
        written.map_err(|err| fail(&err))?;
        grant.commit(record.len());
        Ok(self.next())
    }

    /// Counts the record sent and makes the next; true.
    fn next(&mut self) -> bool {
        self.sent += 1;
        self.len = self.stream.record(self.sent, &mut self.buf).len();
        true
    }
}

/// The receiving end of a stream: checks each record that arrives against
/// the next one the stream sends.
#[derive(Debug)]
pub(crate) struct Checker {
    stream: Stream,
    /// Records received and checked.
    received: u64,
}

impl Checker {
    pub(crate) fn new(stream: Stream) -> Self {
        Self {
            stream,
            received: 0,
        }
    }

    /// Records received and checked so far.
    pub(crate) fn received(&self) -> u64 {
        self.received
    }

    /// Checks that `got` is the next record of the stream, and counts it.
    pub(crate) fn check_next(&mut self, got: &[u8]) -> Result<(), String> {
        self.stream.check(self.received, got)?;
        self.received += 1;
        Ok(())
    }

    /// Receives the next record if one is waiting, checking it; returns
    /// whether one came. Turns between `pop_into`, `pop_vec` and `pop_with`
    /// by the record's index.
    fn try_receive<K>(&mut self, rx: &mut Consumer<'_, K>) -> Result<bool, String> {
        let mut buf = [0; MAX_RECORD];
        let checked = match self.received % 3 {
            0 => rx
                .pop_into(&mut buf)
                .map(|len| self.check_next(&buf[..len])),
            1 => rx
                .pop_vec::<MAX_RECORD>()
                .map(|record| self.check_next(&record)),
            _ => rx.pop_with(&mut buf, |record| self.check_next(record)),
        };
        match checked {
            Ok(verdict) => verdict.map(|()| true),
            Err(PopError::Empty) => Ok(false),
            Err(err) => Err(format!(
                "pop of record #{} of {}: {err}",
                self.received, self.stream
            )),
        }
    }
}

/// One process's ends of the two record rings.
#[derive(Debug)]
pub(crate) struct Ends<'a> {
    /// This process's ring, which it fills with `sent`.
    pub(crate) tx: Producer<'a>,
    pub(crate) sent: Stream,
    /// The peer's ring, which this process drains of `received`.
    pub(crate) rx: Consumer<'a>,
    pub(crate) received: Stream,
}

/// Moves `count` records each way, one way at a time: first through the
/// creator's ring, then through the peer's, so that the receiving process
/// does nothing but poll the header the sender seals next (where a broken
/// seal shows). Fails at the first record received that is not exactly the
/// next one of its stream. Returns how many times the positions in this
/// process's ring went round it (modulo 2^26: positions wrap at 2^32
/// words).
///
/// `peer_failed` is asked now and then while nothing moves (see
/// [`Watchdog`]): `Some(why)` ends the exchange with that error.
pub(crate) fn run(
    ends: Ends<'_>,
    count: u64,
    mut peer_failed: impl FnMut() -> Option<String>,
) -> Result<u32, String> {
    let Ends {
        mut tx,
        sent,
        mut rx,
        received,
    } = ends;
    for (capacity, ring) in [(tx.capacity(), sent), (rx.capacity(), received)] {
        if capacity != RING_WORDS as usize {
            return Err(format!(
                "{ring} has {capacity} words, {RING_WORDS} expected"
            ));
        }
    }
    if sent == Stream::Creator {
        send(&mut tx, sent, count, &mut peer_failed)?;
        receive(&mut rx, received, count, &mut peer_failed)?;
    } else {
        receive(&mut rx, received, count, &mut peer_failed)?;
        send(&mut tx, sent, count, &mut peer_failed)?;
    }
    Ok(tx.counters().published / RING_WORDS)
}

/// Sends `count` records of `stream` through `tx`, spinning while the ring
/// is full.
fn send(
    tx: &mut Producer<'_>,
    stream: Stream,
    count: u64,
    peer_failed: &mut impl FnMut() -> Option<String>,
) -> Result<(), String> {
    let mut sender = Sender::new(stream);
    let mut watchdog = Watchdog::new();
    while sender.sent() < count {
        let progress = sender.try_send(tx)?;
        watchdog.turn(progress, peer_failed, || {
            format!("sent {} of {count} records", sender.sent())
        })?;
    }
    Ok(())
}

/// Receives `count` records of `stream` from `rx`, checking each, spinning
/// while the ring is empty.
fn receive(
    rx: &mut Consumer<'_>,
    stream: Stream,
    count: u64,
    peer_failed: &mut impl FnMut() -> Option<String>,
) -> Result<(), String> {
    let mut checker = Checker::new(stream);
    let mut watchdog = Watchdog::new();
    while checker.received() < count {
        let progress = checker.try_receive(rx)?;
        watchdog.turn(progress, peer_failed, || {
            format!("received {} of {count} records", checker.received())
        })?;
    }
    Ok(())
}
