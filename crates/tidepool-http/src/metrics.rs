//! The Prometheus resource: `GET /metrics`, every pool's statistics in the
//! OpenMetrics text format, encoded by `prometheus-client`.
//!
//! # Implementation notes
//! The pool already keeps exact counters and full latency histograms, so
//! nothing is instrumented twice: on each scrape a [`Collector`] takes one
//! [`Stats`] snapshot per pool and encodes it. Histogram buckets are read
//! from the pool's log-linear histogram with `count_at_most` at fixed bounds
//! (in seconds) and handed to the encoder per bucket (it accumulates them).

use std::fmt::Error as FmtError;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry as PromRegistry;
use tidepool::{CloseReason, HealthStatus, Histogram, Stats};

use crate::auth::Monitor;
use crate::error::ApiError;
use crate::state::AppState;
use crate::tenants::{Caller, Role};

/// Upper bounds of the latency buckets, in seconds.
pub const BUCKETS: [f64; 18] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0, 60.0,
];

/// The content type of the exposition.
pub const CONTENT_TYPE_OPENMETRICS: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Debug)]
struct Snapshot {
    pools: Vec<Stats>,
    /// Each pool's health, classified from the same snapshot.
    health: Vec<HealthStatus>,
    sessions: usize,
}

/// The pool counters exported as they are: name, help, value.
type CounterRow = (&'static str, &'static str, fn(&Stats) -> u64);

const COUNTERS: [CounterRow; 17] = [
    ("tidepool_pool_gets", "Calls to get().", |s| s.counters.gets),
    (
        "tidepool_pool_hits",
        "Gets served at once by an idle connection.",
        |s| s.counters.hits,
    ),
    (
        "tidepool_pool_misses",
        "Gets served by a connection opened for them.",
        |s| s.counters.misses,
    ),
    (
        "tidepool_pool_reused",
        "Checkouts of a connection used before.",
        |s| s.counters.reused,
    ),
    (
        "tidepool_pool_waited",
        "Gets that queued for a connection.",
        |s| s.counters.waited,
    ),
    ("tidepool_pool_timeouts", "Gets that timed out.", |s| {
        s.counters.timeouts
    }),
    (
        "tidepool_pool_connect_failures",
        "Gets failed because connecting failed.",
        |s| s.counters.connect_failures,
    ),
    (
        "tidepool_pool_cancelled",
        "Gets dropped by their caller while they waited.",
        |s| s.counters.cancelled,
    ),
    (
        "tidepool_pool_connections_created",
        "Connections opened.",
        |s| s.counters.created,
    ),
    (
        "tidepool_pool_create_errors",
        "Failed connect attempts.",
        |s| s.counters.create_errors,
    ),
    (
        "tidepool_pool_retries",
        "Connect attempts made after a failure.",
        |s| s.counters.retries,
    ),
    (
        "tidepool_pool_overflow_opened",
        "Overflow connections opened beyond max_size.",
        |s| s.counters.overflow_created,
    ),
    (
        "tidepool_pool_overflow_returned",
        "Overflow connections closed on return with nobody waiting.",
        |s| s.counters.closed.overflow_returned,
    ),
    (
        "tidepool_pool_validation_failures",
        "Connections that failed validation or a keepalive ping.",
        |s| s.counters.validation_failures,
    ),
    (
        "tidepool_pool_keepalives",
        "Keepalive pings of idle connections.",
        |s| s.counters.keepalives,
    ),
    (
        "tidepool_pool_leaks",
        "Connections held past the leak threshold.",
        |s| s.counters.leaks,
    ),
    (
        "tidepool_pool_panics",
        "Panics caught in manager hooks or background work.",
        |s| s.counters.panics,
    ),
];

fn gauge(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    pools: &[Stats],
    value: impl Fn(&Stats) -> i64,
) -> Result<(), FmtError> {
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for s in pools {
        let labels = [("pool", s.name.as_str())];
        m.encode_family(&labels)?.encode_gauge(&value(s))?;
    }
    Ok(())
}

fn counter(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    pools: &[Stats],
    value: impl Fn(&Stats) -> u64,
) -> Result<(), FmtError> {
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
    for s in pools {
        let labels = [("pool", s.name.as_str())];
        m.encode_family(&labels)?
            .encode_counter::<NoLabelSet, u64, u64>(&value(s), None)?;
    }
    Ok(())
}

/// Per-bucket (not cumulative) counts at [`BUCKETS`], then `+Inf`.
fn buckets(h: &Histogram) -> Vec<(f64, u64)> {
    let mut out = Vec::with_capacity(BUCKETS.len() + 1);
    let mut below = 0;
    for b in BUCKETS {
        let at_most = h.count_at_most(std::time::Duration::from_secs_f64(b));
        out.push((b, at_most.saturating_sub(below)));
        below = at_most;
    }
    out.push((f64::MAX, h.count().saturating_sub(below)));
    out
}

fn histogram(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    pools: &[Stats],
    pick: impl Fn(&Stats) -> &Histogram,
) -> Result<(), FmtError> {
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Histogram)?;
    for s in pools {
        let h = pick(s);
        let labels = [("pool", s.name.as_str())];
        m.encode_family(&labels)?.encode_histogram::<NoLabelSet>(
            h.sum().as_secs_f64(),
            h.count(),
            &buckets(h),
            None,
        )?;
    }
    Ok(())
}

impl Collector for Snapshot {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> Result<(), FmtError> {
        let p = &self.pools;
        let as_i64 = |v: usize| i64::try_from(v).unwrap_or(i64::MAX);
        {
            let mut m = enc.encode_descriptor(
                "tidepool_pool_connections",
                "Open connections by state (idle, in_use, checking: out for a reset or keepalive ping) and connections being opened (pending).",
                None,
                MetricType::Gauge,
            )?;
            for s in p {
                let g = &s.gauges;
                for (state, v) in [
                    ("idle", g.idle),
                    ("in_use", g.in_use),
                    ("checking", g.checking),
                    ("pending", g.pending),
                ] {
                    let labels = [("pool", s.name.as_str()), ("state", state)];
                    m.encode_family(&labels)?.encode_gauge(&as_i64(v))?;
                }
            }
        }
        gauge(
            &mut enc,
            "tidepool_pool_max_connections",
            "Configured max_size.",
            p,
            |s| as_i64(s.gauges.max_size),
        )?;
        gauge(
            &mut enc,
            "tidepool_pool_min_idle_connections",
            "Configured min_idle.",
            p,
            |s| as_i64(s.gauges.min_idle),
        )?;
        gauge(
            &mut enc,
            "tidepool_pool_max_overflow_connections",
            "Configured max_overflow.",
            p,
            |s| as_i64(s.gauges.max_overflow),
        )?;
        gauge(
            &mut enc,
            "tidepool_pool_waiting",
            "Callers queued for a connection.",
            p,
            |s| as_i64(s.gauges.waiting),
        )?;
        gauge(
            &mut enc,
            "tidepool_pool_paused",
            "1 when the pool is paused.",
            p,
            |s| i64::from(s.gauges.paused),
        )?;
        gauge(
            &mut enc,
            "tidepool_pool_closed",
            "1 when the pool is closed.",
            p,
            |s| i64::from(s.gauges.closed),
        )?;
        histogram(
            &mut enc,
            "tidepool_pool_acquire_wait_seconds",
            "Time from get() to a connection in hand.",
            p,
            |s| &s.histograms.acquire,
        )?;
        histogram(
            &mut enc,
            "tidepool_pool_hold_seconds",
            "Time a connection was held by its caller.",
            p,
            |s| &s.histograms.hold,
        )?;
        histogram(
            &mut enc,
            "tidepool_pool_create_seconds",
            "Time to open a connection.",
            p,
            |s| &s.histograms.create,
        )?;
        for (name, help, value) in COUNTERS {
            counter(&mut enc, name, help, p, value)?;
        }
        gauge(
            &mut enc,
            "tidepool_pool_peak_in_use",
            "The most connections checked out at once in the statistics window.",
            p,
            |s| as_i64(s.derived.peak_in_use),
        )?;
        gauge(
            &mut enc,
            "tidepool_pool_peak_waiting",
            "The most callers waiting at once in the statistics window.",
            p,
            |s| as_i64(s.derived.peak_waiting),
        )?;
        {
            let mut m = enc.encode_descriptor(
                "tidepool_pool_health",
                "1 for the pool's health status (healthy, degraded, unhealthy), 0 for the others.",
                None,
                MetricType::Gauge,
            )?;
            for (s, health) in p.iter().zip(&self.health) {
                for status in [
                    HealthStatus::Healthy,
                    HealthStatus::Degraded,
                    HealthStatus::Unhealthy,
                ] {
                    let labels = [("pool", s.name.as_str()), ("status", status.as_str())];
                    m.encode_family(&labels)?
                        .encode_gauge(&i64::from(*health == status))?;
                }
            }
        }
        {
            let mut m = enc.encode_descriptor(
                "tidepool_pool_connections_closed",
                "Connections closed, by reason.",
                None,
                MetricType::Counter,
            )?;
            for s in p {
                for r in CloseReason::ALL {
                    let labels = [("pool", s.name.as_str()), ("reason", r.as_str())];
                    m.encode_family(&labels)?
                        .encode_counter::<NoLabelSet, u64, u64>(&s.counters.closed.get(r), None)?;
                }
            }
        }
        let mut m = enc.encode_descriptor(
            "tidepool_sessions_active",
            "Live gateway sessions.",
            None,
            MetricType::Gauge,
        )?;
        m.encode_gauge(&as_i64(self.sessions))
    }
}

/// Encodes the statistics of the pools `caller` may see (anonymous: the
/// configured pools) in the OpenMetrics text format.
///
/// # Errors
/// Only if formatting fails, which writing to a `String` does not.
pub async fn render(state: &AppState, caller: Option<Caller>) -> Result<String, std::fmt::Error> {
    let scope = caller
        .map(|c| state.tenant(c))
        .filter(|t| t.role != Role::Admin)
        .map(|t| t.name.as_str());
    let sessions = match (caller, scope) {
        (Some(_), scope) => state.inner.sessions.stats(scope).await.active,
        (None, _) => state.inner.sessions.stats(None).await.active,
    };
    let (pools, health) = crate::snapshot::visible(state, caller)
        .into_iter()
        .map(|s| (s.stats, s.health.status))
        .unzip();
    let snapshot = Snapshot {
        pools,
        health,
        sessions,
    };
    let mut registry = PromRegistry::default();
    registry.register_collector(Box::new(snapshot));
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &registry)?;
    Ok(out)
}

/// `GET /metrics`
pub(crate) async fn scrape(State(state): State<AppState>, Monitor(caller): Monitor) -> Response {
    match render(&state, caller).await {
        Ok(text) => ([(CONTENT_TYPE, CONTENT_TYPE_OPENMETRICS)], text).into_response(),
        Err(e) => ApiError::internal(&e).into_response(),
    }
}
