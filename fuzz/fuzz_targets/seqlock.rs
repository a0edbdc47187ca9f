//! Fuzz target `seqlock`: see `fuzz/src/seqlock.rs` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ipc_primitives_fuzz::seqlock::run(data));
