//! Named shared memory against another local user and against a dead
//! creator, with real processes.
//!
//! The attacker tests run as root (they skip, saying so, otherwise); the
//! liveness tests run as anyone. The attacker is a child process that drops to uid and gid 65534 (`nobody`) with
//! `setgroups`, `setresgid` and `setresuid` before it plants things in
//! `/dev/shm`; the victims and the creators and takers of the liveness tests
//! are root children or the test itself.
//!
//! Children are the test binary re-executed (`--exact child`), their role in
//! `IPCP_SHM_ROLE`. They print `IPCP-…` lines on stdout for the parent and
//! wait for stdin to close before they exit (a creator or winning taker holds
//! its segment until then), so a child never outlives its parent's pipe.
//! Every name is removed by a guard, whatever the outcome.
#![cfg(all(feature = "linux", target_os = "linux", not(loom), not(miri)))]

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use ipc_primitives::linux::shm::{CreateOptions, Liveness, Mode, OpenOptions, Segment, ShmError};
use ipc_primitives::seqlock::SeqLock;
use rustix::fs::{self, AtFlags, CWD, OFlags};
use rustix::process::{Gid, Uid, geteuid};

/// Who the attacker is.
const NOBODY: u32 = 65534;
/// The environment variables that make a run of this binary a child.
const ROLE: &str = "IPCP_SHM_ROLE";
const NAME: &str = "IPCP_SHM_NAME";
const ARG: &str = "IPCP_SHM_ARG";
/// The size of every segment here.
const LEN: usize = 4096;
/// How many times a taker polls the starting gun before it gives up on the
/// parent (which fires it as soon as all takers are ready).
const GUN_POLLS: u64 = 100_000_000;

// ---------------------------------------------------------------------------
// The attacker: another user who may write /dev/shm
// ---------------------------------------------------------------------------

/// `nobody` plants a symbolic link to a file only root may write; root's
/// open, create, take-over and unlink all refuse it, and the file is
/// untouched.
#[test]
fn a_symlink_planted_by_another_user_is_never_followed() {
    if !root("a_symlink_planted_by_another_user_is_never_followed") {
        return;
    }
    let name = ShmName::new("symlink");
    let target = Target::new(b"root only\n");
    as_nobody(&name, &format!("symlink:{}", target.0.display()));
    assert!(name.is_symlink());

    let symlink = Err(ShmError::Symlink {
        name: name.0.clone(),
    });
    assert_eq!(Segment::open(&name.0).map(drop), symlink);
    let trusting = OpenOptions::new().trust_owner(Uid::from_raw(NOBODY));
    assert_eq!(trusting.open(&name.0).map(drop), symlink);
    assert_eq!(Segment::create(&name.0, LEN).map(drop), symlink);
    let take_over = CreateOptions::new().take_over(true);
    assert_eq!(take_over.create(&name.0, LEN).map(drop), symlink);
    assert_eq!(ipc_primitives::linux::shm::unlink(&name.0), symlink);

    assert!(name.is_symlink(), "the link is still there");
    target.assert_untouched();
}

/// `nobody` pre-creates the name with mode 0666. A root victim that opened
/// it would die of `SIGBUS` once `nobody` truncates it; `open` refuses it
/// first, so the victim lives. Before the fix the victim opened it and was
/// killed.
#[test]
fn a_segment_another_user_may_truncate_is_refused_before_it_can_kill() {
    if !root("a_segment_another_user_may_truncate_is_refused_before_it_can_kill") {
        return;
    }
    let name = ShmName::new("sigbus");
    as_nobody(&name, "create:666");
    assert_eq!(name.owner(), (NOBODY, 0o666));

    let mut victim = Child::spawn("victim", &name.0, "");
    let opened = victim.result();
    as_nobody(&name, "truncate");
    let touched = (opened == "opened").then(|| {
        victim.send("touch");
        victim.result_or_exit()
    });
    let status = victim.finish();
    assert_eq!(
        opened,
        format!(
            "refused {:?}",
            ShmError::Untrusted {
                name: name.0.clone(),
                uid: Uid::from_raw(NOBODY),
                gid: Gid::from_raw(NOBODY),
                mode: 0o666,
            }
        ),
        "then: {touched:?}, victim {status:?} (signal {:?})",
        status.signal()
    );
    assert!(status.success(), "victim {status:?}");
}

/// A segment `nobody` owns is refused by default and admitted by
/// `trust_owner(nobody)` unless others may write it, which nothing admits.
#[test]
fn another_users_segment_is_opened_only_when_trusted() {
    if !root("another_users_segment_is_opened_only_when_trusted") {
        return;
    }
    let nobody = Uid::from_raw(NOBODY);
    let trusting = OpenOptions::new().trust_owner(nobody);
    let untrusted = |name: &ShmName, mode| ShmError::Untrusted {
        name: name.0.clone(),
        uid: nobody,
        gid: Gid::from_raw(NOBODY),
        mode,
    };

    let name = ShmName::new("foreign");
    as_nobody(&name, "create:644");
    assert_eq!(
        Segment::open(&name.0).map(drop),
        Err(untrusted(&name, 0o644))
    );
    let seg = trusting.open(&name.0).expect("a trusted owner is admitted");
    assert_eq!(seg.len(), LEN);
    assert_eq!(
        seg.creator_alive(),
        Liveness::Gone,
        "created without a lock"
    );
    drop(seg);

    let shared = ShmName::new("foreign-666");
    as_nobody(&shared, "create:666");
    assert_eq!(
        trusting.open(&shared.0).map(drop),
        Err(untrusted(&shared, 0o666)),
        "anyone may truncate it: never trusted"
    );
}

// ---------------------------------------------------------------------------
// Liveness: the creator's lock
// ---------------------------------------------------------------------------

/// A creator killed with SIGKILL leaves its name; a reader sees it gone and
/// a restart takes the name over.
#[test]
fn a_killed_creator_is_gone_and_its_name_can_be_taken_over() {
    let name = ShmName::new("killed");
    let mut creator = Child::spawn("creator", &name.0, "");
    let inode = creator.ready();
    let reader = Segment::open(&name.0).expect("open the creator's segment");
    assert_eq!(reader.creator_alive(), Liveness::Alive);

    creator.kill();
    assert_eq!(name.inode(), inode, "the name outlives its creator");
    assert_eq!(reader.creator_alive(), Liveness::Gone);
    let late = Segment::open(&name.0).expect("open after the crash");
    assert_eq!(late.creator_alive(), Liveness::Gone);

    let successor = CreateOptions::new()
        .take_over(true)
        .create(&name.0, LEN)
        .expect("take over a dead creator's name");
    assert_ne!(name.inode(), inode);
    assert_eq!(successor.creator_alive(), Liveness::Alive);
    let fresh = Segment::open(&name.0).expect("open the successor");
    assert_eq!(fresh.creator_alive(), Liveness::Alive);
    assert_eq!(
        reader.creator_alive(),
        Liveness::Gone,
        "the old one stays gone"
    );
}

/// A live creator reads as alive, and neither a plain create nor takers in
/// other processes displace it; once it exits (no kill), it reads as gone.
#[test]
fn a_live_creator_is_alive_and_never_displaced() {
    let name = ShmName::new("live");
    let mut creator = Child::spawn("creator", &name.0, "");
    let inode = creator.ready();
    let reader = Segment::open(&name.0).expect("open the creator's segment");
    assert_eq!(reader.creator_alive(), Liveness::Alive);

    let exists = Err(ShmError::Exists {
        name: name.0.clone(),
    });
    assert_eq!(Segment::create(&name.0, LEN).map(drop), exists);
    let alive = format!(
        "lost {:?}",
        ShmError::CreatorAlive {
            name: name.0.clone()
        }
    );
    let outcomes = race_takers(&name, 4);
    assert!(outcomes.iter().all(|o| *o == alive), "{outcomes:?}");
    assert_eq!(name.inode(), inode, "a live creator was displaced");
    assert_eq!(reader.creator_alive(), Liveness::Alive);

    assert!(creator.finish().success());
    assert_eq!(reader.creator_alive(), Liveness::Gone);
}

/// Takers in separate processes race for a name whose creator is dead (or
/// for a free name): in every round exactly one wins, the name ends on the
/// winner's segment, and nothing else is left behind. Each round's winner
/// then exits, leaving the next round a dead creator.
#[test]
fn racing_takers_have_exactly_one_winner() {
    // Weakening the protocol fails this test: without the name lock, or
    // locking a new segment after naming it, in every one of six runs (two
    // takers won, within the first 30 rounds); without the device and
    // inode check, in one of six (a unit test in `create.rs` catches that
    // one every time).
    const ROUNDS: usize = 150;
    const TAKERS: usize = 4;
    let name = ShmName::new("race");
    let mut creator = Child::spawn("creator", &name.0, "");
    creator.ready();
    creator.kill();

    for round in 0..ROUNDS {
        // Every third round races for a free name instead.
        let dead = if round % 3 == 2 {
            fs::unlink(name.path()).expect("unlink the dead segment");
            None
        } else {
            Some(name.inode())
        };
        let outcomes = race_takers(&name, TAKERS);
        let winners: Vec<u64> = outcomes
            .iter()
            .filter_map(|o| o.strip_prefix("won ")?.parse().ok())
            .collect();
        assert_eq!(winners.len(), 1, "round {round}: {outcomes:?}");
        for outcome in outcomes.iter().filter(|o| !o.starts_with("won ")) {
            let lost = outcome.starts_with("lost CreatorAlive") || outcome.starts_with("lost Busy");
            assert!(lost, "round {round}: {outcomes:?}");
        }
        assert_eq!(
            name.inode(),
            winners[0],
            "round {round}: the name is not the winner's"
        );
        assert_ne!(Some(winners[0]), dead, "round {round}");
    }
}

// ---------------------------------------------------------------------------
// Children
// ---------------------------------------------------------------------------

/// Not a test by itself: a child's entry point (see the module docs).
#[test]
fn child() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    let name = std::env::var(NAME).expect("IPCP_SHM_NAME");
    let arg = std::env::var(ARG).unwrap_or_default();
    match role.as_str() {
        "nobody" => nobody(&name, &arg),
        "victim" => victim(&name),
        "creator" => {
            let segment = Segment::create(&name, LEN).expect("create");
            println!("IPCP-READY {}", fs::fstat(&segment).expect("fstat").st_ino);
            wait_for_eof();
        }
        "taker" => {
            // The starting gun: a file the parent gives a byte once every
            // taker is ready. Polling it (yielding the CPU in between) starts
            // the takers that are running within a system call of each other.
            let gun = std::fs::File::open(&arg).expect("open the starting gun");
            println!("IPCP-READY 0");
            let fired = (0..GUN_POLLS).any(|_| {
                std::thread::yield_now();
                fs::fstat(&gun).expect("fstat the gun").st_size != 0
            });
            assert!(fired, "the parent never fired the gun");
            let taken = CreateOptions::new().take_over(true).create(&name, LEN);
            match &taken {
                Ok(segment) => println!(
                    "IPCP-RESULT won {}",
                    fs::fstat(segment).expect("fstat").st_ino
                ),
                Err(err) => println!("IPCP-RESULT lost {err:?}"),
            }
            wait_for_eof();
        }
        other => panic!("unknown role {other:?}"),
    }
}

/// Drops to `nobody`, then does `arg` to the name: `symlink:<target>`,
/// `create:<octal mode>` (a segment of `LEN` bytes) or `truncate` (to 0).
///
/// `setresuid` and friends change only the calling thread's credentials on
/// Linux: enough, since this thread does everything and the process exits.
fn nobody(name: &str, arg: &str) {
    let (uid, gid) = (Uid::from_raw(NOBODY), Gid::from_raw(NOBODY));
    rustix::thread::set_thread_groups(&[]).expect("setgroups");
    rustix::thread::set_thread_res_gid(gid, gid, gid).expect("setresgid");
    rustix::thread::set_thread_res_uid(uid, uid, uid).expect("setresuid");
    assert_eq!(geteuid(), uid);

    let path = PathBuf::from("/dev/shm").join(&name[1..]);
    let (action, param) = arg.split_once(':').unwrap_or((arg, ""));
    match action {
        "symlink" => fs::symlinkat(param, CWD, &path).expect("symlink"),
        "create" => {
            let mode = Mode::from(u32::from_str_radix(param, 8).expect("octal mode"));
            let flags = OFlags::CREATE | OFlags::EXCL | OFlags::RDWR | OFlags::CLOEXEC;
            let fd = fs::openat(CWD, &path, flags, mode).expect("create");
            fs::fchmod(&fd, mode).expect("fchmod");
            fs::ftruncate(&fd, LEN as u64).expect("ftruncate");
        }
        "truncate" => {
            let fd = fs::openat(CWD, &path, OFlags::WRONLY | OFlags::CLOEXEC, Mode::empty())
                .expect("open to truncate");
            fs::ftruncate(&fd, 0).expect("truncate");
        }
        other => panic!("unknown action {other:?}"),
    }
}

/// A root daemon that opens the name with the default options and, told to
/// by the parent, reads it (attaching a seqlock reads the header).
fn victim(name: &str) {
    let segment = match Segment::open(name) {
        Ok(segment) => segment,
        Err(err) => {
            println!("IPCP-RESULT refused {err:?}");
            return wait_for_eof();
        }
    };
    println!("IPCP-RESULT opened");
    next_line();
    // A zeroed segment holds no seqlock: an error, but only after reading.
    let attached =
        SeqLock::<u64>::attach(segment.region().expect("the segment's region")).map(drop);
    println!("IPCP-RESULT touched {attached:?}");
    wait_for_eof();
}

fn next_line() -> String {
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).expect("read stdin");
    line
}

fn wait_for_eof() {
    let mut rest = Vec::new();
    std::io::stdin().read_to_end(&mut rest).expect("read stdin");
}

// ---------------------------------------------------------------------------
// Parent side
// ---------------------------------------------------------------------------

/// Whether this test can run; says why it skips if not.
fn root(test: &str) -> bool {
    let root = geteuid().is_root();
    if !root {
        eprintln!("{test}: skipped, needs root to act as user {NOBODY} and as its victim");
    }
    root
}

/// A child process of this binary, its stdin and stdout piped.
struct Child {
    process: std::process::Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl Child {
    fn spawn(role: &str, name: &str, arg: &str) -> Self {
        let mut process = Command::new(std::env::current_exe().expect("current_exe"))
            .args(["--exact", "child", "--nocapture", "--test-threads=1", "-q"])
            .env(ROLE, role)
            .env(NAME, name)
            .env(ARG, arg)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn a child");
        let stdin = process.stdin.take();
        let stdout = BufReader::new(process.stdout.take().expect("piped"));
        Self {
            process,
            stdin,
            stdout,
        }
    }

    fn pid(&self) -> u32 {
        self.process.id()
    }

    /// The child's next `IPCP-<kind> ` line, without the prefix; `None` if it
    /// exited first.
    fn next(&mut self, kind: &str) -> Option<String> {
        let prefix = format!("IPCP-{kind} ");
        let mut line = String::new();
        loop {
            line.clear();
            if self.stdout.read_line(&mut line).expect("read the child") == 0 {
                return None;
            }
            if let Some(rest) = line.trim_end().strip_prefix(&prefix) {
                return Some(rest.to_owned());
            }
        }
    }

    /// Waits for `IPCP-READY <inode>`.
    fn ready(&mut self) -> u64 {
        let line = self
            .next("READY")
            .expect("the child exited before it was ready");
        line.parse().expect("an inode")
    }

    fn result(&mut self) -> String {
        self.next("RESULT")
            .expect("the child exited before its result")
    }

    /// The next result, or how the child ended if it ended first.
    fn result_or_exit(&mut self) -> String {
        match self.next("RESULT") {
            Some(result) => result,
            None => format!("exited: {:?}", self.process.wait()),
        }
    }

    fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        // The child may have died already; `finish` reports how.
        let _ = writeln!(stdin, "{line}");
    }

    /// Closes its stdin (its cue to exit) and waits.
    fn finish(mut self) -> ExitStatus {
        drop(self.stdin.take());
        self.process.wait().expect("wait for the child")
    }

    fn kill(mut self) {
        self.process.kill().expect("SIGKILL");
        let status = self.process.wait().expect("wait for the child");
        assert_eq!(status.signal(), Some(9), "{status:?}");
    }
}

/// Runs `arg` as `nobody` (see [`nobody`]) and checks that it worked.
fn as_nobody(name: &ShmName, arg: &str) {
    let status = Child::spawn("nobody", &name.0, arg).finish();
    assert!(status.success(), "nobody's {arg:?}: {status:?}");
}

/// Starts `count` takers of `name`, lets them go at once, and returns their
/// outcomes (`won <inode>` or `lost <error>`) once they all exited (a winner
/// holds its segment until then), checking that none left a temporary name.
fn race_takers(name: &ShmName, count: usize) -> Vec<String> {
    let gun = ShmName::new("gun");
    let trigger = std::fs::File::create(gun.path()).expect("create the starting gun");
    let gun_path = gun.path().display().to_string();
    let mut takers: Vec<Child> = (0..count)
        .map(|_| Child::spawn("taker", &name.0, &gun_path))
        .collect();
    for taker in &mut takers {
        taker.ready();
    }
    trigger.set_len(1).expect("fire the gun");
    let outcomes = takers.iter_mut().map(Child::result).collect();
    let pids: Vec<u32> = takers.iter().map(Child::pid).collect();
    for taker in takers {
        assert!(taker.finish().success());
    }
    assert_no_temporaries_of(&pids);
    outcomes
}

/// Fails if `/dev/shm` holds a temporary name (`.ipcp-<pid>-…`) of any of
/// `pids`.
fn assert_no_temporaries_of(pids: &[u32]) {
    let left: Vec<String> = std::fs::read_dir("/dev/shm")
        .expect("read /dev/shm")
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|file| {
            pids.iter()
                .any(|pid| file.starts_with(&format!(".ipcp-{pid}-")))
        })
        .collect();
    assert!(left.is_empty(), "temporary names left behind: {left:?}");
}

/// A shared-memory name unique to this process and call; whatever sits at it
/// (a segment, nobody's symlink) is removed on drop.
struct ShmName(String);

impl ShmName {
    fn new(tag: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        Self(format!("/ipcp-attacker-{}-{tag}-{n}", std::process::id()))
    }

    fn path(&self) -> PathBuf {
        PathBuf::from("/dev/shm").join(&self.0[1..])
    }

    fn stat(&self) -> fs::Stat {
        fs::statat(CWD, self.path(), AtFlags::SYMLINK_NOFOLLOW).expect("lstat")
    }

    fn inode(&self) -> u64 {
        self.stat().st_ino
    }

    fn is_symlink(&self) -> bool {
        fs::FileType::from_raw_mode(self.stat().st_mode).is_symlink()
    }

    /// Owner uid and permission bits.
    fn owner(&self) -> (u32, u32) {
        let stat = self.stat();
        (stat.st_uid, stat.st_mode & 0o7777)
    }
}

impl Drop for ShmName {
    fn drop(&mut self) {
        let _ = fs::unlink(self.path());
    }
}

/// A file only root may write, outside `/dev/shm`: what a symlink points at.
struct Target(PathBuf, Vec<u8>);

impl Target {
    fn new(contents: &[u8]) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("ipcp-attacker-{}-{n}", std::process::id()));
        std::fs::write(&path, contents).expect("write the target");
        fs::chmod(&path, Mode::from(0o600)).expect("chmod the target");
        Self(path, contents.to_vec())
    }

    fn assert_untouched(&self) {
        assert_eq!(std::fs::read(&self.0).expect("read the target"), self.1);
        let stat = fs::stat(&self.0).expect("stat the target");
        assert_eq!((stat.st_uid, stat.st_mode & 0o7777), (0, 0o600));
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
