//! The `tokio` feature with real fds, threads and processes: a consumer
//! awaiting idle uses no CPU, `send` awaits space, a server accepts with
//! `accept().await` and learns of a client's hang-up, a handshake client's
//! `send().await` awaits space through the `space` eventfd the hello
//! carries, and dropping an async handle wakes a peer blocked without a
//! timeout with `Closed` (in this process and across processes).
//!
//! Run: `cargo test --features tokio --test tokio_async`. The cross-process
//! tests re-execute this binary as the client (the `child` test, which
//! does nothing unless `IPCP_TOKIO_CHILD` names a role).
#![cfg(all(target_os = "linux", feature = "tokio"))]

use core::time::Duration;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Instant;

use ipc_primitives::linux::handshake::{OwnedConsumer, OwnedProducer, Policy, Server, connect};
use ipc_primitives::linux::shm::Segment;
use ipc_primitives::linux::tokio::{
    AsyncConnection, AsyncConsumer, AsyncProducer, AsyncServer, AsyncSession,
};
use ipc_primitives::linux::uds::UnixAddr;
use ipc_primitives::linux::wake::{SpinThenBlock, Wakeup};
use ipc_primitives::spsc::{BlockingError, Spsc};
use rustix::time::{ClockId, clock_gettime};

/// A bound on the blocking calls of the peers, so that a lost wake-up fails
/// the test instead of hanging it; never reached when the code is right.
const NEVER: Option<Duration> = Some(Duration::from_secs(20));

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap()
}

/// This thread's CPU time (`clock_gettime(CLOCK_THREAD_CPUTIME_ID)`).
fn thread_cpu_time() -> Duration {
    let now = clock_gettime(ClockId::ThreadCPUTime);
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

/// A consumer awaiting an element that comes after a second of idleness
/// spends that second asleep in the reactor. The runtime is current-thread,
/// so this thread's CPU time is everything the wait cost. Busy-polling (or a
/// lost announcement that made the task spin through `recv`) would burn
/// close to 100% of the wall time; a sleeping task costs the registration,
/// one `epoll_wait` and one wake-up: microseconds. The bound, 5% of the wall
/// time (about 50 ms), is far above the second and far below the first, so
/// a loaded machine does not make it flaky.
#[test]
fn a_consumer_awaiting_idle_uses_no_cpu() {
    let segment = Segment::memfd("idle-cpu", Spsc::<u64>::required_size(4).unwrap()).unwrap();
    let (mut tx, rx) = Spsc::<u64>::create(segment.into_region().unwrap(), 4)
        .unwrap()
        .split();
    let wakeup = Wakeup::eventfds().unwrap();
    let peer = wakeup.try_clone().unwrap();
    let producer = thread::spawn(move || {
        thread::sleep(Duration::from_secs(1));
        tx.push_notify(7, &peer).unwrap();
    });
    let runtime = runtime();
    let (cpu, wall) = runtime.block_on(async {
        let mut rx = AsyncConsumer::new(rx, wakeup).unwrap();
        let (cpu, wall) = (thread_cpu_time(), Instant::now());
        assert_eq!(rx.recv().await, Ok(7));
        (thread_cpu_time() - cpu, wall.elapsed())
    });
    producer.join().unwrap();
    assert!(
        cpu < wall / 20,
        "the idle consumer used {cpu:?} of CPU in {wall:?}"
    );
}

/// `send().await` against a blocking consumer in another thread, through a
/// 2-slot ring: the producer awaits space again and again, and each pop
/// wakes it through the `space` eventfd. Then the consumer closes with
/// `close_notify`, and a send into the full ring ends with `Closed`.
#[test]
fn send_awaits_space_and_stops_when_the_consumer_closes() {
    let segment = Segment::memfd("send-space", Spsc::<u64>::required_size(2).unwrap()).unwrap();
    let (tx, mut rx) = Spsc::<u64>::create(segment.into_region().unwrap(), 2)
        .unwrap()
        .split();
    let wakeup = Wakeup::eventfds().unwrap();
    let peer = wakeup.try_clone().unwrap();
    let consumer = thread::spawn(move || {
        for seq in 0..1000 {
            assert_eq!(
                rx.pop_blocking(&peer, SpinThenBlock::new(0), NEVER),
                Ok(seq)
            );
        }
        // Let the producer fill the ring and sleep, then close.
        while !rx.peer_event().has_sleeper() {
            thread::sleep(Duration::from_millis(1));
        }
        rx.close_notify(&peer).unwrap();
    });
    runtime().block_on(async {
        let mut tx = AsyncProducer::new(tx, wakeup).unwrap();
        for seq in 0..1000 {
            assert!(tx.send(seq).await.is_ok(), "send {seq}");
        }
        for seq in 0..2 {
            assert!(tx.send(seq).await.is_ok(), "fill {seq}");
        }
        assert_eq!(tx.send(9).await, Err((9, BlockingError::Closed)));
    });
    consumer.join().unwrap();
}

/// A server accepts with `accept().await`, receives what a client (another
/// thread, a real socket and memfd) pushes, and once the client is gone its
/// session ends with a typed error rather than waiting for ever.
#[test]
fn a_session_receives_then_ends_when_its_client_goes() {
    let addr = UnixAddr::abstract_name(format!("ipcp-tokio-{}", std::process::id())).unwrap();
    let server = Server::<u64>::bind(&addr, 4, Policy::SameUser).unwrap();
    let client = thread::spawn(move || {
        let mut conn = connect::<u64>(&addr).unwrap();
        for seq in 0..100 {
            let pushed = conn.push_blocking(seq, SpinThenBlock::new(0), NEVER);
            assert!(pushed.is_ok(), "push {seq}");
        }
        // Dropping the connection closes the ring, wakes the server, and
        // then hangs up.
    });
    runtime().block_on(async {
        let mut server = AsyncServer::new(server).unwrap();
        let session = server.accept().await.unwrap().unwrap();
        let mut session = AsyncSession::new(session).unwrap();
        for seq in 0..100 {
            assert_eq!(session.recv().await, Ok(seq));
        }
        assert_eq!(session.recv().await, Err(BlockingError::Closed));
    });
    client.join().unwrap();
}

/// `send().await` on a handshake client against `recv().await` on its
/// session, each on its own runtime and thread, through 4 slots: the client
/// awaits space on the `space` eventfd the hello carried, again and again.
/// Then it drops its connection and the session ends with `Closed`.
#[test]
fn a_handshake_client_sends_awaiting_space_then_its_session_ends_closed() {
    let addr = UnixAddr::abstract_name(format!("ipcp-tokio-send-{}", std::process::id())).unwrap();
    let server = Server::<u64>::bind(&addr, 4, Policy::SameUser).unwrap();
    let client = thread::spawn(move || {
        runtime().block_on(async {
            let mut conn = AsyncConnection::new(connect::<u64>(&addr).unwrap()).unwrap();
            for seq in 0..1000 {
                assert!(conn.send(seq).await.is_ok(), "send {seq}");
            }
            let counters = conn.connection().producer().counters();
            assert!(counters.full > 0, "the client never waited: {counters:?}");
        });
    });
    runtime().block_on(async {
        let mut server = AsyncServer::new(server).unwrap();
        let session = server.accept().await.unwrap().unwrap();
        let mut session = AsyncSession::new(session).unwrap();
        for seq in 0..1000 {
            assert_eq!(session.recv().await, Ok(seq));
        }
        assert_eq!(session.recv().await, Err(BlockingError::Closed));
    });
    client.join().unwrap();
}

/// Runs `blocked` on a thread and returns what it returns, failing (not
/// hanging) the test if it is still blocked after [`NEVER`].
fn on_a_thread<R: Send + 'static>(
    blocked: impl FnOnce() -> R + Send + 'static,
) -> impl FnOnce() -> R {
    let (done, result) = mpsc::channel();
    thread::spawn(move || {
        let _ = done.send(blocked());
    });
    move || {
        result
            .recv_timeout(NEVER.unwrap())
            .expect("the blocked call never returned: the drop did not wake it")
    }
}

/// A ring of 4 `u64`s in a memfd, its two sides and a `Wakeup::EventFds`
/// for each.
fn ring() -> (OwnedProducer<u64>, OwnedConsumer<u64>, Wakeup, Wakeup) {
    let segment = Segment::memfd("drop-wake", Spsc::<u64>::required_size(4).unwrap()).unwrap();
    let (tx, rx) = Spsc::<u64>::create(segment.into_region().unwrap(), 4)
        .unwrap()
        .split();
    let wakeup = Wakeup::eventfds().unwrap();
    let peer = wakeup.try_clone().unwrap();
    (tx, rx, wakeup, peer)
}

/// Dropping an `AsyncConsumer` wakes a producer blocked without a timeout
/// on the full ring: its `push_blocking` ends with `Closed` at once.
#[test]
fn dropping_an_async_consumer_wakes_a_blocked_producer_with_closed() {
    let (mut tx, rx, wakeup, peer) = ring();
    let runtime = runtime();
    let rx = runtime.block_on(async { AsyncConsumer::new(rx, wakeup).unwrap() });
    tx.push_all(&[0; 4]).unwrap();
    let pushed = on_a_thread(move || tx.push_blocking(5, &peer, SpinThenBlock::new(0), None));
    let mut rx = rx;
    while !rx.consumer().peer_event().has_sleeper() {
        thread::sleep(Duration::from_millis(1));
    }
    drop(rx);
    assert_eq!(pushed(), Err((5, BlockingError::Closed)));
}

/// Dropping an `AsyncProducer` wakes a consumer blocked without a timeout
/// on the empty ring: its `pop_blocking` pops what is left, then ends with
/// `Closed` at once.
#[test]
fn dropping_an_async_producer_wakes_a_blocked_consumer_with_closed() {
    let (tx, mut rx, wakeup, peer) = ring();
    let runtime = runtime();
    let mut tx = runtime.block_on(async {
        let mut tx = AsyncProducer::new(tx, wakeup).unwrap();
        tx.send(1).await.unwrap();
        tx
    });
    let popped = on_a_thread(move || {
        let first = rx.pop_blocking(&peer, SpinThenBlock::new(0), None);
        let second = rx.pop_blocking(&peer, SpinThenBlock::new(0), None);
        (first, second)
    });
    while !tx.producer().peer_event().has_sleeper() {
        thread::sleep(Duration::from_millis(1));
    }
    drop(tx);
    assert_eq!(popped(), (Ok(1), Err(BlockingError::Closed)));
}

// ---------------------------------------------------------------------------
// Across processes: this binary re-executed as the client
// ---------------------------------------------------------------------------

/// The environment variable naming the role a child plays.
const ROLE: &str = "IPCP_TOKIO_CHILD";
/// The server's abstract socket name, for a child.
const ADDR: &str = "IPCP_TOKIO_ADDR";

/// The entry point of every child; without [`ROLE`], a test that passes.
#[test]
fn child() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    let addr = UnixAddr::abstract_name(std::env::var(ADDR).unwrap()).unwrap();
    if role == "stalled-unwatched" {
        // Fills its ring, then waits for space with no timeout in a push
        // that does not watch the socket: only a wake can end it.
        let mut conn = connect::<u64>(&addr).unwrap();
        conn.producer_mut().push_all(&[0; 4]).unwrap();
        let (producer, wakeup) = conn.parts();
        let pushed = producer.push_blocking(99, wakeup, SpinThenBlock::new(0), None);
        println!("IPCP-RESULT {pushed:?}");
        return;
    }
    runtime().block_on(async {
        let mut conn = AsyncConnection::new(connect::<u64>(&addr).unwrap()).unwrap();
        match role.as_str() {
            // Fills its ring, then awaits space with no timeout until the
            // server drops the session.
            "stalled" => {
                for seq in 0..4 {
                    conn.send(seq).await.unwrap();
                }
                println!("IPCP-RESULT {:?}", conn.send(99).await);
            }
            // Sends three values, waits until the server sleeps on the
            // empty ring, and drops its connection (exits cleanly).
            "drops" => {
                for seq in 0..3 {
                    conn.send(seq).await.unwrap();
                }
                while !conn.connection().producer().peer_event().has_sleeper() {
                    tokio::task::yield_now().await;
                    thread::sleep(Duration::from_millis(1));
                }
                drop(conn);
                println!("IPCP-RESULT dropped");
            }
            other => panic!("unknown role {other:?}"),
        }
    });
}

/// Spawns this binary as a client playing `role` for the server at `name`.
fn spawn_client(role: &str, name: &str) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child", "--nocapture", "--test-threads=1"])
        .env(ROLE, role)
        .env(ADDR, name)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The child's `IPCP-RESULT` line, once it exited 0; kills it and fails if
/// it is still running after [`NEVER`].
fn result_of(child: Child) -> String {
    let pid = child.id();
    let output = on_a_thread(move || child.wait_with_output().unwrap());
    let (done, finished) = mpsc::channel();
    let killer = thread::spawn(move || {
        if finished.recv_timeout(NEVER.unwrap()).is_err() {
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
        }
    });
    let output = output();
    let _ = done.send(());
    killer.join().unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        output.status.success(),
        "child: {:?}\n{stdout}",
        output.status
    );
    stdout
        .lines()
        // The harness prints `test child ... ` before it on the same line.
        .find_map(|line| line.split_once("IPCP-RESULT ").map(|(_, result)| result))
        .unwrap_or_else(|| panic!("no result from the child:\n{stdout}"))
        .to_owned()
}

/// A client process waiting for space with no timeout learns `Closed` at
/// once when the server drops its session: awaiting `send` (which also
/// watches the socket), and in a blocking push that watches nothing but its
/// `space` eventfd, which only the drop's wake can end.
#[test]
fn a_client_process_waiting_for_space_learns_closed_when_its_session_drops() {
    for role in ["stalled", "stalled-unwatched"] {
        let name = format!("ipcp-tokio-{role}-{}", std::process::id());
        let addr = UnixAddr::abstract_name(&name).unwrap();
        let mut server = Server::<u64>::bind(&addr, 4, Policy::SameUser).unwrap();
        let child = spawn_client(role, &name);
        let session = server.accept().unwrap().unwrap();
        let mut waited = 0;
        while !session.consumer().peer_event().has_sleeper() {
            waited += 1;
            assert!(waited < 20_000, "the client never waited for space");
            thread::sleep(Duration::from_millis(1));
        }
        drop(session);
        assert_eq!(result_of(child), "Err((99, Closed))", "{role}");
    }
}

/// A server awaiting a client process's next value learns `Closed` (not a
/// hang-up) once the client drops its connection, after the values it sent.
#[test]
fn a_session_learns_closed_when_a_client_process_drops_its_connection() {
    let name = format!("ipcp-tokio-drops-{}", std::process::id());
    let addr = UnixAddr::abstract_name(&name).unwrap();
    let server = Server::<u64>::bind(&addr, 4, Policy::SameUser).unwrap();
    let child = spawn_client("drops", &name);
    runtime().block_on(async {
        let mut server = AsyncServer::new(server).unwrap();
        let session = server.accept().await.unwrap().unwrap();
        let mut session = AsyncSession::new(session).unwrap();
        for seq in 0..3 {
            assert_eq!(session.recv().await, Ok(seq));
        }
        assert_eq!(session.recv().await, Err(BlockingError::Closed));
    });
    assert_eq!(result_of(child), "dropped");
}

/// The same with a server blocked, with no timeout, in a pop that watches
/// nothing but its eventfd (`Session::parts`): only the drop's wake can end
/// it.
#[test]
fn a_blocked_server_learns_closed_when_a_client_process_drops_its_connection() {
    let name = format!("ipcp-tokio-drops-blocking-{}", std::process::id());
    let addr = UnixAddr::abstract_name(&name).unwrap();
    let mut server = Server::<u64>::bind(&addr, 4, Policy::SameUser).unwrap();
    let child = spawn_client("drops", &name);
    let mut session = server.accept().unwrap().unwrap();
    let popped = on_a_thread(move || {
        let (consumer, wakeup) = session.parts();
        (0..4)
            .map(|_| consumer.pop_blocking(wakeup, SpinThenBlock::new(0), None))
            .collect::<Vec<_>>()
    });
    assert_eq!(popped(), [Ok(0), Ok(1), Ok(2), Err(BlockingError::Closed)]);
    assert_eq!(result_of(child), "dropped");
}
