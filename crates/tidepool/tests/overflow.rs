//! Overflow connections open beyond max_size under load and close on return.
mod common;

use std::time::Duration;

use common::{check_accounting, check_invariants, pool, quiet};

#[tokio::test(start_paused = true)]
async fn overflow_opens_when_full_and_closes_when_returned() {
    let mut cfg = quiet(2);
    cfg.max_overflow = 1;
    let (pool, _) = pool(cfg);
    let a = pool.get().await.unwrap();
    let b = pool.get().await.unwrap();
    assert_eq!(pool.gauges().overflow, 0, "no overflow below max_size");
    let extra = pool.get().await.unwrap();
    let g = pool.gauges();
    assert_eq!((g.size, g.overflow, g.overflow_in_use), (3, 1, 1));
    check_invariants(&pool);
    // max_size + max_overflow reached: the next caller waits.
    assert!(
        pool.get_timeout(Duration::from_millis(10))
            .await
            .unwrap_err()
            .is_timeout()
    );
    drop(extra);
    let g = pool.gauges();
    assert_eq!((g.size, g.overflow), (2, 0));
    assert_eq!(pool.counters().closed.overflow_returned, 1);
    assert_eq!(pool.counters().overflow_created, 1);
    drop((a, b));
    assert_eq!(pool.gauges().idle, 2);
    check_accounting(&pool);
}

#[tokio::test(start_paused = true)]
async fn an_overflow_connection_serves_a_waiter_before_closing() {
    let mut cfg = quiet(1);
    cfg.max_overflow = 1;
    let (pool, _) = pool(cfg);
    let a = pool.get().await.unwrap();
    let extra = pool.get().await.unwrap();
    let waiter = tokio::spawn({
        let pool = pool.clone();
        async move { pool.get().await.unwrap().info().id }
    });
    common::settle().await;
    drop(extra);
    assert_eq!(
        waiter.await.unwrap(),
        2,
        "the overflow connection went to the waiter"
    );
    assert_eq!(pool.counters().closed.overflow_returned, 1);
    drop(a);
}

#[tokio::test(start_paused = true)]
async fn an_overflow_connection_stays_when_a_regular_slot_freed() {
    let mut cfg = quiet(1);
    cfg.max_overflow = 1;
    let (pool, _) = pool(cfg);
    let mut a = pool.get().await.unwrap();
    let extra = pool.get().await.unwrap();
    a.broken = true;
    drop(a); // the regular slot is gone
    drop(extra);
    let g = pool.gauges();
    assert_eq!(
        (g.size, g.idle, g.overflow),
        (1, 1, 0),
        "promoted to regular"
    );
}
