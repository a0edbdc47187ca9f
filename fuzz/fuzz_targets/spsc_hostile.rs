//! Fuzz target `spsc_hostile`: see `fuzz/src/spsc_hostile.rs` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ipc_primitives_fuzz::spsc_hostile::run(data));
