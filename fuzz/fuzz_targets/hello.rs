//! Fuzz target `hello`: see `fuzz/src/hello.rs` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ipc_primitives_fuzz::hello::run(data));
