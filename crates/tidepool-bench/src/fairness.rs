//! Suite 3: fairness and tail latency under heavy oversubscription.
//!
//! # Method
//! [`TASKS`] tokio tasks share a pool of [`POOL_SIZE`] warmed connections.
//! All are spawned at once; each does `rounds` × (get, hold, drop) and
//! records how long every get waited (from the call to holding the guard).
//! The hold is `tokio::time::sleep(hold)`: the task keeps the connection
//! while it waits on a timer, as it would wait on a database, so it does not
//! occupy one of the runtime's two worker threads meanwhile (a busy spin
//! would, and would make the scheduler, not the pool, decide who waits).
//! tokio's timer has millisecond resolution, so a 1 ms hold lasts 1–2 ms.
//!
//! With strict FIFO service every get waits about `TASKS / POOL_SIZE` holds,
//! so p50 ≈ p99 ≈ max: a long tail means some callers were overtaken again
//! and again. The suite reports p50 / p99 / p99.9 / max wait per repetition,
//! and the throughput (gets per second) so that fairness bought by speed, or
//! the reverse, shows. r2d2 is left out: it would need a thousand OS threads.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::runtime::Runtime;

use crate::pools::{AsyncPool, Contender, with_async_pool};
use crate::stats::{Spread, quantile};

/// Concurrent tasks.
pub const TASKS: usize = 1000;

/// Connections in the pool.
pub const POOL_SIZE: usize = 50;

/// What to run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FairnessConfig {
    /// Gets per task.
    pub rounds: usize,
    /// How long each get holds its connection, in microseconds.
    pub hold_us: u64,
    /// Repetitions.
    pub reps: usize,
}

impl FairnessConfig {
    /// The full run.
    pub fn full() -> Self {
        Self {
            rounds: 20,
            hold_us: 1000,
            reps: 5,
        }
    }

    /// The quick run.
    pub fn quick() -> Self {
        Self {
            rounds: 5,
            hold_us: 1000,
            reps: 3,
        }
    }
}

/// The figures of one repetition of one contender.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct WaitFigures {
    /// Median wait, µs.
    pub p50_us: f64,
    /// 99th percentile wait, µs.
    pub p99_us: f64,
    /// 99.9th percentile wait, µs.
    pub p999_us: f64,
    /// Longest wait, µs.
    pub max_us: f64,
    /// Gets per second over the whole repetition.
    pub gets_per_s: f64,
}

/// One contender's repetitions.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FairnessRow {
    /// Contender name.
    pub contender: String,
    /// One entry per repetition.
    pub reps: Vec<WaitFigures>,
}

impl FairnessRow {
    /// Min / median / max over repetitions of one figure.
    pub fn spread(&self, figure: impl Fn(&WaitFigures) -> f64) -> Spread {
        Spread::of(&self.reps.iter().map(figure).collect::<Vec<_>>())
    }
}

/// The suite's results.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FairnessResults {
    /// What was run.
    pub config: FairnessConfig,
    /// Tasks and pool size.
    pub tasks: usize,
    /// Connections.
    pub pool_size: usize,
    /// One row per contender, in table order.
    pub rows: Vec<FairnessRow>,
}

/// The contenders of this suite, in table order.
pub const CONTENDERS: [Contender; 5] = Contender::ASYNC;

/// Runs the suite on `rt`.
pub fn run(rt: &Runtime, cfg: &FairnessConfig, progress: &mut dyn FnMut(&str)) -> FairnessResults {
    let mut rows: Vec<FairnessRow> = CONTENDERS
        .iter()
        .map(|c| FairnessRow {
            contender: c.name().to_owned(),
            reps: Vec::new(),
        })
        .collect();
    for rep in 0..cfg.reps {
        for (row, contender) in rows.iter_mut().zip(CONTENDERS) {
            let f = measure(rt, contender, TASKS, POOL_SIZE, cfg);
            progress(&format!(
                "fairness rep {}/{} {:<9} p50 {:>8.0} µs  p99 {:>8.0} µs  p99.9 {:>8.0} µs  max {:>8.0} µs  {:>7.0} gets/s",
                rep + 1,
                cfg.reps,
                contender.name(),
                f.p50_us,
                f.p99_us,
                f.p999_us,
                f.max_us,
                f.gets_per_s
            ));
            row.reps.push(f);
        }
    }
    FairnessResults {
        config: cfg.clone(),
        tasks: TASKS,
        pool_size: POOL_SIZE,
        rows,
    }
}

/// One repetition of one async contender.
///
/// # Panics
/// For r2d2 or the baseline, which this suite does not run.
pub fn measure(
    rt: &Runtime,
    contender: Contender,
    tasks: usize,
    pool_size: usize,
    cfg: &FairnessConfig,
) -> WaitFigures {
    let rounds = cfg.rounds;
    let hold = Duration::from_micros(cfg.hold_us);
    let waits = with_async_pool!(contender, P => {
        rt.block_on(waits_async::<P>(tasks, pool_size, rounds, hold))
    }, _ => panic!("the fairness suite runs async pools only"));
    figures(waits)
}

/// Every wait (in nanoseconds) of one run, and the run's wall time.
pub async fn waits_async<P: AsyncPool>(
    tasks: usize,
    pool_size: usize,
    rounds: usize,
    hold: Duration,
) -> (Vec<u64>, Duration) {
    let pool = P::build(pool_size);
    pool.warm(pool_size).await;
    let start = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let mut waits = Vec::with_capacity(rounds);
                for _ in 0..rounds {
                    let asked = Instant::now();
                    let conn = pool.acquire().await;
                    waits.push(u64::try_from(asked.elapsed().as_nanos()).unwrap_or(u64::MAX));
                    tokio::time::sleep(hold).await;
                    drop(conn);
                }
                waits
            })
        })
        .collect();
    let mut all = Vec::with_capacity(tasks * rounds);
    for handle in handles {
        all.extend(handle.await.expect("a task panicked"));
    }
    (all, start.elapsed())
}

fn figures((mut waits, wall): (Vec<u64>, Duration)) -> WaitFigures {
    waits.sort_unstable();
    let us = |ns: u64| ns as f64 / 1e3;
    WaitFigures {
        p50_us: us(quantile(&waits, 0.50)),
        p99_us: us(quantile(&waits, 0.99)),
        p999_us: us(quantile(&waits, 0.999)),
        max_us: us(waits.last().copied().unwrap_or(0)),
        gets_per_s: waits.len() as f64 / wall.as_secs_f64().max(1e-9),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_contender_serves_every_get() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let cfg = FairnessConfig {
            rounds: 2,
            hold_us: 100,
            reps: 1,
        };
        for contender in CONTENDERS {
            let f = measure(&rt, contender, 40, 4, &cfg);
            assert!(f.p50_us <= f.p99_us && f.p99_us <= f.max_us, "{f:?}");
            assert!(f.gets_per_s > 0.0);
        }
    }
}
