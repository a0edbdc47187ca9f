//! Cross-architecture check: an i686 process and an x86-64 process share SPSC
//! rings, broadcast rings and seqlocks of `u64`- and `f64`-holding types,
//! record rings and a lane set through named POSIX shm, and a type whose
//! size differs between them is refused.
//!
//! Run by `.ci/xarch.sh`, which builds this binary for both targets and runs
//! each as the creator with the other as the peer:
//!
//! ```text
//! xarch create PEER_EXE [MESSAGES]
//! ```
//!
//! The creator makes ten named segments (unlinked when it exits), creates
//! a structure in each, then starts `PEER_EXE peer PREFIX USIZE_BYTES
//! MESSAGES`, which opens and attaches to them. Then both run the same
//! loops with the roles mirrored, one after the other: [`exchange::run`]
//! (`MESSAGES` values each way through the SPSC rings, the seqlocks read
//! throughout), [`records::run`] (`MESSAGES / 4` records each way, one way
//! at a time, of every length from 0 to 248 bytes, through record rings of
//! 64 words), and the lanes ([`lanes::produce`] in the peer,
//! [`lanes::consume`] in the creator: `MESSAGES / 8` records through each
//! of two lanes), then [`broadcast::run`] (`MESSAGES` values each way
//! through the broadcast rings, received by `try_recv` and `recv_slice` in
//! turn, then a burst that laps each reader, whose count of the missed must
//! be exact):
//!
//! | segment         | structure                   | written by | read by |
//! |-----------------|-----------------------------|------------|---------|
//! | `block`         | `Spsc<[u64; 8]>`, 64: the index protocol (64-byte slots, no stamps) | creator | peer |
//! | `record`        | `Spsc<Record>`, 64: stamped slots (a stamp, then 40 bytes) | peer | creator |
//! | `pair`          | `SeqLock<[u64; 2]>`         | creator    | peer    |
//! | `quote`         | `SeqLock<Quote>` (`f64`)    | peer       | creator |
//! | `bytes-creator` | `RecordRing`, 64 words      | creator    | peer    |
//! | `bytes-peer`    | `RecordRing`, 64 words      | peer       | creator |
//! | `lanes`         | `Lanes`, 4 of 64 words      | peer (lanes 0 and 1) | creator |
//! | `bcast-creator` | `Broadcast<[u64; 8]>`, 64: counted slots (64 bytes, no stamps) | creator | peer, read-only |
//! | `bcast-peer`    | `Broadcast<Record>`, 64: stamped slots (a stamp, then 40 bytes) | peer | creator |
//! | `wide`          | `Spsc<[usize; 4]>`, 4       | creator    | (attach must fail across widths) |
//!
//! With each architecture the creator in one run, both SPSC protocols
//! cross both ways: elements up to 56 bytes have stamped slots, larger ones
//! take the index protocol, and the creator checks from the rings' sizes
//! that `block` and `record` still take one each ([`check_protocols`]), and
//! the same of the broadcast rings' counted and stamped slots.
//!
//! Every value popped must be byte for byte the next one in sequence; every
//! seqlock read must be whole and be exactly the value its version wrote;
//! every record must be byte for byte the next one of its ring or lane.
//! Once the peer has exited, the lanes it released must be free. Any
//! mismatch ends both processes with a non-zero status and a message naming
//! the value.

mod broadcast;
mod exchange;
mod lanes;
mod payloads;
mod records;
mod watchdog;

use std::error::Error;
use std::process::{Child, Command, ExitCode};

use ipc_primitives::broadcast::{
    Broadcast, Reader as BroadcastReader, Start, Writer as BroadcastWriter,
};
use ipc_primitives::bytes::RecordRing;
use ipc_primitives::lanes::{Lanes, LanesConsumer};
use ipc_primitives::linux::shm::{CreateOptions, Liveness, OpenOptions, Segment};
use ipc_primitives::seqlock::SeqLock;
use ipc_primitives::spsc::Spsc;
use ipc_primitives::{AttachError, ElementLayout};

use exchange::{Ends, Tally};
use lanes::{CLAIMED, LANES};
use payloads::{Block, Pair, Quote, Record, Sample, Wide};
use records::{MAX_RECORD, RING_WORDS, Stream};

/// Slots in each ring: few, so the two processes run in lockstep.
const CAPACITY: u32 = 64;

/// Values each way unless told otherwise.
const DEFAULT_MESSAGES: u64 = 100_000;

/// The most values each way: a seqlock writes at most 18 times per value
/// (see [`exchange::run`]), and versions must stay below 2^31, the range of
/// a 32-bit sequence.
const MAX_MESSAGES: u64 = 1 << 26;

/// Values per record: a record costs more than a value (up to 248 bytes
/// through a ring that holds two or three), so a quarter as many cross,
/// each way through the record rings and in all through the lanes: still
/// tens of thousands of laps of each ring.
const VALUES_PER_RECORD: u64 = 4;

type Result<T, E = Box<dyn Error>> = core::result::Result<T, E>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        ["create", peer] => create(peer, DEFAULT_MESSAGES),
        ["create", peer, messages] => messages
            .parse()
            .map_err(Into::into)
            .and_then(|messages| create(peer, messages)),
        ["peer", prefix, usize_bytes, messages] => usize_bytes
            .parse()
            .map_err(Into::into)
            .and_then(|width| Ok((width, messages.parse()?)))
            .and_then(|(width, messages)| peer(prefix, width, messages)),
        _ => Err("usage: xarch create PEER_EXE [MESSAGES]".into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("[{}] FAILED: {err}", whoami(args.first() == Some(&"peer")));
            ExitCode::FAILURE
        }
    }
}

/// This process's architecture and role, for every line it prints.
fn whoami(peer: bool) -> String {
    format!(
        "{} {}",
        std::env::consts::ARCH,
        if peer { "peer" } else { "creator" }
    )
}

/// The creator: makes the segments and structures, starts the peer, runs the
/// exchanges, waits for the peer's verdict and checks that its lanes were
/// freed.
fn create(peer_exe: &str, messages: u64) -> Result<()> {
    let me = whoami(false);
    if messages > MAX_MESSAGES {
        return Err(format!("at most {MAX_MESSAGES} messages").into());
    }
    println!(
        "[{me}] {}-bit, align_of::<u64>() = {}, align_of::<f64>() = {}",
        usize::BITS,
        align_of::<u64>(),
        align_of::<f64>()
    );
    let prefix = format!("/ipcp-xarch-{}", std::process::id());
    let options = CreateOptions::new().unlink_on_drop(true);
    let segment = |part: &str, len: Option<usize>| -> Result<Segment> {
        let name = format!("{prefix}-{part}");
        Ok(options.create(&name, len.ok_or("structure too large")?)?)
    };
    let [
        (block_slot, record_slot),
        (block_bcast_slot, record_bcast_slot),
    ] = check_protocols()?;
    let blocks = segment("block", Spsc::<Block>::required_size(CAPACITY))?;
    let records = segment("record", Spsc::<Record>::required_size(CAPACITY))?;
    let pairs = segment("pair", SeqLock::<Pair>::required_size())?;
    let quotes = segment("quote", SeqLock::<Quote>::required_size())?;
    let wide = segment("wide", Spsc::<Wide>::required_size(4))?;
    let bytes_out = segment("bytes-creator", RecordRing::required_size(RING_WORDS))?;
    let bytes_in = segment("bytes-peer", RecordRing::required_size(RING_WORDS))?;
    let lane_set = segment("lanes", Lanes::required_size(LANES, RING_WORDS))?;
    let bcast_out = segment("bcast-creator", Broadcast::<Block>::required_size(CAPACITY))?;
    let bcast_in = segment("bcast-peer", Broadcast::<Record>::required_size(CAPACITY))?;
    let ends = Ends {
        tx: Spsc::<Block>::create(blocks.region()?, CAPACITY)?.into_producer(),
        rx: Spsc::<Record>::create(records.region()?, CAPACITY)?.into_consumer(),
        writer: SeqLock::<Pair>::create(pairs.region()?)?.into_writer(),
        reader: SeqLock::<Quote>::create(quotes.region()?)?.reader(),
    };
    let _wide = Spsc::<Wide>::create(wide.region()?, 4)?;
    let record_ends = records::Ends {
        tx: RecordRing::create(bytes_out.region()?, RING_WORDS)?.into_producer(),
        sent: Stream::Creator,
        rx: RecordRing::create(bytes_in.region()?, RING_WORDS)?.into_consumer(),
        received: Stream::Peer,
    };
    let mut lane_consumer = Lanes::create(lane_set.region()?, LANES, RING_WORDS)?.into_consumer();
    let bcast_ends = (
        Broadcast::<Block>::create(bcast_out.region()?, CAPACITY)?.into_writer(),
        Broadcast::<Record>::create(bcast_in.region()?, CAPACITY)?.into_reader(Start::Oldest),
    );
    println!(
        "[{me}] created rings of {} ({}; {block_slot}-byte ring slots without stamps: \
         the index protocol) and {} ({}; {record_slot}-byte ring slots, stamped), \
         seqlocks of {} and {}, two record rings of {RING_WORDS} words, \
         {LANES} lanes of {RING_WORDS} words, broadcast rings of {} ({block_bcast_slot}-byte \
         counted slots, no stamps) and {} ({record_bcast_slot}-byte stamped slots), a ring of \
         [usize; 4] ({}); starting peer {peer_exe}",
        Block::NAME,
        ElementLayout::of::<Block>(),
        Record::NAME,
        ElementLayout::of::<Record>(),
        Pair::NAME,
        Quote::NAME,
        Block::NAME,
        Record::NAME,
        ElementLayout::of::<Wide>(),
    );
    let mut child = Command::new(peer_exe)
        .args(["peer", &prefix])
        .arg(size_of::<usize>().to_string())
        .arg(messages.to_string())
        .spawn()
        .map_err(|err| format!("starting {peer_exe}: {err}"))?;
    let exchanged = exchange_as_creator(
        &me,
        ends,
        record_ends,
        &mut lane_consumer,
        bcast_ends,
        messages,
        || peer_failed(&mut child),
    );
    if let Err(err) = exchanged {
        // Ignore errors: the peer may have exited already.
        let _ = child.kill();
        let _ = child.wait();
        return Err(err.into());
    }
    let status = child.wait()?;
    if !status.success() {
        return Err(format!("peer failed ({status})").into());
    }
    lanes::check_freed(&mut lane_consumer)?;
    println!("[{me}] peer finished cleanly and the lanes it released are free: pair passed");
    Ok(())
}

/// The creator's side of each exchange in turn, reporting each.
fn exchange_as_creator(
    me: &str,
    ends: Ends<'_, Block, Record, Pair, Quote>,
    record_ends: records::Ends<'_>,
    lane_consumer: &mut LanesConsumer<'_>,
    (bcast_tx, bcast_rx): (BroadcastWriter<'_, Block>, BroadcastReader<'_, Record>),
    messages: u64,
    mut peer_failed: impl FnMut() -> Option<String>,
) -> Result<(), String> {
    let tally = exchange::run(ends, messages, &mut peer_failed)?;
    report(
        me,
        &tally,
        Block::NAME,
        Record::NAME,
        Pair::NAME,
        Quote::NAME,
    );
    let count = messages / VALUES_PER_RECORD;
    let laps = records::run(record_ends, count, &mut peer_failed)?;
    report_records(me, count, laps, Stream::Creator, Stream::Peer);
    let per_lane = lanes::per_lane(count);
    lanes::consume(lane_consumer, per_lane, &mut peer_failed)?;
    println!(
        "[{me}] lanes: received {per_lane} records from each of the {CLAIMED} lanes the peer \
         claimed (pop_into and pop_with), each lane's in order and bit-exact, none from the \
         other lanes"
    );
    let tally = broadcast::run(bcast_tx, bcast_rx, messages, &mut peer_failed)?;
    report_broadcast(me, messages, &tally, Block::NAME, Record::NAME);
    Ok(())
}

/// Why the peer cannot finish, if it exited with a failure. A peer that
/// exited cleanly has pushed everything, so the values are there to pop.
fn peer_failed(child: &mut Child) -> Option<String> {
    match child.try_wait() {
        Ok(Some(status)) if !status.success() => Some(format!("peer exited early ({status})")),
        Ok(_) => None,
        Err(err) => Some(format!("waitpid on the peer: {err}")),
    }
}

/// The peer: opens the creator's segments, checks the element layouts it
/// must refuse and accept, and runs the exchanges with the roles mirrored.
fn peer(prefix: &str, creator_usize_bytes: usize, messages: u64) -> Result<()> {
    let me = whoami(true);
    println!(
        "[{me}] {}-bit, align_of::<u64>() = {}, align_of::<f64>() = {}",
        usize::BITS,
        align_of::<u64>(),
        align_of::<f64>()
    );
    let open = |part: &str| -> Result<Segment> {
        let name = format!("{prefix}-{part}");
        Segment::open(&name).map_err(|err| format!("{name}: {err}").into())
    };
    let (blocks, records, pairs, quotes, wide) = (
        open("block")?,
        open("record")?,
        open("pair")?,
        open("quote")?,
        open("wide")?,
    );
    let (bytes_in, bytes_out, lane_set) =
        (open("bytes-creator")?, open("bytes-peer")?, open("lanes")?);
    let bcast_out = open("bcast-peer")?;
    // The creator's broadcast, read through a read-only mapping.
    let bcast_in = {
        let name = format!("{prefix}-bcast-creator");
        OpenOptions::new()
            .read_only(true)
            .open(&name)
            .map_err(|err| format!("{name}: {err}"))?
    };
    check_wide(&me, &wide, creator_usize_bytes)?;
    let ends = Ends {
        tx: Spsc::<Record>::attach(records.region()?)?.into_producer(),
        rx: Spsc::<Block>::attach(blocks.region()?)?.into_consumer(),
        writer: SeqLock::<Quote>::attach(quotes.region()?)?.into_writer(),
        reader: SeqLock::<Pair>::attach(pairs.region()?)?.reader(),
    };
    let record_ends = records::Ends {
        tx: RecordRing::attach(bytes_out.region()?)?.into_producer(),
        sent: Stream::Peer,
        rx: RecordRing::attach(bytes_in.region()?)?.into_consumer(),
        received: Stream::Creator,
    };
    let lane_set = Lanes::attach(lane_set.region()?)?;
    let bcast_tx = Broadcast::<Record>::attach(bcast_out.region()?)?.into_writer();
    let bcast_rx = Broadcast::<Block>::attach_reader(bcast_in.read_region()?, Start::Oldest)?;
    println!(
        "[{me}] attached to the rings of {} and {}, the seqlocks of {} and {}, the record rings \
         and the lanes, the broadcast rings (the creator's read-only)",
        Block::NAME,
        Record::NAME,
        Pair::NAME,
        Quote::NAME
    );
    let mut creator_gone =
        || (blocks.creator_alive() == Liveness::Gone).then(|| "the creator died".to_owned());
    let tally = exchange::run(ends, messages, &mut creator_gone)?;
    report(
        &me,
        &tally,
        Record::NAME,
        Block::NAME,
        Quote::NAME,
        Pair::NAME,
    );
    let count = messages / VALUES_PER_RECORD;
    let laps = records::run(record_ends, count, &mut creator_gone)?;
    report_records(&me, count, laps, Stream::Peer, Stream::Creator);
    let per_lane = lanes::per_lane(count);
    let claimed = lanes::produce(&lane_set, per_lane, &mut creator_gone)?;
    println!(
        "[{me}] lanes: claimed lanes {claimed:?} of {LANES}, sent {per_lane} records through \
         each (push and reserve/write/commit), released them"
    );
    let tally = broadcast::run(bcast_tx, bcast_rx, messages, &mut creator_gone)?;
    report_broadcast(&me, messages, &tally, Record::NAME, Block::NAME);
    Ok(())
}

/// Bytes of a stamped slot before its payload (the `# Layout` of
/// `ipc_primitives::spsc`).
const STAMP_BYTES: usize = 8;

/// Bytes of each slot of an SPSC ring of `T`, from its size.
fn ring_slot<T: ipc_primitives::Pod>() -> Option<usize> {
    let slots = Spsc::<T>::required_size(CAPACITY)? - Spsc::<T>::required_size(1)?;
    Some(slots / (CAPACITY as usize - 1))
}

/// Bytes of each slot of a broadcast ring of `T`, from its size.
fn broadcast_slot<T: ipc_primitives::Pod>() -> Option<usize> {
    let slots = Broadcast::<T>::required_size(CAPACITY)? - Broadcast::<T>::required_size(2)?;
    Some(slots / (CAPACITY as usize - 2))
}

/// The rings must cross in both protocols: `block`'s SPSC ring by index and
/// its broadcast ring with counted slots (slots of the element's stride
/// alone), `record`'s rings by stamps (a stamp, then the stride). Returns
/// the slot sizes of the SPSC rings and of the broadcast rings, to report.
fn check_protocols() -> Result<[(usize, usize); 2]> {
    let stride = |layout: ElementLayout| layout.stride as usize;
    let expected = (
        stride(ElementLayout::of::<Block>()),
        stride(ElementLayout::of::<Record>()) + STAMP_BYTES,
    );
    let check = |what: &str, found: (Option<usize>, Option<usize>)| {
        if found == (Some(expected.0), Some(expected.1)) {
            Ok(expected)
        } else {
            Err(format!(
                "the {what} of {} and {} must take slots without and with stamps, of {} and {} \
                 bytes; found {found:?}",
                Block::NAME,
                Record::NAME,
                expected.0,
                expected.1
            ))
        }
    };
    Ok([
        check("rings", (ring_slot::<Block>(), ring_slot::<Record>()))?,
        check(
            "broadcast rings",
            (broadcast_slot::<Block>(), broadcast_slot::<Record>()),
        )?,
    ])
}

/// Attaching to the creator's ring of `[usize; 4]` must succeed if and only
/// if `usize` has the same size here.
fn check_wide(me: &str, wide: &Segment, creator_usize_bytes: usize) -> Result<()> {
    let ours = ElementLayout::of::<Wide>();
    let creators = 4 * creator_usize_bytes;
    match Spsc::<Wide>::attach(wide.region()?) {
        Ok(_) if creators == size_of::<Wide>() => {
            println!("[{me}] attached to the ring of [usize; 4] ({ours}): same width, as it must");
            Ok(())
        }
        Err(err @ AttachError::WrongElement { expected, found })
            if creators != size_of::<Wide>()
                && expected == ours
                && found.size as usize == creators =>
        {
            println!("[{me}] ring of [usize; 4] refused, as it must: {err}");
            Ok(())
        }
        Ok(_) => Err(format!(
            "attached to a ring of {creators}-byte [usize; 4] as {ours}: must be refused"
        )
        .into()),
        Err(err) => Err(format!("ring of [usize; 4] ({creators} bytes there): {err}").into()),
    }
}

/// Prints what one side checked.
fn report(me: &str, tally: &Tally, sent: &str, received: &str, written: &str, read: &str) {
    println!(
        "[{me}] pushed {} {sent}, popped {} {received}, every one bit-exact; wrote {} {written} \
         and read {} {read} ({} versions seen), none torn",
        tally.pushed, tally.popped, tally.writes, tally.reads, tally.versions
    );
    // Side by side, a reader meets a new version at nearly every turn; about
    // one per ring's worth of values means the processes took turns on one
    // CPU.
    if tally.versions <= tally.popped / u64::from(CAPACITY) + 1 {
        println!(
            "[{me}] note: the processes mostly ran in turns (a busy machine), so few reads met \
             a write in flight; on idle cores they overlap throughout"
        );
    }
}

/// Prints what one side moved through the broadcast rings.
fn report_broadcast(me: &str, messages: u64, tally: &broadcast::Tally, sent: &str, received: &str) {
    println!(
        "[{me}] broadcast: published {messages} {sent} and a lapping burst; received {} \
         {received} ({} by try_recv, {} by recv_slice), every one bit-exact and in order, then \
         a lap: told of {} missed, then {} received, exactly the burst",
        tally.one_by_one + tally.in_batches,
        tally.one_by_one,
        tally.in_batches,
        tally.missed,
        tally.after_lap
    );
}

/// Prints what one side moved through the record rings: `count` records
/// each way, `laps` of its own ring.
fn report_records(me: &str, count: u64, laps: u32, sent: Stream, received: Stream) {
    println!(
        "[{me}] records: sent {count} through {sent} (0 to {MAX_RECORD} bytes, push and \
         reserve/write/commit, {laps} laps of its {RING_WORDS} words), received {count} through \
         {received} (pop_into, pop_vec and pop_with), every one bit-exact and in order"
    );
}
