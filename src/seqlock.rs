//! A single-writer sequence lock: the latest value, readable by any number of
//! readers that never block the writer.
//!
//! The market-data case: a publisher overwrites a quote; readers in other
//! processes copy it out whenever they like. The writer never waits for readers
//! and never reads their state.
//!
//! ```
//! use ipc_primitives::seqlock::StaticSeqLock;
//!
//! let mut lock = StaticSeqLock::<[u64; 4]>::new();
//! let (mut writer, reader) = lock.split();
//! writer.write(&[1, 2, 3, 4]);
//! assert_eq!(reader.try_read(), Ok([1, 2, 3, 4]));
//! assert_eq!(reader.version(), 1);
//! ```
//!
//! # Protocol
//! The recipe portable-atomic's seqlock fallback uses, which is sound under the
//! Rust memory model: the writer stores the sequence odd (`Relaxed`), issues a
//! `Release` fence, stores the value as relaxed atomic words, and publishes the
//! next even sequence with `Release`. A reader loads the sequence (`Acquire`),
//! copies the words with relaxed loads, issues an `Acquire` fence and re-loads
//! the sequence; equal and even means the copy is whole. No `read_volatile` on
//! racing data, no references into shared memory.
//!
//! # Sequence width
//! The sequence is a 64-bit word where the target has 64-bit atomics: at one
//! write per nanosecond it wraps after 292 years, so a stalled reader cannot
//! mistake a wrapped sequence for an unchanged one. Targets with only 32-bit
//! atomics (thumbv7em, thumbv6m, riscv32imc) use the low 32 bits of the same
//! 8-byte field: a reader stalled mid-copy for exactly a multiple of 2^31 writes
//! could accept a torn value there; at one write per microsecond that is a stall
//! of 36 minutes inside a copy of a few words.
//!
//! # Trust
//! A writer that dies mid-write leaves the sequence odd forever; readers retry a
//! bounded number of times and report [`ReadError::WriterStalled`]. A hostile
//! writer can publish garbage values (any bit pattern is a valid payload), never
//! cause undefined behaviour, a panic or a hang in a reader.
//!
//! # Layout
//! | offset | size | what                                                       |
//! |--------|------|------------------------------------------------------------|
//! | 0      | 128  | [header](crate::layout) (kind `SeqLock`, capacity 1)       |
//! | 128    | 128  | `seq`: 8 bytes, twice the writes completed, odd mid-write  |
//! | 256    | slot | the value, `size_of::<T>()` rounded up to 8                |

use core::{cell::Cell, fmt, marker::PhantomData};

use crate::layout::{CacheLine, ElementLayout, Fingerprint, Header, Kind};
use crate::payload::{self, Pod};
use crate::region::{Control, Placed, Region, required_size};
use crate::storage::InlineSlots;
use crate::sync::{self, Ordering, Word, WordInt, const_fn_unless_loom, fence};
use crate::{AttachError, CreateError};

/// A count of completed writes: `u64` where the target has 64-bit atomics,
/// `u32` elsewhere (see [Sequence width](self#sequence-width)).
pub type Version = WordInt;

/// Read attempts [`Reader::try_read`] makes before giving up.
pub const DEFAULT_RETRIES: u32 = 1024;

/// The shared control block.
#[repr(C)]
pub(crate) struct SeqControl {
    header: Header,
    /// Twice the number of completed writes, plus one while a write is under
    /// way. Written only by the writer.
    seq: CacheLine<Word>,
}

// SAFETY: `#[repr(C)]`, a `Header` then a `CacheLine<Word>`: only atomics, size
// 256 (a multiple of 128), alignment 128.
unsafe impl Control for SeqControl {
    const KIND: Kind = Kind::SeqLock;

    fn capacity_ok(capacity: u32) -> bool {
        capacity == 1
    }

    fn header(&self) -> &Header {
        &self.header
    }

    fn reset(&self) {
        self.seq.0.store(0, Ordering::Relaxed);
    }
}

/// A validated view of a seqlock.
struct Lock<'a, T> {
    control: &'a SeqControl,
    data: &'a [Word],
    _t: PhantomData<T>,
}

impl<T> Clone for Lock<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Lock<'_, T> {}

/// A seqlock in a [`Region`].
pub struct SeqLock<'a, T> {
    lock: Lock<'a, T>,
}

impl<T> fmt::Debug for SeqLock<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SeqLock").finish_non_exhaustive()
    }
}

impl<'a, T: Pod> SeqLock<'a, T> {
    /// Bytes a region needs for a seqlock of `T`.
    pub const fn required_size() -> usize {
        match required_size::<SeqControl>(ElementLayout::of::<T>(), 1) {
            Some(size) => size,
            None => panic!("element type too large"),
        }
    }

    /// Creates a seqlock in `region`, overwriting what it held. Until the first
    /// write its value reads as all zeroes at version 0.
    pub fn create(region: Region<'a>) -> Result<Self, CreateError> {
        let Placed { control, slots, .. } = region.create::<SeqControl, T>(1)?;
        Ok(Self::from_parts(control, slots))
    }

    /// Attaches to a seqlock another thread or process created in `region`.
    pub fn attach(region: Region<'a>) -> Result<Self, AttachError> {
        let Placed { control, slots, .. } = region.attach::<SeqControl, T>()?;
        Ok(Self::from_parts(control, slots))
    }

    fn from_parts(control: &'a SeqControl, data: &'a [Word]) -> Self {
        Self {
            lock: Lock {
                control,
                data,
                _t: PhantomData,
            },
        }
    }

    /// A reader; copy it freely.
    pub fn reader(&self) -> Reader<'a, T> {
        Reader { lock: self.lock }
    }

    /// The writer. There must be one writer at a time across all processes
    /// (the creator, or a publisher restarting after one died); the lock cannot
    /// enforce that for other processes.
    pub fn into_writer(self) -> Writer<'a, T> {
        Writer::new(self.lock)
    }
}

/// A seqlock and its value in one value, for a `static` or a local.
#[repr(C)]
pub struct StaticSeqLock<T> {
    control: SeqControl,
    data: InlineSlots<T, 1>,
}

impl<T> fmt::Debug for StaticSeqLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticSeqLock").finish_non_exhaustive()
    }
}

impl<T: Pod> StaticSeqLock<T> {
    const_fn_unless_loom! {
        /// A seqlock whose value reads as all zeroes at version 0.
        pub fn new() -> Self {
            Self {
                control: SeqControl {
                    header: Header::new(Fingerprint {
                        kind: Kind::SeqLock,
                        elem: ElementLayout::of::<T>(),
                        capacity: 1,
                    }),
                    seq: CacheLine(Word::new(0)),
                },
                data: InlineSlots::zeroed(),
            }
        }
    }

    /// The writer and a reader (which is `Copy`). They borrow the lock, so
    /// there is one writer at a time.
    pub fn split(&mut self) -> (Writer<'_, T>, Reader<'_, T>) {
        let lock = Lock {
            control: &self.control,
            data: self.data.words(),
            _t: PhantomData,
        };
        (Writer::new(lock), Reader { lock })
    }
}

impl<T: Pod> Default for StaticSeqLock<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// Overwrites the value. One per seqlock; `Send` but not `Sync` or `Clone`.
pub struct Writer<'a, T> {
    lock: Lock<'a, T>,
    /// The sequence this writer last published: even, the authoritative copy.
    seq: WordInt,
    _not_sync: PhantomData<Cell<()>>,
}

impl<T> fmt::Debug for Writer<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Writer")
            .field("seq", &self.seq)
            .finish_non_exhaustive()
    }
}

impl<'a, T: Pod> Writer<'a, T> {
    fn new(lock: Lock<'a, T>) -> Self {
        let seq = lock.control.seq.0.load(Ordering::Acquire);
        // Odd means a writer died mid-write: continue from the next even value.
        Self {
            lock,
            seq: seq.wrapping_add(seq & 1),
            _not_sync: PhantomData,
        }
    }

    /// Publishes `value`. Never waits for readers.
    #[inline]
    pub fn write(&mut self, value: &T) {
        let seq = &self.lock.control.seq.0;
        seq.store(self.seq.wrapping_add(1), Ordering::Relaxed);
        fence(Ordering::Release);
        payload::store(self.lock.data, value);
        self.seq = self.seq.wrapping_add(2);
        seq.store(self.seq, Ordering::Release);
    }

    /// Writes completed through this lock (the published sequence halved).
    pub fn version(&self) -> Version {
        self.seq / 2
    }
}

/// Copies the value out. `Copy`, `Send` and `Sync`: share it freely.
pub struct Reader<'a, T> {
    lock: Lock<'a, T>,
}

impl<T> Clone for Reader<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Reader<'_, T> {}

impl<T> fmt::Debug for Reader<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reader").finish_non_exhaustive()
    }
}

impl<T: Pod> Reader<'_, T> {
    /// Reads the value, retrying up to [`DEFAULT_RETRIES`] times.
    #[inline]
    pub fn try_read(&self) -> Result<T, ReadError> {
        self.try_read_with(DEFAULT_RETRIES).map(|(value, _)| value)
    }

    /// Reads the value and the version it was written as (writes completed),
    /// making at most `attempts` attempts (at least one).
    pub fn try_read_with(&self, attempts: u32) -> Result<(T, Version), ReadError> {
        let seq = &self.lock.control.seq.0;
        let mut first_odd = None;
        let mut changed = false;
        for _ in 0..attempts.max(1) {
            let before = seq.load(Ordering::Acquire);
            if before & 1 == 1 {
                changed |= *first_odd.get_or_insert(before) != before;
                sync::spin_loop();
                continue;
            }
            let value = payload::load(self.lock.data);
            fence(Ordering::Acquire);
            if seq.load(Ordering::Relaxed) == before {
                return Ok((value, before / 2));
            }
            changed = true;
            sync::spin_loop();
        }
        if changed || first_odd.is_none() {
            Err(ReadError::Contended)
        } else {
            Err(ReadError::WriterStalled)
        }
    }

    /// Writes completed so far; the value read next is at least this new.
    pub fn version(&self) -> Version {
        self.lock.control.seq.0.load(Ordering::Acquire) / 2
    }
}

/// Why a read gave up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ReadError {
    /// The sequence stayed at one odd value on every attempt: the writer is
    /// stalled mid-write, or died there.
    WriterStalled,
    /// The value changed during every attempt.
    Contended,
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::WriterStalled => "seqlock writer is stalled mid-write (or died there)",
            Self::Contended => "seqlock value changed during every read attempt",
        })
    }
}

impl core::error::Error for ReadError {}

#[cfg(not(loom))]
mod assertions {
    use core::mem::{offset_of, size_of};

    use static_assertions::{assert_impl_all, assert_not_impl_any, const_assert_eq};

    use super::{Reader, SeqControl, StaticSeqLock, Writer};

    const_assert_eq!(size_of::<SeqControl>(), 256);
    const_assert_eq!(offset_of!(SeqControl, seq), 128);
    const_assert_eq!(offset_of!(StaticSeqLock<[u64; 3]>, data), 256);

    assert_impl_all!(Writer<'static, u64>: Send);
    assert_not_impl_any!(Writer<'static, u64>: Sync, Clone);
    assert_impl_all!(Reader<'static, u64>: Send, Sync, Copy);
}

#[cfg(all(test, not(loom)))]
mod tests {
    use zerocopy::IntoBytes;

    use super::*;
    use crate::Line;

    fn memory() -> std::vec::Vec<Line> {
        std::vec![Line::ZERO; Line::count_for(SeqLock::<[u64; 3]>::required_size())]
    }

    #[test]
    fn reads_the_latest_write_and_counts_versions() {
        let mut mem = memory();
        let region = Region::new(mem.as_mut_bytes());
        let mut writer = SeqLock::<[u64; 3]>::create(region).unwrap().into_writer();
        let reader = SeqLock::<[u64; 3]>::attach(region).unwrap().reader();
        assert_eq!(reader.try_read_with(1), Ok(([0; 3], 0)));
        writer.write(&[1, 2, 3]);
        writer.write(&[4, 5, 6]);
        assert_eq!(reader.try_read_with(1), Ok(([4, 5, 6], 2)));
        assert_eq!((reader.version(), writer.version()), (2, 2));
    }

    #[test]
    fn a_writer_dead_mid_write_stalls_readers_boundedly() {
        let mut mem = memory();
        let region = Region::new(mem.as_mut_bytes());
        let lock = SeqLock::<[u64; 3]>::create(region).unwrap();
        let reader = lock.reader();
        lock.lock.control.seq.0.store(7, Ordering::Release);
        assert_eq!(reader.try_read(), Err(ReadError::WriterStalled));
        assert_eq!(reader.try_read_with(0), Err(ReadError::WriterStalled));
        // A restarted writer continues from the next even sequence.
        let mut writer = SeqLock::<[u64; 3]>::attach(region).unwrap().into_writer();
        writer.write(&[9; 3]);
        assert_eq!(reader.try_read_with(1), Ok(([9; 3], 5)));
    }

    #[test]
    fn static_lock_splits_into_writer_and_copyable_readers() {
        let mut lock = StaticSeqLock::<u32>::new();
        let (mut writer, reader) = lock.split();
        let copy = reader;
        writer.write(&41);
        writer.write(&42);
        assert_eq!((reader.try_read(), copy.try_read()), (Ok(42), Ok(42)));
    }

    #[test]
    fn create_and_attach_check_the_region() {
        let mut mem = memory();
        let bytes = mem.as_mut_bytes();
        assert_eq!(
            SeqLock::<[u64; 3]>::create(Region::new(&mut bytes[..200])).map(|_| ()),
            Err(CreateError::TooSmall {
                needed: 256 + 24,
                actual: 200
            })
        );
        SeqLock::<[u64; 3]>::create(Region::new(bytes)).unwrap();
        bytes[24..28].copy_from_slice(&2u32.to_ne_bytes());
        assert_eq!(
            SeqLock::<[u64; 3]>::attach(Region::new(bytes)).map(|_| ()),
            Err(AttachError::InvalidCapacity { found: 2 })
        );
    }
}
