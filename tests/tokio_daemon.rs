//! `examples/tokio_daemon.rs` end to end, in real processes: the daemon
//! serves two good clients (one on the blocking push, one on
//! `send().await`) and one that crashes, reports each (the good ones closed,
//! since a dropped connection closes its ring and wakes the daemon before it
//! hangs up), exits 0, and leaves no socket file and nothing in /dev/shm.
//!
//! Run: `cargo test --features tokio --test tokio_daemon` (the test builds
//! the example itself, see `tests/example_bin`).
#![cfg(all(target_os = "linux", feature = "tokio"))]

mod example_bin;

use std::process::Command;
use std::time::{Duration, Instant};

use example_bin::{Proc, shm_entries};

#[test]
fn the_daemon_survives_a_crashing_client_and_cleans_up() {
    let example = example_bin::build(&["tokio_daemon"]).join("tokio_daemon");
    let dir = std::env::temp_dir().join(format!("ipcp-tokio-daemon-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir(&dir).unwrap();
    let socket = dir.join("daemon.sock");
    let shm_before = shm_entries();

    let mut serve = Command::new(&example);
    serve.arg("serve").arg(&socket).arg("3");
    let mut daemon = Proc::spawn("tokio_daemon serve", serve);
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

    let status = daemon.finish();
    let stdout: Vec<&str> = (daemon.lines().iter())
        .filter_map(|line| line.strip_prefix("out: "))
        .collect();
    let stdout = stdout.join("\n");
    assert!(status.success(), "daemon: {status:?}\n{stdout}");
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
