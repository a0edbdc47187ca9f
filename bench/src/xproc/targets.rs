//! The targets: ratios of two metrics' medians from the same run, each with
//! the bound an issue set.

use serde_json::{Map, Value, json};

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
    // Broadcast, records, fan-in (issue 11).
    at_most("broadcast_rtt", "spsc_rtt", 1.2, "issue 11"),
    at_most("varlen_rtt", "spsc_rtt", 1.2, "issue 11"),
    at_least("broadcast_tput_r4", "spsc_tput", 0.8, "issue 11"),
    at_least("varlen_tput_64", "uds_tput", 20.0, "issue 11"),
    at_most("varlen_ns_42", "spsc_ns_42", 1.5, "issue 11"),
    // Blocking and producer cost.
    at_most("spsc_blocking_rtt", "eventfd_rtt", 1.1, "issue 3"),
    at_most("async_rtt", "spsc_blocking_rtt", 1.3, "issue 13"),
    at_most("push_notify_ns", "push_ns", 1.1, "issue 3"),
];

/// Prints the targets as a table: each ratio of medians, its bound, met or
/// missed, with the median of per-round ratios (rounds where both ran) and
/// the ratio of block means beside it; a target one of whose metrics did
/// not run (or failed in every round) is listed as not measured. Returns
/// them for the JSON.
pub fn check(metrics: &[Metric]) -> Vec<Value> {
    let find = |key: &str| metrics.iter().find(|m| m.key == key);
    let width = TARGETS
        .iter()
        .map(|t| t.numerator.len() + t.denominator.len() + 3)
        .max()
        .unwrap_or(0);
    println!("\ntargets (ratios of medians from this run):");
    println!(
        "  {:<width$}  {:>8}  {:>9}  {:<8}  {:>10}  {:>10}  source",
        "ratio", "value", "target", "verdict", "per-round", "block means"
    );
    let mut out = Vec::new();
    for t in TARGETS {
        let name = format!("{} / {}", t.numerator, t.denominator);
        let bound = format!("{} {}", if t.at_most { "<=" } else { ">=" }, t.bound);
        let (Some(num), Some(den)) = (find(t.numerator), find(t.denominator)) else {
            println!(
                "  {name:<width$}  {:>8}  {bound:>9}  {:<8}  {:>10}  {:>10}  {}",
                "-", "not run", "-", "-", t.source
            );
            continue;
        };
        let ratio = num.summary.median / den.summary.median;
        let met = if t.at_most {
            ratio <= t.bound
        } else {
            ratio >= t.bound
        };
        let paired = paired_median(num, den);
        let blocks = match (num.extra_f64("block_mean"), den.extra_f64("block_mean")) {
            (Some(n), Some(d)) => Some(n / d),
            _ => None,
        };
        let cell = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.3}"));
        println!(
            "  {name:<width$}  {ratio:>8.3}  {bound:>9}  {:<8}  {:>10}  {:>10}  {}",
            if met { "met" } else { "MISSED" },
            cell(paired),
            cell(blocks),
            t.source,
        );
        let mut entry = Map::new();
        entry.insert("numerator".into(), json!(t.numerator));
        entry.insert("denominator".into(), json!(t.denominator));
        entry.insert("ratio".into(), json!(ratio));
        entry.insert("paired_median".into(), json!(paired));
        entry.insert("block_mean_ratio".into(), json!(blocks));
        entry.insert("bound".into(), json!(t.bound));
        entry.insert("at_most".into(), json!(t.at_most));
        entry.insert("source".into(), json!(t.source));
        entry.insert("met".into(), json!(met));
        out.push(Value::Object(entry));
    }
    out
}

/// The median over rounds where both ran of `num`'s figure over `den`'s.
fn paired_median(num: &Metric, den: &Metric) -> Option<f64> {
    let figures = |m: &Metric| -> Vec<(u64, f64)> {
        let rounds = m.extra.get("rounds").and_then(Value::as_array);
        let per_run = m.extra.get("per_run").and_then(Value::as_array);
        rounds
            .into_iter()
            .flatten()
            .zip(per_run.into_iter().flatten())
            .filter_map(|(r, v)| Some((r.as_u64()?, v.as_f64()?)))
            .collect()
    };
    let dens = figures(den);
    let ratios: Vec<f64> = figures(num)
        .into_iter()
        .filter_map(|(round, n)| {
            let (_, d) = dens.iter().find(|(r, _)| *r == round)?;
            Some(n / d)
        })
        .collect();
    (!ratios.is_empty()).then(|| Summary::of(&ratios).median)
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
