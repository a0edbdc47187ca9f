//! Fuzz target `broadcast`: see `fuzz/src/broadcast.rs` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ipc_primitives_fuzz::broadcast::run(data));
