//! ipc-primitives' `StaticSpsc<u32, 16>` in a plain `static`: both sides
//! taken, then one push and one pop per turn.

#![no_std]
#![no_main]

use core::hint::black_box;

use cortex_m_rt::entry;
use ipc_primitives::spsc::{Consumer, Producer, StaticSpsc};
use panic_halt as _;
// With the `critical-section` feature: links cortex-m's implementation.
#[cfg(feature = "critical-section")]
use cortex_m as _;

static RING: StaticSpsc<u32, 16> = StaticSpsc::new();

#[entry]
fn main() -> ! {
    let (Some(mut tx), Some(mut rx)) = (RING.take_producer(), RING.take_consumer()) else {
        panic!("taken once");
    };
    let mut i = 0u32;
    loop {
        push(&mut tx, black_box(i));
        black_box(pop(&mut rx));
        i = i.wrapping_add(1);
    }
}

/// One push, kept out of line so that its size can be read off the symbol.
#[inline(never)]
fn push(tx: &mut Producer<'static, u32>, value: u32) -> bool {
    tx.try_push(value).is_ok()
}

/// One pop, kept out of line likewise.
#[inline(never)]
fn pop(rx: &mut Consumer<'static, u32>) -> Option<u32> {
    rx.try_pop().ok()
}
