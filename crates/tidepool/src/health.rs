//! Health classification and sizing advice, derived from [`Stats`].

use std::time::Duration;

use serde::Serialize;

use crate::config::HealthConfig;
use crate::stats::Stats;

/// Healthy, degraded or unhealthy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    /// Under the degraded utilization and no recent errors.
    Healthy,
    /// Busy or saturated (callers may wait), paused, or some recent errors.
    Degraded,
    /// Failing its callers: closed, or many recent errors (failed connects,
    /// timeouts).
    Unhealthy,
}

impl HealthStatus {
    /// The status in snake case.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Healthy => "healthy",
            Self::Degraded => "degraded",
            Self::Unhealthy => "unhealthy",
        }
    }
}

/// A pool's health with the reasons for it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Health {
    /// The overall verdict: the worst of the checks.
    pub status: HealthStatus,
    /// Why the status is not healthy (empty when healthy).
    pub reasons: Vec<String>,
    /// Things worth a look that do not change the status (leaks seen).
    pub warnings: Vec<String>,
    /// In use / max size now.
    pub utilization: f64,
    /// Errors in the recent window.
    pub recent_errors: u64,
}

impl Health {
    /// Classifies a snapshot under the given thresholds.
    pub fn classify(stats: &Stats, cfg: &HealthConfig) -> Self {
        let g = &stats.gauges;
        let d = &stats.derived;
        let mut status = HealthStatus::Healthy;
        let mut reasons = Vec::new();
        let mut flag = |s: HealthStatus, why: String| {
            status = status.max(s);
            reasons.push(why);
        };
        if g.closed {
            flag(HealthStatus::Unhealthy, "pool is closed".into());
        }
        let pct = d.utilization * 100.0;
        if d.utilization > cfg.saturated_utilization {
            flag(
                HealthStatus::Degraded,
                format!(
                    "saturated: utilization {pct:.0}% is above {:.0}%",
                    cfg.saturated_utilization * 100.0
                ),
            );
        } else if d.utilization >= cfg.degraded_utilization {
            flag(
                HealthStatus::Degraded,
                format!(
                    "utilization {pct:.0}% is at or above {:.0}%",
                    cfg.degraded_utilization * 100.0
                ),
            );
        }
        if g.waiting > 0 {
            flag(
                HealthStatus::Degraded,
                format!("{} caller(s) waiting for a connection", g.waiting),
            );
        }
        if d.recent_errors > cfg.unhealthy_errors {
            flag(
                HealthStatus::Unhealthy,
                format!(
                    "{} errors (failed connects, timeouts) in the last {:.1}s, more than {}",
                    d.recent_errors,
                    d.window.as_secs_f64(),
                    cfg.unhealthy_errors
                ),
            );
        } else if d.recent_errors > 0 {
            flag(
                HealthStatus::Degraded,
                format!(
                    "{} error(s) (failed connects, timeouts) in the last {:.1}s",
                    d.recent_errors,
                    d.window.as_secs_f64()
                ),
            );
        }
        if g.paused {
            flag(HealthStatus::Degraded, "pool is paused".into());
        }
        let mut warnings = Vec::new();
        if stats.counters.leaks > 0 {
            warnings.push(format!(
                "{} connection(s) held past the leak detection threshold",
                stats.counters.leaks
            ));
        }
        Self {
            status,
            reasons,
            warnings,
            utilization: d.utilization,
            recent_errors: d.recent_errors,
        }
    }
}

/// What a recommendation is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AdviceKind {
    /// Too many gets wait for a new connection.
    RaiseMinIdle,
    /// The pool is too small for its load.
    RaiseMaxSize,
    /// The pool is much larger than its load needs.
    LowerMaxSize,
    /// Connects or gets keep failing: the database needs a look.
    CheckDatabase,
    /// Connections are held past the leak threshold.
    FixLeaks,
}

/// One piece of advice.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Recommendation {
    /// What it is about.
    pub kind: AdviceKind,
    /// The advice, with the figures behind it.
    pub message: String,
    /// A suggested new value for the setting concerned, when there is one.
    pub suggested: Option<usize>,
}

/// How the configured size compares with the Little's-law estimate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SizingVerdict {
    /// No gets in the window: nothing to estimate from.
    InsufficientData,
    /// `max_size` is below the estimate.
    Undersized,
    /// `max_size` fits the estimate.
    RightSized,
    /// `max_size` is more than twice the estimate.
    Oversized,
}

/// How many connections the recent load needs, from two views that must
/// both be served: Little's law (connections in use on average = arrival
/// rate × mean hold, over the span in which gets arrived) and the peak
/// (the most connections checked out plus callers waiting at one moment).
/// A burst of five simultaneous requests has a tiny mean and a peak of
/// five; a long steady load has both near its mean.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct SizingEstimate {
    /// Gets per second while gets arrived in the window.
    pub arrival_rate: f64,
    /// Mean hold time over the window, in milliseconds.
    pub mean_hold_ms: f64,
    /// arrival rate × mean hold.
    pub connections_needed: f64,
    /// The most connections checked out at once in the window.
    pub peak_in_use: usize,
    /// The most callers waiting at once in the window.
    pub peak_waiting: usize,
    /// The most connections in use plus callers waiting at one moment.
    pub peak_demand: usize,
    /// Headroom applied to the mean.
    pub headroom: f64,
    /// The larger of ⌈needed × headroom⌉ and the peak demand, at least 1;
    /// raised above the configured size when the pool ran near full on
    /// average or opened overflow connections. Every recommendation about
    /// `max_size` in the same answer uses this number.
    pub recommended_max_size: usize,
    /// The configured `max_size`.
    pub configured_max_size: usize,
    /// The comparison of the two.
    pub verdict: SizingVerdict,
}

/// Recommendations from the live statistics, and the sizing estimate.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Advice {
    /// Recommendations, most important first; empty when all is well.
    pub recommendations: Vec<Recommendation>,
    /// The Little's-law estimate.
    pub sizing: SizingEstimate,
}

/// Fewer gets than this in the window are too few to judge ratios by.
const MIN_SAMPLE: u64 = 20;

impl Advice {
    /// Advises on a snapshot under the given thresholds.
    pub fn from_stats(stats: &Stats, cfg: &HealthConfig) -> Self {
        let g = &stats.gauges;
        let c = &stats.counters;
        let d = &stats.derived;
        let needed = d.arrival_rate * d.mean_hold.as_secs_f64();
        let window_gets =
            (d.arrival_rate * d.active.max(Duration::from_secs(1)).as_secs_f64()).round() as u64;
        let from_mean = ((needed * cfg.sizing_headroom).ceil() as usize).max(1);
        let peak_demand = d.peak_demand;
        let mut recommended = from_mean.max(peak_demand).max(1);
        let mut why = Vec::new();
        if peak_demand > from_mean {
            why.push(format!(
                "at its peak the load asked for {peak_demand} connection(s) at once (in use plus waiting)"
            ));
        } else {
            why.push(format!(
                "Little's law needs {needed:.1} ({:.1}/s × {:.1} ms, +{:.0}% headroom)",
                d.arrival_rate,
                d.mean_hold.as_secs_f64() * 1000.0,
                (cfg.sizing_headroom - 1.0) * 100.0
            ));
        }
        let sustained = d.mean_in_use / g.max_size as f64;
        if window_gets >= MIN_SAMPLE && sustained >= cfg.degraded_utilization {
            recommended = recommended.max(g.max_size + 1);
            why.push(format!(
                "mean utilization was {:.0}% while gets arrived",
                sustained * 100.0
            ));
        }
        if g.max_overflow > 0
            && d.recent_overflow > 0
            && d.recent_overflow * 10 >= window_gets.clamp(1, 50)
        {
            let extra = g.max_overflow.min(d.recent_overflow as usize).max(1);
            recommended = recommended.max(g.max_size + extra);
            why.push(format!(
                "{} overflow connection(s) were opened",
                d.recent_overflow
            ));
        }
        let verdict = if window_gets == 0 && peak_demand == 0 {
            SizingVerdict::InsufficientData
        } else if recommended > g.max_size {
            SizingVerdict::Undersized
        } else if recommended * 2 < g.max_size {
            SizingVerdict::Oversized
        } else {
            SizingVerdict::RightSized
        };
        let sizing = SizingEstimate {
            arrival_rate: d.arrival_rate,
            mean_hold_ms: d.mean_hold.as_secs_f64() * 1000.0,
            connections_needed: needed,
            peak_in_use: d.peak_in_use,
            peak_waiting: d.peak_waiting,
            peak_demand,
            headroom: cfg.sizing_headroom,
            recommended_max_size: recommended,
            configured_max_size: g.max_size,
            verdict,
        };
        let mut out = Vec::new();
        if window_gets > 0 && d.recent_errors * 20 > window_gets.max(MIN_SAMPLE) {
            out.push(Recommendation {
                kind: AdviceKind::CheckDatabase,
                message: format!(
                    "{} failed connects or timeouts against {} gets in the last {:.1}s: check that the database is up and reachable",
                    d.recent_errors,
                    window_gets,
                    d.window.as_secs_f64()
                ),
                suggested: None,
            });
        }
        if verdict == SizingVerdict::Undersized {
            out.push(Recommendation {
                kind: AdviceKind::RaiseMaxSize,
                message: format!(
                    "in the last {:.1}s {}: raise max_size from {} to {recommended}",
                    d.window.as_secs_f64(),
                    why.join("; "),
                    g.max_size
                ),
                suggested: Some(recommended),
            });
        }
        if let Some(hit) = d.hit_ratio {
            if c.hits + c.misses >= MIN_SAMPLE && hit < cfg.min_hit_ratio {
                let suggested = (d.mean_in_use.ceil() as usize)
                    .max(g.min_idle + 1)
                    .min(g.max_size);
                out.push(Recommendation {
                    kind: AdviceKind::RaiseMinIdle,
                    message: format!(
                        "hit ratio {:.0}% is under {:.0}%: too many gets wait for a new connection; raise min_idle from {} to {suggested}",
                        hit * 100.0,
                        cfg.min_hit_ratio * 100.0,
                        g.min_idle
                    ),
                    suggested: Some(suggested),
                });
            }
        }
        if verdict == SizingVerdict::Oversized && window_gets >= MIN_SAMPLE && g.max_size > 2 {
            out.push(Recommendation {
                kind: AdviceKind::LowerMaxSize,
                message: format!(
                    "in the last {:.1}s {}: max_size {} could be {recommended}",
                    d.window.as_secs_f64(),
                    why.join("; "),
                    g.max_size
                ),
                suggested: Some(recommended),
            });
        }
        if c.leaks > 0 {
            out.push(Recommendation {
                kind: AdviceKind::FixLeaks,
                message: format!(
                    "{} connection(s) were held past the leak threshold: see the warnings in the log for where they were checked out",
                    c.leaks
                ),
                suggested: None,
            });
        }
        Self {
            recommendations: out,
            sizing,
        }
    }
}
