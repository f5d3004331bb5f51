//! Connections parked in one thread's stash serve every other thread, and
//! never jump the queue: each test runs gets on fresh OS threads, so that
//! consecutive threads land in different shards.
mod common;

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use common::{check_invariants, pool, quiet};
use tidepool::PoolConfig;
use tokio::runtime::{Builder, Runtime};

fn runtime() -> Runtime {
    Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// No maintenance tick can rescue a connection stranded in a shard.
fn no_maintenance(max_size: usize) -> PoolConfig {
    let mut cfg = quiet(max_size);
    cfg.maintenance_interval = Duration::from_secs(3600);
    cfg
}

#[test]
fn a_connection_returned_on_one_thread_serves_a_get_on_another() {
    let rt = runtime();
    let (pool, knobs) = rt.block_on(async { pool(no_maintenance(1)) });
    const ROUNDS: u64 = 20;
    for _ in 0..ROUNDS {
        // Each get runs on a new thread; the one connection is returned on
        // the thread that got it, and must be found from the next.
        thread::scope(|s| {
            s.spawn(|| {
                rt.block_on(async {
                    let conn = pool
                        .get_timeout(Duration::from_secs(5))
                        .await
                        .expect("the parked connection is found");
                    drop(conn);
                });
            });
        });
    }
    check_invariants(&pool);
    let g = pool.gauges();
    assert_eq!((g.size, g.idle, g.in_use), (1, 1, 0));
    let c = pool.counters();
    assert_eq!(c.gets, ROUNDS);
    assert_eq!(c.checkouts, ROUNDS);
    assert_eq!(c.hits + c.misses, ROUNDS);
    assert_eq!(knobs.connects.load(std::sync::atomic::Ordering::SeqCst), 1);
    let s = pool.stats();
    assert_eq!(
        s.histograms.hold.count(),
        ROUNDS,
        "every return counted once"
    );
    assert_eq!(s.histograms.acquire.count(), ROUNDS);
}

#[test]
fn a_return_on_another_thread_goes_to_the_waiter_first() {
    let rt = runtime();
    let (pool, _) = rt.block_on(async { pool(no_maintenance(1)) });
    // Park the connection in one thread's shard.
    thread::scope(|s| {
        s.spawn(|| rt.block_on(async { drop(pool.get().await.expect("get")) }));
    });
    let (held_tx, held_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let order = std::sync::Mutex::new(Vec::new());
    let (rt, pool, order) = (&rt, &pool, &order);
    thread::scope(|s| {
        // The holder takes it (from another shard), then a waiter queues.
        s.spawn(move || {
            rt.block_on(async {
                let conn = pool.get().await.expect("holder");
                held_tx.send(()).expect("main thread");
                release_rx.recv().expect("release");
                drop(conn);
                // The holder asks again at once: it must not overtake.
                let _again = pool.get().await.expect("holder again");
                order.lock().unwrap().push("holder");
            });
        });
        held_rx.recv().expect("held");
        s.spawn(|| {
            rt.block_on(async {
                let _conn = pool
                    .get_timeout(Duration::from_secs(5))
                    .await
                    .expect("the return reaches the waiter");
                order.lock().unwrap().push("waiter");
            });
        });
        // Real threads: no paused clock to drive, so poll, with a bound.
        let queued_by = std::time::Instant::now() + Duration::from_secs(5);
        while pool.gauges().waiting == 0 {
            assert!(
                std::time::Instant::now() < queued_by,
                "the waiter never queued"
            );
            thread::sleep(Duration::from_millis(1));
        }
        check_invariants(pool);
        release_tx.send(()).expect("holder");
    });
    assert_eq!(*order.lock().unwrap(), ["waiter", "holder"]);
    check_invariants(pool);
    // Waited: the first get (for the connect), the waiter, and the holder
    // asking again behind it.
    let c = pool.counters();
    assert_eq!((c.gets, c.waited), (4, 3));
}

#[test]
fn many_threads_racing_lose_nothing_and_count_everything() {
    let rt = runtime();
    let (pool, knobs) = rt.block_on(async { pool(no_maintenance(2)) });
    const THREADS: u64 = 4;
    const TASKS: u64 = 4;
    const GETS: u64 = 500;
    thread::scope(|s| {
        // OS threads (more than there are shards, so some share one) and
        // runtime tasks, all at once, with snapshots taken in the middle.
        for t in 0..THREADS {
            let (rt, pool) = (&rt, &pool);
            s.spawn(move || {
                rt.block_on(async {
                    let tasks: Vec<_> = (0..TASKS)
                        .map(|k| {
                            let pool = pool.clone();
                            tokio::spawn(async move {
                                for i in 0..GETS {
                                    let conn = pool
                                        .get_timeout(Duration::from_secs(10))
                                        .await
                                        .expect("no connection is lost");
                                    if (i + k + t) % 3 == 0 {
                                        tokio::task::yield_now().await;
                                    }
                                    drop(conn);
                                    if i % 97 == 0 {
                                        let g = pool.gauges();
                                        assert_eq!(g.idle + g.in_use, g.size, "{g:?}");
                                    }
                                }
                            })
                        })
                        .collect();
                    for task in tasks {
                        task.await.expect("task");
                    }
                });
            });
        }
    });
    let total = THREADS * TASKS * GETS;
    check_invariants(&pool);
    let s = pool.stats();
    assert_eq!((s.gauges.size, s.gauges.in_use, s.gauges.idle), (2, 0, 2));
    assert_eq!(s.counters.gets, total);
    assert_eq!(s.counters.checkouts, total);
    // Nothing fails here: every get found a connection idle or queued.
    assert_eq!(s.counters.hits + s.counters.waited, total);
    assert_eq!(
        s.histograms.hold.count(),
        total,
        "every return counted once"
    );
    assert_eq!(
        s.histograms.acquire.count(),
        total,
        "every get counted once"
    );
    assert_eq!(knobs.connects.load(std::sync::atomic::Ordering::SeqCst), 2);
}
