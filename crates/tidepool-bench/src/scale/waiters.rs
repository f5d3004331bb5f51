//! The waiters curve: N gets queued behind one held connection, each with
//! its own deadline, all timing out.
//!
//! # Method
//! A pool of one connection is built and warmed, and its connection held
//! for the whole run. N tokio tasks are spawned from a task on the runtime;
//! each notes the time, asks for a connection with its own deadline `d`
//! (drawn for every waiter uniformly from 300–600 ms, so the queue's order
//! and the deadlines' order differ), and notes the time again when the get
//! returns. Once every task has returned, the connection is released.
//!
//! - *Queue formed*: when the last get was issued (every get queues: the
//!   only connection is held). Forming a queue of a million takes longer
//!   than the shortest deadline, so the first timeouts then overlap the
//!   queueing.
//! - *Drain*: from the queue formed to the last get's return.
//! - *Ideal*: from the queue formed to the latest deadline (issue time +
//!   `d`); a pool that times every waiter out on time drains in this.
//! - *Lateness* of a waiter: its return minus its deadline. Percentiles
//!   are over all waiters of a repetition; "within 5 %" is the share of
//!   waiters whose lateness is at most 5 % of their own `d`.
//! - *CPU per waiter*: CPU time of the whole process from the first spawn
//!   to the last return, divided by N. O(1) work per waiter keeps it flat.
//!
//! tidepool and deadpool use their own per-call deadline (`get_timeout`,
//! `timeout_get` with a wait timeout); bb8 has none, so each get is wrapped
//! in `tokio::time::timeout`, which cancels it (drops the future) on expiry.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::runtime::Runtime;

use super::ScaleConfig;
use super::peers::{Outcome, ScalePool};
use crate::memory::on_own_runtime;
use crate::pools::{Bb8, Contender, Deadpool, Tidepool};
use crate::stats::{Spread, quantile};

/// The figures of one repetition of one point.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct WaiterFigures {
    /// From the first get issued to the last, ms.
    pub formed_ms: f64,
    /// From the queue formed to the last return, ms.
    pub drain_ms: f64,
    /// From the queue formed to the latest deadline, ms.
    pub ideal_ms: f64,
    /// Median lateness of a timeout, ms.
    pub late_p50_ms: f64,
    /// 99th percentile lateness, ms.
    pub late_p99_ms: f64,
    /// Largest lateness, ms.
    pub late_max_ms: f64,
    /// Largest lateness as a share of that waiter's own deadline.
    pub late_max_share: f64,
    /// Share of waiters late by at most 5 % of their deadline.
    pub within_5pct: f64,
    /// Process CPU time per waiter, µs.
    pub cpu_us_per_waiter: Option<f64>,
    /// Gets that did not time out (served or failed); 0 when all is well.
    pub not_timed_out: u64,
}

/// One contender at one count.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WaiterPoint {
    /// Contender name.
    pub contender: String,
    /// Waiters queued.
    pub n: usize,
    /// One entry per repetition.
    pub reps: Vec<WaiterFigures>,
    /// Why it was not (fully) measured.
    pub failure: Option<String>,
}

impl WaiterPoint {
    /// Min / median / max of one figure over repetitions.
    pub fn spread(&self, f: impl Fn(&WaiterFigures) -> f64) -> Spread {
        Spread::of(&self.reps.iter().map(f).collect::<Vec<_>>())
    }

    /// As [`spread`](Self::spread), `None` when a repetition lacks it.
    pub fn spread_of(&self, f: impl Fn(&WaiterFigures) -> Option<f64>) -> Option<Spread> {
        let values: Option<Vec<f64>> = self.reps.iter().map(f).collect();
        values.filter(|v| !v.is_empty()).map(|v| Spread::of(&v))
    }
}

/// One waiter's record: issued, returned, its deadline, how it ended.
type Sample = (Instant, Instant, Duration, Outcome);

/// Runs the curve for the `chosen` contenders.
pub fn run(
    rt: &Runtime,
    cfg: &ScaleConfig,
    chosen: &[Contender],
    progress: &mut dyn FnMut(&str),
) -> Vec<WaiterPoint> {
    let mut points: Vec<WaiterPoint> = Vec::new();
    let mut rng = fastrand::Rng::new();
    let mut given_up: Vec<(Contender, String)> = Vec::new();
    for &n in &cfg.waiter_counts {
        let first = points.len();
        for &c in chosen {
            points.push(WaiterPoint {
                contender: c.name().to_owned(),
                n,
                reps: Vec::new(),
                failure: given_up
                    .iter()
                    .find(|(g, _)| *g == c)
                    .map(|(_, why)| why.clone()),
            });
        }
        for rep in 0..cfg.reps {
            let (lo, hi) = cfg.deadline_ms;
            let deadlines: Vec<Duration> = (0..n)
                .map(|_| Duration::from_micros(rng.u64(lo * 1000..hi * 1000)))
                .collect();
            for i in crate::pools::run_order(chosen.len(), &mut rng) {
                let c = chosen[i];
                let point = &mut points[first + i];
                if point.failure.is_some() {
                    continue;
                }
                let started = Instant::now();
                let result = measure(rt, c, &deadlines, cfg.waiter_give_up_secs);
                let took = started.elapsed().as_secs_f64();
                match result {
                    Ok(f) => {
                        progress(&format!(
                            "scale waiters {:>7} rep {}/{} {:<8} drain {:>7.1} ms (ideal {:.1}), late p99 {:.1} ms max {:.1} ms, {:.2} µs CPU/waiter",
                            n,
                            rep + 1,
                            cfg.reps,
                            c.name(),
                            f.drain_ms,
                            f.ideal_ms,
                            f.late_p99_ms,
                            f.late_max_ms,
                            f.cpu_us_per_waiter.unwrap_or(f64::NAN)
                        ));
                        point.reps.push(f);
                    }
                    Err(why) => {
                        progress(&format!("scale waiters {n} {}: {why}", c.name()));
                        point.failure = Some(why);
                    }
                }
                if took > cfg.waiter_give_up_secs && !given_up.iter().any(|(g, _)| *g == c) {
                    given_up.push((
                        c,
                        format!(
                            "not run: {n} waiters took {took:.0} s, above the {:.0} s limit",
                            cfg.waiter_give_up_secs
                        ),
                    ));
                }
                // Let the runtime give back what a million tasks took.
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
    points
}

/// Waiters queued to measure the heap bytes each takes.
pub const QUEUED_FOR_BYTES: usize = 10_000;

/// Heap bytes each of [`QUEUED_FOR_BYTES`] waiters holds while queued: its
/// task (the get future inside it) and whatever the pool keeps for it,
/// counted on a runtime of the measurement's own (see [`on_own_runtime`]).
/// `None` when bytes are not counted.
pub fn bytes_per_waiter(contender: Contender) -> Option<f64> {
    match contender {
        Contender::Tidepool => queued_bytes::<Tidepool>(QUEUED_FOR_BYTES),
        Contender::Deadpool => queued_bytes::<Deadpool>(QUEUED_FOR_BYTES),
        Contender::Bb8 => queued_bytes::<Bb8>(QUEUED_FOR_BYTES),
        _ => None,
    }
}

fn queued_bytes<P: ScalePool>(n: usize) -> Option<f64> {
    on_own_runtime(move |probe| async move {
        let pool = P::build_single();
        pool.warm(1).await;
        let held = pool.acquire().await;
        let mut handles = Vec::with_capacity(n);
        let before = probe.net()?;
        for _ in 0..n {
            let pool = pool.clone();
            handles.push(tokio::spawn(async move {
                pool.get_within(Duration::from_secs(600)).await
            }));
        }
        // Every task runs to its first wait (one thread: they run in turn).
        tokio::time::sleep(Duration::from_millis(20)).await;
        let after = probe.net()?;
        for h in &handles {
            h.abort();
        }
        drop(held);
        Some((after - before) as f64 / n as f64)
    })
}

/// One repetition of one contender: every waiter's deadline given.
///
/// # Errors
/// When a waiter task fails or the queue stalls (a waiter still queued far
/// past the longest deadline), or `contender` is not in this suite.
pub fn measure(
    rt: &Runtime,
    contender: Contender,
    deadlines: &[Duration],
    give_up_secs: f64,
) -> Result<WaiterFigures, String> {
    match contender {
        Contender::Tidepool => run_on::<Tidepool>(rt, deadlines, give_up_secs),
        Contender::Deadpool => run_on::<Deadpool>(rt, deadlines, give_up_secs),
        Contender::Bb8 => run_on::<Bb8>(rt, deadlines, give_up_secs),
        other => Err(format!("{} is not in the scale suite", other.name())),
    }
}

fn run_on<P: ScalePool>(
    rt: &Runtime,
    deadlines: &[Duration],
    give_up_secs: f64,
) -> Result<WaiterFigures, String> {
    let deadlines = deadlines.to_vec();
    // The longest any waiter can take, plus the limit: past this the pool
    // has lost a waiter.
    let limit = Duration::from_secs_f64(give_up_secs * 4.0 + 60.0);
    rt.block_on(async move {
        tokio::spawn(queue_and_drain::<P>(deadlines, limit))
            .await
            .map_err(|e| format!("the driving task failed: {e}"))?
    })
}

async fn queue_and_drain<P: ScalePool>(
    deadlines: Vec<Duration>,
    limit: Duration,
) -> Result<WaiterFigures, String> {
    let pool = P::build_single();
    pool.warm(1).await;
    let held = pool.acquire().await;
    let cpu_before = super::process_cpu_ns();
    let mut handles = Vec::with_capacity(deadlines.len());
    for &d in &deadlines {
        let pool = pool.clone();
        handles.push(tokio::spawn(async move {
            let issued = Instant::now();
            let outcome = pool.get_within(d).await;
            (issued, Instant::now(), d, outcome)
        }));
    }
    let give_up = tokio::time::Instant::now() + limit;
    let mut samples: Vec<Sample> = Vec::with_capacity(handles.len());
    let mut stalled = None;
    for h in &mut handles {
        match tokio::time::timeout_at(give_up, h).await {
            Ok(Ok(sample)) => samples.push(sample),
            Ok(Err(e)) => return Err(format!("a waiter task failed: {e}")),
            Err(_) => {
                stalled = Some(format!(
                    "stalled: {} of {} waiters still queued after {:.0} s",
                    deadlines.len() - samples.len(),
                    deadlines.len(),
                    limit.as_secs_f64()
                ));
                break;
            }
        }
    }
    if let Some(why) = stalled {
        for h in &handles {
            h.abort();
        }
        return Err(why);
    }
    let cpu = cpu_before
        .zip(super::process_cpu_ns())
        .map(|(a, b)| b.saturating_sub(a));
    drop(held);
    Ok(figures(&samples, cpu))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The figures of one repetition from every waiter's record and the CPU
/// time spent.
fn figures(samples: &[Sample], cpu_ns: Option<u64>) -> WaiterFigures {
    let Some(first) = samples.iter().map(|s| s.0).min() else {
        return WaiterFigures {
            formed_ms: 0.0,
            drain_ms: 0.0,
            ideal_ms: 0.0,
            late_p50_ms: 0.0,
            late_p99_ms: 0.0,
            late_max_ms: 0.0,
            late_max_share: 0.0,
            within_5pct: 0.0,
            cpu_us_per_waiter: None,
            not_timed_out: 0,
        };
    };
    let formed = samples.iter().map(|s| s.0).max().unwrap_or(first);
    let last_return = samples.iter().map(|s| s.1).max().unwrap_or(formed);
    let latest_deadline = samples.iter().map(|s| s.0 + s.2).max().unwrap_or(formed);
    let mut late_ns: Vec<u64> = Vec::with_capacity(samples.len());
    let mut max_share: f64 = 0.0;
    let mut within = 0usize;
    let mut not_timed_out = 0u64;
    for &(issued, returned, d, outcome) in samples {
        if outcome != Outcome::TimedOut {
            not_timed_out += 1;
        }
        // Never negative: no timer here fires early.
        let late = returned.saturating_duration_since(issued + d);
        let share = late.as_secs_f64() / d.as_secs_f64();
        max_share = max_share.max(share);
        if share <= 0.05 {
            within += 1;
        }
        late_ns.push(u64::try_from(late.as_nanos()).unwrap_or(u64::MAX));
    }
    late_ns.sort_unstable();
    let q = |p: f64| quantile(&late_ns, p) as f64 / 1e6;
    let n = samples.len();
    WaiterFigures {
        formed_ms: ms(formed - first),
        drain_ms: ms(last_return.saturating_duration_since(formed)),
        ideal_ms: ms(latest_deadline.saturating_duration_since(formed)),
        late_p50_ms: q(0.5),
        late_p99_ms: q(0.99),
        late_max_ms: q(1.0),
        late_max_share: max_share,
        within_5pct: within as f64 / n as f64,
        cpu_us_per_waiter: cpu_ns.map(|c| c as f64 / 1000.0 / n as f64),
        not_timed_out,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_from_records() {
        let t0 = Instant::now();
        let d = Duration::from_millis(100);
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let samples = vec![
            (at(0), at(101), d, Outcome::TimedOut),
            (at(10), at(130), d, Outcome::TimedOut),
            (at(20), at(121), d, Outcome::Served),
        ];
        let f = figures(&samples, Some(3_000_000));
        assert!((f.formed_ms - 20.0).abs() < 1e-6);
        assert!((f.drain_ms - 110.0).abs() < 1e-6);
        assert!((f.ideal_ms - 100.0).abs() < 1e-6);
        assert!((f.late_max_ms - 20.0).abs() < 1e-6);
        assert!((f.late_p50_ms - 1.0).abs() < 1e-6);
        assert!((f.late_max_share - 0.2).abs() < 1e-6);
        assert!((f.within_5pct - 2.0 / 3.0).abs() < 1e-9);
        assert_eq!(f.cpu_us_per_waiter, Some(1000.0));
        assert_eq!(f.not_timed_out, 1);
    }

    #[test]
    fn bytes_are_not_counted_without_the_allocator() {
        for c in super::super::CONTENDERS {
            assert_eq!(bytes_per_waiter(c), None, "{}", c.name());
        }
    }

    #[test]
    fn every_contender_drains_a_small_queue() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let deadlines: Vec<Duration> = (0..50u64)
            .map(|i| Duration::from_millis(20 + (i * 7) % 30))
            .collect();
        for c in super::super::CONTENDERS {
            let f = measure(&rt, c, &deadlines, 30.0).unwrap();
            assert_eq!(f.not_timed_out, 0, "{}", c.name());
            assert!(f.drain_ms >= 19.0, "{}: {f:?}", c.name());
        }
    }
}
