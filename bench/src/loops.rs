//! The messages and the producer and consumer loops every throughput
//! measurement runs, in one process (`inproc`) or two (`xproc`), so that all
//! contenders do exactly the same work per message.

use std::{hint, thread};

use rustix::time::{ClockId, clock_gettime};

use ipc_primitives::{
    Pod,
    spsc::{Consumer, PopError, Producer, PushError},
};

/// A message of `W` words, its sequence number in every word.
pub type Words<const W: usize> = [u64; W];

/// The 64-byte message.
pub type Msg = Words<8>;

/// The message with sequence number `seq`.
#[inline(always)]
pub fn message<const W: usize>(seq: u64) -> Words<W> {
    [seq; W]
}

/// Waits for a process that may share this core (broadcast readers,
/// fan-in producers): spins a while, then yields the core at each try.
#[derive(Debug, Default)]
pub struct Backoff(u32);

impl Backoff {
    /// Spins before the first yield: about 5-15 us of `pause`.
    const SPINS: u32 = 100;

    /// After progress: spin again first next time.
    #[inline(always)]
    pub fn reset(&mut self) {
        self.0 = 0;
    }

    /// One wait between two tries.
    #[inline(always)]
    pub fn wait(&mut self) {
        if self.0 < Self::SPINS {
            self.0 += 1;
            hint::spin_loop();
        } else {
            thread::yield_now();
        }
    }
}

/// `CLOCK_MONOTONIC` in ns: one clock for every process of the machine, so
/// that a start read in one and an end read in another make a duration.
pub fn monotonic_ns() -> u64 {
    let t = clock_gettime(ClockId::Monotonic);
    t.tv_sec.unsigned_abs() * 1_000_000_000 + t.tv_nsec.unsigned_abs()
}

/// Pushes `msg` through `push`, spinning while it hands the message back.
#[inline(always)]
pub fn push_spinning<T>(mut push: impl FnMut(T) -> Result<(), T>, mut msg: T) {
    while let Err(back) = push(msg) {
        msg = back;
        hint::spin_loop();
    }
}

/// Pops a message through `pop`, spinning while it has none.
#[inline(always)]
pub fn pop_spinning<T>(mut pop: impl FnMut() -> Option<T>) -> T {
    loop {
        match pop() {
            Some(msg) => return msg,
            None => hint::spin_loop(),
        }
    }
}

/// Pushes messages `0..count` in order, spinning while the ring is full.
#[inline(always)]
pub fn produce<const W: usize>(count: u64, mut push: impl FnMut(Words<W>) -> Result<(), Words<W>>) {
    for seq in 0..count {
        push_spinning(&mut push, message(seq));
    }
}

/// Pops `count` messages, spinning while the ring is empty, and checks that
/// they are `0..count` in order with every word intact.
#[inline(always)]
pub fn consume<const W: usize>(name: &str, count: u64, mut pop: impl FnMut() -> Option<Words<W>>) {
    for seq in 0..count {
        let msg = pop_spinning(&mut pop);
        if msg.iter().any(|&word| word != seq) {
            panic!("{name}: message {seq} arrived as {msg:?}");
        }
    }
}

/// This crate's `try_push` as a [`produce`] step: `Err` hands the message
/// back while the ring is full.
///
/// # Panics
/// If the producer finds the consumer's counter corrupt.
#[inline(always)]
pub fn spsc_push<T: Pod>(tx: &mut Producer<'_, T>, msg: T) -> Result<(), T> {
    match tx.try_push(msg) {
        Ok(()) => Ok(()),
        Err(PushError::Full(msg)) => Err(msg),
        Err(err) => panic!("spsc: producer: {err}"),
    }
}

/// This crate's `try_pop` as a [`consume`] step: `None` while the ring is
/// empty.
///
/// # Panics
/// If the consumer finds the producer's counter corrupt.
#[inline(always)]
pub fn spsc_pop<T: Pod>(rx: &mut Consumer<'_, T>) -> Option<T> {
    match rx.try_pop() {
        Ok(msg) => Some(msg),
        Err(PopError::Empty) => None,
        Err(err) => panic!("spsc: consumer: {err}"),
    }
}
