//! Multi-process tests of the Linux adapters: real processes, real POSIX shm
//! and memfds, real eventfds and futexes, real Unix sockets.
//!
//! How children are spawned: the test binary re-executes itself
//! (`std::env::current_exe()`) with `--exact child --nocapture
//! --test-threads=1` and `IPCP_CHILD_ROLE=<role>` plus the role's parameters
//! in `IPCP_*` environment variables. The `child` test returns at once
//! without that variable and otherwise plays the role (`multiprocess/roles.rs`)
//! and exits: 0 on success, non-zero with a panic message on the inherited
//! stderr on failure. Children print what the parent must check as
//! `IPCP-RESULT` lines on stdout, which the parent reads through a pipe. Every
//! fd this crate makes is close-on-exec, so nothing is inherited: memory goes
//! by name (POSIX shm, names holding the parent's pid) or through the
//! handshake (abstract socket names, unique per test). The parent waits for a
//! child with a deadline and kills it when the deadline passes (or when the
//! test fails), and a child dies with the parent's test thread
//! (`PR_SET_PDEATHSIG`), so a hung child fails the test instead of hanging CI.
//!
//! The tests, each one `#[test]`:
//! 1. busy mode: 10 million 64-byte messages (sequence number, client id,
//!    derived words, checksum) through a named-shm ring, `try_push`/`try_pop`
//!    and spinning; each arrives once, in order, intact;
//! 2. blocking mode: through the handshake with eventfd wake-ups
//!    (`push_notify`/`push_slice_notify` against `pop_blocking`), and through a
//!    named ring with futex wake-ups;
//! 3. four clients at once through the handshake, served by one epoll loop
//!    (the daemon pattern: `prepare_to_sleep` on each ring, sleep in
//!    `epoll_wait` on the eventfds and sockets, drain on wake);
//! 4. three clients, one `SIGKILL`ed mid-stream: the server sees the hang-up,
//!    keeps the gap-free prefix it sent, and keeps serving the others, who lose
//!    nothing;
//! 5. attach with the wrong element type, kind, ABI version or a segment too
//!    small for its header: the exact `AttachError` (and `WrongRing` through
//!    the handshake);
//! 6. a sealed memfd the client cannot resize, and memfds a fake server sends
//!    unsealed, half-sealed or truncated: typed errors, no fd leaked;
//! 7. a foreign file at the socket path is refused and left alone; a live
//!    server's path is in use; a killed server's stale socket is replaced;
//! 8. `connect` to a server that never sends its hello gives up with
//!    `TimedOut` after `HELLO_TIMEOUT`;
//! 9. a client in a pid namespace of its own (run by `unshare`) connects: it
//!    sees no pid for the server, the server sees its pid, messages flow;
//! 10. a client without `/proc` (unmounted in its own mount namespace) checks
//!     its eventfd without it and connects;
//! 11. a server out of fds drops each newcomer through its spare fd with an
//!     `OutOfResources` hello, reports it by pid, and serves again once fds
//!     free up.
//!
//! Every test counts this process's open fds before and after (no leak) and
//! lists `/dev/shm` before and after (no name it created remains). Fds are
//! per process, and the test harness runs tests on parallel threads, so the
//! tests of this file take one lock and run one at a time; that also gives the
//! busy tests both cores. Client children check their own fds too.
//!
//! Runtime: about 20 s in the default (unoptimised) test profile on a 2-core
//! machine, nearly all of it test 1: unoptimised, a push and a pop cost about
//! 1.6 us together. With `opt-level = 1` the whole file takes about 8 s, most of it
//! test 8 waiting out `HELLO_TIMEOUT`.
#![cfg(all(feature = "linux", target_os = "linux", not(loom), not(miri)))]

#[path = "multiprocess/harness.rs"]
mod harness;
#[path = "multiprocess/message.rs"]
mod message;
#[path = "multiprocess/roles.rs"]
mod roles;

use core::time::Duration;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::process::ExitStatusExt;
use std::sync::Arc;
use std::time::Instant;

use ipc_primitives::linux::handshake::{HELLO_TIMEOUT, HandshakeError, Policy, Server, Session};
use ipc_primitives::linux::hello::{HELLO_LEN, Hello, Status};
use ipc_primitives::linux::shm::{CreateOptions, SealFlags, Segment, ShmError};
use ipc_primitives::linux::uds::{SeqpacketListener, SeqpacketStream, UdsError, UnixAddr};
use ipc_primitives::linux::wake::{BlockingPopError, EventFd, EventFdError, SpinThenBlock, Wakeup};
use ipc_primitives::seqlock::{ReadError, SeqLock};
use ipc_primitives::spsc::{Consumer, PopError, Spsc};
use ipc_primitives::{ABI_VERSION, AttachError, ElementLayout, FitError, Kind};
use rustix::buffer::spare_capacity;
use rustix::event::{Timespec, epoll};
use rustix::fs::{MemfdFlags, fcntl_add_seals, ftruncate, memfd_create};
use rustix::io::Errno;

use harness::{Accounting, Proc, ShmName, TempDir, abstract_addr, wait_readable};
use message::{Msg, Stream};

/// The entry point of every child: plays the role `IPCP_CHILD_ROLE` names,
/// or does nothing when the test binary runs normally.
#[test]
fn child() {
    let Ok(role) = std::env::var(harness::ROLE_VAR) else {
        return;
    };
    harness::child_setup();
    roles::run(&role);
    std::process::exit(0);
}

/// Messages in the busy-mode test.
const BUSY_MESSAGES: u64 = 10_000_000;
/// Messages in the eventfd blocking test.
const EVENTFD_MESSAGES: u64 = 200_000;
/// Messages in the futex blocking test.
const FUTEX_MESSAGES: u64 = 100_000;
/// Messages each client sends in the multi-client tests.
const CLIENT_MESSAGES: u64 = 100_000;

/// How long a blocking pop waits before the parent checks on the child. The
/// producers never pause for more than 20 ms, so a pop that times out with
/// messages in the ring was not woken: a lost wake-up.
const POP_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs `body` between the fd and `/dev/shm` snapshots, one test at a time.
fn accounted(body: impl FnOnce()) {
    let accounting = Accounting::begin();
    body();
    accounting.check();
}

/// The consumer of a fresh ring of `capacity` messages in a named segment,
/// which it keeps alive; the name is unlinked when it drops.
fn named_ring(name: &ShmName, capacity: u32) -> Consumer<'static, Msg, Arc<Segment>> {
    let len = Spsc::<Msg>::required_size(capacity).expect("ring size");
    let segment = CreateOptions::new()
        .unlink_on_drop(true)
        .create(&name.0, len)
        .expect("create the named segment");
    Spsc::<Msg>::create(segment.into_region().expect("a writable segment"), capacity)
        .expect("create the ring")
        .into_consumer()
}

/// The eventfd a session's client wakes the server with.
fn eventfd_of(session: &Session<Msg>) -> &EventFd {
    match session.wakeup() {
        Wakeup::EventFd(eventfd) => eventfd,
        other => panic!("the handshake hands out eventfd wake-ups, not {other:?}"),
    }
}

/// Pops `count` messages of client `client` with `pop_blocking`, checking
/// each; `strategy(seq)` says how to wait for message `seq`. A pop that times
/// out with messages waiting fails (a lost wake-up); one that times out on an
/// empty ring checks that the child still runs and is within its time.
fn pop_all_blocking<K>(
    rx: &mut Consumer<'_, Msg, K>,
    wakeup: &Wakeup,
    client: u64,
    count: u64,
    child: &mut Proc,
    strategy: impl Fn(u64) -> SpinThenBlock,
) {
    let mut stream = Stream::new(client);
    while stream.next < count {
        match rx.pop_blocking(wakeup, strategy(stream.next), Some(POP_TIMEOUT)) {
            Ok(msg) => stream.accept(&msg),
            Err(BlockingPopError::TimedOut) => {
                let waiting = rx.len();
                assert_eq!(
                    waiting, 0,
                    "lost wake-up: pop_blocking slept {POP_TIMEOUT:?} with {waiting} messages \
                     in the ring (at message {} of {count})",
                    stream.next
                );
                child.check_alive(&format!("message {} of {count}", stream.next));
            }
            Err(err) => panic!("pop_blocking at message {}: {err}", stream.next),
        }
    }
    assert_eq!(
        rx.try_pop(),
        Err(PopError::Empty),
        "more than {count} arrived"
    );
}

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
                Err(PopError::Corrupted) => panic!("ring corrupted at message {}", stream.next),
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

// ---------------------------------------------------------------------------
// 3 and 4. Several clients through the handshake, one epoll loop
// ---------------------------------------------------------------------------

/// One client of [`serve`].
struct Lane {
    id: u64,
    proc: Proc,
    /// `None` once the client has hung up and its session was dropped.
    session: Option<Session<Msg>>,
    stream: Stream,
    /// Messages it sends; `None` for one that sends until killed.
    count: Option<u64>,
    /// Killed by the server: its ring is left for the hang-up to drain.
    killed: bool,
    /// Messages published before the hang-up and drained after it.
    drained_after_hang_up: usize,
}

/// What [`serve`] got from one client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Delivered {
    /// Messages that arrived, each checked to be the next of its sequence.
    total: u64,
    /// Of those, how many were drained after the client hung up.
    after_hang_up: usize,
}

/// Serves one client per entry of `counts` (`None`: sends until killed)
/// through the handshake with one epoll loop, the daemon pattern: drain every
/// ring, `prepare_to_sleep` on each, `epoll_wait` on their eventfds and
/// sockets, drain the eventfds, repeat. A hang-up (`EPOLLHUP`) drains the
/// client's ring and drops its session.
///
/// `kill = Some((lane, after))` `SIGKILL`s that client once `after` of its
/// messages have arrived (or earlier, if another client is halfway through
/// first), at a moment its ring holds messages not yet popped; from then on the loop leaves that ring alone, so those messages
/// are the ones the hang-up handler must still drain.
fn serve(counts: &[Option<u64>], kill: Option<(usize, u64)>) -> Vec<Delivered> {
    const CAPACITY: u32 = 1024;
    /// How long the loop sleeps with every ring announced: ample for any
    /// client's next push, so waking without an event means none came.
    const IDLE: Duration = Duration::from_secs(1);
    let (addr, name) = abstract_addr("serve");
    let mut server = Server::<Msg>::bind(&addr, CAPACITY, Policy::SameUser).expect("bind");
    let mut lanes: Vec<Lane> = counts
        .iter()
        .zip(0_u64..)
        .map(|(&count, id)| {
            let count_text = count.map_or_else(|| "endless".to_owned(), |n| n.to_string());
            let mode = if id % 2 == 0 { "single" } else { "batch" };
            let proc = Proc::spawn(
                "client",
                &[
                    ("IPCP_ADDR", name.clone()),
                    ("IPCP_CLIENT", id.to_string()),
                    ("IPCP_COUNT", count_text),
                    ("IPCP_MODE", mode.to_owned()),
                ],
                Duration::from_secs(120),
            );
            Lane {
                id,
                proc,
                session: None,
                stream: Stream::new(id),
                count,
                killed: false,
                drained_after_hang_up: 0,
            }
        })
        .collect();

    // Accept every client; SO_PEERCRED says which child each session is.
    for _ in 0..lanes.len() {
        let mut procs: Vec<&mut Proc> = lanes.iter_mut().map(|lane| &mut lane.proc).collect();
        wait_readable(&server, &mut procs, "the clients to connect");
        let session = server
            .accept()
            .expect("the listener works")
            .expect("the client is served");
        let pid = session
            .credentials()
            .pid
            .map(|pid| pid.as_raw_nonzero().get());
        let lane = lanes
            .iter_mut()
            .find(|lane| Some(lane.proc.pid()) == pid)
            .unwrap_or_else(|| panic!("a session from pid {pid:?}, which is no client"));
        assert!(lane.session.is_none(), "client {} connected twice", lane.id);
        lane.session = Some(session);
    }

    let epoll = epoll::create(epoll::CreateFlags::CLOEXEC).expect("epoll_create1");
    for (index, lane) in (0_u64..).zip(&lanes) {
        let session = lane.session.as_ref().expect("accepted");
        epoll::add(
            &epoll,
            eventfd_of(session),
            epoll::EventData::new_u64(2 * index),
            epoll::EventFlags::IN,
        )
        .expect("epoll_ctl(ADD, eventfd)");
        epoll::add(
            &epoll,
            session.socket(),
            epoll::EventData::new_u64(2 * index + 1),
            epoll::EventFlags::RDHUP,
        )
        .expect("epoll_ctl(ADD, socket)");
    }

    let deadline = Instant::now() + Duration::from_secs(120);
    let mut unpopped_at_kill = None;
    let mut live = lanes.len();
    let mut events = Vec::with_capacity(2 * lanes.len());
    while live > 0 {
        // Kill once `after` messages arrived, or earlier if the victim lags so
        // far behind that another client is already halfway through.
        if let Some((victim, after)) = kill
            && unpopped_at_kill.is_none()
            && (lanes[victim].stream.next >= after
                || (lanes[victim].stream.next > 0
                    && lanes.iter().any(|lane| {
                        lane.count
                            .is_some_and(|count| lane.stream.next >= count / 2)
                    })))
        {
            unpopped_at_kill = kill_now(&mut lanes, victim);
        }

        // Drain each ring (at most one ring's worth per round, so that a fast
        // client cannot starve the others) and announce the sleep.
        let mut busy = false;
        for lane in &mut lanes {
            let Some(session) = &mut lane.session else {
                continue;
            };
            if lane.killed {
                continue;
            }
            let rx = session.consumer_mut();
            let mut popped = 0;
            loop {
                match rx.try_pop() {
                    Ok(msg) => {
                        lane.stream.accept(&msg);
                        popped += 1;
                        if popped == CAPACITY {
                            busy = true;
                            break;
                        }
                    }
                    Err(PopError::Empty) => match rx.prepare_to_sleep() {
                        Ok(Some(_epoch)) => break,
                        Ok(None) => {}
                        Err(err) => panic!("client {}: {err}", lane.id),
                    },
                    Err(PopError::Corrupted) => panic!("client {}: ring corrupted", lane.id),
                }
            }
        }

        let timeout = if busy { Duration::ZERO } else { IDLE };
        let timeout = Timespec::try_from(timeout).expect("timespec");
        events.clear();
        match epoll::wait(&epoll, spare_capacity(&mut events), Some(&timeout)) {
            Ok(_) | Err(Errno::INTR) => {}
            Err(errno) => panic!("epoll_wait: {errno}"),
        }
        if events.is_empty() && !busy {
            check_no_lost_wake_up(&lanes);
        }
        for event in &events {
            let (flags, data) = (event.flags, event.data.u64());
            let index = usize::try_from(data / 2).expect("lane index");
            let lane = &mut lanes[index];
            if data % 2 == 0 {
                if let Some(session) = &lane.session {
                    eventfd_of(session).drain().expect("read the eventfd");
                }
                continue;
            }
            let hung_up =
                epoll::EventFlags::HUP | epoll::EventFlags::RDHUP | epoll::EventFlags::ERR;
            if !flags.intersects(hung_up) {
                continue;
            }
            let Some(mut session) = lane.session.take() else {
                continue;
            };
            hang_up(&epoll, lane, &mut session);
            drop(session);
            live -= 1;
        }
        assert!(
            Instant::now() < deadline,
            "the server loop ran out of time; delivered so far: {:?}",
            lanes
                .iter()
                .map(|lane| lane.stream.next)
                .collect::<Vec<_>>()
        );
    }
    if let Some((victim, _)) = kill {
        let unpopped = unpopped_at_kill.expect("the victim was never killed");
        assert!(
            lanes[victim].drained_after_hang_up >= unpopped,
            "{unpopped} messages waited in the killed client's ring, but only {} were drained",
            lanes[victim].drained_after_hang_up
        );
    }
    lanes
        .iter()
        .map(|lane| Delivered {
            total: lane.stream.next,
            after_hang_up: lane.drained_after_hang_up,
        })
        .collect()
}

/// After an `epoll_wait` that timed out with every ring announced: a ring
/// with messages means its producer pushed after the announcement without
/// signalling the eventfd, a lost wake-up. (A push that raced the
/// announcement is seen by the re-check in `prepare_to_sleep` instead.)
fn check_no_lost_wake_up(lanes: &[Lane]) {
    for lane in lanes.iter().filter(|lane| !lane.killed) {
        if let Some(session) = &lane.session {
            let waiting = session.consumer().len();
            assert_eq!(
                waiting, 0,
                "lost wake-up: client {} has {waiting} messages in its ring, but epoll_wait \
                 timed out with no event",
                lane.id
            );
        }
    }
}

/// `SIGKILL`s client `victim` if its ring holds messages not yet popped, and
/// returns how many; `None` (and no kill) if the ring is empty just now.
fn kill_now(lanes: &mut [Lane], victim: usize) -> Option<usize> {
    let session = lanes[victim]
        .session
        .as_ref()
        .expect("the victim's session");
    let unpopped = session.consumer().len();
    if unpopped == 0 {
        return None;
    }
    let unfinished = lanes
        .iter()
        .filter(|lane| lane.count.is_some_and(|count| lane.stream.next < count))
        .count();
    assert!(
        unfinished > 0,
        "the other clients finished before the kill: nothing would show the server keeps serving"
    );
    let lane = &mut lanes[victim];
    let status = lane.proc.kill();
    assert_eq!(
        status.signal(),
        Some(rustix::process::Signal::KILL.as_raw()),
        "client {victim} was to die by SIGKILL, not {}",
        harness::describe(status)
    );
    lane.killed = true;
    eprintln!(
        "killed client {victim} after {} of its messages arrived, {unpopped} more in its ring; \
         {unfinished} other clients still sending",
        lane.stream.next
    );
    Some(unpopped)
}

/// A client hung up: checks the session agrees, drains what it published,
/// checks it sent everything (unless it was killed) and exited cleanly, and
/// unregisters its fds.
fn hang_up(epoll: &impl AsFd, lane: &mut Lane, session: &mut Session<Msg>) {
    assert!(
        session.peer_closed().expect("poll"),
        "EPOLLHUP, but peer_closed says client {} is there",
        lane.id
    );
    let stream = &mut lane.stream;
    lane.drained_after_hang_up = session
        .drain(|msg| stream.accept(&msg))
        .expect("drain the ring");
    assert!(
        session.consumer().is_empty(),
        "client {}: messages left after the drain",
        lane.id
    );
    let fds: [BorrowedFd<'_>; 2] = [eventfd_of(session).as_fd(), session.socket()];
    for fd in fds {
        epoll::delete(epoll, fd).expect("epoll_ctl(DEL)");
    }
    match lane.count {
        Some(count) => {
            lane.proc.wait_success();
            assert_eq!(
                lane.stream.next, count,
                "client {} exited cleanly but only {} of its {count} messages arrived",
                lane.id, lane.stream.next
            );
        }
        None => assert!(
            lane.killed,
            "the endless client {} hung up by itself",
            lane.id
        ),
    }
}

/// Four clients connect at once and each sends 100,000 messages tagged with
/// its id; one epoll loop serves them all, and every client's sequence
/// arrives complete and in order.
#[test]
fn several_clients_at_once_through_the_handshake() {
    accounted(|| {
        let start = Instant::now();
        let counts = [Some(CLIENT_MESSAGES); 4];
        let delivered = serve(&counts, None);
        for (client, delivered) in delivered.iter().enumerate() {
            assert_eq!(delivered.total, CLIENT_MESSAGES, "client {client}");
        }
        eprintln!(
            "4 clients x {CLIENT_MESSAGES} messages through one epoll loop in {:.2?}",
            start.elapsed()
        );
    });
}

/// Three clients; client 1 sends until it is `SIGKILL`ed, about 20,000
/// messages in, with messages in its ring not yet popped. The server notices the hang-up,
/// drains those (the whole is a gap-free, in-order prefix of what client 1
/// sent), drops its session and keeps serving the other two, who lose
/// nothing.
#[test]
fn a_client_killed_mid_stream_leaves_the_others_unharmed() {
    accounted(|| {
        let counts = [Some(CLIENT_MESSAGES), None, Some(CLIENT_MESSAGES)];
        let delivered = serve(&counts, Some((1, 20_000)));
        assert_eq!(
            delivered[0].total, CLIENT_MESSAGES,
            "client 0 lost messages"
        );
        assert_eq!(
            delivered[2].total, CLIENT_MESSAGES,
            "client 2 lost messages"
        );
        let victim = delivered[1];
        assert!(victim.total > 0, "the victim's prefix: {victim:?}");
        assert!(
            victim.after_hang_up > 0,
            "nothing was drained after the kill: {victim:?}"
        );
        eprintln!(
            "the killed client delivered a gap-free prefix of {} messages, {} of them \
             drained after it died",
            victim.total, victim.after_hang_up
        );
    });
}

// ---------------------------------------------------------------------------
// 5. Attach with the wrong type, kind, version or size
// ---------------------------------------------------------------------------

/// Byte offset of the ABI version in every region header (see the `# Layout`
/// table of `ipc_primitives::layout`'s header): a native-endian `u32`.
const VERSION_OFFSET: u64 = 4;

/// The parent creates rings and a seqlock in named segments, rewrites one
/// header's version and truncates another segment below what its header
/// needs; a child attaches to each, with right and wrong types, and the
/// parent compares the exact outcome.
#[test]
fn attach_with_the_wrong_type_version_or_size_is_a_typed_error() {
    accounted(|| {
        // A ring of 64 messages, attached as the right and wrong types.
        let ring_name = ShmName::new("ring");
        let _ring = named_ring(&ring_name, 64);

        // A seqlock holding [1, 2, 3, 4].
        let seq_name = ShmName::new("seqlock");
        let seqlock = CreateOptions::new()
            .unlink_on_drop(true)
            .create(&seq_name.0, SeqLock::<[u64; 4]>::required_size().unwrap())
            .expect("create");
        SeqLock::<[u64; 4]>::create(seqlock.region().expect("the segment's region"))
            .expect("create the seqlock")
            .into_writer()
            .write(&[1, 2, 3, 4]);

        // A ring whose header claims another ABI version, rewritten through
        // the fd as another process could.
        let version_name = ShmName::new("version");
        let versioned = named_ring(&version_name, 64);
        let mut found = [0; 4];
        rustix::io::pread(versioned.keeper(), &mut found, VERSION_OFFSET).expect("pread");
        assert_eq!(
            u32::from_ne_bytes(found),
            ABI_VERSION,
            "the header layout moved: update VERSION_OFFSET"
        );
        let bumped = ABI_VERSION + 1;
        rustix::io::pwrite(versioned.keeper(), &bumped.to_ne_bytes(), VERSION_OFFSET)
            .expect("pwrite");

        // A ring of 1024 messages whose segment is then cut to one page. The
        // creator's mapping is gone before the cut and the child maps only
        // what is left, so nobody touches a page past the end (no SIGBUS): a
        // sound way to give attach a header that asks for more than the
        // mapping holds.
        let small_name = ShmName::new("small");
        let needed = Spsc::<Msg>::required_size(1024).expect("size");
        {
            let segment = Segment::create(&small_name.0, needed).expect("create");
            Spsc::<Msg>::create(segment.region().expect("the segment's region"), 1024)
                .expect("create the ring");
        }
        let fd = rustix::shm::open(
            small_name.0.as_str(),
            rustix::shm::OFlags::RDWR,
            rustix::fs::Mode::empty(),
        )
        .expect("shm_open");
        ftruncate(&fd, 4096).expect("ftruncate");
        drop(fd);

        let msg = ElementLayout::of::<Msg>();
        let cases: Vec<(&str, &ShmName, String)> = vec![
            (
                "ring-as-Msg",
                &ring_name,
                format!("{:?}", Ok::<(), AttachError>(())),
            ),
            (
                "ring-as-u64",
                &ring_name,
                format!(
                    "{:?}",
                    Err::<(), _>(AttachError::WrongElement {
                        expected: ElementLayout::of::<u64>(),
                        found: msg,
                    })
                ),
            ),
            (
                // The same 64 bytes in the same slots: the layout agrees, so it
                // attaches (only a type tag could tell the types apart).
                "ring-as-u32x16",
                &ring_name,
                format!("{:?}", Ok::<(), AttachError>(())),
            ),
            (
                "ring-as-u32x15",
                &ring_name,
                format!(
                    "{:?}",
                    Err::<(), _>(AttachError::WrongElement {
                        expected: ElementLayout {
                            size: 60,
                            stride: 64
                        },
                        found: msg,
                    })
                ),
            ),
            (
                "ring-as-seqlock",
                &ring_name,
                format!(
                    "{:?}",
                    Err::<(), _>(AttachError::WrongKind {
                        expected: Kind::SeqLock,
                        found: Kind::Spsc as u32,
                    })
                ),
            ),
            (
                "seqlock-read",
                &seq_name,
                format!(
                    "{:?}",
                    Ok::<Result<[u64; 4], ReadError>, AttachError>(Ok([1, 2, 3, 4]))
                ),
            ),
            (
                "seqlock-as-u64",
                &seq_name,
                format!(
                    "{:?}",
                    Err::<(), _>(AttachError::WrongElement {
                        expected: ElementLayout::of::<u64>(),
                        found: ElementLayout::of::<[u64; 4]>(),
                    })
                ),
            ),
            (
                "ring-as-Msg",
                &version_name,
                format!(
                    "{:?}",
                    Err::<(), _>(AttachError::WrongVersion {
                        expected: ABI_VERSION,
                        found: bumped,
                    })
                ),
            ),
            (
                "ring-as-Msg",
                &small_name,
                format!(
                    "{:?}",
                    Err::<(), _>(AttachError::Fit(FitError::TooSmall {
                        needed,
                        actual: 4096,
                    }))
                ),
            ),
        ];
        let spec = cases
            .iter()
            .map(|(case, name, _)| format!("{case}:{}", name.0))
            .collect::<Vec<_>>()
            .join(";");
        let mut child = Proc::spawn(
            "attach-report",
            &[("IPCP_CASES", spec)],
            Duration::from_secs(30),
        );
        let results = child.wait_success();
        assert_eq!(
            results.len(),
            cases.len(),
            "one result per case: {results:?}"
        );
        for (index, ((case, name, expected), got)) in cases.iter().zip(&results).enumerate() {
            assert_eq!(
                got,
                &format!("{index} {expected}"),
                "case {index}: {case} on {}",
                name.0
            );
        }

        // Through the handshake: a client of another element type is told
        // what the server offers.
        let (addr, addr_name) = abstract_addr("wrong-type");
        let mut server = Server::<Msg>::bind(&addr, 16, Policy::SameUser).expect("bind");
        let mut child = Proc::spawn(
            "connect-report",
            &[("IPCP_ADDR", addr_name), ("IPCP_TYPE", "u64".to_owned())],
            Duration::from_secs(30),
        );
        wait_readable(&server, &mut [&mut child], "the client to connect");
        let session = server
            .accept()
            .expect("the listener works")
            .expect("the client is served");
        let results = child.wait_success();
        let expected = Err::<(), _>(HandshakeError::WrongRing {
            kind: Kind::Spsc,
            elem: msg,
        });
        assert_eq!(results, [format!("connect {expected:?}")]);
        assert!(session.peer_closed().expect("poll"), "the client is gone");
    });
}

// ---------------------------------------------------------------------------
// 6. Sealed and unsealed, truncated memfds
// ---------------------------------------------------------------------------

/// The memfd of a real handshake is sealed: the client cannot shrink, grow or
/// write-seal it, and its ring still works afterwards.
#[test]
fn the_handshake_memfd_is_sealed_against_the_client() {
    accounted(|| {
        const COUNT: u64 = 100;
        let (addr, name) = abstract_addr("sealed");
        let mut server = Server::<Msg>::bind(&addr, 256, Policy::SameUser).expect("bind");
        let mut child = Proc::spawn(
            "try-truncate",
            &[("IPCP_ADDR", name), ("IPCP_COUNT", COUNT.to_string())],
            Duration::from_secs(30),
        );
        wait_readable(&server, &mut [&mut child], "the client to connect");
        let mut session = server
            .accept()
            .expect("the listener works")
            .expect("the client is served");
        let results = child.wait_success();
        let eperm = format!("{:?}", Err::<(), _>(Errno::PERM));
        let expected = [
            format!("shrink {eperm}"),
            format!("grow {eperm}"),
            format!("truncate-to-zero {eperm}"),
            format!("add-write-seal {eperm}"),
            format!("seals {:?}", Ok::<_, Errno>(true)),
            "size-unchanged true".to_owned(),
            format!("pushed {COUNT}"),
        ];
        assert_eq!(results, expected);
        let mut stream = Stream::new(0);
        let drained = session.drain(|msg| stream.accept(&msg)).expect("drain");
        assert_eq!(drained as u64, COUNT);
    });
}

/// A fake server hands a client memfds a real server never would; `connect`
/// refuses each with a typed error and closes every fd it received.
#[test]
fn unsealed_or_truncated_memfds_from_a_fake_server_are_refused() {
    accounted(|| {
        let needed = Spsc::<Msg>::required_size(1024).expect("size");

        // No seals at all.
        let unsealed = memfd(needed as u64, SealFlags::empty());
        let expected = HandshakeError::Shm(ShmError::NotSealed {
            found: SealFlags::empty(),
        });
        fake_server("unsealed", unsealed, needed, &expected, &[]);

        // Sealed against shrinking only: it could still grow, which is
        // harmless, but the contract asks for both.
        let shrink_only = memfd(needed as u64, SealFlags::SHRINK);
        let expected = HandshakeError::Shm(ShmError::NotSealed {
            found: SealFlags::SHRINK,
        });
        fake_server("shrink-only", shrink_only, needed, &expected, &[]);

        // Sealed, but truncated below what the ring's header asks for: the
        // ring was created at full size, the mapping dropped, the memfd cut
        // to a page and only then sealed.
        let truncated = memfd_create(
            "ipcp-truncated",
            MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING,
        )
        .expect("memfd_create");
        ftruncate(&truncated, needed as u64).expect("ftruncate");
        {
            let segment =
                Segment::from_fd_trusted(truncated.try_clone().expect("dup")).expect("map");
            Spsc::<Msg>::create(segment.region().expect("the segment's region"), 1024)
                .expect("create the ring");
        }
        ftruncate(&truncated, 4096).expect("ftruncate");
        fcntl_add_seals(
            &truncated,
            SealFlags::SHRINK | SealFlags::GROW | SealFlags::SEAL,
        )
        .expect("seal");
        let expected = HandshakeError::RegionSize {
            capacity: 1024,
            needed: Some(needed),
            found: 4096,
        };
        fake_server("truncated", truncated, needed, &expected, &[]);

        // A sparse terabyte, sealed, with a valid ring header at its start:
        // refused from its size before it is mapped. The child may map at
        // most 64 GiB: had it tried to map the memfd, `mmap` would have
        // failed instead.
        const TIB: u64 = 1 << 40;
        let huge = memfd_create("ipcp-huge", MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)
            .expect("memfd_create");
        ftruncate(&huge, needed as u64).expect("ftruncate");
        {
            let segment = Segment::from_fd_trusted(huge.try_clone().expect("dup")).expect("map");
            Spsc::<Msg>::create(segment.region().expect("the segment's region"), 1024)
                .expect("create the ring");
        }
        ftruncate(&huge, TIB).expect("ftruncate");
        fcntl_add_seals(&huge, SealFlags::SHRINK | SealFlags::GROW | SealFlags::SEAL)
            .expect("seal");
        let expected = HandshakeError::RegionSize {
            capacity: 1024,
            needed: Some(needed),
            found: TIB,
        };
        let limit = ("IPCP_LIMIT_AS", (64_u64 << 30).to_string());
        fake_server("huge", huge, needed, &expected, &[limit]);
    });
}

/// A memfd of `len` bytes with `seals`.
fn memfd(len: u64, seals: SealFlags) -> std::os::fd::OwnedFd {
    let fd = memfd_create("ipcp-fake", MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)
        .expect("memfd_create");
    ftruncate(&fd, len).expect("ftruncate");
    if !seals.is_empty() {
        fcntl_add_seals(&fd, seals).expect("seal");
    }
    fd
}

/// Listens as a fake server, sends a connecting child an accepting hello
/// with `memfd` and an eventfd, and checks the child's `connect` fails with
/// `expected` (the child also checks it leaked no fd). `vars` go to the
/// child's environment.
fn fake_server(
    tag: &str,
    memfd: std::os::fd::OwnedFd,
    len: usize,
    expected: &HandshakeError,
    vars: &[(&str, String)],
) {
    let (addr, name): (UnixAddr, String) = abstract_addr(tag);
    let listener = SeqpacketListener::bind(&addr).expect("bind");
    let mut env = vec![("IPCP_ADDR", name), ("IPCP_TYPE", "Msg".to_owned())];
    env.extend(vars.iter().cloned());
    let mut child = Proc::spawn("connect-report", &env, Duration::from_secs(30));
    wait_readable(&listener, &mut [&mut child], "the client to connect");
    let stream = listener.accept().expect("accept");
    let hello = Hello {
        status: Status::Accepted,
        kind: Kind::Spsc,
        elem: ElementLayout::of::<Msg>(),
        capacity: 1024,
        region_len: len as u64,
        fds: 2,
    };
    let eventfd = EventFd::new().expect("eventfd");
    stream
        .send_with_fds(&hello.encode(), &[memfd.as_fd(), eventfd.as_fd()])
        .expect("send the hello");
    let results = child.wait_success();
    assert_eq!(
        results,
        [format!("connect {:?}", Err::<(), _>(expected))],
        "fake server case {tag}"
    );
    assert_eq!(
        stream.recv(&mut [0; 8]),
        Err(UdsError::PeerClosed),
        "the client hung up"
    );
}

// ---------------------------------------------------------------------------
// 7. The socket path
// ---------------------------------------------------------------------------

/// A regular file or a directory at the socket path is refused with
/// `NotASocket` and left as it was; a live server's path is in use; the
/// stale socket a killed server leaves is replaced, and the new server
/// serves a client.
#[test]
fn foreign_and_stale_files_at_the_socket_path() {
    accounted(|| {
        let dir = TempDir::new("sock");
        let path = dir.0.join("daemon.sock");
        let addr = UnixAddr::path(&path).expect("path");

        // A regular file: refused, content intact.
        std::fs::write(&path, b"not a socket").expect("write");
        let err = Server::<Msg>::bind(&addr, 16, Policy::SameUser).expect_err("a regular file");
        match &err {
            HandshakeError::Socket(UdsError::NotASocket { path: refused }) => {
                assert_eq!(refused, &path);
            }
            other => panic!("expected Socket(NotASocket), got {other:?}"),
        }
        assert!(
            err.to_string().contains("not a socket"),
            "the error says what is wrong: {err}"
        );
        assert_eq!(std::fs::read(&path).expect("read"), b"not a socket");
        std::fs::remove_file(&path).expect("remove");

        // A directory: refused, still there.
        std::fs::create_dir(&path).expect("mkdir");
        let err = Server::<Msg>::bind(&addr, 16, Policy::SameUser).expect_err("a directory");
        assert!(
            matches!(&err, HandshakeError::Socket(UdsError::NotASocket { .. })),
            "{err:?}"
        );
        assert!(path.is_dir(), "the directory was left alone");
        std::fs::remove_dir(&path).expect("rmdir");

        // A live server in a child: the path is in use.
        let path_text = path.to_str().expect("utf-8 path").to_owned();
        let mut server_child = Proc::spawn(
            "socket-server",
            &[("IPCP_ADDR", path_text.clone())],
            Duration::from_secs(60),
        );
        server_child.expect_line(harness::READY);
        let err = Server::<Msg>::bind(&addr, 16, Policy::SameUser).expect_err("a live server");
        assert!(
            matches!(&err, HandshakeError::Socket(UdsError::AddrInUse)),
            "{err:?}"
        );

        // Killed, it leaves a stale socket file, which bind replaces.
        let status = server_child.kill();
        assert!(status.signal().is_some(), "{}", harness::describe(status));
        assert!(harness::is_socket(&path), "the killed server's socket file");
        let mut server =
            Server::<Msg>::bind(&addr, 64, Policy::SameUser).expect("replace the stale socket");

        // And the new server works.
        const COUNT: u64 = 1000;
        let mut client = Proc::spawn(
            "client",
            &[
                ("IPCP_ADDR", path_text),
                ("IPCP_CLIENT", "3".to_owned()),
                ("IPCP_COUNT", COUNT.to_string()),
                ("IPCP_MODE", "single".to_owned()),
            ],
            Duration::from_secs(30),
        );
        wait_readable(&server, &mut [&mut client], "the client to connect");
        let mut session = server
            .accept()
            .expect("the listener works")
            .expect("the client is served");
        let (rx, wakeup) = session.parts();
        pop_all_blocking(rx, wakeup, 3, COUNT, &mut client, |_| {
            SpinThenBlock::default()
        });
        client.wait_success();
        drop(session);
        drop(server);
        drop(dir);
        assert!(!path.exists(), "the temp dir and socket are gone");
    });
}

// ---------------------------------------------------------------------------
// A server that never answers
// ---------------------------------------------------------------------------

/// A "server" that accepts connections into its backlog but never sends the
/// hello (hung, or not a handshake server at all): `connect` gives up after
/// `HELLO_TIMEOUT` with `TimedOut`, as the design asks of every stuck peer.
#[test]
fn connect_to_a_server_that_never_answers_gives_up() {
    accounted(|| {
        let (addr, name) = abstract_addr("silent");
        let listener = SeqpacketListener::bind(&addr).expect("bind");
        let mut child = Proc::spawn(
            "connect-report",
            &[("IPCP_ADDR", name), ("IPCP_TYPE", "Msg".to_owned())],
            Duration::from_secs(60),
        );
        let patience = HELLO_TIMEOUT * 3;
        let deadline = Instant::now() + patience;
        while child.exited().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        if child.exited().is_none() {
            child.kill();
            panic!(
                "connect() to a server that never sends its hello was still blocked after \
                 {patience:?}"
            );
        }
        let results = child.wait_success();
        assert_eq!(results, ["connect Err(TimedOut)"]);
        drop(listener);
    });
}

// ---------------------------------------------------------------------------
// 9. Another pid namespace
// ---------------------------------------------------------------------------

/// A client in a pid namespace of its own, as a client on the host sees a
/// daemon in a container: `SO_PEERCRED` gives it pid 0 for the server, which
/// reads as `None` (rustix's `UCred` would hold an invalid zero `Pid`), and
/// the handshake and the ring work as usual. The server, in the parent
/// namespace, sees the client's pid.
#[test]
fn a_client_in_another_pid_namespace_sees_no_server_pid() {
    accounted(|| {
        const CLIENT: u64 = 9;
        const COUNT: u64 = 10_000;
        let (addr, name) = abstract_addr("pidns");
        let mut server = Server::<Msg>::bind(&addr, 64, Policy::SameUser).expect("bind");
        let mut child = Proc::spawn_in_new_pid_namespace(
            "client",
            &[
                ("IPCP_ADDR", name),
                ("IPCP_CLIENT", CLIENT.to_string()),
                ("IPCP_COUNT", COUNT.to_string()),
                ("IPCP_MODE", "single".to_owned()),
            ],
            Duration::from_secs(60),
        );
        wait_readable(&server, &mut [&mut child], "the client to connect");
        let mut session = server
            .accept()
            .expect("the listener works")
            .expect("the client is served");
        let client_pid = session.credentials().pid.expect("the client is visible");
        assert_ne!(
            client_pid.as_raw_nonzero().get(),
            child.pid(),
            "the client is unshare's child, not unshare"
        );
        let (rx, wakeup) = session.parts();
        pop_all_blocking(rx, wakeup, CLIENT, COUNT, &mut child, |_| {
            SpinThenBlock::default()
        });
        assert_eq!(child.wait_success(), ["server-pid None"]);
    });
}

// ---------------------------------------------------------------------------
// 10. No /proc
// ---------------------------------------------------------------------------

/// A client in a sandbox without `/proc` (a mount namespace where it is
/// unmounted): `EventFd::from_fd` tells an eventfd from a pipe, an epoll fd,
/// a timerfd and a memfd without it, and the handshake works.
#[test]
fn a_client_without_proc_checks_its_eventfd_and_connects() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: unshare --mount needs root");
        return;
    }
    accounted(|| {
        const COUNT: u64 = 1000;
        let (addr, name) = abstract_addr("no-proc");
        let mut server = Server::<Msg>::bind(&addr, 64, Policy::SameUser).expect("bind");
        let mut child = Proc::spawn_without_proc(
            "without-proc",
            &[("IPCP_ADDR", name), ("IPCP_COUNT", COUNT.to_string())],
            Duration::from_secs(60),
        );
        wait_readable(&server, &mut [&mut child], "the client to connect");
        let mut session = server
            .accept()
            .expect("the listener works")
            .expect("the client is served");
        let (rx, wakeup) = session.parts();
        pop_all_blocking(rx, wakeup, 0, COUNT, &mut child, |_| {
            SpinThenBlock::default()
        });
        let not_eventfd = format!("{:?}", Err::<(), _>(EventFdError::NotEventFd));
        let expected = [
            "proc-gone true".to_owned(),
            format!("eventfd {:?}", Ok::<(), EventFdError>(())),
            format!("pipe-read {not_eventfd}"),
            format!("pipe-write {not_eventfd}"),
            format!("epoll {not_eventfd}"),
            format!("timerfd {not_eventfd}"),
            format!("memfd {not_eventfd}"),
            format!("pushed {COUNT}"),
        ];
        assert_eq!(child.wait_success(), expected);
    });
}

// ---------------------------------------------------------------------------
// 11. Out of fds
// ---------------------------------------------------------------------------

/// A server whose fd table is full but for one session's worth: the first
/// client gets a ring; each later one is accepted on the server's spare fd,
/// told `OutOfResources` and closed (no busy loop on `EMFILE`, no client left
/// waiting for a hello), and the server reports each by pid. Once the
/// session ends, the next client is served again.
#[test]
fn a_server_out_of_fds_drops_newcomers_with_a_status() {
    accounted(|| {
        const CLIENTS: usize = 20;
        let (addr, name) = abstract_addr("starved");
        let mut server = Proc::spawn(
            "fd-starved-server",
            &[("IPCP_ADDR", name), ("IPCP_CLIENTS", CLIENTS.to_string())],
            Duration::from_secs(60),
        );
        server.expect_line(harness::READY);
        let hello_of = |server: &mut Proc| {
            let stream = SeqpacketStream::connect(&addr).expect("connect");
            wait_readable(&stream, &mut [server], "the hello");
            let mut buf = [0; HELLO_LEN];
            let (len, fds) = stream.recv_with_fds(&mut buf, 2).expect("the hello");
            let hello = Hello::decode(&buf[..len]).expect("a valid hello");
            (hello.status, (stream, fds))
        };
        let (statuses, held): (Vec<_>, Vec<_>) =
            (0..CLIENTS).map(|_| hello_of(&mut server)).unzip();
        assert_eq!(statuses[0], Status::Accepted);
        assert!(
            statuses[1..]
                .iter()
                .all(|&status| status == Status::OutOfResources),
            "{statuses:?}"
        );
        server.expect_line(harness::READY);
        drop(held);
        let (last, _held) = hello_of(&mut server);
        assert_eq!(last, Status::Accepted);

        // The chain goes on with the errno's own text.
        let dropped = format!(
            "client-error dropped client pid {} uid {}: out of fds: accepted on the spare fd and \
             closed: accept4: {}",
            std::process::id(),
            rustix::process::geteuid().as_raw(),
            Errno::MFILE
        );
        let results = server.wait_success();
        assert_eq!(results.len(), CLIENTS + 1, "{results:?}");
        assert_eq!(results[0], "accepted ()");
        for result in &results[1..CLIENTS] {
            assert!(result.starts_with(&dropped), "{result}");
        }
        assert_eq!(results[CLIENTS], "accepted ()");
    });
}
