//! Process plumbing for the multi-process tests: re-executing the test binary
//! as a child, waiting for it with a deadline, unique names, and the fd and
//! `/dev/shm` accounting every test does.

use core::sync::atomic::{AtomicUsize, Ordering};
use core::time::Duration;
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::os::fd::AsFd;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Instant;

use ipc_primitives::linux::uds::UnixAddr;
use rustix::event::{PollFd, PollFlags, Timespec, poll};

/// The environment variable that turns a run of the test binary into a child:
/// it names the role the `child` test plays.
pub(crate) const ROLE_VAR: &str = "IPCP_CHILD_ROLE";
/// The parent's pid, so that a child can tell it has been orphaned.
pub(crate) const PARENT_VAR: &str = "IPCP_PARENT_PID";
/// Set for a child in a pid namespace of its own.
pub(crate) const PIDNS_VAR: &str = "IPCP_PIDNS";
/// The exact name of the test that runs a child's role.
const CHILD_TEST: &str = "child";
/// Prefix of the lines a child prints on stdout for the parent to read.
pub(crate) const RESULT: &str = "IPCP-RESULT ";
/// The line a child prints once it is ready (e.g. listening).
pub(crate) const READY: &str = "IPCP-READY";

/// Prefix of every shared-memory name, socket name and temp dir these tests
/// create: the parent's pid keeps concurrent runs apart.
pub(crate) fn prefix() -> String {
    format!("ipcp-mp-{}-", std::process::id())
}

/// A number no other call in this process returns.
fn unique() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// A POSIX shared-memory name unique to this process and call; unlinked on
/// drop, in case a test fails before the segment's own `unlink_on_drop` runs.
#[derive(Debug)]
pub(crate) struct ShmName(pub(crate) String);

impl ShmName {
    pub(crate) fn new(tag: &str) -> Self {
        Self(format!("/{}{tag}-{}", prefix(), unique()))
    }
}

impl Drop for ShmName {
    fn drop(&mut self) {
        let _ = rustix::shm::unlink(self.0.as_str());
    }
}

/// An abstract Unix socket name unique to this process and call (abstract
/// names have no file, so they leave nothing behind), and its text for a child.
pub(crate) fn abstract_addr(tag: &str) -> (UnixAddr, String) {
    let name = format!("{}{tag}-{}", prefix(), unique());
    (UnixAddr::abstract_name(&name).expect("short name"), name)
}

/// A fresh directory under the temp dir, removed on drop.
#[derive(Debug)]
pub(crate) struct TempDir(pub(crate) PathBuf);

impl TempDir {
    pub(crate) fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("{}{tag}-{}", prefix(), unique()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).expect("create temp dir");
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The open fds of this process with what each refers to, leaving out the
/// directory fd the listing itself uses.
pub(crate) fn open_fds() -> BTreeSet<(i32, String)> {
    let mut fds = BTreeSet::new();
    let listing = std::fs::read_dir("/proc/self/fd").expect("read /proc/self/fd");
    for entry in listing {
        let entry = entry.expect("read /proc/self/fd entry");
        let Some(fd) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        // The listing's own fd has gone by the time it is read: skip what
        // cannot be read, and the `/proc/<pid>/fd` directory itself.
        let Ok(target) = std::fs::read_link(entry.path()) else {
            continue;
        };
        let target = target.to_string_lossy().into_owned();
        if target.starts_with("/proc/") && target.ends_with("/fd") {
            continue;
        }
        fds.insert((fd, target));
    }
    fds
}

/// The names under `/dev/shm`.
pub(crate) fn shm_names() -> BTreeSet<String> {
    std::fs::read_dir("/dev/shm")
        .expect("read /dev/shm")
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .collect()
}

/// Serialises this file's tests: they count this process's fds, which
/// threads running other tests at the same time would disturb, and the busy
/// tests need both cores. A test that failed holding it poisons it; the next
/// one goes on regardless.
static SERIAL: Mutex<()> = Mutex::new(());

/// What a test held when it started: fds and `/dev/shm` names. [`check`]
/// compares; every test takes it first and checks it last.
///
/// [`check`]: Self::check
#[derive(Debug)]
pub(crate) struct Accounting {
    _serial: MutexGuard<'static, ()>,
    fds: BTreeSet<(i32, String)>,
    shm: BTreeSet<String>,
}

impl Accounting {
    pub(crate) fn begin() -> Self {
        let serial = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
        Self {
            _serial: serial,
            fds: open_fds(),
            shm: shm_names(),
        }
    }

    /// Asserts that no fd opened since [`begin`](Self::begin) is still open
    /// and that no shared-memory name this process created remains.
    pub(crate) fn check(self) {
        let fds = open_fds();
        let leaked: Vec<_> = fds.difference(&self.fds).collect();
        assert!(
            leaked.is_empty(),
            "fd leak: {} fds before, {} after; still open: {leaked:?}",
            self.fds.len(),
            fds.len()
        );
        let shm = shm_names();
        let ours = prefix();
        let residue: Vec<_> = shm
            .difference(&self.shm)
            .filter(|name| name.starts_with(&ours))
            .collect();
        assert!(residue.is_empty(), "/dev/shm residue: {residue:?}");
    }
}

/// Sets a child up: it dies with the thread that spawned it (the parent's
/// test thread), and gives up at once if that is already gone.
pub(crate) fn child_setup() {
    rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
        .expect("prctl(PR_SET_PDEATHSIG)");
    let parent: i32 = env_parse(PARENT_VAR);
    let now = rustix::process::getppid().map_or(0, |pid| pid.as_raw_nonzero().get());
    assert_eq!(now, parent, "orphaned before it started");
}

/// The environment variable `name`, which the parent must have set.
pub(crate) fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("child started without {name}"))
}

/// The environment variable `name`, parsed.
pub(crate) fn env_parse<T: core::str::FromStr>(name: &str) -> T {
    let text = env(name);
    text.parse()
        .unwrap_or_else(|_| panic!("{name}={text:?} does not parse"))
}

/// A child process running one role of the `child` test, its stdout read
/// line by line by a thread. Dropping it kills the child if it still runs.
#[derive(Debug)]
pub(crate) struct Proc {
    role: String,
    child: Child,
    status: Option<ExitStatus>,
    lines: Receiver<String>,
    output: Vec<String>,
    reader: Option<JoinHandle<()>>,
    started: Instant,
    deadline: Instant,
}

impl Proc {
    /// Runs this test binary again as a child playing `role`, with `vars` in
    /// its environment; it must finish within `timeout`. Stderr is
    /// inherited, so what a failing child says shows in the test output.
    pub(crate) fn spawn(role: &str, vars: &[(&str, String)], timeout: Duration) -> Self {
        let exe = std::env::current_exe().expect("current_exe");
        let mut command = Command::new(exe);
        command.env(PARENT_VAR, std::process::id().to_string());
        Self::start(command, role, vars, timeout)
    }

    /// As [`spawn`](Self::spawn), but the child runs as pid 1 of a new pid
    /// namespace (`unshare --pid --fork --kill-child`, which needs
    /// `CAP_SYS_ADMIN`), so it cannot see this process's pid: its parent
    /// reads as pid 0, and `PIDNS_VAR` is set. [`pid`](Self::pid) is then
    /// `unshare`'s pid, not the child's.
    pub(crate) fn spawn_in_new_pid_namespace(
        role: &str,
        vars: &[(&str, String)],
        timeout: Duration,
    ) -> Self {
        let exe = std::env::current_exe().expect("current_exe");
        let mut command = Command::new("unshare");
        command
            .args(["--pid", "--fork", "--kill-child", "--"])
            .arg(exe)
            .env(PARENT_VAR, "0")
            .env(PIDNS_VAR, "1");
        Self::start(command, role, vars, timeout)
    }

    /// As [`spawn`](Self::spawn), but the child runs without `/proc`: in a
    /// mount namespace of its own (`unshare --mount`, which needs
    /// `CAP_SYS_ADMIN`) where `/proc` is unmounted before the test binary
    /// starts. Its pid is [`pid`](Self::pid): `unshare` and `sh` exec it.
    pub(crate) fn spawn_without_proc(
        role: &str,
        vars: &[(&str, String)],
        timeout: Duration,
    ) -> Self {
        let exe = std::env::current_exe().expect("current_exe");
        let mut command = Command::new("unshare");
        command
            .args(["--mount", "--propagation", "private", "--"])
            .args(["sh", "-c", r#"umount -l /proc && exec "$0" "$@""#])
            .arg(exe)
            .env(PARENT_VAR, std::process::id().to_string());
        Self::start(command, role, vars, timeout)
    }

    fn start(mut command: Command, role: &str, vars: &[(&str, String)], timeout: Duration) -> Self {
        command
            .args([
                "--exact",
                CHILD_TEST,
                "--nocapture",
                "--test-threads=1",
                "-q",
            ])
            .env(ROLE_VAR, role)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (name, value) in vars {
            command.env(name, value);
        }
        let started = Instant::now();
        let mut child = command
            .spawn()
            .unwrap_or_else(|err| panic!("spawn child {role}: {err}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let (send, lines) = channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            role: role.to_owned(),
            child,
            status: None,
            lines,
            output: Vec::new(),
            reader: Some(reader),
            started,
            deadline: started + timeout,
        }
    }

    pub(crate) fn pid(&self) -> i32 {
        i32::try_from(self.child.id()).expect("pid fits i32")
    }

    /// The exit status, if the child has exited (without waiting).
    pub(crate) fn exited(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().expect("waitpid");
        }
        self.status
    }

    /// Panics, naming the child, if it has exited or its time is up; for
    /// loops that wait on something the child should do.
    pub(crate) fn check_alive(&mut self, waiting_for: &str) {
        if let Some(status) = self.exited() {
            panic!(
                "child {} exited ({}) while the parent waited for {waiting_for}",
                self.role,
                describe(status)
            );
        }
        assert!(
            Instant::now() < self.deadline,
            "child {} still running after {:?}; the parent waited for {waiting_for}",
            self.role,
            self.deadline - self.started
        );
    }

    /// Waits for the next line starting with `prefix` and returns the rest.
    pub(crate) fn expect_line(&mut self, prefix: &str) -> String {
        loop {
            match self.lines.recv_timeout(Duration::from_millis(20)) {
                Ok(line) => {
                    let found = line.strip_prefix(prefix).map(str::to_owned);
                    self.output.push(line);
                    if let Some(rest) = found {
                        return rest;
                    }
                }
                Err(RecvTimeoutError::Timeout) => self.check_alive(prefix),
                Err(RecvTimeoutError::Disconnected) => {
                    panic!(
                        "child {} closed stdout before printing {prefix:?}; it printed {:?}",
                        self.role, self.output
                    )
                }
            }
        }
    }

    /// Waits for the child to exit, killing it if its time runs out, and
    /// returns its status and everything it printed on stdout.
    pub(crate) fn wait(&mut self) -> (ExitStatus, Vec<String>) {
        let status = loop {
            if let Some(status) = self.exited() {
                break status;
            }
            if Instant::now() >= self.deadline {
                let status = self.kill();
                panic!(
                    "child {} did not finish within {:?}; killed ({})",
                    self.role,
                    self.deadline - self.started,
                    describe(status)
                );
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        self.output.extend(self.lines.try_iter());
        (status, self.output.clone())
    }

    /// Waits for the child and asserts it succeeded; returns the `RESULT`
    /// lines it printed, without the prefix.
    pub(crate) fn wait_success(&mut self) -> Vec<String> {
        let (status, output) = self.wait();
        assert!(
            status.success(),
            "child {} failed ({}); stdout: {output:?}",
            self.role,
            describe(status)
        );
        results(&output)
    }

    /// `SIGKILL`s the child (if it still runs) and reaps it.
    pub(crate) fn kill(&mut self) -> ExitStatus {
        let status = match self.exited() {
            Some(status) => status,
            None => {
                let _ = self.child.kill();
                let status = self.child.wait().expect("waitpid");
                self.status = Some(status);
                status
            }
        };
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        status
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The `RESULT` lines among `output`, without the prefix.
pub(crate) fn results(output: &[String]) -> Vec<String> {
    output
        .iter()
        .filter_map(|line| line.strip_prefix(RESULT).map(str::to_owned))
        .collect()
}

/// An exit status in words.
pub(crate) fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        _ => format!("{status}"),
    }
}

/// Waits until `fd` is readable (e.g. a listener with a client waiting),
/// watching `procs` meanwhile: panics if one of them exits or times out.
pub(crate) fn wait_readable(fd: impl AsFd, procs: &mut [&mut Proc], what: &str) {
    let readable = |timeout: Duration| {
        let timeout = Timespec::try_from(timeout).expect("timespec");
        let mut fds = [PollFd::new(&fd, PollFlags::IN)];
        match poll(&mut fds, Some(&timeout)) {
            Ok(0) | Err(rustix::io::Errno::INTR) => false,
            Ok(_) => true,
            Err(errno) => panic!("poll: {errno}"),
        }
    };
    while !readable(Duration::from_millis(20)) {
        // A child may have done its part and exited since the poll: look
        // once more before blaming it.
        if procs.iter_mut().any(|proc| proc.exited().is_some()) && readable(Duration::ZERO) {
            return;
        }
        for proc in procs.iter_mut() {
            proc.check_alive(what);
        }
    }
}

/// Whether `path` exists and is a socket file.
pub(crate) fn is_socket(path: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::symlink_metadata(path).is_ok_and(|meta| meta.file_type().is_socket())
}
