//! OpenTelemetry's SDK collects every figure of the catalog, per pool, with
//! the values of the pool's own snapshot.
#![cfg(feature = "opentelemetry")]

mod common;

use opentelemetry::metrics::MeterProvider;
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData, ResourceMetrics};
use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};
use tidepool::catalog;
use tidepool_exporters::OtelExporter;

/// Collects now; the collected metrics.
fn collect(provider: &SdkMeterProvider, exporter: &InMemoryMetricExporter) -> ResourceMetrics {
    exporter.reset();
    provider.force_flush().unwrap();
    exporter
        .get_finished_metrics()
        .unwrap()
        .pop()
        .expect("nothing collected")
}

fn matches(
    attrs: &mut dyn Iterator<Item = &opentelemetry::KeyValue>,
    want: &[(&str, &str)],
) -> bool {
    let got: Vec<(String, String)> = attrs
        .map(|kv| (kv.key.as_str().to_owned(), kv.value.as_str().into_owned()))
        .collect();
    want.iter()
        .all(|(k, v)| got.iter().any(|(gk, gv)| gk == k && gv == v))
}

/// The value of metric `name` at the data point with `attrs`, as f64.
fn value(rm: &ResourceMetrics, name: &str, attrs: &[(&str, &str)]) -> f64 {
    let metric = rm
        .scope_metrics()
        .flat_map(|s| s.metrics())
        .find(|m| m.name() == name)
        .unwrap_or_else(|| panic!("no metric {name}"));
    let found = match metric.data() {
        AggregatedMetrics::U64(MetricData::Sum(s)) => s
            .data_points()
            .find(|p| matches(&mut p.attributes(), attrs))
            .map(|p| p.value() as f64),
        AggregatedMetrics::F64(MetricData::Sum(s)) => s
            .data_points()
            .find(|p| matches(&mut p.attributes(), attrs))
            .map(|p| p.value()),
        AggregatedMetrics::I64(MetricData::Gauge(g)) => g
            .data_points()
            .find(|p| matches(&mut p.attributes(), attrs))
            .map(|p| p.value() as f64),
        AggregatedMetrics::F64(MetricData::Gauge(g)) => g
            .data_points()
            .find(|p| matches(&mut p.attributes(), attrs))
            .map(|p| p.value()),
        other => panic!("{name}: unexpected {other:?}"),
    };
    found.unwrap_or_else(|| panic!("{name}: no point with {attrs:?}"))
}

#[tokio::test]
async fn every_figure_is_collected_with_the_pools_own_values() {
    let (registry, pool) = common::registry(5).await;
    let stats = pool.stats();
    let exporter = InMemoryMetricExporter::default();
    let provider = SdkMeterProvider::builder()
        .with_reader(PeriodicReader::builder(exporter.clone()).build())
        .build();
    let _instruments = OtelExporter::register(&provider.meter("tidepool"), registry);
    let rm = collect(&provider, &exporter);
    let pool_attr = [("pool", "numbers")];
    for c in catalog::COUNTERS {
        assert_eq!(
            value(&rm, c.name, &pool_attr),
            (c.read)(&stats) as f64,
            "{}",
            c.name
        );
    }
    assert_eq!(value(&rm, "tidepool_pool_gets", &pool_attr), 5.0);
    for g in catalog::GAUGES {
        assert_eq!(
            value(&rm, g.name, &pool_attr),
            (g.read)(&stats) as f64,
            "{}",
            g.name
        );
    }
    let evicted = [("pool", "numbers"), ("reason", "evicted")];
    assert_eq!(value(&rm, catalog::CLOSED, &evicted), 1.0);
    let healthy = [("pool", "numbers"), ("status", "healthy")];
    assert_eq!(value(&rm, catalog::HEALTH, &healthy), 1.0);
    let p50 = [("pool", "numbers"), ("quantile", "0.5")];
    assert!(value(&rm, "tidepool_pool_hold_seconds", &p50) >= 0.002);
    assert_eq!(
        value(&rm, "tidepool_pool_hold_seconds_count", &pool_attr),
        5.0
    );

    // A collection after the cache's 250 ms reads the pool again.
    drop(pool.get().await.unwrap());
    pool.pause();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let rm = collect(&provider, &exporter);
    assert_eq!(value(&rm, "tidepool_pool_paused", &pool_attr), 1.0);
    let degraded = [("pool", "numbers"), ("status", "degraded")];
    assert_eq!(value(&rm, catalog::HEALTH, &degraded), 1.0);
    assert_eq!(value(&rm, "tidepool_pool_gets", &pool_attr), 6.0);
    provider.shutdown().unwrap();
}
