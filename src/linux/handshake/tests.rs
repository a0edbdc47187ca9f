//! Tests of the handshake, both sides.

use core::sync::atomic::{AtomicUsize, Ordering};
use core::time::Duration;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::thread;
use std::vec::Vec;

use rustix::event::PollFlags;
use rustix::process::geteuid;

use super::*;
use crate::linux::hello::{HELLO_LEN, HelloError};
use crate::linux::shm::ShmError;
use crate::linux::uds::UdsError;
use crate::linux::uds::{SeqpacketListener, SeqpacketStream, UnixAddr};
use crate::linux::wake::{EventFd, EventFdError};
use crate::spsc::Spsc;
use crate::{CreateError, ElementLayout, Kind};

fn unique_addr() -> UnixAddr {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    UnixAddr::abstract_name(format!("ipcp-hs-{}-{n}", std::process::id())).unwrap()
}

/// A fake server that accepts one connection and sends `bytes` with `fds`.
fn fake_server(addr: &UnixAddr, bytes: Vec<u8>, fds: Vec<OwnedFd>) -> thread::JoinHandle<()> {
    let listener = SeqpacketListener::bind(addr).unwrap();
    thread::spawn(move || {
        let stream = listener.accept().unwrap();
        let borrowed: Vec<_> = fds.iter().map(AsFd::as_fd).collect();
        stream.send_with_fds(&bytes, &borrowed).unwrap();
        // Keep the socket open until the client has read.
        let _ = stream.recv(&mut [0; 1]);
    })
}

/// `memfd` and two new eventfds: what an accepted hello carries.
fn with_eventfds(memfd: OwnedFd) -> Vec<OwnedFd> {
    vec![
        memfd,
        EventFd::new().unwrap().into(),
        EventFd::new().unwrap().into(),
    ]
}

/// A sealed memfd of the right size for a ring of 4 `u32`s, as a real
/// server sends (the ring itself is not written: the tests below fail
/// before the client attaches).
fn ring_memfd() -> (OwnedFd, usize) {
    let size = Spsc::<u32>::required_size(4).unwrap();
    let segment = crate::linux::shm::Segment::memfd("fake", size).unwrap();
    (
        rustix::io::fcntl_dupfd_cloexec(segment.as_fd(), 0).unwrap(),
        size,
    )
}

#[test]
fn accepted_client_pushes_and_server_drains_after_hang_up() {
    let addr = unique_addr();
    let mut server = Server::<[u64; 8]>::bind(&addr, 16, Policy::SameUser).unwrap();
    let client = thread::spawn({
        let addr = addr.clone();
        move || {
            let mut conn = connect::<[u64; 8]>(&addr).unwrap();
            let server = conn.server_credentials().unwrap();
            assert_eq!(server.pid, Some(rustix::process::getpid()));
            let tx = conn.producer_mut();
            for i in 0..10 {
                tx.try_push([i; 8]).unwrap();
            }
        }
    });
    let mut session = server.accept().unwrap().unwrap();
    assert_eq!(session.credentials().uid, geteuid());
    client.join().unwrap();
    assert!(session.peer_closed().unwrap());
    let mut got = Vec::new();
    assert_eq!(session.drain(|m| got.push(m[0])).unwrap(), 10);
    assert_eq!(got, (0..10).collect::<Vec<_>>());
}

#[test]
fn live_client_is_not_reported_closed() {
    let addr = unique_addr();
    let mut server = Server::<u32>::bind(&addr, 4, Policy::AnyUser).unwrap();
    let conn = thread::scope(|s| {
        let client = s.spawn(|| connect::<u32>(&addr).unwrap());
        let session = server.accept().unwrap().unwrap();
        let conn = client.join().unwrap();
        assert!(!session.peer_closed().unwrap());
        assert!(!conn.server_closed().unwrap());
        drop(session);
        assert!(conn.server_closed().unwrap(), "the session was dropped");
        conn
    });
    drop(conn);
}

#[test]
fn policy_refusal_is_reported_to_both_sides() {
    let addr = unique_addr();
    let mut server = Server::<u32>::bind(&addr, 4, Policy::Custom(Box::new(|_| false))).unwrap();
    let client = thread::spawn({
        let addr = addr.clone();
        move || connect::<u32>(&addr).map_err(|err| err.into_error())
    });
    let refused = server.accept().unwrap().unwrap_err();
    assert!(matches!(refused.failure, ClientFailure::Refused));
    assert_eq!(refused.peer.map(|peer| peer.uid), Some(geteuid()));
    assert_eq!(
        error_chain(&refused),
        format!(
            "dropped client pid {} uid {}: refused by the server's policy",
            rustix::process::getpid().as_raw_nonzero(),
            geteuid().as_raw()
        )
    );
    assert!(matches!(
        client.join().unwrap(),
        Err(HandshakeError::Refused)
    ));
}

#[test]
fn client_of_another_type_is_told_what_the_server_offers() {
    let addr = unique_addr();
    let mut server = Server::<u64>::bind(&addr, 4, Policy::SameUser).unwrap();
    let client = thread::spawn({
        let addr = addr.clone();
        move || connect::<u32>(&addr).map_err(|err| err.into_error())
    });
    let _session = server.accept().unwrap().unwrap();
    let err = client.join().unwrap().unwrap_err();
    assert!(matches!(
        err,
        HandshakeError::WrongRing { kind: Kind::Spsc, elem } if elem == ElementLayout::of::<u64>()
    ));
}

#[test]
fn hello_without_fds_is_refused() {
    let addr = unique_addr();
    let hello = hello::<u32>(Status::Accepted, 4, 4096, ACCEPTED_FDS);
    let server = fake_server(&addr, hello.encode().to_vec(), Vec::new());
    let err = connect::<u32>(&addr).unwrap_err().into_error();
    assert!(matches!(
        err,
        HandshakeError::MissingFds {
            expected: 3,
            found: 0
        }
    ));
    server.join().unwrap();
}

#[test]
fn garbage_hello_is_refused() {
    let addr = unique_addr();
    let server = fake_server(&addr, b"not a hello".to_vec(), Vec::new());
    let err = connect::<u32>(&addr).unwrap_err().into_error();
    assert!(matches!(
        err,
        HandshakeError::Hello(HelloError::Length {
            expected: HELLO_LEN,
            found: 11
        })
    ));
    server.join().unwrap();
}

#[test]
fn unsealed_memfd_is_refused() {
    let addr = unique_addr();
    let memfd = rustix::fs::memfd_create("unsealed", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
    let size = Spsc::<u32>::required_size(4).unwrap();
    rustix::fs::ftruncate(&memfd, size as u64).unwrap();
    let hello = hello::<u32>(Status::Accepted, 4, size, ACCEPTED_FDS);
    let server = fake_server(&addr, hello.encode().to_vec(), with_eventfds(memfd));
    let err = connect::<u32>(&addr).unwrap_err().into_error();
    assert!(
        matches!(err, HandshakeError::Shm(ShmError::NotSealed { .. })),
        "{err}"
    );
    server.join().unwrap();
}

#[test]
fn a_server_that_never_answers_times_out() {
    let addr = unique_addr();
    // Listening, but never accepting: the connection waits in the backlog.
    let _listener = SeqpacketListener::bind(&addr).unwrap();
    let err = connect_timeout::<u32>(&addr, Duration::from_millis(50))
        .unwrap_err()
        .into_error();
    assert!(matches!(err, HandshakeError::TimedOut), "{err}");
}

/// `err` and its sources, joined by ": ", as `anyhow` prints a chain.
fn error_chain(err: &dyn core::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(err) = source {
        text = format!("{text}: {err}");
        source = err.source();
    }
    text
}

#[test]
fn a_session_limit_refuses_newcomers_with_a_status_until_a_session_ends() {
    let addr = unique_addr();
    let mut server = Server::<u32>::bind(&addr, 4, Policy::SameUser).unwrap();
    server.set_max_sessions(Some(1));
    let client = |addr: &UnixAddr| {
        let addr = addr.clone();
        thread::spawn(move || connect::<u32>(&addr).map_err(|err| err.into_error()))
    };

    let first = client(&addr);
    let session = server.accept().unwrap().unwrap();
    let first = first.join().unwrap().unwrap();
    assert_eq!(server.sessions(), 1);

    let second = client(&addr);
    let over = server.accept().unwrap().unwrap_err();
    assert!(matches!(
        over.failure,
        ClientFailure::SessionLimit { max: 1 }
    ));
    assert_eq!(over.peer.map(|peer| peer.uid), Some(geteuid()));
    assert!(matches!(
        second.join().unwrap(),
        Err(HandshakeError::SessionLimit)
    ));

    drop(session);
    assert_eq!(server.sessions(), 0);
    let third = client(&addr);
    let _session = server.accept().unwrap().unwrap();
    third.join().unwrap().unwrap();
    drop(first);
}

#[test]
fn a_client_gone_before_its_hello_is_a_client_error() {
    let addr = unique_addr();
    let mut server = Server::<u32>::bind(&addr, 4, Policy::SameUser).unwrap();
    assert!(server.try_accept().unwrap().is_none(), "nobody waits");
    drop(SeqpacketStream::connect(&addr).unwrap());
    let gone = server.try_accept().unwrap().expect("a connection waits");
    let gone = gone.unwrap_err();
    assert!(matches!(gone.failure, ClientFailure::Gone), "{gone:?}");
    assert_eq!(gone.peer.map(|peer| peer.uid), Some(geteuid()));
    assert!(server.try_accept().unwrap().is_none());
    assert_eq!(server.sessions(), 0);
}

#[test]
fn the_server_fd_is_its_listener() {
    let addr = unique_addr();
    let server = Server::<u32>::bind(&addr, 4, Policy::SameUser).unwrap();
    assert_eq!(server.as_raw_fd(), server.as_fd().as_raw_fd());
    let events = crate::linux::poll::poll_now(server.as_fd(), PollFlags::IN).unwrap();
    assert!(events.is_empty());
    let _client = SeqpacketStream::connect(&addr).unwrap();
    let events = crate::linux::poll::poll_now(server.as_fd(), PollFlags::IN).unwrap();
    assert_eq!(events, PollFlags::IN);
}

#[test]
fn refusals_name_their_reason_on_the_client() {
    for (status, expected) in [
        (Status::SessionLimit, "SessionLimit"),
        (Status::OutOfResources, "ServerOutOfResources"),
    ] {
        let addr = unique_addr();
        let hello = hello::<u32>(status, 4, 0, 0);
        let server = fake_server(&addr, hello.encode().to_vec(), Vec::new());
        let err = connect::<u32>(&addr).unwrap_err().into_error();
        assert_eq!(format!("{err:?}"), expected);
        server.join().unwrap();
    }
}

/// A sealed memfd of a sparse terabyte, sent for a ring of 4 `u32`s: the
/// client refuses it from its size, before mapping it.
#[test]
fn a_memfd_of_the_wrong_size_is_refused_before_mapping() {
    const TIB: u64 = 1 << 40;
    let needed = Spsc::<u32>::required_size(4).unwrap();
    let page = rustix::param::page_size() as u64;
    for size in [TIB, needed as u64 - 1, needed as u64 + page] {
        let addr = unique_addr();
        let memfd = rustix::fs::memfd_create(
            "huge",
            rustix::fs::MemfdFlags::CLOEXEC | rustix::fs::MemfdFlags::ALLOW_SEALING,
        )
        .unwrap();
        rustix::fs::ftruncate(&memfd, size).unwrap();
        rustix::fs::fcntl_add_seals(&memfd, crate::linux::shm::REQUIRED_SEALS).unwrap();
        let hello = hello::<u32>(Status::Accepted, 4, size as usize, ACCEPTED_FDS);
        let server = fake_server(&addr, hello.encode().to_vec(), with_eventfds(memfd));
        let err = connect::<u32>(&addr).unwrap_err().into_error();
        assert!(
            matches!(
                err,
                HandshakeError::RegionSize { capacity: 4, needed: Some(n), found }
                    if n == needed && found == size
            ),
            "{err:?}"
        );
        server.join().unwrap();
    }
}

#[test]
fn bind_checks_the_capacity() {
    let addr = unique_addr();
    let err = Server::<u32>::bind(&addr, 3, Policy::SameUser).unwrap_err();
    assert_eq!(err.addr(), &addr);
    assert!(matches!(
        err.error(),
        HandshakeError::Create(CreateError::InvalidCapacity { capacity: 3 })
    ));
}

/// A bound on the blocking calls below, so that a lost wake-up fails the test
/// instead of hanging it; never reached when the code is right.
const NEVER: Option<Duration> = Some(Duration::from_secs(20));

/// The peer stopped: hung up, or closed the ring (a drop does both).
fn stopped<E>(
    result: &Result<E, crate::spsc::BlockingError<crate::linux::wake::WaitError>>,
) -> bool {
    use crate::linux::wake::WaitError;
    use crate::spsc::BlockingError;
    matches!(
        result,
        Err(BlockingError::Closed | BlockingError::Sleep(WaitError::PeerGone))
    )
}

/// 200 values through a 4-slot ring: the client waits for space, the server
/// for values, each waking the other; then the client goes and the server
/// learns it.
#[test]
fn a_blocking_client_and_session_wake_each_other_then_the_session_stops() {
    use crate::linux::wake::SpinThenBlock;
    let addr = unique_addr();
    let mut server = Server::<u64>::bind(&addr, 4, Policy::SameUser).unwrap();
    let client = thread::spawn({
        let addr = addr.clone();
        move || {
            let mut conn = connect::<u64>(&addr).unwrap();
            for seq in 0..200 {
                let pushed = conn.push_blocking(seq, SpinThenBlock::new(0), NEVER);
                assert!(pushed.is_ok(), "push {seq}");
            }
        }
    });
    let mut session = server.accept().unwrap().unwrap();
    for seq in 0..200 {
        assert_eq!(session.pop_blocking(SpinThenBlock::new(0), NEVER), Ok(seq));
    }
    client.join().unwrap();
    assert!(stopped(&session.pop_blocking(SpinThenBlock::new(0), NEVER)));
}

/// A client asleep on a full ring stops once its server drops the session,
/// instead of waiting for ever: no one will drain that ring.
#[test]
fn a_client_waiting_for_space_stops_when_the_server_goes() {
    use crate::linux::wake::SpinThenBlock;
    let addr = unique_addr();
    let mut server = Server::<u64>::bind(&addr, 4, Policy::SameUser).unwrap();
    let client = thread::spawn({
        let addr = addr.clone();
        move || {
            let mut conn = connect::<u64>(&addr).unwrap();
            conn.producer_mut().push_all(&[0; 4]).unwrap();
            conn.push_blocking(5, SpinThenBlock::new(0), NEVER)
        }
    });
    let session = server.accept().unwrap().unwrap();
    while !session.consumer().peer_event().has_sleeper() {
        thread::sleep(Duration::from_millis(1));
    }
    drop(session);
    let pushed = client.join().unwrap().map_err(|(_, err)| err);
    assert!(stopped(&pushed), "{pushed:?}");
}

/// A client of this version (3) refuses the hello of a server of version 2,
/// which sent two fds: a typed error naming both versions, whatever the fds.
#[test]
fn a_server_of_the_previous_version_is_refused_by_version() {
    let addr = unique_addr();
    let (memfd, size) = ring_memfd();
    let mut bytes = hello::<u32>(Status::Accepted, 4, size, 2).encode();
    bytes[4..6].copy_from_slice(&2u16.to_le_bytes());
    let eventfd = EventFd::new().unwrap();
    let server = fake_server(&addr, bytes.to_vec(), vec![memfd, eventfd.into()]);
    let err = connect::<u32>(&addr).unwrap_err();
    assert_eq!(
        error_chain(&err),
        format!("socket {addr}: hello version 2, this build speaks 3")
    );
    assert!(matches!(
        err.into_error(),
        HandshakeError::Hello(HelloError::Version {
            expected: 3,
            found: 2
        })
    ));
    server.join().unwrap();
}

/// Too few fds, or too many, for what the hello says: typed errors, the fds
/// that came closed, never a panic.
#[test]
fn the_wrong_number_of_fds_is_refused() {
    for count in [1, 2] {
        let addr = unique_addr();
        let (memfd, size) = ring_memfd();
        let mut fds = with_eventfds(memfd);
        fds.truncate(count);
        let hello = hello::<u32>(Status::Accepted, 4, size, ACCEPTED_FDS);
        let server = fake_server(&addr, hello.encode().to_vec(), fds);
        let err = connect::<u32>(&addr).unwrap_err().into_error();
        assert!(
            matches!(err, HandshakeError::MissingFds { expected: 3, found } if found == count),
            "{count} fds: {err:?}"
        );
        server.join().unwrap();
    }
    for count in [4, 5, 8] {
        let addr = unique_addr();
        let (memfd, size) = ring_memfd();
        let mut fds = with_eventfds(memfd);
        fds.extend((3..count).map(|_| EventFd::new().unwrap().into()));
        let hello = hello::<u32>(Status::Accepted, 4, size, count);
        let server = fake_server(&addr, hello.encode().to_vec(), fds);
        let err = connect::<u32>(&addr).unwrap_err().into_error();
        assert!(
            matches!(
                err,
                HandshakeError::Socket(UdsError::TooManyFds { .. } | UdsError::ControlTruncated)
            ),
            "{count} fds: {err:?}"
        );
        server.join().unwrap();
    }
}

/// Either eventfd replaced by a pipe: refused, and the error says which.
#[test]
fn a_wake_up_fd_that_is_no_eventfd_is_refused_by_position() {
    for position in [1, 2] {
        let addr = unique_addr();
        let (memfd, size) = ring_memfd();
        let mut fds = with_eventfds(memfd);
        let (pipe, _writer) = rustix::pipe::pipe().unwrap();
        fds[position] = pipe;
        let hello = hello::<u32>(Status::Accepted, 4, size, ACCEPTED_FDS);
        let server = fake_server(&addr, hello.encode().to_vec(), fds);
        let err = connect::<u32>(&addr).unwrap_err().into_error();
        match (position, &err) {
            (1, HandshakeError::EventFd(EventFdError::NotEventFd))
            | (2, HandshakeError::SpaceEventFd(EventFdError::NotEventFd)) => {}
            _ => panic!("a pipe as fd {position}: {err:?}"),
        }
        let which = [
            "",
            "`ready` eventfd (the hello's second",
            "`space` eventfd (the hello's third",
        ];
        assert!(error_chain(&err).contains(which[position]), "{err}");
        server.join().unwrap();
    }
}

/// What the handshake hands out: an eventfd for each direction, on both
/// sides, the same two kernel objects.
#[test]
fn both_sides_get_an_eventfd_for_each_direction() {
    let addr = unique_addr();
    let mut server = Server::<u64>::bind(&addr, 4, Policy::SameUser).unwrap();
    thread::scope(|s| {
        let client = s.spawn(|| connect::<u64>(&addr).unwrap());
        let session = server.accept().unwrap().unwrap();
        let conn = client.join().unwrap();
        let (Some(ready), Some(space)) =
            (conn.wakeup().as_eventfd(), conn.wakeup().as_space_eventfd())
        else {
            panic!(
                "the client has no eventfd for each direction: {:?}",
                conn.wakeup()
            );
        };
        // The client's `ready` write wakes the server's, its `space` write
        // the server's `space` (the same objects).
        ready.signal().unwrap();
        let server_ready = session.wakeup().as_eventfd().unwrap();
        let server_space = session.wakeup().as_space_eventfd().unwrap();
        assert_eq!(server_ready.drain().unwrap(), 1);
        assert_eq!(server_space.drain().unwrap(), 0);
        space.signal().unwrap();
        assert_eq!(server_space.drain().unwrap(), 1);
        drop(session);
    });
}

/// Runs `blocked` on a thread and returns what it returns, failing (not
/// hanging) the test if it is still blocked after [`NEVER`].
fn on_a_thread<R: Send + 'static>(
    blocked: impl FnOnce() -> R + Send + 'static,
) -> impl FnOnce() -> R {
    let (done, result) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let _ = done.send(blocked());
    });
    move || {
        result
            .recv_timeout(NEVER.unwrap())
            .expect("the blocked call never returned: the drop did not wake it")
    }
}

/// A server blocked without a timeout, in a pop that watches nothing but its
/// eventfd (`Session::parts`) or also the socket (`Session::pop_blocking`),
/// learns `Closed` at once when the client drops its connection: the drop
/// closes the ring and wakes it before the socket hangs up.
#[test]
fn dropping_a_connection_wakes_the_server_with_closed() {
    use crate::linux::wake::SpinThenBlock;
    use crate::spsc::BlockingError;
    for watched in [false, true] {
        let addr = unique_addr();
        let mut server = Server::<u64>::bind(&addr, 4, Policy::SameUser).unwrap();
        let client = thread::spawn({
            let addr = addr.clone();
            move || connect::<u64>(&addr).unwrap()
        });
        let mut session = server.accept().unwrap().unwrap();
        let mut conn = client.join().unwrap();
        conn.push_notify(1).unwrap();
        let popped = on_a_thread(move || {
            let strategy = SpinThenBlock::new(0);
            let mut popped = Vec::new();
            loop {
                let result = if watched {
                    session.pop_blocking(strategy, None)
                } else {
                    let (consumer, wakeup) = session.parts();
                    consumer.pop_blocking(wakeup, strategy, None)
                };
                match result {
                    Ok(value) => popped.push(value),
                    Err(err) => return (popped, err),
                }
            }
        });
        while !conn.producer().peer_event().has_sleeper() {
            thread::sleep(Duration::from_millis(1));
        }
        drop(conn);
        assert_eq!(
            popped(),
            (vec![1], BlockingError::Closed),
            "watched: {watched}"
        );
    }
}

/// A client blocked without a timeout on a full ring, in a push that watches
/// nothing but its `space` eventfd (`Connection::parts`) or also the socket
/// (`Connection::push_blocking`), learns `Closed` at once when the server
/// drops the session.
#[test]
fn dropping_a_session_wakes_the_client_with_closed() {
    use crate::linux::wake::SpinThenBlock;
    use crate::spsc::BlockingError;
    for watched in [false, true] {
        let addr = unique_addr();
        let mut server = Server::<u64>::bind(&addr, 4, Policy::SameUser).unwrap();
        let client = thread::spawn({
            let addr = addr.clone();
            move || connect::<u64>(&addr).unwrap()
        });
        let session = server.accept().unwrap().unwrap();
        let mut conn = client.join().unwrap();
        conn.producer_mut().push_all(&[0; 4]).unwrap();
        let pushed = on_a_thread(move || {
            let strategy = SpinThenBlock::new(0);
            if watched {
                conn.push_blocking(5, strategy, None)
            } else {
                let (producer, wakeup) = conn.parts();
                producer.push_blocking(5, wakeup, strategy, None)
            }
        });
        while !session.consumer().peer_event().has_sleeper() {
            thread::sleep(Duration::from_millis(1));
        }
        drop(session);
        assert_eq!(
            pushed(),
            Err((5, BlockingError::Closed)),
            "watched: {watched}"
        );
    }
}

/// Record rings (`Server<Records>`): the record `n` of the tests below, `len`
/// bytes that say which record they are.
fn record(n: usize, len: usize) -> Vec<u8> {
    (0..len).map(|i| (n * 7 + i) as u8).collect()
}

/// Records of every length from 0 to the largest cross in order through a
/// small ring: the client waits for room, the server drains a few at a time
/// and sleeps between, each waking the other.
#[test]
fn record_clients_send_every_length_in_order_waiting_for_room() {
    use crate::linux::wake::SpinThenBlock;
    let addr = unique_addr();
    let mut server = Server::<Records>::bind(&addr, 64, Policy::SameUser).unwrap();
    let max = crate::bytes::max_record(64);
    let client = thread::spawn({
        let addr = addr.clone();
        move || {
            let mut conn = connect_records(&addr).unwrap();
            assert_eq!(conn.max_record(), max);
            for n in 0..1_000 {
                let pushed =
                    conn.push_blocking(&record(n, n % (max + 1)), SpinThenBlock::new(0), NEVER);
                assert_eq!(pushed, Ok(()), "record {n}");
            }
        }
    });
    let mut session = server.accept().unwrap().unwrap();
    assert_eq!(session.max_record(), max);
    let ready = session.wakeup().as_eventfd().unwrap().try_clone().unwrap();
    let mut got = Vec::new();
    while got.len() < 1_000 {
        let drained = session.drain(3, |bytes| got.push(bytes.to_vec())).unwrap();
        if drained == 0 && session.prepare_to_sleep().unwrap() {
            ready.wait(NEVER).unwrap();
        }
    }
    client.join().unwrap();
    for (n, bytes) in got.iter().enumerate() {
        assert_eq!(*bytes, record(n, n % (max + 1)), "record {n}");
    }
    assert_eq!(session.drain(8, |_| panic!("nothing more")), Ok(0));
}

/// A client asking for a structure the server does not offer is told what
/// it offers, both ways.
#[test]
fn record_and_spsc_clients_refuse_each_others_server() {
    let addr = unique_addr();
    let mut server = Server::<Records>::bind(&addr, 64, Policy::SameUser).unwrap();
    let client = thread::spawn({
        let addr = addr.clone();
        move || connect::<u64>(&addr).map(drop).unwrap_err().into_error()
    });
    let _session = server.accept().unwrap().unwrap();
    assert!(matches!(
        client.join().unwrap(),
        HandshakeError::WrongRing { kind: Kind::Bytes, elem } if elem == ElementLayout::of::<[u8; 8]>()
    ));

    let addr = unique_addr();
    let mut server = Server::<u64>::bind(&addr, 64, Policy::SameUser).unwrap();
    let client = thread::spawn({
        let addr = addr.clone();
        move || connect_records(&addr).map(drop).unwrap_err().into_error()
    });
    let _session = server.accept().unwrap().unwrap();
    assert!(matches!(
        client.join().unwrap(),
        HandshakeError::WrongRing {
            kind: Kind::Spsc,
            ..
        }
    ));
    assert!(matches!(
        Server::<Records>::bind(&unique_addr(), 48, Policy::SameUser)
            .unwrap_err()
            .into_error(),
        HandshakeError::Create(CreateError::InvalidCapacity { capacity: 48 })
    ));
}

/// A record over the largest is refused at the client, at once and without
/// waiting, and what was accepted before still arrives.
#[test]
fn a_record_too_large_is_refused_and_loses_nothing() {
    use crate::linux::bytes::PushBlockingError;
    use crate::linux::wake::SpinThenBlock;
    let addr = unique_addr();
    let mut server = Server::<Records>::bind(&addr, 16, Policy::SameUser).unwrap();
    let client = thread::spawn({
        let addr = addr.clone();
        move || {
            let mut conn = connect_records(&addr).unwrap();
            conn.push_notify(b"first").unwrap();
            let too_large = conn.push_blocking(&[0; 57], SpinThenBlock::new(0), NEVER);
            assert_eq!(
                too_large,
                Err(PushBlockingError::TooLarge { len: 57, max: 56 })
            );
            assert_eq!(
                too_large.unwrap_err().to_string(),
                "record of 57 bytes is larger than the ring's largest, 56 bytes"
            );
            conn.push_notify(b"second").unwrap();
        }
    });
    let mut session = server.accept().unwrap().unwrap();
    client.join().unwrap();
    let mut got = Vec::new();
    session.drain(8, |bytes| got.push(bytes.to_vec())).unwrap();
    assert_eq!(got, [b"first".to_vec(), b"second".to_vec()]);
}

/// A client asleep on a full record ring stops once its server drops the
/// session: the socket's hang-up ends its `poll`.
#[test]
fn a_record_client_waiting_for_room_stops_when_the_server_goes() {
    use crate::linux::bytes::PushBlockingError;
    use crate::linux::wake::{SpinThenBlock, WaitError};
    let addr = unique_addr();
    let mut server = Server::<Records>::bind(&addr, 16, Policy::SameUser).unwrap();
    let client = thread::spawn({
        let addr = addr.clone();
        move || {
            let mut conn = connect_records(&addr).unwrap();
            while conn.push_notify(&[1; 8]).is_ok() {}
            conn.push_blocking(&[2; 8], SpinThenBlock::new(0), NEVER)
        }
    });
    let session = server.accept().unwrap().unwrap();
    while !session.side.space.has_sleeper() {
        thread::sleep(Duration::from_millis(1));
    }
    drop(session);
    assert_eq!(
        client.join().unwrap(),
        Err(PushBlockingError::Sleep(WaitError::PeerGone))
    );
}

/// A client that scribbles on its ring's counter gets its session a typed
/// error (the records before it were drained), never a panic; another
/// session of the same server goes on.
#[test]
fn a_scribbling_record_client_is_a_typed_error_for_its_session_only() {
    let addr = unique_addr();
    let mut server = Server::<Records>::bind(&addr, 16, Policy::SameUser).unwrap();
    let scribbler = thread::spawn({
        let addr = addr.clone();
        move || {
            let mut conn = connect_records(&addr).unwrap();
            conn.push_notify(b"before").unwrap();
            // `head`, at byte 128, far beyond anything the ring holds:
            // written through the memfd's file, as another process could.
            rustix::io::pwrite(conn.segment(), &1000u32.to_ne_bytes(), 128).unwrap();
            conn
        }
    });
    let mut bad = server.accept().unwrap().unwrap();
    let conn = scribbler.join().unwrap();
    let honest = thread::spawn({
        let addr = addr.clone();
        move || {
            let mut conn = connect_records(&addr).unwrap();
            conn.push_notify(b"honest").unwrap();
            conn
        }
    });
    let mut good = server.accept().unwrap().unwrap();
    let _honest = honest.join().unwrap();
    let mut got = Vec::new();
    assert_eq!(
        bad.drain(8, |bytes| got.push(bytes.to_vec())),
        Err(DrainError::Corrupted)
    );
    assert_eq!(
        got,
        [b"before".to_vec()],
        "the record sealed before the scribble arrives"
    );
    got.clear();
    assert_eq!(bad.prepare_to_sleep(), Err(DrainError::Corrupted));
    drop((bad, conn));
    assert_eq!(good.drain(8, |bytes| got.push(bytes.to_vec())), Ok(1));
    assert_eq!(got, [b"honest".to_vec()]);
    assert_eq!(server.sessions(), 1);
}
