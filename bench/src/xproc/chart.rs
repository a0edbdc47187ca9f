//! The SVG chart written beside the JSON: round-trip percentiles per
//! transport, and throughput per transport, on log scales (the transports
//! span three orders of magnitude).
//!
//! Round trips are one bar per scenario, drawn over each other: p999
//! (lightest), p99, then p50 (darkest), each from the axis, so that each
//! bar's end reads as that percentile. Throughputs are one bar each.

use std::{error::Error, path::Path};

use plotters::{
    coord::{Shift, ranged1d::SegmentedCoord, types::RangedCoordusize},
    prelude::*,
    style::text_anchor::{HPos, Pos, VPos},
};

use crate::report::Metric;

/// Width of the chart, and height per bar and of each panel's frame.
const WIDTH: u32 = 1000;
const ROW: u32 = 24;
const FRAME: u32 = 90;
/// Room for the scenario keys left of the bars.
const LABELS: u32 = 230;

/// The three percentiles' colours, darkest for p50.
const P50: RGBColor = RGBColor(31, 78, 121);
const P99: RGBColor = RGBColor(86, 140, 190);
const P999: RGBColor = RGBColor(180, 205, 230);
const RATE: RGBColor = RGBColor(46, 125, 50);

/// Writes the chart of `metrics` to `path`; `title` says when and where.
pub fn write(path: &Path, metrics: &[Metric], title: &str) -> Result<(), Box<dyn Error>> {
    let latencies: Vec<(&str, [f64; 3])> = metrics
        .iter()
        .filter_map(|m| {
            let tails = m.tails?;
            Some((m.key, [m.summary.median, tails.p99, tails.p999]))
        })
        .collect();
    let rates: Vec<(&str, f64)> = metrics
        .iter()
        .filter(|m| m.unit == "msg/s")
        .map(|m| (m.key, m.summary.median / 1e6))
        .collect();
    let panel = |rows: usize| {
        if rows == 0 {
            0
        } else {
            FRAME + ROW * rows as u32
        }
    };
    let (top, bottom) = (panel(latencies.len()), panel(rates.len()));
    let root = SVGBackend::new(path, (WIDTH, top + bottom + 40)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(title, ("sans-serif", 18))?;
    let (upper, lower) = root.split_vertically(top);
    if !latencies.is_empty() {
        let values = latencies.iter().flat_map(|(_, v)| *v);
        let mut chart = bars(
            &upper,
            "round trip, ns (bars end at p50, p99, p999; log scale)",
            &latencies.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
            values,
        )?;
        let start = chart.x_range().start;
        for (colour, pick) in [(P999, 2), (P99, 1), (P50, 0)] {
            chart
                .draw_series(
                    latencies
                        .iter()
                        .enumerate()
                        .map(|(i, (_, v))| bar(i, latencies.len(), start, v[pick], colour)),
                )?
                .label(["p50", "p99", "p999"][pick])
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 12, y + 5)], colour.filled())
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
    }
    if !rates.is_empty() {
        let mut chart = bars(
            &lower,
            "throughput, M msg/s (log scale)",
            &rates.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
            rates.iter().map(|(_, r)| *r),
        )?;
        let start = chart.x_range().start;
        chart.draw_series(
            rates
                .iter()
                .enumerate()
                .map(|(i, (_, rate))| bar(i, rates.len(), start, *rate, RATE)),
        )?;
        let style =
            TextStyle::from(("sans-serif", 12).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
        chart.draw_series(rates.iter().enumerate().map(|(i, (_, rate))| {
            let row = SegmentValue::CenterOf(rates.len() - 1 - i);
            Text::new(format!(" {}", si(*rate)), (*rate, row), style.clone())
        }))?;
    }
    root.present()?;
    Ok(())
}

type Bars<'a> =
    ChartContext<'a, SVGBackend<'a>, Cartesian2d<LogCoord<f64>, SegmentedCoord<RangedCoordusize>>>;

/// A panel of horizontal bars, one row per key, on a log scale that spans
/// `values`.
fn bars<'a>(
    area: &DrawingArea<SVGBackend<'a>, Shift>,
    caption: &str,
    keys: &[&str],
    values: impl Iterator<Item = f64>,
) -> Result<Bars<'a>, Box<dyn Error>> {
    let (lo, hi) = values
        .filter(|v| v.is_finite() && *v > 0.0)
        .fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    // Room right of the longest bar for its figure; the legend goes top
    // right, beside the shortest round trips (the raw ones, listed first).
    let (lo, hi) = if lo <= hi {
        (lo / 2.0, hi * 4.0)
    } else {
        (0.1, 10.0)
    };
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 15))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(LABELS)
        // `0..=last` is `keys.len()` segments.
        .build_cartesian_2d(
            (lo..hi).log_scale(),
            (0..keys.len().saturating_sub(1)).into_segmented(),
        )?;
    // The first key in the top row.
    let names: Vec<String> = keys.iter().rev().map(|k| (*k).to_owned()).collect();
    chart
        .configure_mesh()
        .disable_y_mesh()
        .label_style(("sans-serif", 12))
        .y_labels(keys.len())
        .x_labels(8)
        .y_label_formatter(&move |v| match v {
            SegmentValue::CenterOf(i) => names.get(*i).cloned().unwrap_or_default(),
            _ => String::new(),
        })
        .x_label_formatter(&|v| si(*v))
        .draw()?;
    Ok(chart)
}

/// `v` in few characters: `250`, `1.5k`, `20M`, `0.3`.
fn si(v: f64) -> String {
    let (scaled, suffix) = match v.abs() {
        a if a >= 1e9 => (v / 1e9, "G"),
        a if a >= 1e6 => (v / 1e6, "M"),
        a if a >= 1e3 => (v / 1e3, "k"),
        _ => (v, ""),
    };
    let digits = format!("{scaled:.2}");
    let trimmed = digits.trim_end_matches('0').trim_end_matches('.');
    format!("{trimmed}{suffix}")
}

/// The bar of the `index`th of `rows` keys (the first at the top) from
/// `start` to `end`.
fn bar(
    index: usize,
    rows: usize,
    start: f64,
    end: f64,
    colour: RGBColor,
) -> Rectangle<(f64, SegmentValue<usize>)> {
    let row = rows - 1 - index;
    let mut rect = Rectangle::new(
        [
            (start, SegmentValue::Exact(row)),
            (end, SegmentValue::Exact(row + 1)),
        ],
        colour.filled(),
    );
    rect.set_margin(3, 3, 0, 0);
    rect
}

#[cfg(test)]
mod tests {
    use super::si;

    #[test]
    fn axis_numbers_are_short() {
        assert_eq!(si(0.30000000000000004), "0.3");
        assert_eq!(si(250.0), "250");
        assert_eq!(si(1500.0), "1.5k");
        assert_eq!(si(20e6), "20M");
    }
}
