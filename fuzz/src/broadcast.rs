//! `broadcast`: every broadcast-ring operation against a model.
//!
//! Input: one configuration byte (capacity 2 to 64; element `[u8; 13]`,
//! `[u32; 3]`, `u64` or `[u64; 7]` (the largest stamped stride), whose slots
//! are stamped, or `[u8; 61]` or `[u64; 8]`, whose slots are counted; a
//! fresh ring, or one whose writer restarts a few messages below 2^32 with
//! the last `capacity` messages whole in its slots, so that positions wrap),
//! then operations until the input runs out: publish one or a batch, receive
//! one (`try_recv`) or a batch of any length, 0 included (`recv_slice`) on
//! one of four readers, join a reader at any `Start`, choose where it
//! resumes after a lap, clone one, re-attach one through a read-only region,
//! restart the writer, sleep (giving up, waking spuriously, or with a
//! message published mid-sleep), ask the writer whether to wake, and
//! re-create the ring.
//!
//! The model is the list of every message published (absolute `u64`
//! positions; the ring's are their low 32 bits), the writer's `intent` (its
//! announcements, with counted slots) and each reader's position in it and
//! the last `published` it saw. Checked after every operation: every result
//! equals the model's (a message, the batch, `Empty`, `Lagged` with its
//! exact count, `ReadOnly`, the sleeper's error), and so do every reader's
//! position, `published`, `pending`, `may_sleep`, `retained`, the writer's
//! position, wake-ups and the doorbell's announcement; every loop is bounded.
//! Independently of the model: the honest writer's ring never reports
//! `Corrupted`, and a reader at most `retained()` behind is never lapped.
//! `broadcast_hostile` reuses all of it with a peer rewriting the ring's
//! bytes between operations.

use ipc_primitives::ElementLayout;
use ipc_primitives::broadcast::{
    BlockingError, Broadcast, MAX_CAPACITY, MIN_CAPACITY, RecvError, Start,
};

pub use crate::models::broadcast::{Model, Op, Outcome, announce, honest_check};
use crate::support::{Elem, Expect, Input, SharedMemory, Widths};

/// The handles under test, [`READERS`] readers.
pub type Handles<'m, T> = crate::models::broadcast::Handles<'m, T, READERS>;

/// Readers kept at once.
pub const READERS: usize = 4;
/// Operations per input, at most.
pub const MAX_OPS: usize = 4000;
/// Raw `Kind::Broadcast`.
pub const KIND_BROADCAST: u32 = 3;

/// Byte offsets of the documented layout (`ipc_primitives::broadcast`).
pub mod offsets {
    /// `published`.
    pub const PUBLISHED: usize = 128;
    /// `intent`: messages the writer announced (counted slots).
    pub const INTENT: usize = 132;
    /// The doorbell: `waiting`, then `epoch`.
    pub const DOORBELL: usize = 256;
    /// The first slot.
    pub const SLOTS: usize = 384;
    /// Bytes of a stamped slot before its message: the stamp and 4 unused
    /// bytes.
    pub const STAMP: usize = 8;
    /// The largest stride whose slots are stamped.
    pub const STAMPED_STRIDE: usize = 56;
}

/// Bytes of a slot of `T` before its message: a stamp up to the largest
/// stamped stride, none above.
pub fn stamp<T>() -> usize {
    if ElementLayout::of::<T>().stride as usize <= offsets::STAMPED_STRIDE {
        offsets::STAMP
    } else {
        0
    }
}

/// What `Broadcast::<T>::attach` checks.
pub fn expect<T>() -> Expect {
    Expect {
        kind: KIND_BROADCAST,
        elem: ElementLayout::of::<T>(),
        control: offsets::SLOTS,
        slot_overhead: stamp::<T>(),
        capacity_ok: |c| c.is_power_of_two() && (MIN_CAPACITY..=MAX_CAPACITY).contains(&c),
        ring_counters: false,
    }
}

/// Bytes of one slot of `T`.
pub fn slot_size<T>() -> usize {
    stamp::<T>() + ElementLayout::of::<T>().stride as usize
}

/// The widths in which a ring of `T` is accessed: stamped slots, or
/// message words alone.
pub fn widths<T>() -> Widths {
    if stamp::<T>() == 0 {
        Widths::WideFrom(offsets::SLOTS)
    } else {
        Widths::slots::<T>(offsets::SLOTS)
    }
}

/// Memory for a ring of `capacity` `T`s, exactly as long.
pub fn memory<T>(capacity: u32) -> SharedMemory {
    let len = offsets::SLOTS + capacity as usize * slot_size::<T>();
    SharedMemory::zeroed(len, widths::<T>())
}

/// Byte offset of the slot of `position`.
pub fn slot_offset<T>(capacity: u32, position: u64) -> usize {
    offsets::SLOTS + (position % u64::from(capacity)) as usize * slot_size::<T>()
}

fn start_of(byte: u8) -> Start {
    match byte % 3 {
        0 => Start::Oldest,
        1 => Start::Newest,
        _ => Start::Next,
    }
}

/// The operation `tag` and its arguments from `input`.
pub fn decode_op(tag: u8, input: &mut Input<'_>, capacity: u32) -> Op {
    let reader = |input: &mut Input<'_>| input.below(READERS);
    match tag % 16 {
        0..=2 => Op::Publish,
        3 => Op::PublishSlice(input.below(2 * capacity as usize + 2)),
        4..=6 => Op::Recv(reader(input)),
        7 => Op::RecvSlice(reader(input), input.below(2 * capacity as usize + 2)),
        8 => Op::Join(reader(input), start_of(input.u8())),
        9 => Op::OnLag(reader(input), start_of(input.u8())),
        10 => Op::Clone(reader(input), reader(input)),
        11 => Op::AttachReadOnly(reader(input), start_of(input.u8())),
        12 => Op::RestartWriter,
        13 => {
            let byte = input.u8();
            Op::Sleep {
                reader: usize::from(byte) % READERS,
                spins: u32::from(byte >> 2 & 3),
                sleeps: u32::from(byte >> 4 & 3),
                publish: byte & 0x80 != 0,
            }
        }
        14 => Op::WakeNeeded,
        _ => {
            // Rarely: it starts everything over.
            if input.u8() < 16 {
                Op::Recreate
            } else {
                Op::WakeNeeded
            }
        }
    }
}

/// What must hold whatever memory holds: no reader's counts are out of
/// range, and each call's result fits what it did to the reader.
pub fn loose_check<T: Elem>(
    handles: &Handles<'_, T>,
    op: Op,
    before: &[u32; READERS],
    outcome: &Outcome<T>,
) {
    let moved = |i: usize| handles.readers[i].position().wrapping_sub(before[i]);
    let lap = |i: usize, missed: u64| {
        assert!((1..=1 << 31).contains(&missed), "missed {missed}");
        assert_eq!(
            u64::from(moved(i)),
            missed,
            "a lap's count is the distance moved"
        );
    };
    match (op, outcome) {
        (Op::Recv(i), Outcome::Received(got)) => match got {
            Ok(_) => assert_eq!(moved(i), 1),
            Err(RecvError::Empty) => assert_eq!(moved(i), 0),
            Err(RecvError::Lagged { missed }) => lap(i, *missed),
            Err(RecvError::Corrupted) => {}
        },
        (Op::RecvSlice(i, _), Outcome::Sliced(got)) => match got {
            Ok(values) => assert_eq!(moved(i) as usize, values.len()),
            Err(RecvError::Empty) => assert_eq!(moved(i), 0),
            Err(RecvError::Lagged { missed }) => lap(i, *missed),
            Err(RecvError::Corrupted) => {}
        },
        (Op::Sleep { reader, .. }, Outcome::Slept { got, .. }) => match got {
            Err(BlockingError::ReadOnly) => assert!(!handles.readers[reader].may_sleep()),
            Err(BlockingError::Lagged { missed }) => lap(reader, *missed),
            _ => {}
        },
        _ => {}
    }
    for reader in &handles.readers {
        assert_eq!(
            reader.pending(),
            reader.published().wrapping_sub(reader.position())
        );
        assert!(reader.capacity().is_power_of_two());
    }
}

/// A ring of `capacity` `T`s in `memory`, fresh or (with `restart`) as a
/// writer restarting `restart` messages below 2^33 left it (with stamps and
/// an odd `restart`, dead before publishing its last message), with its last
/// `capacity` messages whole in their slots (and, with counted slots, up to
/// `announce` more announced); its handles and model.
pub fn start<'m, T: Elem>(
    memory: &'m SharedMemory,
    capacity: u32,
    restart: Option<u32>,
) -> (Handles<'m, T>, Model<T>) {
    let stamped = stamp::<T>() != 0;
    let ring = Broadcast::<T>::create(memory.region(), capacity).expect("create");
    let Some(behind) = restart else {
        return (
            Handles::new(ring, 0),
            Model::new(capacity, stamped, 0, 0, 0, READERS),
        );
    };
    let published = (1u64 << 33) - u64::from(behind);
    let first = published - u64::from(capacity);
    let intent = if stamped {
        0
    } else {
        published + u64::from(behind % (announce(capacity) + 1))
    };
    // With stamps, an odd `behind` has the last writer die between its last
    // message's stamp and `published`: the new writer publishes that message.
    let unpublished = u64::from(stamped && behind % 2 == 1);
    memory.poke(
        offsets::PUBLISHED,
        &((published - unpublished) as u32).to_ne_bytes(),
    );
    memory.poke(offsets::INTENT, &(intent as u32).to_ne_bytes());
    for position in first..published {
        let at = slot_offset::<T>(capacity, position);
        if stamped {
            memory.poke(at, &(position as u32).wrapping_add(1).to_ne_bytes());
        }
        memory.poke(at + stamp::<T>(), T::make(position).as_bytes());
    }
    let ring = Broadcast::<T>::attach(memory.region()).expect("attach after a restart");
    (
        Handles::new(ring, published),
        Model::new(capacity, stamped, published, first, intent, READERS),
    )
}

/// A run over a ring of any element type, which [`dispatch`] picks.
pub trait RingRun {
    /// Runs `input` on a ring of `capacity` `T`s, fresh or restarted (see
    /// [`start`]).
    fn run<T: Elem>(&self, capacity: u32, restart: Option<u32>, input: &mut Input<'_>);
}

/// Decodes the configuration byte of `data` (capacity, restart, element
/// type) and runs `ring_run` on the rest.
pub fn dispatch(data: &[u8], ring_run: &impl RingRun) {
    let mut input = Input::new(data);
    let config = input.u8();
    let capacity = MIN_CAPACITY << (config % 6);
    let restart = (config & 0x40 != 0).then(|| 1 + u32::from(input.u8()));
    let input = &mut input;
    match (config >> 3) & 7 {
        0 | 6 => ring_run.run::<[u8; 13]>(capacity, restart, input),
        1 | 7 => ring_run.run::<[u32; 3]>(capacity, restart, input),
        2 => ring_run.run::<u64>(capacity, restart, input),
        3 => ring_run.run::<[u64; 7]>(capacity, restart, input),
        4 => ring_run.run::<[u8; 61]>(capacity, restart, input),
        _ => ring_run.run::<[u64; 8]>(capacity, restart, input),
    }
}

/// Runs one input.
pub fn run(data: &[u8]) {
    dispatch(data, &Honest);
}

/// The honest writer's run: everything exactly as the model says.
struct Honest;

impl RingRun for Honest {
    fn run<T: Elem>(&self, capacity: u32, restart: Option<u32>, input: &mut Input<'_>) {
        let memory = memory::<T>(capacity);
        let (mut handles, mut model) = start::<T>(&memory, capacity, restart);
        model.check(&handles.writer, &handles.readers);
        let mut steps = 0;
        while steps < MAX_OPS && !input.is_empty() {
            steps += 1;
            let op = decode_op(input.u8(), input, capacity);
            if let Op::Recreate = op {
                (handles, model) = start::<T>(&memory, capacity, None);
            } else {
                let pending: [u32; READERS] =
                    core::array::from_fn(|i| handles.readers[i].pending());
                let got = handles.perform(op, || memory.region());
                honest_check(op, &got, &pending, handles.writer.retained());
                assert_eq!(got, model.expect(op), "{op:?}");
            }
            model.check(&handles.writer, &handles.readers);
        }
    }
}
