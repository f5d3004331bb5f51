//! Connections held past the threshold are reported with where they were
//! checked out, counted, and reported again when they come back.
mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{pool, quiet};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[tokio::test(start_paused = true)]
async fn a_held_connection_is_reported_with_its_checkout_location() {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let mut cfg = quiet(2);
    cfg.leak_detection_threshold = Some(Duration::from_secs(10));
    cfg.maintenance_interval = Duration::from_secs(1);
    let (pool, _) = pool(cfg);
    let line = line!() + 1;
    let held = pool.get().await.unwrap();
    let quick = pool.get().await.unwrap();
    drop(quick);
    tokio::time::sleep(Duration::from_secs(9)).await;
    assert_eq!(pool.counters().leaks, 0);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(pool.counters().leaks, 1, "reported once");
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        pool.counters().leaks,
        1,
        "not reported again while still held"
    );
    let text = logs.text();
    assert!(text.contains("possible connection leak"), "{text}");
    assert!(
        text.contains(&format!("leak.rs:{line}")),
        "the checkout location is named: {text}"
    );
    drop(held);
    let text = logs.text();
    assert!(text.contains("leaked connection returned"), "{text}");
    assert!(pool.health().warnings.iter().any(|w| w.contains("leak")));
}

#[tokio::test(start_paused = true)]
async fn without_a_threshold_nothing_is_tracked() {
    let (pool, _) = pool(quiet(1));
    let held = pool.get().await.unwrap();
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert_eq!(pool.counters().leaks, 0);
    drop(held);
}

/// Writes nothing; on the leak report, checks from another thread that the
/// pool's lock is free while the report is being written.
#[derive(Clone)]
struct LockProbe {
    pool: Arc<Mutex<Option<tidepool::Pool<common::Fake>>>>,
    /// For each report: whether the lock was free, and whether it named the pool.
    free: Arc<Mutex<Vec<(bool, bool)>>>,
}

impl Write for LockProbe {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        if text.contains("possible connection leak") {
            let named = text.contains("pool=");
            let pool = self.pool.lock().unwrap().clone().expect("pool set");
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let _ = pool.gauges();
                let _ = tx.send(());
            });
            let free = rx.recv_timeout(Duration::from_secs(1)).is_ok();
            self.free.lock().unwrap().push((free, named));
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn a_leak_is_reported_outside_the_pools_lock() {
    let probe = LockProbe {
        pool: Arc::default(),
        free: Arc::default(),
    };
    let writer = probe.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let mut cfg = quiet(2);
    cfg.leak_detection_threshold = Some(Duration::from_secs(10));
    let (pool, _) = pool(cfg);
    *probe.pool.lock().unwrap() = Some(pool.clone());
    let held = pool.get().await.unwrap();
    tokio::time::sleep(Duration::from_secs(12)).await;
    assert_eq!(
        *probe.free.lock().unwrap(),
        [(true, true)],
        "the lock was free while reporting, and the report named the pool"
    );
    drop(held);
}
