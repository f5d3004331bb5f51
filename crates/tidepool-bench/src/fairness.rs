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

use std::fmt;
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
    /// Only these contenders (by name); everyone when `None`.
    #[serde(default)]
    pub only: Option<Vec<String>>,
}

impl FairnessConfig {
    /// The full run.
    pub fn full() -> Self {
        Self {
            rounds: 20,
            hold_us: 1000,
            reps: 5,
            only: None,
        }
    }

    /// The quick run.
    pub fn quick() -> Self {
        Self {
            rounds: 5,
            hold_us: 1000,
            reps: 3,
            only: None,
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
    /// Why the contender could not finish, if it could not (it is not run
    /// again in later repetitions).
    pub failure: Option<String>,
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
pub const CONTENDERS: [Contender; 6] = [
    Contender::Tidepool,
    Contender::Deadpool,
    Contender::Bb8,
    Contender::Qp,
    Contender::Mobc,
    Contender::FifoFloor,
];

/// Runs the suite on `rt`: every repetition runs each contender once, in a
/// random order (see [`run_order`](crate::pools::run_order)).
pub fn run(rt: &Runtime, cfg: &FairnessConfig, progress: &mut dyn FnMut(&str)) -> FairnessResults {
    let chosen: Vec<Contender> = CONTENDERS
        .into_iter()
        .filter(|c| crate::pools::selected(cfg.only.as_deref(), c.name()))
        .collect();
    let mut rows: Vec<FairnessRow> = chosen
        .iter()
        .map(|c| FairnessRow {
            contender: c.name().to_owned(),
            reps: Vec::new(),
            failure: None,
        })
        .collect();
    let mut rng = fastrand::Rng::new();
    for rep in 0..cfg.reps {
        for i in crate::pools::run_order(chosen.len(), &mut rng) {
            let (row, contender) = (&mut rows[i], chosen[i]);
            if row.failure.is_some() {
                continue;
            }
            let f = match measure(rt, contender, TASKS, POOL_SIZE, cfg) {
                Ok(f) => f,
                Err(stalled) => {
                    progress(&format!("fairness {}: {stalled}", contender.name()));
                    row.failure = Some(stalled.to_string());
                    continue;
                }
            };
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

/// A run that made no progress for too long: the pool lost a wake-up or
/// deadlocked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stalled {
    /// How long the run was given.
    pub limit: Duration,
    /// Tasks that had finished all their gets by then.
    pub finished_tasks: usize,
    /// Tasks in all.
    pub tasks: usize,
}

impl fmt::Display for Stalled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "stalled: {} of {} tasks had finished after {:?} (at least twenty times what \
             a run that keeps every connection busy needs); the rest were still waiting \
             for a connection",
            self.finished_tasks, self.tasks, self.limit
        )
    }
}

impl std::error::Error for Stalled {}

/// How long a run may take before it counts as stalled: twenty times the
/// ideal (every connection busy all the time, each hold rounded up to the
/// timer's next millisecond), and at least ten seconds.
pub fn stall_limit(tasks: usize, pool_size: usize, rounds: usize, hold: Duration) -> Duration {
    let hold_ms = hold.as_millis().max(1) as u64 + 1;
    let ideal_ms = (tasks * rounds) as u64 * hold_ms / pool_size.max(1) as u64;
    Duration::from_millis((20 * ideal_ms).max(10_000))
}

/// One repetition of one async contender.
///
/// # Errors
/// [`Stalled`] when the run does not finish within [`stall_limit`].
///
/// # Panics
/// For r2d2 or the baseline, which this suite does not run.
pub fn measure(
    rt: &Runtime,
    contender: Contender,
    tasks: usize,
    pool_size: usize,
    cfg: &FairnessConfig,
) -> Result<WaitFigures, Stalled> {
    let hold = Duration::from_micros(cfg.hold_us);
    let limit = stall_limit(tasks, pool_size, cfg.rounds, hold);
    measure_within(rt, contender, tasks, pool_size, cfg, limit)
}

/// [`measure`] with a stall limit of the caller's choosing.
///
/// # Errors
/// [`Stalled`] when the run does not finish within `limit`.
///
/// # Panics
/// For r2d2 or the baseline, which this suite does not run.
pub fn measure_within(
    rt: &Runtime,
    contender: Contender,
    tasks: usize,
    pool_size: usize,
    cfg: &FairnessConfig,
    limit: Duration,
) -> Result<WaitFigures, Stalled> {
    let rounds = cfg.rounds;
    let hold = Duration::from_micros(cfg.hold_us);
    let waits = with_async_pool!(contender, P => {
        rt.block_on(waits_async::<P>(tasks, pool_size, rounds, hold, limit))
    }, _ => panic!("the fairness suite runs async pools only"))?;
    Ok(figures(waits))
}

/// Aborts the tasks it holds when dropped, so a stalled run leaves nothing
/// behind.
struct AbortOnDrop(Vec<tokio::task::AbortHandle>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

/// Every wait (in nanoseconds) of one run, and the run's wall time.
///
/// # Errors
/// [`Stalled`] when the tasks have not all finished after `limit`.
pub async fn waits_async<P: AsyncPool>(
    tasks: usize,
    pool_size: usize,
    rounds: usize,
    hold: Duration,
    limit: Duration,
) -> Result<(Vec<u64>, Duration), Stalled> {
    let pool = P::build(pool_size);
    pool.warm(pool_size).await;
    let start = Instant::now();
    let deadline = tokio::time::Instant::from_std(start + limit);
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
    let _abort = AbortOnDrop(handles.iter().map(|h| h.abort_handle()).collect());
    let mut all = Vec::with_capacity(tasks * rounds);
    for (finished, handle) in handles.into_iter().enumerate() {
        match tokio::time::timeout_at(deadline, handle).await {
            Ok(waits) => all.extend(waits.expect("a task panicked")),
            Err(_) => {
                return Err(Stalled {
                    limit,
                    finished_tasks: finished,
                    tasks,
                });
            }
        }
    }
    Ok((all, start.elapsed()))
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
            only: None,
        };
        for contender in CONTENDERS {
            match measure_within(&rt, contender, 40, 4, &cfg, Duration::from_secs(2)) {
                Ok(f) => {
                    assert!(f.p50_us <= f.p99_us && f.p99_us <= f.max_us, "{f:?}");
                    assert!(f.gets_per_s > 0.0);
                }
                // qp 0.2 loses wake-ups when connections are held across an
                // await (see the crate README); the suite reports it.
                Err(stalled) if contender == Contender::Qp => {
                    assert!(stalled.finished_tasks < stalled.tasks);
                }
                Err(stalled) => panic!("{}: {stalled}", contender.name()),
            }
        }
    }

    #[test]
    fn the_stall_limit_leaves_room() {
        let l = stall_limit(1000, 50, 20, Duration::from_millis(1));
        assert!(l >= Duration::from_secs(10));
        let l = stall_limit(1000, 10, 100, Duration::from_millis(10));
        assert_eq!(l, Duration::from_millis(20 * 1000 * 100 * 11 / 10));
    }
}
