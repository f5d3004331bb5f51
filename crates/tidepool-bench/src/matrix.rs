//! Suite 1: the in-memory contention matrix, after the public
//! rust-pool-benchmark method.
//!
//! # Method
//! For each pool size and worker count, a fresh pool of `i32`s is built and
//! warmed (every connection opened). One *iteration* starts the clock,
//! spawns `workers` tokio tasks that each do `OPS_PER_WORKER` × (get,
//! increment, drop), and stops the clock when all have finished. The figure
//! of one repetition is the median iteration time over `iterations`
//! iterations; repetitions are interleaved (every contender runs once per
//! repetition before the next repetition starts) so a burst of noise on the
//! machine spreads over all contenders instead of hitting one.
//!
//! r2d2 is blocking: its workers are OS threads (spawned after the clock
//! starts, like the tasks), and only up to [`R2D2_MAX_WORKERS`]. The "no
//! pool" baseline spawns the same tasks doing an atomic increment instead of
//! get + drop: the cost of the tasks themselves.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::runtime::Runtime;

use crate::pools::{self, AsyncPool, Contender, with_async_pool};
use crate::stats::Spread;

/// Gets per worker per iteration, as in the original method.
pub const OPS_PER_WORKER: usize = 10;

/// r2d2 runs one OS thread per worker, so only up to this many workers.
pub const R2D2_MAX_WORKERS: usize = 64;

/// What to run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MatrixConfig {
    /// Pool sizes (the original: 4, 8, 16).
    pub pool_sizes: Vec<usize>,
    /// Worker counts (the original: 4, 16, 64, 256).
    pub workers: Vec<usize>,
    /// Iterations per repetition, of which the median is kept (the original
    /// ran 1000 and kept the median).
    pub iterations: usize,
    /// Repetitions.
    pub reps: usize,
    /// Only these contenders (by name); everyone when `None`.
    #[serde(default)]
    pub only: Option<Vec<String>>,
}

impl MatrixConfig {
    /// The full run.
    pub fn full() -> Self {
        Self {
            pool_sizes: vec![4, 8, 16],
            workers: vec![4, 16, 64, 256],
            iterations: 1000,
            reps: 5,
            only: None,
        }
    }

    /// The quick run: same matrix, fewer iterations and repetitions.
    pub fn quick() -> Self {
        Self {
            iterations: 100,
            reps: 3,
            ..Self::full()
        }
    }
}

/// One contender in one cell of the matrix.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MatrixCell {
    /// Pool size.
    pub pool_size: usize,
    /// Concurrent workers.
    pub workers: usize,
    /// Contender name.
    pub contender: String,
    /// Median iteration time of each repetition, in microseconds.
    pub medians_us: Vec<f64>,
}

impl MatrixCell {
    /// Min / median / max of the repetitions' medians.
    pub fn spread(&self) -> Spread {
        Spread::of(&self.medians_us)
    }
}

/// The suite's results.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MatrixResults {
    /// What was run.
    pub config: MatrixConfig,
    /// Contender names, in table order.
    pub contenders: Vec<String>,
    /// Every cell measured.
    pub cells: Vec<MatrixCell>,
    /// Cells a contender could not finish, and why.
    pub failures: Vec<String>,
}

impl MatrixResults {
    /// The cell of `contender` at (`pool_size`, `workers`), if measured.
    pub fn cell(&self, pool_size: usize, workers: usize, contender: &str) -> Option<&MatrixCell> {
        self.cells
            .iter()
            .find(|c| c.pool_size == pool_size && c.workers == workers && c.contender == contender)
    }
}

/// The contenders of this suite, in table order.
pub const CONTENDERS: [Contender; 8] = [
    Contender::Tidepool,
    Contender::Deadpool,
    Contender::Bb8,
    Contender::Qp,
    Contender::Mobc,
    Contender::R2d2,
    Contender::FifoFloor,
    Contender::NoPool,
];

/// The contenders in the order one cell runs them: [`CONTENDERS`] rotated
/// by `turn`, so that no contender always runs first (the first one in a
/// cell after a change of worker count finds the runtime's threads in
/// another state, and the 4-worker cells, which take ~30 µs, feel it).
fn running_order(turn: usize) -> impl Iterator<Item = Contender> {
    let n = CONTENDERS.len();
    (0..n).map(move |i| CONTENDERS[(turn + i) % n])
}

/// Runs the suite on `rt`, reporting progress through `progress`.
pub fn run(rt: &Runtime, cfg: &MatrixConfig, progress: &mut dyn FnMut(&str)) -> MatrixResults {
    let mut cells: Vec<MatrixCell> = Vec::new();
    let mut failures: Vec<String> = Vec::new();
    let mut failed: Vec<(Contender, usize, usize)> = Vec::new();
    let mut cell_no = 0;
    for rep in 0..cfg.reps {
        for &size in &cfg.pool_sizes {
            for &workers in &cfg.workers {
                cell_no += 1;
                for contender in running_order(rep + cell_no) {
                    if !pools::selected(cfg.only.as_deref(), contender.name())
                        || contender == Contender::R2d2 && workers > R2D2_MAX_WORKERS
                        || failed.contains(&(contender, size, workers))
                    {
                        continue;
                    }
                    let times = match measure(rt, contender, size, workers, cfg.iterations) {
                        Ok(times) => times,
                        Err(why) => {
                            let msg = format!(
                                "{} at pool size {size}, {workers} workers: {why}",
                                contender.name()
                            );
                            progress(&format!("matrix: {msg}"));
                            failures.push(msg);
                            failed.push((contender, size, workers));
                            continue;
                        }
                    };
                    let median = median_us(times);
                    progress(&format!(
                        "matrix rep {}/{} size {size:>2} workers {workers:>3} {:<9} {median:>9.1} µs",
                        rep + 1,
                        cfg.reps,
                        contender.name()
                    ));
                    let name = contender.name();
                    match cells.iter_mut().find(|c| {
                        c.pool_size == size && c.workers == workers && c.contender == name
                    }) {
                        Some(cell) => cell.medians_us.push(median),
                        None => cells.push(MatrixCell {
                            pool_size: size,
                            workers,
                            contender: name.to_owned(),
                            medians_us: vec![median],
                        }),
                    }
                }
            }
        }
    }
    MatrixResults {
        config: cfg.clone(),
        contenders: CONTENDERS
            .iter()
            .map(|c| c.name())
            .filter(|name| pools::selected(cfg.only.as_deref(), name))
            .map(str::to_owned)
            .collect(),
        cells,
        failures,
    }
}

fn median_us(mut times: Vec<Duration>) -> f64 {
    times.sort();
    times
        .get(times.len() / 2)
        .map_or(0.0, |d| d.as_secs_f64() * 1e6)
}

/// How long one async contender may take for one cell before it counts as
/// stalled: 30 s plus 20 ms per iteration (the slowest healthy cell takes
/// about 5 ms per iteration on two cores).
pub fn stall_limit(iterations: usize) -> Duration {
    Duration::from_secs(30)
        + Duration::from_millis(20) * u32::try_from(iterations).unwrap_or(u32::MAX)
}

/// The iteration times of one contender in one cell.
///
/// # Errors
/// When an async contender stalls (see [`stall_limit`]); its stuck tasks are
/// left behind, parked, as they cannot be reached from here.
pub fn measure(
    rt: &Runtime,
    contender: Contender,
    pool_size: usize,
    workers: usize,
    iterations: usize,
) -> Result<Vec<Duration>, String> {
    let limit = stall_limit(iterations);
    with_async_pool!(contender, P => rt
    .block_on(async {
        tokio::time::timeout(limit, iterations_async::<P>(pool_size, workers, iterations))
            .await
    })
    .map_err(|_| format!("stalled: not finished after {limit:?}")),
    _ => Ok(match contender {
        Contender::R2d2 => iterations_r2d2(pool_size, workers, iterations),
        _ => rt.block_on(iterations_baseline(workers, iterations)),
    }))
}

/// One contender's iterations, on the runtime's worker threads.
pub async fn iterations_async<P: AsyncPool>(
    pool_size: usize,
    workers: usize,
    iterations: usize,
) -> Vec<Duration> {
    let pool = P::build(pool_size);
    pool.warm(pool_size).await;
    iterations_on(&pool, workers, iterations).await
}

/// The iterations on a pool already built and warmed.
pub async fn iterations_on<P: AsyncPool>(
    pool: &P,
    workers: usize,
    iterations: usize,
) -> Vec<Duration> {
    time_rounds(workers, iterations, || {
        let pool = pool.clone();
        async move {
            for _ in 0..OPS_PER_WORKER {
                let mut conn = pool.acquire().await;
                *conn += 1;
            }
        }
    })
    .await
}

/// The baseline: the same tasks, an atomic increment instead of a pool.
pub async fn iterations_baseline(workers: usize, iterations: usize) -> Vec<Duration> {
    let counter = Arc::new(AtomicI32::new(0));
    time_rounds(workers, iterations, || {
        let counter = Arc::clone(&counter);
        async move {
            for _ in 0..OPS_PER_WORKER {
                counter.fetch_add(1, Ordering::Relaxed);
            }
        }
    })
    .await
}

/// Times `iterations` rounds; each round spawns `workers` tasks made by
/// `task` and waits for all of them.
async fn time_rounds<F, Fut>(workers: usize, iterations: usize, task: F) -> Vec<Duration>
where
    F: Fn() -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut times = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let start = Instant::now();
        let handles: Vec<_> = (0..workers).map(|_| tokio::spawn(task())).collect();
        for handle in handles {
            handle.await.expect("a worker panicked");
        }
        times.push(start.elapsed());
    }
    times
}

/// r2d2's iterations, with one OS thread per worker.
pub fn iterations_r2d2(pool_size: usize, workers: usize, iterations: usize) -> Vec<Duration> {
    let pool = pools::r2d2_pool(pool_size);
    let mut times = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let start = Instant::now();
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                let pool = pool.clone();
                std::thread::spawn(move || {
                    for _ in 0..OPS_PER_WORKER {
                        let mut conn = pool.get().expect("r2d2 get");
                        *conn += 1;
                    }
                })
            })
            .collect();
        for handle in handles {
            handle.join().expect("a worker panicked");
        }
        times.push(start.elapsed());
    }
    times
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_cell_runs_every_contender_once_and_the_first_rotates() {
        let mut firsts = Vec::new();
        for turn in 0..CONTENDERS.len() {
            let order: Vec<Contender> = running_order(turn).collect();
            let mut names: Vec<&str> = order.iter().map(|c| c.name()).collect();
            names.sort_unstable();
            let mut all: Vec<&str> = CONTENDERS.iter().map(|c| c.name()).collect();
            all.sort_unstable();
            assert_eq!(names, all);
            firsts.push(order[0]);
        }
        assert_eq!(firsts.len(), CONTENDERS.len());
        assert!(CONTENDERS.iter().all(|c| firsts.contains(c)), "{firsts:?}");
    }

    #[test]
    fn every_contender_completes_a_small_cell() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        for contender in CONTENDERS {
            let times = measure(&rt, contender, 2, 8, 3).unwrap();
            assert_eq!(times.len(), 3, "{}", contender.name());
        }
    }

    #[test]
    fn tidepool_does_every_get_on_the_warmed_connections() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let pool = crate::pools::Tidepool::build(4);
            pool.warm(4).await;
            iterations_on(&pool, 16, 1).await;
            let counters = pool.0.counters();
            assert_eq!(
                counters.created, 4,
                "no connection was opened after warm-up"
            );
            assert_eq!(counters.checkouts, 4 + 16 * OPS_PER_WORKER as u64);
        });
    }
}
