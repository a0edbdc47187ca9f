//! What may travel through shared memory, and how it is copied in and out.
//!
//! A payload is any type implementing zerocopy's [`FromBytes`], [`IntoBytes`] and
//! [`Immutable`] (derive them): it has no padding, so no uninitialised byte of
//! this process leaks into shared memory; every bit pattern is a valid value, so
//! whatever a peer writes can be read back without undefined behaviour; and it
//! holds no references or pointers. File descriptors are plain integers to the
//! type system: an `i32` that names an fd means nothing in another process, so
//! send fds over a Unix socket instead.
//!
//! Payloads are never borrowed in place: they are copied word by word with
//! relaxed atomic loads and stores into a local value, so another process
//! rewriting a slot mid-copy yields a garbled value (which the structure's
//! protocol then detects or reports), never a data race in this process.

use zerocopy::{FromBytes, Immutable, IntoBytes};

use crate::sync::{WORD_BYTES, WordCell, WordInt};

/// A type that may travel through shared memory; implemented for every type
/// with zerocopy's `FromBytes + IntoBytes + Immutable`.
///
/// ```
/// use zerocopy::{FromBytes, Immutable, IntoBytes};
///
/// #[derive(Clone, Copy, FromBytes, IntoBytes, Immutable)]
/// #[repr(C)]
/// struct Quote {
///     price: u64,
///     size: u32,
///     venue: u32,
/// }
///
/// fn assert_payload<T: ipc_primitives::Pod>() {}
/// assert_payload::<Quote>();
/// assert_payload::<[u64; 8]>();
/// ```
///
/// A type with padding is refused when the derive runs:
///
/// ```compile_fail
/// #[derive(zerocopy::IntoBytes, zerocopy::FromBytes, zerocopy::Immutable)]
/// #[repr(C)]
/// struct Padded { a: u8, b: u64 }
/// ```
pub trait Pod: FromBytes + IntoBytes + Immutable {}

impl<T: FromBytes + IntoBytes + Immutable> Pod for T {}

/// Copies `value` into `dst` (the words of one slot) word by word; the slot's
/// bytes past the value are zeroed.
#[inline(always)]
pub(crate) fn store<T: Pod, W: WordCell>(dst: &[W], value: &T) {
    store_padded(dst, value.as_bytes());
}

/// Copies `bytes` into `dst` from its first byte, word by word; the bytes
/// of the last word past them are zeroed. Nothing is read from `dst`, and
/// no copy of variable length goes through memory.
#[inline(always)]
pub(crate) fn store_padded<W: WordCell>(dst: &[W], bytes: &[u8]) {
    // Whole blocks first, as in `load_bytes`.
    let (mut whole, mut dst) = (bytes, dst);
    while whole.len() >= BLOCK * WORD_BYTES && dst.len() >= BLOCK {
        let (block, rest) = whole.split_at(BLOCK * WORD_BYTES);
        let (words, more) = dst.split_at(BLOCK);
        for (chunk, word) in block.chunks_exact(WORD_BYTES).zip(words) {
            word.set(word_of(chunk));
        }
        (whole, dst) = (rest, more);
    }
    let mut chunks = whole.chunks_exact(WORD_BYTES);
    let mut words = dst.iter();
    // `chunks` first, as in `store_bytes`.
    for (chunk, word) in (&mut chunks).zip(&mut words) {
        word.set(word_of(chunk));
    }
    let tail = chunks.remainder().len();
    if let Some(word) = words.next().filter(|_| tail != 0) {
        word.set(padded(bytes, tail));
    }
}

/// The word whose bytes are `chunk`, `WORD_BYTES` long.
#[inline(always)]
fn word_of(chunk: &[u8]) -> WordInt {
    let mut buf = [0; WORD_BYTES];
    buf.copy_from_slice(chunk);
    WordInt::from_ne_bytes(buf)
}

/// The last `tail` bytes of `bytes` (1 to `WORD_BYTES - 1`) as a word, the
/// rest zero: where `bytes` holds a whole word, its last word shifted, so no
/// copy of variable length stalls the word's load.
#[inline(always)]
fn padded(bytes: &[u8], tail: usize) -> WordInt {
    let len = bytes.len();
    if len >= WORD_BYTES {
        let last = word_of(&bytes[len - WORD_BYTES..]);
        // 8 to 56 bits (8 to 24 for 4-byte words).
        let shift = 8 * (WORD_BYTES - tail) as u32;
        if cfg!(target_endian = "little") {
            last >> shift
        } else {
            last << shift
        }
    } else {
        let mut buf = [0; WORD_BYTES];
        buf[..tail].copy_from_slice(&bytes[len - tail..]);
        WordInt::from_ne_bytes(buf)
    }
}

/// Copies `bytes` into the slot `dst` at byte `offset`, which the caller has
/// checked to lie within the slot. Partly covered words are merged with what
/// they hold, which only the writer of the slot changes; whole words are
/// stored as they are, without a copy of variable length per word.
#[inline]
pub(crate) fn store_bytes<W: WordCell>(dst: &[W], offset: usize, bytes: &[u8]) {
    let (mut index, start) = (offset / WORD_BYTES, offset % WORD_BYTES);
    let mut rest = bytes;
    if start != 0 {
        let take = rest.len().min(WORD_BYTES - start);
        merge(dst.get(index), start, &rest[..take]);
        index += 1;
        rest = &rest[take..];
    }
    let mut chunks = rest.chunks_exact(WORD_BYTES);
    let mut words = dst.get(index..).unwrap_or(&[]).iter();
    // `chunks` first: once it runs out, `words` is not advanced, and its
    // next word is the one the tail goes to.
    for (chunk, word) in (&mut chunks).zip(&mut words) {
        word.set(word_of(chunk));
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        merge(words.next(), 0, tail);
    }
}

/// Writes `bytes` at byte `start` of `word` (if there is one), keeping its
/// other bytes.
#[inline]
fn merge<W: WordCell>(word: Option<&W>, start: usize, bytes: &[u8]) {
    if let Some(word) = word {
        let mut buf = word.get().to_ne_bytes();
        buf[start..start + bytes.len()].copy_from_slice(bytes);
        word.set(WordInt::from_ne_bytes(buf));
    }
}

/// Words copied at a time, unrolled, by [`load_bytes`] and [`store_padded`]:
/// a copy of variable length (a record's) otherwise stays a loop of one word
/// per turn, which cost the record ring's pop about 4 ns in 64 bytes and its
/// 64-byte throughput between two processes about a quarter.
const BLOCK: usize = 8;

/// Copies the first `out.len()` bytes of `src` into `out`; whole words
/// without a copy of variable length per word.
#[inline(always)]
pub(crate) fn load_bytes<W: WordCell>(src: &[W], out: &mut [u8]) {
    // Whole blocks of `BLOCK` words, then word by word.
    let (mut out, mut src) = (out, src);
    while out.len() >= BLOCK * WORD_BYTES && src.len() >= BLOCK {
        let (block, rest) = core::mem::take(&mut out).split_at_mut(BLOCK * WORD_BYTES);
        let (words, more) = src.split_at(BLOCK);
        for (chunk, word) in block.chunks_exact_mut(WORD_BYTES).zip(words) {
            chunk.copy_from_slice(&word.get().to_ne_bytes());
            #[cfg(all(test, not(loom)))]
            test_hook::after_word();
        }
        (out, src) = (rest, more);
    }
    let mut chunks = out.chunks_exact_mut(WORD_BYTES);
    let mut words = src.iter();
    // `chunks` first, as in `store_bytes`.
    for (chunk, word) in (&mut chunks).zip(&mut words) {
        chunk.copy_from_slice(&word.get().to_ne_bytes());
        #[cfg(all(test, not(loom)))]
        test_hook::after_word();
    }
    let tail = chunks.into_remainder();
    if let Some(word) = words.next().filter(|_| !tail.is_empty()) {
        tail.copy_from_slice(&word.get().to_ne_bytes()[..tail.len()]);
        #[cfg(all(test, not(loom)))]
        test_hook::after_word();
    }
}

/// Copies the slot `src` out into a new `T` word by word.
#[inline(always)]
pub(crate) fn load<T: Pod, W: WordCell>(src: &[W]) -> T {
    let mut value = T::new_zeroed();
    load_into(src, &mut value);
    value
}

/// Copies the slot `src` out into `value` word by word.
#[inline(always)]
pub(crate) fn load_into<T: Pod, W: WordCell>(src: &[W], value: &mut T) {
    load_bytes(src, value.as_mut_bytes());
}

/// A hook the unit tests run after each word a copy-out loads, to change
/// shared memory in the middle of a copy deterministically.
#[cfg(all(test, not(loom)))]
pub(crate) mod test_hook {
    use core::cell::Cell;

    /// The hook, its lifetime erased: set only while `with` runs.
    type Hook = *mut (dyn FnMut() + 'static);

    std::thread_local! {
        static HOOK: Cell<Option<Hook>> = const { Cell::new(None) };
    }

    /// Clears the hook when `with` ends, by return or by unwinding.
    struct Clear;

    impl Drop for Clear {
        fn drop(&mut self) {
            HOOK.with(|cell| cell.set(None));
        }
    }

    /// Runs `body` with `hook` called after every word a copy-out loads on
    /// this thread.
    pub(crate) fn with<R>(mut hook: impl FnMut(), body: impl FnOnce() -> R) -> R {
        let hook: &mut dyn FnMut() = &mut hook;
        // SAFETY: only the lifetime is erased (same layout); the pointer is
        // dereferenced only by `after_word` on this thread while `body` runs,
        // and `Clear` removes it before `hook` goes out of scope.
        let hook: Hook = unsafe { core::mem::transmute(hook) };
        HOOK.with(|cell| cell.set(Some(hook)));
        let _clear = Clear;
        body()
    }

    pub(super) fn after_word() {
        // Taken out while it runs, so a hook that copies out itself does not
        // run again.
        if let Some(hook) = HOOK.with(Cell::take) {
            // SAFETY: set by `with`, whose frame (and so the closure) is live
            // while its body runs, which is the only time this is called; no
            // other reference to the closure exists meanwhile.
            unsafe { (*hook)() };
            HOOK.with(|cell| cell.set(Some(hook)));
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::sync::{Ordering, Word};

    #[test]
    fn round_trips_odd_sizes() {
        let slot: [Word; 2] = [Word::new(0), Word::new(0)];
        store(&slot, &[1u8, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
        assert_eq!(
            load::<[u8; 11], _>(&slot),
            [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]
        );
        store(&slot, &0xdead_beef_u32);
        assert_eq!(load::<u32, _>(&slot), 0xdead_beef);
    }

    #[test]
    fn partial_store_keeps_neighbouring_bytes() {
        let slot: [Word; 2] = [Word::new(0), Word::new(0)];
        store(&slot, &[0xaau8; 16]);
        store_bytes(&slot, 3, &[1, 2, 3, 4, 5, 6, 7]);
        let got = load::<[u8; 16], _>(&slot);
        assert_eq!(got[..3], [0xaa; 3]);
        assert_eq!(got[3..10], [1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(got[10..], [0xaa; 6]);
    }

    #[test]
    fn byte_copies_of_every_offset_and_length_round_trip() {
        let slot: [Word; 4] = core::array::from_fn(|_| Word::new(0));
        let fill = [0x5au8; 32];
        for offset in 0..32 {
            for len in 0..=32 - offset {
                store_bytes(&slot, 0, &fill);
                let bytes: std::vec::Vec<u8> = (1..=len as u8).collect();
                store_bytes(&slot, offset, &bytes);
                let mut all = [0; 32];
                load_bytes(&slot, &mut all);
                assert_eq!(all[..offset], fill[..offset], "{offset}+{len}");
                assert_eq!(all[offset..offset + len], bytes[..], "{offset}+{len}");
                assert_eq!(all[offset + len..], fill[offset + len..], "{offset}+{len}");
                let mut prefix = std::vec![0; offset + len];
                load_bytes(&slot, &mut prefix);
                assert_eq!(prefix[..], all[..offset + len]);
            }
        }
    }

    #[test]
    fn padded_stores_of_every_length_zero_the_rest_of_the_last_word() {
        // Two blocks of `BLOCK` words and two words more.
        const WORDS: usize = 2 * BLOCK + 2;
        const SPAN: usize = WORDS * WORD_BYTES;
        let slot: [Word; WORDS] = core::array::from_fn(|_| Word::new(0));
        for len in (0..=SPAN).step_by(if cfg!(miri) { 3 } else { 1 }) {
            store_bytes(&slot, 0, &[0xee; SPAN]);
            let bytes: std::vec::Vec<u8> = (1..=len as u8).collect();
            store_padded(&slot, &bytes);
            let mut all = [0; SPAN];
            load_bytes(&slot, &mut all);
            let last = len.next_multiple_of(WORD_BYTES);
            assert_eq!(all[..len], bytes[..], "{len}");
            assert_eq!(all[len..last], std::vec![0; last - len][..], "{len}");
            assert_eq!(all[last..], std::vec![0xee; SPAN - last][..], "{len}");
            let mut prefix = std::vec![0; len];
            load_bytes(&slot, &mut prefix);
            assert_eq!(prefix[..], bytes[..], "a load of {len} bytes");
        }
    }

    #[test]
    fn memory_holds_the_value_bytes() {
        let slot: [Word; 1] = [Word::new(0)];
        store(&slot, &[1u8, 2, 3, 4, 5]);
        let raw = slot[0].load(Ordering::Relaxed).to_ne_bytes();
        assert_eq!(raw[..5], [1, 2, 3, 4, 5]);
        assert_eq!(raw[5..], [0; WORD_BYTES - 5]);
    }
}
