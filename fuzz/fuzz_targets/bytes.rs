//! Fuzz target `bytes`: see `fuzz/src/bytes.rs` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ipc_primitives_fuzz::bytes::run(data));
