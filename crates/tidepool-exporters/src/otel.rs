//! [`OtelExporter`]: pool statistics as OpenTelemetry observable
//! instruments.
//!
//! # Implementation notes
//! An observable instrument has a callback of its own, and a collection
//! runs them one after another. So that one collection reads each pool
//! once (and every instrument reports the same moment), the callbacks share
//! a [`Readings`] cache: a reading younger than [`FRESH`] is reused. Names
//! are the Prometheus family names without `_total` (an OpenTelemetry
//! Prometheus bridge adds it to monotonic counters); every data point has a
//! `pool` attribute.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use opentelemetry::KeyValue;
use opentelemetry::metrics::{AsyncInstrument, Meter, ObservableCounter, ObservableGauge};
use tidepool::{CloseReason, Registry, catalog};

use crate::{QUANTILES, Reading, STATUSES};

/// How long one reading of the pools serves the callbacks of a collection.
const FRESH: Duration = Duration::from_millis(250);

/// The pools, read at most once per [`FRESH`].
#[derive(Debug)]
struct Readings {
    registry: Arc<Registry>,
    cache: Mutex<Option<(Instant, Arc<Vec<Reading>>)>>,
}

impl Readings {
    fn get(&self) -> Arc<Vec<Reading>> {
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((at, r)) = cache.as_ref()
            && at.elapsed() < FRESH
        {
            return Arc::clone(r);
        }
        let r = Arc::new(crate::read(&self.registry));
        *cache = Some((Instant::now(), Arc::clone(&r)));
        r
    }
}

fn pool(r: &Reading) -> KeyValue {
    KeyValue::new("pool", r.stats.name.clone())
}

/// Reports one data point: its value and attributes.
type Observe<'a, T> = &'a dyn Fn(T, &[KeyValue]);

/// What an observable instrument calls at each collection.
type Callback<T> = Box<dyn Fn(&dyn AsyncInstrument<T>) + Send + Sync>;

/// An instrument's callback: `each` reports the points of every pool of
/// the shared reading.
fn callback<T: 'static>(
    readings: &Arc<Readings>,
    each: impl Fn(&Reading, Observe<'_, T>) + Send + Sync + 'static,
) -> Callback<T> {
    let readings = Arc::clone(readings);
    Box::new(move |o| {
        for r in readings.get().iter() {
            each(r, &|v, attrs| o.observe(v, attrs));
        }
    })
}

/// The instruments reporting a registry's pools on an OpenTelemetry
/// `Meter`; they report for as long as the meter provider runs.
///
/// ```
/// use std::sync::Arc;
///
/// let registry = Arc::new(tidepool::Registry::new());
/// let meter = opentelemetry::global::meter("tidepool");
/// let _exporter = tidepool_exporters::OtelExporter::register(&meter, Arc::clone(&registry));
/// ```
#[derive(Debug)]
pub struct OtelExporter {
    _counters: Vec<ObservableCounter<u64>>,
    _sums: Vec<ObservableCounter<f64>>,
    _gauges: Vec<ObservableGauge<i64>>,
    _latencies: Vec<ObservableGauge<f64>>,
}

impl OtelExporter {
    /// Registers an observable instrument per figure of the
    /// [`catalog`](tidepool::catalog) on `meter`, each reporting every pool
    /// `registry` holds when the meter's reader collects.
    pub fn register(meter: &Meter, registry: Arc<Registry>) -> Self {
        let readings = Arc::new(Readings {
            registry,
            cache: Mutex::new(None),
        });
        let r = &readings;
        let mut counters = Vec::new();
        let mut gauges = Vec::new();
        let mut latencies = Vec::new();
        let mut sums = Vec::new();
        for c in catalog::COUNTERS {
            let each = move |r: &Reading, o: Observe<'_, u64>| o((c.read)(&r.stats), &[pool(r)]);
            counters.push(
                meter
                    .u64_observable_counter(c.name)
                    .with_description(c.help)
                    .with_callback(callback(r, each))
                    .build(),
            );
        }
        let closed = |r: &Reading, o: Observe<'_, u64>| {
            for reason in CloseReason::ALL {
                let kv = KeyValue::new("reason", reason.as_str());
                o(r.stats.counters.closed.get(reason), &[pool(r), kv]);
            }
        };
        counters.push(
            meter
                .u64_observable_counter(catalog::CLOSED)
                .with_description(catalog::CLOSED_HELP)
                .with_callback(callback(r, closed))
                .build(),
        );
        for g in catalog::GAUGES {
            let each = move |r: &Reading, o: Observe<'_, i64>| o((g.read)(&r.stats), &[pool(r)]);
            gauges.push(
                meter
                    .i64_observable_gauge(g.name)
                    .with_description(g.help)
                    .with_callback(callback(r, each))
                    .build(),
            );
        }
        let connections = |r: &Reading, o: Observe<'_, i64>| {
            for (state, read) in catalog::CONNECTION_STATES {
                let n = i64::try_from(read(&r.stats.gauges)).unwrap_or(i64::MAX);
                o(n, &[pool(r), KeyValue::new("state", state)]);
            }
        };
        let health = |r: &Reading, o: Observe<'_, i64>| {
            for status in STATUSES {
                let kv = KeyValue::new("status", status.as_str());
                o(i64::from(r.health == status), &[pool(r), kv]);
            }
        };
        for (name, help, each) in [
            (
                catalog::CONNECTIONS,
                catalog::CONNECTIONS_HELP,
                callback(r, connections),
            ),
            (catalog::HEALTH, catalog::HEALTH_HELP, callback(r, health)),
        ] {
            gauges.push(
                meter
                    .i64_observable_gauge(name)
                    .with_description(help)
                    .with_callback(each)
                    .build(),
            );
        }
        for l in catalog::LATENCIES {
            let quantiles = move |r: &Reading, o: Observe<'_, f64>| {
                let h = (l.read)(&r.stats);
                for (q, label) in QUANTILES {
                    let kv = KeyValue::new("quantile", label);
                    o(h.percentile(q).as_secs_f64(), &[pool(r), kv]);
                }
            };
            latencies.push(
                meter
                    .f64_observable_gauge(l.name)
                    .with_description(l.help)
                    .with_unit("s")
                    .with_callback(callback(r, quantiles))
                    .build(),
            );
            let count =
                move |r: &Reading, o: Observe<'_, u64>| o((l.read)(&r.stats).count(), &[pool(r)]);
            counters.push(
                meter
                    .u64_observable_counter(format!("{}_count", l.name))
                    .with_description(l.help)
                    .with_callback(callback(r, count))
                    .build(),
            );
            let sum = move |r: &Reading, o: Observe<'_, f64>| {
                o((l.read)(&r.stats).sum().as_secs_f64(), &[pool(r)]);
            };
            sums.push(
                meter
                    .f64_observable_counter(format!("{}_sum", l.name))
                    .with_description(l.help)
                    .with_unit("s")
                    .with_callback(callback(r, sum))
                    .build(),
            );
        }
        Self {
            _counters: counters,
            _sums: sums,
            _gauges: gauges,
            _latencies: latencies,
        }
    }
}
