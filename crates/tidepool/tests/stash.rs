//! Connections parked in one thread's stash serve every other thread, and
//! never jump the queue: each test runs gets on fresh OS threads, so that
//! consecutive threads land in different shards.
mod common;

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use common::{check_invariants, pool, quiet};
use tokio::runtime::{Builder, Runtime};

fn runtime() -> Runtime {
    Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

#[test]
fn a_connection_returned_on_one_thread_serves_a_get_on_another() {
    let rt = runtime();
    let (pool, knobs) = rt.block_on(async { pool(quiet(1)) });
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
    let (pool, _) = rt.block_on(async { pool(quiet(1)) });
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
                let _conn = pool.get().await.expect("waiter");
                order.lock().unwrap().push("waiter");
            });
        });
        while pool.gauges().waiting == 0 {
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
