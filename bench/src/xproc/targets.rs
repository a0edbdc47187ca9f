//! The targets: ratios of two metrics' medians from the same run, each with
//! the bound an issue set.

use serde_json::{Map, Value, json};

use super::Run;
use crate::{report::Metric, stats::Summary};

/// A target: `numerator / denominator` must be at most (or at least)
/// `bound`.
struct Target {
    numerator: &'static str,
    denominator: &'static str,
    at_most: bool,
    bound: f64,
    /// Where the bound comes from.
    source: &'static str,
}

const fn at_most(
    numerator: &'static str,
    denominator: &'static str,
    bound: f64,
    source: &'static str,
) -> Target {
    Target {
        numerator,
        denominator,
        at_most: true,
        bound,
        source,
    }
}

const fn at_least(
    numerator: &'static str,
    denominator: &'static str,
    bound: f64,
    source: &'static str,
) -> Target {
    Target {
        numerator,
        denominator,
        at_most: false,
        bound,
        source,
    }
}

const TARGETS: &[Target] = &[
    // One cache-line transfer per small message (issue 12).
    at_most("spsc_rtt_8", "raw_line_rtt", 1.2, "issue 12"),
    at_most("spsc_rtt_56", "raw_line_rtt", 1.3, "issue 12"),
    at_most("spsc_rtt", "raw_payload_rtt", 0.9, "issue 12"),
    at_most("spsc_rtt", "raw_line_rtt", 1.5, "issue 3"),
    at_least("spsc_tput", "rtrb_tput", 1.2, "issue 12"),
    at_least("spsc_tput_8", "rtrb_tput_8", 1.0, "issue 12"),
    at_least("spsc_tput", "uds_tput", 50.0, "issue 3"),
    // Blocking and producer cost.
    at_most("spsc_blocking_rtt", "eventfd_rtt", 1.1, "issue 3"),
    // `async_rtt / spsc_blocking_rtt <= 1.3` (issue 13) goes here with its
    // scenario.
    at_most("push_notify_ns", "push_ns", 1.1, "issue 3"),
];

/// Prints each target whose two metrics ran: its ratio of medians and
/// verdict, with the median of per-round ratios beside it; returns them for
/// the JSON.
pub fn check(metrics: &[Metric], runs: &[Vec<Run>]) -> Vec<Value> {
    let index = |key: &str| metrics.iter().position(|m| m.key == key);
    println!("\ntargets (ratios of medians from this run):");
    let mut out = Vec::new();
    for t in TARGETS {
        let (Some(n), Some(d)) = (index(t.numerator), index(t.denominator)) else {
            continue;
        };
        let (num, den) = (&metrics[n], &metrics[d]);
        let ratio = num.summary.median / den.summary.median;
        let met = if t.at_most {
            ratio <= t.bound
        } else {
            ratio >= t.bound
        };
        let per_round: Vec<f64> = runs[n]
            .iter()
            .zip(&runs[d])
            .map(|(n, d)| n.outcome.figure() / d.outcome.figure())
            .collect();
        let paired = Summary::of(&per_round).median;
        let mut entry = Map::new();
        entry.insert("ratio".into(), json!(ratio));
        entry.insert("paired_median".into(), json!(paired));
        let mut line = format!(
            "  {} / {} = {ratio:.3}x (target {} {}x, {}): {}; median of per-round ratios \
             {paired:.3}x",
            t.numerator,
            t.denominator,
            if t.at_most { "<=" } else { ">=" },
            t.bound,
            t.source,
            if met { "met" } else { "NOT met" },
        );
        if let (Some(n), Some(d)) = (num.extra_f64("block_mean"), den.extra_f64("block_mean")) {
            line += &format!("; block means {:.3}x", n / d);
            entry.insert("block_mean_ratio".into(), json!(n / d));
        }
        println!("{line}");
        entry.insert("numerator".into(), json!(t.numerator));
        entry.insert("denominator".into(), json!(t.denominator));
        entry.insert("bound".into(), json!(t.bound));
        entry.insert("at_most".into(), json!(t.at_most));
        entry.insert("source".into(), json!(t.source));
        entry.insert("met".into(), json!(met));
        out.push(Value::Object(entry));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::TARGETS;
    use crate::xproc::scenarios::scenario_by_key;

    #[test]
    fn every_target_compares_two_scenarios() {
        for t in TARGETS {
            for key in [t.numerator, t.denominator] {
                assert!(scenario_by_key(key).is_some(), "no scenario `{key}`");
            }
        }
    }
}
