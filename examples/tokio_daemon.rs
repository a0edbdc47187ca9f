//! A tokio daemon: accepts clients on a Unix socket (`accept().await`), gives
//! each its own ring, and serves each in its own task (`recv().await` on an
//! owned, `'static` session), reporting per client how it ended: a client
//! that closes is done, one that dies or corrupts its ring is reported and
//! the daemon goes on. Clients wait for space while the daemon is behind,
//! either in the blocking push or, on tokio too, in `send().await` (on the
//! `space` eventfd the handshake gives each client). A client's drop closes
//! its ring and wakes the daemon, which reports it closed. Nothing is left
//! behind: the socket file is removed, and rings live in memfds (nothing in
//! /dev/shm).
//!
//! Run: `cargo run --features tokio --example tokio_daemon -- demo`
//! (the daemon and three clients, one of which crashes), or the parts:
//! - `serve <socket> <clients>`: serves `clients` clients, then exits;
//! - `client <socket> <count>`: pushes `0..count` (blocking), then closes;
//! - `async-client <socket> <count>`: sends `0..count` with `send().await`,
//!   then closes;
//! - `crash <socket>`: pushes three values and exits without closing.

use std::error::Error;
use std::path::Path;
use std::process::{Command, ExitCode};

use ipc_primitives::linux::handshake::{Policy, Server, connect};
use ipc_primitives::linux::tokio::{AsyncConnection, AsyncServer, AsyncSession};
use ipc_primitives::linux::uds::{SeqpacketListener, UnixAddr};
use ipc_primitives::linux::wake::{SpinThenBlock, WaitError};
use ipc_primitives::spsc::BlockingError;

/// Slots per client ring: small, so that fast clients wait for space.
const CAPACITY: u32 = 64;

type BoxError = Box<dyn Error + Send + Sync>;

/// Serves one client until it goes; returns the line reporting it.
async fn serve_client(mut session: AsyncSession<u64>) -> String {
    let who = session
        .session()
        .credentials()
        .pid
        .map_or(0, |pid| pid.as_raw_nonzero().get());
    let (mut count, mut sum) = (0u64, 0u64);
    loop {
        match session.recv().await {
            Ok(value) => {
                count += 1;
                sum = sum.wrapping_add(value);
            }
            Err(BlockingError::Closed) => {
                return format!("client {who}: closed after {count} values (sum {sum})");
            }
            Err(BlockingError::Sleep(WaitError::PeerGone)) => {
                return format!(
                    "client {who}: error: hung up without closing after {count} values"
                );
            }
            Err(err) => return format!("client {who}: error: {err} after {count} values"),
        }
    }
}

/// `serve <socket> <clients>`.
fn serve(path: &Path, clients: usize) -> Result<(), BoxError> {
    let mut listener = SeqpacketListener::bind(&UnixAddr::path(path)?)?;
    listener.set_unlink_on_drop(true);
    let server = Server::<u64>::with_listener(listener, CAPACITY, Policy::SameUser)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    runtime.block_on(async {
        let mut server = AsyncServer::new(server)?;
        println!("daemon: listening");
        let mut tasks = Vec::new();
        while tasks.len() < clients {
            // The outer `?`: the listener failed, the daemon stops. The
            // inner error is one client's: report it and go on.
            match server.accept().await? {
                Ok(session) => {
                    let session = AsyncSession::new(session)?;
                    tasks.push(tokio::spawn(serve_client(session)));
                }
                Err(client) => {
                    println!("daemon: refused {client}: {}", client.failure);
                    tasks.push(tokio::spawn(async { String::from("refused") }));
                }
            }
        }
        for task in tasks {
            println!("daemon: {}", task.await?);
        }
        Ok::<(), BoxError>(())
    })
}

/// `client <socket> <count>`.
fn client(path: &Path, count: u64) -> Result<(), BoxError> {
    let mut conn = connect::<u64>(&UnixAddr::path(path)?)?;
    for value in 0..count {
        conn.push_blocking(value, SpinThenBlock::default(), None)
            .map_err(|(_, err)| err)?;
    }
    Ok(()) // dropping the connection closes the ring
}

/// `async-client <socket> <count>`: the same on tokio, each send awaiting
/// space (its task asleep, no thread blocked) while the ring is full.
fn async_client(path: &Path, count: u64) -> Result<(), BoxError> {
    let conn = connect::<u64>(&UnixAddr::path(path)?)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    runtime.block_on(async {
        let mut conn = AsyncConnection::new(conn)?;
        for value in 0..count {
            conn.send(value).await.map_err(|(_, err)| err)?;
        }
        Ok(()) // dropping the connection closes the ring and wakes the daemon
    })
}

/// `crash <socket>`: exits without running destructors, as a crash would.
fn crash(path: &Path) -> Result<(), BoxError> {
    let mut conn = connect::<u64>(&UnixAddr::path(path)?)?;
    for value in 0..3 {
        conn.push_notify(value).map_err(|err| err.to_string())?;
    }
    std::process::exit(3);
}

/// `demo`: the daemon and three clients from this binary.
fn demo() -> Result<(), BoxError> {
    let dir = std::env::temp_dir().join(format!("ipcp-tokio-demo-{}", std::process::id()));
    std::fs::create_dir(&dir)?;
    let socket = dir.join("daemon.sock");
    let me = std::env::current_exe()?;
    let mut daemon = Command::new(&me)
        .arg("serve")
        .arg(&socket)
        .arg("3")
        .spawn()?;
    while !socket.exists() {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    for args in [
        &["client", "1000"][..],
        &["crash"],
        &["async-client", "1000"],
    ] {
        let status = Command::new(&me)
            .arg(args[0])
            .arg(&socket)
            .args(&args[1..])
            .status()?;
        println!("demo: {} exited with {status}", args[0]);
    }
    let status = daemon.wait()?;
    std::fs::remove_dir(&dir)?;
    if !status.success() {
        return Err(format!("daemon exited with {status}").into());
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args[..] {
        ["serve", path, clients] => clients
            .parse()
            .map_err(BoxError::from)
            .and_then(|clients| serve(Path::new(path), clients)),
        ["client", path, count] => count
            .parse()
            .map_err(BoxError::from)
            .and_then(|count| client(Path::new(path), count)),
        ["async-client", path, count] => count
            .parse()
            .map_err(BoxError::from)
            .and_then(|count| async_client(Path::new(path), count)),
        ["crash", path] => crash(Path::new(path)),
        ["demo"] => demo(),
        _ => Err(
            "usage: tokio_daemon demo | serve <socket> <clients> | client <socket> <count> \
                  | async-client <socket> <count> | crash <socket>"
                .into(),
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("tokio_daemon: {err}");
            ExitCode::FAILURE
        }
    }
}
