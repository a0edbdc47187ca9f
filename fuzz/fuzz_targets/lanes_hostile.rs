//! Fuzz target `lanes_hostile`: see `fuzz/src/lanes_hostile.rs` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ipc_primitives_fuzz::lanes_hostile::run(data));
