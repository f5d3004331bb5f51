//! Suite 1: the in-memory contention matrix, after the public
//! rust-pool-benchmark method.
//!
//! # Method
//! For each pool size and worker count, a fresh pool of `i32`s is built and
//! warmed (every connection opened) for every contender. One *iteration*
//! starts the clock, spawns `workers` tokio tasks that each do
//! `OPS_PER_WORKER` × (get, increment, drop), and stops the clock when all
//! have finished. The contenders take turns iteration by iteration (a
//! *round* is one iteration of each, in a random order drawn afresh each
//! round; see [`measure_cell`]), so that the machine's phases, and whatever
//! ran just before, fall on all of them alike, and two contenders'
//! iterations of one round form a pair.
//! The figure of one repetition is each contender's median iteration time
//! over `iterations` rounds, and beside it the share of rounds in which it
//! was faster than tidepool.
//!
//! r2d2 is blocking: its workers are OS threads (spawned after the clock
//! starts, like the tasks), and only up to [`R2D2_MAX_WORKERS`]. The "no
//! pool" baseline spawns the same tasks doing an atomic increment instead of
//! get + drop: the cost of the tasks themselves.

use std::future::Future;
use std::pin::Pin;
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
    /// For each repetition, the share of its rounds (0.0–1.0) in which this
    /// contender's iteration was faster than tidepool's iteration of the
    /// same round; empty for tidepool itself and in results stored before
    /// rounds were interleaved.
    #[serde(default)]
    pub faster_than_tidepool: Vec<f64>,
}

impl MatrixCell {
    /// Min / median / max of the repetitions' medians.
    pub fn spread(&self) -> Spread {
        Spread::of(&self.medians_us)
    }

    /// The median over repetitions of [`faster_than_tidepool`](Self::faster_than_tidepool),
    /// if it was recorded.
    pub fn share_faster_than_tidepool(&self) -> Option<f64> {
        (!self.faster_than_tidepool.is_empty())
            .then(|| Spread::of(&self.faster_than_tidepool).median)
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

    /// The peer with the lowest median at (`pool_size`, `workers`): a pool
    /// other than tidepool, not one of the [`REFERENCES`].
    pub fn best_peer(&self, pool_size: usize, workers: usize) -> Option<&MatrixCell> {
        self.contenders
            .iter()
            .filter(|c| *c != Contender::Tidepool.name() && !REFERENCES.contains(&c.as_str()))
            .filter_map(|c| self.cell(pool_size, workers, c))
            .min_by(|a, b| a.spread().median.total_cmp(&b.spread().median))
    }
}

/// The rows that are not pools (the cost of the tasks alone, and of strict
/// FIFO by itself): shown beside the pools, never counted as peers.
pub const REFERENCES: [&str; 2] = ["fifo floor", "no pool"];

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

/// Runs the suite on `rt`, reporting progress through `progress`.
pub fn run(rt: &Runtime, cfg: &MatrixConfig, progress: &mut dyn FnMut(&str)) -> MatrixResults {
    let mut cells: Vec<MatrixCell> = Vec::new();
    let mut failures: Vec<String> = Vec::new();
    let mut failed: Vec<(Contender, usize, usize)> = Vec::new();
    for rep in 0..cfg.reps {
        for &size in &cfg.pool_sizes {
            for &workers in &cfg.workers {
                let contenders: Vec<Contender> = CONTENDERS
                    .into_iter()
                    .filter(|&c| {
                        pools::selected(cfg.only.as_deref(), c.name())
                            && !(c == Contender::R2d2 && workers > R2D2_MAX_WORKERS)
                            && !failed.contains(&(c, size, workers))
                    })
                    .collect();
                let measured = measure_cell(rt, &contenders, size, workers, cfg.iterations);
                let tidepool = measured
                    .iter()
                    .find(|(c, _)| *c == Contender::Tidepool)
                    .and_then(|(_, times)| times.as_ref().ok());
                for (contender, times) in &measured {
                    let name = contender.name();
                    let times = match times {
                        Ok(times) => times,
                        Err(why) => {
                            let msg =
                                format!("{name} at pool size {size}, {workers} workers: {why}");
                            progress(&format!("matrix: {msg}"));
                            failures.push(msg);
                            failed.push((*contender, size, workers));
                            continue;
                        }
                    };
                    let median = median_us(times);
                    let faster = tidepool
                        .filter(|_| *contender != Contender::Tidepool)
                        .map(|t| share_faster(times, t));
                    progress(&format!(
                        "matrix rep {}/{} size {size:>2} workers {workers:>3} {name:<9} {median:>9.1} µs{}",
                        rep + 1,
                        cfg.reps,
                        faster.map_or(String::new(), |f| format!(
                            "  faster than tidepool in {:.0} % of rounds",
                            f * 100.0
                        ))
                    ));
                    let cell = match cells.iter_mut().position(|c| {
                        c.pool_size == size && c.workers == workers && c.contender == name
                    }) {
                        Some(i) => &mut cells[i],
                        None => {
                            cells.push(MatrixCell {
                                pool_size: size,
                                workers,
                                contender: name.to_owned(),
                                medians_us: Vec::new(),
                                faster_than_tidepool: Vec::new(),
                            });
                            cells.last_mut().expect("just pushed")
                        }
                    };
                    cell.medians_us.push(median);
                    cell.faster_than_tidepool.extend(faster);
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

fn median_us(times: &[Duration]) -> f64 {
    let mut times = times.to_vec();
    times.sort();
    times
        .get(times.len() / 2)
        .map_or(0.0, |d| d.as_secs_f64() * 1e6)
}

/// The share of rounds (0.0–1.0) in which `times` beat `reference`, the same
/// round's iteration of another contender; about 0.5 when neither is faster
/// than the other, and equal times count for neither.
fn share_faster(times: &[Duration], reference: &[Duration]) -> f64 {
    let rounds = times.len().min(reference.len());
    if rounds == 0 {
        return 0.0;
    }
    let faster = times.iter().zip(reference).filter(|(t, r)| t < r).count();
    faster as f64 / rounds as f64
}

/// How long one iteration may take before its contender counts as stalled
/// (the slowest healthy one takes about 5 ms on two cores).
pub const ITERATION_LIMIT: Duration = Duration::from_secs(30);

/// Every contender's iteration times in one cell (or why it could not
/// finish), in the order given.
///
/// Every pool is built and warmed first; then the contenders take turns
/// iteration by iteration, in an order drawn afresh for every round (see
/// [`pools::run_order`]). So each contender's iterations are spread over
/// the whole cell, side by side with every other contender's: a phase of
/// the machine or of the runtime (on a 2-core VM the same loop's iteration
/// time moves between distinct levels from one stretch of iterations to the
/// next) falls on all of them alike, and iteration `i` of two contenders
/// can be compared as a pair.
///
/// A contender stalled in an iteration (see [`ITERATION_LIMIT`]) sits out
/// the rest of the cell; its stuck tasks are left behind, parked, as they
/// cannot be reached from here.
pub fn measure_cell(
    rt: &Runtime,
    contenders: &[Contender],
    pool_size: usize,
    workers: usize,
    iterations: usize,
) -> Vec<(Contender, Result<Vec<Duration>, String>)> {
    // Pools are built, used and dropped inside the runtime's context.
    let _context = rt.enter();
    let runners: Vec<Runner> = contenders
        .iter()
        .map(|&c| Runner::new(rt, c, pool_size))
        .collect();
    let mut out: Vec<Result<Vec<Duration>, String>> = contenders
        .iter()
        .map(|_| Ok(Vec::with_capacity(iterations)))
        .collect();
    let mut rng = fastrand::Rng::new();
    for _ in 0..iterations {
        for j in pools::run_order(contenders.len(), &mut rng) {
            if let Ok(times) = &mut out[j] {
                match runners[j].once(rt, workers) {
                    Ok(t) => times.push(t),
                    Err(why) => out[j] = Err(why),
                }
            }
        }
    }
    drop(runners);
    contenders.iter().copied().zip(out).collect()
}

/// One contender set up for a cell: its pool built and warmed.
enum Runner {
    Async(Box<dyn Iterate>),
    R2d2(r2d2::Pool<pools::R2d2Ints>),
    NoPool(Arc<AtomicI32>),
}

impl Runner {
    fn new(rt: &Runtime, contender: Contender, pool_size: usize) -> Self {
        with_async_pool!(contender, P => Runner::Async(Box::new(rt.block_on(async {
            let pool = P::build(pool_size);
            pool.warm(pool_size).await;
            pool
        }))), _ => match contender {
            Contender::R2d2 => Runner::R2d2(pools::r2d2_pool(pool_size)),
            _ => Runner::NoPool(Arc::default()),
        })
    }

    /// Times one iteration.
    fn once(&self, rt: &Runtime, workers: usize) -> Result<Duration, String> {
        match self {
            Runner::Async(pool) => rt
                .block_on(tokio::time::timeout(ITERATION_LIMIT, pool.once(workers)))
                .map_err(|_| {
                    format!("stalled: an iteration had not finished after {ITERATION_LIMIT:?}")
                }),
            Runner::R2d2(pool) => Ok(iteration_r2d2(pool, workers)),
            Runner::NoPool(counter) => Ok(rt.block_on(iteration_baseline(counter, workers))),
        }
    }
}

/// An async pool, timing one iteration at a time.
trait Iterate {
    fn once(&self, workers: usize) -> Pin<Box<dyn Future<Output = Duration> + Send + '_>>;
}

impl<P: AsyncPool> Iterate for P {
    fn once(&self, workers: usize) -> Pin<Box<dyn Future<Output = Duration> + Send + '_>> {
        Box::pin(iteration_on(self, workers))
    }
}

/// One iteration on a pool already built and warmed: `workers` tasks, each
/// doing [`OPS_PER_WORKER`] × (get, increment, drop).
pub async fn iteration_on<P: AsyncPool>(pool: &P, workers: usize) -> Duration {
    time_iteration(workers, || {
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
async fn iteration_baseline(counter: &Arc<AtomicI32>, workers: usize) -> Duration {
    time_iteration(workers, || {
        let counter = Arc::clone(counter);
        async move {
            for _ in 0..OPS_PER_WORKER {
                counter.fetch_add(1, Ordering::Relaxed);
            }
        }
    })
    .await
}

/// Times one iteration: spawns `workers` tasks made by `task` and waits for
/// all of them.
async fn time_iteration<F, Fut>(workers: usize, task: F) -> Duration
where
    F: Fn() -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let start = Instant::now();
    let handles: Vec<_> = (0..workers).map(|_| tokio::spawn(task())).collect();
    for handle in handles {
        handle.await.expect("a worker panicked");
    }
    start.elapsed()
}

/// One r2d2 iteration, with one OS thread per worker.
fn iteration_r2d2(pool: &r2d2::Pool<pools::R2d2Ints>, workers: usize) -> Duration {
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
    start.elapsed()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime() -> Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn every_contender_completes_a_small_cell() {
        let rt = runtime();
        let measured = measure_cell(&rt, &CONTENDERS, 2, 8, 3);
        assert_eq!(measured.len(), CONTENDERS.len());
        for ((contender, times), expected) in measured.into_iter().zip(CONTENDERS) {
            assert_eq!(contender, expected);
            let times = times.unwrap_or_else(|e| panic!("{}: {e}", contender.name()));
            assert_eq!(times.len(), 3, "{}", contender.name());
            assert!(times.iter().all(|t| !t.is_zero()), "{}", contender.name());
        }
    }

    #[test]
    fn the_share_faster_compares_rounds_pairwise() {
        let us = |v: &[u64]| {
            v.iter()
                .map(|&x| Duration::from_micros(x))
                .collect::<Vec<_>>()
        };
        let reference = us(&[10, 10, 10, 10]);
        assert_eq!(share_faster(&us(&[9, 11, 9, 10]), &reference), 0.5);
        assert_eq!(share_faster(&us(&[1, 1, 1, 1]), &reference), 1.0);
        assert_eq!(share_faster(&reference, &reference), 0.0);
        // A contender that ran fewer rounds is compared on those only.
        assert_eq!(share_faster(&us(&[9]), &reference), 1.0);
        assert_eq!(share_faster(&[], &reference), 0.0);
    }

    #[test]
    fn a_run_records_every_cell_and_the_paired_share() {
        let rt = runtime();
        let cfg = MatrixConfig {
            pool_sizes: vec![2],
            workers: vec![4],
            iterations: 5,
            reps: 2,
            only: Some(vec!["tidepool".into(), "qp".into(), "no pool".into()]),
        };
        let r = run(&rt, &cfg, &mut |_| {});
        assert_eq!(r.contenders, ["tidepool", "qp", "no pool"]);
        assert!(r.failures.is_empty(), "{:?}", r.failures);
        let tidepool = r.cell(2, 4, "tidepool").unwrap();
        assert_eq!(tidepool.medians_us.len(), 2);
        assert!(tidepool.faster_than_tidepool.is_empty());
        let qp = r.cell(2, 4, "qp").unwrap();
        assert_eq!(qp.faster_than_tidepool.len(), 2);
        assert!(
            qp.faster_than_tidepool
                .iter()
                .all(|s| (0.0..=1.0).contains(s))
        );
        assert!(r.cell(2, 4, "deadpool").is_none());
    }

    #[test]
    fn tidepool_does_every_get_on_the_warmed_connections() {
        let rt = runtime();
        rt.block_on(async {
            let pool = crate::pools::Tidepool::build(4);
            pool.warm(4).await;
            iteration_on(&pool, 16).await;
            let counters = pool.0.counters();
            assert_eq!(
                counters.created, 4,
                "no connection was opened after warm-up"
            );
            assert_eq!(counters.checkouts, 4 + 16 * OPS_PER_WORKER as u64);
        });
    }
}
