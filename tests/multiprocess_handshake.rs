//! Multi-process tests of the handshake's defences: what a client refuses
//! from a server, what a server refuses at its socket path, and clients in
//! unusual places. How children run, and the accounting around each test:
//! `multiprocess/harness.rs`.
//!
//! 1. a sealed memfd the client cannot resize, and memfds a fake server sends
//!    unsealed, half-sealed or truncated: typed errors, no fd leaked;
//! 2. a foreign file at the socket path is refused and left alone; a live
//!    server's path is in use; a killed server's stale socket is replaced;
//! 3. `connect` to a server that never sends its hello gives up with
//!    `TimedOut` after `HELLO_TIMEOUT`;
//! 4. a client in a pid namespace of its own (run by `unshare`) connects: it
//!    sees no pid for the server, the server sees its pid, messages flow;
//! 5. a client without `/proc` (unmounted in its own mount namespace) checks
//!    its eventfd without it and connects.
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
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::time::Instant;

use ipc_primitives::linux::handshake::{HELLO_TIMEOUT, HandshakeError, Policy, Server};
use ipc_primitives::linux::hello::{Hello, Status};
use ipc_primitives::linux::shm::{SealFlags, Segment, ShmError};
use ipc_primitives::linux::uds::{SeqpacketListener, UdsError, UnixAddr};
use ipc_primitives::linux::wake::{EventFd, EventFdError, SpinThenBlock};
use ipc_primitives::spsc::Spsc;
use ipc_primitives::{ElementLayout, Kind};
use rustix::fs::{MemfdFlags, fcntl_add_seals, ftruncate, memfd_create};
use rustix::io::Errno;

use harness::{Proc, TempDir, abstract_addr, accounted, wait_readable};
use message::{Msg, Stream};
use parent::pop_all_blocking;

/// The entry point of every child: see `multiprocess/harness.rs`.
#[test]
fn child() {
    harness::run_child(roles::run);
}

// ---------------------------------------------------------------------------
// 1. Sealed and unsealed, truncated memfds
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
fn memfd(len: u64, seals: SealFlags) -> OwnedFd {
    let fd = memfd_create("ipcp-fake", MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)
        .expect("memfd_create");
    ftruncate(&fd, len).expect("ftruncate");
    if !seals.is_empty() {
        fcntl_add_seals(&fd, seals).expect("seal");
    }
    fd
}

/// Listens as a fake server, sends a connecting child an accepting hello
/// with `memfd` and two eventfds, and checks the child's `connect` fails with
/// `expected` (the child also checks it leaked no fd). `vars` go to the
/// child's environment.
fn fake_server(
    tag: &str,
    memfd: OwnedFd,
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
        fds: 3,
    };
    let [ready, space] = [(); 2].map(|()| EventFd::new().expect("eventfd"));
    stream
        .send_with_fds(
            &hello.encode(),
            &[memfd.as_fd(), ready.as_fd(), space.as_fd()],
        )
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
// 2. The socket path
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
        assert_eq!(err.addr(), &addr, "the error names the path");
        assert!(
            matches!(err.error(), HandshakeError::Socket(UdsError::NotASocket)),
            "{err:?}"
        );
        assert_eq!(
            roles::error_chain(&err),
            format!(
                "socket {}: something other than a socket is there; not removing it",
                path.display()
            ),
            "the error says where and what is wrong"
        );
        assert_eq!(std::fs::read(&path).expect("read"), b"not a socket");
        std::fs::remove_file(&path).expect("remove");

        // A directory: refused, still there.
        std::fs::create_dir(&path).expect("mkdir");
        let err = Server::<Msg>::bind(&addr, 16, Policy::SameUser).expect_err("a directory");
        assert!(
            matches!(err.error(), HandshakeError::Socket(UdsError::NotASocket)),
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
            matches!(err.error(), HandshakeError::Socket(UdsError::AddrInUse)),
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
// 3. A server that never answers
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
// 4. Another pid namespace
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
// 5. No /proc
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
