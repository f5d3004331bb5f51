//! Suite 2: uncontended get + return latency, one task, nobody else using
//! the pool.
//!
//! # Method
//! One pool of [`POOL_SIZE`] warmed connections; one tokio task (spawned on
//! the multi-threaded runtime, so it runs on a worker thread like real code)
//! loops get → increment → drop in batches of [`BATCH`] until the time budget
//! is spent, after a warm-up of one budget's tenth. The figure is the mean
//! time of one get + drop, in nanoseconds. r2d2 runs the same loop on a
//! plain thread. The criterion bench `benches/uncontended.rs` measures the
//! same loop with criterion's statistics.

use std::hint::black_box;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::runtime::Runtime;

use crate::pools::{self, AsyncPool, Contender, with_async_pool};
use crate::stats::Spread;

/// Size of the pool (every connection opened before measuring).
pub const POOL_SIZE: usize = 8;

/// Gets between two reads of the clock.
pub const BATCH: u64 = 1000;

/// What to run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UncontendedConfig {
    /// Time spent measuring each contender in each repetition.
    pub budget_ms: u64,
    /// Repetitions.
    pub reps: usize,
    /// Only these contenders (by name); everyone when `None`.
    #[serde(default)]
    pub only: Option<Vec<String>>,
}

impl UncontendedConfig {
    /// The full run.
    pub fn full() -> Self {
        Self {
            budget_ms: 1000,
            reps: 5,
            only: None,
        }
    }

    /// The quick run.
    pub fn quick() -> Self {
        Self {
            budget_ms: 200,
            reps: 3,
            only: None,
        }
    }
}

/// One contender's figures.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UncontendedRow {
    /// Contender name.
    pub contender: String,
    /// Mean nanoseconds per get + drop, one value per repetition.
    pub ns_per_op: Vec<f64>,
}

impl UncontendedRow {
    /// Min / median / max over repetitions.
    pub fn spread(&self) -> Spread {
        Spread::of(&self.ns_per_op)
    }
}

/// The suite's results.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UncontendedResults {
    /// What was run.
    pub config: UncontendedConfig,
    /// One row per contender, in table order.
    pub rows: Vec<UncontendedRow>,
}

/// The contenders of this suite, in table order.
pub const CONTENDERS: [Contender; 7] = [
    Contender::Tidepool,
    Contender::Deadpool,
    Contender::Bb8,
    Contender::Qp,
    Contender::Mobc,
    Contender::R2d2,
    Contender::FifoFloor,
];

/// Runs the suite on `rt`: every repetition runs each contender once, in a
/// random order (see [`run_order`](crate::pools::run_order)).
pub fn run(
    rt: &Runtime,
    cfg: &UncontendedConfig,
    progress: &mut dyn FnMut(&str),
) -> UncontendedResults {
    let budget = Duration::from_millis(cfg.budget_ms);
    let chosen: Vec<Contender> = CONTENDERS
        .into_iter()
        .filter(|c| pools::selected(cfg.only.as_deref(), c.name()))
        .collect();
    let mut rows: Vec<UncontendedRow> = chosen
        .iter()
        .map(|c| UncontendedRow {
            contender: c.name().to_owned(),
            ns_per_op: Vec::new(),
        })
        .collect();
    let mut rng = fastrand::Rng::new();
    for rep in 0..cfg.reps {
        for i in pools::run_order(chosen.len(), &mut rng) {
            let (row, contender) = (&mut rows[i], chosen[i]);
            let ns = measure(rt, contender, budget);
            progress(&format!(
                "uncontended rep {}/{} {:<9} {ns:>8.1} ns/op",
                rep + 1,
                cfg.reps,
                contender.name()
            ));
            row.ns_per_op.push(ns);
        }
    }
    UncontendedResults {
        config: cfg.clone(),
        rows,
    }
}

/// Mean nanoseconds per get + drop of one contender.
pub fn measure(rt: &Runtime, contender: Contender, budget: Duration) -> f64 {
    with_async_pool!(contender, P => {
        rt.block_on(async move {
            tokio::spawn(ns_per_op_async::<P>(budget))
                .await
                .expect("the measuring task panicked")
        })
    }, _ => ns_per_op_r2d2(budget))
}

/// Runs the loop on `pool` for about `budget`; returns nanoseconds per
/// get + drop.
pub async fn loop_async<P: AsyncPool>(pool: &P, budget: Duration) -> f64 {
    let mut ops = 0u64;
    let start = Instant::now();
    let elapsed = loop {
        for _ in 0..BATCH {
            let mut conn = pool.acquire().await;
            *conn = black_box(*conn + 1);
        }
        ops += BATCH;
        let elapsed = start.elapsed();
        if elapsed >= budget {
            break elapsed;
        }
    };
    elapsed.as_nanos() as f64 / ops as f64
}

/// A fresh warmed pool of type `P`, warmed-up loop, then the measured loop.
pub async fn ns_per_op_async<P: AsyncPool>(budget: Duration) -> f64 {
    let pool = P::build(POOL_SIZE);
    pool.warm(POOL_SIZE).await;
    loop_async(&pool, budget / 10).await;
    loop_async(&pool, budget).await
}

/// The same for r2d2, on the calling thread.
pub fn ns_per_op_r2d2(budget: Duration) -> f64 {
    let pool = pools::r2d2_pool(POOL_SIZE);
    let run = |budget: Duration| {
        let mut ops = 0u64;
        let start = Instant::now();
        let elapsed = loop {
            for _ in 0..BATCH {
                let mut conn = pool.get().expect("r2d2 get");
                *conn = black_box(*conn + 1);
            }
            ops += BATCH;
            let elapsed = start.elapsed();
            if elapsed >= budget {
                break elapsed;
            }
        };
        elapsed.as_nanos() as f64 / ops as f64
    };
    run(budget / 10);
    run(budget)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_contender_gives_a_positive_figure() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        for contender in CONTENDERS {
            let ns = measure(&rt, contender, Duration::from_millis(5));
            assert!(ns > 0.0 && ns.is_finite(), "{}: {ns}", contender.name());
        }
    }
}
