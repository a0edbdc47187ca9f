//! Fuzz target `broadcast_hostile`: see `fuzz/src/broadcast_hostile.rs` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ipc_primitives_fuzz::broadcast_hostile::run(data));
