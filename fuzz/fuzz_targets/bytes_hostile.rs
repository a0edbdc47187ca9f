//! Fuzz target `bytes_hostile`: see `fuzz/src/bytes_hostile.rs` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ipc_primitives_fuzz::bytes_hostile::run(data));
