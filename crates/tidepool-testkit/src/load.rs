//! A pool under load: tasks that loop on a get and one call on the
//! connection, each call recorded with its times and outcome, so a fault
//! test can say afterwards which calls failed, on which connection, how long
//! each took, and when the pool served again.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tidepool::{Manager, Pool};
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout};

/// The one call a load task makes on each connection it gets: the
/// backend's cheapest statement (`SELECT 1`, `PING`).
pub trait Probe<M: Manager>: Send + Sync + 'static {
    /// Runs the call; the error's text on failure.
    fn call(&self, conn: &mut M::Connection) -> impl Future<Output = Result<(), String>> + Send;
}

/// How a recorded call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The get and the call succeeded.
    Served,
    /// The get failed (the pool's error text).
    GetFailed(String),
    /// The get succeeded and the call failed (the driver's error text).
    CallFailed(String),
    /// The get succeeded and the call did not end within the call timeout.
    CallTimedOut,
}

/// One get and call of a load task.
#[derive(Debug, Clone)]
pub struct Call {
    /// When the get began.
    pub started: Instant,
    /// When the get returned a connection, if it did.
    pub got: Option<Instant>,
    /// When the call ended (or the get failed).
    pub ended: Instant,
    /// The pool's id of the connection it got.
    pub conn: Option<u64>,
    /// How it ended.
    pub outcome: Outcome,
}

impl Call {
    /// Whether the get and the call succeeded.
    pub fn served(&self) -> bool {
        self.outcome == Outcome::Served
    }

    /// Whether the call failed on a connection it got (as opposed to a
    /// failed get).
    pub fn failed_on_connection(&self) -> bool {
        matches!(self.outcome, Outcome::CallFailed(_) | Outcome::CallTimedOut)
    }

    /// How long the get took (until it returned, either way).
    pub fn get_took(&self) -> Duration {
        self.got.unwrap_or(self.ended) - self.started
    }

    /// How long the call on the connection took, if there was one.
    pub fn call_took(&self) -> Option<Duration> {
        self.got.map(|got| self.ended - got)
    }
}

/// The shape of a load.
#[derive(Debug, Clone, Copy)]
pub struct LoadConfig {
    /// Tasks looping on get + call.
    pub tasks: usize,
    /// How long the call may take before the task gives up on it (the
    /// call's future is dropped, as a service's request timeout would).
    pub call_timeout: Duration,
    /// How long a task keeps its connection after a successful call (its
    /// "work"), so that every connection stays busy and callers queue.
    pub hold: Duration,
    /// How long a task waits after a failure before its next get, so that
    /// a dead database does not turn the tasks into a busy loop.
    pub pause_after_failure: Duration,
}

/// Tasks putting load on a pool until [`stop`](Load::stop)ped.
#[derive(Debug)]
pub struct Load {
    calls: Arc<Mutex<Vec<Call>>>,
    stop: Arc<AtomicBool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Load {
    /// Starts `cfg.tasks` tasks looping on `pool.get()` and `probe`.
    pub fn start<M: Manager, P: Probe<M>>(pool: &Pool<M>, probe: P, cfg: LoadConfig) -> Self {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let probe = Arc::new(probe);
        let tasks = (0..cfg.tasks)
            .map(|_| {
                let (pool, probe) = (pool.clone(), Arc::clone(&probe));
                let (calls, stop) = (Arc::clone(&calls), Arc::clone(&stop));
                tokio::spawn(async move {
                    while !stop.load(Ordering::SeqCst) {
                        let served = one_call(&pool, &*probe, &cfg, &calls).await;
                        if !served {
                            tokio::time::sleep(cfg.pause_after_failure).await;
                        }
                    }
                })
            })
            .collect();
        Self { calls, stop, tasks }
    }

    /// The calls that have ended so far, in the order they ended.
    pub fn calls(&self) -> Vec<Call> {
        lock(&self.calls).clone()
    }

    /// Waits (up to `within`) for a call that was served and ended after
    /// `since`, and returns when it ended.
    pub async fn served_after(&self, since: Instant, within: Duration) -> Option<Instant> {
        let first = |calls: &[Call]| {
            calls
                .iter()
                .filter(|c| c.served() && c.ended > since)
                .map(|c| c.ended)
                .min()
        };
        let deadline = Instant::now() + within;
        while first(&lock(&self.calls)).is_none() {
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        // Calls are recorded as they end, each by its own task: give one
        // that ended a moment earlier the time to be recorded too.
        tokio::time::sleep(Duration::from_millis(5)).await;
        first(&lock(&self.calls))
    }

    /// Waits (up to `within`) until `n` more calls have been served.
    pub async fn served_more(&self, n: usize, within: Duration) -> bool {
        let count = |calls: &[Call]| calls.iter().filter(|c| c.served()).count();
        let target = count(&lock(&self.calls)) + n;
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if count(&lock(&self.calls)) >= target {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        false
    }

    /// Stops the tasks after their current call and returns every call.
    ///
    /// # Panics
    /// When a load task panicked.
    pub async fn stop(self) -> Vec<Call> {
        self.stop.store(true, Ordering::SeqCst);
        for task in self.tasks {
            task.await.expect("a load task panicked");
        }
        std::mem::take(&mut *lock(&self.calls))
    }
}

fn lock(calls: &Mutex<Vec<Call>>) -> MutexGuard<'_, Vec<Call>> {
    calls.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One get and call, timed and recorded in `calls` as soon as it ends;
/// then, if it was served, the hold. Returns whether it was served.
async fn one_call<M: Manager, P: Probe<M>>(
    pool: &Pool<M>,
    probe: &P,
    cfg: &LoadConfig,
    calls: &Mutex<Vec<Call>>,
) -> bool {
    let started = Instant::now();
    let mut conn = match pool.get().await {
        Ok(conn) => conn,
        Err(e) => {
            lock(calls).push(Call {
                started,
                got: None,
                ended: Instant::now(),
                conn: None,
                outcome: Outcome::GetFailed(e.to_string()),
            });
            return false;
        }
    };
    let got = Instant::now();
    let id = conn.info().id;
    let outcome = match timeout(cfg.call_timeout, probe.call(&mut *conn)).await {
        Ok(Ok(())) => Outcome::Served,
        Ok(Err(e)) => Outcome::CallFailed(e),
        Err(_) => Outcome::CallTimedOut,
    };
    let served = outcome == Outcome::Served;
    lock(calls).push(Call {
        started,
        got: Some(got),
        ended: Instant::now(),
        conn: Some(id),
        outcome,
    });
    if served {
        tokio::time::sleep(cfg.hold).await;
    }
    drop(conn);
    served
}
