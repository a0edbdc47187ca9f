//! Multi-process tests of the daemon pattern: one server process, several
//! client processes through the handshake, one epoll loop. How children run,
//! and the accounting around each test: `multiprocess/harness.rs`.
//!
//! 1. four clients at once, served by one epoll loop (`prepare_to_sleep` on
//!    each ring, sleep in `epoll_wait` on the eventfds and sockets, drain on
//!    wake);
//! 2. three clients, one `SIGKILL`ed mid-stream: the server sees the hang-up,
//!    keeps the gap-free prefix it sent, and keeps serving the others, who
//!    lose nothing;
//! 3. a server out of fds drops each newcomer through its spare fd with an
//!    `OutOfResources` hello, reports it by pid, and serves again once fds
//!    free up.
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
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::time::Instant;

use ipc_primitives::linux::handshake::{Policy, Server, Session};
use ipc_primitives::linux::hello::{HELLO_LEN, Hello, Status};
use ipc_primitives::linux::uds::SeqpacketStream;
use ipc_primitives::spsc::PopError;
use rustix::buffer::spare_capacity;
use rustix::event::{Timespec, epoll};
use rustix::io::Errno;

use harness::{Proc, abstract_addr, accounted, wait_readable};
use message::{Msg, Stream};
use parent::eventfd_of;

/// The entry point of every child: see `multiprocess/harness.rs`.
#[test]
fn child() {
    harness::run_child(roles::run);
}

/// Messages each client sends.
const CLIENT_MESSAGES: u64 = 100_000;

/// Slots in each client's ring; the loop pops at most this many from one
/// ring per round, so that a fast client cannot starve the others.
const CAPACITY: u32 = 1024;

/// How long the loop sleeps with every ring announced: ample for any
/// client's next push, so waking without an event means none came.
const IDLE: Duration = Duration::from_secs(1);

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
/// first), at a moment its ring holds messages not yet popped; from then on
/// the loop leaves that ring alone, so those messages are the ones the
/// hang-up handler must still drain.
fn serve(counts: &[Option<u64>], kill: Option<(usize, u64)>) -> Vec<Delivered> {
    let (addr, name) = abstract_addr("serve");
    let mut server = Server::<Msg>::bind(&addr, CAPACITY, Policy::SameUser).expect("bind");
    let mut lanes = spawn_clients(&name, counts);
    accept_all(&mut server, &mut lanes);
    let epoll = register(&lanes);

    let deadline = Instant::now() + Duration::from_secs(120);
    let mut unpopped_at_kill = None;
    let mut live = lanes.len();
    let mut events = Vec::with_capacity(2 * lanes.len());
    while live > 0 {
        if let Some((victim, after)) = kill
            && unpopped_at_kill.is_none()
            && time_to_kill(&lanes, victim, after)
        {
            unpopped_at_kill = kill_now(&mut lanes, victim);
        }
        let busy = drain_round(&mut lanes);
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
            if handle_event(&epoll, &mut lanes, event.flags, event.data.u64()) {
                live -= 1;
            }
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

/// Spawns one client per entry of `counts`, connecting to the server at the
/// abstract `name`; even ones push singly, odd ones in batches.
fn spawn_clients(name: &str, counts: &[Option<u64>]) -> Vec<Lane> {
    counts
        .iter()
        .zip(0_u64..)
        .map(|(&count, id)| {
            let count_text = count.map_or_else(|| "endless".to_owned(), |n| n.to_string());
            let mode = if id % 2 == 0 { "single" } else { "batch" };
            let proc = Proc::spawn(
                "client",
                &[
                    ("IPCP_ADDR", name.to_owned()),
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
        .collect()
}

/// Accepts every client; `SO_PEERCRED` says which child each session is.
fn accept_all(server: &mut Server<Msg>, lanes: &mut [Lane]) {
    for _ in 0..lanes.len() {
        let mut procs: Vec<&mut Proc> = lanes.iter_mut().map(|lane| &mut lane.proc).collect();
        wait_readable(&*server, &mut procs, "the clients to connect");
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
}

/// An epoll set with each lane's eventfd (data `2 * lane`, readable) and
/// socket (data `2 * lane + 1`, hang-up).
fn register(lanes: &[Lane]) -> OwnedFd {
    let epoll = epoll::create(epoll::CreateFlags::CLOEXEC).expect("epoll_create1");
    for (index, lane) in (0_u64..).zip(lanes) {
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
    epoll
}

/// Whether to kill `victim` now: once `after` of its messages arrived, or
/// earlier if it lags so far behind that another client is already halfway
/// through.
fn time_to_kill(lanes: &[Lane], victim: usize, after: u64) -> bool {
    let next = lanes[victim].stream.next;
    next >= after
        || (next > 0
            && lanes.iter().any(|lane| {
                lane.count
                    .is_some_and(|count| lane.stream.next >= count / 2)
            }))
}

/// Drains each live ring (at most one ring's worth, so that a fast client
/// cannot starve the others) and announces the sleep. Returns whether a ring
/// still had more.
fn drain_round(lanes: &mut [Lane]) -> bool {
    let mut busy = false;
    for lane in lanes {
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
                Err(err) => panic!("client {}: {err}", lane.id),
            }
        }
    }
    busy
}

/// Handles one epoll event: drains an eventfd, or hangs a client up. Returns
/// whether a client hung up.
fn handle_event(epoll: &OwnedFd, lanes: &mut [Lane], flags: epoll::EventFlags, data: u64) -> bool {
    let index = usize::try_from(data / 2).expect("lane index");
    let lane = &mut lanes[index];
    if data.is_multiple_of(2) {
        if let Some(session) = &lane.session {
            eventfd_of(session).drain().expect("read the eventfd");
        }
        return false;
    }
    let hung_up = epoll::EventFlags::HUP | epoll::EventFlags::RDHUP | epoll::EventFlags::ERR;
    if !flags.intersects(hung_up) {
        return false;
    }
    let Some(mut session) = lane.session.take() else {
        return false;
    };
    hang_up(epoll, lane, &mut session);
    true
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
            let (len, fds) = stream.recv_with_fds(&mut buf, 3).expect("the hello");
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

        // The whole chain, each failure once: who, what, and the call.
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
            assert_eq!(result, &dropped);
        }
        assert_eq!(results[CLIENTS], "accepted ()");
    });
}
