//! Signals do not end the Linux adapters' blocking calls: each test blocks a
//! thread in one call and sends it `SIGUSR1`, whose handler does nothing and
//! is installed without `SA_RESTART` (so the kernel returns `EINTR` instead
//! of restarting the call), many times before letting the call complete.
//! The call must then succeed as if no signal had come.
//!
//! `libc` provides `sigaction` and `pthread_kill`, which rustix does not
//! offer outside its unstable runtime module.
#![cfg(all(feature = "linux", target_os = "linux", not(loom), not(miri)))]

use core::time::Duration;
use std::sync::Once;
use std::sync::mpsc::channel;
use std::thread;

use ipc_primitives::linux::handshake::{Policy, Server, connect_timeout};
use ipc_primitives::linux::uds::{SeqpacketListener, SeqpacketStream, UnixAddr};
use ipc_primitives::linux::wake::{EventFd, SpinThenBlock, Wakeup};
use ipc_primitives::spsc::StaticSpsc;

/// Signals sent to the blocked thread, 2 ms apart.
const SIGNALS: usize = 50;

/// Generous bound for calls that must not time out.
const LONG: Duration = Duration::from_secs(60);

extern "C" fn ignore(_: libc::c_int) {}

/// Installs the do-nothing `SIGUSR1` handler, without `SA_RESTART`.
fn install_handler() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: `action` is zeroed (a valid `sigaction`: empty mask, no
        // flags) before its handler is set to `ignore`, an `extern "C"` fn
        // that does nothing and so is async-signal-safe. `sigaction` reads it
        // and writes no old action (null).
        let rc = unsafe {
            let mut action: libc::sigaction = core::mem::zeroed();
            action.sa_sigaction = ignore as extern "C" fn(libc::c_int) as libc::sighandler_t;
            libc::sigaction(libc::SIGUSR1, &action, core::ptr::null_mut())
        };
        assert_eq!(rc, 0, "sigaction");
    });
}

/// Runs `blocked` on a thread, interrupts it with `SIGUSR1` [`SIGNALS`]
/// times, then runs `release` (which lets the blocked call complete) and
/// returns what `blocked` returned.
fn interrupted<R: Send>(blocked: impl FnOnce() -> R + Send, release: impl FnOnce()) -> R {
    install_handler();
    thread::scope(|s| {
        let (send, recv) = channel();
        let handle = s.spawn(move || {
            // SAFETY: `pthread_self` has no preconditions.
            send.send(unsafe { libc::pthread_self() }).expect("send");
            blocked()
        });
        let thread = recv.recv().expect("the thread's id");
        for _ in 0..SIGNALS {
            // SAFETY: `thread` is a thread of this scope, not joined before
            // the scope ends, so its id stays valid even once it has returned.
            let rc = unsafe { libc::pthread_kill(thread, libc::SIGUSR1) };
            assert_eq!(rc, 0, "pthread_kill");
            thread::sleep(Duration::from_millis(2));
        }
        release();
        handle.join().expect("the blocked thread")
    })
}

fn unique_addr(tag: &str) -> UnixAddr {
    UnixAddr::abstract_name(format!("ipcp-eintr-{}-{tag}", std::process::id())).expect("name")
}

#[test]
fn accept_waits_through_signals() {
    let addr = unique_addr("accept");
    let listener = SeqpacketListener::bind(&addr).expect("bind");
    let accepted = interrupted(
        || listener.accept().map(drop),
        || drop(SeqpacketStream::connect(&addr).expect("connect")),
    );
    assert_eq!(accepted, Ok(()));
}

#[test]
fn the_wait_for_the_hello_goes_on_through_signals() {
    let addr = unique_addr("hello");
    let mut server = Server::<u64>::bind(&addr, 4, Policy::SameUser).expect("bind");
    let mut session = None;
    let connected = interrupted(
        || connect_timeout::<u64>(&addr, LONG).map(drop),
        || session = Some(server.accept()),
    );
    connected.expect("connect_timeout");
    assert!(matches!(session, Some(Ok(Ok(_)))));
}

#[test]
fn connect_waits_for_a_full_backlog_through_signals() {
    let name = format!("ipcp-eintr-{}-backlog", std::process::id());
    let addr = UnixAddr::abstract_name(&name).expect("name");
    // A backlog of 0 with one connection waiting is full.
    let listener = rustix::net::socket_with(
        rustix::net::AddressFamily::UNIX,
        rustix::net::SocketType::SEQPACKET,
        rustix::net::SocketFlags::CLOEXEC,
        None,
    )
    .expect("socket");
    let raw_addr = rustix::net::SocketAddrUnix::new_abstract_name(name.as_bytes()).expect("name");
    rustix::net::bind(&listener, &raw_addr).expect("bind");
    rustix::net::listen(&listener, 0).expect("listen");
    let _waiting = SeqpacketStream::connect(&addr).expect("the first connection");
    let connected = interrupted(
        || SeqpacketStream::connect(&addr).map(drop),
        || drop(rustix::net::accept(&listener).expect("accept")),
    );
    assert_eq!(connected, Ok(()));
}

#[test]
fn eventfd_waits_through_signals() {
    let eventfd = EventFd::new().expect("eventfd");
    let woken = interrupted(
        || eventfd.wait(Some(LONG)),
        || eventfd.signal().expect("signal"),
    );
    assert_eq!(woken, Ok(()));
}

#[test]
fn a_blocking_pop_waits_through_signals() {
    let mut ring = StaticSpsc::<u64, 4>::new();
    let (mut tx, mut rx) = ring.split();
    let wakeup = Wakeup::eventfd().expect("eventfd");
    let popped = interrupted(
        || rx.pop_blocking(&wakeup, SpinThenBlock::new(0), Some(LONG)),
        || tx.push_notify(7, &wakeup).expect("push"),
    );
    assert_eq!(popped, Ok(7));
}
