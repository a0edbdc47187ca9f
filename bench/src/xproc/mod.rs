//! `xproc`: this crate between two processes, against the physical limit and
//! the other ways two processes talk.
//!
//! The leader (this process, core 0) starts a peer (this binary again,
//! core 1; see [`peer`]). Every round runs every scenario once, in the order
//! of [`SCENARIOS`], and beside each run a short raw cache-line ping-pong
//! (the probe, [`line`]) records the state of the machine, which changes
//! speed on its own. Each metric is the median over rounds of per-run
//! figures: per-run p50 for round trips (with the medians of per-run p99
//! and p999 beside it), per-run rates for throughput, per-run ns per message
//! for producer costs. Targets compare medians from the same run.
//!
//! What each scenario measures is said in its module: [`line`]
//! (`raw_line_rtt`), [`rtt`] (round trips), [`tput`] (throughput), [`push`]
//! (producer cost).

mod broadcast;
mod fanin;
mod line;
mod peer;
mod push;
mod rtt;
mod scenarios;
mod targets;
mod tput;
mod varlen;
mod watchdog;

use std::{
    error::Error,
    fs,
    io::{self, Write},
    time::Instant,
};

use serde_json::{Value, json};

pub use peer::{PEER_COMMAND, main as peer_main};

use crate::{
    Options, inproc, pin,
    report::{self, Metric, Tails},
    stats::{Percentiles, Summary},
};
use peer::{LEADER_CORE, Leader, PEER_CORE};
use scenarios::Scenario;

const ROUNDS: usize = 11;
const QUICK_ROUNDS: usize = 3;

/// One run's result.
#[derive(Debug, Clone, Copy)]
pub enum Outcome {
    Latency(Latency),
    /// Messages per second.
    Rate(f64),
    Cost(Cost),
    /// ns per message of a stream.
    NsPerMsg(f64),
}

/// One run of round trips, in ns.
#[derive(Debug, Clone, Copy)]
pub struct Latency {
    /// Of the round trips timed one by one.
    pub pct: Percentiles,
    /// Mean of a block of round trips timed as a whole.
    pub block_mean: f64,
}

/// One run of a producer's pushes.
#[derive(Debug, Clone, Copy)]
pub struct Cost {
    pub ns_per_msg: f64,
    /// Pushes that found the ring full, per message.
    pub full_per_msg: f64,
    /// Wakes the producer decided on (the event's epoch moved).
    pub wakes: u64,
    /// Signals found pending on the eventfd afterwards.
    pub signals: u64,
}

impl Outcome {
    /// The figure a metric's median is taken of.
    pub fn figure(&self) -> f64 {
        match self {
            Self::Latency(latency) => latency.pct.p50,
            Self::Rate(rate) => *rate,
            Self::Cost(cost) => cost.ns_per_msg,
            Self::NsPerMsg(ns) => *ns,
        }
    }

    /// For the progress line.
    fn brief(&self) -> String {
        match self {
            Self::Latency(latency) => format!("{:.0}", latency.pct.p50),
            Self::Rate(rate) => format!("{:.2}M", rate / 1e6),
            Self::Cost(cost) => format!("{:.1}", cost.ns_per_msg),
            Self::NsPerMsg(ns) => format!("{ns:.1}"),
        }
    }
}

/// One run and the probe beside it.
#[derive(Debug, Clone, Copy)]
pub struct Run {
    outcome: Outcome,
    probe: Latency,
}

/// Runs the interleaved rounds, prints the table and the targets, and writes
/// the JSON file if asked.
pub fn run(opts: &Options) -> Result<(), Box<dyn Error>> {
    let started = Instant::now();
    let rounds = if opts.quick { QUICK_ROUNDS } else { ROUNDS };
    let scenarios = scenarios::selected(&opts.only)?;
    // Peer 0 runs the probe beside every run.
    let peers = scenarios.iter().map(|s| s.peers).max().unwrap_or(0).max(1);
    let load_before = load_average();
    println!(
        "xproc: 64-byte messages, leader on core {LEADER_CORE}, peer process on core \
         {PEER_CORE}, {rounds} rounds of {} scenarios, a raw 1-line probe ({} round trips) \
         beside each run; load average {load_before}",
        scenarios.len(),
        line::PROBE.samples,
    );
    pin::to_core(LEADER_CORE);
    let mut leader = Leader::spawn(peers)?;
    let mut runs: Vec<Vec<Run>> = vec![Vec::with_capacity(rounds); scenarios.len()];
    for round in 1..=rounds {
        print!("round {round:>2}/{rounds} (ns; M msg/s):");
        for (scenario, runs) in scenarios.iter().zip(&mut runs) {
            let Outcome::Latency(probe) = line::probe(&mut leader)? else {
                unreachable!("the probe measures round trips");
            };
            let outcome = (scenario.lead)(&mut leader, scenario.key)?;
            print!(" {} {}", scenario.short, outcome.brief());
            io::stdout().flush()?;
            runs.push(Run { outcome, probe });
        }
        println!();
    }
    leader.shutdown()?;
    let elapsed = started.elapsed().as_secs_f64();
    let load_after = load_average();

    let metrics: Vec<Metric> = scenarios
        .iter()
        .zip(&runs)
        .map(|(scenario, runs)| metric(scenario, runs))
        .collect();
    report::print_percentile_table(
        &metrics,
        &[
            ("block mean (ns)", "block_mean"),
            ("probe p50 (ns)", "probe_p50"),
        ],
    );
    print_wakes(&metrics);
    let targets = targets::check(&metrics, &runs);
    println!(
        "\nxproc: {rounds} rounds in {elapsed:.1} s; load average before {load_before}, \
         after {load_after}"
    );

    if let Some(path) = &opts.json {
        let meta = json!({
            "date": report::utc_now(),
            "command": "xproc",
            "rounds": rounds,
            "quick": opts.quick,
            "scenarios": scenarios.iter().map(|s| s.key).collect::<Vec<_>>(),
            "duration_s": elapsed,
            "load_average_before": load_before,
            "load_average_after": load_after,
            "cores": { "leader": LEADER_CORE, "peer": PEER_CORE },
            "message_bytes": size_of::<crate::loops::Msg>(),
            "plans": {
                "fast": rtt::FAST.to_json(),
                "mixed": rtt::MIXED.to_json(),
                "slow": rtt::SLOW.to_json(),
                "probe": line::PROBE.to_json(),
            },
            "tput_messages": inproc::MESSAGES,
            "tput_capacity": inproc::CAPACITY,
            "rtt_capacity": rtt::RING_CAPACITY,
            "latency_fields": "median: median over runs of per-run p50; p99, p999: medians \
                over runs of per-run p99 and p999; block_mean: median over runs of the mean \
                of a block of round trips timed as a whole; probe_p50: median over runs of \
                the p50 of the raw 1-line probe beside each run; per_run and probe_per_run: \
                one figure per run, in round order",
            "eventfd_rtt_payload": "64 bytes each way through a shared line, written before \
                the signal and read after the wake-up",
            "targets": targets,
        });
        report::write_json(path, &metrics, meta)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// Summarises a scenario's runs.
fn metric(scenario: &Scenario, runs: &[Run]) -> Metric {
    let per_run: Vec<f64> = runs.iter().map(|run| run.outcome.figure()).collect();
    let probes: Vec<f64> = runs.iter().map(|run| run.probe.pct.p50).collect();
    let mut metric = Metric::new(
        scenario.key,
        scenario.label,
        scenario.unit,
        Summary::of(&per_run),
    );
    let extra = &mut metric.extra;
    extra.insert("per_run".into(), json!(per_run));
    extra.insert("probe_p50".into(), json!(Summary::of(&probes).median));
    extra.insert("probe_per_run".into(), json!(probes));
    let latencies: Vec<Latency> = runs
        .iter()
        .filter_map(|run| match run.outcome {
            Outcome::Latency(latency) => Some(latency),
            _ => None,
        })
        .collect();
    if !latencies.is_empty() {
        let median = |pick: fn(&Latency) -> f64| {
            Summary::of(&latencies.iter().map(pick).collect::<Vec<_>>()).median
        };
        metric.tails = Some(Tails {
            p99: median(|l| l.pct.p99),
            p999: median(|l| l.pct.p999),
        });
        metric
            .extra
            .insert("block_mean".into(), json!(median(|l| l.block_mean)));
        let blocks: Vec<f64> = latencies.iter().map(|l| l.block_mean).collect();
        metric
            .extra
            .insert("block_mean_per_run".into(), json!(blocks));
    }
    let costs: Vec<Cost> = runs
        .iter()
        .filter_map(|run| match run.outcome {
            Outcome::Cost(cost) => Some(cost),
            _ => None,
        })
        .collect();
    if !costs.is_empty() {
        let extra = &mut metric.extra;
        extra.insert(
            "wakes".into(),
            json!(costs.iter().map(|c| c.wakes).sum::<u64>()),
        );
        extra.insert(
            "eventfd_signals".into(),
            json!(costs.iter().map(|c| c.signals).sum::<u64>()),
        );
        let full: Vec<f64> = costs.iter().map(|c| c.full_per_msg).collect();
        extra.insert("full_per_msg".into(), json!(Summary::of(&full).median));
    }
    metric
}

fn find<'m>(metrics: &'m [Metric], key: &str) -> Option<&'m Metric> {
    metrics.iter().find(|m| m.key == key)
}

/// Prints the producer-cost details: full rings and wakes.
fn print_wakes(metrics: &[Metric]) {
    println!();
    for key in ["push_ns", "push_notify_ns"] {
        let Some(m) = find(metrics, key) else {
            continue;
        };
        let field = |name: &str| m.extra.get(name).cloned().unwrap_or(Value::Null);
        println!(
            "{key}: ring found full {:.3} times per message (median); wakes {} (event epoch), \
             eventfd signals {}, over all runs: should be 0 with the consumer awake",
            m.extra_f64("full_per_msg").unwrap_or(f64::NAN),
            field("wakes"),
            field("eventfd_signals"),
        );
    }
}

/// The 1, 5 and 15 minute load averages, as `/proc/loadavg` has them.
fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|_| "unknown".to_owned())
}
