//! Pieces every fuzz target shares: a decoder from the fuzzer's bytes, the
//! element types under test, memory a hostile peer may rewrite, and a reference
//! validator for region headers.
//!
//! This file is compiled twice: as a module of the fuzz crate (`fuzz/src/lib.rs`)
//! and, through `#[path]`, as a module of `tests/fuzz_regressions.rs` in the root
//! crate. It may therefore only use `ipc-primitives`, `zerocopy`, `core` and
//! `std`, and its siblings reach it as `crate::support`.

use core::alloc::Layout;
use core::fmt::Debug;
use core::ptr::NonNull;

use ipc_primitives::layout::MAGIC;
use ipc_primitives::seqlock::Version;
use ipc_primitives::{ABI_VERSION, AttachError, ElementLayout, FitError, Region};

/// Byte offsets in a region (the `# Layout` tables of `ipc_primitives::layout`,
/// `ipc_primitives::spsc` and `ipc_primitives::seqlock`).
pub mod offsets {
    /// End of the header fields (the rest of its line is never read).
    pub const HEADER_FIELDS: usize = 36;
    /// `capacity` in the header.
    pub const CAPACITY: usize = 20;
    /// `creation` in the header: odd while a creator writes the region.
    pub const CREATION: usize = 32;
    /// A ring's `head` counter.
    pub const HEAD: usize = 128;
    /// A ring's `tail` counter.
    pub const TAIL: usize = 256;
    /// A ring's `ready` event (`waiting`, then `epoch`).
    pub const READY: usize = 384;
    /// A ring's `producer_closed` word (`consumer_closed` follows at +4): bit 0
    /// set once that side is closed.
    pub const CLOSED: usize = 400;
    /// A ring's first slot.
    pub const SLOTS: usize = 512;
    /// Bytes of a stamped slot before its payload: the stamp (`u32`) and 4
    /// unused bytes.
    pub const STAMP: usize = 8;
    /// The largest element stride whose SPSC slots are stamped; a larger
    /// element's slot is its payload alone (the index protocol).
    pub const STAMPED_STRIDE: usize = 56;
    /// A seqlock's sequence word (8 bytes).
    pub const SEQ: usize = 128;
    /// A seqlock's value.
    pub const VALUE: usize = 256;
}

/// Bytes of an SPSC ring's slot of `T` before its payload: [`offsets::STAMP`]
/// if the ring stamps its slots (strides up to [`offsets::STAMPED_STRIDE`]),
/// else none.
pub fn spsc_stamp<T>() -> usize {
    if ElementLayout::of::<T>().stride as usize <= offsets::STAMPED_STRIDE {
        offsets::STAMP
    } else {
        0
    }
}

/// Bytes of one slot of an SPSC ring of `T`: its stamp, if any, then its
/// payload.
pub fn spsc_slot<T>() -> usize {
    spsc_stamp::<T>() + ElementLayout::of::<T>().stride as usize
}

/// Raw `Kind` values in a header (`Kind` is non-exhaustive, so it cannot be cast).
pub const KIND_SPSC: u32 = 1;
/// See [`KIND_SPSC`].
pub const KIND_SEQLOCK: u32 = 2;

/// Reads the fuzzer's bytes front to back; once they run out every read yields
/// zero, so any input decodes to something.
#[derive(Debug)]
pub struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    /// Decodes `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Self { data }
    }

    /// Whether every byte has been read.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The next byte, or 0.
    pub fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&byte, rest)) => {
                self.data = rest;
                byte
            }
            None => 0,
        }
    }

    /// The next two bytes, little-endian.
    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    /// The next four bytes, little-endian.
    pub fn u32(&mut self) -> u32 {
        u32::from(self.u16()) | (u32::from(self.u16()) << 16)
    }

    /// The next eight bytes, little-endian.
    pub fn u64(&mut self) -> u64 {
        u64::from(self.u32()) | (u64::from(self.u32()) << 32)
    }

    /// One bit of the next byte.
    pub fn bool(&mut self) -> bool {
        self.u8() & 1 == 1
    }

    /// A number in `0..n` (0 if `n` is 0 or 1), from one byte if `n <= 256`.
    pub fn below(&mut self, n: usize) -> usize {
        match n {
            0 | 1 => 0,
            2..=256 => usize::from(self.u8()) % n,
            _ => usize::from(self.u16()) % n,
        }
    }

    /// Up to `max` bytes: a length byte, then that many bytes (fewer at the end).
    pub fn bytes(&mut self, max: usize) -> &'a [u8] {
        let want = self.below(max + 1);
        self.take(want)
    }

    /// Exactly the next `n` bytes, or fewer at the end.
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let (taken, rest) = self.data.split_at(n.min(self.data.len()));
        self.data = rest;
        taken
    }

    /// Everything not read yet.
    pub fn rest(&mut self) -> &'a [u8] {
        self.take(self.data.len())
    }
}

/// The element types under test: the models' (`models::Elem`).
pub use crate::models::Elem;

/// Zeroed, 128-byte aligned memory that structures live in while the harness,
/// playing a hostile peer, rewrites its bytes between operations.
///
/// The allocation is exactly as long as the region (at least one byte), so
/// AddressSanitizer reports any access past the region's end. Its pointer is
/// taken once, at allocation; every access after that (the crate's through
/// [`region`](Self::region), the harness's through [`poke`](Self::poke) and
/// [`peek`](Self::peek)) goes through that pointer, and no reference to the
/// bytes is ever made outside the crate.
///
/// The harness reads and writes the bytes with atomics of the same width and
/// alignment as the crate uses at each offset (`u32` for headers and ring
/// control words, a [`Version`]-sized word for slots and a seqlock's sequence
/// and value), read-modify-writing whole words for partial updates. Besides
/// keeping to the letter of `Region`'s contract, this keeps Miri's weak-memory
/// model, which cannot follow mixed-size or mixed atomic/plain accesses to
/// the same bytes, able to check the harness.
#[derive(Debug)]
pub struct SharedMemory {
    base: NonNull<u8>,
    len: usize,
    layout: Layout,
    /// How the crate accesses the memory.
    widths: Widths,
}

/// The widths in which the crate accesses a region's bytes, so that the
/// harness, playing the peer, accesses them the same way.
#[derive(Debug, Clone, Copy)]
pub enum Widths {
    /// `u32` words before the offset, [`Version`]-sized words from it on (a
    /// seqlock: [`offsets::SEQ`]).
    WideFrom(usize),
    /// A ring of slots of `slot` bytes from offset `slots`: `u32` words
    /// before them and in each slot's first [`offsets::STAMP`] bytes (its
    /// stamp), [`Version`]-sized words in each payload.
    Ring {
        /// Offset of the first slot.
        slots: usize,
        /// Bytes per slot, the stamp included.
        slot: usize,
    },
    /// Parts of `stride` bytes from `first` (fan-in lanes): `u32` words
    /// before them and in each part's first `narrow` bytes (its control
    /// lines), [`Version`]-sized words after (its data).
    Parts {
        /// Offset of the first part.
        first: usize,
        /// Bytes from one part to the next.
        stride: usize,
        /// Bytes of `u32` words at the start of each part.
        narrow: usize,
    },
}

impl Widths {
    /// The widths of an SPSC ring of `T`: stamped slots, or (the index
    /// protocol) slots of payload words alone.
    pub fn ring<T>() -> Self {
        if spsc_stamp::<T>() == 0 {
            Self::WideFrom(offsets::SLOTS)
        } else {
            Self::slots::<T>(offsets::SLOTS)
        }
    }

    /// The widths of stamped slots of `T` from offset `slots` on.
    pub fn slots<T>(slots: usize) -> Self {
        Self::Ring {
            slots,
            slot: offsets::STAMP + ElementLayout::of::<T>().stride as usize,
        }
    }

    /// The width of the word holding byte `at`.
    fn at(self, at: usize) -> usize {
        match self {
            Self::WideFrom(from) if at >= from => WIDE,
            Self::Ring { slots, slot } if at >= slots && (at - slots) % slot >= offsets::STAMP => {
                WIDE
            }
            Self::Parts {
                first,
                stride,
                narrow,
            } if at >= first && (at - first) % stride >= narrow => WIDE,
            _ => 4,
        }
    }
}

impl SharedMemory {
    /// `len` zero bytes starting on a 128-byte boundary, accessed by the crate
    /// in the `widths` given.
    pub fn zeroed(len: usize, widths: Widths) -> Self {
        let layout = Layout::from_size_align(len.max(1), 128).expect("a small region");
        // SAFETY: the layout's size is at least 1.
        let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
        let Some(base) = NonNull::new(ptr) else {
            std::alloc::handle_alloc_error(layout)
        };
        Self {
            base,
            len,
            layout,
            widths,
        }
    }

    /// The region's length in bytes.
    pub fn size(&self) -> usize {
        self.len
    }

    /// A region over the memory for as long as `self` is borrowed.
    pub fn region(&self) -> Region<'_> {
        // SAFETY: `from_raw_parts` needs the `len` bytes at `base` to be
        // initialised (they were zeroed at allocation), valid for reads and
        // writes for the region's lifetime (the region borrows `self`, which owns
        // the allocation and frees it only when dropped, after every borrow has
        // ended), and accessed by this process only through the crate.
        // The one other accessor is `poke`/`peek` below, standing in for the
        // other process the contract allows: they access the bytes atomically,
        // through this same pointer, with the crate's own word widths, on this
        // thread and only between calls into the crate, so nothing races; and
        // no reference to the bytes is ever made outside the crate (the crate's
        // own `&AtomicU32`s sit on `UnsafeCell`s, which allow mutation through
        // other pointers).
        unsafe { Region::from_raw_parts(self.base, self.len) }
    }

    /// A region over the memory from byte `offset` on (misaligned unless
    /// `offset` is a multiple of 128), for as long as `self` is borrowed.
    pub fn region_from(&self, offset: usize) -> Region<'_> {
        let offset = offset.min(self.len);
        // SAFETY: as in `region`, for a sub-range of the same allocation:
        // `offset <= len`, so the pointer stays within (or one past) it.
        unsafe { Region::from_raw_parts(self.base.add(offset), self.len - offset) }
    }

    /// The word holding byte `at`: its start and width. A word that would
    /// reach past the region is cut down to single bytes, which the crate never
    /// accesses (its words all lie within the sizes it checks).
    fn word(&self, at: usize) -> (usize, usize) {
        let width = self.widths.at(at);
        let start = at - at % width;
        if start + width <= self.len {
            (start, width)
        } else {
            (at, 1)
        }
    }

    /// Applies `f` to the bytes of every word overlapping `offset .. offset +
    /// len` (clipped to the region) and the range of that word they cover,
    /// loading each word before and storing it after if `store`.
    fn each_word(
        &self,
        offset: usize,
        len: usize,
        store: bool,
        mut f: impl FnMut(usize, &mut [u8]),
    ) {
        let end = offset.saturating_add(len).min(self.len);
        let mut at = offset;
        while at < end {
            let (start, width) = self.word(at);
            let mut buf = [0; 8];
            let word = &mut buf[..width];
            // SAFETY: `start + width <= len`, so the word lies inside the live
            // allocation (keeping `base`'s provenance), and `start` is a
            // multiple of `width` from a 128-aligned base, so it is aligned for
            // the atomic of that width. These accesses never race with the
            // crate's: they run on this thread, between calls into it (see
            // `region`). `AtomicU32`/`AtomicU64` are named here, not taken from
            // the crate's shim, because the harness plays another process.
            unsafe { load_word(self.base.as_ptr().add(start), word) };
            let lo = at - start;
            let hi = (end - start).min(width);
            f(at, &mut word[lo..hi]);
            if store {
                // SAFETY: as for the load.
                unsafe { store_word(self.base.as_ptr().add(start), word) };
            }
            at = start + hi;
        }
    }

    /// Overwrites bytes from `offset` with `bytes` (clipped to the region), as a
    /// peer process could. Call only between operations on the structures in
    /// the region (the harness is single-threaded, so that is any time it runs).
    pub fn poke(&self, offset: usize, bytes: &[u8]) {
        self.each_word(offset, bytes.len(), true, |at, dst| {
            let from = at - offset;
            dst.copy_from_slice(&bytes[from..from + dst.len()]);
        });
    }

    /// Copies bytes from `offset` into `out` (clipped to the region).
    pub fn peek(&self, offset: usize, out: &mut [u8]) {
        self.each_word(offset, out.len(), false, |at, src| {
            let from = at - offset;
            out[from..from + src.len()].copy_from_slice(src);
        });
    }

    /// The native-endian `u32` at `offset`.
    pub fn peek_u32(&self, offset: usize) -> u32 {
        let mut raw = [0; 4];
        self.peek(offset, &mut raw);
        u32::from_ne_bytes(raw)
    }

    /// A copy of `len` bytes from `offset`.
    pub fn snapshot(&self, offset: usize, len: usize) -> Vec<u8> {
        let mut out = vec![0; len];
        self.peek(offset, &mut out);
        out
    }
}

/// Bytes in the crate's wide words (slots, a seqlock's sequence and value).
const WIDE: usize = core::mem::size_of::<Version>();

/// Loads the `word.len()`-byte word at `ptr` (1, 4 or [`WIDE`] bytes) with a
/// relaxed atomic load of that width.
///
/// # Safety
/// `ptr` must be valid for reads of the word, aligned to its width, and not
/// accessed concurrently with a non-atomic or differently sized access.
#[allow(
    clippy::disallowed_types,
    reason = "the harness is the peer, not the crate"
)]
unsafe fn load_word(ptr: *mut u8, word: &mut [u8]) {
    use core::sync::atomic::{AtomicU8, AtomicU32, Ordering::Relaxed};
    match word.len() {
        1 => {
            // SAFETY: the caller's guarantees, for one byte.
            let cell = unsafe { AtomicU8::from_ptr(ptr) };
            word[0] = cell.load(Relaxed);
        }
        4 => {
            // SAFETY: the caller's guarantees, for a `u32`.
            let cell = unsafe { AtomicU32::from_ptr(ptr.cast()) };
            word.copy_from_slice(&cell.load(Relaxed).to_ne_bytes());
        }
        _ => {
            // SAFETY: the caller's guarantees, for a wide word.
            let cell = unsafe { WideAtomic::from_ptr(ptr.cast()) };
            word.copy_from_slice(&cell.load(Relaxed).to_ne_bytes());
        }
    }
}

/// Stores `word` at `ptr` with a relaxed atomic store of its width.
///
/// # Safety
/// As for [`load_word`], for writes.
#[allow(
    clippy::disallowed_types,
    reason = "the harness is the peer, not the crate"
)]
unsafe fn store_word(ptr: *mut u8, word: &[u8]) {
    use core::sync::atomic::{AtomicU8, AtomicU32, Ordering::Relaxed};
    match word.len() {
        1 => {
            // SAFETY: the caller's guarantees, for one byte.
            let cell = unsafe { AtomicU8::from_ptr(ptr) };
            cell.store(word[0], Relaxed);
        }
        4 => {
            // SAFETY: the caller's guarantees, for a `u32`.
            let cell = unsafe { AtomicU32::from_ptr(ptr.cast()) };
            cell.store(
                u32::from_ne_bytes(word.try_into().expect("4 bytes")),
                Relaxed,
            );
        }
        _ => {
            // SAFETY: the caller's guarantees, for a wide word.
            let cell = unsafe { WideAtomic::from_ptr(ptr.cast()) };
            cell.store(
                Version::from_ne_bytes(word.try_into().expect("a word")),
                Relaxed,
            );
        }
    }
}

/// The atomic of the crate's wide words.
#[cfg(target_has_atomic = "64")]
#[allow(
    clippy::disallowed_types,
    reason = "the harness is the peer, not the crate"
)]
type WideAtomic = core::sync::atomic::AtomicU64;
/// The atomic of the crate's wide words.
#[cfg(not(target_has_atomic = "64"))]
#[allow(
    clippy::disallowed_types,
    reason = "the harness is the peer, not the crate"
)]
type WideAtomic = core::sync::atomic::AtomicU32;

impl Drop for SharedMemory {
    fn drop(&mut self) {
        // SAFETY: `base` was allocated in `zeroed` with `layout` and is freed
        // only here; every region borrowed `self`, so none outlives this.
        unsafe { std::alloc::dealloc(self.base.as_ptr(), self.layout) };
    }
}

/// What a structure expects of a header, for [`expected_attach`].
#[derive(Debug, Clone, Copy)]
pub struct Expect {
    /// Raw kind ([`KIND_SPSC`] or [`KIND_SEQLOCK`]).
    pub kind: u32,
    /// The element type's layout.
    pub elem: ElementLayout,
    /// Size of the control block before the slots.
    pub control: usize,
    /// Bytes each slot has beside the element's stride (for a ring, its
    /// stamp, if it has one).
    pub slot_overhead: usize,
    /// Whether the structure allows a capacity.
    pub capacity_ok: fn(u32) -> bool,
    /// Whether the ring's counters are checked (`head - tail <= capacity`).
    pub ring_counters: bool,
}

impl Expect {
    /// What `Spsc::<T>::attach` checks.
    pub fn spsc<T>() -> Self {
        Self {
            kind: KIND_SPSC,
            elem: ElementLayout::of::<T>(),
            control: offsets::SLOTS,
            capacity_ok: |c| c.is_power_of_two() && c <= ipc_primitives::spsc::MAX_CAPACITY,
            ring_counters: true,
            slot_overhead: spsc_stamp::<T>(),
        }
    }

    /// What `SeqLock::<T>::attach` checks.
    pub fn seqlock<T>() -> Self {
        Self {
            kind: KIND_SEQLOCK,
            elem: ElementLayout::of::<T>(),
            control: offsets::VALUE,
            capacity_ok: |c| c == 1,
            ring_counters: false,
            slot_overhead: 0,
        }
    }
}

/// What attaching to `bytes` (a region starting on a 128-byte boundary if
/// `aligned`) must return, written from the documented layout independently
/// of the crate: the capacity, or the first mismatch in the documented order.
pub fn expected_attach(bytes: &[u8], aligned: bool, want: Expect) -> Result<u32, AttachError> {
    let u32_at = |at: usize| u32::from_ne_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    let too_small = |needed: usize| {
        AttachError::Fit(FitError::TooSmall {
            needed,
            actual: bytes.len(),
        })
    };
    if !aligned {
        return Err(AttachError::Fit(FitError::Misaligned { required: 128 }));
    }
    if bytes.len() < offsets::HEADER_FIELDS {
        return Err(too_small(offsets::HEADER_FIELDS));
    }
    if u32_at(offsets::CREATION) % 2 == 1 {
        return Err(AttachError::NotInitialized);
    }
    match u32_at(0) {
        MAGIC => {}
        0 => return Err(AttachError::NotInitialized),
        swapped if swapped == MAGIC.swap_bytes() => return Err(AttachError::WrongByteOrder),
        found => return Err(AttachError::WrongMagic { found }),
    }
    if u32_at(4) != ABI_VERSION {
        return Err(AttachError::WrongVersion {
            expected: ABI_VERSION,
            found: u32_at(4),
        });
    }
    if u32_at(8) != want.kind {
        let expected = ipc_primitives::Kind::from_raw(want.kind).expect("a known kind");
        return Err(AttachError::WrongKind {
            expected,
            found: u32_at(8),
        });
    }
    let found = ElementLayout {
        size: u32_at(12),
        stride: u32_at(16),
    };
    if found != want.elem {
        return Err(AttachError::WrongElement {
            expected: want.elem,
            found,
        });
    }
    let tag = u64::from(u32_at(24)) | u64::from(u32_at(28)) << 32;
    if tag != 0 {
        return Err(AttachError::WrongTag {
            expected: 0,
            found: tag,
        });
    }
    let capacity = u32_at(offsets::CAPACITY);
    if !(want.capacity_ok)(capacity) {
        return Err(AttachError::InvalidCapacity { found: capacity });
    }
    let needed = (want.elem.stride as usize + want.slot_overhead)
        .checked_mul(capacity as usize)
        .and_then(|slots| slots.checked_add(want.control))
        .unwrap_or(usize::MAX);
    if needed > bytes.len() {
        return Err(too_small(needed));
    }
    if want.ring_counters {
        // `head` counts at most a ring's worth beyond `tail`; in a ring with
        // stamps it may also trail it by at most a ring's worth (slots stamped
        // before `head` is published), never without them.
        let (head, tail) = (u32_at(offsets::HEAD), u32_at(offsets::TAIL));
        let trails = want.slot_overhead != 0 && tail.wrapping_sub(head) <= capacity;
        if head.wrapping_sub(tail) > capacity && !trails {
            return Err(AttachError::Corrupted);
        }
    }
    Ok(capacity)
}
