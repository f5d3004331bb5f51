//! The figures of a run as the report and `--json` give them.

use serde::{Deserialize, Serialize};
use tidepool::{Counters, LatencySummary, Stats};

use super::engine::{Outcome, Point, ms};
use super::record::Tally;

/// Latency percentiles from an HDR histogram, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Percentiles {
    /// Requests measured.
    pub count: u64,
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Largest.
    pub max: f64,
}

impl Percentiles {
    /// The percentiles of a histogram of nanoseconds.
    pub fn of(h: &hdrhistogram::Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        Self {
            count: h.len(),
            mean: h.mean() / 1e6,
            p50: ms(h.value_at_quantile(0.50)),
            p90: ms(h.value_at_quantile(0.90)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
        }
    }
}

/// One kind of failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorRow {
    /// What failed, e.g. `acquire timeout`, `sql 42P01`, `http 503 unavailable`.
    pub kind: String,
    /// How many requests failed so.
    pub count: u64,
    /// The first message of that kind.
    pub example: String,
}

/// A pool's latency summary (the pool's own histogram), in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PoolLatency {
    /// Values recorded.
    pub count: u64,
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

impl From<LatencySummary> for PoolLatency {
    fn from(s: LatencySummary) -> Self {
        let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
        Self {
            count: s.count,
            mean: ms(s.mean),
            p50: ms(s.p50),
            p99: ms(s.p99),
            max: ms(s.max),
        }
    }
}

/// The pool's own counters (see `tidepool::Counters`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PoolCounters {
    /// Calls to `get`.
    pub gets: u64,
    /// Gets served at once by an idle connection.
    pub hits: u64,
    /// Gets served by a connection created for them.
    pub misses: u64,
    /// Gets that had to queue.
    pub waited: u64,
    /// Connections opened.
    pub created: u64,
    /// Gets that timed out.
    pub timeouts: u64,
    /// Gets that failed because connecting failed on every attempt.
    pub connect_failures: u64,
    /// Failed connect attempts.
    pub create_errors: u64,
    /// Gets dropped by their caller before they completed.
    pub cancelled: u64,
    /// Connections handed out.
    pub checkouts: u64,
    /// Checkouts undone because validation failed.
    pub checkout_rejections: u64,
}

impl From<Counters> for PoolCounters {
    fn from(c: Counters) -> Self {
        Self {
            gets: c.gets,
            hits: c.hits,
            misses: c.misses,
            waited: c.waited,
            created: c.created,
            timeouts: c.timeouts,
            connect_failures: c.connect_failures,
            create_errors: c.create_errors,
            cancelled: c.cancelled,
            checkouts: c.checkouts,
            checkout_rejections: c.checkout_rejections,
        }
    }
}

impl PoolCounters {
    /// The counts between `before` and `self`.
    pub fn since(&self, before: &Self) -> Self {
        let d = |a: u64, b: u64| a.saturating_sub(b);
        Self {
            gets: d(self.gets, before.gets),
            hits: d(self.hits, before.hits),
            misses: d(self.misses, before.misses),
            waited: d(self.waited, before.waited),
            created: d(self.created, before.created),
            timeouts: d(self.timeouts, before.timeouts),
            connect_failures: d(self.connect_failures, before.connect_failures),
            create_errors: d(self.create_errors, before.create_errors),
            cancelled: d(self.cancelled, before.cancelled),
            checkouts: d(self.checkouts, before.checkouts),
            checkout_rejections: d(self.checkout_rejections, before.checkout_rejections),
        }
    }
}

/// The pool's own statistics for the run.
#[derive(Debug, Clone, Serialize)]
pub struct PoolReport {
    /// Where the figures come from and what span they cover.
    pub source: String,
    /// The configured maximum.
    pub max_size: usize,
    /// The configured minimum idle.
    pub min_idle: usize,
    /// Counters over the run.
    pub counters: PoolCounters,
    /// Time from `get()` to a connection in hand.
    pub acquire_ms: PoolLatency,
    /// Time a connection was held.
    pub hold_ms: PoolLatency,
    /// Time to open a connection.
    pub create_ms: PoolLatency,
    /// The pool's advice (`tidepool::Advice`) after the run, when it could
    /// be read.
    pub advice: Option<serde_json::Value>,
}

impl PoolReport {
    /// From a pool of this process, built for the run.
    pub fn from_stats(stats: &Stats, advice: &tidepool::Advice) -> Self {
        Self {
            source: "the pool of this run (built for it)".to_owned(),
            max_size: stats.gauges.max_size,
            min_idle: stats.gauges.min_idle,
            counters: stats.counters.into(),
            acquire_ms: stats.acquire.into(),
            hold_ms: stats.hold.into(),
            create_ms: stats.create.into(),
            advice: serde_json::to_value(advice).ok(),
        }
    }

    /// The advice's sizing estimate, when the advice holds one.
    pub fn sizing(&self) -> Option<Sizing> {
        let s = self.advice.as_ref()?.get("sizing")?;
        let size = |k: &str| s.get(k)?.as_u64().and_then(|v| usize::try_from(v).ok());
        Some(Sizing {
            needed: s.get("connections_needed")?.as_f64()?,
            headroom: s.get("headroom")?.as_f64()?,
            peak_demand: size("peak_demand")?,
            recommended: size("recommended_max_size")?,
            verdict: s.get("verdict")?.as_str()?.to_owned(),
        })
    }
}

/// The pool's sizing estimate (`tidepool::SizingEstimate`), as read back.
#[derive(Debug, Clone, PartialEq)]
pub struct Sizing {
    /// Little's law: arrival rate × mean hold.
    pub needed: f64,
    /// The headroom the pool applies to it.
    pub headroom: f64,
    /// The most connections in use plus callers waiting at one moment.
    pub peak_demand: usize,
    /// The pool's recommended `max_size`: the larger of the mean with
    /// headroom and the peak, raised when the pool ran near full.
    pub recommended: usize,
    /// `undersized`, `right_sized`, `oversized` or `insufficient_data`.
    pub verdict: String,
}

impl Sizing {
    /// Little's law with the pool's headroom, rounded up: the size the mean
    /// load alone asks for.
    pub fn littles_law_size(&self) -> usize {
        ((self.needed * self.headroom).ceil() as usize).max(1)
    }
}

/// One statement of the workload over the run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatementRow {
    /// Its name in the workload.
    pub name: String,
    /// Requests that ran it, failed or not.
    pub requests: u64,
    /// Of which failed.
    pub errors: u64,
    /// Their latency.
    pub latency_ms: Percentiles,
}

/// Every figure of one run.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// What ran: `pooled`, `unpooled`, `gateway`, `max_size 8`.
    pub label: String,
    /// Requests made, failed or not.
    pub requests: u64,
    /// Requests that succeeded.
    pub ok: u64,
    /// Requests that failed (each counted once, under one kind).
    pub errors: u64,
    /// Failures by kind, most first.
    pub errors_by_kind: Vec<ErrorRow>,
    /// Per statement of the workload, in its order.
    pub by_statement: Vec<StatementRow>,
    /// From the first request's start to the last one's end.
    pub elapsed_s: f64,
    /// Requests per second over `elapsed_s`.
    pub throughput: f64,
    /// Latency of every request; in an open loop from its intended start.
    pub latency_ms: Percentiles,
    /// Open loop: from each request's real start.
    pub service_ms: Option<Percentiles>,
    /// Open loop: requests that started over 2 ms late: every client was
    /// busy (raise --clients if this is not the pool's doing), or the
    /// machine was slow to wake one.
    pub late_starts: Option<u64>,
    /// Whether Ctrl-C ended the run early.
    pub interrupted: bool,
    /// The pool's own statistics, when there is a pool.
    pub pool: Option<PoolReport>,
    /// Once a second.
    pub timeline: Vec<Point>,
}

impl RunReport {
    /// The report of `outcome`; `open` when it ran an open loop.
    pub fn new(label: &str, outcome: Outcome, open: bool, pool: Option<PoolReport>) -> Self {
        let t: &Tally = &outcome.total;
        let mut errors_by_kind: Vec<ErrorRow> = t
            .errors
            .iter()
            .map(|(kind, e)| ErrorRow {
                kind: kind.clone(),
                count: e.count,
                example: e.example.clone(),
            })
            .collect();
        errors_by_kind.sort_by(|a, b| b.count.cmp(&a.count).then(a.kind.cmp(&b.kind)));
        let elapsed = outcome.elapsed.as_secs_f64();
        let by_statement = outcome
            .statements
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let s = t.statements.get(i).cloned().unwrap_or_default();
                StatementRow {
                    name: name.clone(),
                    requests: s.ok + s.failed,
                    errors: s.failed,
                    latency_ms: Percentiles::of(&s.latency),
                }
            })
            .collect();
        Self {
            label: label.to_owned(),
            requests: t.requests(),
            ok: t.ok,
            errors: t.failed(),
            errors_by_kind,
            by_statement,
            elapsed_s: elapsed,
            throughput: t.requests() as f64 / elapsed.max(1e-9),
            latency_ms: Percentiles::of(&t.latency),
            service_ms: open.then(|| Percentiles::of(&t.service)),
            late_starts: open.then_some(t.late),
            interrupted: outcome.interrupted,
            pool,
            timeline: outcome.timeline,
        }
    }
}
