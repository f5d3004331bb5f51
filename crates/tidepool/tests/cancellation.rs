//! A get future dropped at any point loses neither a connection nor capacity.
mod common;

use std::time::Duration;

use common::{check_accounting, check_invariants, pool, quiet};
use tidepool::Validation;

#[tokio::test(start_paused = true)]
async fn thousands_of_gets_dropped_at_random_points_leave_capacity_intact() {
    let mut cfg = quiet(4);
    cfg.validation = Validation::Always;
    cfg.acquire_timeout = Duration::from_secs(60);
    let fake = common::Fake::new().slow(Duration::from_millis(3));
    let knobs = fake.knobs();
    let pool = common::pool_with(fake, cfg);
    let mut rng = fastrand::Rng::with_seed(7);
    let mut handles = Vec::new();
    for i in 0..3000u64 {
        let task_pool = pool.clone();
        let hold = Duration::from_micros(rng.u64(0..3000));
        let give_up = Duration::from_micros(rng.u64(0..4000));
        let broken = rng.u8(0..20) == 0;
        handles.push(tokio::spawn(async move {
            // Dropped by the timeout at a random point: queued, connecting,
            // validating, or holding.
            let _ = tokio::time::timeout(give_up, async {
                let mut conn = task_pool.get().await?;
                conn.broken = broken;
                tokio::time::sleep(hold).await;
                Ok::<_, tidepool::PoolError<common::FakeError>>(())
            })
            .await;
        }));
        if i % 7 == 0 {
            tokio::time::sleep(Duration::from_micros(rng.u64(0..500))).await;
        }
        if i % 11 == 0 {
            // Some tasks are aborted outright instead.
            if let Some(h) = handles.get(rng.usize(0..handles.len())) {
                h.abort();
            }
        }
        if i % 97 == 0 {
            check_invariants(&pool);
        }
    }
    for h in handles {
        let _ = h.await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let g = pool.gauges();
    assert_eq!((g.in_use, g.waiting, g.pending), (0, 0, 0), "{g:?}");
    check_invariants(&pool);
    check_accounting(&pool);
    assert!(
        pool.counters().cancelled > 100,
        "the test must actually cancel gets"
    );
    // Full capacity is still there: four connections at once, without waiting
    // past what connecting takes.
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(
            pool.get_timeout(Duration::from_millis(50))
                .await
                .expect("capacity intact"),
        );
    }
    assert!(pool.try_get().await.is_err());
    assert!(knobs.connects() >= 4);
}

#[tokio::test(start_paused = true)]
async fn a_waiter_dropped_after_being_served_passes_the_connection_on() {
    let (pool, _) = pool(quiet(1));
    let held = pool.get().await.unwrap();
    let mut first = Box::pin(pool.get());
    // Poll once so it queues.
    assert!(futures_poll_once(first.as_mut()).await.is_none());
    let second = tokio::spawn({
        let pool = pool.clone();
        async move { pool.get().await.map(|c| c.info().id) }
    });
    common::settle().await;
    drop(held); // served to `first`, which is never polled again
    drop(first);
    assert_eq!(second.await.unwrap().unwrap(), 1);
    check_accounting(&pool);
    assert_eq!(pool.counters().cancelled, 1);
}

/// Polls a future once; `None` if it is pending.
async fn futures_poll_once<F: std::future::Future + Unpin>(mut f: F) -> Option<F::Output> {
    std::future::poll_fn(|cx| match std::pin::Pin::new(&mut f).poll(cx) {
        std::task::Poll::Ready(v) => std::task::Poll::Ready(Some(v)),
        std::task::Poll::Pending => std::task::Poll::Ready(None),
    })
    .await
}
