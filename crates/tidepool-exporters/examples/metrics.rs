//! Records a pool's statistics through the `metrics` facade and prints what
//! the recorder received. A real service installs its own recorder
//! (metrics-exporter-prometheus, a statsd exporter, ...) instead of the
//! debugging one used here.
//!
//! Run with `cargo run -p tidepool-exporters --example metrics`.
#![allow(clippy::print_stdout)]

use std::sync::Arc;
use std::time::Duration;

use metrics_util::debugging::DebuggingRecorder;
use tidepool_exporters::MetricsExporter;

mod common;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::set_global_recorder(recorder)?;

    let (registry, pool) = common::registry(0).await;
    let exporter = MetricsExporter::new(Arc::clone(&registry));
    exporter.describe();
    let task = exporter.spawn(Duration::from_millis(100));

    let mut work = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let pool = pool.clone();
        work.spawn(async move {
            for _ in 0..20 {
                let conn = pool.get().await.expect("a connection");
                tokio::time::sleep(Duration::from_millis(2)).await;
                drop(conn);
            }
        });
    }
    while work.join_next().await.is_some() {}
    tokio::time::sleep(Duration::from_millis(150)).await;
    task.abort();

    let mut rows: Vec<String> = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let labels: Vec<String> = key
                .key()
                .labels()
                .map(|l| format!("{}={}", l.key(), l.value()))
                .collect();
            format!("{}{{{}}} {value:?}", key.key().name(), labels.join(","))
        })
        .collect();
    rows.sort();
    for row in rows {
        println!("{row}");
    }
    Ok(())
}
