//! `--svg`: latency and throughput over time for a run (pooled beside
//! unpooled with `--compare-unpooled`), or throughput and latency per pool size
//! for a sweep, drawn by the charts the benchmark report uses.

use std::path::Path;

use tidepool_chart::{ChartError, LineChart, Series, SeriesLabelPosition, Spread, draw_stacked};

use super::summary::RunReport;
use super::sweep::SweepReport;

/// At most this many labelled ticks on a time axis.
const TIME_LABELS: usize = 12;

fn point(v: f64) -> Option<Spread> {
    (v > 0.0 && v.is_finite()).then(|| Spread::one(v))
}

/// Seconds as axis labels, every k-th one shown.
fn time_ticks(run: &RunReport) -> Vec<String> {
    let n = run.timeline.len();
    let every = n.div_ceil(TIME_LABELS).max(1);
    run.timeline
        .iter()
        .enumerate()
        .map(|(i, p)| {
            if i % every == 0 || i + 1 == n {
                format!("{:.0}", p.t_s)
            } else {
                String::new()
            }
        })
        .collect()
}

/// Latency and throughput per second of `runs` (sharing the first run's
/// time axis), into `path`.
///
/// # Errors
/// When there is nothing to draw or the file cannot be written.
pub fn over_time(runs: &[&RunReport], path: &Path) -> Result<(), ChartError> {
    let Some(first) = runs.first() else {
        return Err("no run to draw".into());
    };
    let len = runs.iter().map(|r| r.timeline.len()).max().unwrap_or(0);
    let mut ticks = time_ticks(first);
    ticks.resize(len, String::new());
    let name = |r: &RunReport, what: &str| {
        if runs.len() > 1 {
            format!("{} {what}", r.label)
        } else {
            what.to_owned()
        }
    };
    let mut latency = Vec::new();
    let mut throughput = Vec::new();
    type Pick = fn(&super::engine::Point) -> f64;
    let mut figures: Vec<(&str, Pick)> = vec![("p50", |p| p.p50_ms), ("p99", |p| p.p99_ms)];
    if runs.len() == 1 {
        figures.push(("max", |p| p.max_ms));
    }
    for r in runs {
        for &(what, pick) in &figures {
            latency.push(Series {
                name: name(r, what),
                points: r.timeline.iter().map(|p| point(pick(p))).collect(),
            });
        }
        throughput.push(Series {
            name: name(r, "requests/s"),
            points: r.timeline.iter().map(|p| point(p.throughput)).collect(),
        });
    }
    draw_stacked(
        &[
            LineChart {
                title: "latency per second".into(),
                x_desc: "seconds".into(),
                x_ticks: ticks.clone(),
                y_desc: "ms (log)".into(),
                series: latency,
                legend: if runs.len() == 1 {
                    SeriesLabelPosition::UpperRight
                } else {
                    SeriesLabelPosition::MiddleRight
                },
            },
            LineChart {
                title: "throughput per second".into(),
                x_desc: "seconds".into(),
                x_ticks: ticks,
                y_desc: "requests/s (log)".into(),
                series: throughput,
                legend: SeriesLabelPosition::LowerRight,
            },
        ],
        path,
    )
}

/// Throughput and latency per pool size, into `path`.
///
/// # Errors
/// When there is nothing to draw or the file cannot be written.
pub fn sweep(s: &SweepReport, path: &Path) -> Result<(), ChartError> {
    let ticks: Vec<String> = s
        .steps
        .iter()
        .map(|r| {
            r.pool
                .as_ref()
                .map_or_else(|| r.label.clone(), |p| p.max_size.to_string())
        })
        .collect();
    let series = |name: &str, pick: fn(&RunReport) -> f64| Series {
        name: name.to_owned(),
        points: s.steps.iter().map(|r| point(pick(r))).collect(),
    };
    draw_stacked(
        &[
            LineChart {
                title: format!(
                    "throughput per pool size at {:.0} requests/s offered",
                    s.rate
                ),
                x_desc: "max_size".into(),
                x_ticks: ticks.clone(),
                y_desc: "requests/s (log)".into(),
                series: vec![series("throughput", |r| r.throughput)],
                legend: SeriesLabelPosition::LowerRight,
            },
            LineChart {
                title: "latency per pool size (from intended start)".into(),
                x_desc: "max_size".into(),
                x_ticks: ticks,
                y_desc: "ms (log)".into(),
                series: vec![
                    series("p99", |r| r.latency_ms.p99),
                    series("p90", |r| r.latency_ms.p90),
                    series("p50", |r| r.latency_ms.p50),
                ],
                legend: SeriesLabelPosition::UpperRight,
            },
        ],
        path,
    )
}
