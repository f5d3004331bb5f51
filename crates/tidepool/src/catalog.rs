//! Every figure of a [`Stats`] snapshot as a named metric, listed once:
//! tidepool-http's Prometheus exposition and the `metrics` and
//! OpenTelemetry exporters (tidepool-exporters) read pools through these
//! tables, so they name and compute each figure alike. Names are the
//! Prometheus family names, labelled `pool` (and `state`, `reason`,
//! `quantile` where said); exposed as Prometheus counters they gain
//! `_total`.

use crate::histogram::Histogram;
use crate::stats::{Gauges, Stats};

/// A figure that only grows (since the pool was built).
#[derive(Debug, Clone, Copy)]
pub struct CounterMetric {
    /// The family name, without `_total`.
    pub name: &'static str,
    /// What it counts.
    pub help: &'static str,
    /// Reads it from a snapshot.
    pub read: fn(&Stats) -> u64,
}

/// A figure that goes up and down, read as a whole number.
#[derive(Debug, Clone, Copy)]
pub struct GaugeMetric {
    /// The family name.
    pub name: &'static str,
    /// What it measures.
    pub help: &'static str,
    /// Reads it from a snapshot.
    pub read: fn(&Stats) -> i64,
}

/// A latency histogram of the pool, in seconds.
#[derive(Debug, Clone, Copy)]
pub struct LatencyMetric {
    /// The family name (ends in `_seconds`).
    pub name: &'static str,
    /// What it times.
    pub help: &'static str,
    /// Picks it from a snapshot.
    pub read: fn(&Stats) -> &Histogram,
}

macro_rules! counters {
    ($($name:literal, $help:literal, $field:ident $(. $sub:ident)?;)*) => {
        [$(CounterMetric { name: $name, help: $help, read: |s| s.counters.$field $(. $sub)? },)*]
    };
}

fn whole(v: usize) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// The counters exported as they are.
pub const COUNTERS: [CounterMetric; 17] = counters![
    "tidepool_pool_gets", "Calls to get().", gets;
    "tidepool_pool_hits", "Gets served at once by an idle connection.", hits;
    "tidepool_pool_misses", "Gets served by a connection opened for them.", misses;
    "tidepool_pool_reused", "Checkouts of a connection used before.", reused;
    "tidepool_pool_waited", "Gets that queued for a connection.", waited;
    "tidepool_pool_timeouts", "Gets that timed out.", timeouts;
    "tidepool_pool_connect_failures", "Gets failed because connecting failed.", connect_failures;
    "tidepool_pool_cancelled", "Gets dropped by their caller while they waited.", cancelled;
    "tidepool_pool_connections_created", "Connections opened.", created;
    "tidepool_pool_create_errors", "Failed connect attempts.", create_errors;
    "tidepool_pool_retries", "Connect attempts made after a failure.", retries;
    "tidepool_pool_overflow_opened", "Overflow connections opened beyond max_size.", overflow_created;
    "tidepool_pool_overflow_returned", "Overflow connections closed on return with nobody waiting.", closed.overflow_returned;
    "tidepool_pool_validation_failures", "Connections that failed validation or a keepalive ping.", validation_failures;
    "tidepool_pool_keepalives", "Keepalive pings of idle connections.", keepalives;
    "tidepool_pool_leaks", "Connections held past the leak threshold.", leaks;
    "tidepool_pool_panics", "Panics caught in manager hooks or background work.", panics;
];

macro_rules! gauges {
    ($($name:literal, $help:literal, $read:expr;)*) => {
        [$(GaugeMetric { name: $name, help: $help, read: $read },)*]
    };
}

/// The gauges of one value per pool.
pub const GAUGES: [GaugeMetric; 8] = gauges![
    "tidepool_pool_max_connections", "Configured max_size.", |s| whole(s.gauges.max_size);
    "tidepool_pool_min_idle_connections", "Configured min_idle.", |s| whole(s.gauges.min_idle);
    "tidepool_pool_max_overflow_connections", "Configured max_overflow.", |s| whole(s.gauges.max_overflow);
    "tidepool_pool_waiting", "Callers queued for a connection.", |s| whole(s.gauges.waiting);
    "tidepool_pool_paused", "1 when the pool is paused.", |s| i64::from(s.gauges.paused);
    "tidepool_pool_closed", "1 when the pool is closed.", |s| i64::from(s.gauges.closed);
    "tidepool_pool_peak_in_use", "The most connections checked out at once in the statistics window.", |s| whole(s.derived.peak_in_use);
    "tidepool_pool_peak_waiting", "The most callers waiting at once in the statistics window.", |s| whole(s.derived.peak_waiting);
];

/// `tidepool_pool_connections{state}`: open connections by state, and
/// those being opened.
pub const CONNECTIONS: &str = "tidepool_pool_connections";
/// What [`CONNECTIONS`] says.
pub const CONNECTIONS_HELP: &str = "Open connections by state (idle, in_use, checking: out for a reset or keepalive ping, closing: being closed by their last holder, keeping their slot) and connections being opened (pending).";

/// A state of [`CONNECTIONS`] and how many connections are in it.
pub type ConnectionState = (&'static str, fn(&Gauges) -> usize);

/// The states of [`CONNECTIONS`], each with its reading.
pub const CONNECTION_STATES: [ConnectionState; 5] = [
    ("idle", |g| g.idle),
    ("in_use", |g| g.in_use),
    ("checking", |g| g.checking),
    ("closing", |g| g.closing),
    ("pending", |g| g.pending),
];

/// `tidepool_pool_connections_closed{reason}`, a counter per
/// [`CloseReason`](crate::CloseReason).
pub const CLOSED: &str = "tidepool_pool_connections_closed";
/// What [`CLOSED`] counts.
pub const CLOSED_HELP: &str = "Connections closed, by reason.";

/// `tidepool_pool_health{status}`: 1 for the pool's status, 0 for the
/// others.
pub const HEALTH: &str = "tidepool_pool_health";
/// What [`HEALTH`] says.
pub const HEALTH_HELP: &str =
    "1 for the pool's health status (healthy, degraded, unhealthy), 0 for the others.";

/// The latency histograms.
pub const LATENCIES: [LatencyMetric; 3] = [
    LatencyMetric {
        name: "tidepool_pool_acquire_wait_seconds",
        help: "Time from get() to a connection in hand.",
        read: |s| &s.histograms.acquire,
    },
    LatencyMetric {
        name: "tidepool_pool_hold_seconds",
        help: "Time a connection was held by its caller.",
        read: |s| &s.histograms.hold,
    },
    LatencyMetric {
        name: "tidepool_pool_create_seconds",
        help: "Time to open a connection.",
        read: |s| &s.histograms.create,
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_prometheus_shaped() {
        let mut names: Vec<&str> = COUNTERS
            .iter()
            .map(|c| c.name)
            .chain(GAUGES.iter().map(|g| g.name))
            .chain(LATENCIES.iter().map(|l| l.name))
            .chain([CONNECTIONS, CLOSED, HEALTH])
            .collect();
        let n = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), n, "a name is listed twice");
        for name in names {
            assert!(name.starts_with("tidepool_pool_"), "{name}");
            assert!(
                name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{name}"
            );
            assert!(!name.ends_with("_total"), "{name}");
        }
    }
}
