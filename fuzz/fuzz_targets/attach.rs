//! Fuzz target `attach`: see `fuzz/src/attach.rs` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ipc_primitives_fuzz::attach::run(data));
