//! Failed connects are retried with exponential backoff and jitter, never
//! past the caller's deadline.
mod common;

use std::time::Duration;

use common::{Fake, pool_with, quiet};
use tidepool::PoolError;

#[tokio::test(start_paused = true)]
async fn failed_connects_are_retried_with_growing_delays() {
    let mut cfg = quiet(1);
    cfg.max_retries = 3;
    cfg.retry_backoff = Duration::from_millis(100);
    let fake = Fake::new().failing_attempts([1, 2, 3]);
    let knobs = fake.knobs();
    let pool = pool_with(fake, cfg);
    let conn = pool.get().await.expect("the fourth attempt succeeds");
    assert_eq!(conn.id, 4, "the fourth attempt made it");
    assert_eq!(
        conn.info().id,
        1,
        "the pool counts connections, not attempts"
    );
    let times = knobs.attempt_times.lock().unwrap().clone();
    assert_eq!(times.len(), 4);
    for (k, pair) in times.windows(2).enumerate() {
        let gap = pair[1] - pair[0];
        let full = Duration::from_millis(100 << k);
        assert!(
            gap >= full / 2 && gap <= full,
            "retry {}: waited {gap:?}, expected {:?}..={full:?}",
            k + 1,
            full / 2
        );
    }
    let c = pool.counters();
    assert_eq!((c.create_errors, c.retries, c.created), (3, 3, 1));
}

#[tokio::test(start_paused = true)]
async fn retries_stop_at_the_callers_deadline() {
    let mut cfg = quiet(1);
    cfg.max_retries = 50;
    cfg.retry_backoff = Duration::from_millis(400);
    cfg.retry_backoff_max = Duration::from_secs(5);
    cfg.acquire_timeout = Duration::from_secs(1);
    let fake = Fake::new();
    fake.0.set_fail_all(true);
    let knobs = fake.knobs();
    let pool = pool_with(fake, cfg);
    let start = tokio::time::Instant::now();
    let err = pool.get().await.unwrap_err();
    assert!(
        matches!(
            &err,
            PoolError::Timeout(t) if t.last_error.is_some()
        ),
        "{err:?}"
    );
    tokio::time::sleep(Duration::from_secs(10)).await;
    let times = knobs.attempt_times.lock().unwrap().clone();
    assert!(
        times.iter().all(|t| *t - start < Duration::from_secs(1)),
        "no attempt after the deadline"
    );
    assert!(
        times.len() <= 3,
        "{} attempts in 1 s with 400 ms+ backoff",
        times.len()
    );
    assert_eq!(pool.gauges().pending, 0);
}

#[tokio::test(start_paused = true)]
async fn a_recovered_database_serves_the_next_caller() {
    let mut cfg = quiet(1);
    cfg.max_retries = 0;
    let fake = Fake::new();
    fake.0.set_fail_all(true);
    let knobs = fake.knobs();
    let pool = pool_with(fake, cfg);
    assert!(matches!(
        pool.get().await,
        Err(PoolError::Connect(c)) if c.attempts == 1
    ));
    knobs.set_fail_all(false);
    assert!(pool.get().await.is_ok());
    assert_eq!(pool.gauges().pending, 0);
}

mod permanent {
    use std::time::Duration;

    use tidepool::{Manager, Pool, PoolError};

    use super::common::FakeError;

    /// Refuses every connect with an error no retry can fix.
    struct WrongPassword;

    impl Manager for WrongPassword {
        type Connection = ();
        type Error = FakeError;
        async fn connect(&self) -> Result<(), FakeError> {
            Err(FakeError("password authentication failed".into()))
        }
        async fn validate(&self, _: &mut ()) -> Result<(), FakeError> {
            Ok(())
        }
        fn is_retryable(&self, _: &FakeError) -> bool {
            false
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_permanent_error_is_not_retried() {
        let pool = Pool::builder(WrongPassword)
            .max_retries(5)
            .retry_backoff(Duration::from_millis(100))
            .build()
            .unwrap();
        let start = tokio::time::Instant::now();
        let err = pool.get().await.unwrap_err();
        assert!(
            matches!(&err, PoolError::Connect(c) if c.attempts == 1),
            "{err:?}"
        );
        assert_eq!(start.elapsed(), Duration::ZERO);
        assert_eq!(pool.counters().retries, 0);
    }
}
