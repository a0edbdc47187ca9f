//! Fuzz target `lanes`: see `fuzz/src/lanes.rs` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ipc_primitives_fuzz::lanes::run(data));
