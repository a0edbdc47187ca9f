//! Printing results as a table and writing them as JSON.
//!
//! The JSON has the shape
//! `{"metrics": {"<key>": {"median": x, "unit": "...", "runs": n, "min": x, "max": x}}, "meta": {...}}`;
//! latency metrics add `"p99"` and `"p999"`, and a metric may add fields of
//! its own (per-run figures, say).

use std::{
    error::Error,
    fs,
    path::Path,
    time::{SystemTime, UNIX_EPOCH},
};

use serde_json::{Map, Value, json};

use crate::stats::Summary;

/// One measured quantity.
#[derive(Debug)]
pub struct Metric {
    /// Key in the JSON output, e.g. `inproc_spsc_tput`.
    pub key: &'static str,
    /// Name in the printed table.
    pub label: &'static str,
    /// Unit of the summary's figures, e.g. `msg/s`.
    pub unit: &'static str,
    pub summary: Summary,
    /// For latencies: the tails beside the summary's median of per-run p50s.
    pub tails: Option<Tails>,
    /// Further fields of the metric's JSON entry.
    pub extra: Map<String, Value>,
}

/// Latency tails: medians over runs of each run's p99 and p999.
#[derive(Debug, Clone, Copy)]
pub struct Tails {
    pub p99: f64,
    pub p999: f64,
}

impl Metric {
    /// A metric with no tails and no extra fields.
    pub fn new(
        key: &'static str,
        label: &'static str,
        unit: &'static str,
        summary: Summary,
    ) -> Self {
        Self {
            key,
            label,
            unit,
            summary,
            tails: None,
            extra: Map::new(),
        }
    }

    /// The extra field `key` as a number, if it is one.
    pub fn extra_f64(&self, key: &str) -> Option<f64> {
        self.extra.get(key).and_then(Value::as_f64)
    }
}

/// Prints median, min and max of each metric, multiplied by `scale` and
/// labelled `scaled_unit` (e.g. `1e-6` and `M msg/s`).
pub fn print_table(metrics: &[Metric], scale: f64, scaled_unit: &str) {
    let width = metrics.iter().map(|m| m.label.len()).max().unwrap_or(0);
    println!();
    println!(
        "{:<width$}  {:>10}  {:>10}  {:>10}  {:>4}   ({scaled_unit})",
        "", "median", "min", "max", "runs"
    );
    for m in metrics {
        let s = m.summary;
        println!(
            "{:<width$}  {:>10.2}  {:>10.2}  {:>10.2}  {:>4}",
            m.label,
            s.median * scale,
            s.min * scale,
            s.max * scale,
            s.runs
        );
    }
}

/// Prints each metric's median, p99 and p999 (`-` where it has none), unit
/// and runs, then the `extra` fields named in `columns` (header, key):
/// whole numbers as they are, others with one decimal, or two below 10.
/// Rates in msg/s are shown in M msg/s.
pub fn print_percentile_table(metrics: &[Metric], columns: &[(&str, &str)]) {
    let width = metrics.iter().map(|m| m.label.len()).max().unwrap_or(0);
    let cell = |value: Option<f64>| match value {
        None => "-".to_owned(),
        Some(v) if v.fract() == 0.0 => format!("{v:.0}"),
        Some(v) if v.abs() < 10.0 => format!("{v:.2}"),
        Some(v) => format!("{v:.1}"),
    };
    println!();
    print!(
        "{:<width$}  {:>12}  {:>10}  {:>10}  {:<7}  {:>4}",
        "metric", "p50/median", "p99", "p999", "unit", "runs"
    );
    for (header, _) in columns {
        print!("  {header:>15}");
    }
    println!();
    for m in metrics {
        let (scale, unit) = if m.unit == "msg/s" {
            (1e-6, "M msg/s")
        } else {
            (1.0, m.unit)
        };
        let tail = |pick: fn(&Tails) -> f64| m.tails.as_ref().map(pick);
        print!(
            "{:<width$}  {:>12.2}  {:>10}  {:>10}  {unit:<7}  {:>4}",
            m.label,
            m.summary.median * scale,
            cell(tail(|t| t.p99)),
            cell(tail(|t| t.p999)),
            m.summary.runs
        );
        for (_, key) in columns {
            print!("  {:>15}", cell(m.extra_f64(key)));
        }
        println!();
    }
}

/// Writes `metrics` and `meta` (an object describing the run) to `path`.
pub fn write_json(path: &Path, metrics: &[Metric], meta: Value) -> Result<(), Box<dyn Error>> {
    let metrics: Map<String, Value> = metrics
        .iter()
        .map(|m| {
            let s = m.summary;
            let mut entry = json!({
                "median": s.median,
                "unit": m.unit,
                "runs": s.runs,
                "min": s.min,
                "max": s.max,
            });
            if let Some(tails) = m.tails {
                entry["p99"] = json!(tails.p99);
                entry["p999"] = json!(tails.p999);
            }
            for (key, value) in &m.extra {
                entry[key] = value.clone();
            }
            (m.key.to_owned(), entry)
        })
        .collect();
    let doc = json!({ "metrics": metrics, "meta": meta });
    let text = serde_json::to_string_pretty(&doc)?;
    fs::write(path, text + "\n").map_err(|err| format!("writing {}: {err}", path.display()))?;
    Ok(())
}

/// The current UTC time as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn utc_now() -> String {
    utc_timestamp(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    )
}

/// `secs` since the Unix epoch as `YYYY-MM-DDTHH:MM:SSZ`.
fn utc_timestamp(secs: u64) -> String {
    let (days, secs_of_day) = (secs / 86_400, secs % 86_400);
    // Days since 1970-01-01 to a civil date (Howard Hinnant's `civil_from_days`,
    // shifted so eras start on 0000-03-01; all values here are non-negative).
    let z = days + 719_468;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = z / 146_097 * 400 + yoe + u64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs_of_day / 3600,
        secs_of_day / 60 % 60,
        secs_of_day % 60
    )
}

#[cfg(test)]
mod tests {
    use super::utc_timestamp;

    #[test]
    fn timestamps() {
        assert_eq!(utc_timestamp(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc_timestamp(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc_timestamp(1_700_000_000), "2023-11-14T22:13:20Z");
    }
}
