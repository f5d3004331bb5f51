//! A panicking hook, or a runtime that goes away, never loses capacity: the
//! pool keeps serving, and counts and logs the panic.
mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{check_accounting, pool, quiet, settle};
use tidepool::{Pool, PoolError};

fn one() -> tidepool::PoolConfig {
    let mut cfg = quiet(1);
    cfg.acquire_timeout = Duration::from_millis(500);
    cfg.retry_backoff = Duration::from_millis(10);
    cfg
}

#[tokio::test(start_paused = true)]
async fn a_panicking_has_broken_gives_its_connection_back() {
    let (pool, knobs) = pool(one());
    let conn = pool.get().await.unwrap();
    knobs.set(&knobs.panic_has_broken, true);
    drop(conn);
    knobs.set(&knobs.panic_has_broken, false);
    let g = pool.gauges();
    assert_eq!(g.in_use, 0, "{g:?}");
    assert!(pool.get().await.is_ok(), "the pool still serves");
    assert_eq!(pool.counters().panics, 1);
    check_accounting(&pool);
}

#[tokio::test(start_paused = true)]
async fn a_panicking_connect_frees_its_slot() {
    let (pool, knobs) = pool(one());
    knobs.set(&knobs.panic_connect, true);
    let err = pool.get().await.unwrap_err();
    assert!(
        err.is_timeout() || matches!(err, PoolError::Connect(_)),
        "{err}"
    );
    assert!(
        !err.to_string().contains("busy"),
        "a pool with no connection is never busy: {err}"
    );
    knobs.set(&knobs.panic_connect, false);
    settle().await;
    let g = pool.gauges();
    assert_eq!((g.size, g.pending), (0, 0), "{g:?}");
    assert!(
        pool.get().await.is_ok(),
        "the pool serves once the fault clears"
    );
    assert!(pool.counters().panics >= 1);
}

#[tokio::test(start_paused = true)]
async fn a_panicking_reset_gives_its_connection_back() {
    let (pool, knobs) = pool(one());
    knobs.reset_on_return.store(true, Ordering::SeqCst);
    knobs.set(&knobs.panic_reset, true);
    drop(pool.get().await.unwrap());
    settle().await;
    knobs.set(&knobs.panic_reset, false);
    let g = pool.gauges();
    assert_eq!(g.in_use, 0, "{g:?}");
    assert!(pool.get().await.is_ok(), "the pool still serves");
    assert_eq!(pool.counters().panics, 1);
    assert_eq!(
        pool.counters().closed.error,
        1,
        "its state is unknown: closed"
    );
}

/// The shared-pool-in-`#[tokio::test]` pattern: built in one runtime, used
/// from another once the first is gone.
#[test]
fn a_pool_outlives_the_runtime_it_was_built_in() {
    let first = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let pool: Pool<common::Fake> =
        first.block_on(async { common::pool_with(common::Fake::new(), one()) });
    drop(first);
    let second = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    second.block_on(async {
        let conn = pool
            .get()
            .await
            .expect("background work runs on the current runtime");
        drop(conn);
        let g = pool.gauges();
        assert_eq!((g.size, g.pending), (1, 0), "{g:?}");
    });
}
