//! Connections retire at their own jittered time: idle ones by maintenance,
//! busy ones on return.
mod common;

use std::time::Duration;

use common::{check_accounting, pool, quiet, settle};

#[tokio::test(start_paused = true)]
async fn connections_retire_within_the_jitter_window_not_all_at_once() {
    let mut cfg = quiet(20);
    cfg.max_lifetime = Some(Duration::from_secs(100));
    cfg.max_lifetime_jitter = 0.025; // retire between 97.5 s and 100 s
    cfg.maintenance_interval = Duration::from_millis(250);
    let (pool, _) = pool(cfg);
    let mut held = Vec::new();
    for _ in 0..20 {
        held.push(pool.get().await.unwrap());
    }
    drop(held);
    assert_eq!(pool.gauges().idle, 20);

    tokio::time::sleep(Duration::from_millis(97_400)).await;
    assert_eq!(
        pool.counters().closed.max_lifetime,
        0,
        "nobody retires before 97.5 s"
    );

    tokio::time::sleep(Duration::from_millis(1_350)).await; // 98.75 s: the middle
    let midway = pool.counters().closed.max_lifetime;
    assert!(
        midway > 0 && midway < 20,
        "retirements are spread out, {midway} of 20 at the midpoint"
    );

    tokio::time::sleep(Duration::from_millis(1_500)).await; // 100.25 s
    assert_eq!(pool.counters().closed.max_lifetime, 20);
    assert_eq!(pool.gauges().size, 0);
    check_accounting(&pool);
}

#[tokio::test(start_paused = true)]
async fn a_busy_connection_past_its_lifetime_closes_on_return() {
    let mut cfg = quiet(2);
    cfg.max_lifetime = Some(Duration::from_secs(10));
    cfg.max_lifetime_jitter = 0.0;
    let (pool, _) = pool(cfg);
    let conn = pool.get().await.unwrap();
    tokio::time::sleep(Duration::from_secs(11)).await;
    assert_eq!(
        pool.gauges().in_use,
        1,
        "a busy connection is never taken away"
    );
    drop(conn);
    assert_eq!(pool.counters().closed.max_lifetime, 1);
    assert_eq!(pool.gauges().size, 0);
    let fresh = pool.get().await.unwrap();
    assert_eq!(fresh.info().id, 2);
}

#[tokio::test(start_paused = true)]
async fn an_expired_idle_connection_is_never_handed_out() {
    let mut cfg = quiet(1);
    cfg.max_lifetime = Some(Duration::from_secs(10));
    cfg.max_lifetime_jitter = 0.0;
    cfg.maintenance_interval = Duration::from_secs(3600);
    let (pool, _) = pool(cfg);
    drop(pool.get().await.unwrap());
    tokio::time::sleep(Duration::from_secs(10)).await;
    settle().await;
    let conn = pool.get().await.unwrap();
    assert_eq!(
        conn.info().id,
        2,
        "the expired connection was closed at checkout"
    );
    assert_eq!(pool.counters().closed.max_lifetime, 1);
}
