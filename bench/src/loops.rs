//! The 64-byte message and the producer and consumer loops every throughput
//! measurement runs, in one process (`inproc`) or two (`xproc`), so that all
//! contenders do exactly the same work per message.

use std::hint;

use ipc_primitives::spsc::{Consumer, PopError, Producer, PushError};

/// The message: 64 bytes, a sequence number in every word.
pub type Msg = [u64; 8];

/// Pushes `msg` through `push`, spinning while it hands the message back.
#[inline(always)]
pub fn push_spinning(mut push: impl FnMut(Msg) -> Result<(), Msg>, mut msg: Msg) {
    while let Err(back) = push(msg) {
        msg = back;
        hint::spin_loop();
    }
}

/// Pops a message through `pop`, spinning while it has none.
#[inline(always)]
pub fn pop_spinning(mut pop: impl FnMut() -> Option<Msg>) -> Msg {
    loop {
        match pop() {
            Some(msg) => return msg,
            None => hint::spin_loop(),
        }
    }
}

/// Pushes messages `0..count` in order, spinning while the ring is full.
#[inline(always)]
pub fn produce(count: u64, mut push: impl FnMut(Msg) -> Result<(), Msg>) {
    for seq in 0..count {
        push_spinning(&mut push, [seq; 8]);
    }
}

/// Pops `count` messages, spinning while the ring is empty, and checks that
/// they are `0..count` in order with every word intact.
#[inline(always)]
pub fn consume(name: &str, count: u64, mut pop: impl FnMut() -> Option<Msg>) {
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
pub fn spsc_push(tx: &mut Producer<'_, Msg>, msg: Msg) -> Result<(), Msg> {
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
pub fn spsc_pop(rx: &mut Consumer<'_, Msg>) -> Option<Msg> {
    match rx.try_pop() {
        Ok(msg) => Some(msg),
        Err(PopError::Empty) => None,
        Err(err) => panic!("spsc: consumer: {err}"),
    }
}
