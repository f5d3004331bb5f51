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
use tidepool::{CloseReason, HealthStatus, Histogram, Stats, catalog};

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
    /// Dashboard streams open, and dropped since start (`None` without
    /// the `dashboard` feature).
    streams: Option<(usize, u64)>,
}

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
                catalog::CONNECTIONS,
                catalog::CONNECTIONS_HELP,
                None,
                MetricType::Gauge,
            )?;
            for s in p {
                for (state, read) in catalog::CONNECTION_STATES {
                    let labels = [("pool", s.name.as_str()), ("state", state)];
                    m.encode_family(&labels)?
                        .encode_gauge(&as_i64(read(&s.gauges)))?;
                }
            }
        }
        for g in catalog::GAUGES {
            gauge(&mut enc, g.name, g.help, p, g.read)?;
        }
        for l in catalog::LATENCIES {
            histogram(&mut enc, l.name, l.help, p, l.read)?;
        }
        for c in catalog::COUNTERS {
            counter(&mut enc, c.name, c.help, p, c.read)?;
        }
        {
            let mut m = enc.encode_descriptor(
                catalog::HEALTH,
                catalog::HEALTH_HELP,
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
                catalog::CLOSED,
                catalog::CLOSED_HELP,
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
        if let Some((open, dropped)) = self.streams {
            enc.encode_descriptor(
                "tidepool_dashboard_streams",
                "Dashboard streams (/api/v1/stream) open.",
                None,
                MetricType::Gauge,
            )?
            .encode_gauge(&as_i64(open))?;
            enc.encode_descriptor(
                "tidepool_dashboard_streams_dropped",
                "Dashboard streams dropped because their client fell stream_buffer snapshots behind.",
                None,
                MetricType::Counter,
            )?
            .encode_counter::<NoLabelSet, u64, u64>(&dropped, None)?;
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
        streams: cfg!(feature = "dashboard").then(|| state.stream_counts()),
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
