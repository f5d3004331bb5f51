//! The idle timeout closes unused connections but never below `min_idle`.
mod common;

use std::time::Duration;

use common::{check_invariants, pool, quiet};

#[tokio::test(start_paused = true)]
async fn idle_connections_close_down_to_min_idle() {
    let mut cfg = quiet(5);
    cfg.min_idle = 2;
    cfg.idle_timeout = Some(Duration::from_secs(60));
    cfg.maintenance_interval = Duration::from_secs(1);
    let (pool, _) = pool(cfg);
    let mut held = Vec::new();
    for _ in 0..5 {
        held.push(pool.get().await.unwrap());
    }
    drop(held);
    assert_eq!(pool.gauges().idle, 5);
    tokio::time::sleep(Duration::from_secs(59)).await;
    assert_eq!(pool.gauges().size, 5, "not before the timeout");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let g = pool.gauges();
    assert_eq!((g.size, g.idle), (2, 2));
    assert_eq!(pool.counters().closed.idle_timeout, 3);
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert_eq!(pool.gauges().size, 2, "min_idle is kept for good");
    check_invariants(&pool);
}

#[tokio::test(start_paused = true)]
async fn a_connection_in_use_is_not_idle() {
    let mut cfg = quiet(2);
    cfg.idle_timeout = Some(Duration::from_secs(60));
    let (pool, _) = pool(cfg);
    let busy = pool.get().await.unwrap();
    tokio::time::sleep(Duration::from_secs(120)).await;
    drop(busy);
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert_eq!(pool.gauges().idle, 1, "idle time counts from the return");
    assert_eq!(pool.counters().closed.idle_timeout, 0);
}

#[tokio::test(start_paused = true)]
async fn min_idle_is_filled_in_the_background() {
    let mut cfg = quiet(5);
    cfg.min_idle = 3;
    let (pool, knobs) = pool(cfg);
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(pool.gauges().idle, 3);
    assert_eq!(knobs.connects(), 3);
    let held = pool.get().await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(pool.gauges().idle, 3, "refilled after a checkout");
    assert_eq!(pool.counters().hits, 1);
    drop(held);
}
