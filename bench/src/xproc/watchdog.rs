//! Ends the benchmark when a run hangs or a peer dies during one.
//!
//! A thread of the leader (on the leader's core, asleep but for a `poll`
//! every [`HANGUP_POLL`] while a run is on) watches every peer's control
//! socket for a hang-up and the clock for [`RUN_TIMEOUT`]. Either one kills
//! every peer and ends the leader process, saying why on its stdout: the
//! leader may be blocked where no error can reach it (a blocking eventfd
//! read, a spin on shared memory). The supervisor ([`super::rounds`]) then
//! records the run as failed and goes on with a new leader.

use std::{
    error::Error,
    os::fd::{AsFd, OwnedFd},
    process,
    sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError},
    thread::{self, JoinHandle},
    time::{Duration, Instant},
};

use rustix::{
    event::{PollFd, PollFlags, Timespec, poll},
    process::{Pid, Signal, kill_process},
};

/// The longest a run may take, from command to `done`: about 100 times the
/// longest run on a slow stretch of this machine.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(120);
/// How often the watchdog looks for a dead peer while a run is on.
const HANGUP_POLL: Duration = Duration::from_millis(250);

/// A peer process to watch: its pid and a copy of its control socket.
#[derive(Debug)]
pub struct Watched {
    pub pid: u32,
    pub ctl: OwnedFd,
}

#[derive(Debug)]
pub struct Watchdog {
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
    pub fn start(peers: Vec<Watched>) -> Self {
        let shared = Arc::new((Mutex::new(Watch::default()), Condvar::new()));
        let thread = thread::spawn({
            let shared = Arc::clone(&shared);
            move || watch(&shared, &peers)
        });
        Self {
            shared,
            thread: Some(thread),
        }
    }

    /// Starts the clock on the run `what`.
    pub fn arm(&self, what: String) {
        self.lock().run = Some((what, Instant::now() + RUN_TIMEOUT));
        self.shared.1.notify_one();
    }

    pub fn disarm(&self) {
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

fn watch(shared: &(Mutex<Watch>, Condvar), peers: &[Watched]) {
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
        let hung_up = hung_up(peers, HANGUP_POLL).unwrap_or(false);
        state = lock.lock().unwrap_or_else(PoisonError::into_inner);
        if state.run.as_ref().map(|(_, d)| *d) != Some(deadline) {
            continue; // That run finished meanwhile.
        }
        let failure = if hung_up {
            format!("a peer process died during `{what}`")
        } else if Instant::now() >= deadline {
            format!("`{what}` did not finish within {RUN_TIMEOUT:?}")
        } else {
            continue;
        };
        // The supervisor reads why on the leader's stdout.
        println!("{}", serde_json::json!({ "failed": failure }));
        for peer in peers {
            if let Some(pid) = Pid::from_raw(peer.pid.cast_signed()) {
                let _ = kill_process(pid, Signal::KILL);
            }
        }
        process::exit(1);
    }
}

/// Waits up to `timeout` for a hang-up (or an error) on any peer's socket.
fn hung_up(peers: &[Watched], timeout: Duration) -> Result<bool, Box<dyn Error>> {
    wait_for(
        peers.iter().map(|p| p.ctl.as_fd()),
        PollFlags::RDHUP,
        timeout,
    )
}

/// Waits up to `timeout` for any of `events` (or a hang-up or error) on any
/// of `fds`.
pub fn wait_for<'a>(
    fds: impl IntoIterator<Item = std::os::fd::BorrowedFd<'a>>,
    events: PollFlags,
    timeout: Duration,
) -> Result<bool, Box<dyn Error>> {
    let timeout = Timespec::try_from(timeout)?;
    let fds: Vec<_> = fds.into_iter().collect();
    let mut polled: Vec<PollFd<'_>> = fds.iter().map(|fd| PollFd::new(fd, events)).collect();
    Ok(rustix::io::retry_on_intr(|| poll(&mut polled, Some(&timeout)))? > 0)
}
