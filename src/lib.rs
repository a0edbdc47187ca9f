//! Fixed-layout inter-process communication primitives that work in **any**
//! shared memory: a `static` on a microcontroller, a buffer, or an `mmap`
//! shared by two processes.
//!
//! The core is `no_std`, allocates nothing and never calls the OS. Every
//! structure lives in a [`Region`] (bytes aligned to a [`Line`]), starts with a
//! header the peer validates at attach, keeps only fixed-width integers and
//! atomics (no pointers, the same offsets on every target: each module has a
//! `# Layout` table), and treats the other side as hostile: a peer writing
//! anything at any time yields a typed error or garbage *values*, never
//! undefined behaviour, a panic or an endless loop.
//!
//! | structure | for |
//! |---|---|
//! | [`spsc`] | one producer, one consumer, fixed-size [`Pod`] elements; batches, in-place grants, end of stream |
//! | [`seqlock`] | the latest value, one writer, readers that never block it |
//! | [`broadcast`] | one writer, many readers that each get every message or are told how many they missed, and never slow the writer |
//! | [`bytes`] | records of any length up to a stated maximum, one producer, one consumer |
//! | [`lanes`] | fan-in: a record ring per producer, one doorbell, fair scanning, dead producers' lanes reclaimed |
//! | [`message`] | variable-length messages up to `N` bytes, as a ring or seqlock element |
//! | [`parts`] | several structures in one region, without `unsafe` |
//!
//! ```
//! use ipc_primitives::{spsc::Spsc, Line, Region};
//! use zerocopy::IntoBytes;
//!
//! // Any memory aligned to 128 bytes: here a heap buffer, in production an mmap.
//! let mut mem = vec![Line::ZERO; Line::count_for(Spsc::<[u64; 8]>::required_size(1024).unwrap())];
//!
//! // The region is taken by value: one region holds one structure.
//! let (mut tx, mut rx) = Spsc::<[u64; 8]>::create(Region::new(mem.as_mut_bytes()), 1024)?.split();
//! // In another process, `Spsc::attach` on its own mapping validates the
//! // header and hands out a side.
//!
//! tx.try_push([7; 8]).unwrap();
//! assert_eq!(rx.try_pop(), Ok([7; 8]));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Where to go next
//! - On Linux (feature `linux`, on by default), `linux` maps named POSIX shm
//!   and sealed memfds, sleeps on eventfds and futexes, and gives a daemon a
//!   handshake (`linux::handshake`) over a Unix socket that hands each
//!   client its own ring; feature `tokio` adds `async` receives and sends.
//! - [`errors`] is the map of every error: which call returns it, what it
//!   names, and how errors nest.
//! - A structure in a `static` (firmware, one process): [`spsc::StaticSpsc`],
//!   [`seqlock::StaticSeqLock`].
//! - The README (on the repository and on crates.io) has the examples to run,
//!   the safety model in full, benchmarks against rtrb, heapless, Unix sockets
//!   and iceoryx2, code size on Cortex-M, and how the crate is tested.
//!
//! # Features
//! | feature | default | what it adds |
//! |---|---|---|
//! | `linux` | yes | the `linux` adapters (`target_os = "linux"` only); implies `std` |
//! | `std` | via `linux` | `std` (the core never needs it) |
//! | `tokio` | no | `linux::tokio`: `recv().await`, `send().await`, `accept().await` |
//! | `defmt` | no | `defmt::Format` for errors and plain types |
//! | `portable-atomic` | no | the take-once flags of `static` structures on targets without compare-and-swap |
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

// The README's examples, compiled and run as doctests: it reads on GitHub and
// crates.io, so its code blocks are whole programs (no hidden `# ` lines).
#[cfg(all(doctest, feature = "linux", target_os = "linux"))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
