//! `examples/tokio_daemon.rs` end to end, in real processes: the daemon
//! serves two good clients (one on the blocking push, one on
//! `send().await`) and one that crashes, reports each (the good ones closed,
//! since a dropped connection closes its ring and wakes the daemon before it
//! hangs up), exits 0, and leaves no socket file and nothing in /dev/shm.
//!
//! Run: `cargo test --features tokio --test tokio_daemon` (which builds the
//! example beside this test's binary).
#![cfg(all(target_os = "linux", feature = "tokio"))]

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The example binary, built by `cargo test` beside this test's binary.
fn example() -> PathBuf {
    // target/<profile>/deps/<this test> -> target/<profile>/examples/tokio_daemon
    let exe = std::env::current_exe().expect("current_exe");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("profile dir");
    let example = profile_dir.join("examples").join("tokio_daemon");
    assert!(
        example.exists(),
        "{} is missing: `cargo test --features tokio` builds it; with a --test filter, run \
         `cargo build --features tokio --example tokio_daemon` first",
        example.display()
    );
    example
}

fn shm_entries() -> BTreeSet<std::ffi::OsString> {
    std::fs::read_dir("/dev/shm")
        .map(|dir| {
            dir.filter_map(|entry| entry.ok().map(|entry| entry.file_name()))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn the_daemon_survives_a_crashing_client_and_cleans_up() {
    let example = example();
    let dir = std::env::temp_dir().join(format!("ipcp-tokio-daemon-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir(&dir).unwrap();
    let socket = dir.join("daemon.sock");
    let shm_before = shm_entries();

    let daemon = Command::new(&example)
        .arg("serve")
        .arg(&socket)
        .arg("3")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !socket.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the daemon never listened"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let run = |args: &[&str]| {
        Command::new(&example)
            .arg(args[0])
            .arg(&socket)
            .args(&args[1..])
            .status()
            .unwrap()
    };
    // 5000 values through 64 slots: each client waits for space many
    // times, blocked in `poll` or awaiting the `space` eventfd.
    assert!(run(&["client", "5000"]).success());
    assert_eq!(run(&["crash"]).code(), Some(3));
    assert!(run(&["async-client", "5000"]).success());

    let output = daemon.wait_with_output().unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        output.status.success(),
        "daemon: {:?}\n{stdout}",
        output.status
    );
    assert_eq!(
        stdout
            .matches("closed after 5000 values (sum 12497500)")
            .count(),
        2,
        "{stdout}"
    );
    assert_eq!(
        stdout
            .matches("error: hung up without closing after 3 values")
            .count(),
        1,
        "{stdout}"
    );
    assert!(!socket.exists(), "the socket file is left behind");
    assert_eq!(shm_entries(), shm_before, "something is left in /dev/shm");
    std::fs::remove_dir(&dir).unwrap();
}
