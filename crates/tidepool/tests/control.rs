//! Runtime control: resize, pause/resume, evict, close, drain.
mod common;

use std::time::Duration;

use common::{check_accounting, check_invariants, pool, quiet, settle};
use tidepool::PoolError;

async fn fill(pool: &tidepool::Pool<common::Fake>, n: usize) {
    let mut held = Vec::new();
    for _ in 0..n {
        held.push(pool.get().await.unwrap());
    }
}

#[tokio::test(start_paused = true)]
async fn shrinking_closes_idle_now_and_busy_on_return() {
    let (pool, _) = pool(quiet(4));
    fill(&pool, 4).await;
    let busy = pool.get().await.unwrap();
    pool.resize(2).unwrap();
    let g = pool.gauges();
    assert_eq!((g.max_size, g.size, g.idle, g.in_use), (2, 2, 1, 1));
    assert_eq!(pool.counters().closed.shrunk, 2);
    drop(busy);
    assert_eq!(
        pool.gauges().size,
        2,
        "a busy connection within the new size stays"
    );
    let a = pool.get().await.unwrap();
    let b = pool.get().await.unwrap();
    pool.resize(1).unwrap();
    drop(a);
    assert_eq!(
        pool.counters().closed.shrunk,
        3,
        "surplus busy connection closed on return"
    );
    drop(b);
    assert_eq!(pool.gauges().size, 1);
    check_invariants(&pool);
    assert!(pool.resize(0).is_err());
}

#[tokio::test(start_paused = true)]
async fn growing_serves_waiters_at_once() {
    let (pool, _) = pool(quiet(1));
    let _held = pool.get().await.unwrap();
    let waiter = tokio::spawn({
        let pool = pool.clone();
        async move { pool.get().await.map(|c| c.info().id) }
    });
    settle().await;
    assert_eq!(pool.gauges().waiting, 1);
    pool.resize(2).unwrap();
    assert_eq!(waiter.await.unwrap().unwrap(), 2);
}

#[tokio::test(start_paused = true)]
async fn paused_gets_wait_until_resumed() {
    let (pool, _) = pool(quiet(2));
    fill(&pool, 1).await;
    pool.pause();
    assert!(pool.gauges().paused);
    let waiter = tokio::spawn({
        let pool = pool.clone();
        async move { pool.get().await.map(|c| c.info().id) }
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        pool.gauges().waiting,
        1,
        "waits although a connection is idle"
    );
    assert!(pool.try_get().await.is_err());
    pool.resume();
    assert_eq!(waiter.await.unwrap().unwrap(), 1);
    // A paused get still honours its timeout.
    pool.pause();
    let err = pool
        .get_timeout(Duration::from_millis(100))
        .await
        .unwrap_err();
    assert!(err.is_timeout());
    pool.resume();
    assert!(pool.get().await.is_ok());
}

#[tokio::test(start_paused = true)]
async fn evict_closes_idle_now_busy_on_return_and_new_gets_reconnect() {
    let (pool, knobs) = pool(quiet(3));
    fill(&pool, 3).await;
    let busy = pool.get().await.unwrap();
    let old_id = busy.info().id;
    pool.evict();
    assert_eq!(pool.gauges().idle, 0);
    assert_eq!(pool.counters().closed.evicted, 2);
    let fresh = pool.get().await.unwrap();
    assert!(fresh.info().id > 3, "a new connection after eviction");
    drop(busy);
    assert_eq!(pool.counters().closed.evicted, 3);
    drop(fresh);
    assert_eq!(
        pool.gauges().idle,
        1,
        "connections made after the eviction are kept"
    );
    assert_eq!(knobs.connects(), 4);
    assert_ne!(old_id, 4);
    check_accounting(&pool);
}

#[tokio::test(start_paused = true)]
async fn close_fails_new_gets_and_wakes_waiters() {
    let (pool, _) = pool(quiet(1));
    let held = pool.get().await.unwrap();
    let waiter = tokio::spawn({
        let pool = pool.clone();
        async move { pool.get().await.map(|_| ()) }
    });
    settle().await;
    pool.close();
    assert!(matches!(waiter.await.unwrap(), Err(PoolError::Closed)));
    assert!(matches!(pool.get().await, Err(PoolError::Closed)));
    assert!(pool.is_closed());
    drop(held);
    assert_eq!(pool.gauges().size, 0);
    assert_eq!(pool.counters().closed.pool_closed, 1);
    check_accounting(&pool);
}

#[tokio::test(start_paused = true)]
async fn drain_waits_for_checked_out_connections() {
    let (pool, _) = pool(quiet(2));
    fill(&pool, 2).await;
    let held = pool.get_owned().await.unwrap();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(5)).await;
        drop(held);
    });
    let start = tokio::time::Instant::now();
    let outcome = pool.drain(Duration::from_secs(30)).await;
    assert!(outcome.is_complete());
    assert_eq!(start.elapsed(), Duration::from_secs(5));
    assert_eq!(pool.gauges().size, 0);
}

#[tokio::test(start_paused = true)]
async fn drain_gives_up_at_its_deadline() {
    let (pool, _) = pool(quiet(2));
    let held = pool.get().await.unwrap();
    let outcome = pool.drain(Duration::from_secs(3)).await;
    assert_eq!(outcome.still_in_use, 1);
    drop(held);
    assert_eq!(pool.gauges().size, 0);
}

/// A timeout's text comes from the pool's real state.
#[tokio::test(start_paused = true)]
async fn a_paused_pools_timeout_says_it_is_paused() {
    let (pool, _) = pool(quiet(2));
    drop(pool.get().await.unwrap());
    pool.pause();
    let err = pool
        .get_timeout(Duration::from_millis(50))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("paused"), "{text}");
    assert!(!text.contains("busy"), "{text}");
}

#[tokio::test(start_paused = true)]
async fn a_pool_with_no_connections_is_never_busy() {
    let mut cfg = quiet(1);
    cfg.create_timeout = Duration::from_secs(60);
    let fake = common::Fake::new().slow(Duration::from_secs(30));
    let pool = common::pool_with(fake, cfg);
    let err = pool
        .get_timeout(Duration::from_millis(50))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(!text.contains("busy"), "{text}");
    assert!(
        text.contains("connect"),
        "says a connect is under way: {text}"
    );
}
