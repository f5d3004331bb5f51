//! The guard: metadata, detach, retire, broken returns, reset, try_get,
//! direct connects.
mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{check_accounting, pool, quiet};
use tidepool::PoolError;

#[tokio::test(start_paused = true)]
async fn the_guard_shows_connection_metadata() {
    let (pool, _) = pool(quiet(1));
    let conn = pool.get().await.unwrap();
    let info = conn.info();
    assert_eq!((info.id, info.times_used), (1, 1));
    assert_eq!((info.age(), info.idle()), (Duration::ZERO, Duration::ZERO));
    drop(conn);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let conn = pool.get().await.unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let info = conn.info();
    assert_eq!(info.times_used, 2);
    assert_eq!(info.age(), Duration::from_secs(5), "opened 5 s ago");
    assert_eq!(
        info.idle(),
        Duration::from_secs(2),
        "idle 2 s before this checkout"
    );
    assert_eq!(conn.held_for(), Duration::from_secs(3));
}

#[tokio::test(start_paused = true)]
async fn an_owned_guard_moves_into_a_task_and_comes_back_once() {
    let (pool, _) = pool(quiet(1));
    let lent = pool.get().await.unwrap();
    let id = lent.info().id;
    let owned = lent.into_owned();
    let seen = tokio::spawn(async move { owned.info().id }).await.unwrap();
    assert_eq!(seen, id, "the same checkout, not a second one");
    let g = pool.gauges();
    assert_eq!((g.size, g.in_use, g.idle), (1, 0, 1));
    assert_eq!(pool.counters().checkouts, 1);
    let again = pool.get_owned().await.unwrap();
    assert_eq!(again.info().id, id);
    drop(again);
    check_accounting(&pool);
}

#[tokio::test(start_paused = true)]
async fn a_detached_connection_leaves_the_pool_and_frees_its_slot() {
    let (pool, _) = pool(quiet(1));
    let conn = pool.get().await.unwrap();
    let raw = conn.detach();
    assert_eq!(raw.id, 1);
    let g = pool.gauges();
    assert_eq!((g.size, g.in_use), (0, 0));
    let next = pool.get_timeout(Duration::from_millis(10)).await.unwrap();
    assert_eq!(next.id, 2);
    assert_eq!(pool.counters().detached, 1);
    drop(next);
    check_accounting(&pool);
}

#[tokio::test(start_paused = true)]
async fn a_retired_connection_keeps_its_slot_until_its_close_ends() {
    let (pool, knobs) = pool(quiet(1));
    let conn = pool.get().await.unwrap();
    let (raw, slot) = conn.retire();
    let g = pool.gauges();
    assert_eq!((g.size, g.in_use, g.closing), (1, 0, 1));
    // The close takes 5 s; a get meanwhile waits rather than open a second.
    let closing = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(raw.id, 1, "closed here");
        drop(slot);
    });
    let waited = pool.get_timeout(Duration::from_secs(1)).await;
    assert!(matches!(waited, Err(PoolError::Timeout(_))), "{waited:?}");
    assert_eq!(
        knobs.connects.load(Ordering::SeqCst),
        1,
        "no second connect"
    );
    let next = pool.get_timeout(Duration::from_secs(10)).await.unwrap();
    assert_eq!(next.id, 2, "a new connection once the slot was freed");
    closing.await.unwrap();
    assert_eq!(pool.counters().closed.broken, 1);
    drop(next);
    check_accounting(&pool);
}

#[tokio::test(start_paused = true)]
async fn a_broken_connection_is_closed_on_return() {
    let (pool, _) = pool(quiet(1));
    let mut conn = pool.get().await.unwrap();
    conn.broken = true; // what `has_broken` sees
    drop(conn);
    assert_eq!(pool.counters().closed.broken, 1);
    let mut conn = pool.get().await.unwrap();
    conn.mark_broken();
    drop(conn);
    assert_eq!(pool.counters().closed.broken, 2);
    assert_eq!(pool.gauges().size, 0);
}

#[tokio::test(start_paused = true)]
async fn a_reset_runs_after_return_before_reuse() {
    let (pool, knobs) = pool(quiet(1));
    knobs.reset_on_return.store(true, Ordering::SeqCst);
    let mut conn = pool.get().await.unwrap();
    conn.value = 42;
    drop(conn);
    let conn = pool.get().await.unwrap();
    assert_eq!(conn.value, 0, "session state was reset");
    assert_eq!(knobs.resets.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn try_get_never_waits() {
    let (pool, knobs) = pool(quiet(1));
    assert!(
        matches!(pool.try_get().await, Err(PoolError::NoneIdle)),
        "nothing idle yet"
    );
    assert_eq!(knobs.connects(), 0, "and it does not connect");
    drop(pool.get().await.unwrap());
    let conn = pool.try_get().await.unwrap();
    assert!(matches!(pool.try_get().await, Err(PoolError::NoneIdle)));
    drop(conn);
    assert_eq!(pool.counters().none_idle, 2);
    check_accounting(&pool);
}

#[tokio::test(start_paused = true)]
async fn a_direct_connection_bypasses_the_pool() {
    let (pool, knobs) = pool(quiet(1));
    let _held = pool.get().await.unwrap();
    let direct = pool.connect_direct().await.unwrap();
    assert_eq!(direct.id, 2);
    assert_eq!(knobs.connects(), 2);
    let g = pool.gauges();
    assert_eq!((g.size, g.in_use), (1, 1), "not counted");
}

#[tokio::test(start_paused = true)]
async fn a_connection_being_reset_is_waited_for_not_replaced() {
    let (pool, knobs) = pool(quiet(4));
    knobs.reset_on_return.store(true, Ordering::SeqCst);
    for _ in 0..1000 {
        drop(pool.get().await.unwrap());
    }
    assert_eq!(
        pool.counters().created,
        1,
        "sequential gets reuse the one connection"
    );
    common::settle().await; // the last reset runs in the background
    assert_eq!(knobs.resets.load(Ordering::SeqCst), 1000);
}
