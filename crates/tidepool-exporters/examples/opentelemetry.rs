//! Registers a pool's statistics as OpenTelemetry observable instruments,
//! collects once and prints what the SDK gathered. A real service gives the
//! meter provider its own reader (OTLP, Prometheus, ...) instead of the
//! in-memory exporter used here.
//!
//! Run with `cargo run -p tidepool-exporters --example opentelemetry`.
#![allow(clippy::print_stdout)]

use opentelemetry::metrics::MeterProvider;
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};
use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};
use tidepool_exporters::OtelExporter;

mod common;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (registry, _pool) = common::registry(50).await;

    let exporter = InMemoryMetricExporter::default();
    let provider = SdkMeterProvider::builder()
        .with_reader(PeriodicReader::builder(exporter.clone()).build())
        .build();
    let _instruments = OtelExporter::register(&provider.meter("tidepool"), registry);
    provider.force_flush()?;

    for rm in exporter.get_finished_metrics()? {
        for metric in rm.scope_metrics().flat_map(|s| s.metrics()) {
            let points: Vec<String> = match metric.data() {
                AggregatedMetrics::U64(MetricData::Sum(s)) => {
                    s.data_points().map(|p| p.value().to_string()).collect()
                }
                AggregatedMetrics::F64(MetricData::Sum(s)) => s
                    .data_points()
                    .map(|p| format!("{:.6}", p.value()))
                    .collect(),
                AggregatedMetrics::I64(MetricData::Gauge(g)) => {
                    g.data_points().map(|p| p.value().to_string()).collect()
                }
                AggregatedMetrics::F64(MetricData::Gauge(g)) => g
                    .data_points()
                    .map(|p| format!("{:.6}", p.value()))
                    .collect(),
                _ => Vec::new(),
            };
            println!("{} [{}]", metric.name(), points.join(", "));
        }
    }
    provider.shutdown()?;
    Ok(())
}
