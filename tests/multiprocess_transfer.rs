//! Multi-process tests of moving messages: real processes, a real named
//! segment or the handshake's memfd, real eventfds and futexes. How children
//! run, and the accounting around each test: `multiprocess/harness.rs`.
//!
//! 1. busy mode: 10 million 64-byte messages (sequence number, client id,
//!    derived words, checksum) through a named-shm ring, `try_push`/`try_pop`
//!    and spinning; each arrives once, in order, intact;
//! 2. blocking mode: through the handshake with eventfd wake-ups
//!    (`push_notify`/`push_slice_notify` against `pop_blocking`), and through
//!    a named ring with futex wake-ups.
//!
//! Runtime: most of the time of the multi-process tests is test 1;
//! unoptimised, a push and a pop cost about 1.6 us together, which is why the
//! test profile has `opt-level = 1`.
#![cfg(all(feature = "linux", target_os = "linux", not(loom), not(miri)))]

#[path = "multiprocess/harness.rs"]
mod harness;
#[path = "multiprocess/message.rs"]
mod message;
#[path = "multiprocess/parent.rs"]
mod parent;
#[path = "multiprocess/roles.rs"]
mod roles;

use core::time::Duration;
use std::time::Instant;

use ipc_primitives::linux::handshake::{Policy, Server};
use ipc_primitives::linux::wake::{SpinThenBlock, Wakeup};
use ipc_primitives::spsc::PopError;

use harness::{Proc, ShmName, abstract_addr, accounted, wait_readable};
use message::{Msg, Stream};
use parent::{named_ring, pop_all_blocking};

/// The entry point of every child: see `multiprocess/harness.rs`.
#[test]
fn child() {
    harness::run_child(roles::run);
}

/// Messages in the busy-mode test.
const BUSY_MESSAGES: u64 = 10_000_000;
/// Messages in the eventfd blocking test.
const EVENTFD_MESSAGES: u64 = 200_000;
/// Messages in the futex blocking test.
const FUTEX_MESSAGES: u64 = 100_000;

// ---------------------------------------------------------------------------
// 1. Busy mode
// ---------------------------------------------------------------------------

/// A child pushes 10 million messages into a named ring with `try_push`,
/// spinning while it is full; the parent pops with `try_pop`, spinning while
/// it is empty, and checks each arrives once, in order, intact.
#[test]
fn busy_mode_ten_million_messages_arrive_intact_and_in_order() {
    accounted(|| {
        let name = ShmName::new("busy");
        let mut rx = named_ring(&name, 1024);
        let start = Instant::now();
        let mut child = Proc::spawn(
            "busy-producer",
            &[
                ("IPCP_SHM", name.0.clone()),
                ("IPCP_COUNT", BUSY_MESSAGES.to_string()),
            ],
            Duration::from_secs(240),
        );
        let mut stream = Stream::new(0);
        let mut idle: u32 = 0;
        while stream.next < BUSY_MESSAGES {
            match rx.try_pop() {
                Ok(msg) => {
                    stream.accept(&msg);
                    idle = 0;
                }
                Err(PopError::Empty) => {
                    idle = idle.wrapping_add(1);
                    if idle < 64 {
                        core::hint::spin_loop();
                        continue;
                    }
                    std::thread::yield_now();
                    if !idle.is_multiple_of(1024) {
                        continue;
                    }
                    // Exited with the ring still empty: the rest never came.
                    match child.exited() {
                        Some(status) if rx.is_empty() => panic!(
                            "producer exited ({}) after {} of {BUSY_MESSAGES} messages",
                            harness::describe(status),
                            stream.next
                        ),
                        Some(_) => {}
                        None => child.check_alive("messages"),
                    }
                }
                Err(err) => panic!("ring at message {}: {err}", stream.next),
            }
        }
        child.wait_success();
        assert_eq!(rx.try_pop(), Err(PopError::Empty), "more than sent arrived");
        eprintln!(
            "busy mode: {BUSY_MESSAGES} messages of 64 bytes in {:.2?}",
            start.elapsed()
        );
    });
}

// ---------------------------------------------------------------------------
// 2. Blocking mode
// ---------------------------------------------------------------------------

/// A client connects through the handshake and sends with `push_notify` and
/// `push_slice_notify`, pausing now and then; the server pops with
/// `pop_blocking` on the session's eventfd and must be woken every time it
/// sleeps.
#[test]
fn blocking_mode_eventfd_through_the_handshake() {
    accounted(|| {
        const CLIENT: u64 = 7;
        let (addr, name) = abstract_addr("blocking");
        let mut server = Server::<Msg>::bind(&addr, 256, Policy::SameUser).expect("bind");
        let mut child = Proc::spawn(
            "client",
            &[
                ("IPCP_ADDR", name),
                ("IPCP_CLIENT", CLIENT.to_string()),
                ("IPCP_COUNT", EVENTFD_MESSAGES.to_string()),
                ("IPCP_MODE", "pauses".to_owned()),
            ],
            Duration::from_secs(120),
        );
        wait_readable(&server, &mut [&mut child], "the client to connect");
        let mut session = server
            .accept()
            .expect("the listener works")
            .expect("the client is served");
        assert_eq!(
            session
                .credentials()
                .pid
                .map(|pid| pid.as_raw_nonzero().get()),
            Some(child.pid()),
            "SO_PEERCRED names the child"
        );
        let (rx, wakeup) = session.parts();
        // Sleep at once for some blocks of messages, spin first for others.
        let strategy = |seq: u64| {
            if (seq / 10_000).is_multiple_of(2) {
                SpinThenBlock::new(0)
            } else {
                SpinThenBlock::default()
            }
        };
        pop_all_blocking(rx, wakeup, CLIENT, EVENTFD_MESSAGES, &mut child, strategy);
        child.wait_success();
        let wakes = rx.event().epoch();
        assert!(
            wakes > 0,
            "the consumer was never woken: the blocking path went untested"
        );
        assert!(
            session.peer_closed().expect("poll"),
            "the client exited: its socket must read as closed"
        );
        eprintln!("eventfd blocking mode: {EVENTFD_MESSAGES} messages, {wakes} wake-ups");
    });
}

/// A child pushes into a named ring with `push_notify` and `Wakeup::Futex`;
/// the parent sleeps in `pop_blocking` on the shared futex. The two processes
/// map the ring at different addresses, so only a shared (not
/// `FUTEX_PRIVATE`) futex wakes the parent.
#[test]
fn blocking_mode_futex_over_a_named_segment() {
    accounted(|| {
        let name = ShmName::new("futex");
        let mut rx = named_ring(&name, 64);
        let mut child = Proc::spawn(
            "futex-producer",
            &[
                ("IPCP_SHM", name.0.clone()),
                ("IPCP_COUNT", FUTEX_MESSAGES.to_string()),
            ],
            Duration::from_secs(120),
        );
        let strategy = |seq: u64| SpinThenBlock::new(if seq.is_multiple_of(2) { 0 } else { 50 });
        pop_all_blocking(
            &mut rx,
            &Wakeup::Futex,
            0,
            FUTEX_MESSAGES,
            &mut child,
            strategy,
        );
        child.wait_success();
        let wakes = rx.event().epoch();
        assert!(wakes > 0, "the consumer was never woken by the futex");
        eprintln!("futex blocking mode: {FUTEX_MESSAGES} messages, {wakes} wake-ups");
    });
}
