//! Validation before checkout: always, only when idle past a window, never.
mod common;

use std::time::Duration;

use common::{check_accounting, pool, quiet};
use tidepool::Validation;

#[tokio::test(start_paused = true)]
async fn a_recently_used_connection_skips_the_ping() {
    let mut cfg = quiet(1);
    cfg.validation = Validation::IfIdle;
    cfg.validation_window = Duration::from_millis(500);
    let (pool, knobs) = pool(cfg);
    drop(pool.get().await.unwrap());
    tokio::time::sleep(Duration::from_millis(400)).await;
    drop(pool.get().await.unwrap());
    assert_eq!(knobs.validations(), 0, "used 400 ms ago: no ping");
    tokio::time::sleep(Duration::from_millis(600)).await;
    drop(pool.get().await.unwrap());
    assert_eq!(knobs.validations(), 1, "idle 600 ms: pinged");
}

#[tokio::test(start_paused = true)]
async fn always_pings_every_checkout_and_never_pings_none() {
    let mut cfg = quiet(1);
    cfg.validation = Validation::Always;
    let (pool, knobs) = pool(cfg);
    for _ in 0..5 {
        drop(pool.get().await.unwrap());
    }
    assert_eq!(knobs.validations(), 5);

    let mut cfg = quiet(1);
    cfg.validation = Validation::Never;
    let (pool, knobs) = common::pool(cfg);
    drop(pool.get().await.unwrap());
    tokio::time::sleep(Duration::from_secs(3600)).await;
    drop(pool.get().await.unwrap());
    assert_eq!(knobs.validations(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_connection_failing_validation_is_replaced_without_an_error() {
    let mut cfg = quiet(2);
    cfg.validation = Validation::Always;
    let (pool, knobs) = pool(cfg);
    drop(pool.get().await.unwrap());
    knobs.invalidate(1);
    let conn = pool
        .get()
        .await
        .expect("the caller never sees the dead connection");
    assert_eq!(conn.info().id, 2);
    let c = pool.counters();
    assert_eq!(c.validation_failures, 1);
    assert_eq!(c.closed.failed_validation, 1);
    assert_eq!(c.checkout_rejections, 1);
    drop(conn);
    check_accounting(&pool);
}
