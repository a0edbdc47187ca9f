//! The scaffolding every measurement shares, with no queue: the `.text` the
//! others add over this is their push, pop and set-up.

#![no_std]
#![no_main]

use core::hint::black_box;

use cortex_m_rt::entry;
use panic_halt as _;

#[entry]
fn main() -> ! {
    let mut i = 0u32;
    loop {
        black_box(black_box(i));
        i = i.wrapping_add(1);
    }
}
