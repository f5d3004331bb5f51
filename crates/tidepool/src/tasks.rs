//! Background work: opening connections (with retries), resets, keepalive
//! pings and the periodic maintenance task.

use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::time::{Instant, MissedTickBehavior, sleep, timeout};

use crate::Manager;
use crate::conn::Conn;
use crate::error::ConnectError;
use crate::pool::Shared;
use crate::state::{CreateKind, CreateOrder};

/// One connect attempt: `connect` then `after_create`, within `budget`.
pub(crate) async fn connect_once<M: Manager>(
    shared: &Shared<M>,
    budget: Duration,
) -> Result<M::Connection, ConnectError<M::Error>> {
    let attempt = async {
        let mut conn = shared.manager.connect().await?;
        shared.manager.after_create(&mut conn).await?;
        Ok(conn)
    };
    match timeout(budget, attempt).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(ConnectError::Backend(Arc::new(e))),
        Err(_) => Err(ConnectError::TimedOut { after: budget }),
    }
}

/// The delay before retry number `retry` (1-based): exponential from
/// `retry_backoff`, capped at `retry_backoff_max`, with "equal jitter"
/// (between half and all of it) so failing pools do not retry in lockstep.
pub(crate) fn backoff(base: Duration, max: Duration, retry: u32) -> Duration {
    let exp = base.saturating_mul(1u32 << (retry - 1).min(20)).min(max);
    exp.mul_f64(0.5 + fastrand::f64() * 0.5)
}

/// How a connect sequence ended without a connection.
pub(crate) struct GaveUp {
    pub(crate) attempts: u32,
    /// It used every retry (rather than running into a deadline, a closed
    /// pool, or no longer being needed).
    pub(crate) exhausted: bool,
}

/// Tries to open a connection for `order`, retrying with backoff. Every
/// failed attempt is recorded in the statistics and logged.
pub(crate) async fn open<M: Manager>(
    shared: &Arc<Shared<M>>,
    order: CreateOrder,
    persistent: bool,
) -> Result<(M::Connection, Duration), GaveUp> {
    let cfg = &shared.cfg;
    let mut attempts = 0;
    loop {
        attempts += 1;
        let start = Instant::now();
        let budget = match order.deadline {
            Some(deadline) => cfg
                .create_timeout
                .min(deadline.saturating_duration_since(start)),
            None => cfg.create_timeout,
        };
        let outcome = if budget.is_zero() {
            Err(ConnectError::TimedOut { after: budget })
        } else {
            connect_once(shared, budget).await
        };
        let error = match outcome {
            Ok(conn) => return Ok((conn, start.elapsed())),
            Err(e) => e,
        };
        let now = Instant::now();
        tracing::warn!(pool = %shared.name, attempt = attempts, error = %error, "connect failed");
        let delay = backoff(cfg.retry_backoff, cfg.retry_backoff_max, attempts);
        let permanent =
            matches!(&error, ConnectError::Backend(e) if !shared.manager.is_retryable(e));
        let go_on = shared.with_state(|st| {
            st.create_failed(error, shared.clock.now(), delay);
            let exhausted = permanent || attempts > cfg.max_retries;
            let late = order.deadline.is_some_and(|d| now + delay >= d);
            let go_on =
                !exhausted && !late && !st.is_closed() && (persistent || st.wants_connections());
            if go_on {
                st.retrying();
            }
            if go_on {
                Ok(())
            } else {
                Err(GaveUp {
                    attempts,
                    exhausted,
                })
            }
        });
        go_on?;
        sleep(delay).await;
    }
}

/// Carries out one create order: opens a connection and hands it to the
/// oldest waiter (or the idle queue).
pub(crate) async fn create<M: Manager>(shared: Arc<Shared<M>>, order: CreateOrder) {
    match open(&shared, order, false).await {
        Ok((conn, took)) => {
            let now = shared.clock.now();
            shared.with_state(|st| st.created(conn, order.kind, took, now));
            tracing::debug!(pool = %shared.name, took_ms = took.as_millis() as u64, overflow = order.kind == CreateKind::Overflow, "connection created");
        }
        Err(gave_up) => {
            shared.with_state(|st| {
                st.create_gave_up(
                    order.kind,
                    gave_up.attempts,
                    gave_up.exhausted,
                    shared.clock.now(),
                )
            });
        }
    }
}

/// Resets a returned connection in the background, then puts it back.
pub(crate) async fn reset<M: Manager>(shared: Arc<Shared<M>>, mut conn: Conn<M::Connection>) {
    let outcome = timeout(
        shared.cfg.validation_timeout,
        shared.manager.reset(&mut conn.raw),
    )
    .await;
    let ok = match outcome {
        Ok(Ok(())) => true,
        Ok(Err(e)) => {
            tracing::info!(pool = %shared.name, connection = conn.id, error = %e, "reset failed");
            false
        }
        Err(_) => {
            tracing::info!(pool = %shared.name, connection = conn.id, "reset timed out");
            false
        }
    };
    let now = shared.clock.now();
    shared.with_state(|st| st.reset_done(conn, ok, now));
}

/// Pings an idle connection that has not been used for a while.
async fn keepalive<M: Manager>(shared: Arc<Shared<M>>, mut conn: Conn<M::Connection>) {
    let outcome = timeout(
        shared.cfg.validation_timeout,
        shared.manager.validate(&mut conn.raw),
    )
    .await;
    let ok = matches!(outcome, Ok(Ok(())));
    if !ok {
        tracing::info!(pool = %shared.name, connection = conn.id, "keepalive ping failed");
    }
    let now = shared.clock.now();
    shared.with_state(|st| st.keepalive_done(conn, ok, now));
}

/// The pool's one maintenance task: every `interval` it reaps expired and
/// idle connections, reports leaks, refills `min_idle` and starts keepalive
/// pings. It holds only a weak reference, and ends when the pool is dropped
/// (it is also aborted then) or closed.
pub(crate) async fn maintain<M: Manager>(pool: Weak<Shared<M>>, interval: Duration) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        let Some(shared) = pool.upgrade() else { return };
        let now = shared.clock.now();
        let Some(ping) = shared.with_state(|st| (!st.is_closed()).then(|| st.maintain(now))) else {
            return;
        };
        for conn in ping {
            shared.spawn(keepalive(Arc::clone(&shared), conn));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_within_jitter_and_caps() {
        let base = Duration::from_millis(100);
        let max = Duration::from_secs(1);
        for retry in 1..=6 {
            let full = (base * (1 << (retry - 1))).min(max);
            let d = backoff(base, max, retry);
            assert!(
                d >= full / 2 && d <= full,
                "retry {retry}: {d:?} vs {full:?}"
            );
        }
        assert!(backoff(base, max, 60) <= max);
    }
}
