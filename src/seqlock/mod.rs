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
//! static QUOTE: StaticSeqLock<[u64; 4]> = StaticSeqLock::new();
//!
//! let mut writer = QUOTE.take_writer().expect("one writer");
//! let reader = QUOTE.reader();
//! writer.write(&[1, 2, 3, 4]);
//! assert_eq!(reader.try_read(), Ok([1, 2, 3, 4]));
//! assert_eq!(reader.version(), 1);
//! ```
//!
//! # Protocol
//! The recipe portable-atomic's seqlock fallback uses, which is sound under the
//! Rust memory model: the writer stores the sequence odd (`Relaxed`), issues a
//! `Release` fence, stores the value as relaxed atomic words, and publishes the
//! next even sequence with `Release`. A reader loads the sequence (relaxed,
//! then an `Acquire` fence), copies the words with relaxed loads, issues an
//! `Acquire` fence and re-loads the sequence; equal and even means the copy is
//! whole. No `read_volatile` on racing data, no references into shared
//! memory, and only relaxed loads: a reader works on a read-only mapping.
//!
//! # How long a reader waits
//! A read attempt fails when the writer was mid-write; the reader then asks a
//! [`Patience`] whether to try again. [`Reader::read`] (with `std`) keeps
//! trying for up to a second ([`Budget`]: spin, then yield the CPU), far longer
//! than a writer preempted by the scheduler stays mid-write, so under a live
//! writer it returns a value. [`Reader::try_read`] spins a bounded number of
//! attempts, for contexts that cannot wait (an interrupt handler: if it
//! interrupted the writer, the writer cannot finish until the handler returns).
//! Giving up yields:
//! - [`ReadError::WriterStalled`]: the sequence stayed at one odd value all
//!   along: the writer is stopped mid-write (preempted for that long, stopped
//!   by a debugger, or dead). It does not mean the writer is dead: starting a
//!   second writer beside a live one breaks the one-writer rule.
//! - [`ReadError::WriterGone`]: the patience knows the writer is dead (the
//!   Linux adapters ask the named segment's creator lock), so the value stays
//!   half-written until a new writer starts.
//! - [`ReadError::Contended`]: writes kept landing during every attempt.
//!
//! What a reader can expect, measured (`bench seqlock`, 2026-11-27, two runs
//! of 11 rounds of 300 ms on a 2-core x86-64 machine that other jobs kept
//! busy): with a writer rewriting the value back to back on another core,
//! [`Reader::read`] returned a value on every call, for 64-byte and 1 KiB
//! values, with 1 and 2 readers. [`Reader::try_read`] returned one in 98 to
//! 99.9% of calls by median, and in as few as 0.5% in a round where the
//! scheduler preempted the writer mid-write: use it only where waiting is
//! impossible, and treat its `WriterStalled` as "not now".
//!
//! # Sequence width
//! The sequence is a 64-bit word on 64-bit targets: at one write per
//! nanosecond it wraps after 292 years, so a stalled reader cannot mistake a
//! wrapped sequence for an unchanged one. 32-bit targets use the 32 low bits of
//! the same 8-byte field, which are its first 4 bytes on a little-endian target
//! and its last 4 on a big-endian one, so both widths see the same odd marker.
//! A 32-bit reader stalled mid-copy for exactly a multiple of 2^31 writes could
//! accept a torn value; at one write per microsecond that is a stall of 36
//! minutes inside a copy of a few words.
//!
//! # Trust
//! A writer that dies mid-write leaves the sequence odd for ever; readers give
//! up as above. A hostile writer can publish garbage values (any bit pattern is
//! a valid payload), never cause undefined behaviour, a panic or an endless loop
//! in a reader (every [`Patience`] here is bounded).
//!
//! # Layout
//! | offset | size | what                                                       |
//! |--------|------|------------------------------------------------------------|
//! | 0      | 128  | [header](crate::layout) (kind `SeqLock`, capacity 1)       |
//! | 128    | 8    | `seq`: twice the writes completed, odd mid-write (native-endian) |
//! | 136    | 120  | unused                                                     |
//! | 256    | slot | the value, `size_of::<T>()` rounded up to 8                |

mod patience;
mod reader;
mod writer;

use core::{fmt, marker::PhantomData};

#[cfg(any(test, feature = "std"))]
#[cfg_attr(docsrs, doc(auto_cfg = false, cfg(feature = "std")))]
pub use patience::Budget;
pub use patience::{Patience, Retry, Spins};
pub use reader::Reader;
pub use writer::Writer;

use crate::header::Fingerprint;
use crate::layout::{ElementLayout, Kind, LINE};
use crate::payload::Pod;
use crate::region::{Memory, ReadRegion, Region, Structure, required_size};
use crate::storage::StaticMemory;
use crate::sync::{Ordering, WORD_BYTES, Word, WordCell, const_fn_unless_loom, if_take_flag};
use crate::{AttachError, CreateError};

/// A count of completed writes: `u64` on 64-bit targets, `u32` elsewhere (see
/// [Sequence width](self#sequence-width)).
pub type Version = crate::sync::WordInt;

/// Byte offset of the 8-byte sequence field.
const SEQ: usize = 128;
/// Byte offset of the value.
const DATA: usize = 256;

/// The offset of the sequence word this target uses: all 8 bytes, or the 4
/// holding the low bits.
const SEQ_WORD: usize = seq_word(WORD_BYTES, cfg!(target_endian = "big"));

/// The offset of the sequence word for a word of `width` bytes on a target of
/// the given byte order: the whole 8-byte field, or the half of it that holds
/// the low 32 bits (the first 4 bytes little-endian, the last 4 big-endian).
const fn seq_word(width: usize, big_endian: bool) -> usize {
    if width == 8 || !big_endian {
        SEQ
    } else {
        SEQ + 4
    }
}

/// A validated view of a seqlock.
pub(crate) struct Lock<'a, T> {
    /// Twice the number of completed writes, plus one while a write is under
    /// way. Written only by the writer.
    seq: &'a Word,
    /// The value: `stride / WORD_BYTES` words, written only by the writer and
    /// copied by readers at any time.
    data: &'a [Word],
    _t: PhantomData<T>,
}

impl<T> Clone for Lock<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Lock<'_, T> {}

/// The seqlock as a kind of structure in a region.
struct Shape<T>(PhantomData<T>);

// SAFETY: `Structure`'s conditions, by number:
// 1. `view` reaches the sequence word at `SEQ_WORD` (within `SEQ .. SEQ + 8` =
//    128..136) and `stride` bytes of value from `DATA` = 256: `required_size`
//    for the one capacity `capacity_ok` admits, 1 (`assertions` pins it).
// 2. Only through `word_at` (at 128, or 132 for the low half on a 32-bit
//    big-endian target: aligned for a `Word` of that width) and `words_at`
//    (at 256), in bounds by 1; no other reference.
// 3. The sequence field and the value lie on separate lines.
// 4. `CONTROL` = `DATA` = 2 lines; `elem` is `ElementLayout::of::<T>()`,
//    whose stride is a multiple of 8, or a header's layout with such a
//    stride (`inspect`).
// 5. Every offset is a constant or comes from `elem`.
unsafe impl<T: Pod> Structure for Shape<T> {
    type View<'a> = Lock<'a, T>;
    const KIND: Kind = Kind::SeqLock;
    const CONTROL: usize = DATA;
    const SLOT_OVERHEAD: usize = 0;

    fn capacity_ok(capacity: u32) -> bool {
        capacity == 1
    }

    unsafe fn view(memory: Memory<'_>, elem: ElementLayout, _: u32) -> Lock<'_, T> {
        // SAFETY: the region is aligned and holds `DATA + stride` bytes (the
        // caller's guarantee); `SEQ_WORD` is aligned for a `Word`.
        unsafe {
            Lock {
                seq: memory.word_at(SEQ_WORD),
                data: memory.words_at(DATA, elem.stride as usize),
                _t: PhantomData,
            }
        }
    }

    fn init(lock: &Lock<'_, T>) {
        lock.seq.store(0, Ordering::Relaxed);
        for word in lock.data {
            word.set(0);
        }
    }
}

/// The sequence word of the seqlock in `region`, whatever its element
/// type: for [`crate::inspect`], which passes the header's own `elem` (its
/// stride checked to be a multiple of 8). Validates the header as
/// [`SeqLock::attach`] does; one relaxed load.
pub(crate) fn inspect(region: ReadRegion<'_>, elem: ElementLayout) -> Result<Version, AttachError> {
    let (lock, ()) = region.attach::<Shape<u8>>(elem)?;
    Ok(lock.seq.load(Ordering::Relaxed))
}

/// A seqlock in a [`Region`].
///
/// `K` is what keeps the region's memory alive, as for
/// [`Spsc`](crate::spsc::Spsc): the writer and every reader hold it (or a
/// clone).
pub struct SeqLock<'a, T, K = ()> {
    lock: Lock<'a, T>,
    keeper: K,
}

impl<T, K> fmt::Debug for SeqLock<'_, T, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SeqLock").finish_non_exhaustive()
    }
}

impl<'a, T: Pod> SeqLock<'a, T> {
    /// Bytes a region needs for a seqlock of `T`, or `None` if that overflows
    /// `usize`.
    pub const fn required_size() -> Option<usize> {
        required_size::<Shape<T>>(ElementLayout::of::<T>(), 1)
    }

    /// Creates a seqlock in `region`, overwriting what it held. Until the first
    /// write its value reads as all zeroes at version 0.
    ///
    /// # Errors
    /// [`CreateError::Fit`] if the region is misaligned or shorter than
    /// [`required_size`](Self::required_size).
    pub fn create<K>(region: Region<'a, K>) -> Result<SeqLock<'a, T, K>, CreateError> {
        let (lock, keeper) = region.create::<Shape<T>>(Fingerprint {
            kind: Kind::SeqLock,
            elem: ElementLayout::of::<T>(),
            capacity: 1,
            tag: 0,
        })?;
        Ok(SeqLock { lock, keeper })
    }

    /// Attaches to a seqlock another process (or another mapping) created in
    /// `region`.
    ///
    /// # Errors
    /// The first mismatch between the region's header and a seqlock of `T`,
    /// or between the header and the region's length ([`AttachError`]).
    pub fn attach<K>(region: Region<'a, K>) -> Result<SeqLock<'a, T, K>, AttachError> {
        let (lock, keeper) = region.attach::<Shape<T>>(ElementLayout::of::<T>())?;
        Ok(SeqLock { lock, keeper })
    }

    /// A reader of a seqlock in memory this process may only read (a
    /// `PROT_READ` mapping): a reader never writes.
    ///
    /// # Errors
    /// As for [`attach`](Self::attach).
    pub fn attach_reader<K>(region: ReadRegion<'a, K>) -> Result<Reader<'a, T, K>, AttachError> {
        let (lock, keeper) = region.attach::<Shape<T>>(ElementLayout::of::<T>())?;
        Ok(Reader::new(lock, keeper))
    }
}

impl<'a, T: Pod, K> SeqLock<'a, T, K> {
    /// A reader; clone it freely (with borrowed memory, it is `Copy`).
    pub fn reader(&self) -> Reader<'a, T, K>
    where
        K: Clone,
    {
        Reader::new(self.lock, self.keeper.clone())
    }

    /// The writer. There must be one writer at a time across all processes
    /// (the creator, or a publisher restarting after one died): in this
    /// process the region, taken by value, holds one seqlock, so a second
    /// writer needs a second mapping; the lock cannot enforce it for other
    /// processes.
    pub fn into_writer(self) -> Writer<'a, T, K> {
        Writer::new(self.lock, self.keeper)
    }
}

/// A seqlock and its value in one value, for a `static` or a local.
///
/// A new seqlock is all zeroes, so a `static` one lives in `.bss`; its header is
/// written when its writer is first taken. Readers come from
/// [`reader`](Self::reader), as many as wanted; the writer from
/// [`split`](Self::split) (through `&mut self`) or, once, from
/// [`take_writer`](Self::take_writer) (through a shared reference, for a plain
/// `static`; needs an atomic swap, see [`StaticSpsc`](crate::spsc::StaticSpsc)).
pub struct StaticSeqLock<T> {
    memory: StaticMemory<T, 1, { DATA / LINE }, 0>,
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
                memory: StaticMemory::zeroed(),
            }
        }
    }

    /// The lock's view, its header written (idempotently).
    fn lock(&self) -> Lock<'_, T> {
        // SAFETY: the memory is aligned to 128 and holds the control lines and
        // one slot of `T` (`StaticMemory`'s guarantee), and 1 is the valid
        // capacity.
        unsafe {
            self.memory.region().describe::<Shape<T>>(Fingerprint {
                kind: Kind::SeqLock,
                elem: ElementLayout::of::<T>(),
                capacity: 1,
                tag: 0,
            })
        }
    }

    /// A reader, `Copy`: take as many as wanted.
    pub fn reader(&self) -> Reader<'_, T> {
        Reader::new(self.lock(), ())
    }

    /// The writer and a reader. The writer borrows the lock, so there is one
    /// writer at a time; a later writer continues the sequence.
    pub fn split(&mut self) -> (Writer<'_, T>, Reader<'_, T>) {
        let lock = self.lock();
        (Writer::new(lock, ()), Reader::new(lock, ()))
    }
}

if_take_flag! {
    impl<T: Pod> StaticSeqLock<T> {
        /// The writer, the first time it is asked for; `None` after.
        pub fn take_writer(&self) -> Option<Writer<'_, T>> {
            self.memory.take(0).then(|| Writer::new(self.lock(), ()))
        }
    }
}

impl<T: Pod> Default for StaticSeqLock<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// Why a read gave up (see [How long a reader waits](self#how-long-a-reader-waits)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ReadError {
    /// The sequence stayed at one odd value on every attempt: the writer is
    /// stopped mid-write, by the scheduler, a debugger, or death.
    WriterStalled,
    /// The writer is dead mid-write, as the reader's [`Patience`] found out.
    WriterGone,
    /// The value changed during every attempt.
    Contended,
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::WriterStalled => {
                "seqlock writer stayed stopped mid-write while the reader waited"
            }
            Self::WriterGone => "seqlock writer died mid-write",
            Self::Contended => "seqlock value changed during every read attempt",
        })
    }
}

impl core::error::Error for ReadError {}

#[cfg(not(loom))]
mod assertions {
    use static_assertions::{assert_impl_all, assert_not_impl_any, const_assert_eq};

    use super::{Reader, SeqLock, StaticSeqLock, Writer};

    const_assert_eq!(
        match SeqLock::<[u64; 3]>::required_size() {
            Some(size) => size,
            None => 0,
        },
        256 + 24
    );
    assert_impl_all!(Writer<'static, u64>: Send);
    assert_not_impl_any!(Writer<'static, u64>: Sync, Clone);
    assert_impl_all!(Reader<'static, u64>: Send, Sync, Copy);
    assert_impl_all!(StaticSeqLock<u64>: Send, Sync);
}

#[cfg(all(test, not(loom)))]
mod tests;
