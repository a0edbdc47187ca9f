//! Firmware example: a `static` SPSC ring between an interrupt handler and the
//! main loop, on any Cortex-M with no device crate needed.
//!
//! Build (from this directory): `cargo build --release` for
//! thumbv7em-none-eabihf (Cortex-M4F/M7F), or add
//! `--target thumbv8m.main-none-eabihf` (Cortex-M33). To run it, put your
//! chip's memory map in `memory.x` and its name in the `runner` line of
//! `.cargo/config.toml`, then `cargo run --release`: probe-rs flashes it and
//! prints the defmt log.
//!
//! The SysTick exception fires 1000 times a second and pushes its tick count
//! into `RING`; the main loop pops every tick, warns about any it missed, logs
//! one a second and sleeps (`wfi`) while the ring is empty.
//!
//! # The ring costs no flash image and no `unsafe`
//! `StaticSpsc::new()` is all zeroes, so `RING` is placed in `.bss` (zeroed
//! at start-up, no copy in flash). Its two halves come out of the plain
//! `static` through a shared reference: `take_producer()` and
//! `take_consumer()` each hand their half out once and `None` after, so no
//! second producer or consumer can appear. Taking is one atomic swap of a
//! flag; on a core without compare-and-swap (thumbv6m) that needs the
//! crate's `portable-atomic` feature (see its docs).
//!
//! # Handing each half to its context
//! Each context takes the half it uses, when it first needs it:
//! - **A handler-local static** (here): cortex-m-rt turns a `static mut`
//!   declared at the top of an `#[exception]` or `#[interrupt]` handler into
//!   a `&mut` that only that handler sees, safely, since a handler never
//!   preempts itself. The handler takes the producer on its first run and
//!   keeps it in `Option<Producer<'static, _>>`; the main loop takes the
//!   consumer into a local before it enables the interrupt.
//! - **RTIC**: take both halves in `#[init]` (`RING.take_producer()`,
//!   `RING.take_consumer()`) and return them as `#[local]` resources, one
//!   for the task that pushes and one for the task that pops: they are
//!   `'static` because `RING` is, and RTIC moves each to its task.
//! - **static_cell** (embassy and friends): a `StaticCell<StaticSpsc<..>>`
//!   gives `&'static mut` once (`CELL.init(StaticSpsc::new())`), and
//!   `split()` on it gives both `'static` halves to pass to the tasks you
//!   spawn. `take_*` on a plain `static` does the same without the cell.
//!
//! Both halves are `Send` and not `Sync`: one context per half. Over memory
//! shared with another core or process (not this example), the ring is the
//! same code in a region the other side attaches to.

#![no_std]
#![no_main]

use cortex_m::peripheral::syst::SystClkSource;
use cortex_m_rt::{entry, exception};
use defmt_rtt as _;
use ipc_primitives::spsc::{PopError, Producer, StaticSpsc};
use panic_probe as _;

/// Ticks from the SysTick handler to the main loop: 16 slots, all zeroes
/// until first taken, so in `.bss`.
static RING: StaticSpsc<u32, 16> = StaticSpsc::new();

/// The core clock this example assumes, in Hz (most parts start on an
/// internal oscillator near this); set your chip's.
const CORE_HZ: u32 = 16_000_000;

/// SysTick interrupts per second.
const TICKS_PER_SECOND: u32 = 1_000;

#[entry]
fn main() -> ! {
    // The consumer first, so that it exists before the first push.
    let mut rx = RING
        .take_consumer()
        .expect("only the main loop takes the consumer");
    let mut core = cortex_m::Peripherals::take().expect("taken once, here");
    core.SYST.set_clock_source(SystClkSource::Core);
    core.SYST.set_reload(CORE_HZ / TICKS_PER_SECOND - 1);
    core.SYST.clear_current();
    core.SYST.enable_interrupt();
    core.SYST.enable_counter();
    defmt::info!(
        "ring of {} ticks in .bss; SysTick at {} Hz",
        rx.capacity(),
        TICKS_PER_SECOND
    );

    let mut expected = 0u32;
    loop {
        match rx.try_pop() {
            Ok(tick) => {
                if tick != expected {
                    defmt::warn!("missed ticks {} to {}", expected, tick.wrapping_sub(1));
                }
                if tick % TICKS_PER_SECOND == 0 {
                    defmt::info!("{} s", tick / TICKS_PER_SECOND);
                }
                expected = tick.wrapping_add(1);
            }
            // Sleep until the next interrupt. One that pushed between the pop
            // and here is handled on the next wake-up, a tick later.
            Err(PopError::Empty) => cortex_m::asm::wfi(),
            // `PopError` is non-exhaustive: any other error is a corrupt ring.
            Err(err) => defmt::panic!("{}", err),
        }
    }
}

#[exception]
fn SysTick() {
    // Handler-local: cortex-m-rt hands these in as `&mut`, seen only here.
    static mut TX: Option<Producer<'static, u32>> = None;
    static mut TICK: u32 = 0;

    let tx = TX.get_or_insert_with(|| {
        RING.take_producer()
            .expect("only SysTick takes the producer")
    });
    if let Err(err) = tx.try_push(*TICK) {
        // Full: the main loop fell 16 ticks behind; it reports the gap.
        defmt::debug!("tick {} not queued: {}", *TICK, err);
    }
    *TICK = TICK.wrapping_add(1);
}
