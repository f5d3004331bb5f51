//! Idle connections unused for the keepalive interval are pinged.
mod common;

use std::time::Duration;

use common::{pool, quiet};

#[tokio::test(start_paused = true)]
async fn idle_connections_are_pinged_and_kept() {
    let mut cfg = quiet(2);
    cfg.keepalive_interval = Some(Duration::from_secs(30));
    let (pool, knobs) = pool(cfg);
    drop(pool.get().await.unwrap());
    tokio::time::sleep(Duration::from_secs(29)).await;
    assert_eq!(knobs.validations(), 0);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(knobs.validations(), 1);
    assert_eq!(pool.counters().keepalives, 1);
    assert_eq!(pool.gauges().idle, 1);
    // The next ping is due 30 s after the last one, not every tick.
    tokio::time::sleep(Duration::from_secs(20)).await;
    assert_eq!(knobs.validations(), 1);
    tokio::time::sleep(Duration::from_secs(15)).await;
    assert_eq!(knobs.validations(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_failed_ping_closes_the_connection_and_min_idle_is_refilled() {
    let mut cfg = quiet(2);
    cfg.min_idle = 1;
    cfg.keepalive_interval = Some(Duration::from_secs(30));
    let (pool, knobs) = pool(cfg);
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(pool.gauges().idle, 1);
    knobs.invalidate(1);
    tokio::time::sleep(Duration::from_secs(32)).await;
    let c = pool.counters();
    assert_eq!(c.closed.failed_validation, 1);
    assert_eq!(c.validation_failures, 1);
    assert_eq!(pool.gauges().idle, 1, "replaced");
    assert_eq!(knobs.connects(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_keepalive_does_not_reset_the_idle_timeout() {
    let mut cfg = quiet(2);
    cfg.keepalive_interval = Some(Duration::from_secs(20));
    cfg.idle_timeout = Some(Duration::from_secs(50));
    let (pool, knobs) = pool(cfg);
    drop(pool.get().await.unwrap());
    tokio::time::sleep(Duration::from_secs(52)).await;
    assert!(knobs.validations() >= 2);
    assert_eq!(pool.counters().closed.idle_timeout, 1);
}

/// A connection out for its ping is not missing: no replacement is opened.
#[tokio::test(start_paused = true)]
async fn pings_do_not_open_replacements_for_min_idle() {
    let mut cfg = quiet(6);
    cfg.min_idle = 1;
    cfg.keepalive_interval = Some(Duration::from_secs(1));
    let (pool, knobs) = pool(cfg);
    tokio::time::sleep(Duration::from_secs(12)).await;
    assert!(
        knobs.validations() >= 5,
        "pings ran: {}",
        knobs.validations()
    );
    assert_eq!(pool.counters().created, 1, "{:?}", pool.gauges());
    assert_eq!(pool.gauges().size, 1);
}

#[tokio::test(start_paused = true)]
async fn with_no_traffic_created_stays_at_min_idle() {
    let mut cfg = quiet(6);
    cfg.min_idle = 1;
    cfg.keepalive_interval = Some(Duration::from_secs(1));
    cfg.idle_timeout = Some(Duration::from_secs(4));
    let (pool, _) = pool(cfg);
    drop(pool.get().await.unwrap());
    drop(pool.get().await.unwrap());
    // The two gets may leave a spare beside min_idle; the idle timeout
    // takes it away, and from then on nothing churns.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let settled = pool.counters();
    assert_eq!(pool.gauges().size, 1);
    tokio::time::sleep(Duration::from_secs(600)).await;
    let c = pool.counters();
    assert_eq!(c.created, settled.created, "{c:?}");
    assert_eq!(c.closed.total(), settled.closed.total(), "{c:?}");
    assert!(c.keepalives >= 500, "the connection was kept alive: {c:?}");
    assert_eq!(pool.gauges().size, 1);
}
