//! Fuzz target `spsc_ops`: see `fuzz/src/spsc_ops.rs` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ipc_primitives_fuzz::spsc_ops::run(data));
