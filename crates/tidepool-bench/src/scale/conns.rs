//! The one-pool curve: N idle connections in one pool.
//!
//! # Method
//! A pool of `max_size` N is built and warmed (every connection opened, by
//! holding N guards at once, then all returned) on a runtime of its own
//! (see [`on_own_runtime`]); the heap bytes it allocated from before the
//! build until 50 ms after the warm-up are the pool's bytes at N, and that
//! divided by N its bytes per connection (at small N the pool's own fixed
//! size dominates). Then another such pool is built on the suite's runtime
//! and, on one of its workers, the
//! uncontended loop of suite 2 (get, increment, drop) runs for the loop
//! budget after a tenth of it as warm-up: ns per get + return with N idle.
//! Last, the pool's statistics snapshot (tidepool `stats()`, deadpool
//! `status()`, bb8 `state()`) is called in a loop for a tenth of the
//! budget: ns per call.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::runtime::Runtime;

use super::ScaleConfig;
use super::peers::ScalePool;
use crate::memory::on_own_runtime;
use crate::pools::{Bb8, Contender, Deadpool, Tidepool};
use crate::stats::Spread;
use crate::uncontended::loop_async;

/// One contender at one count.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConnPoint {
    /// Contender name.
    pub contender: String,
    /// Connections in the pool.
    pub n: usize,
    /// ns per uncontended get + return, one per repetition.
    pub get_return_ns: Vec<f64>,
    /// Heap bytes of the pool with its N connections, one per repetition
    /// (empty when not counted).
    pub pool_bytes: Vec<f64>,
    /// ns per statistics snapshot, one per repetition.
    pub stats_ns: Vec<f64>,
}

impl ConnPoint {
    /// Min / median / max of get + return ns.
    pub fn get_return(&self) -> Spread {
        Spread::of(&self.get_return_ns)
    }

    /// Min / median / max of heap bytes per connection, if counted.
    pub fn bytes_per_conn(&self) -> Option<Spread> {
        let per: Vec<f64> = self.pool_bytes.iter().map(|b| b / self.n as f64).collect();
        (!per.is_empty()).then(|| Spread::of(&per))
    }

    /// Min / median / max of the pool's heap bytes, if counted.
    pub fn bytes(&self) -> Option<Spread> {
        (!self.pool_bytes.is_empty()).then(|| Spread::of(&self.pool_bytes))
    }

    /// Min / median / max of ns per statistics snapshot.
    pub fn stats(&self) -> Spread {
        Spread::of(&self.stats_ns)
    }
}

/// Runs the curve for the `chosen` contenders.
pub fn run(
    rt: &Runtime,
    cfg: &ScaleConfig,
    chosen: &[Contender],
    progress: &mut dyn FnMut(&str),
) -> Vec<ConnPoint> {
    let budget = Duration::from_millis(cfg.loop_ms);
    let mut points = Vec::new();
    let mut rng = fastrand::Rng::new();
    for &n in &cfg.conn_counts {
        let first = points.len();
        for &c in chosen {
            points.push(ConnPoint {
                contender: c.name().to_owned(),
                n,
                get_return_ns: Vec::new(),
                pool_bytes: Vec::new(),
                stats_ns: Vec::new(),
            });
        }
        for rep in 0..cfg.reps {
            for i in crate::pools::run_order(chosen.len(), &mut rng) {
                let c = chosen[i];
                let Some(m) = once(rt, c, n, budget) else {
                    continue;
                };
                let point = &mut points[first + i];
                point.get_return_ns.push(m.get_return_ns);
                point.stats_ns.push(m.stats_ns);
                if let Some(b) = m.pool_bytes {
                    point.pool_bytes.push(b);
                }
                progress(&format!(
                    "scale conns {n:>6} rep {}/{} {:<8} get+return {:>6.1} ns, {} bytes/conn, stats {:.0} ns",
                    rep + 1,
                    cfg.reps,
                    c.name(),
                    m.get_return_ns,
                    m.pool_bytes
                        .map_or("?".to_owned(), |b| format!("{:.0}", b / n as f64)),
                    m.stats_ns
                ));
            }
        }
    }
    points
}

struct Measured {
    get_return_ns: f64,
    pool_bytes: Option<f64>,
    stats_ns: f64,
}

fn once(rt: &Runtime, c: Contender, n: usize, budget: Duration) -> Option<Measured> {
    match c {
        Contender::Tidepool => Some(measure::<Tidepool>(rt, n, budget)),
        Contender::Deadpool => Some(measure::<Deadpool>(rt, n, budget)),
        Contender::Bb8 => Some(measure::<Bb8>(rt, n, budget)),
        _ => None,
    }
}

fn measure<P: ScalePool>(rt: &Runtime, n: usize, budget: Duration) -> Measured {
    // Counted on a runtime of its own, so that nothing else is.
    let pool_bytes = on_own_runtime(move |probe| async move {
        let pool = P::build(n);
        pool.warm(n).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        probe.net().map(|b| b as f64)
    });
    let (get_return_ns, stats_ns) = rt.block_on(async move {
        tokio::spawn(async move {
            let pool = P::build(n);
            pool.warm(n).await;
            loop_async(&pool, budget / 10).await;
            let get_return_ns = loop_async(&pool, budget).await;
            (get_return_ns, snapshot_ns(&pool, budget / 10))
        })
        .await
        .expect("the measuring task panicked")
    });
    Measured {
        get_return_ns,
        pool_bytes,
        stats_ns,
    }
}

/// Mean ns per statistics snapshot over about `budget` (at least 10 calls).
fn snapshot_ns<P: ScalePool>(pool: &P, budget: Duration) -> f64 {
    let start = Instant::now();
    let mut calls = 0u64;
    while calls < 10 || start.elapsed() < budget {
        pool.snapshot();
        calls += 1;
    }
    start.elapsed().as_nanos() as f64 / calls as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_contender_gives_figures() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        for c in super::super::CONTENDERS {
            let m = once(&rt, c, 20, Duration::from_millis(5)).unwrap();
            assert!(m.get_return_ns > 0.0 && m.stats_ns > 0.0, "{}", c.name());
            assert!(m.pool_bytes.is_none());
        }
    }
}
