//! Lazy and eager warm-up, and failing fast.
mod common;

use std::time::Duration;

use common::{Fake, quiet};
use tidepool::{BuildError, Pool, WarmUp};

#[tokio::test(start_paused = true)]
async fn eager_warm_up_fills_min_idle_before_returning() {
    let mut cfg = quiet(5);
    cfg.min_idle = 3;
    cfg.warm_up = WarmUp::Eager;
    let fake = Fake::new().slow(Duration::from_millis(50));
    let pool = Pool::builder(fake).config(cfg).build_warm().await.unwrap();
    assert_eq!(pool.gauges().idle, 3);
}

#[tokio::test(start_paused = true)]
async fn lazy_warm_up_returns_at_once() {
    let mut cfg = quiet(5);
    cfg.min_idle = 3;
    let fake = Fake::new().slow(Duration::from_millis(50));
    let pool = Pool::builder(fake).config(cfg).build_warm().await.unwrap();
    assert_eq!(pool.gauges().idle, 0);
    tokio::time::sleep(Duration::from_millis(60)).await;
    assert_eq!(pool.gauges().idle, 3);
}

#[tokio::test(start_paused = true)]
async fn fail_fast_reports_the_first_connect_error() {
    let mut cfg = quiet(5);
    cfg.warm_up = WarmUp::EagerFailFast;
    cfg.max_retries = 1;
    let fake = Fake::new();
    fake.0.set_fail_all(true);
    let err = Pool::builder(fake)
        .config(cfg)
        .build_warm()
        .await
        .unwrap_err();
    assert!(matches!(err, BuildError::Connect(_)));
    assert!(err.to_string().contains("connection refused"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn eager_without_fail_fast_starts_with_the_database_down() {
    let mut cfg = quiet(5);
    cfg.min_idle = 1;
    cfg.warm_up = WarmUp::Eager;
    cfg.acquire_timeout = Duration::from_secs(1);
    let fake = Fake::new();
    fake.0.set_fail_all(true);
    let pool = Pool::builder(fake).config(cfg).build_warm().await.unwrap();
    assert_eq!(pool.gauges().size, 0);
}
