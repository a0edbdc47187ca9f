//! Harness logic for the fuzz targets in `fuzz_targets/`.
//!
//! Each module is one target's whole logic behind `pub fn run(data: &[u8])`:
//! it decodes its operations from the raw bytes itself and panics on any
//! violated property. The files in `fuzz_targets/` are one-line wrappers, and
//! `tests/fuzz_regressions.rs` in the root crate includes these same files with
//! `#[path]` to replay the corpora and saved crashes under `cargo test`, so
//! this code may only use `ipc-primitives`, `zerocopy`, `core`, `std` and
//! the reference models, as `crate::models` (that file includes
//! `xtests/models/src/lib.rs` the same way). `hello` needs the crate's
//! `linux` feature, which the fuzz crate enables.

/// The reference models the targets check against (`xtests/models`).
pub use models;

pub mod attach;
pub mod broadcast;
pub mod broadcast_hostile;
pub mod bytes;
pub mod bytes_hostile;
pub mod hello;
pub mod lanes;
pub mod lanes_hostile;
pub mod seqlock;
pub mod spsc_hostile;
pub mod spsc_ops;
pub mod support;
