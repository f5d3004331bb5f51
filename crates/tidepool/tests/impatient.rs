//! A caller's short deadline is not the database's failure: a connect runs
//! to its own `create_timeout`, whoever asked for it.
mod common;

use std::time::Duration;

use common::{pool, quiet};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_impatient_callers_leaves_a_healthy_pool_able_to_connect() {
    let mut cfg = quiet(4);
    cfg.acquire_timeout = Duration::from_secs(5);
    let (pool, _) = pool(cfg);
    for i in 0..20_000u64 {
        let _ = pool.get_timeout(Duration::from_micros(i % 101)).await;
    }
    let c = pool.counters();
    assert_eq!(c.create_errors, 0, "no database error happened: {c:?}");
    let conn = pool.get_timeout(Duration::from_millis(500)).await;
    assert!(conn.is_ok(), "the next get is served: {:?}", conn.err());
    assert!(pool.counters().created >= 1);
}

#[tokio::test(start_paused = true)]
async fn a_connection_that_arrives_after_its_waiter_left_goes_idle() {
    let cfg = quiet(2);
    let fake = common::Fake::new().slow(Duration::from_millis(300));
    let pool = common::pool_with(fake, cfg);
    let err = pool
        .get_timeout(Duration::from_millis(100))
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err}");
    tokio::time::sleep(Duration::from_millis(250)).await;
    let (g, c) = (pool.gauges(), pool.counters());
    assert_eq!((g.size, g.idle, g.pending), (1, 1, 0), "{g:?}");
    assert_eq!((c.created, c.create_errors), (1, 0), "{c:?}");
}
