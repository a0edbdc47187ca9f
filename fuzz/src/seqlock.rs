//! `seqlock`: writes, reads and a hostile peer's rewrites, interleaved on one
//! thread.
//!
//! Input: one configuration byte (element `[u32; 3]`, `u64` or `[u8; 13]`), then
//! steps until the input runs out: write (a fresh value or one from the input),
//! read (`try_read`, or `read_versioned(Spins(n))` for `n` in 0..5), rewrite the
//! sequence word (offset 128: flip its parity, nudge it, set it anywhere
//! including next to the wrap), rewrite value bytes (offset 256), rewrite
//! header bytes, re-attach (a new reader, sometimes a new writer taking over),
//! or re-create the lock.
//!
//! Checked after every step:
//! - a read with the sequence even returns exactly the bytes memory holds and
//!   the version `sequence / 2`; and it returns the last value written as a
//!   whole unless the input rewrote the value bytes since that write;
//! - a read with the sequence odd returns `ReadError::WriterStalled` (nothing
//!   else changes the sequence during the read, so it is never `Contended`), and
//!   it returns: the attempts are bounded by `n` (and by `DEFAULT_RETRIES`);
//! - `Reader::version` and `Writer::version` follow the sequence; a writer that
//!   takes over from an odd sequence continues from the next even one;
//! - `attach` returns exactly what the documented layout says.

use ipc_primitives::ElementLayout;
use ipc_primitives::seqlock::{ReadError, Reader, SeqLock, Spins, Version, Writer};

use crate::spsc_ops::MAX_OPS;
use crate::support::{Elem, Expect, Input, SharedMemory, Widths, expected_attach, offsets};

/// Runs one input.
pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    match input.u8() % 3 {
        0 => run_lock::<[u32; 3]>(&mut input),
        1 => run_lock::<u64>(&mut input),
        _ => run_lock::<[u8; 13]>(&mut input),
    }
}

/// What the seqlock should hold.
#[derive(Debug)]
struct Model<T> {
    /// The last value written as a whole.
    value: T,
    /// The input rewrote value bytes since the last write.
    tainted: bool,
    /// The sequence word in memory.
    shared: Version,
    /// The writer's own (even) sequence.
    writer: Version,
    /// Values handed out so far.
    made: u64,
}

impl<T: Elem> Model<T> {
    /// A freshly created lock: zero value at sequence 0.
    fn new(made: u64) -> Self {
        Self {
            value: T::from_raw(&[]),
            tainted: false,
            shared: 0,
            writer: 0,
            made,
        }
    }
}

/// The sequence as a byte string of its native width.
fn seq_bytes(seq: Version) -> Vec<u8> {
    seq.to_ne_bytes().to_vec()
}

/// The sequence word in memory.
fn read_seq(memory: &SharedMemory) -> Version {
    let mut raw = [0; core::mem::size_of::<Version>()];
    memory.peek(offsets::SEQ, &mut raw);
    Version::from_ne_bytes(raw)
}

fn run_lock<T: Elem>(input: &mut Input<'_>) {
    let size = SeqLock::<T>::required_size().expect("a small lock");
    let elem = core::mem::size_of::<T>();
    let slot = ElementLayout::of::<T>().stride as usize;
    let memory = SharedMemory::zeroed(size, Widths::WideFrom(offsets::SEQ));
    let lock = SeqLock::<T>::create(memory.region()).expect("create");
    let mut reader: Reader<'_, T> = lock.reader();
    let mut writer: Writer<'_, T> = lock.into_writer();
    let mut model = Model::<T>::new(0);
    let mut steps = 0;
    while steps < MAX_OPS && !input.is_empty() {
        steps += 1;
        match input.u8() % 10 {
            0..=2 => {
                let value = if input.bool() {
                    model.made += 1;
                    T::make(model.made)
                } else {
                    T::from_raw(input.take(elem))
                };
                writer.write(&value);
                model.writer = model.writer.wrapping_add(2);
                model.shared = model.writer;
                model.value = value;
                model.tainted = false;
            }
            3 | 4 => {
                let attempts = input.below(6);
                let in_memory = T::from_raw(&memory.snapshot(offsets::VALUE, elem));
                let result = if attempts == 5 {
                    reader.try_read().map(|value| (value, model.shared / 2))
                } else {
                    reader.read_versioned(Spins(attempts as u32))
                };
                if model.shared & 1 == 1 {
                    assert_eq!(
                        result,
                        Err(ReadError::WriterStalled),
                        "read with the sequence odd"
                    );
                } else {
                    let (value, version) = result.expect("a read with the sequence even");
                    assert_eq!(version, model.shared / 2, "version read");
                    assert_eq!(value, in_memory, "a read returns what memory holds");
                    if !model.tainted {
                        assert_eq!(value, model.value, "a read returns the last write");
                    }
                }
            }
            5 => {
                let new = match input.u8() % 4 {
                    0 => model.shared ^ 1,
                    1 => model.shared.wrapping_add_signed((input.u8() as i8).into()),
                    2 => Version::from_ne_bytes(
                        input.u64().to_ne_bytes()[..core::mem::size_of::<Version>()]
                            .try_into()
                            .expect("the version's width"),
                    ),
                    _ => Version::MAX - Version::from(input.u8() % 4),
                };
                memory.poke(offsets::SEQ, &seq_bytes(new));
                model.shared = new;
            }
            6 => {
                let offset = input.below(slot);
                let bytes = input.bytes(slot);
                let before = memory.snapshot(offsets::VALUE, elem);
                memory.poke(offsets::VALUE + offset, bytes);
                if memory.snapshot(offsets::VALUE, elem) != before {
                    model.tainted = true;
                }
            }
            7 => {
                let offset = input.below(offsets::HEADER_FIELDS);
                memory.poke(offset, input.bytes(8));
            }
            8 => {
                let expected =
                    expected_attach(&memory.snapshot(0, size), true, Expect::seqlock::<T>());
                let attached = SeqLock::<T>::attach(memory.region());
                assert_eq!(
                    attached.as_ref().map(|_| 1).map_err(|e| *e),
                    expected,
                    "attach result"
                );
                if let Ok(lock) = attached {
                    reader = lock.reader();
                    if input.bool() {
                        // A writer taking over, perhaps from one that died mid-write.
                        writer = lock.into_writer();
                        model.writer = model.shared.wrapping_add(model.shared & 1);
                    }
                }
            }
            _ => {
                // The old handles are not used again.
                let lock = SeqLock::<T>::create(memory.region()).expect("re-create");
                reader = lock.reader();
                writer = lock.into_writer();
                model = Model::new(model.made);
            }
        }
        assert_eq!(read_seq(&memory), model.shared, "sequence in memory");
        assert_eq!(reader.version(), model.shared / 2, "reader version");
        assert_eq!(writer.version(), model.writer / 2, "writer version");
    }
}
