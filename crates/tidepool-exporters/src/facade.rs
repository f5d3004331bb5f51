//! [`MetricsExporter`]: pool statistics through the `metrics` facade.
//!
//! Names are tidepool-http's Prometheus names, counters with `_total`, so
//! that `metrics-exporter-prometheus` shows the series `/metrics` shows;
//! every series has a `pool` label. Counters are set with `absolute` (the
//! pool's own counters only grow); latency histograms, already aggregated
//! by the pool, are exported as gauges per `quantile` (0.5, 0.99, seconds)
//! beside `_count` and `_sum`.

use std::sync::Arc;
use std::time::Duration;

use metrics::{Label, counter, describe_counter, describe_gauge, gauge};
use tidepool::{CloseReason, Registry, catalog};

use crate::{QUANTILES, Reading, STATUSES};

/// Records every pool of a registry through the `metrics` facade.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::sync::Arc;
/// use std::time::Duration;
///
/// let registry = Arc::new(tidepool::Registry::new());
/// // ... pools inserted, a recorder installed (metrics-exporter-prometheus, ...)
/// let exporter = tidepool_exporters::MetricsExporter::new(Arc::clone(&registry));
/// exporter.describe();
/// let task = exporter.spawn(Duration::from_secs(10));
/// # task.abort();
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct MetricsExporter {
    registry: Arc<Registry>,
}

fn pool_label(r: &Reading) -> Label {
    Label::new("pool", r.stats.name.clone())
}

impl MetricsExporter {
    /// An exporter of `registry`'s pools (those it holds at each record).
    pub fn new(registry: Arc<Registry>) -> Self {
        Self { registry }
    }

    /// Describes every metric (help text, unit) to the installed recorder.
    /// Call it once, after installing the recorder.
    pub fn describe(&self) {
        for c in catalog::COUNTERS {
            describe_counter!(format!("{}_total", c.name), c.help);
        }
        for g in catalog::GAUGES {
            describe_gauge!(g.name, g.help);
        }
        describe_gauge!(catalog::CONNECTIONS, catalog::CONNECTIONS_HELP);
        describe_counter!(format!("{}_total", catalog::CLOSED), catalog::CLOSED_HELP);
        describe_gauge!(catalog::HEALTH, catalog::HEALTH_HELP);
        for l in catalog::LATENCIES {
            describe_gauge!(l.name, metrics::Unit::Seconds, l.help);
        }
    }

    /// Reads every pool once and records it.
    pub fn record(&self) {
        for r in crate::read(&self.registry) {
            Self::record_one(&r);
        }
    }

    /// Records one pool's reading (for a pool outside any registry:
    /// `Reading { stats: pool.stats(), health: pool.health().status }`).
    pub fn record_one(r: &Reading) {
        let s = &r.stats;
        let pool = || vec![pool_label(r)];
        for c in catalog::COUNTERS {
            counter!(format!("{}_total", c.name), pool()).absolute((c.read)(s));
        }
        for g in catalog::GAUGES {
            gauge!(g.name, pool()).set((g.read)(s) as f64);
        }
        for (state, read) in catalog::CONNECTION_STATES {
            let labels = vec![pool_label(r), Label::new("state", state)];
            gauge!(catalog::CONNECTIONS, labels).set(read(&s.gauges) as f64);
        }
        for reason in CloseReason::ALL {
            let labels = vec![pool_label(r), Label::new("reason", reason.as_str())];
            counter!(format!("{}_total", catalog::CLOSED), labels)
                .absolute(s.counters.closed.get(reason));
        }
        for status in STATUSES {
            let labels = vec![pool_label(r), Label::new("status", status.as_str())];
            gauge!(catalog::HEALTH, labels).set(f64::from(u8::from(r.health == status)));
        }
        for l in catalog::LATENCIES {
            let h = (l.read)(s);
            for (q, label) in QUANTILES {
                let labels = vec![pool_label(r), Label::new("quantile", label)];
                gauge!(l.name, labels).set(h.percentile(q).as_secs_f64());
            }
            counter!(format!("{}_count", l.name), pool()).absolute(h.count());
            gauge!(format!("{}_sum", l.name), pool()).set(h.sum().as_secs_f64());
        }
    }

    /// Records every `every` (the first time at once) on the current tokio
    /// runtime, until the task is aborted.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn spawn(self, every: Duration) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(every);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                self.record();
            }
        })
    }
}
