#![doc = include_str!("../README.md")]
//!
//! # Modules at a glance
//! - [`MetricsExporter`] (feature `metrics`): records every pool of a
//!   registry through the `metrics` facade, on demand or every interval.
//! - [`OtelExporter`] (feature `opentelemetry`): observable instruments on
//!   an OpenTelemetry `Meter`, read when the meter's reader collects.
//! - [`Reading`] and [`read`]: one snapshot of every pool, the figures
//!   both export (named by [`tidepool::catalog`], as Prometheus names them).

#[cfg(feature = "metrics")]
mod facade;
#[cfg(feature = "opentelemetry")]
mod otel;

use tidepool::{Health, HealthStatus, Registry, Stats};

#[cfg(feature = "metrics")]
pub use facade::MetricsExporter;
#[cfg(feature = "opentelemetry")]
pub use otel::OtelExporter;

/// One pool read once: its statistics and its health classified from them
/// (under the pool's own thresholds), as tidepool-http's JSON API and
/// Prometheus exposition read it.
#[derive(Debug, Clone)]
pub struct Reading {
    /// The snapshot.
    pub stats: Stats,
    /// Health from the same snapshot.
    pub health: HealthStatus,
}

/// Every pool of `registry`, each read once, in name order.
pub fn read(registry: &Registry) -> Vec<Reading> {
    registry
        .handles()
        .iter()
        .map(|h| {
            let stats = h.stats();
            let health = Health::classify(&stats, &h.config().health).status;
            Reading { stats, health }
        })
        .collect()
}

/// The health statuses, each exported as 0 or 1.
const STATUSES: [HealthStatus; 3] = [
    HealthStatus::Healthy,
    HealthStatus::Degraded,
    HealthStatus::Unhealthy,
];

/// The quantiles exported for each latency histogram.
const QUANTILES: [(f64, &str); 2] = [(0.5, "0.5"), (0.99, "0.99")];
