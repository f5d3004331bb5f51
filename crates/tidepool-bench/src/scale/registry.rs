//! The registry curve: N idle pools, their heap bytes, and the `/metrics`
//! rendering over them.
//!
//! # Method
//! N pools are built (`max_size` [`POOL_MAX`], defaults otherwise) and each
//! opens one connection and takes it back, so each is an idle pool with one
//! idle connection and its background work started. tidepool's go into a
//! [`tidepool::Registry`] under names `pool-00000`, …; deadpool's and bb8's,
//! which have no registry, into a `Vec`. After 100 ms for background tasks
//! to settle, the heap bytes allocated since the start (the registry and
//! names included) are divided by N.
//!
//! The scrape is tidepool-http's [`render`](tidepool_http::metrics::render),
//! the body of `GET /metrics`, over an [`AppState`](tidepool_http::AppState)
//! on that registry, timed [`SCRAPES`] times per repetition (median kept).
//! deadpool and bb8 have no exporter: only their memory is measured.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::ScaleConfig;
use super::peers::named_tidepool;
use crate::memory::{Probe, on_own_runtime};
use crate::pools::{AsyncPool, Bb8, Contender, Deadpool};
use crate::stats::Spread;

/// `max_size` of every pool in the registry.
pub const POOL_MAX: usize = 10;

/// Scrapes timed per repetition.
pub const SCRAPES: usize = 5;

/// One contender at one count.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RegistryPoint {
    /// Contender name.
    pub contender: String,
    /// Pools.
    pub n: usize,
    /// Heap bytes per idle pool, one per repetition (empty when not
    /// counted).
    pub bytes_per_pool: Vec<f64>,
    /// Time of one `/metrics` rendering, ms, one per repetition (tidepool).
    pub scrape_ms: Vec<f64>,
    /// Size of the rendered text, bytes (tidepool).
    pub scrape_bytes: Option<usize>,
}

impl RegistryPoint {
    /// Min / median / max of the bytes per pool, if counted.
    pub fn bytes(&self) -> Option<Spread> {
        (!self.bytes_per_pool.is_empty()).then(|| Spread::of(&self.bytes_per_pool))
    }

    /// Min / median / max of the scrape time, if measured.
    pub fn scrape(&self) -> Option<Spread> {
        (!self.scrape_ms.is_empty()).then(|| Spread::of(&self.scrape_ms))
    }
}

/// Runs the curve for the `chosen` contenders.
pub fn run(
    cfg: &ScaleConfig,
    chosen: &[Contender],
    progress: &mut dyn FnMut(&str),
) -> Vec<RegistryPoint> {
    let mut points = Vec::new();
    let mut rng = fastrand::Rng::new();
    for &n in &cfg.pool_counts {
        let first = points.len();
        for &c in chosen {
            points.push(RegistryPoint {
                contender: c.name().to_owned(),
                n,
                bytes_per_pool: Vec::new(),
                scrape_ms: Vec::new(),
                scrape_bytes: None,
            });
        }
        for rep in 0..cfg.reps {
            for i in crate::pools::run_order(chosen.len(), &mut rng) {
                let c = chosen[i];
                let point = &mut points[first + i];
                let m = measure(c, n);
                if let Some(b) = m.bytes_per_pool {
                    point.bytes_per_pool.push(b);
                }
                if let Some((ms, bytes)) = m.scrape {
                    point.scrape_ms.push(ms);
                    point.scrape_bytes = Some(bytes);
                }
                progress(&format!(
                    "scale registry {n:>6} pools rep {}/{} {:<8} {} bytes/pool{}",
                    rep + 1,
                    cfg.reps,
                    c.name(),
                    m.bytes_per_pool
                        .map_or("?".to_owned(), |b| format!("{b:.0}")),
                    m.scrape.map_or(String::new(), |(ms, bytes)| format!(
                        ", /metrics {ms:.3} ms ({} KiB)",
                        bytes / 1024
                    ))
                ));
            }
        }
    }
    points
}

struct Measured {
    bytes_per_pool: Option<f64>,
    /// Median scrape ms and the text's size.
    scrape: Option<(f64, usize)>,
}

async fn settle() {
    tokio::time::sleep(Duration::from_millis(100)).await;
}

fn per(probe: Probe, n: usize) -> Option<f64> {
    probe.net().map(|b| b as f64 / n as f64)
}

/// One repetition of one contender, on a runtime of its own whose
/// allocations are counted.
fn measure(c: Contender, n: usize) -> Measured {
    on_own_runtime(move |probe| async move {
        match c {
            Contender::Tidepool => tidepool_registry(n, probe).await,
            Contender::Deadpool => plain_pools::<Deadpool>(n, probe).await,
            Contender::Bb8 => plain_pools::<Bb8>(n, probe).await,
            _ => Measured {
                bytes_per_pool: None,
                scrape: None,
            },
        }
    })
}

async fn tidepool_registry(n: usize, probe: Probe) -> Measured {
    let registry = Arc::new(tidepool::Registry::new());
    for i in 0..n {
        let pool = named_tidepool(format!("pool-{i:05}"), POOL_MAX);
        drop(pool.get().await.expect("tidepool get"));
        registry.insert(pool).expect("names are unique");
    }
    settle().await;
    let bytes_per_pool = per(probe, n);
    let state = tidepool_http::AppState::builder(Arc::clone(&registry)).build();
    let mut times = Vec::with_capacity(SCRAPES);
    let mut size = 0;
    for _ in 0..SCRAPES {
        let start = Instant::now();
        let text = tidepool_http::metrics::render(&state, None)
            .await
            .expect("rendering to a String cannot fail");
        times.push(start.elapsed().as_secs_f64() * 1000.0);
        size = std::hint::black_box(text).len();
    }
    registry.close_all();
    Measured {
        bytes_per_pool,
        scrape: Some((Spread::of(&times).median, size)),
    }
}

async fn plain_pools<P: AsyncPool>(n: usize, probe: Probe) -> Measured {
    let mut pools = Vec::with_capacity(n);
    for _ in 0..n {
        let pool = P::build(POOL_MAX);
        pool.warm(1).await;
        pools.push(pool);
    }
    settle().await;
    let bytes_per_pool = per(probe, n);
    drop(pools);
    Measured {
        bytes_per_pool,
        scrape: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_scrape_lists_every_pool() {
        let m = measure(Contender::Tidepool, 3);
        let (ms, bytes) = m.scrape.unwrap();
        assert!(ms > 0.0 && bytes > 0);
        // No counting allocator in the test binary.
        assert!(m.bytes_per_pool.is_none());
        let registry = Arc::new(tidepool::Registry::new());
        for i in 0..3 {
            registry
                .insert(named_tidepool(format!("pool-{i:05}"), 2))
                .unwrap();
        }
        let state = tidepool_http::AppState::builder(registry).build();
        let text = tidepool_http::metrics::render(&state, None).await.unwrap();
        for i in 0..3 {
            assert!(text.contains(&format!("pool=\"pool-{i:05}\"")), "{text}");
        }
    }
}
