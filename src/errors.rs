//! A map of the crate's errors: which operation returns which, what each
//! names, and how they nest.
//!
//! Every error is a small enum or struct with `Display` and
//! [`core::error::Error`] (and `defmt::Format` in the core, with the `defmt`
//! feature); none dumps a payload in `Debug`. An error that holds another is
//! either
//! - **transparent**: it prints what it holds, and has that error's
//!   [`source`](core::error::Error::source); or
//! - **contextual**: it prints only what it adds (which object, which step),
//!   and its `source` is what it holds.
//!
//! Never both, so a chain printed source by source, as `anyhow`, `eyre` and
//! `tracing` print one, says each thing once. A client whose server sent the
//! wrong kind of ring sees:
//!
//! ```text
//! socket @daemon: the ring the server sent does not validate: region holds structure kind "seqlock", expected "SPSC ring"
//! ```
//!
//! Errors about an object name it: a shared-memory segment by its name, a
//! socket by its address, a client by its pid and uid. Enums that will grow
//! are `#[non_exhaustive]`.
//!
//! # The core
//! | error | returned by | means |
//! |---|---|---|
//! | [`Corrupted`](crate::Corrupted) | `push_slice`, `pop_slice`, `prepare_to_sleep`, `Session::drain` | a peer left the ring in a state no correct peer produces; the `Corrupted` variants of the enums below print the same text |
//! | [`PushError<T>`](crate::spsc::PushError) | `try_push`, `grant` | `Full` or `Corrupted`, handing the value back |
//! | [`PopError`](crate::spsc::PopError) | `try_pop` | `Empty` or `Corrupted` |
//! | [`BlockingError<E>`](crate::spsc::BlockingError) | `pop_or_sleep`, `push_or_sleep`; `pop_blocking`, `push_blocking` (handing the value back), `Session::pop_blocking`, `Connection::push_blocking` and the `tokio` feature's `recv`/`send` with `E` = `WaitError` | `Corrupted`, `Closed` (the peer closed its side, or dropped an owned Linux handle; a pop drains first), or `Sleep(E)`: the sleeper gave up (transparent) |
//! | [`ChunkError`](crate::spsc::ChunkError) | `write_chunk` | `TooFewSlots(free)`: fewer free slots than asked (nothing reserved), or `Corrupted` |
//! | [`RecvError`](crate::broadcast::RecvError) | a broadcast reader's `try_recv` | `Empty`, `Lagged { missed }` (lapped by the writer; the reader goes on), or `Corrupted` |
//! | [`broadcast::BlockingError<E>`](crate::broadcast::BlockingError) | `recv_or_sleep`, and `recv_blocking` with `E` = `WaitError` | as `RecvError`, `ReadOnly` (a read-only reader cannot sleep), or `Sleep(E)` (transparent) |
//! | [`OutOfBounds`](crate::spsc::OutOfBounds) | `Grant::write_bytes` | a write past the element |
//! | [`ReserveError`](crate::bytes::ReserveError) | a record ring's `reserve`, `push` | `TooLarge { len, max }` (never fits), `Full`, or `Corrupted` |
//! | [`bytes::PopError`](crate::bytes::PopError) | a record ring's pops | `Empty`, `TooSmall { needed }` (the record stays), or `Corrupted` |
//! | [`bytes::BlockingError<E>`](crate::bytes::BlockingError) | `wait_or_sleep`, and `pop_blocking` with `E` = `WaitError` | as `bytes::PopError` without `Empty`, or `Sleep(E)` (transparent) |
//! | [`bytes::OutOfBounds`](crate::bytes::OutOfBounds) | a record grant's `write` | a write past the reserved length |
//! | [`lanes::PopError`](crate::lanes::PopError) | `LanesConsumer::pop_into` | `Empty`, `TooSmall { lane, needed }`, or `Corrupted { lane }` (that lane is quarantined; the others go on) |
//! | [`lanes::BlockingError<E>`](crate::lanes::BlockingError) | lanes' `pop_blocking` | as `lanes::PopError` without `Empty`, or `Sleep(E)` (transparent) |
//! | [`ReadError`](crate::seqlock::ReadError) | seqlock reads | the writer stayed mid-write, died mid-write, or kept writing |
//! | [`CreateError`](crate::CreateError) | every `create` | a capacity the structure refuses, a plan's part planned for another kind (`PlannedFor`), or `Fit` (transparent) |
//! | [`AttachError`](crate::AttachError) | every `attach` | a plan's part planned for another kind (`PlannedFor`), the first field of the header that does not match, or `Fit` (transparent) |
//! | [`FitError`](crate::FitError) | inside the two above | the region is misaligned or too small |
//! | [`PlanError`](crate::parts::PlanError) | a layout plan | too many parts, or too large |
//! | [`TooLong`](crate::message::TooLong), [`BufferTooSmall`](crate::message::BufferTooSmall) | `Message` | a payload or buffer of the wrong length |
#![cfg_attr(
    all(feature = "linux", target_os = "linux", not(loom)),
    doc = r#"
# The Linux adapters
| error | returned by | names | nests |
|---|---|---|---|
| [`SysError`](crate::linux::SysError) | every system call | the call, and the errno | a leaf: prints both, no source |
| [`ShmError`](crate::linux::shm::ShmError) | `linux::shm` | the segment's name, in every variant about a named segment | `Sys` transparent; `Named` and `InvalidName` contextual over a `SysError` and a [`NameError`](crate::linux::shm::NameError) |
| [`EventFdError`](crate::linux::wake::EventFdError) | `EventFd::from_fd` | | `Sys` transparent |
| [`LaneLockError`](crate::linux::lanes::LaneLockError) | `claim_locked`, `reclaim_dead` | | `NotInSegment` (the lane set is not in the segment given), or `Sys` transparent |
| [`WaitError`](crate::linux::wake::WaitError) | `EventFd::wait`, `futex_wait`, `Wakeup::sleep`; `pop_blocking`, `push_blocking`, `recv_blocking`, `recv().await`, `send().await` (in a `BlockingError`) | | `TimedOut`, `PeerGone` (the other side exited or closed its end), or `Sys` (transparent) |
| [`PushNotifyError<E>`](crate::linux::wake::PushNotifyError) | `push_notify` (`E` = `PushError<T>`), `push_slice_notify` (`E` = `Corrupted`) | how many were pushed | `Push(E)` transparent (nothing was pushed); `Wake` contextual over the failed `SysError` |
| [`UdsError`](crate::linux::uds::UdsError) | socket operations | | `Sys` transparent |
| [`AddrError<E>`](crate::linux::uds::AddrError) | `bind`, `connect`, `Server::accept` (`E` = `UdsError`); the handshake's `connect` and `Server::bind` (`E` = `HandshakeError`) | the socket address | contextual over `E` |
| [`HandshakeError`](crate::linux::handshake::HandshakeError) | inside an `AddrError` | | `Socket`, `Create` and `Hello` transparent; `Shm`, `EventFd`, `SpaceEventFd` and `Attach` contextual |
| [`ClientError`](crate::linux::handshake::ClientError) | `Server::accept`, for one client (the daemon goes on) | the client's pid and uid | contextual over a [`ClientFailure`](crate::linux::handshake::ClientFailure), whose variants that hold an error are contextual too |"#
)]
#![cfg_attr(
    all(feature = "tokio", target_os = "linux", not(loom)),
    doc = r#"| [`RegisterError`](crate::linux::tokio::RegisterError) | `AsyncConsumer::new`, `AsyncProducer::new`, `AsyncServer::new`, `AsyncSession::new`, `AsyncConnection::new` | | `NoEventFd` (a futex cannot be awaited), or `Sys` transparent (`epoll_ctl`) |"#
)]
