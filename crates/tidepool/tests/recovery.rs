//! After an outage the pool connects again as soon as the database is back,
//! without hammering it while it is down.
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{Fake, pool_with, quiet};
use tokio::time::Instant;

#[tokio::test(start_paused = true)]
async fn the_first_success_follows_the_databases_return_within_50ms() {
    let mut cfg = quiet(8);
    cfg.max_retries = 3;
    cfg.retry_backoff = Duration::from_millis(10);
    cfg.retry_backoff_max = Duration::from_millis(40);
    cfg.acquire_timeout = Duration::from_secs(30);
    let fake = Fake::new();
    let knobs = fake.knobs();
    let pool = pool_with(fake, cfg);
    for cycle in 0..5 {
        knobs.set_fail_all(true);
        pool.evict();
        let down_at = Instant::now();
        let attempts_before = knobs.connects();
        let stop = Arc::new(AtomicBool::new(false));
        let first_ok = Arc::new(std::sync::Mutex::new(None::<Instant>));
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let (pool, stop, first_ok) = (pool.clone(), Arc::clone(&stop), Arc::clone(&first_ok));
            tasks.push(tokio::spawn(async move {
                while !stop.load(Ordering::SeqCst) {
                    match pool.get().await {
                        Ok(conn) => {
                            first_ok.lock().unwrap().get_or_insert(Instant::now());
                            tokio::time::sleep(Duration::from_millis(1)).await;
                            drop(conn);
                        }
                        // Ask again at once, as a service retrying a request would.
                        Err(_) => tokio::task::yield_now().await,
                    }
                }
            }));
        }
        tokio::time::sleep(Duration::from_millis(3000)).await;
        assert!(first_ok.lock().unwrap().is_none(), "the database was down");
        let attempts_down = knobs.connects() - attempts_before;
        // Backoff bounds the attempts: while connects fail, one is in
        // flight at a time, at most one per 20 ms (half the 40 ms cap).
        assert!(
            attempts_down <= 3000 / 20 + 8,
            "cycle {cycle}: {attempts_down} attempts while down"
        );
        let back_at = Instant::now();
        knobs.set_fail_all(false);
        tokio::time::sleep(Duration::from_millis(500)).await;
        stop.store(true, Ordering::SeqCst);
        for t in tasks {
            t.await.unwrap();
        }
        let first = first_ok.lock().unwrap().expect("served after the outage");
        let lag = first - back_at;
        assert!(
            lag <= Duration::from_millis(50),
            "cycle {cycle}: first success {lag:?} after the database returned (down at {:?})",
            back_at - down_at
        );
    }
}

/// A connection whose driver already knows it is closed is never handed out.
#[tokio::test(start_paused = true)]
async fn a_connection_known_closed_is_never_handed_out() {
    let (pool, knobs) = common::pool(quiet(2));
    let id = pool.get().await.unwrap().id;
    knobs.kill(id);
    let conn = pool.get().await.unwrap();
    assert_ne!(conn.id, id, "the dead connection was handed out");
    assert_eq!(pool.counters().closed.broken, 1);
}
