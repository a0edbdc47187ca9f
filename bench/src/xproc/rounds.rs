//! Running the rounds in a leader process that a failed run cannot take
//! down with the benchmark.
//!
//! `xproc` (the supervisor) starts this binary as `xproc-leader`, which pins
//! itself to the leader core, starts the peers and runs the rounds from a
//! given round and scenario, writing one JSON line per run to its stdout.
//! When a run fails (an error, a panic, a peer that dies, or a run past
//! [`RUN_TIMEOUT`], which the leader's [watchdog](super::watchdog) enforces
//! by killing the peers and ending the leader) the leader ends, the
//! supervisor records that run as failed and starts a new leader at the
//! next run. The supervisor also kills a leader that has said nothing for
//! longer than [`RUN_TIMEOUT`] and a margin (its peers die with it:
//! `PR_SET_PDEATHSIG`).

use std::{
    env,
    error::Error,
    io::{self, BufRead, BufReader, Write},
    process::{Command, Stdio},
    sync::mpsc::{self, RecvTimeoutError},
    thread,
    time::Duration,
};

use serde_json::{Value, json};

use super::{
    Outcome, Run, line,
    peer::{LEADER_CORE, Leader, voluntary_switches},
    scenarios::{self, Scenario},
    watchdog::RUN_TIMEOUT,
};
use crate::pin;

/// The hidden command that runs the leader.
pub const LEADER_COMMAND: &str = "xproc-leader";
/// How long the supervisor waits for a line beyond [`RUN_TIMEOUT`] (the
/// watchdog's own deadline, plus a probe) before it kills the leader.
const MARGIN: Duration = Duration::from_secs(60);

/// A run that failed.
#[derive(Debug, Clone)]
pub struct Failure {
    pub round: usize,
    pub key: &'static str,
    pub reason: String,
}

/// What the rounds gave: each scenario's runs, in round order, and the runs
/// that failed.
#[derive(Debug)]
pub struct Results {
    pub runs: Vec<Vec<Run>>,
    pub failures: Vec<Failure>,
}

/// Where the next run is: its round (from 1) and its scenario's index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Position {
    round: usize,
    index: usize,
}

impl Position {
    fn advance(&mut self, scenarios: usize) {
        self.index += 1;
        if self.index == scenarios {
            self.index = 0;
            self.round += 1;
        }
    }
}

/// Runs `rounds` rounds of `scenarios`, printing progress.
pub fn supervise(
    scenarios: &[&'static Scenario],
    rounds: usize,
) -> Result<Results, Box<dyn Error>> {
    let keys: Vec<&str> = scenarios.iter().map(|s| s.key).collect();
    let mut runs: Vec<Vec<Run>> = vec![Vec::with_capacity(rounds); scenarios.len()];
    let mut failures = Vec::new();
    let mut next = Position { round: 1, index: 0 };
    while next.round <= rounds {
        let reason = lead_from(&keys, rounds, &mut next, |next, run| {
            progress(scenarios, rounds, next, &run.outcome.brief())?;
            runs[next.index].push(run);
            Ok(())
        })?;
        if next.round <= rounds {
            let scenario = scenarios[next.index];
            progress(scenarios, rounds, next, "FAILED")?;
            eprintln!(
                "\nxproc: round {} `{}` failed: {reason}; going on",
                next.round, scenario.key
            );
            failures.push(Failure {
                round: next.round,
                key: scenario.key,
                reason,
            });
            next.advance(scenarios.len());
        }
    }
    Ok(Results { runs, failures })
}

/// Prints a run's figure on the progress line of its round.
fn progress(scenarios: &[&Scenario], rounds: usize, at: Position, figure: &str) -> io::Result<()> {
    let round = at.round;
    if at.index == 0 {
        print!("round {round:>2}/{rounds} (ns; M msg/s):");
    }
    print!(" {} {figure}", scenarios[at.index].short);
    if at.index + 1 == scenarios.len() {
        println!();
    }
    io::stdout().flush()
}

/// Starts a leader at `next` and hands each run it reports to `record`
/// (advancing `next`), until it ends; returns why it ended early (ignored
/// once every round ran).
fn lead_from(
    keys: &[&str],
    rounds: usize,
    next: &mut Position,
    mut record: impl FnMut(Position, Run) -> Result<(), Box<dyn Error>>,
) -> Result<String, Box<dyn Error>> {
    let mut child = Command::new(env::current_exe()?)
        .args([
            LEADER_COMMAND,
            &rounds.to_string(),
            &next.round.to_string(),
            &next.index.to_string(),
            &keys.join(","),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|err| format!("starting the leader process: {err}"))?;
    let stdout = child.stdout.take().ok_or("the leader's stdout")?;
    let (lines, received) = mpsc::channel();
    let reader = thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let mut reason = None;
    loop {
        match received.recv_timeout(RUN_TIMEOUT + MARGIN) {
            Ok(line) => {
                let msg: Value = serde_json::from_str(&line)
                    .map_err(|err| format!("leader said `{line}`: {err}"))?;
                if let Some(failed) = msg.get("failed") {
                    reason = Some(failed.as_str().unwrap_or_default().to_owned());
                    continue;
                }
                record(*next, Run::from_json(&msg)?)?;
                next.advance(keys.len());
            }
            Err(RecvTimeoutError::Timeout) => {
                reason = Some(format!(
                    "the leader said nothing for {:?}; killed",
                    RUN_TIMEOUT + MARGIN
                ));
                let _ = child.kill();
            }
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    let status = child.wait()?;
    let _ = reader.join();
    Ok(reason.unwrap_or_else(|| format!("the leader process ended ({status})")))
}

/// The leader process: `xproc-leader <rounds> <from round> <from index>
/// <keys>`. Writes a JSON line per run, and one `{"failed": why}` before it
/// ends early.
pub fn leader_main(mut args: impl Iterator<Item = String>) -> Result<(), Box<dyn Error>> {
    let mut number = |what: &str| -> Result<usize, Box<dyn Error>> {
        let arg = args.next().ok_or_else(|| format!("missing {what}"))?;
        Ok(arg.parse()?)
    };
    let rounds = number("rounds")?;
    let mut at = Position {
        round: number("round")?,
        index: number("index")?,
    };
    let keys: Vec<String> = args
        .next()
        .ok_or("missing scenario keys")?
        .split(',')
        .map(str::to_owned)
        .collect();
    let scenarios = scenarios::selected(&keys)?;
    let result = lead(&scenarios, rounds, &mut at);
    if let Err(err) = &result {
        println!("{}", json!({ "failed": err.to_string() }));
    }
    result
}

fn lead(scenarios: &[&Scenario], rounds: usize, at: &mut Position) -> Result<(), Box<dyn Error>> {
    // Peer 0 runs the probe beside every run.
    let peers = scenarios.iter().map(|s| s.peers).max().unwrap_or(0).max(1);
    pin::to_core(LEADER_CORE);
    let mut leader = Leader::spawn(peers)?;
    while at.round <= rounds {
        let scenario = scenarios[at.index];
        let probe = line::probe(&mut leader)?;
        let before = voluntary_switches()?;
        let mut outcome = (scenario.lead)(&mut leader, scenario.key)?;
        if let Outcome::Latency(latency) = &mut outcome {
            let slept = voluntary_switches()? - before + leader.peer_sleeps();
            latency.sleeps = Some(slept as f64 / latency.round_trips.max(1) as f64);
        }
        let run = Run {
            round: at.round,
            outcome,
            probe,
        };
        println!("{}", run.to_json());
        at.advance(scenarios.len());
    }
    leader.shutdown()
}

#[cfg(test)]
mod tests {
    use super::Position;

    #[test]
    fn positions_run_through_rounds() {
        let mut at = Position { round: 1, index: 0 };
        let mut seen = Vec::new();
        while at.round <= 2 {
            seen.push((at.round, at.index));
            at.advance(3);
        }
        assert_eq!(seen, [(1, 0), (1, 1), (1, 2), (2, 0), (2, 1), (2, 2)]);
    }
}
