//! One run: clients in a closed loop (each starts its next request when the
//! last one ends) or an open loop (requests start on a fixed schedule,
//! whatever the latency), a collector that builds the timeline once a
//! second, and a stop that still lets requests in flight finish.
//!
//! # Implementation notes
//! The open loop hands out tickets: ticket `i` is meant to start at
//! `start + i / rate`. A free client takes the next ticket and sleeps until
//! its time; when every client is busy, tickets wait, and the request that
//! finally takes one is measured from the time it was meant to start, not
//! from when it could. A closed-loop or wrk-style measurement would leave
//! that wait out (coordinated omission) and report the latency of a load
//! that never queued. Each ticket is taken once, so `--requests K` makes
//! exactly `K` requests in either loop.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};

use super::args::{Limit, Plan};
use super::exec::Failure;
use super::progress::{Progress, Status};
use super::record::{Shard, Shards, Tally};
use super::target::{PoolGauges, Target};
use super::workload::Workload;

/// How often the collector samples.
const TICK: Duration = Duration::from_secs(1);

/// One second (or the last part of one) of the run.
#[derive(Debug, Clone, Serialize)]
pub struct Point {
    /// Seconds from the start to the end of this interval.
    pub t_s: f64,
    /// Requests that ended in it.
    pub requests: u64,
    /// Of which failed.
    pub errors: u64,
    /// Requests per second over it.
    pub throughput: f64,
    /// Median latency in it, ms.
    pub p50_ms: f64,
    /// 99th percentile latency in it, ms.
    pub p99_ms: f64,
    /// Largest latency in it, ms.
    pub max_ms: f64,
    /// The pool's sizes at its end, when known.
    pub pool: Option<PoolGauges>,
}

/// What one run measured.
#[derive(Debug)]
pub struct Outcome {
    /// Every request.
    pub total: Tally,
    /// Once a second.
    pub timeline: Vec<Point>,
    /// From the start to the end of the last request.
    pub elapsed: Duration,
    /// Whether Ctrl-C stopped it early.
    pub interrupted: bool,
    /// The workload's statement names, by index.
    pub statements: Vec<String>,
}

/// Milliseconds of a histogram value in nanoseconds.
pub fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

/// Runs `plan` against `target`; `interrupt` turns true on Ctrl-C.
pub async fn run<T: Target>(
    target: Arc<T>,
    workload: Arc<Workload>,
    plan: &Plan,
    mut interrupt: watch::Receiver<bool>,
    progress: &Progress,
) -> Outcome {
    let (stop_tx, stop_rx) = watch::channel(false);
    let shards = Shards::new(plan.clients);
    let tickets = Arc::new(AtomicU64::new(0));
    let busy: Vec<Arc<Busy>> = (0..plan.clients).map(|_| Arc::default()).collect();
    let start = Instant::now();
    let max_tickets = match plan.limit {
        Limit::Requests(n) => n,
        Limit::Duration(_) => u64::MAX,
    };
    let schedule = plan.rate.map(|rate| Schedule {
        start,
        rate,
        end: match plan.limit {
            Limit::Duration(d) => Some(start + d),
            Limit::Requests(_) => None,
        },
    });
    let mut clients = JoinSet::new();
    for (i, slot) in busy.iter().enumerate() {
        let client = Client {
            index: i,
            target: Arc::clone(&target),
            workload: Arc::clone(&workload),
            shard: shards.get(i),
            tickets: Arc::clone(&tickets),
            max_tickets,
            busy: Arc::clone(slot),
            start,
            stop: stop_rx.clone(),
            schedule,
            rng: fastrand::Rng::with_seed(fastrand::u64(..)),
        };
        clients.spawn(client.run());
    }

    let deadline = match plan.limit {
        Limit::Duration(d) => start + d,
        Limit::Requests(_) => start + Duration::from_secs(10 * 365 * 86_400),
    };
    let mut ticker = tokio::time::interval_at(start + TICK, TICK);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut total = Tally::default();
    let mut interval = Tally::default();
    let mut timeline = Vec::new();
    let mut last_tick = start;
    let mut last_span = TICK;
    let mut stopped_at: Option<Instant> = None;
    let mut interrupted = false;
    let mut listening = true;
    loop {
        let drain_end = stopped_at.map_or(deadline, |at| at + plan.drain_timeout);
        tokio::select! {
            _ = ticker.tick() => {
                let now = Instant::now();
                let gauges = target.gauges().await;
                last_span = now - last_tick;
                let point = collect(&shards, &mut interval, &mut total, now - start, last_span, gauges);
                last_tick = now;
                progress.update(&Status {
                    elapsed: now - start,
                    limit: plan.limit,
                    requests: total.requests(),
                    errors: total.failed(),
                    point: &point,
                });
                timeline.push(point);
            }
            () = tokio::time::sleep_until(deadline), if stopped_at.is_none() => {
                stopped_at = Some(Instant::now());
                let _ = stop_tx.send(true);
            }
            signalled = interrupt.wait_for(|i| *i), if listening => {
                // An error means nobody can signal any more.
                listening = false;
                if signalled.is_ok() {
                    interrupted = true;
                    stopped_at.get_or_insert_with(Instant::now);
                    let _ = stop_tx.send(true);
                }
            }
            () = tokio::time::sleep_until(drain_end), if stopped_at.is_some() => {
                clients.abort_all();
                while clients.join_next().await.is_some() {}
                // Each request abandoned mid-flight is recorded once, as
                // cancelled, with the time it had run (from its intended
                // start in an open loop).
                let now = Instant::now();
                for (i, slot) in busy.iter().enumerate() {
                    let since = slot.since.load(Ordering::Relaxed);
                    if since == 0 {
                        continue;
                    }
                    let began = start + Duration::from_nanos(since - 1);
                    let failure = Failure::new(
                        "cancelled at stop",
                        format!(
                            "still running {:?} after the run ended (--drain-timeout)",
                            plan.drain_timeout
                        ),
                    );
                    shards
                        .get(i)
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .record(slot.statement.load(Ordering::Relaxed), now - began, None, Err(failure));
                }
                break;
            }
            joined = clients.join_next() => {
                if joined.is_none() {
                    break;
                }
            }
        }
    }
    let elapsed = start.elapsed();
    let gauges = target.gauges().await;
    let tail = Instant::now() - last_tick;
    if tail < TICK / 2
        && let Some(prev) = timeline.last_mut()
    {
        // The requests that ended after the last tick (the drain), too few
        // for a point of their own: they join the last second's.
        let mut rest = Tally::default();
        shards.drain_into(&mut rest);
        total.add(&rest);
        interval.add(&rest);
        *prev = point(&interval, elapsed, last_span + tail, gauges);
    } else {
        let last = collect(&shards, &mut interval, &mut total, elapsed, tail, gauges);
        if last.requests > 0 {
            timeline.push(last);
        }
    }
    Outcome {
        total,
        timeline,
        elapsed,
        interrupted,
        statements: workload.statements.iter().map(|s| s.name.clone()).collect(),
    }
}

/// Drains the shards into `interval` and `total`; the interval's point.
fn collect(
    shards: &Shards,
    interval: &mut Tally,
    total: &mut Tally,
    at: Duration,
    span: Duration,
    pool: Option<PoolGauges>,
) -> Point {
    interval.clear();
    shards.drain_into(interval);
    total.add(interval);
    point(interval, at, span, pool)
}

/// The point of `interval`, which ended at `at` and lasted `span`.
fn point(interval: &Tally, at: Duration, span: Duration, pool: Option<PoolGauges>) -> Point {
    let h = &interval.latency;
    Point {
        t_s: at.as_secs_f64(),
        requests: interval.requests(),
        errors: interval.failed(),
        throughput: interval.requests() as f64 / span.as_secs_f64().max(1e-3),
        p50_ms: ms(h.value_at_quantile(0.5)),
        p99_ms: ms(h.value_at_quantile(0.99)),
        max_ms: ms(h.max()),
        pool,
    }
}

/// What a client has in flight, for the drain to record if it abandons it.
#[derive(Debug, Default)]
struct Busy {
    /// Nanoseconds from the run's start to the (intended) start of the
    /// request in flight, plus one; zero when none is.
    since: AtomicU64,
    /// Its statement.
    statement: AtomicUsize,
}

/// The open loop's timetable.
#[derive(Debug, Clone, Copy)]
struct Schedule {
    start: Instant,
    rate: f64,
    end: Option<Instant>,
}

impl Schedule {
    fn at(&self, ticket: u64) -> Instant {
        self.start + Duration::from_secs_f64(ticket as f64 / self.rate)
    }
}

struct Client<T> {
    index: usize,
    target: Arc<T>,
    workload: Arc<Workload>,
    shard: Shard,
    tickets: Arc<AtomicU64>,
    max_tickets: u64,
    busy: Arc<Busy>,
    start: Instant,
    stop: watch::Receiver<bool>,
    schedule: Option<Schedule>,
    rng: fastrand::Rng,
}

impl<T: Target> Client<T> {
    async fn run(mut self) {
        loop {
            if *self.stop.borrow() {
                return;
            }
            let ticket = self.tickets.fetch_add(1, Ordering::Relaxed);
            if ticket >= self.max_tickets {
                return;
            }
            let intended = match self.schedule {
                Some(s) => {
                    let at = s.at(ticket);
                    if s.end.is_some_and(|end| at >= end) {
                        return;
                    }
                    tokio::select! {
                        () = tokio::time::sleep_until(at) => {}
                        _ = self.stop.wait_for(|s| *s) => return,
                    }
                    Some(at)
                }
                None => None,
            };
            let req = self.workload.draw(&mut self.rng);
            let began = Instant::now();
            let from = intended.unwrap_or(began) - self.start;
            let from = u64::try_from(from.as_nanos()).unwrap_or(u64::MAX - 1);
            self.busy.statement.store(req.statement, Ordering::Relaxed);
            self.busy.since.store(from + 1, Ordering::Relaxed);
            let statement = req.statement;
            let result = self.target.call(self.index, req).await;
            let end = Instant::now();
            let (latency, service) = match intended {
                Some(at) => (end - at, Some(end - began)),
                None => (end - began, None),
            };
            {
                let mut shard = self
                    .shard
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                shard.record(statement, latency, service, result);
                // No await separates recording from clearing, so an abort
                // cannot record the request twice or not at all.
                self.busy.since.store(0, Ordering::Relaxed);
            }
        }
    }
}
