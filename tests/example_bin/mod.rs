//! Example binaries for end-to-end tests: built by the test itself (`$CARGO
//! build --example NAME...`, with this test's target dir, profile and
//! features; a no-op when up to date), so a `--test` filter never runs a
//! missing or stale binary; run as [`Proc`]s, killed and reaped if a test
//! ends early; and what they leave in `/dev/shm`.
#![allow(dead_code, reason = "each test crate uses a subset of these helpers")]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process};

/// How long a process may take to say or do what a test waits for (a bound
/// against hangs, not a timing assertion).
pub(crate) const PATIENCE: Duration = Duration::from_secs(120);

/// Builds `names` in one `cargo build` and returns the directory holding
/// them.
///
/// This test is `<target>[/<triple>]/<profile dir>/deps/<test>`; the target
/// dir is the one holding `CACHEDIR.TAG` (cargo writes it at its root).
pub(crate) fn build(names: &[&str]) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("<target>/<profile>/deps/<test>");
    let above = profile_dir.parent().expect("a target dir");
    let (target_dir, triple) = if above.join("CACHEDIR.TAG").exists() {
        (above, None)
    } else {
        (
            above.parent().expect("<target>/<triple>"),
            above.file_name(),
        )
    };
    // `cargo test` builds examples with the `test` profile (`bench` with
    // `--release`), into `debug` (`release`).
    let profile = match profile_dir.file_name().and_then(|name| name.to_str()) {
        Some("debug") => "test",
        Some("release") => "bench",
        Some(custom) => custom,
        None => panic!("no profile dir in {}", exe.display()),
    };
    // `default` too: it is part of the library's fingerprint.
    let features: Vec<&str> = [
        ("default", cfg!(feature = "default")),
        ("std", cfg!(feature = "std")),
        ("linux", cfg!(feature = "linux")),
        ("tokio", cfg!(feature = "tokio")),
        ("defmt", cfg!(feature = "defmt")),
        ("portable-atomic", cfg!(feature = "portable-atomic")),
    ]
    .into_iter()
    .filter_map(|(feature, on)| on.then_some(feature))
    .collect();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
    let mut build = Command::new(cargo);
    build
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("CARGO_TARGET_DIR", target_dir)
        .args(["build", "--quiet", "--profile", profile])
        .args(["--no-default-features", "--features", &features.join(",")]);
    for name in names {
        build.args(["--example", name]);
    }
    if let Some(triple) = triple {
        build.arg("--target").arg(triple);
    }
    let output = build.output().expect("run cargo build --example");
    assert!(
        output.status.success(),
        "{build:?}: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let dir = profile_dir.join("examples");
    for name in names {
        assert!(
            dir.join(name).exists(),
            "{build:?} succeeded but left no {name}"
        );
    }
    dir
}

/// A process whose stdout and stderr lines (`"out: ..."`, `"err: ..."`) are
/// read by threads into one channel. Its stdin is a pipe, open until
/// [`finish`](Self::finish) or until a test takes it. Killed and reaped on
/// drop, so no test leaves a process behind.
pub(crate) struct Proc {
    what: String,
    child: Child,
    pub(crate) stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    /// Every line read so far.
    seen: Vec<String>,
    /// Whether an `expect` call matched each line of `seen`.
    matched: Vec<bool>,
    /// Where [`expect`](Self::expect) looks from: after its last match.
    next: usize,
    status: Option<ExitStatus>,
}

impl Proc {
    /// Starts `command`, named `what` in panic messages.
    pub(crate) fn spawn(what: impl Into<String>, mut command: Command) -> Self {
        let what = what.into();
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|err| panic!("spawn {what}: {err}"));
        let (send, lines) = channel();
        let streams: [(&str, Box<dyn Read + Send>); 2] = [
            ("out", Box::new(child.stdout.take().expect("piped"))),
            ("err", Box::new(child.stderr.take().expect("piped"))),
        ];
        for (stream, out) in streams {
            let send = send.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines() {
                    let Ok(line) = line else { break };
                    if send.send(format!("{stream}: {line}")).is_err() {
                        break;
                    }
                }
            });
        }
        Self {
            what,
            stdin: child.stdin.take(),
            child,
            lines,
            seen: Vec::new(),
            matched: Vec::new(),
            next: 0,
            status: None,
        }
    }

    /// Starts `program` with `args`.
    pub(crate) fn run(program: &Path, args: &[&str]) -> Self {
        let name = program.file_name().unwrap_or_default().to_string_lossy();
        let mut command = Command::new(program);
        command.args(args);
        Self::spawn(format!("{name} {}", args.join(" ")), command)
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(crate) fn signal(&self, signal: Signal) {
        let pid = Pid::from_child(&self.child);
        kill_process(pid, signal).unwrap_or_else(|err| panic!("kill {}: {err}", self.what));
    }

    /// Its exit status, if it exited (reaping it).
    pub(crate) fn exited(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().expect("waitpid");
        }
        self.status
    }

    /// Waits for a line containing every one of `parts`, printed after the
    /// line the last `expect` matched; returns it.
    pub(crate) fn expect(&mut self, parts: &[&str]) -> String {
        let at = self.next;
        let found = self.find_from(at, &format!("a line with {parts:?}"), |line| {
            parts.iter().all(|part| line.contains(part))
        });
        self.next = found + 1;
        self.seen[found].clone()
    }

    /// Waits for a line containing every one of `parts` that no earlier call
    /// matched, printed before this call or after; returns it. For the lines
    /// of several peers, which come in any order.
    pub(crate) fn expect_unordered(&mut self, parts: &[&str]) -> String {
        self.expect_where(&format!("a line with {parts:?}"), |line| {
            parts.iter().all(|part| line.contains(part))
        })
    }

    /// [`expect_unordered`](Self::expect_unordered) for a line that
    /// `matches`, described as `what`.
    pub(crate) fn expect_where(&mut self, what: &str, matches: impl Fn(&str) -> bool) -> String {
        let found = self.find_from(0, what, matches);
        self.seen[found].clone()
    }

    /// The index of the first line from `at` on that `matches` and no call
    /// matched yet, reading lines until one comes; marks it matched.
    fn find_from(&mut self, mut at: usize, what: &str, matches: impl Fn(&str) -> bool) -> usize {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(found) = (at..self.seen.len())
                .find(|&index| !self.matched[index] && matches(&self.seen[index]))
            {
                self.matched[found] = true;
                return found;
            }
            at = self.seen.len();
            let line = self
                .lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .unwrap_or_else(|_| {
                    panic!(
                        "{}: no {what} before its output ended or time ran out; it said:\n{}",
                        self.what,
                        self.seen.join("\n")
                    )
                });
            self.seen.push(line);
            self.matched.push(false);
        }
    }

    /// Closes its stdin, waits for it to exit and for the rest of its output.
    pub(crate) fn finish(&mut self) -> ExitStatus {
        self.stdin = None;
        let deadline = Instant::now() + PATIENCE;
        let status = loop {
            if let Some(status) = self.exited() {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not exit; it said:\n{}",
                self.what,
                self.seen.join("\n")
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        // The reading threads end when the process and any child that
        // inherited its pipes have closed them.
        while let Ok(line) = self.lines.recv_timeout(PATIENCE) {
            self.seen.push(line);
            self.matched.push(false);
        }
        assert!(
            !Path::new(&format!("/proc/{}", self.pid())).exists(),
            "process {} reaped",
            self.pid()
        );
        status
    }

    /// Every line read so far.
    pub(crate) fn lines(&self) -> &[String] {
        &self.seen
    }

    /// Waits for the exit, asserts its code, and returns the output.
    pub(crate) fn exits_with(&mut self, code: i32) -> String {
        let status = self.finish();
        let output = self.seen.join("\n");
        assert_eq!(
            status.code(),
            Some(code),
            "{}: {status}; it said:\n{output}",
            self.what
        );
        output
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.exited().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The file `/dev/shm/<name>` that segment `name` (`/name`) is.
pub(crate) fn shm_path(name: &str) -> PathBuf {
    Path::new("/dev/shm").join(name.trim_start_matches('/'))
}

/// The names in `/dev/shm`, sorted (none if it cannot be read).
pub(crate) fn shm_entries() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir("/dev/shm")
        .map(|dir| {
            dir.filter_map(|entry| Some(entry.ok()?.file_name().to_string_lossy().into_owned()))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}
