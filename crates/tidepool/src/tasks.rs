//! Background work: opening connections, resets after return, keepalive
//! pings, the gate timer and the one maintenance task per pool.
//!
//! Each task owns the capacity it works on through a guard, made before the
//! task is spawned, whose `Drop` gives that capacity back if the task ends
//! any other way than by finishing: a panic in a hook (caught, counted and
//! logged), or the runtime shutting down with the task in it, or refusing
//! it because it already has.

use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::time::{Instant, MissedTickBehavior, timeout};
use tracing::Instrument;

use crate::Manager;
use crate::conn::Conn;
use crate::error::ConnectError;
use crate::panic::caught_async;
use crate::shared::Shared;
use crate::state::{CreateKind, Upkeep};

/// One connect attempt: `connect` then `after_create`, within `budget`,
/// with a panic in either caught as an error.
pub(crate) async fn connect_once<M: Manager>(
    shared: &Shared<M>,
    budget: Duration,
) -> Result<M::Connection, ConnectError<M::Error>> {
    let attempt = async {
        let mut conn = shared.manager.connect().await?;
        shared.manager.after_create(&mut conn).await?;
        Ok(conn)
    };
    match timeout(budget, caught_async(attempt)).await {
        Ok(Ok(Ok(conn))) => Ok(conn),
        Ok(Ok(Err(e))) => Err(ConnectError::Backend(Arc::new(e))),
        Ok(Err(panic)) => Err(ConnectError::Panicked(panic.message())),
        Err(_) => Err(ConnectError::TimedOut { after: budget }),
    }
}

/// A connect slot (`pending`), held by the task filling it.
struct Connecting<M: Manager> {
    shared: Arc<Shared<M>>,
    kind: CreateKind,
    started: bool,
    done: bool,
}

impl<M: Manager> Connecting<M> {
    /// The connect ended; what follows accounts for it.
    fn finish(&mut self) {
        self.done = true;
    }
}

impl<M: Manager> Drop for Connecting<M> {
    fn drop(&mut self) {
        if !self.done {
            let (kind, started) = (self.kind, self.started);
            let now = self.shared.clock.now();
            self.shared
                .with_state(|st| st.create_abandoned(kind, started, now));
        }
    }
}

/// Carries out one create order: one connect attempt, to its own
/// `create_timeout` whoever asked for it. The connection goes to the
/// oldest waiter (or the idle queue); a failure closes the retry gate.
pub(crate) fn create<M: Manager>(
    shared: Arc<Shared<M>>,
    kind: CreateKind,
) -> impl Future<Output = ()> + Send + 'static {
    let mut slot = Connecting {
        shared,
        kind,
        started: false,
        done: false,
    };
    async move {
        slot.started = true;
        let shared = Arc::clone(&slot.shared);
        let start = Instant::now();
        let span = tracing::debug_span!(
            "tidepool.connect",
            pool = %shared.name,
            took_ms = tracing::field::Empty,
            outcome = tracing::field::Empty,
        );
        let outcome = connect_once(&shared, shared.cfg.create_timeout)
            .instrument(span.clone())
            .await;
        let took = start.elapsed();
        span.record("took_ms", took.as_secs_f64() * 1000.0);
        span.record("outcome", if outcome.is_ok() { "ok" } else { "failed" });
        slot.finish();
        let now = shared.clock.now();
        match outcome {
            Ok(conn) => {
                shared.with_state(|st| st.created(conn, kind, took, now));
                tracing::debug!(pool = %shared.name, took_ms = took.as_millis() as u64, overflow = kind == CreateKind::Overflow, "connection created");
            }
            Err(error) => {
                let permanent = match &error {
                    ConnectError::Backend(e) => !shared.is_retryable(e),
                    ConnectError::Panicked(_) => {
                        shared.lock().panicked();
                        false
                    }
                    ConnectError::TimedOut { .. } | ConnectError::Unusable { .. } => false,
                };
                if let Some(held_back) = shared.connects_log.allow(now, &error) {
                    tracing::warn!(pool = %shared.name, error = %error, similar_held_back = held_back, "connect failed");
                }
                shared.with_state(|st| st.create_failed(kind, error, permanent, now));
            }
        }
    }
}

/// A connection out for a reset or a ping, held by the task doing it.
struct Checking<M: Manager> {
    shared: Arc<Shared<M>>,
    conn: Option<Conn<M::Connection>>,
    check: Upkeep,
}

impl<M: Manager> Checking<M> {
    /// Ends the check with its outcome.
    fn done(&mut self, ok: bool) {
        if let Some(conn) = self.conn.take() {
            let (check, now) = (self.check, self.shared.clock.now());
            self.shared
                .with_state(|st| st.check_done(conn, check, ok, now));
        }
    }
}

impl<M: Manager> Drop for Checking<M> {
    fn drop(&mut self) {
        // Ended some other way than by finishing: its state is unknown.
        self.done(false);
    }
}

/// Runs `check` on the connection `guard` holds, bounded by
/// `validation_timeout`, and ends the check with its outcome.
async fn run_check<M: Manager>(mut guard: Checking<M>, hook: &'static str) {
    let shared = Arc::clone(&guard.shared);
    let Some(conn) = guard.conn.as_mut() else {
        return;
    };
    let id = conn.id;
    let work = async {
        match guard.check {
            Upkeep::Reset => shared.manager.reset(&mut conn.raw).await,
            Upkeep::Ping => shared.manager.validate(&mut conn.raw).await,
        }
    };
    let ok = match timeout(shared.cfg.validation_timeout, caught_async(work)).await {
        Ok(Ok(Ok(()))) => true,
        Ok(Ok(Err(e))) => {
            tracing::info!(pool = %shared.name, connection = id, hook, error = %e, "check failed");
            false
        }
        Ok(Err(panic)) => {
            shared.hook_panicked(&panic, hook);
            false
        }
        Err(_) => {
            tracing::info!(pool = %shared.name, connection = id, hook, "check timed out");
            false
        }
    };
    guard.done(ok);
}

/// Resets a returned connection in the background, then puts it back.
pub(crate) fn reset<M: Manager>(
    shared: Arc<Shared<M>>,
    conn: Conn<M::Connection>,
) -> impl Future<Output = ()> + Send + 'static {
    let guard = Checking {
        shared,
        conn: Some(conn),
        check: Upkeep::Reset,
    };
    run_check(guard, "reset")
}

/// Pings an idle connection that has not been used for a while.
fn keepalive<M: Manager>(
    shared: Arc<Shared<M>>,
    conn: Conn<M::Connection>,
) -> impl Future<Output = ()> + Send + 'static {
    let guard = Checking {
        shared,
        conn: Some(conn),
        check: Upkeep::Ping,
    };
    run_check(guard, "validate")
}

/// Clears the gate's armed flag if its timer never fires.
struct GateTimer<M: Manager> {
    pool: Weak<Shared<M>>,
    fired: bool,
}

impl<M: Manager> Drop for GateTimer<M> {
    fn drop(&mut self) {
        if !self.fired {
            if let Some(shared) = self.pool.upgrade() {
                shared.lock().gate_timer_lost();
            }
        }
    }
}

/// Reopens the connect gate at `at` and starts what it held back.
pub(crate) fn wake<M: Manager>(
    pool: Weak<Shared<M>>,
    at: Instant,
) -> impl Future<Output = ()> + Send + 'static {
    let mut timer = GateTimer { pool, fired: false };
    async move {
        tokio::time::sleep_until(at).await;
        timer.fired = true;
        if let Some(shared) = timer.pool.upgrade() {
            let now = shared.clock.now();
            shared.with_state(|st| st.gate_opened(now));
        }
    }
}

/// Tells the pool its maintenance task stopped, unless the pool is gone or
/// closed (and needs none).
struct Maintaining<M: Manager> {
    pool: Weak<Shared<M>>,
    pool_closed: bool,
}

impl<M: Manager> Maintaining<M> {
    fn closed(&mut self) {
        self.pool_closed = true;
    }
}

impl<M: Manager> Drop for Maintaining<M> {
    fn drop(&mut self) {
        if self.pool_closed {
            return;
        }
        if let Some(shared) = self.pool.upgrade() {
            shared.maintenance_stopped();
        }
    }
}

/// The pool's one maintenance task: every `interval` it reaps expired and
/// idle connections, reports leaks, refills `min_idle` and starts keepalive
/// pings. It holds only a weak reference, and ends when the pool is dropped
/// (it is also aborted then) or closed.
pub(crate) fn maintain<M: Manager>(
    pool: Weak<Shared<M>>,
    interval: Duration,
) -> impl Future<Output = ()> + Send + 'static {
    let mut running = Maintaining {
        pool,
        pool_closed: false,
    };
    async move {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        ticker.tick().await;
        loop {
            ticker.tick().await;
            let Some(shared) = running.pool.upgrade() else {
                return;
            };
            if let Some(jump) = shared.clock.recheck() {
                tracing::warn!(pool = %shared.name, jump_ms = jump / 1_000_000, "the CPU's time-stamp counter jumped; the pool's clock was put back in step with the monotonic clock");
            }
            let now = shared.clock.now();
            let Some(ping) = shared.with_state(|st| (!st.is_closed()).then(|| st.maintain(now)))
            else {
                running.closed();
                return;
            };
            for conn in ping {
                shared.spawn(keepalive(Arc::clone(&shared), conn));
            }
        }
    }
}
