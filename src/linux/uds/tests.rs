//! Tests of the Unix socket adapters.

use core::time::Duration;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::Instant;

use rustix::fs::{FileType, Mode};
use rustix::io::{Errno, FdFlags};
use rustix::net::sockopt::Timeout;
use rustix::pipe::PipeFlags;
use rustix::process::{Gid, Uid};

use super::bind::{Swapped, bind_temporary, probe, swap_out};
use super::*;

/// A fresh directory under the temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(test: &str) -> Self {
        let name = format!("ipc-uds-{}-{test}", std::process::id());
        let dir = std::env::temp_dir().join(name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        Self(dir)
    }

    fn addr(&self) -> UnixAddr {
        UnixAddr::path(self.0.join("sock")).unwrap()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn abstract_addr(test: &str) -> UnixAddr {
    let name = format!("ipc-primitives-test-{}-{test}", std::process::id());
    UnixAddr::abstract_name(name).unwrap()
}

/// A non-blocking pipe: (read end, write end).
fn pipe() -> (OwnedFd, OwnedFd) {
    rustix::pipe::pipe_with(PipeFlags::CLOEXEC | PipeFlags::NONBLOCK).unwrap()
}

/// Whether every copy of the pipe's write end is closed: the read end
/// sees end of file rather than `EAGAIN`. Unlike counting
/// `/proc/self/fd`, this is not disturbed by tests running alongside.
fn writers_closed(reader: &OwnedFd) -> bool {
    rustix::io::read(reader, &mut [0u8; 1]) == Ok(0)
}

fn check_connected(a: &SeqpacketStream, b: &SeqpacketStream) {
    a.send(b"ping").unwrap();
    let mut buf = [0; 8];
    assert_eq!(b.recv(&mut buf).unwrap(), 4);
    assert_eq!(&buf[..4], b"ping");
}

#[test]
fn pair_keeps_message_boundaries() {
    let (a, b) = SeqpacketStream::pair().unwrap();
    a.send(b"first").unwrap();
    a.send(b"second!").unwrap();
    let mut buf = [0; 64];
    assert_eq!(b.recv(&mut buf).unwrap(), 5);
    assert_eq!(&buf[..5], b"first");
    assert_eq!(b.recv(&mut buf).unwrap(), 7);
    assert_eq!(&buf[..7], b"second!");
}

#[test]
fn path_listener_accepts() {
    let dir = TempDir::new("accept");
    let addr = dir.addr();
    let listener = SeqpacketListener::bind(&addr).unwrap();
    let client = SeqpacketStream::connect(&addr).unwrap();
    let server = listener.accept().unwrap();
    check_connected(&client, &server);
    check_connected(&server, &client);
    let flags = rustix::io::fcntl_getfd(&server).unwrap();
    assert!(flags.contains(FdFlags::CLOEXEC));
}

#[test]
fn abstract_listener_accepts_and_refuses_second_bind() {
    let addr = abstract_addr("abstract");
    let listener = SeqpacketListener::bind(&addr).unwrap();
    let client = SeqpacketStream::connect(&addr).unwrap();
    let server = listener.accept().unwrap();
    check_connected(&client, &server);
    let err = SeqpacketListener::bind(&addr).unwrap_err();
    assert_eq!(err, AddrError::new(&addr, UdsError::AddrInUse));
}

#[test]
fn passes_the_same_object_close_on_exec() {
    let (a, b) = SeqpacketStream::pair().unwrap();
    let (reader, writer) = pipe();
    a.send_with_fds(b"fd", &[writer.as_fd()]).unwrap();
    drop(writer);
    let mut buf = [0; 8];
    let (len, fds) = b.recv_with_fds(&mut buf, 1).unwrap();
    assert_eq!(&buf[..len], b"fd");
    assert_eq!(fds.len(), 1);
    let flags = rustix::io::fcntl_getfd(&fds[0]).unwrap();
    assert!(flags.contains(FdFlags::CLOEXEC));
    assert_eq!(rustix::io::write(&fds[0], b"through").unwrap(), 7);
    let mut out = [0; 16];
    assert_eq!(rustix::io::read(&reader, &mut out).unwrap(), 7);
    assert_eq!(&out[..7], b"through");
    drop(fds);
    assert!(writers_closed(&reader));
}

#[test]
fn control_truncation_is_an_error_and_closes_fds() {
    let (a, b) = SeqpacketStream::pair().unwrap();
    let (reader, writer) = pipe();
    a.send_with_fds(b"many", &[writer.as_fd(); 16]).unwrap();
    drop(writer);
    assert!(!writers_closed(&reader), "fds in flight hold the pipe");
    let err = b.recv_with_fds(&mut [0; 8], 1).unwrap_err();
    assert_eq!(err, UdsError::ControlTruncated);
    assert!(writers_closed(&reader));
}

#[test]
fn plain_recv_rejects_fds_and_closes_them() {
    let (a, b) = SeqpacketStream::pair().unwrap();
    let (reader, writer) = pipe();
    a.send_with_fds(b"fd", &[writer.as_fd()]).unwrap();
    drop(writer);
    assert_eq!(b.recv(&mut [0; 8]), Err(UdsError::ControlTruncated));
    assert!(writers_closed(&reader));
}

#[test]
fn more_fds_than_expected_is_an_error_and_closes_them() {
    let (a, b) = SeqpacketStream::pair().unwrap();
    let (reader, writer) = pipe();
    a.send_with_fds(b"two", &[writer.as_fd(), writer.as_fd()])
        .unwrap();
    drop(writer);
    let err = b.recv_with_fds(&mut [0; 8], 1).unwrap_err();
    assert_eq!(err, UdsError::TooManyFds { count: 2, max: 1 });
    assert!(writers_closed(&reader));
}

#[test]
fn message_truncation_is_an_error_and_closes_fds() {
    let (a, b) = SeqpacketStream::pair().unwrap();
    let (reader, writer) = pipe();
    a.send_with_fds(b"0123456789", &[writer.as_fd()]).unwrap();
    drop(writer);
    let err = b.recv_with_fds(&mut [0; 4], 1).unwrap_err();
    let expected = UdsError::Truncated {
        len: 10,
        capacity: 4,
    };
    assert_eq!(err, expected);
    assert!(writers_closed(&reader));
}

#[test]
fn send_limits() {
    let (a, b) = SeqpacketStream::pair().unwrap();
    assert_eq!(a.send(b""), Err(UdsError::EmptyMessage));
    let fds = [a.as_fd(); MAX_FDS + 1];
    let err = a.send_with_fds(b"x", &fds).unwrap_err();
    let expected = UdsError::TooManyFds {
        count: MAX_FDS + 1,
        max: MAX_FDS,
    };
    assert_eq!(err, expected);
    drop(b);
    assert_eq!(a.send(b"x"), Err(UdsError::PeerClosed));
    assert_eq!(a.recv(&mut [0; 4]), Err(UdsError::PeerClosed));
}

#[test]
fn stale_socket_file_is_replaced() {
    let dir = TempDir::new("stale");
    let addr = dir.addr();
    drop(SeqpacketListener::bind(&addr).unwrap());
    assert!(dir.0.join("sock").exists(), "kept on drop by default");
    let listener = SeqpacketListener::bind(&addr).unwrap();
    let client = SeqpacketStream::connect(&addr).unwrap();
    check_connected(&client, &listener.accept().unwrap());
}

#[test]
fn live_listener_path_is_in_use() {
    let dir = TempDir::new("live");
    let addr = dir.addr();
    let listener = SeqpacketListener::bind(&addr).unwrap();
    let err = SeqpacketListener::bind(&addr).unwrap_err();
    assert_eq!(err, AddrError::new(&addr, UdsError::AddrInUse));
    // The first listener still works.
    let client = SeqpacketStream::connect(&addr).unwrap();
    let _probe = listener.accept().unwrap();
    check_connected(&client, &listener.accept().unwrap());
}

#[test]
fn regular_file_is_never_removed() {
    let dir = TempDir::new("regular");
    let path = dir.0.join("sock");
    std::fs::write(&path, b"keep me").unwrap();
    let err = SeqpacketListener::bind(&dir.addr()).unwrap_err();
    assert_eq!(err, AddrError::new(&dir.addr(), UdsError::NotASocket));
    assert_eq!(err.to_string(), format!("socket {}", path.display()));
    assert!(err.error().to_string().contains("other than a socket"));
    assert_eq!(std::fs::read(&path).unwrap(), b"keep me");
}

#[test]
fn unlink_on_drop_removes_only_its_own_file() {
    let dir = TempDir::new("unlink");
    let path = dir.0.join("sock");
    let mut listener = SeqpacketListener::bind(&dir.addr()).unwrap();
    listener.set_unlink_on_drop(true);
    drop(listener);
    assert!(!path.exists());

    let mut listener = SeqpacketListener::bind(&dir.addr()).unwrap();
    listener.set_unlink_on_drop(true);
    std::fs::remove_file(&path).unwrap();
    std::fs::write(&path, b"someone else's").unwrap();
    drop(listener);
    assert_eq!(std::fs::read(&path).unwrap(), b"someone else's");
}

#[test]
fn peer_credentials_on_both_ends() {
    let me = Credentials {
        pid: Some(rustix::process::getpid()),
        uid: rustix::process::geteuid(),
        gid: rustix::process::getegid(),
    };
    let (a, b) = SeqpacketStream::pair().unwrap();
    assert_eq!(a.peer_credentials().unwrap(), me);
    assert_eq!(b.peer_credentials().unwrap(), me);

    let addr = abstract_addr("creds");
    let listener = SeqpacketListener::bind(&addr).unwrap();
    let client = SeqpacketStream::connect(&addr).unwrap();
    let server = listener.accept().unwrap();
    assert_eq!(client.peer_credentials().unwrap(), me);
    assert_eq!(server.peer_credentials().unwrap(), me);
}

#[test]
fn address_validation() {
    let long = "x".repeat(MAX_PATH_LEN + 1);
    let err = UnixAddr::path(&long).unwrap_err();
    let expected = UdsError::AddrTooLong {
        len: MAX_PATH_LEN + 1,
        max: MAX_PATH_LEN,
    };
    assert_eq!(err, expected);
    assert!(UnixAddr::path("x".repeat(MAX_PATH_LEN)).is_ok());
    assert_eq!(UnixAddr::path(""), Err(UdsError::InvalidPath));
    assert_eq!(UnixAddr::path("a\0b"), Err(UdsError::InvalidPath));

    let name = vec![0u8; MAX_ABSTRACT_LEN];
    assert!(UnixAddr::abstract_name(&name).is_ok());
    let err = UnixAddr::abstract_name([0u8; MAX_ABSTRACT_LEN + 1]).unwrap_err();
    let expected = UdsError::AddrTooLong {
        len: MAX_ABSTRACT_LEN + 1,
        max: MAX_ABSTRACT_LEN,
    };
    assert_eq!(err, expected);
    assert_eq!(UnixAddr::abstract_name("n").unwrap().as_path(), None);
}

/// A listener at `addr` with a backlog of 0 and one connection waiting,
/// so its backlog is full: the next `connect` would block. Returns the
/// listener and the waiting connection.
fn full_backlog(addr: &UnixAddr) -> (OwnedFd, SeqpacketStream) {
    let listener = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )
    .unwrap();
    rustix::net::bind(&listener, &addr.0).unwrap();
    rustix::net::listen(&listener, 0).unwrap();
    let waiting = SeqpacketStream::connect(addr).unwrap();
    (listener, waiting)
}

/// Runs `f` on a thread and returns what it returns; panics if it has
/// not returned within a generous bound (a call that blocks for ever).
fn returns<R: Send + 'static>(what: &str, f: impl FnOnce() -> R + Send + 'static) -> R {
    let (send, recv) = std::sync::mpsc::channel();
    thread::spawn(move || send.send(f()));
    recv.recv_timeout(Duration::from_secs(20))
        .unwrap_or_else(|_| panic!("{what} blocked"))
}

/// Runs `f` on a thread whose uid, gid and groups are `nobody`'s (the
/// raw system calls change the calling thread only); `None`, saying why,
/// if this process is not root.
fn as_nobody<R: Send>(f: impl FnOnce() -> R + Send) -> Option<R> {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: dropping to nobody needs root");
        return None;
    }
    let nobody = (Uid::from_raw(65534), Gid::from_raw(65534));
    Some(thread::scope(|s| {
        s.spawn(|| {
            rustix::thread::set_thread_groups(&[]).unwrap();
            rustix::thread::set_thread_res_gid(nobody.1, nobody.1, nobody.1).unwrap();
            rustix::thread::set_thread_res_uid(nobody.0, nobody.0, nobody.0).unwrap();
            f()
        })
        .join()
        .unwrap()
    }))
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[test]
fn bind_does_not_block_on_a_listener_with_a_full_backlog() {
    let dir = TempDir::new("squatter");
    let addr = dir.addr();
    let (_squatter, _waiting) = full_backlog(&addr);
    let bound = returns("bind", move || {
        SeqpacketListener::bind(&addr)
            .map(drop)
            .map_err(|err| err.into_error())
    });
    assert_eq!(bound, Err(UdsError::AddrInUse));
    assert_eq!(names_in(&dir.0), ["sock"], "no temporary name left");
}

#[test]
fn connect_timeout_bounds_a_full_backlog() {
    let addr = abstract_addr("full-backlog");
    let (_listener, _waiting) = full_backlog(&addr);
    let timeout = Duration::from_millis(50);
    let start = Instant::now();
    let connected = returns("connect_timeout", move || {
        SeqpacketStream::connect_timeout(&addr, timeout)
            .map(drop)
            .map_err(|err| err.into_error())
    });
    assert_eq!(connected, Err(UdsError::TimedOut));
    assert!(start.elapsed() >= timeout);
}

#[test]
fn connect_waits_for_room_in_a_full_backlog() {
    let addr = abstract_addr("room");
    let (listener, _waiting) = full_backlog(&addr);
    let client = thread::spawn({
        let addr = addr.clone();
        move || SeqpacketStream::connect_timeout(&addr, Duration::from_secs(20))
    });
    // Accepting the waiting connection makes room for the client's.
    let _first = rustix::net::accept(&listener).unwrap();
    let client = client.join().unwrap().unwrap();
    let server = SeqpacketStream::from_accepted(rustix::net::accept(&listener).unwrap());
    check_connected(&client, &server);
    // The stream blocks, and its send timeout was cleared.
    let flags = rustix::fs::fcntl_getfl(&client).unwrap();
    assert!(!flags.contains(rustix::fs::OFlags::NONBLOCK));
    let timeout = rustix::net::sockopt::socket_timeout(&client, Timeout::Send).unwrap();
    assert_eq!(timeout, None);
}

#[test]
fn try_accept_does_not_wait() {
    let addr = abstract_addr("try-accept");
    let listener = SeqpacketListener::bind(&addr).unwrap();
    assert!(listener.try_accept().unwrap().is_none());
    let client = SeqpacketStream::connect(&addr).unwrap();
    let server = listener.try_accept().unwrap().expect("a client waits");
    check_connected(&client, &server);
    let flags = rustix::fs::fcntl_getfl(&server).unwrap();
    assert!(
        !flags.contains(rustix::fs::OFlags::NONBLOCK),
        "accepted sockets block"
    );
}

#[test]
fn a_stale_socket_that_cannot_be_probed_is_reported_as_such() {
    let dir = TempDir::new("unprobeable");
    let addr = dir.addr();
    let path = dir.0.join("sock");
    drop(SeqpacketListener::bind_with_mode(&addr, Mode::from_raw_mode(0o600)).unwrap());
    // Others may create their temporary name here, not connect to root's socket.
    rustix::fs::chmod(&dir.0, Mode::from_raw_mode(0o777)).unwrap();
    let Some(bound) = as_nobody(|| SeqpacketListener::bind(&addr).map(drop)) else {
        return;
    };
    let err = bound.unwrap_err();
    assert_eq!(
        err,
        AddrError::new(
            &addr,
            UdsError::ProbeFailed {
                errno: Errno::ACCESS
            }
        )
    );
    assert!(err.error().to_string().contains("not removing it"), "{err}");
    assert!(is_socket(&path), "the stale socket is left in place");
    assert_eq!(names_in(&dir.0), ["sock"], "no temporary name left");
}

fn is_socket(path: &Path) -> bool {
    rustix::fs::lstat(path)
        .is_ok_and(|stat| FileType::from_raw_mode(stat.st_mode) == FileType::Socket)
}

#[test]
fn bind_with_mode_sets_the_socket_file_mode() {
    let dir = TempDir::new("mode");
    let path = dir.0.join("sock");
    for mode in [0o600, 0o666, 0o640] {
        let listener =
            SeqpacketListener::bind_with_mode(&dir.addr(), Mode::from_raw_mode(mode)).unwrap();
        let stat = rustix::fs::lstat(&path).unwrap();
        assert_eq!(stat.st_mode & 0o7777, mode, "{mode:#o}");
        let connected = as_nobody(|| SeqpacketStream::connect(&dir.addr()).map(drop));
        match (mode, connected) {
            (_, None) => {}
            (0o666, Some(connected)) => connected.unwrap(),
            (_, Some(connected)) => assert_eq!(
                connected.map_err(|err| err.into_error()),
                Err(UdsError::Sys(SysError::new("connect", Errno::ACCESS))),
                "{mode:#o}"
            ),
        }
        drop(listener);
    }
    assert_eq!(names_in(&dir.0), ["sock"], "no temporary name left");
}

#[test]
fn bind_with_mode_refuses_what_cannot_be_set() {
    let dir = TempDir::new("bad-mode");
    let err =
        SeqpacketListener::bind_with_mode(&dir.addr(), Mode::from_raw_mode(0o4777)).unwrap_err();
    assert_eq!(err.error(), &UdsError::InvalidMode { mode: 0o4777 });
    let err = SeqpacketListener::bind_with_mode(&abstract_addr("mode"), Mode::RUSR).unwrap_err();
    assert_eq!(err.error(), &UdsError::ModeOfAbstract);
    assert!(names_in(&dir.0).is_empty());
}

/// The step that replaces a stale socket, with another file swapped onto
/// the path between the probe and the replacement: the file is put back,
/// never unlinked.
#[test]
fn a_file_swapped_in_after_the_probe_is_put_back() {
    let dir = TempDir::new("swap");
    let path = dir.0.join("sock");
    drop(SeqpacketListener::bind(&dir.addr()).unwrap());
    let stale = probe(&path).unwrap().expect("a stale socket");

    let evil = dir.0.join("evil");
    std::fs::write(&evil, b"someone else's").unwrap();
    std::fs::rename(&evil, &path).unwrap();

    let fd = seqpacket_socket().unwrap();
    let temp = bind_temporary(fd.as_fd(), &path).unwrap();
    assert!(matches!(
        swap_out(&temp.path, &path, &stale),
        Ok(Swapped::Other)
    ));
    assert_eq!(std::fs::read(&path).unwrap(), b"someone else's");
    assert!(
        is_socket(&temp.path),
        "the new socket is back at its temporary name"
    );
    drop(temp);
    assert_eq!(names_in(&dir.0), ["sock"]);
}

/// An attacker swaps a regular file onto the path while `bind` replaces
/// the stale socket there, again and again: whatever `bind` returns, the
/// attacker's file is never unlinked.
#[test]
fn replacing_a_stale_socket_never_unlinks_a_file_swapped_in() {
    // The check-then-unlink this replaced lost the file within 100 rounds.
    const ROUNDS: usize = 500;
    let dir = TempDir::new("race");
    let addr = dir.addr();
    let path = dir.0.join("sock");
    let keep = dir.0.join("keep");
    let mut swapped_in = 0;
    for round in 0..ROUNDS {
        let _ = std::fs::remove_file(&path);
        drop(SeqpacketListener::bind(&addr).unwrap());
        let _ = std::fs::remove_file(&keep);
        let barrier = std::sync::Barrier::new(2);
        let (swapped, bound) = thread::scope(|s| {
            let attacker = s.spawn(|| {
                let staged = dir.0.join("staged");
                std::fs::write(&staged, b"attacker").unwrap();
                std::fs::hard_link(&staged, &keep).unwrap();
                barrier.wait();
                for _ in 0..round % 97 * 20 {
                    core::hint::spin_loop();
                }
                std::fs::rename(&staged, &path).is_ok()
            });
            barrier.wait();
            let bound = SeqpacketListener::bind(&addr);
            (attacker.join().unwrap(), bound)
        });
        drop(bound);
        if swapped {
            swapped_in += 1;
            let links = rustix::fs::lstat(&keep).unwrap().st_nlink;
            assert_eq!(links, 2, "round {round}: bind unlinked the attacker's file");
        }
    }
    assert!(swapped_in > 0);
}

#[test]
fn errors_display_and_source() {
    use core::error::Error;
    let sys = UdsError::Sys(SysError::new("bind", Errno::ACCESS));
    assert!(sys.to_string().starts_with("bind: "));
    assert!(sys.source().is_none(), "transparent over a leaf");
    assert!(UdsError::AddrInUse.source().is_none());

    let named = AddrError::new(&UnixAddr::path("/run/d.sock").unwrap(), sys.clone());
    assert_eq!(named.to_string(), "socket /run/d.sock");
    assert_eq!(
        format!("{named:?}"),
        format!("AddrError {{ addr: /run/d.sock, error: {sys:?} }}")
    );
    assert_eq!(
        named.source().map(ToString::to_string),
        Some(sys.to_string())
    );
    let abstract_name = UnixAddr::abstract_name(b"d\0\n").unwrap();
    assert_eq!(abstract_name.to_string(), "@d\\x00\\n");
}
