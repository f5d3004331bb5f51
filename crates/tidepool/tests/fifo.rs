//! Waiters are served strictly first come, first served.
mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{check_invariants, pool, quiet, settle};

#[tokio::test(start_paused = true)]
async fn returned_connections_go_to_waiters_in_arrival_order() {
    let (pool, _) = pool(quiet(1));
    let held = pool.get().await.unwrap();
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for i in 0..50 {
        let (pool, order) = (pool.clone(), Arc::clone(&order));
        tasks.push(tokio::spawn(async move {
            let conn = pool.get().await.unwrap();
            order.lock().unwrap().push(i);
            tokio::time::sleep(Duration::from_millis(1)).await;
            drop(conn);
        }));
        // Each task queues before the next is spawned.
        settle().await;
    }
    assert_eq!(pool.gauges().waiting, 50);
    check_invariants(&pool);
    drop(held);
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(*order.lock().unwrap(), (0..50).collect::<Vec<_>>());
}

#[tokio::test(start_paused = true)]
async fn a_newcomer_never_overtakes_a_queued_waiter() {
    let (pool, _) = pool(quiet(1));
    let held = pool.get().await.unwrap();
    let waiter = tokio::spawn({
        let pool = pool.clone();
        async move { pool.get().await.unwrap().info().id }
    });
    settle().await;
    drop(held);
    // The connection went to the queued waiter, not back to idle.
    assert_eq!(pool.gauges().idle, 0);
    assert!(
        pool.try_get().await.is_err(),
        "try_get must not take the waiter's connection"
    );
    assert_eq!(waiter.await.unwrap(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_new_connection_goes_to_the_oldest_waiter() {
    let mut cfg = quiet(2);
    cfg.max_retries = 0;
    let fake = common::Fake::new().slow(Duration::from_millis(100));
    let pool = common::pool_with(fake, cfg);
    let first = pool.get().await.unwrap();
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for i in 0..3 {
        let (pool, order) = (pool.clone(), Arc::clone(&order));
        tasks.push(tokio::spawn(async move {
            let _c = pool.get().await.unwrap();
            order.lock().unwrap().push(i);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }));
        settle().await;
    }
    drop(first);
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(*order.lock().unwrap(), vec![0, 1, 2]);
}

/// A waiter handed a connection that fails validation keeps its place.
#[tokio::test(start_paused = true)]
async fn a_waiter_whose_connection_fails_validation_keeps_its_place() {
    let mut cfg = quiet(1);
    cfg.validation = tidepool::Validation::Always;
    let (pool, knobs) = pool(cfg);
    let held = pool.get().await.unwrap();
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for name in ["first", "second"] {
        let (pool, order) = (pool.clone(), Arc::clone(&order));
        tasks.push(tokio::spawn(async move {
            let conn = pool.get().await.unwrap();
            order.lock().unwrap().push(name);
            tokio::time::sleep(Duration::from_millis(1)).await;
            drop(conn);
        }));
        settle().await;
    }
    knobs.invalidate(held.id);
    drop(held);
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(*order.lock().unwrap(), ["first", "second"]);
}
