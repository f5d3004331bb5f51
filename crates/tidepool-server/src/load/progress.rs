//! The live progress line on stderr: a bar with elapsed and remaining time
//! (or requests), the last second's throughput and p50 / p99, errors so far
//! and the pool's gauges. Hidden when stderr is not a terminal, so logs and
//! pipes get only the report.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::args::Limit;
use super::engine::Point;

/// What the collector knows at a tick.
#[derive(Debug)]
pub struct Status<'a> {
    /// Since the run started.
    pub elapsed: Duration,
    /// When it stops.
    pub limit: Limit,
    /// Requests so far.
    pub requests: u64,
    /// Failed requests so far.
    pub errors: u64,
    /// The last second.
    pub point: &'a Point,
}

/// The progress display of one run (nothing when hidden).
#[derive(Debug)]
pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// A bar for a run limited by `limit`, labelled `label`; drawn only
    /// when stderr is a terminal.
    pub fn new(label: &str, limit: Limit) -> Self {
        let target = if std::io::stderr().is_terminal() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let (len, template) = match limit {
            Limit::Duration(d) => (
                d.as_millis() as u64,
                "{prefix} [{elapsed_precise} elapsed, {remaining} left] {wide_bar} {msg}",
            ),
            Limit::Requests(n) => (
                n,
                "{prefix} [{elapsed_precise}, eta {eta}] {wide_bar} {pos}/{len} {msg}",
            ),
        };
        let bar = ProgressBar::with_draw_target(Some(len), target);
        let style = ProgressStyle::with_template(template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .with_key(
                "remaining",
                move |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                    let left = state.len().unwrap_or(0).saturating_sub(state.pos());
                    let secs = left.div_ceil(1000);
                    let _ = write!(
                        w,
                        "{:02}:{:02}:{:02}",
                        secs / 3600,
                        secs / 60 % 60,
                        secs % 60
                    );
                },
            );
        bar.set_style(style);
        bar.set_prefix(label.to_owned());
        bar.enable_steady_tick(Duration::from_millis(250));
        Self { bar }
    }

    /// Shows a tick's figures.
    pub fn update(&self, s: &Status<'_>) {
        match s.limit {
            Limit::Duration(d) => self.bar.set_position(s.elapsed.min(d).as_millis() as u64),
            Limit::Requests(_) => self.bar.set_position(s.requests),
        }
        self.bar.set_message(line(s));
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// The figures after the bar.
fn line(s: &Status<'_>) -> String {
    let p = s.point;
    let mut out = format!(
        "{:.0} req/s  p50 {:.2} ms  p99 {:.2} ms  errors {}",
        p.throughput, p.p50_ms, p.p99_ms, s.errors
    );
    if let Some(g) = p.pool {
        out.push_str(&format!(
            "  pool {}/{} in use, {} idle, {} waiting",
            g.in_use, g.max_size, g.idle, g.waiting
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::target::PoolGauges;

    #[test]
    fn the_line_shows_throughput_latency_errors_and_gauges() {
        let point = Point {
            t_s: 3.0,
            requests: 900,
            errors: 1,
            throughput: 901.4,
            p50_ms: 0.5,
            p99_ms: 2.25,
            max_ms: 9.0,
            pool: Some(PoolGauges {
                size: 4,
                in_use: 3,
                idle: 1,
                waiting: 2,
                max_size: 4,
            }),
        };
        let s = Status {
            elapsed: Duration::from_secs(3),
            limit: Limit::Duration(Duration::from_secs(10)),
            requests: 2700,
            errors: 4,
            point: &point,
        };
        assert_eq!(
            line(&s),
            "901 req/s  p50 0.50 ms  p99 2.25 ms  errors 4  pool 3/4 in use, 1 idle, 2 waiting"
        );
    }
}
