//! What the dashboard's stream sends: one [`Frame`] per interval, every
//! pool read once through [`PoolSnapshot`] (the JSON API's and
//! Prometheus's snapshot), plus what only a series over time can say —
//! rates and percentiles over the last interval, and a short log of the
//! errors each interval saw.
//!
//! # Implementation notes
//! Each pool's part is serialized once per interval, with and without its
//! advice (advice is for admins, as in the JSON API); a stream client only
//! picks the parts it may see and joins them, so a hundred clients cost a
//! hundred joins, not a hundred serializations.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::value::RawValue;
use tidepool::{Counters, Health, HealthStatus, Histogram, Stats};

use crate::snapshot::PoolSnapshot;
use crate::state::AppState;

/// Errors remembered per pool for the "recent errors" list.
const RECENT_ERRORS: usize = 20;

/// One interval's snapshot of every pool of the registry.
#[derive(Debug)]
pub(crate) struct Frame {
    /// When it was taken, in milliseconds since the Unix epoch.
    pub(crate) at_ms: u64,
    /// Every pool, in name order.
    pub(crate) pools: Vec<PoolFrame>,
}

/// One pool's part of a frame, serialized.
#[derive(Debug)]
pub(crate) struct PoolFrame {
    pub(crate) name: String,
    /// Everything but the advice.
    pub(crate) view: Box<RawValue>,
    /// Recommendations and the sizing estimate.
    pub(crate) advice: Box<RawValue>,
}

/// Rates and percentiles over the last interval.
#[derive(Debug, Clone, Copy, Serialize)]
struct Rates {
    /// Length of the interval they cover.
    interval_ms: f64,
    gets_per_s: f64,
    /// Failed connect attempts and timeouts per second.
    errors_per_s: f64,
    /// Acquire wait of the gets in the interval; `None` without gets.
    acquire_p50_ms: Option<f64>,
    acquire_p99_ms: Option<f64>,
    /// Hold time of the connections returned in the interval.
    hold_p50_ms: Option<f64>,
    hold_p99_ms: Option<f64>,
}

/// One entry of a pool's recent errors.
#[derive(Debug, Clone, Serialize)]
struct ErrorEvent {
    at_ms: u64,
    count: u64,
    what: &'static str,
}

#[derive(Debug, Serialize)]
struct PoolView<'a> {
    name: &'a str,
    backend: Option<&'static str>,
    status: HealthStatus,
    health: &'a Health,
    stats: &'a Stats,
    rates: Option<Rates>,
    recent_errors: &'a VecDeque<ErrorEvent>,
}

/// What is kept of a pool between two intervals.
#[derive(Debug, Default)]
struct Tracker {
    previous: Option<Previous>,
    errors: VecDeque<ErrorEvent>,
}

#[derive(Debug)]
struct Previous {
    at: Instant,
    counters: Counters,
    acquire: Histogram,
    hold: Histogram,
}

/// Reads one counter.
type Read = fn(&Counters) -> u64;

/// The error counters listed under "recent errors", with what each means.
const ERROR_KINDS: [(Read, &str); 6] = [
    (|c| c.timeouts, "get(s) timed out waiting for a connection"),
    (
        |c| c.connect_failures,
        "get(s) failed because connecting failed",
    ),
    (|c| c.create_errors, "connect attempt(s) failed"),
    (
        |c| c.validation_failures,
        "connection(s) failed validation or a keepalive ping",
    ),
    (|c| c.panics, "panic(s) caught in a hook or background work"),
    (|c| c.leaks, "connection(s) held past the leak threshold"),
];

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn percentiles(h: &Histogram) -> (Option<f64>, Option<f64>) {
    if h.count() == 0 {
        (None, None)
    } else {
        (Some(ms(h.percentile(0.50))), Some(ms(h.percentile(0.99))))
    }
}

impl Tracker {
    /// Rates since the previous interval (none for the first), and new
    /// entries in the error log.
    fn update(&mut self, stats: &Stats, at: Instant, at_ms: u64) -> Option<Rates> {
        let c = &stats.counters;
        let rates = self.previous.as_ref().map(|p| {
            let secs = at.duration_since(p.at).as_secs_f64().max(1e-3);
            for (read, what) in ERROR_KINDS {
                let count = read(c).saturating_sub(read(&p.counters));
                if count > 0 {
                    if self.errors.len() == RECENT_ERRORS {
                        self.errors.pop_front();
                    }
                    self.errors.push_back(ErrorEvent { at_ms, count, what });
                }
            }
            let errors = (c.create_errors + c.timeouts)
                .saturating_sub(p.counters.create_errors + p.counters.timeouts);
            let (acquire_p50_ms, acquire_p99_ms) =
                percentiles(&stats.histograms.acquire.since(&p.acquire));
            let (hold_p50_ms, hold_p99_ms) = percentiles(&stats.histograms.hold.since(&p.hold));
            Rates {
                interval_ms: secs * 1000.0,
                gets_per_s: c.gets.saturating_sub(p.counters.gets) as f64 / secs,
                errors_per_s: errors as f64 / secs,
                acquire_p50_ms,
                acquire_p99_ms,
                hold_p50_ms,
                hold_p99_ms,
            }
        });
        self.previous = Some(Previous {
            at,
            counters: *c,
            acquire: stats.histograms.acquire.clone(),
            hold: stats.histograms.hold.clone(),
        });
        rates
    }
}

/// Takes frames, remembering what rates need between them.
#[derive(Debug, Default)]
pub(crate) struct Sampler {
    trackers: HashMap<String, Tracker>,
}

impl Sampler {
    /// A frame of every pool of the registry, now.
    pub(crate) fn frame(&mut self, state: &AppState) -> Frame {
        let at = Instant::now();
        let at_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let mut pools = Vec::new();
        for h in state.registry().handles() {
            let snap = PoolSnapshot::of(state, h.as_ref());
            let name = snap.stats.name.clone();
            let tracker = self.trackers.entry(name.clone()).or_default();
            let rates = tracker.update(&snap.stats, at, at_ms);
            let view = PoolView {
                name: &name,
                backend: snap.backend,
                status: snap.health.status,
                health: &snap.health,
                stats: &snap.stats,
                rates,
                recent_errors: &tracker.errors,
            };
            let (Ok(view), Ok(advice)) = (
                serde_json::value::to_raw_value(&view),
                serde_json::value::to_raw_value(&snap.advice()),
            ) else {
                tracing::warn!(pool = %name, "could not serialize the pool for the dashboard");
                continue;
            };
            pools.push(PoolFrame { name, view, advice });
        }
        self.trackers
            .retain(|name, _| pools.iter().any(|p| &p.name == name));
        Frame { at_ms, pools }
    }
}
