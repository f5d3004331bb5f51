//! Timeouts say how long they waited and why.
mod common;

use std::error::Error as _;
use std::time::Duration;

use common::{FakeError, check_accounting, pool, quiet};
use tidepool::{ConnectError, PoolError};

#[tokio::test(start_paused = true)]
async fn a_busy_pool_times_out_after_the_timeout_with_no_connect_error() {
    let (pool, _) = pool(quiet(1));
    let held = pool.get().await.unwrap();
    let err = pool
        .get_timeout(Duration::from_millis(250))
        .await
        .unwrap_err();
    match &err {
        PoolError::Timeout(t) => {
            assert_eq!(t.waited, Duration::from_millis(250));
            assert!(t.last_error.is_none());
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(err.to_string().contains("all connections busy"), "{err}");
    assert_eq!(pool.counters().timeouts, 1);
    assert_eq!(pool.gauges().waiting, 0);
    drop(held);
    check_accounting(&pool);
}

#[tokio::test(start_paused = true)]
async fn a_timeout_while_connects_fail_carries_the_last_connect_error() {
    let mut cfg = quiet(2);
    cfg.max_retries = 100;
    cfg.retry_backoff = Duration::from_millis(200);
    cfg.acquire_timeout = Duration::from_secs(1);
    let (pool, knobs) = pool(cfg);
    knobs.set_fail_all(true);
    let err = pool.get().await.unwrap_err();
    let PoolError::Timeout(t) = &err else {
        panic!("expected a timeout, got {err:?}")
    };
    assert_eq!(t.waited, Duration::from_secs(1));
    let Some(ConnectError::Backend(e)) = &t.last_error else {
        panic!("expected the backend error, got {:?}", t.last_error)
    };
    assert!(e.0.starts_with("connection refused"), "{e}");
    assert!(
        err.to_string()
            .contains("last connect error: connect failed: connection refused"),
        "{err}"
    );
    assert!(
        err.source().is_some(),
        "the cause is reachable through source()"
    );
    assert_eq!(err.backend_error().map(|e| e.0.clone()), Some(e.0.clone()));
    let c = pool.counters();
    assert_eq!(c.timeouts, 1);
    assert!(c.create_errors >= 3, "{c:?}");
}

#[tokio::test(start_paused = true)]
async fn exhausted_retries_fail_the_caller_at_once_with_the_cause() {
    let mut cfg = quiet(2);
    cfg.max_retries = 2;
    cfg.retry_backoff = Duration::from_millis(100);
    let (pool, knobs) = pool(cfg);
    knobs.set_fail_all(true);
    let start = tokio::time::Instant::now();
    let err = pool.get().await.unwrap_err();
    let PoolError::Connect(c) = &err else {
        panic!("expected a connect failure, got {err:?}")
    };
    assert_eq!(c.attempts, 3);
    assert!(
        matches!(&c.error, ConnectError::Backend(e) if **e == FakeError("connection refused (attempt 3)".into()))
    );
    // Far sooner than the 5 s acquire timeout: two backoffs of at most 100 + 200 ms.
    assert!(
        start.elapsed() <= Duration::from_millis(300),
        "{:?}",
        start.elapsed()
    );
    let c = pool.counters();
    assert_eq!((c.create_errors, c.retries, c.connect_failures), (3, 2, 1));
    assert_eq!(knobs.connects(), 3);
    check_accounting(&pool);
}

#[tokio::test(start_paused = true)]
async fn a_slow_connect_is_cut_at_create_timeout() {
    let mut cfg = quiet(1);
    cfg.create_timeout = Duration::from_millis(300);
    cfg.max_retries = 0;
    let fake = common::Fake::new().slow(Duration::from_secs(10));
    let pool = common::pool_with(fake, cfg);
    let err = pool.get().await.unwrap_err();
    let PoolError::Connect(c) = &err else {
        panic!("expected a connect timeout, got {err:?}")
    };
    let ConnectError::TimedOut { after } = c.error else {
        panic!("expected a connect timeout, got {err:?}")
    };
    assert_eq!(after, Duration::from_millis(300));
}

#[tokio::test(start_paused = true)]
async fn a_per_call_timeout_overrides_the_default() {
    let mut cfg = quiet(1);
    cfg.acquire_timeout = Duration::from_secs(30);
    let (pool, _) = pool(cfg);
    let _held = pool.get().await.unwrap();
    let start = tokio::time::Instant::now();
    assert!(
        pool.get_timeout(Duration::from_millis(40))
            .await
            .unwrap_err()
            .is_timeout()
    );
    assert_eq!(start.elapsed(), Duration::from_millis(40));
}

/// A get whose connections all fail their checks (here: validation that
/// hangs, as through a blackhole) still ends at its own deadline.
#[tokio::test(start_paused = true)]
async fn a_get_checking_dead_connections_keeps_its_deadline() {
    let mut cfg = quiet(8);
    cfg.validation = tidepool::Validation::Always;
    cfg.validation_timeout = Duration::from_millis(100);
    let (pool, knobs) = common::pool(cfg);
    let held: Vec<_> = {
        let mut v = Vec::new();
        for _ in 0..8 {
            v.push(pool.get().await.unwrap());
        }
        v
    };
    drop(held);
    knobs
        .validate_delay_ms
        .store(10_000, std::sync::atomic::Ordering::SeqCst);
    let start = tokio::time::Instant::now();
    let err = pool
        .get_timeout(Duration::from_millis(300))
        .await
        .unwrap_err();
    assert_eq!(start.elapsed(), Duration::from_millis(300), "{err}");
    assert!(err.is_timeout(), "{err}");
    assert!(
        err.to_string().contains("failed their checks"),
        "the error says why: {err}"
    );
}
