//! `attach`: every structure kind attached to arbitrary bytes of arbitrary
//! length, aligned or not.
//!
//! Input: one mode byte, then either the region's bytes as they are, or (mode
//! bit 2) a template: a valid ring or seqlock of a chosen type and capacity,
//! made by the crate, cut to a length near its required size, with its
//! counters or sequence set from the input and a few byte patches applied, so
//! that the fuzzer spends its time near valid headers. The bytes are copied
//! into an allocation of exactly their length on a 128-byte boundary (plus an
//! offset that misaligns the region, for mode 2 and 3), afresh for each kind.
//!
//! Every kind is then attached: `Spsc::<T>::attach` and `SeqLock::<T>::attach`
//! for `T` in `[u8; 13]`, `[u32; 3]` and `u64`, `Spsc::<T>::attach` for
//! `[u64; 7]` (the largest element whose slots are stamped) and `[u8; 61]`
//! (a ring of the index protocol: slots without stamps; templates include
//! both), and `Broadcast::<T>::attach` for `u64`, `[u64; 7]` (stamped slots)
//! and `[u64; 8]` (counted slots, `384 + capacity * 64` bytes: a region
//! that short is enough, one byte shorter is refused; templates include
//! all three, with `published` and `intent` from the input), and a
//! [`Plan`] of three parts (templates: a plan the crate created, with a ring
//! and a broadcast ring in their parts). Each result
//! must equal what the documented layout says
//! ([`expected_attach`], written independently of the crate): with stamps,
//! `tail` may run ahead of `head` by up to a ring's worth, without them it
//! may not. `Ok` exactly when the header, length and counters are valid, else
//! the first mismatch, typed. On `Ok` the header must also match the one the
//! crate writes for a fresh structure of that capacity, and the attached
//! structure is exercised (pop what is queued and compare with the slot bytes,
//! fill, overflow and drain it; read the value and version, write and read
//! back; publish to a broadcast ring and receive it all) to show it really
//! is usable. An attached plan hands out exactly the parts it planned, each
//! of which refuses a structure of another kind, and in which a ring or a
//! broadcast ring attaches as it would in a region of its own.

use ipc_primitives::broadcast::{Broadcast, RecvError, Start};
use ipc_primitives::parts::{MAX_PARTS, Plan};
use ipc_primitives::seqlock::{ReadError, SeqLock, Spins, Version};
use ipc_primitives::spsc::{PopError, PushError, Spsc};
use ipc_primitives::{
    AttachError, Corrupted, ElementLayout, FitError, Kind, PartInfo, ReadRegion, Region,
};

use crate::broadcast::{self, announce, offsets as ring};
use crate::support::{
    Elem, Expect, Input, SharedMemory, Widths, expected_attach, offsets, spsc_slot, spsc_stamp,
};

/// Runs one input.
pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let mode = input.u8();
    let misalign = match mode & 3 {
        0 | 1 => 0,
        2 => 1 + input.below(127),
        _ => 8 * (1 + input.below(15)),
    };
    let bytes = if mode & 4 != 0 {
        template(&mut input)
    } else {
        input.rest().to_vec()
    };
    check_spsc::<[u8; 13]>(misalign, &bytes);
    check_spsc::<[u32; 3]>(misalign, &bytes);
    check_spsc::<u64>(misalign, &bytes);
    check_spsc::<[u64; 7]>(misalign, &bytes);
    check_spsc::<[u8; 61]>(misalign, &bytes);
    check_seqlock::<[u8; 13]>(misalign, &bytes);
    check_seqlock::<[u32; 3]>(misalign, &bytes);
    check_seqlock::<u64>(misalign, &bytes);
    check_broadcast::<u64>(misalign, &bytes);
    check_broadcast::<[u64; 7]>(misalign, &bytes);
    check_broadcast::<[u64; 8]>(misalign, &bytes);
    check_plan(misalign, &bytes);
}

/// `bytes` in fresh memory of exactly their length (after `misalign` bytes),
/// accessed in the `widths` given (misaligned memory is never accessed by the
/// crate, which refuses it first).
fn place(misalign: usize, bytes: &[u8], widths: Widths) -> SharedMemory {
    let widths = if misalign == 0 {
        widths
    } else {
        Widths::WideFrom(usize::MAX)
    };
    let memory = SharedMemory::zeroed(misalign + bytes.len(), widths);
    memory.poke(misalign, bytes);
    memory
}

/// A valid structure's bytes, cut or extended and patched as the input says.
fn template(input: &mut Input<'_>) -> Vec<u8> {
    let which = input.u8();
    let capacity = 1u32 << (input.u8() % 8);
    let (size, valid) = match which % 12 {
        0 => valid_spsc::<[u8; 13]>(input, capacity),
        1 => valid_spsc::<[u32; 3]>(input, capacity),
        2 => valid_spsc::<u64>(input, capacity),
        3 => valid_spsc::<[u64; 7]>(input, capacity),
        4 => valid_spsc::<[u8; 61]>(input, capacity),
        5 => valid_seqlock::<[u8; 13]>(input),
        6 => valid_seqlock::<[u32; 3]>(input),
        7 => valid_seqlock::<u64>(input),
        8 => valid_broadcast::<u64>(input, capacity.max(2)),
        9 => valid_broadcast::<[u64; 7]>(input, capacity.max(2)),
        10 => valid_broadcast::<[u64; 8]>(input, capacity.max(2)),
        _ => valid_plan(input),
    };
    // Usually the exact size; sometimes a little shorter or longer.
    let delta = if which & 0x80 != 0 {
        i32::from(input.u8() as i8)
    } else {
        0
    };
    let len = size.saturating_add_signed(delta as isize);
    let mut bytes = valid;
    bytes.resize(len, 0);
    for _ in 0..input.below(5) {
        let offset = input.below(len.max(1));
        let patch = input.bytes(8);
        let end = (offset + patch.len()).min(len);
        if offset < end {
            bytes[offset..end].copy_from_slice(&patch[..end - offset]);
        }
    }
    bytes
}

/// A ring made by the crate, with counters from the input.
fn valid_spsc<T: Elem>(input: &mut Input<'_>, capacity: u32) -> (usize, Vec<u8>) {
    let size = Spsc::<T>::required_size(capacity).expect("a small ring");
    let memory = SharedMemory::zeroed(size, Widths::ring::<T>());
    Spsc::<T>::create(memory.region(), capacity).expect("create");
    let head = input.u32();
    // `tail` from a ring's worth and one ahead of `head` to as far behind:
    // valid up to a ring's worth behind, and with stamps also ahead.
    let behind = input.below(2 * capacity as usize + 3) as u32;
    let tail = head.wrapping_sub(behind.wrapping_sub(capacity + 1));
    memory.poke(offsets::HEAD, &head.to_ne_bytes());
    memory.poke(offsets::TAIL, &tail.to_ne_bytes());
    let slot_bytes = input.bytes(size - offsets::SLOTS);
    memory.poke(offsets::SLOTS, slot_bytes);
    (size, memory.snapshot(0, size))
}

/// A broadcast ring made by the crate, with `published`, `intent` (up to a
/// writer's announcement ahead) and the slots' bytes from the input.
fn valid_broadcast<T: Elem>(input: &mut Input<'_>, capacity: u32) -> (usize, Vec<u8>) {
    let memory = broadcast::memory::<T>(capacity);
    let size = memory.size();
    Broadcast::<T>::create(memory.region(), capacity).expect("create");
    let published = input.u32();
    let ahead = input.below(announce(capacity) as usize + 1) as u32;
    memory.poke(ring::PUBLISHED, &published.to_ne_bytes());
    memory.poke(ring::INTENT, &published.wrapping_add(ahead).to_ne_bytes());
    memory.poke(ring::SLOTS, input.bytes(size - ring::SLOTS));
    (size, memory.snapshot(0, size))
}

/// A plan created by the crate, with a ring and a broadcast ring created in
/// their parts, the ring's counters and slots from the input.
fn valid_plan(input: &mut Input<'_>) -> (usize, Vec<u8>) {
    let plan = plan();
    let size = plan.size().expect("a small plan");
    let memory = SharedMemory::zeroed(size, Widths::WideFrom(usize::MAX));
    let mut parts = plan.create(memory.region()).expect("create the plan");
    let ring = parts.next().expect("the ring's part");
    Spsc::<u64>::create(ring, RING).expect("create the ring");
    let broadcast = parts.nth(1).expect("the broadcast's part");
    Broadcast::<u64>::create(broadcast, BROADCAST).expect("create the broadcast");
    let ring_at = planned_parts()[0].offset_lines as usize * LINE;
    memory.poke(ring_at + offsets::HEAD, &input.u32().to_ne_bytes());
    memory.poke(ring_at + offsets::TAIL, &input.u32().to_ne_bytes());
    (size, memory.snapshot(0, size))
}

/// A seqlock made by the crate, with the sequence and value from the input.
fn valid_seqlock<T: Elem>(input: &mut Input<'_>) -> (usize, Vec<u8>) {
    let size = SeqLock::<T>::required_size().expect("a small lock");
    let memory = SharedMemory::zeroed(size, Widths::WideFrom(offsets::SEQ));
    SeqLock::<T>::create(memory.region()).expect("create");
    let seq = input.u64();
    memory.poke(
        offsets::SEQ,
        &seq.to_ne_bytes()[..core::mem::size_of::<Version>()],
    );
    memory.poke(offsets::VALUE, input.bytes(size - offsets::VALUE));
    (size, memory.snapshot(0, size))
}

/// The `u32` at `offset` of `bytes`.
fn u32_at(bytes: &[u8], offset: usize) -> u32 {
    u32::from_ne_bytes(bytes[offset..offset + 4].try_into().expect("4 bytes"))
}

/// The value of type `T` in a slot starting at `offset` of `bytes`.
fn value_at<T: Elem>(bytes: &[u8], offset: usize) -> T {
    T::from_raw(&bytes[offset..offset + core::mem::size_of::<T>()])
}

fn check_spsc<T: Elem>(misalign: usize, bytes: &[u8]) {
    let memory = place(misalign, bytes, Widths::ring::<T>());
    let region: Region<'_> = memory.region_from(misalign);
    let aligned = misalign == 0;
    let expected = expected_attach(bytes, aligned, Expect::spsc::<T>());
    let attached = Spsc::<T>::attach(region);
    let got = attached
        .as_ref()
        .map(|ring| ring.capacity())
        .map_err(|e| *e);
    assert_eq!(
        got,
        expected,
        "Spsc<{}>::attach",
        core::any::type_name::<T>()
    );
    let Ok(ring) = attached else { return };
    let capacity = ring.capacity();

    // The header is exactly what the crate writes for such a ring (but for
    // the creation count, which counts creations).
    let fresh = SharedMemory::zeroed(
        Spsc::<T>::required_size(capacity).expect("fits"),
        Widths::ring::<T>(),
    );
    Spsc::<T>::create(fresh.region(), capacity).expect("create a twin");
    let header = &bytes[..offsets::CREATION];
    assert_eq!(
        fresh.snapshot(0, offsets::CREATION),
        header,
        "header of an attached ring"
    );

    // What is queued pops out as the slots' stamps and bytes say (the
    // `# Layout` of `ipc_primitives::spsc`): with stamps, the producer
    // resumes after what is stamped and the consumer pops what is stamped;
    // without them (the index protocol), both go by `head`.
    let cap = capacity as usize;
    let (head, tail) = (u32_at(bytes, offsets::HEAD), u32_at(bytes, offsets::TAIL));
    let (slot, stamp) = (spsc_slot::<T>(), spsc_stamp::<T>());
    let slot_offset = |counter: u32| offsets::SLOTS + (counter as usize & (cap - 1)) * slot;
    let stamped = |position: u32| {
        stamp != 0 && u32_at(bytes, slot_offset(position)) == (position.wrapping_add(1) | STAMPED)
    };
    // How many elements `head` counts beyond `tail` (none if, with stamps,
    // `tail` is ahead by up to a ring's worth); `None` if impossible.
    let counted = |head: u32, tail: u32| {
        let used = head.wrapping_sub(tail) as usize;
        if used <= cap {
            Some(used)
        } else {
            (stamp != 0 && tail.wrapping_sub(head) as usize <= cap).then_some(0)
        }
    };
    let mut start = if counted(head, tail) == Some(0) {
        tail
    } else {
        head
    };
    while (start.wrapping_sub(tail) as usize) < cap && stamped(start) {
        start = start.wrapping_add(1);
    }
    let used = start.wrapping_sub(tail) as usize;
    let (mut tx, mut rx) = ring.split();
    assert_eq!((tx.len(), rx.len()), (used, used), "len after attach");
    let visible = if stamp == 0 {
        used
    } else {
        (0..cap as u32)
            .take_while(|&k| stamped(tail.wrapping_add(k)))
            .count()
    };
    let mut out = vec![T::make(0); cap + 1];
    let popped = rx.pop_slice(&mut out);
    if visible == 0 && used > 0 {
        assert_eq!(popped, Err(Corrupted), "an element counted but not stamped");
        return;
    }
    assert_eq!(popped, Ok(visible), "pop what is stamped");
    for (k, got) in out[..visible].iter().enumerate() {
        let at = slot_offset(tail.wrapping_add(k as u32)) + stamp;
        assert_eq!(*got, value_at::<T>(bytes, at), "queued element {k}");
    }
    if visible < used {
        assert_eq!(rx.try_pop(), Err(PopError::Corrupted), "a stamp missing");
        return;
    }
    assert_eq!(rx.try_pop(), Err(PopError::Empty));

    // Fill it, overflow it, drain it.
    for n in 1..=cap as u64 {
        assert_eq!(tx.try_push(T::make(n)), Ok(()), "push {n} of {cap}");
    }
    let extra = T::make(u64::MAX);
    assert_eq!(tx.try_push(extra), Err(PushError::Full(extra)));
    assert_eq!(rx.pop_slice(&mut out), Ok(cap), "drain");
    for (n, got) in out[..cap].iter().enumerate() {
        assert_eq!(*got, T::make(n as u64 + 1), "element {n} after refill");
    }
    assert_eq!((tx.len(), rx.len()), (0, 0));
}

/// Set in every stamp (the `# Layout` of `ipc_primitives::spsc`).
const STAMPED: u32 = 1 << 31;

fn check_seqlock<T: Elem>(misalign: usize, bytes: &[u8]) {
    let memory = place(misalign, bytes, Widths::WideFrom(offsets::SEQ));
    let region: Region<'_> = memory.region_from(misalign);
    let aligned = misalign == 0;
    let expected = expected_attach(bytes, aligned, Expect::seqlock::<T>());
    let attached = SeqLock::<T>::attach(region);
    let got = attached.as_ref().map(|_| 1).map_err(|e| *e);
    assert_eq!(
        got,
        expected,
        "SeqLock<{}>::attach",
        core::any::type_name::<T>()
    );
    let Ok(lock) = attached else { return };

    let fresh = SharedMemory::zeroed(
        SeqLock::<T>::required_size().expect("a small lock"),
        Widths::WideFrom(offsets::SEQ),
    );
    SeqLock::<T>::create(fresh.region()).expect("create a twin");
    let header = &bytes[..offsets::CREATION];
    assert_eq!(
        fresh.snapshot(0, offsets::CREATION),
        header,
        "header of an attached seqlock"
    );

    let width = core::mem::size_of::<Version>();
    let mut raw = [0; 8];
    raw[..width].copy_from_slice(&bytes[offsets::SEQ..offsets::SEQ + width]);
    let seq = Version::from_ne_bytes(raw[..width].try_into().expect("the version's width"));
    let reader = lock.reader();
    let value = value_at::<T>(bytes, offsets::VALUE);
    let expected_read = if seq & 1 == 1 {
        Err(ReadError::WriterStalled)
    } else {
        Ok((value, seq / 2))
    };
    assert_eq!(
        reader.read_versioned(Spins(3)),
        expected_read,
        "read after attach"
    );
    assert_eq!(reader.version(), seq / 2);

    // A writer taking over continues from the next even sequence.
    let start = seq.wrapping_add(seq & 1);
    let mut writer = lock.into_writer();
    assert_eq!(writer.version(), start / 2);
    let next = T::make(7);
    writer.write(&next);
    let version = start.wrapping_add(2) / 2;
    assert_eq!(
        reader.read_versioned(Spins(1)),
        Ok((next, version)),
        "read back a write"
    );
    assert_eq!(writer.version(), version);
}

fn check_broadcast<T: Elem>(misalign: usize, bytes: &[u8]) {
    let memory = place(misalign, bytes, broadcast::widths::<T>());
    let region: Region<'_> = memory.region_from(misalign);
    let expected = expected_attach(bytes, misalign == 0, broadcast::expect::<T>());
    let attached = Broadcast::<T>::attach(region);
    let got = attached
        .as_ref()
        .map(|ring| ring.capacity() as u32)
        .map_err(|e| *e);
    assert_eq!(
        got,
        expected,
        "Broadcast<{}>::attach",
        core::any::type_name::<T>()
    );
    let Ok(ring) = attached else { return };
    let capacity = ring.capacity();

    let fresh = broadcast::memory::<T>(capacity as u32);
    Broadcast::<T>::create(fresh.region(), capacity as u32).expect("create a twin");
    assert_eq!(
        fresh.snapshot(0, offsets::CREATION),
        &bytes[..offsets::CREATION],
        "header of an attached broadcast ring"
    );

    // Whatever the slots and `intent` hold, a reader from the oldest gets
    // typed results, boundedly; the writer continues after `published` (and
    // after the message there if its stamp says it is whole: one a dead
    // writer finished but did not publish), and a reader joined after it
    // receives the next `retained` messages whole in one batch. A stamped
    // reader trusts stamps: if the bytes already stamped the slot after those
    // as holding the next message, it takes that garbage too (a hostile
    // peer's garbage value, as documented).
    let stamped = broadcast::stamp::<T>() != 0;
    let whole_at = |position: u32| {
        let at = broadcast::slot_offset::<T>(capacity as u32, u64::from(position));
        stamped && u32_at(bytes, at) == position.wrapping_add(1)
    };
    let published = u32_at(bytes, ring::PUBLISHED);
    let continued = published.wrapping_add(u32::from(whole_at(published)));
    let mut oldest = ring.reader(Start::Oldest);
    let mut writer = ring.into_writer();
    let mut next = writer.reader(Start::Next);
    assert_eq!(
        (writer.published(), next.position()),
        (continued, continued)
    );
    for _ in 0..=capacity {
        if oldest.try_recv() == Err(RecvError::Empty) {
            break;
        }
    }
    let retained = writer.retained();
    for n in 1..=retained as u64 {
        writer.publish(&T::make(n));
    }
    let prestamped = whole_at(continued.wrapping_add(retained as u32));
    let mut out = vec![T::make(0); capacity];
    assert_eq!(
        next.recv_slice(&mut out),
        Ok(retained + usize::from(prestamped)),
        "a batch after attach"
    );
    for (n, got) in out[..retained].iter().enumerate() {
        assert_eq!(*got, T::make(n as u64 + 1), "message {n} after attach");
    }
    assert_eq!(next.try_recv(), Err(RecvError::Empty));
}

/// Capacities of the ring and the broadcast ring in [`plan`].
const RING: u32 = 8;
const BROADCAST: u32 = 4;

/// Bytes of a line, the unit of a plan's offsets and lengths.
const LINE: usize = 128;

/// The plan [`check_plan`] attaches: a ring of `u64`, a seqlock of `u64` and
/// a broadcast ring of `u64`.
fn plan() -> Plan<3> {
    let mut plan = Plan::new();
    for (kind, len) in [
        (Kind::Spsc, Spsc::<u64>::required_size(RING)),
        (Kind::SeqLock, SeqLock::<u64>::required_size()),
        (Kind::Broadcast, Broadcast::<u64>::required_size(BROADCAST)),
    ] {
        plan.add(kind, len.expect("a small part"))
            .expect("room for 3 parts");
    }
    plan
}

/// The directory entries [`plan`] must have, from the documented layout
/// (`ipc_primitives::parts`): the directory's lines (a 128-byte header and 16
/// bytes per entry), then each part on lines of its own.
fn planned_parts() -> [PartInfo; 3] {
    let lens = [
        Spsc::<u64>::required_size(RING),
        SeqLock::<u64>::required_size(),
        Broadcast::<u64>::required_size(BROADCAST),
    ];
    let kinds = [Kind::Spsc, Kind::SeqLock, Kind::Broadcast];
    let mut offset = (LINE + 3 * 16).div_ceil(LINE) as u32;
    core::array::from_fn(|i| {
        let len_lines = lens[i].expect("a small part").div_ceil(LINE) as u32;
        let part = PartInfo {
            kind: kinds[i] as u32,
            offset_lines: offset,
            len_lines,
        };
        offset += len_lines;
        part
    })
}

/// What attaching [`plan`] to `bytes` must return, from the documented
/// layout: the directory's header as any structure's (kind `Layout`, 16-byte
/// entries, capacity the number of parts), then the count, each entry in
/// order, and the region's length.
fn expected_plan(bytes: &[u8], aligned: bool) -> Result<(), AttachError> {
    let directory = Expect {
        kind: Kind::Layout as u32,
        elem: ElementLayout {
            size: 16,
            stride: 16,
        },
        control: LINE,
        slot_overhead: 0,
        capacity_ok: |count| (1..=MAX_PARTS as u32).contains(&count),
        ring_counters: false,
    };
    let count = expected_attach(bytes, aligned, directory)?;
    if count != 3 {
        return Err(AttachError::WrongPartCount {
            expected: 3,
            found: count,
        });
    }
    let planned = planned_parts();
    for (part, expected) in planned.iter().enumerate() {
        let at = LINE + 16 * part;
        let found = PartInfo {
            kind: u32_at(bytes, at),
            offset_lines: u32_at(bytes, at + 4),
            len_lines: u32_at(bytes, at + 8),
        };
        if found != *expected {
            return Err(AttachError::WrongPart {
                part: part as u32,
                expected: *expected,
                found,
            });
        }
    }
    let last = planned[2];
    let needed = (last.offset_lines + last.len_lines) as usize * LINE;
    if needed > bytes.len() {
        return Err(AttachError::Fit(FitError::TooSmall {
            needed,
            actual: bytes.len(),
        }));
    }
    Ok(())
}

fn check_plan(misalign: usize, bytes: &[u8]) {
    // Only `u32` words: the directory's, and the ring's and broadcast
    // ring's headers and counters, all that attaching them reads.
    let memory = place(misalign, bytes, Widths::WideFrom(usize::MAX));
    let plan = plan();
    let expected = expected_plan(bytes, misalign == 0);
    let read = plan.attach_read(ReadRegion::from(memory.region_from(misalign)));
    let got = read.as_ref().map(|_| ()).map_err(|e| *e);
    assert_eq!(got, expected, "Plan::attach_read");
    let attached = plan.attach(memory.region_from(misalign));
    let got = attached.as_ref().map(|_| ()).map_err(|e| *e);
    assert_eq!(got, expected, "Plan::attach");
    let (Ok(mut parts), Ok(mut read_parts)) = (attached, read) else {
        return;
    };

    // The parts come from the plan, never from the directory, each once,
    // and each takes only its kind.
    let planned = planned_parts();
    let part_bytes = |part: usize| {
        let at = planned[part].offset_lines as usize * LINE;
        &bytes[at..at + planned[part].len_lines as usize * LINE]
    };
    let refused = |planned, expected| Err(AttachError::PlannedFor { planned, expected });
    let ring = parts.next().expect("the ring's part");
    assert_eq!(
        Spsc::<u64>::attach(ring).map(|ring| ring.capacity()),
        expected_attach(part_bytes(0), true, Expect::spsc::<u64>()),
        "the ring in its part"
    );
    let lock = parts.next().expect("the seqlock's part");
    assert_eq!(
        Spsc::<u64>::attach(lock).map(|_| ()),
        refused(Kind::SeqLock, Kind::Spsc),
        "a seqlock's part refuses a ring"
    );
    let ticks = parts.next().expect("the broadcast's part");
    assert_eq!(
        SeqLock::<u64>::attach(ticks).map(|_| ()),
        refused(Kind::Broadcast, Kind::SeqLock),
        "a broadcast's part refuses a seqlock"
    );
    assert!(parts.next().is_none(), "each part is handed out once");

    let ring = read_parts.next().expect("the ring's part, read-only");
    assert_eq!(
        Broadcast::<u64>::attach_reader(ring, Start::Next).map(|_| ()),
        refused(Kind::Spsc, Kind::Broadcast),
        "a ring's part refuses a broadcast reader"
    );
    let ticks = read_parts.nth(1).expect("the broadcast's part, read-only");
    assert_eq!(
        Broadcast::<u64>::attach_reader(ticks, Start::Next).map(|reader| reader.capacity() as u32),
        expected_attach(part_bytes(2), true, broadcast::expect::<u64>()),
        "the broadcast ring in its part, read-only"
    );
    assert!(read_parts.next().is_none(), "each part is handed out once");
}
