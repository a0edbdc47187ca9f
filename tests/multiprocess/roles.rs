//! What the child processes do. Each role reads its parameters from the
//! environment, panics with a message on any failure (the child then exits
//! non-zero and the message shows on the inherited stderr), and prints what
//! the parent must check as `RESULT` lines on stdout.

use core::time::Duration;
use std::os::fd::AsFd;
use std::time::Instant;

use ipc_primitives::linux::handshake::{Connection, Policy, Server, connect};
use ipc_primitives::linux::shm::{REQUIRED_SEALS, SealFlags, Segment};
use ipc_primitives::linux::uds::UnixAddr;
use ipc_primitives::linux::wake::{EventFd, PushNotifyError, Wakeup};
use ipc_primitives::seqlock::SeqLock;
use ipc_primitives::spsc::{Producer, PushError, Spsc};
use rustix::process::{Resource, Rlimit, setrlimit};

use crate::harness::{PIDNS_VAR, READY, RESULT, env, env_parse, open_fds};
use crate::message::{Msg, message};

/// Runs `role`; returning means it succeeded.
pub(crate) fn run(role: &str) {
    match role {
        "busy-producer" => busy_producer(),
        "futex-producer" => futex_producer(),
        "client" => client(),
        "attach-report" => attach_report(),
        "connect-report" => connect_report(),
        "try-truncate" => try_truncate(),
        "socket-server" => socket_server(),
        "without-proc" => without_proc(),
        "fd-starved-server" => fd_starved_server(),
        other => panic!("unknown child role {other:?}"),
    }
}

/// Prints a line for the parent.
fn report(key: &str, value: impl core::fmt::Debug) {
    println!("{RESULT}{key} {value:?}");
}

/// The address in `IPCP_ADDR`: a path if it starts with `/`, else an
/// abstract name.
pub(crate) fn addr_from_env() -> UnixAddr {
    let addr = env("IPCP_ADDR");
    if addr.starts_with('/') {
        UnixAddr::path(&addr).expect("socket path")
    } else {
        UnixAddr::abstract_name(&addr).expect("abstract name")
    }
}

/// Spins briefly, then yields: the machine has two cores and the consumer
/// needs one of them.
fn backoff(attempt: &mut u32) {
    if *attempt < 64 {
        core::hint::spin_loop();
    } else {
        std::thread::yield_now();
    }
    *attempt = attempt.saturating_add(1);
}

/// Pushes `msg`, retrying while the ring is full.
#[inline]
fn push_spin<K>(tx: &mut Producer<'_, Msg, K>, msg: Msg) {
    let mut value = msg;
    let mut attempt = 0;
    loop {
        match tx.try_push(value) {
            Ok(()) => return,
            Err(PushError::Full(back)) => value = back,
            Err(err) => panic!("push of message {}: {err}", msg[0]),
        }
        backoff(&mut attempt);
    }
}

/// Pushes `msg` and wakes the consumer if it sleeps, retrying while full.
fn push_notify<K>(tx: &mut Producer<'_, Msg, K>, msg: Msg, wakeup: &Wakeup) {
    let mut value = msg;
    let mut attempt = 0;
    loop {
        match tx.push_notify(value, wakeup) {
            Ok(()) => return,
            Err(PushNotifyError::Push(PushError::Full(back))) => value = back,
            Err(err) => panic!("push_notify of message {}: {err}", msg[0]),
        }
        backoff(&mut attempt);
    }
}

/// Pushes all of `batch` with `push_slice_notify`, retrying while full.
fn push_batch<K>(tx: &mut Producer<'_, Msg, K>, batch: &[Msg], wakeup: &Wakeup) {
    let mut sent = 0;
    let mut attempt = 0;
    while sent < batch.len() {
        match tx.push_slice_notify(&batch[sent..], wakeup) {
            Ok(0) => backoff(&mut attempt),
            Ok(pushed) => {
                sent += pushed;
                attempt = 0;
            }
            Err(err) => panic!("push_slice_notify: {err}"),
        }
    }
}

/// Sends `0..count` as client `client`, in a pattern that makes the consumer
/// fall asleep now and then: runs of single `push_notify`s and of batches
/// through `push_slice_notify`, a short pause about every 4096 messages and a
/// long one (long enough for any consumer to find the ring empty and sleep)
/// before the first message and about every 65536.
fn send_with_pauses<K>(tx: &mut Producer<'_, Msg, K>, client: u64, count: u64, wakeup: &Wakeup) {
    let mut seq = 0;
    let mut next_pause = 0;
    let mut batch = Vec::with_capacity(32);
    while seq < count {
        if seq >= next_pause {
            let pause = if next_pause % 65_536 == 0 {
                20_000
            } else {
                300
            };
            std::thread::sleep(Duration::from_micros(pause));
            next_pause += 4096;
        }
        // Alternate runs of 64 singles and one batch of 1..=32.
        if (seq / 64) % 2 == 0 {
            push_notify(tx, message(client, seq), wakeup);
            seq += 1;
        } else {
            let len = (seq % 32 + 1).min(count - seq);
            batch.clear();
            batch.extend((seq..seq + len).map(|seq| message(client, seq)));
            push_batch(tx, &batch, wakeup);
            seq += len;
        }
    }
}

/// Busy mode (`multiprocess_transfer`): attach to the parent's named ring and push `IPCP_COUNT` messages
/// with `try_push`, spinning while the ring is full.
fn busy_producer() {
    let segment = Segment::open(&env("IPCP_SHM")).expect("open the parent's segment");
    let count: u64 = env_parse("IPCP_COUNT");
    let mut tx = Spsc::<Msg>::attach(segment.region().expect("the segment's region"))
        .expect("attach")
        .into_producer();
    for seq in 0..count {
        push_spin(&mut tx, message(0, seq));
    }
}

/// Futex blocking mode (`multiprocess_transfer`): push to the parent's named ring and wake it with a
/// shared futex on the ring's event word.
fn futex_producer() {
    let segment = Segment::open(&env("IPCP_SHM")).expect("open the parent's segment");
    let count: u64 = env_parse("IPCP_COUNT");
    let mut tx = Spsc::<Msg>::attach(segment.region().expect("the segment's region"))
        .expect("attach")
        .into_producer();
    send_with_pauses(&mut tx, 0, count, &Wakeup::Futex);
}

/// Every test with real clients: connect through the handshake and send `IPCP_COUNT`
/// messages as client `IPCP_CLIENT` (`IPCP_COUNT` = `endless` sends until
/// killed). `IPCP_MODE` is `pauses` (see [`send_with_pauses`]), `single`
/// (`push_notify` each) or `batch` (`push_slice_notify` in batches of 16).
/// Checks that the connection leaves no fd behind in this process.
fn client() {
    let client: u64 = env_parse("IPCP_CLIENT");
    let count = match env("IPCP_COUNT").as_str() {
        "endless" => u64::MAX,
        count => count.parse().expect("IPCP_COUNT"),
    };
    let mode = env("IPCP_MODE");
    let parent: i32 = env_parse(crate::harness::PARENT_VAR);
    let fds_before = open_fds();
    {
        let mut conn = connect::<Msg>(&addr_from_env()).expect("connect");
        let server = conn.server_credentials().expect("SO_PEERCRED");
        // In a pid namespace of its own, the child cannot see the server.
        let expected = std::env::var_os(PIDNS_VAR).is_none().then_some(parent);
        assert_eq!(
            server.pid.map(|pid| pid.as_raw_nonzero().get()),
            expected,
            "the server is the parent"
        );
        report(
            "server-pid",
            server.pid.map(|pid| pid.as_raw_nonzero().get()),
        );
        let (tx, wakeup) = conn.parts();
        match mode.as_str() {
            "pauses" => send_with_pauses(tx, client, count, wakeup),
            "single" => {
                for seq in 0..count {
                    push_notify(tx, message(client, seq), wakeup);
                }
            }
            "batch" => {
                let mut batch = Vec::with_capacity(16);
                let mut seq = 0;
                while seq < count {
                    let len = 16.min(count - seq);
                    batch.clear();
                    batch.extend((seq..seq + len).map(|seq| message(client, seq)));
                    push_batch(tx, &batch, wakeup);
                    seq += len;
                }
            }
            other => panic!("unknown IPCP_MODE {other:?}"),
        }
    }
    let fds_after = open_fds();
    assert_eq!(fds_before, fds_after, "client {client} leaked fds");
}

/// Attach tests (`multiprocess_attach`): attach to the parent's segments as `IPCP_CASES` says and report
/// each outcome. `IPCP_CASES` is `case:name` pairs separated by `;`.
fn attach_report() {
    for (index, case) in env("IPCP_CASES").split(';').enumerate() {
        let (what, name) = case.split_once(':').expect("case:name");
        let segment = Segment::open(name).expect("open the parent's segment");
        let region = segment.region().expect("the segment's region");
        let outcome = match what {
            "ring-as-Msg" => format!("{:?}", Spsc::<Msg>::attach(region).map(drop)),
            "ring-as-u64" => format!("{:?}", Spsc::<u64>::attach(region).map(drop)),
            "ring-as-u32x16" => format!("{:?}", Spsc::<[u32; 16]>::attach(region).map(drop)),
            "ring-as-u32x15" => format!("{:?}", Spsc::<[u32; 15]>::attach(region).map(drop)),
            "ring-as-seqlock" => format!("{:?}", SeqLock::<Msg>::attach(region).map(drop)),
            "seqlock-read" => format!(
                "{:?}",
                SeqLock::<[u64; 4]>::attach(region).map(|lock| lock.reader().try_read())
            ),
            "seqlock-as-u64" => format!("{:?}", SeqLock::<u64>::attach(region).map(drop)),
            other => panic!("unknown attach case {other:?}"),
        };
        println!("{RESULT}{index} {outcome}");
    }
}

/// Attach and handshake tests: connect as a client of `IPCP_TYPE` (`Msg` or `u64`) and
/// report the outcome; a failed handshake must leave no fd behind. With
/// `IPCP_LIMIT_AS`, the process may map at most that many bytes.
fn connect_report() {
    if let Ok(limit) = std::env::var("IPCP_LIMIT_AS") {
        let limit = limit.parse().expect("IPCP_LIMIT_AS");
        let rlimit = Rlimit {
            current: Some(limit),
            maximum: Some(limit),
        };
        setrlimit(Resource::As, rlimit).expect("setrlimit(RLIMIT_AS)");
    }
    let addr = addr_from_env();
    let fds_before = open_fds();
    let outcome = match env("IPCP_TYPE").as_str() {
        // The error without the address the parent gave: what went wrong.
        "Msg" => format!(
            "{:?}",
            connect::<Msg>(&addr)
                .map(drop)
                .map_err(|err| err.into_error())
        ),
        "u64" => format!(
            "{:?}",
            connect::<u64>(&addr)
                .map(drop)
                .map_err(|err| err.into_error())
        ),
        other => panic!("unknown IPCP_TYPE {other:?}"),
    };
    let fds_after = open_fds();
    assert_eq!(fds_before, fds_after, "the handshake leaked fds");
    println!("{RESULT}connect {outcome}");
}

/// Sealed memfd (`multiprocess_handshake`): connect, then try to resize the sealed memfd the server sent and
/// to add a write seal; report each outcome, then push `IPCP_COUNT` messages
/// to show the ring still works.
fn try_truncate() {
    let count: u64 = env_parse("IPCP_COUNT");
    let mut conn: Connection<Msg> = connect(&addr_from_env()).expect("connect");
    let segment = conn.segment();
    let len = segment.len() as u64;
    report("shrink", rustix::fs::ftruncate(segment, len / 2));
    report("grow", rustix::fs::ftruncate(segment, len * 2));
    report("truncate-to-zero", rustix::fs::ftruncate(segment, 0));
    report(
        "add-write-seal",
        rustix::fs::fcntl_add_seals(segment, SealFlags::WRITE),
    );
    report(
        "seals",
        rustix::fs::fcntl_get_seals(segment)
            .map(|seals| seals.contains(REQUIRED_SEALS | SealFlags::SEAL)),
    );
    let size = rustix::fs::fstat(segment).expect("fstat").st_size;
    report("size-unchanged", size.cast_unsigned() == len);
    let tx = conn.producer_mut();
    for seq in 0..count {
        push_spin(tx, message(0, seq));
    }
    report("pushed", count);
}

/// Socket path (`multiprocess_handshake`): listen on `IPCP_ADDR`, say so, and wait to be killed.
fn socket_server() {
    let _server = Server::<Msg>::bind(&addr_from_env(), 64, Policy::SameUser).expect("bind");
    println!("{READY}");
    // The parent kills it; give up after a minute if it does not.
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("socket-server was never killed");
}

/// Runs without `/proc`: reports what `EventFd::from_fd` says of an eventfd
/// and of fds of other kinds, then connects to the parent's server at
/// `IPCP_ADDR` and pushes `IPCP_COUNT` messages.
fn without_proc() {
    report("proc-gone", std::fs::metadata("/proc/thread-self").is_err());
    let eventfd = EventFd::new().expect("eventfd");
    let copy = eventfd.as_fd().try_clone_to_owned().expect("dup");
    report("eventfd", EventFd::from_fd(copy).map(drop));
    let (read_end, write_end) = rustix::pipe::pipe().expect("pipe");
    report("pipe-read", EventFd::from_fd(read_end).map(drop));
    report("pipe-write", EventFd::from_fd(write_end).map(drop));
    let epoll = rustix::event::epoll::create(rustix::event::epoll::CreateFlags::CLOEXEC)
        .expect("epoll_create1");
    report("epoll", EventFd::from_fd(epoll).map(drop));
    let timer = rustix::time::timerfd_create(
        rustix::time::TimerfdClockId::Monotonic,
        rustix::time::TimerfdFlags::CLOEXEC,
    )
    .expect("timerfd_create");
    report("timerfd", EventFd::from_fd(timer).map(drop));
    let memfd = rustix::fs::memfd_create("not-an-eventfd", rustix::fs::MemfdFlags::CLOEXEC)
        .expect("memfd_create");
    report("memfd", EventFd::from_fd(memfd).map(drop));

    let count: u64 = env_parse("IPCP_COUNT");
    let mut conn = connect::<Msg>(&addr_from_env()).expect("connect without /proc");
    let (tx, wakeup) = conn.parts();
    for seq in 0..count {
        push_notify(tx, message(0, seq), wakeup);
    }
    report("pushed", count);
}

/// `err` and its sources, joined by ": ".
pub(crate) fn error_chain(err: &dyn core::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(err) = source {
        text = format!("{text}: {err}");
        source = err.source();
    }
    text
}

/// A server with no fd to spare: binds at `IPCP_ADDR`, fills its fd table
/// (under `RLIMIT_NOFILE` 256), frees room for exactly one session (socket,
/// memfd, two eventfds), says it is ready and reports the outcome of each of
/// `IPCP_CLIENTS` connections. Then it drops its sessions and reports the
/// outcome of one more.
fn fd_starved_server() {
    let clients: usize = env_parse("IPCP_CLIENTS");
    let limit = Rlimit {
        current: Some(256),
        maximum: Some(256),
    };
    setrlimit(Resource::Nofile, limit).expect("setrlimit(RLIMIT_NOFILE)");
    let mut server = Server::<Msg>::bind(&addr_from_env(), 64, Policy::SameUser).expect("bind");
    let mut filler = Vec::new();
    loop {
        match rustix::io::fcntl_dupfd_cloexec(std::io::stdout(), 0) {
            Ok(fd) => filler.push(fd),
            Err(rustix::io::Errno::MFILE) => break,
            Err(errno) => panic!("dup: {errno}"),
        }
    }
    filler.truncate(filler.len() - 4);
    println!("{READY}");
    let outcome = |server: &mut Server<Msg>| match server.accept().expect("the listener works") {
        Ok(session) => {
            report("accepted", ());
            Some(session)
        }
        Err(err) => {
            println!("{RESULT}client-error {}", error_chain(&err));
            None
        }
    };
    let sessions: Vec<_> = (0..clients).filter_map(|_| outcome(&mut server)).collect();
    drop(sessions);
    println!("{READY}");
    let last = outcome(&mut server);
    assert!(last.is_some(), "the client after the flood was served");
}
