//! heapless 0.9's `spsc::Queue<u32, 16>` (15 usable slots), split from an
//! entry-local `static mut` as heapless documents: one push and one pop per
//! turn.

#![no_std]
#![no_main]

use core::hint::black_box;

use cortex_m_rt::entry;
use heapless::spsc::{Consumer, Producer, Queue};
use panic_halt as _;

#[entry]
fn main() -> ! {
    // cortex-m-rt hands an entry-local `static mut` in as `&'static mut`.
    static mut QUEUE: Queue<u32, 16> = Queue::new();
    let (mut tx, mut rx) = QUEUE.split();
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
    tx.enqueue(value).is_ok()
}

/// One pop, kept out of line likewise.
#[inline(never)]
fn pop(rx: &mut Consumer<'static, u32>) -> Option<u32> {
    rx.dequeue()
}
