//! A demo's child processes: this binary started again in a role, sharing a
//! named segment; what they print echoed and kept; on drop, killed, reaped
//! and the segment removed, so that a failure leaves nothing behind.
//!
//! Include `shm_path.rs` beside it, as `mod shm_path`.

use std::error::Error;
use std::fmt;
use std::io::{BufRead, BufReader, Read};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal};

use super::shm_path::shm_path;

/// Why a child did not do what the demo waited for.
#[derive(Debug)]
pub(crate) enum ChildError {
    /// A child could not be started or waited for (contextual).
    Spawn { who: String, source: std::io::Error },
    /// A child said nothing matching `what` within `waited`, or exited
    /// first.
    Missing {
        who: String,
        what: String,
        exited: bool,
        waited: Duration,
    },
    /// A child ended other than expected.
    Status {
        who: String,
        status: ExitStatus,
        expected: &'static str,
    },
}

impl fmt::Display for ChildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Spawn { who, .. } => write!(f, "cannot run {who}"),
            Self::Missing {
                who,
                what,
                exited: true,
                ..
            } => write!(f, "{who} exited without saying {what:?}"),
            Self::Missing {
                who, what, waited, ..
            } => write!(
                f,
                "{who} did not say {what:?} within {} s",
                waited.as_secs()
            ),
            Self::Status {
                who,
                status,
                expected,
            } => write!(f, "{who} ended with {status}, expected {expected}"),
        }
    }
}

impl Error for ChildError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            Self::Spawn { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// A line a child printed (on stderr if `true`), or the end of one of its
/// two output streams.
enum Event {
    Line(usize, String, bool),
    End(usize),
}

/// One child process.
struct Child {
    /// "publisher 123": its role and pid, as it signs its lines.
    who: String,
    process: std::process::Child,
    /// Output streams not yet at their end.
    open_streams: u8,
}

/// The demo's children and every line they printed, each echoed (to stdout
/// or stderr, as the child printed it) when the demo takes it.
pub(crate) struct Children {
    /// The segment the children share.
    segment: String,
    /// The environment variable that tells a child its parent's pid
    /// (`die_with_parent`).
    parent_var: &'static str,
    /// How long the demo waits for any one thing a child should say or do.
    wait: Duration,
    children: Vec<Child>,
    events: Receiver<Event>,
    send: Sender<Event>,
    /// Every line read, with its child's index.
    lines: Vec<(usize, String)>,
}

impl Children {
    pub(crate) fn new(segment: String, parent_var: &'static str, wait: Duration) -> Self {
        let (send, events) = channel();
        Self {
            segment,
            parent_var,
            wait,
            children: Vec::new(),
            events,
            send,
            lines: Vec::new(),
        }
    }

    /// The segment the children share.
    pub(crate) fn segment(&self) -> &str {
        &self.segment
    }

    /// Starts this binary with `args`, as `role`; the child's index.
    pub(crate) fn spawn(&mut self, role: &str, args: &[&str]) -> Result<usize, ChildError> {
        let spawn_error = |source| ChildError::Spawn {
            who: args.join(" "),
            source,
        };
        let exe = std::env::current_exe().map_err(spawn_error)?;
        let mut process = Command::new(exe)
            .args(args)
            .env(self.parent_var, std::process::id().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(spawn_error)?;
        let index = self.children.len();
        let streams: [(Box<dyn Read + Send>, bool); 2] = [
            (Box::new(process.stdout.take().expect("piped")), false),
            (Box::new(process.stderr.take().expect("piped")), true),
        ];
        for (stream, stderr) in streams {
            let send = self.send.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    if send.send(Event::Line(index, line, stderr)).is_err() {
                        return;
                    }
                }
                let _ = send.send(Event::End(index));
            });
        }
        self.children.push(Child {
            who: format!("{role} {}", process.id()),
            process,
            open_streams: 2,
        });
        Ok(index)
    }

    /// "publisher 123": `child`'s role and pid.
    pub(crate) fn who(&self, child: usize) -> &str {
        &self.children[child].who
    }

    /// Where the lines read so far end: `wait_for` from here looks only at
    /// later ones.
    #[allow(dead_code, reason = "not every demo waits for a later line")]
    pub(crate) fn mark(&self) -> usize {
        self.lines.len()
    }

    /// Line `at`, as `wait_for` returned its index.
    #[allow(dead_code, reason = "not every demo reads its children's lines")]
    pub(crate) fn line(&self, at: usize) -> &str {
        &self.lines[at].1
    }

    /// Waits until `child` prints a line containing `what`, at or after line
    /// `since`, echoing every line as it arrives. The matching line's index.
    pub(crate) fn wait_for(
        &mut self,
        child: usize,
        what: &str,
        since: usize,
    ) -> Result<usize, ChildError> {
        let deadline = Instant::now() + self.wait;
        let mut at = since;
        loop {
            if let Some(found) = self.lines[at..]
                .iter()
                .position(|(who, line)| *who == child && line.contains(what))
            {
                return Ok(at + found);
            }
            at = self.lines.len();
            let exited = self.children[child].open_streams == 0;
            if exited || !self.pump(deadline) {
                return Err(self.missing(child, what, exited));
            }
        }
    }

    fn missing(&self, child: usize, what: &str, exited: bool) -> ChildError {
        ChildError::Missing {
            who: self.who(child).to_owned(),
            what: what.to_owned(),
            exited,
            waited: self.wait,
        }
    }

    /// Takes the next event, echoing and recording a line; `false` if none
    /// came before `deadline`.
    fn pump(&mut self, deadline: Instant) -> bool {
        match self
            .events
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            Ok(Event::Line(who, line, stderr)) => {
                if stderr {
                    eprintln!("{line}");
                } else {
                    println!("{line}");
                }
                self.lines.push((who, line));
            }
            Ok(Event::End(who)) => self.children[who].open_streams -= 1,
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return false,
        }
        true
    }

    /// Sends `signal` to `child` (`kill`).
    #[allow(dead_code, reason = "not every demo signals its children")]
    pub(crate) fn kill(&self, child: usize, signal: Signal) {
        let pid = Pid::from_child(&self.children[child].process);
        // It may have died already: that shows when it is reaped.
        let _ = rustix::process::kill_process(pid, signal);
    }

    /// Waits for `child` to exit, echoing what it says until then (its
    /// output ends when it exits: it starts no process of its own to
    /// inherit its pipes), and checks how it ended with `ok`. Its status.
    pub(crate) fn expect_exit(
        &mut self,
        child: usize,
        expected: &'static str,
        ok: impl Fn(ExitStatus) -> bool,
    ) -> Result<ExitStatus, ChildError> {
        let deadline = Instant::now() + self.wait;
        while self.children[child].open_streams > 0 {
            if !self.pump(deadline) {
                return Err(self.missing(child, "its exit", false));
            }
        }
        let deadline = Instant::now() + self.wait;
        let status = loop {
            let Child { who, process, .. } = &mut self.children[child];
            let spawn_error = |source| ChildError::Spawn {
                who: who.clone(),
                source,
            };
            if let Some(status) = process.try_wait().map_err(spawn_error)? {
                break status;
            }
            if Instant::now() >= deadline {
                return Err(self.missing(child, "its exit", false));
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        if ok(status) {
            Ok(status)
        } else {
            Err(ChildError::Status {
                who: self.who(child).to_owned(),
                status,
                expected,
            })
        }
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        for child in &mut self.children {
            if matches!(child.process.try_wait(), Ok(None)) {
                let _ = child.process.kill();
                let _ = child.process.wait();
            }
        }
        // Left only by a publisher killed above or a failed demo.
        if shm_path(&self.segment).exists() {
            let _ = ipc_primitives::linux::shm::unlink(&self.segment);
        }
    }
}
