//! The two processes and how they talk.
//!
//! The leader (this process, pinned to core 0) re-executes this binary as
//! `xproc-peer` (pinned to core 1). They talk over a Unix seqpacket socket
//! (this crate's `uds` adapter): for each run the leader sends a command (a
//! JSON object naming the scenario) with the fds it needs attached (memfd
//! segments, eventfds, sockets, pipes); the peer sets up its half and says
//! `ready`, both run, and the peer says `done`, with any figure it measured.
//!
//! Nothing outlives the benchmark, whatever goes wrong:
//! - segments are memfds and the socket's address is abstract: no names to
//!   unlink;
//! - the peer dies with the leader (`PR_SET_PDEATHSIG`), and the leader kills
//!   and reaps the peer when it returns early ([`Leader`]'s drop);
//! - a [`Watchdog`] bounds every run: if the peer dies, or a run has not
//!   finished after [`RUN_TIMEOUT`], it kills the peer and ends the process,
//!   even if the leader is stuck in a blocking read or a spin.

use std::{
    env,
    error::Error,
    os::fd::{AsFd, BorrowedFd, OwnedFd},
    process::{self, Child, Command, Stdio},
    sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError},
    thread::{self, JoinHandle},
    time::{Duration, Instant},
};

use ipc_primitives::linux::uds::{SeqpacketListener, SeqpacketStream, UdsError, UnixAddr};
use rustix::{
    event::{PollFd, PollFlags, Timespec, poll},
    process::{Pid, Signal, getppid, kill_process, set_parent_process_death_signal},
};
use serde_json::{Value, json};

use super::scenario_by_key;
use crate::pin;

/// The hidden command that runs the peer.
pub const PEER_COMMAND: &str = "xproc-peer";
/// The cores of the leader and the peer.
pub const LEADER_CORE: usize = 0;
pub const PEER_CORE: usize = 1;
/// The longest a run may take, from command to `done`: about 100 times the
/// longest run on a slow stretch of this machine.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(120);
/// The longest the peer may take to start and connect.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
/// How often the watchdog looks for a dead peer while a run is on.
const HANGUP_POLL: Duration = Duration::from_millis(250);
/// Most fds one command carries.
const MAX_FDS: usize = 4;
/// Largest control message.
const MAX_MESSAGE: usize = 16 * 1024;

type Result<T, E = Box<dyn Error>> = std::result::Result<T, E>;

/// The leader's end: the peer process, the control socket, the watchdog.
#[derive(Debug)]
pub struct Leader {
    ctl: SeqpacketStream,
    watchdog: Watchdog,
    /// Dropped last: killed and reaped unless it has exited.
    child: KillOnDrop,
}

impl Leader {
    /// Starts the peer and waits until it has connected.
    pub fn spawn() -> Result<Self> {
        let pid = process::id();
        let name = format!("ipc-primitives-bench/xproc/{pid}");
        let listener = SeqpacketListener::bind(&UnixAddr::abstract_name(&name)?)?;
        let child = Command::new(env::current_exe()?)
            .args([PEER_COMMAND, &name, &pid.to_string()])
            .stdin(Stdio::null())
            .spawn()
            .map_err(|err| format!("starting the peer process: {err}"))?;
        let child = KillOnDrop(child);
        if !wait_readable(&listener, PollFlags::IN, CONNECT_TIMEOUT)? {
            return Err(format!("the peer did not connect within {CONNECT_TIMEOUT:?}").into());
        }
        let ctl = listener.accept()?;
        // Anyone may connect to an abstract address: check it is our child.
        let peer = ctl
            .peer_credentials()?
            .pid
            .map(|pid| pid.as_raw_nonzero().get());
        if peer.map(i32::unsigned_abs) != Some(child.0.id()) {
            return Err(format!("unexpected process {peer:?} connected as the peer").into());
        }
        let watchdog = Watchdog::start(child.0.id(), ctl.as_fd().try_clone_to_owned()?);
        Ok(Self {
            ctl,
            watchdog,
            child,
        })
    }

    /// Sends `cmd` (which names its `"scenario"`) with `fds`, arms the
    /// watchdog, and waits for the peer to be ready.
    pub fn start(&mut self, cmd: &Value, fds: &[BorrowedFd<'_>]) -> Result<()> {
        let what = cmd["scenario"].as_str().unwrap_or("a run").to_owned();
        self.watchdog.arm(what);
        send(&self.ctl, cmd, fds)?;
        match reply(&self.ctl, "ready")? {
            Value::Bool(true) => Ok(()),
            other => Err(format!("unexpected reply from the peer: {other}").into()),
        }
    }

    /// Waits for the peer's `done`, returns what it carries and disarms the
    /// watchdog.
    pub fn finish(&mut self) -> Result<Value> {
        let done = reply(&self.ctl, "done")?;
        self.watchdog.disarm();
        Ok(done)
    }

    /// Tells the peer to exit and reaps it.
    pub fn shutdown(mut self) -> Result<()> {
        send(&self.ctl, &json!({ "scenario": "quit" }), &[])?;
        let deadline = Instant::now() + CONNECT_TIMEOUT;
        loop {
            if let Some(status) = self.child.0.try_wait()? {
                return if status.success() {
                    Ok(())
                } else {
                    Err(format!("the peer exited with {status}").into())
                };
            }
            if Instant::now() > deadline {
                return Err("the peer did not exit when told to".into());
            }
            thread::sleep(Duration::from_millis(5));
        }
    }
}

/// A child process that is killed and reaped when dropped, unless it has
/// exited already.
#[derive(Debug)]
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

/// Ends the benchmark when a run hangs or the peer dies during one.
///
/// A thread of the leader (on the leader's core, asleep but for a `poll`
/// every [`HANGUP_POLL`] while a run is on) watches the control socket for a
/// hang-up and the clock for [`RUN_TIMEOUT`]. Either one kills the peer and
/// exits the process: the leader may be blocked where no error can reach
/// it (a blocking eventfd read, a spin on shared memory).
#[derive(Debug)]
struct Watchdog {
    shared: Arc<(Mutex<Watch>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Debug, Default)]
struct Watch {
    /// The run in progress and when it must end.
    run: Option<(String, Instant)>,
    stop: bool,
}

impl Watchdog {
    fn start(peer: u32, ctl: OwnedFd) -> Self {
        let shared = Arc::new((Mutex::new(Watch::default()), Condvar::new()));
        let thread = thread::spawn({
            let shared = Arc::clone(&shared);
            move || watch(&shared, peer, &ctl)
        });
        Self {
            shared,
            thread: Some(thread),
        }
    }

    fn arm(&self, what: String) {
        self.lock().run = Some((what, Instant::now() + RUN_TIMEOUT));
        self.shared.1.notify_one();
    }

    fn disarm(&self) {
        self.lock().run = None;
    }

    fn lock(&self) -> MutexGuard<'_, Watch> {
        self.shared.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.lock().stop = true;
        self.shared.1.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn watch(shared: &(Mutex<Watch>, Condvar), peer: u32, ctl: &OwnedFd) {
    let (lock, wake) = shared;
    let mut state = lock.lock().unwrap_or_else(PoisonError::into_inner);
    loop {
        if state.stop {
            return;
        }
        let Some((what, deadline)) = state.run.clone() else {
            state = wake.wait(state).unwrap_or_else(PoisonError::into_inner);
            continue;
        };
        drop(state);
        // Only hang-ups are asked for: a reply to read is the leader's business.
        let hung_up = wait_readable(ctl, PollFlags::RDHUP, HANGUP_POLL).unwrap_or(false);
        state = lock.lock().unwrap_or_else(PoisonError::into_inner);
        if state.run.as_ref().map(|(_, d)| *d) != Some(deadline) {
            continue; // That run finished meanwhile.
        }
        let failure = if hung_up {
            format!("the peer process died during `{what}`")
        } else if Instant::now() >= deadline {
            format!("`{what}` did not finish within {RUN_TIMEOUT:?}")
        } else {
            continue;
        };
        eprintln!("error: xproc: {failure}; stopping the benchmark");
        if let Some(pid) = Pid::from_raw(peer.cast_signed()) {
            let _ = kill_process(pid, Signal::KILL);
        }
        process::exit(1);
    }
}

/// Waits up to `timeout` for any of `events` (or a hang-up or error) on `fd`.
fn wait_readable(fd: impl AsFd, events: PollFlags, timeout: Duration) -> Result<bool> {
    let timeout = Timespec::try_from(timeout)?;
    let mut fds = [PollFd::new(&fd, events)];
    Ok(rustix::io::retry_on_intr(|| poll(&mut fds, Some(&timeout)))? > 0)
}

/// The peer's end, handed to each scenario's `follow`.
#[derive(Debug)]
pub struct Follower {
    ctl: SeqpacketStream,
}

impl Follower {
    /// Tells the leader that this side is set up and about to run.
    pub fn ready(&self) -> Result<()> {
        send(&self.ctl, &json!({ "ready": true }), &[])
    }
}

/// What a scenario's peer half does with a command and its fds; returns the
/// `done` payload.
pub type Follow = fn(&Follower, &Value, Vec<OwnedFd>) -> Result<Value>;

/// The peer process: `xproc-peer <socket name> <leader pid>`. Pins itself,
/// connects and serves commands until told to quit or the leader hangs up.
pub fn main(mut args: impl Iterator<Item = String>) -> Result<()> {
    let name = args.next().ok_or("xproc-peer: missing socket name")?;
    let leader: i32 = args
        .next()
        .ok_or("xproc-peer: missing leader pid")?
        .parse()?;
    set_parent_process_death_signal(Some(Signal::KILL))?;
    // The leader may have died before the line above: then nobody will kill us.
    if getppid().map(Pid::as_raw_nonzero).map(|pid| pid.get()) != Some(leader) {
        return Err("xproc-peer: the leader is gone".into());
    }
    pin::to_core(PEER_CORE);
    let follower = Follower {
        ctl: SeqpacketStream::connect(&UnixAddr::abstract_name(&name)?)?,
    };
    loop {
        let (cmd, fds) = match recv(&follower.ctl) {
            Ok(received) => received,
            Err(Closed) => return Ok(()),
        };
        let key = cmd["scenario"].as_str().unwrap_or_default();
        if key == "quit" {
            return Ok(());
        }
        let result = match scenario_by_key(key).and_then(|s| s.follow) {
            Some(follow) => follow(&follower, &cmd, fds),
            None => Err(format!("no scenario `{key}` to follow").into()),
        };
        let reply = match result {
            Ok(done) => json!({ "done": done }),
            Err(err) => {
                eprintln!("error: xproc-peer: {key}: {err}");
                json!({ "error": err.to_string() })
            }
        };
        send(&follower.ctl, &reply, &[])?;
    }
}

/// The control socket failed or was closed: the other side is gone.
#[derive(Debug)]
struct Closed;

fn send(ctl: &SeqpacketStream, msg: &Value, fds: &[BorrowedFd<'_>]) -> Result<()> {
    ctl.send_with_fds(msg.to_string().as_bytes(), fds)
        .map_err(|err| format!("sending to the other process: {err}").into())
}

fn recv(ctl: &SeqpacketStream) -> Result<(Value, Vec<OwnedFd>), Closed> {
    let mut buf = vec![0; MAX_MESSAGE];
    let (len, fds) = ctl.recv_with_fds(&mut buf, MAX_FDS).map_err(|err| {
        if !matches!(err, UdsError::PeerClosed) {
            eprintln!("error: xproc: control socket: {err}");
        }
        Closed
    })?;
    let msg = serde_json::from_slice(&buf[..len]).map_err(|err| {
        eprintln!("error: xproc: bad control message: {err}");
        Closed
    })?;
    Ok((msg, fds))
}

/// Waits for the peer's reply and returns its `field`, or the peer's error.
fn reply(ctl: &SeqpacketStream, field: &str) -> Result<Value> {
    let (mut msg, _) = recv(ctl).map_err(|Closed| "the peer hung up")?;
    if let Some(err) = msg.get("error") {
        return Err(format!("peer: {}", err.as_str().unwrap_or_default()).into());
    }
    match msg.get_mut(field) {
        Some(value) => Ok(value.take()),
        None => Err(format!("expected `{field}` from the peer, got {msg}").into()),
    }
}

/// The `N` fds a command must carry, in order.
pub fn take_fds<const N: usize>(fds: Vec<OwnedFd>) -> Result<[OwnedFd; N]> {
    fds.try_into()
        .map_err(|fds: Vec<_>| format!("expected {N} fds, got {}", fds.len()).into())
}

/// A number in a command.
pub fn field_u64(cmd: &Value, key: &str) -> Result<u64> {
    cmd[key]
        .as_u64()
        .ok_or_else(|| format!("command lacks `{key}`: {cmd}").into())
}
