//! The processes and how they talk.
//!
//! The leader (this process, pinned to core 0) re-executes this binary as
//! `xproc-peer`, once per peer process a scenario needs (most need one;
//! broadcast readers and fan-in producers need up to four); every peer pins
//! itself to core 1. They talk over Unix seqpacket sockets (this crate's
//! `uds` adapter), one per peer: for each run the leader sends each peer it
//! uses a command (a JSON object naming the scenario) with the fds it needs
//! attached (memfd segments, eventfds, sockets, pipes); each peer sets up
//! its half and says `ready`, all run, and each says `done`, with any
//! figure it measured.
//!
//! Nothing outlives the benchmark, whatever goes wrong:
//! - segments are memfds and the socket's address is abstract: no names to
//!   unlink;
//! - the peers die with the leader (`PR_SET_PDEATHSIG`), and the leader
//!   kills and reaps them when it returns early ([`Leader`]'s drop);
//! - a [`Watchdog`] bounds every run: if a peer dies, or a run has not
//!   finished after [`RUN_TIMEOUT`](super::watchdog::RUN_TIMEOUT), it kills
//!   the peers and ends the process, even if the leader is stuck in a
//!   blocking read or a spin.

use std::{
    env,
    error::Error,
    os::fd::{AsFd, BorrowedFd, OwnedFd},
    process::{self, Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use ipc_primitives::linux::uds::{SeqpacketListener, SeqpacketStream, UdsError, UnixAddr};
use rustix::{
    event::PollFlags,
    process::{Pid, Signal, getppid, set_parent_process_death_signal},
};
use serde_json::{Value, json};

use super::{
    scenarios::scenario_by_key,
    watchdog::{Watchdog, Watched, wait_for},
};
use crate::pin;

/// The hidden command that runs a peer.
pub const PEER_COMMAND: &str = "xproc-peer";
/// The cores of the leader and of every peer.
pub const LEADER_CORE: usize = 0;
pub const PEER_CORE: usize = 1;
/// The longest a peer may take to start and connect.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
/// Most fds one command carries.
const MAX_FDS: usize = 4;
/// Largest control message.
const MAX_MESSAGE: usize = 16 * 1024;

type Result<T, E = Box<dyn Error>> = std::result::Result<T, E>;

/// A command for one peer: the JSON object and the fds it carries.
pub type PeerCommand<'a> = (Value, Vec<BorrowedFd<'a>>);

/// The leader's end: the peer processes, their control sockets, the
/// watchdog.
#[derive(Debug)]
pub struct Leader {
    /// Declared first: stopped before the peers are killed.
    watchdog: Watchdog,
    /// In the order they were started; peer 0 runs every one-peer scenario.
    peers: Vec<Peer>,
    /// Peers given a command in the run in progress.
    running: usize,
    /// The times the peers of the last finished run slept, all together
    /// (see [`voluntary_switches`]).
    peer_sleeps: u64,
}

#[derive(Debug)]
struct Peer {
    ctl: SeqpacketStream,
    /// Dropped last: killed and reaped unless it has exited.
    child: KillOnDrop,
}

impl Leader {
    /// Starts `count` peers and waits until each has connected.
    pub fn spawn(count: usize) -> Result<Self> {
        let pid = process::id();
        let name = format!("ipc-primitives-bench/xproc/{pid}");
        let listener = SeqpacketListener::bind(&UnixAddr::abstract_name(&name)?)?;
        let mut children = Vec::with_capacity(count);
        for _ in 0..count {
            let child = Command::new(env::current_exe()?)
                .args([PEER_COMMAND, &name, &pid.to_string()])
                .stdin(Stdio::null())
                .spawn()
                .map_err(|err| format!("starting a peer process: {err}"))?;
            children.push(Some(KillOnDrop(child)));
        }
        let mut connected: Vec<Option<SeqpacketStream>> = (0..count).map(|_| None).collect();
        for _ in 0..count {
            if !wait_for([listener.as_fd()], PollFlags::IN, CONNECT_TIMEOUT)? {
                return Err(format!("a peer did not connect within {CONNECT_TIMEOUT:?}").into());
            }
            let ctl = listener.accept()?;
            // Anyone may connect to an abstract address: check it is one of
            // our children, not yet connected.
            let peer = ctl
                .peer_credentials()?
                .pid
                .map(|pid| pid.as_raw_nonzero().get().unsigned_abs());
            let index = children
                .iter()
                .position(|c| c.as_ref().map(|c| c.0.id()) == peer)
                .filter(|&i| connected[i].is_none())
                .ok_or_else(|| format!("unexpected process {peer:?} connected as a peer"))?;
            connected[index] = Some(ctl);
        }
        let peers: Vec<Peer> = connected
            .into_iter()
            .zip(children)
            .map(|(ctl, child)| Peer {
                ctl: ctl.expect("every peer connected"),
                child: child.expect("every peer started"),
            })
            .collect();
        let watched = peers
            .iter()
            .map(|p| {
                Ok(Watched {
                    pid: p.child.0.id(),
                    ctl: p.ctl.as_fd().try_clone_to_owned()?,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            watchdog: Watchdog::start(watched),
            peers,
            running: 0,
            peer_sleeps: 0,
        })
    }

    /// Sends `cmd` (which names its `"scenario"`) with `fds` to peer 0, arms
    /// the watchdog, and waits for the peer to be ready.
    pub fn start(&mut self, cmd: &Value, fds: &[BorrowedFd<'_>]) -> Result<()> {
        self.start_all(vec![(cmd.clone(), fds.to_vec())])
    }

    /// Sends the `i`th command to peer `i`, arms the watchdog, and waits
    /// until every one of them is ready.
    pub fn start_all(&mut self, cmds: Vec<PeerCommand<'_>>) -> Result<()> {
        if cmds.len() > self.peers.len() {
            return Err(format!(
                "a run needs {} peers, {} were started",
                cmds.len(),
                self.peers.len()
            )
            .into());
        }
        let what = cmds
            .first()
            .and_then(|(cmd, _)| cmd["scenario"].as_str())
            .unwrap_or("a run")
            .to_owned();
        self.watchdog.arm(what);
        self.running = cmds.len();
        for (peer, (cmd, fds)) in self.peers.iter().zip(&cmds) {
            send(&peer.ctl, cmd, fds)?;
        }
        for peer in &self.peers[..self.running] {
            match reply(&peer.ctl, "ready")? {
                Value::Bool(true) => {}
                other => return Err(format!("unexpected reply from a peer: {other}").into()),
            }
        }
        Ok(())
    }

    /// Waits for peer 0's `done`, returns what it carries and disarms the
    /// watchdog.
    pub fn finish(&mut self) -> Result<Value> {
        let mut done = self.finish_all()?;
        Ok(done.swap_remove(0))
    }

    /// Waits for the `done` of every peer the run started, returns what
    /// each carries, in peer order, and disarms the watchdog.
    pub fn finish_all(&mut self) -> Result<Vec<Value>> {
        let replies = self.peers[..self.running]
            .iter()
            .map(|peer| reply_with(&peer.ctl, "done"))
            .collect::<Result<Vec<_>>>()?;
        self.running = 0;
        self.watchdog.disarm();
        self.peer_sleeps = 0;
        let mut done = Vec::with_capacity(replies.len());
        for mut msg in replies {
            self.peer_sleeps += field_u64(&msg, "sleeps")?;
            done.push(msg["done"].take());
        }
        Ok(done)
    }

    /// The times the peers slept during the last finished run, all
    /// together: their [`voluntary_switches`] while they followed it.
    pub fn peer_sleeps(&self) -> u64 {
        self.peer_sleeps
    }

    /// Tells every peer to exit and reaps them.
    pub fn shutdown(mut self) -> Result<()> {
        for peer in &self.peers {
            send(&peer.ctl, &json!({ "scenario": "quit" }), &[])?;
        }
        let deadline = Instant::now() + CONNECT_TIMEOUT;
        for peer in &mut self.peers {
            loop {
                if let Some(status) = peer.child.0.try_wait()? {
                    if !status.success() {
                        return Err(format!("a peer exited with {status}").into());
                    }
                    break;
                }
                if Instant::now() > deadline {
                    return Err("a peer did not exit when told to".into());
                }
                thread::sleep(Duration::from_millis(5));
            }
        }
        Ok(())
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

/// A peer process: `xproc-peer <socket name> <leader pid>`. Pins itself,
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
        let before = voluntary_switches()?;
        let result = match scenario_by_key(key).and_then(|s| s.follow) {
            Some(follow) => follow(&follower, &cmd, fds),
            None => Err(format!("no scenario `{key}` to follow").into()),
        };
        let sleeps = voluntary_switches()? - before;
        let reply = match result {
            Ok(done) => json!({ "done": done, "sleeps": sleeps }),
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

/// Waits for the peer's reply and returns it whole if it has `field`, or
/// the peer's error.
fn reply_with(ctl: &SeqpacketStream, field: &str) -> Result<Value> {
    let (msg, _) = recv(ctl).map_err(|Closed| "the peer hung up")?;
    if let Some(err) = msg.get("error") {
        return Err(format!("peer: {}", err.as_str().unwrap_or_default()).into());
    }
    if msg.get(field).is_none() {
        return Err(format!("expected `{field}` from the peer, got {msg}").into());
    }
    Ok(msg)
}

/// Waits for the peer's reply and returns its `field`, or the peer's error.
fn reply(ctl: &SeqpacketStream, field: &str) -> Result<Value> {
    Ok(reply_with(ctl, field)?[field].take())
}

/// The times the calling thread has slept since it started: its voluntary
/// context switches, as `/proc/thread-self/status` counts them (a blocking
/// read, a futex wait or a control-socket receive that found nothing
/// waiting; a spin never does). Preemptions are not counted.
pub fn voluntary_switches() -> Result<u64> {
    let status = std::fs::read_to_string("/proc/thread-self/status")?;
    let count = status
        .lines()
        .find_map(|line| line.strip_prefix("voluntary_ctxt_switches:"))
        .ok_or("/proc/thread-self/status has no voluntary_ctxt_switches")?;
    Ok(count.trim().parse()?)
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

#[cfg(test)]
mod tests {
    use std::{thread, time::Duration};

    use super::voluntary_switches;

    #[test]
    fn a_sleep_counts() {
        let before = voluntary_switches().unwrap();
        thread::sleep(Duration::from_millis(1));
        let after = voluntary_switches().unwrap();
        assert!(
            after > before,
            "a sleep was not counted: {before} then {after}"
        );
    }
}
