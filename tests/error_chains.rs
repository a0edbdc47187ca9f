//! The `source()` chains of real failures of the Linux adapters, printed as
//! `anyhow` prints them ("a: b: c"), each checked to say every thing once: no
//! text in a chain repeats, or contains, another's.
#![cfg(all(feature = "linux", target_os = "linux", not(loom), not(miri)))]

use core::error::Error;
use core::time::Duration;
use std::os::fd::AsFd;
use std::thread;

use ipc_primitives::linux::handshake::{Policy, Server, connect, connect_timeout};
use ipc_primitives::linux::hello::{Hello, Status};
use ipc_primitives::linux::shm::Segment;
use ipc_primitives::linux::uds::{SeqpacketListener, SeqpacketStream, UnixAddr};
use ipc_primitives::linux::wake::{EventFd, Wakeup};
use ipc_primitives::seqlock::SeqLock;
use ipc_primitives::spsc::{Spsc, StaticSpsc};
use ipc_primitives::{ElementLayout, Kind};
use rustix::io::Errno;

/// `err` and its sources, outermost first.
fn chain(err: &dyn Error) -> Vec<String> {
    let mut texts = vec![err.to_string()];
    let mut source = err.source();
    while let Some(err) = source {
        texts.push(err.to_string());
        source = err.source();
    }
    texts
}

/// Prints `err`'s chain, checks no text in it repeats another, and returns
/// it joined as `anyhow` shows it.
fn printed(what: &str, err: &dyn Error) -> String {
    let texts = chain(err);
    let joined = texts.join(": ");
    println!("{what}: {joined}");
    for (i, outer) in texts.iter().enumerate() {
        for inner in &texts[i + 1..] {
            assert!(
                !outer.contains(inner.as_str()) && !inner.contains(outer.as_str()),
                "{what}: {outer:?} and {inner:?} say the same thing in {joined:?}"
            );
        }
    }
    joined
}

fn unique(tag: &str) -> String {
    format!("ipcp-chain-{}-{tag}", std::process::id())
}

#[test]
fn opening_a_missing_segment_names_it_and_the_call_once() {
    let name = format!("/{}", unique("missing"));
    let err = Segment::open(&name).unwrap_err();
    assert_eq!(
        printed("shm open", &err),
        format!(
            "system call on shared-memory segment {name:?} failed: openat: {}",
            Errno::NOENT
        )
    );
}

#[test]
fn connecting_to_nothing_names_the_address_and_the_call_once() {
    let path = std::env::temp_dir().join(unique("nothing.sock"));
    let addr = UnixAddr::path(&path).unwrap();
    let err = SeqpacketStream::connect(&addr).unwrap_err();
    assert_eq!(
        printed("connect to a path", &err),
        format!("socket {}: connect: {}", path.display(), Errno::NOENT)
    );

    let addr = UnixAddr::abstract_name(unique("nobody")).unwrap();
    let err = connect::<u64>(&addr).unwrap_err();
    assert_eq!(
        printed("handshake with nobody", &err),
        format!("socket {addr}: connect: {}", Errno::CONNREFUSED)
    );
}

#[test]
fn a_refused_handshake_names_the_server_and_the_client() {
    let addr = UnixAddr::abstract_name(unique("refusing")).unwrap();
    let mut server = Server::<u64>::bind(&addr, 4, Policy::Custom(Box::new(|_| false))).unwrap();
    let client = thread::spawn({
        let addr = addr.clone();
        move || connect::<u64>(&addr).map(drop)
    });
    let dropped = server.accept().unwrap().unwrap_err();
    let refused = client.join().unwrap().unwrap_err();
    assert_eq!(
        printed("client refused", &refused),
        format!("socket {addr}: the server's policy refused this client")
    );
    assert_eq!(
        printed("server refusing", &dropped),
        format!(
            "dropped client pid {} uid {}: refused by the server's policy",
            std::process::id(),
            rustix::process::geteuid().as_raw()
        )
    );
}

/// A server that sends a sealed memfd holding a seqlock where its hello
/// promises a ring: the client's attach fails through the handshake.
#[test]
fn an_attach_of_the_wrong_kind_through_the_handshake_says_where_and_what() {
    let addr = UnixAddr::abstract_name(unique("wrong-kind")).unwrap();
    let listener = SeqpacketListener::bind(&addr).unwrap();
    let len = Spsc::<u32>::required_size(4).unwrap();
    let memory = Segment::memfd("not-a-ring", len).unwrap();
    SeqLock::<u32>::create(memory.region().unwrap()).unwrap();
    let [ready, space] = [(); 2].map(|()| EventFd::new().unwrap());
    let server = thread::spawn(move || {
        let stream = listener.accept().unwrap();
        let hello = Hello {
            status: Status::Accepted,
            kind: Kind::Spsc,
            elem: ElementLayout::of::<u32>(),
            capacity: 4,
            region_len: len as u64,
            fds: 3,
        };
        stream
            .send_with_fds(
                &hello.encode(),
                &[memory.as_fd(), ready.as_fd(), space.as_fd()],
            )
            .unwrap();
        // Keeps the socket open until the client has read.
        let _ = stream.recv(&mut [0; 1]);
    });
    let err = connect_timeout::<u32>(&addr, Duration::from_secs(20)).unwrap_err();
    server.join().unwrap();
    assert_eq!(
        printed("wrong kind", &err),
        format!(
            "socket {addr}: the ring the server sent does not validate: region holds structure \
             kind \"seqlock\", expected \"SPSC ring\""
        )
    );
}

#[test]
fn a_failed_wake_after_a_push_says_it_pushed_and_the_call_once() {
    let mut ring = StaticSpsc::<u64, 2>::new();
    let (mut tx, mut rx) = ring.split();
    // Writing to a pipe's read end fails: a wake-up that cannot be sent.
    let (read_end, _write_end) = rustix::pipe::pipe().unwrap();
    let broken = Wakeup::EventFd(EventFd::from_fd_trusted(read_end));
    assert!(rx.prepare_to_sleep().unwrap().is_some());
    let err = tx.push_notify(1, &broken).unwrap_err();
    assert_eq!(
        printed("push_notify", &err),
        format!(
            "pushed 1, but waking the consumer failed: write: {}",
            Errno::BADF
        )
    );
}
