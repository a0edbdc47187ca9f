//! `xproc`: this crate between two processes, against the physical limit and
//! the other ways two processes talk.
//!
//! This process supervises a leader process (this binary again, core 0; see
//! [`rounds`]), which starts the peers (core 1; see [`peer`]). Every round
//! runs every scenario once, in the order of [`scenarios::GROUPS`], and
//! beside each run a short raw cache-line ping-pong (the probe,
//! [`line`](mod@line)) records the state of the machine, which changes
//! speed on its own. Each metric is the median over rounds of per-run
//! figures: per-run p50 for round trips (with the medians of per-run p99
//! and p999 beside it), per-run rates for throughput, per-run ns per message
//! for producer costs. Targets compare medians from the same run. A run
//! that fails (an error, a dead peer, past the watchdog's time) is reported
//! as failed and the rounds go on.
//!
//! What each scenario measures is said in its module: [`line`](mod@line)
//! (`raw_line_rtt`), [`rtt`] (round trips), [`tput`] (throughput), [`push`]
//! (producer cost), [`broadcast`], [`varlen`] (the record ring),
//! [`ice_tput`] (iceoryx2 streams) and
//! [`fanin`] (lanes). [`chart`] draws the SVG beside the JSON.

mod broadcast;
mod chart;
mod fanin;
mod ice_tput;
mod line;
mod peer;
mod push;
mod rounds;
mod rtt;
mod scenarios;
mod targets;
mod tokio;
mod tput;
mod varlen;
mod watchdog;

use std::{error::Error, fs, time::Instant};

use serde_json::{Value, json};

pub use peer::{PEER_COMMAND, main as peer_main};
pub use rounds::{LEADER_COMMAND, leader_main};

use crate::{
    Options, inproc,
    report::{self, Metric, Tails},
    stats::{Percentiles, Summary},
};
use peer::{LEADER_CORE, PEER_CORE};
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
    /// Round trips in all, the warm-up's included.
    pub round_trips: u64,
    /// Times the two sides slept (their voluntary context switches, both
    /// processes together) per round trip, over the whole run: 2 when every
    /// wait of a blocking round trip slept, 0 when both sides spun. Set by
    /// the round's leader around the scenario; `None` for the probe.
    pub sleeps: Option<f64>,
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
    /// From 1.
    round: usize,
    outcome: Outcome,
    probe: Latency,
}

impl Latency {
    fn to_json(self) -> Value {
        let Percentiles { p50, p99, p999 } = self.pct;
        json!({
            "p50": p50,
            "p99": p99,
            "p999": p999,
            "block_mean": self.block_mean,
            "round_trips": self.round_trips,
            "sleeps": self.sleeps,
        })
    }

    fn from_json(v: &Value) -> Result<Self, Box<dyn Error>> {
        Ok(Self {
            pct: Percentiles {
                p50: number(v, "p50")?,
                p99: number(v, "p99")?,
                p999: number(v, "p999")?,
            },
            block_mean: number(v, "block_mean")?,
            round_trips: peer::field_u64(v, "round_trips")?,
            sleeps: v["sleeps"].as_f64(),
        })
    }
}

impl Outcome {
    fn to_json(self) -> Value {
        match self {
            Self::Latency(latency) => json!({ "latency": latency.to_json() }),
            Self::Rate(rate) => json!({ "rate": rate }),
            Self::Cost(c) => json!({ "cost": {
                "ns_per_msg": c.ns_per_msg,
                "full_per_msg": c.full_per_msg,
                "wakes": c.wakes,
                "signals": c.signals,
            }}),
            Self::NsPerMsg(ns) => json!({ "ns_per_msg": ns }),
        }
    }

    fn from_json(v: &Value) -> Result<Self, Box<dyn Error>> {
        if let Some(latency) = v.get("latency") {
            return Ok(Self::Latency(Latency::from_json(latency)?));
        }
        if let Some(c) = v.get("cost") {
            let count = |key| peer::field_u64(c, key);
            return Ok(Self::Cost(Cost {
                ns_per_msg: number(c, "ns_per_msg")?,
                full_per_msg: number(c, "full_per_msg")?,
                wakes: count("wakes")?,
                signals: count("signals")?,
            }));
        }
        if v.get("rate").is_some() {
            return Ok(Self::Rate(number(v, "rate")?));
        }
        Ok(Self::NsPerMsg(number(v, "ns_per_msg")?))
    }
}

impl Run {
    /// The line the leader process writes for the supervisor.
    fn to_json(self) -> Value {
        json!({
            "round": self.round,
            "outcome": self.outcome.to_json(),
            "probe": self.probe.to_json(),
        })
    }

    fn from_json(v: &Value) -> Result<Self, Box<dyn Error>> {
        Ok(Self {
            round: usize::try_from(peer::field_u64(v, "round")?)?,
            outcome: Outcome::from_json(&v["outcome"])?,
            probe: Latency::from_json(&v["probe"])?,
        })
    }
}

/// A number field of a JSON object.
fn number(v: &Value, key: &str) -> Result<f64, Box<dyn Error>> {
    v[key]
        .as_f64()
        .ok_or_else(|| format!("`{key}` missing from {v}").into())
}

/// Runs the interleaved rounds (in a leader process, restarted after a
/// failed run: see [`rounds`]), prints the tables and the targets, and
/// writes the JSON file and the chart if asked.
pub fn run(opts: &Options) -> Result<(), Box<dyn Error>> {
    let started = Instant::now();
    let rounds = if opts.quick { QUICK_ROUNDS } else { ROUNDS };
    let scenarios = scenarios::selected(&opts.only)?;
    let load_before = load_average();
    println!(
        "xproc: leader on core {LEADER_CORE}, peer processes on core {PEER_CORE}, {rounds} \
         rounds of {} scenarios, a raw 1-line probe ({} round trips) beside each run; load \
         average {load_before}",
        scenarios.len(),
        line::PROBE.samples,
    );
    let rounds::Results { runs, failures } = rounds::supervise(&scenarios, rounds)?;
    let elapsed = started.elapsed().as_secs_f64();
    let load_after = load_average();

    let metrics: Vec<Metric> = scenarios
        .iter()
        .zip(&runs)
        .filter(|(_, runs)| !runs.is_empty())
        .map(|(scenario, runs)| {
            let mut metric = metric(scenario, runs);
            let failed = failures.iter().filter(|f| f.key == scenario.key).count();
            metric.extra.insert("failed_runs".into(), json!(failed));
            metric
        })
        .collect();
    report::print_percentile_table(
        &metrics,
        &[
            ("block mean (ns)", "block_mean"),
            ("probe p50 (ns)", "probe_p50"),
            ("sleeps/rtt", "sleeps_per_rtt"),
            ("sleeps/rtt min", "sleeps_per_rtt_min"),
            ("failed runs", "failed_runs"),
        ],
    );
    print_wakes(&metrics);
    let targets = targets::check(&metrics);
    if !failures.is_empty() {
        println!("\nfailed runs:");
        for f in &failures {
            println!("  round {} {}: {}", f.round, f.key, f.reason);
        }
    }
    println!(
        "\nxproc: {rounds} rounds in {elapsed:.1} s; load average before {load_before}, \
         after {load_after}"
    );

    if let Some(path) = &opts.json {
        let meta = json!({
            "date": report::utc_now(),
            "command": "xproc",
            "machine": machine(),
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
                one figure per run, in round order (rounds: the round of each); \
                sleeps_per_rtt, its min and per_run: voluntary context switches of both \
                processes during a run per round trip of it (2: every wait slept; 0: \
                both sides spun)",
            "eventfd_rtt_payload": "64 bytes each way through a shared line, written before \
                the signal and read after the wake-up",
            "targets": targets,
            "failures": failures.iter().map(|f| json!({
                "round": f.round, "scenario": f.key, "reason": f.reason,
            })).collect::<Vec<_>>(),
        });
        report::write_json(path, &metrics, meta.clone())?;
        println!("wrote {}", path.display());
        let svg = path.with_extension("svg");
        let title = format!(
            "ipc-primitives bench xproc, {}, {}; {rounds} rounds",
            meta["date"].as_str().unwrap_or_default(),
            meta["machine"].as_str().unwrap_or_default(),
        );
        chart::write(&svg, &metrics, &title)?;
        println!("wrote {}", svg.display());
    }
    Ok(())
}

/// Summarises a scenario's runs.
fn metric(scenario: &Scenario, runs: &[Run]) -> Metric {
    let per_run: Vec<f64> = runs.iter().map(|run| run.outcome.figure()).collect();
    let probes: Vec<f64> = runs.iter().map(|run| run.probe.pct.p50).collect();
    let rounds: Vec<usize> = runs.iter().map(|run| run.round).collect();
    let mut metric = Metric::new(
        scenario.key,
        scenario.label,
        scenario.unit,
        Summary::of(&per_run),
    );
    let extra = &mut metric.extra;
    extra.insert("per_run".into(), json!(per_run));
    extra.insert("rounds".into(), json!(rounds));
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
        let sleeps: Vec<f64> = latencies.iter().filter_map(|l| l.sleeps).collect();
        if !sleeps.is_empty() {
            let summary = Summary::of(&sleeps);
            let extra = &mut metric.extra;
            extra.insert("sleeps_per_rtt".into(), json!(summary.median));
            extra.insert("sleeps_per_rtt_min".into(), json!(summary.min));
            extra.insert("sleeps_per_rtt_per_run".into(), json!(sleeps));
        }
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

/// The CPU's model name and the number of CPUs, as `/proc/cpuinfo` has them.
fn machine() -> String {
    let info = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = info
        .lines()
        .find_map(|line| line.strip_prefix("model name")?.split_once(':'))
        .map_or("unknown CPU", |(_, name)| name.trim());
    let cpus = info.lines().filter(|l| l.starts_with("processor")).count();
    format!("{model}, {cpus} CPUs")
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

#[cfg(test)]
mod tests {
    use super::{Latency, Outcome, Percentiles};

    #[test]
    fn latencies_keep_their_sleeps_through_json() {
        let latency = Latency {
            pct: Percentiles {
                p50: 140.0,
                p99: 240.0,
                p999: 400.0,
            },
            block_mean: 105.5,
            round_trips: 22_500,
            sleeps: Some(2.0),
        };
        for sleeps in [Some(2.0), None] {
            let run = Outcome::Latency(Latency { sleeps, ..latency });
            let Outcome::Latency(back) = Outcome::from_json(&run.to_json()).unwrap() else {
                panic!("a latency came back as another outcome");
            };
            assert_eq!((back.sleeps, back.round_trips), (sleeps, 22_500));
            assert_eq!(back.pct.p999, 400.0);
        }
    }
}
