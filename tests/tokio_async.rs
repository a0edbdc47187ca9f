//! The `tokio` feature with real fds and threads: a consumer awaiting idle
//! uses no CPU, `send` awaits space, and a server accepts with
//! `accept().await` and learns of a client's hang-up.
//!
//! Run: `cargo test --features tokio --test tokio_async`
#![cfg(all(target_os = "linux", feature = "tokio"))]

use core::time::Duration;
use std::thread;
use std::time::Instant;

use ipc_primitives::linux::handshake::{Policy, Server, connect};
use ipc_primitives::linux::shm::Segment;
use ipc_primitives::linux::tokio::{AsyncConsumer, AsyncProducer, AsyncServer, AsyncSession};
use ipc_primitives::linux::uds::UnixAddr;
use ipc_primitives::linux::wake::{SpinThenBlock, WaitError, Wakeup};
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
        // Dropping the connection hangs up and closes the ring.
    });
    runtime().block_on(async {
        let mut server = AsyncServer::new(server).unwrap();
        let session = server.accept().await.unwrap().unwrap();
        let mut session = AsyncSession::new(session).unwrap();
        for seq in 0..100 {
            assert_eq!(session.recv().await, Ok(seq));
        }
        let end = session.recv().await;
        assert!(
            matches!(
                end,
                Err(BlockingError::Closed | BlockingError::Sleep(WaitError::PeerGone))
            ),
            "{end:?}"
        );
    });
    client.join().unwrap();
}
