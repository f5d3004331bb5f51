//! The `metrics` facade receives every figure of the catalog, per pool,
//! with the values of the pool's own snapshot.
#![cfg(feature = "metrics")]

mod common;

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use metrics_util::{CompositeKey, MetricKind};
use tidepool::catalog;
use tidepool_exporters::MetricsExporter;

type Row = (
    CompositeKey,
    Option<metrics::Unit>,
    Option<metrics::SharedString>,
    DebugValue,
);

fn find<'a>(rows: &'a [Row], kind: MetricKind, name: &str, labels: &[(&str, &str)]) -> &'a Row {
    rows.iter()
        .find(|(k, ..)| {
            k.kind() == kind
                && k.key().name() == name
                && labels
                    .iter()
                    .all(|(lk, lv)| k.key().labels().any(|l| l.key() == *lk && l.value() == *lv))
        })
        .unwrap_or_else(|| panic!("no {kind:?} {name} {labels:?}"))
}

fn counter(rows: &[Row], name: &str, labels: &[(&str, &str)]) -> u64 {
    match find(rows, MetricKind::Counter, name, labels).3 {
        DebugValue::Counter(v) => v,
        ref other => panic!("{name}: {other:?}"),
    }
}

fn gauge(rows: &[Row], name: &str, labels: &[(&str, &str)]) -> f64 {
    match &find(rows, MetricKind::Gauge, name, labels).3 {
        DebugValue::Gauge(v) => v.into_inner(),
        other => panic!("{name}: {other:?}"),
    }
}

#[tokio::test]
async fn every_figure_reaches_the_facade_with_the_pools_own_values() {
    let (registry, pool) = common::registry(5).await;
    let stats = pool.stats();
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let exporter = MetricsExporter::new(registry);
    metrics::with_local_recorder(&recorder, || {
        exporter.describe();
        exporter.record();
    });
    let rows = snapshotter.snapshot().into_vec();
    let pool_label = [("pool", "numbers")];

    for c in catalog::COUNTERS {
        let name = format!("{}_total", c.name);
        assert_eq!(
            counter(&rows, &name, &pool_label),
            (c.read)(&stats),
            "{name}"
        );
        let described = &find(&rows, MetricKind::Counter, &name, &pool_label).2;
        assert_eq!(described.as_deref(), Some(c.help), "{name}");
    }
    assert_eq!(counter(&rows, "tidepool_pool_gets_total", &pool_label), 5);
    for g in catalog::GAUGES {
        assert_eq!(
            gauge(&rows, g.name, &pool_label),
            (g.read)(&stats) as f64,
            "{}",
            g.name
        );
    }
    assert_eq!(
        gauge(&rows, "tidepool_pool_max_connections", &pool_label),
        3.0
    );
    let evicted = [("pool", "numbers"), ("reason", "evicted")];
    assert_eq!(
        counter(&rows, "tidepool_pool_connections_closed_total", &evicted),
        1
    );
    let idle = [("pool", "numbers"), ("state", "idle")];
    assert_eq!(gauge(&rows, "tidepool_pool_connections", &idle), 0.0);
    let healthy = [("pool", "numbers"), ("status", "healthy")];
    assert_eq!(gauge(&rows, "tidepool_pool_health", &healthy), 1.0);
    let p50 = [("pool", "numbers"), ("quantile", "0.5")];
    let hold = gauge(&rows, "tidepool_pool_hold_seconds", &p50);
    assert!(hold >= 0.002, "held for at least 2 ms: {hold}");
    assert_eq!(
        counter(&rows, "tidepool_pool_hold_seconds_count", &pool_label),
        5
    );
    let unit = &find(&rows, MetricKind::Gauge, "tidepool_pool_hold_seconds", &p50).1;
    assert_eq!(*unit, Some(metrics::Unit::Seconds));

    // A paused pool reads as paused and degraded at the next record.
    pool.pause();
    metrics::with_local_recorder(&recorder, || exporter.record());
    let rows = snapshotter.snapshot().into_vec();
    assert_eq!(gauge(&rows, "tidepool_pool_paused", &pool_label), 1.0);
    let degraded = [("pool", "numbers"), ("status", "degraded")];
    assert_eq!(gauge(&rows, "tidepool_pool_health", &degraded), 1.0);
    assert_eq!(gauge(&rows, "tidepool_pool_health", &healthy), 0.0);
}

#[tokio::test(start_paused = true)]
async fn spawn_records_every_interval() {
    let (registry, pool) = common::registry(1).await;
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::set_global_recorder(recorder).unwrap();
    let task = MetricsExporter::new(registry).spawn(std::time::Duration::from_secs(10));
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let gets = |rows: &[Row]| counter(rows, "tidepool_pool_gets_total", &[("pool", "numbers")]);
    assert_eq!(gets(&snapshotter.snapshot().into_vec()), 1);
    drop(pool.get().await.unwrap());
    tokio::time::sleep(std::time::Duration::from_secs(10)).await;
    assert_eq!(gets(&snapshotter.snapshot().into_vec()), 2);
    task.abort();
}
