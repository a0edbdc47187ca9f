#![doc = include_str!("../README.md")]
#![cfg_attr(not(any(test, loom, feature = "std")), no_std)]
#![cfg_attr(docsrs, feature(doc_cfg))]
// Loom builds swap atomics for models; not something a reader chooses.
#![cfg_attr(docsrs, doc(auto_cfg(hide(loom))))]
// Here rather than in `Cargo.toml`'s `[lints]`, so that it keeps the library
// (and its unit tests) `no_std`-clean without pushing `core::` paths into
// examples and integration tests, where `std` is the natural choice.
#![warn(clippy::std_instead_of_core)]

pub mod broadcast;
pub mod bytes;
mod error;
pub mod errors;
pub mod event;
mod header;
pub mod inspect;
// Claiming a lane needs compare-and-swap.
#[cfg(any(loom, target_has_atomic = "32"))]
#[cfg_attr(docsrs, doc(cfg(target_has_atomic = "32")))]
pub mod lanes;
pub mod layout;
pub mod message;
mod payload;
mod region;
pub mod seqlock;
pub mod spsc;
mod storage;
mod sync;
#[cfg(all(test, not(loom)))]
mod test_support;

pub use error::Corrupted;
pub use layout::{ABI_VERSION, ElementLayout, Kind, Line};
pub use payload::Pod;
#[cfg(loom)]
#[doc(hidden)]
pub use region::LoomMemory;
pub use region::{AttachError, CreateError, FitError, PartInfo, ReadRegion, Region, parts};

// Not under loom: its atomics cannot live in mapped memory or be futex words.
#[cfg(all(feature = "linux", target_os = "linux", not(loom)))]
#[cfg_attr(docsrs, doc(cfg(all(feature = "linux", target_os = "linux"))))]
pub mod linux;
