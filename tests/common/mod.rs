//! Helpers shared by the integration tests: aligned memory for regions, raw access
//! to a ring's counters (as a peer process has), a small deterministic random
//! number generator, a back-off for retry loops, and a push and a pop that retry
//! with it.
#![allow(dead_code, reason = "each test crate uses a subset of these helpers")]

use core::ptr::NonNull;

use ipc_primitives::seqlock::{SeqLock, Version};
use ipc_primitives::spsc::{Consumer, PopError, Producer, PushError, Spsc};
use ipc_primitives::{Line, Pod, Region};
use zerocopy::IntoBytes;

/// Zeroed, 128-byte aligned memory for a ring of `capacity` elements of `T`.
pub(crate) fn ring_memory<T: Pod>(capacity: u32) -> Vec<Line> {
    let bytes = Spsc::<T>::required_size(capacity).expect("ring size fits in usize");
    vec![Line::ZERO; Line::count_for(bytes)]
}

/// Zeroed, 128-byte aligned memory for a seqlock of `T`.
pub(crate) fn seqlock_memory<T: Pod>() -> Vec<Line> {
    let bytes = SeqLock::<T>::required_size().expect("seqlock size fits in usize");
    vec![Line::ZERO; Line::count_for(bytes)]
}

/// Byte offsets of a ring's shared counters (see the `# Layout` table in
/// `ipc_primitives::spsc`).
const HEAD_OFFSET: usize = 128;
const TAIL_OFFSET: usize = 256;

/// Overwrites a ring's shared `head` and `tail` counters in memory no handle is
/// using, as another process could.
pub(crate) fn set_ring_counters(mem: &mut [Line], head: u32, tail: u32) {
    let bytes = mem.as_mut_bytes();
    bytes[HEAD_OFFSET..HEAD_OFFSET + 4].copy_from_slice(&head.to_ne_bytes());
    bytes[TAIL_OFFSET..TAIL_OFFSET + 4].copy_from_slice(&tail.to_ne_bytes());
}

/// Reads a ring's shared `head` and `tail` counters from memory no handle is
/// using.
pub(crate) fn ring_counters(mem: &[Line]) -> (u32, u32) {
    let bytes = mem.as_bytes();
    let word = |at: usize| {
        let mut raw = [0; 4];
        raw.copy_from_slice(&bytes[at..at + 4]);
        u32::from_ne_bytes(raw)
    };
    (word(HEAD_OFFSET), word(TAIL_OFFSET))
}

/// Xorshift64: deterministic, seedable, good enough to pick batch sizes.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed | 1)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A number in `low..=high`.
    pub(crate) fn range(&mut self, low: usize, high: usize) -> usize {
        let span = (high - low + 1) as u64;
        low + (self.next_u64() % span) as usize
    }
}

/// Waits a little before a retry: spins briefly, then yields the CPU (the test
/// machines have few cores and run several tests at once). Under Miri it always
/// yields, which lets Miri's scheduler run the peer.
pub(crate) fn backoff(attempt: &mut u32) {
    if cfg!(miri) || *attempt >= 16 {
        std::thread::yield_now();
    } else {
        core::hint::spin_loop();
    }
    *attempt = attempt.saturating_add(1);
}

/// Pushes `value`, retrying (with [`backoff`]) while the ring is full.
pub(crate) fn push<T: Pod, K>(tx: &mut Producer<'_, T, K>, mut value: T) {
    let mut attempt = 0;
    loop {
        match tx.try_push(value) {
            Ok(()) => return,
            Err(PushError::Full(back)) => value = back,
            Err(e) => panic!("push failed: {e}"),
        }
        backoff(&mut attempt);
    }
}

/// Pops one element, retrying (with [`backoff`]) while the ring is empty.
pub(crate) fn pop<T: Pod, K>(rx: &mut Consumer<'_, T, K>) -> T {
    let mut attempt = 0;
    loop {
        match rx.try_pop() {
            Ok(value) => return value,
            Err(PopError::Empty) => backoff(&mut attempt),
            Err(e) => panic!("pop failed: {e}"),
        }
    }
}

/// A seqlock version as `u64`, whatever its width on this target.
#[allow(
    clippy::useless_conversion,
    reason = "`Version` is `u32` on targets without 64-bit atomics"
)]
pub(crate) fn version(version: Version) -> u64 {
    version.into()
}

/// Two regions over the same memory, as two processes mapping one segment
/// have: for tests that attach each side of a structure separately.
pub(crate) fn two_mappings(mem: &mut [Line]) -> (Region<'_>, Region<'_>) {
    let bytes = mem.as_mut_bytes();
    let len = bytes.len();
    let ptr = NonNull::from(bytes).cast::<u8>();
    // SAFETY: `from_raw_parts` asks, for the borrow of `mem` (which both
    // regions carry): the bytes are valid for reads and writes and initialised
    // (a live `&mut [Line]`, not used otherwise while the regions live); and
    // this process accesses them only through the crate's structures, the
    // same kind in both regions, as the callers here do.
    unsafe {
        (
            Region::from_raw_parts(ptr, len),
            Region::from_raw_parts(ptr, len),
        )
    }
}
