//! Every counter and gauge after a scripted scenario, and the histograms.
mod common;

use std::time::Duration;

use common::{check_accounting, pool, quiet, settle};
use tidepool::Validation;

#[tokio::test(start_paused = true)]
async fn every_counter_and_gauge_after_a_scripted_scenario() {
    let mut cfg = quiet(2);
    cfg.max_overflow = 1;
    cfg.validation = Validation::Always;
    cfg.max_retries = 0;
    let (pool, knobs) = pool(cfg);

    // 1. Two misses (new connections), held 10 ms and 30 ms.
    let a = pool.get().await.unwrap();
    let b = pool.get().await.unwrap();
    // 2. An overflow connection (a miss too), returned at once: closed.
    let c = pool.get().await.unwrap();
    drop(c);
    tokio::time::sleep(Duration::from_millis(10)).await;
    drop(a);
    tokio::time::sleep(Duration::from_millis(20)).await;
    drop(b);
    // 3. Two hits, both validated; the second reuses the first's connection.
    drop(pool.get().await.unwrap());
    drop(pool.get().await.unwrap());
    // 4. A validation failure: connection 2 (idle, LIFO top) is dead, the get
    //    is served by connection 1 without an error.
    let top = pool.get().await.unwrap();
    let top_id = top.info().id;
    drop(top);
    knobs.invalidate(top_id);
    let served = pool.get().await.unwrap();
    assert_ne!(served.info().id, top_id);
    // 5. A broken return.
    let mut served = served;
    served.broken = true;
    drop(served);
    // 6. A waiter that times out, and a try_get that finds nothing.
    let x = pool.get().await.unwrap();
    let y = pool.get().await.unwrap();
    let z = pool.get().await.unwrap(); // overflow
    assert!(pool.get_timeout(Duration::from_millis(5)).await.is_err());
    assert!(pool.try_get().await.is_err());
    // 7. A failed connect reaches a caller.
    drop(z); // overflow returned, closed
    knobs.set_fail_all(true);
    let mut y = y;
    y.broken = true;
    drop(y); // frees a regular slot
    assert!(pool.get().await.is_err());
    knobs.set_fail_all(false);
    drop(x);
    settle().await;

    let s = pool.stats();
    let c = s.counters;
    let got = [
        ("gets", c.gets, 13),
        ("hits", c.hits, 4),
        ("misses", c.misses, 6),
        ("waited", c.waited, 8),
        ("checkouts", c.checkouts, 11),
        ("reused", c.reused, 5),
        ("checkout_rejections", c.checkout_rejections, 1),
        ("timeouts", c.timeouts, 1),
        ("connect_failures", c.connect_failures, 1),
        ("rejected_closed", c.rejected_closed, 0),
        ("none_idle", c.none_idle, 1),
        ("cancelled", c.cancelled, 0),
        ("created", c.created, 6),
        ("overflow_created", c.overflow_created, 2),
        ("create_errors", c.create_errors, 1),
        ("retries", c.retries, 0),
        ("validation_failures", c.validation_failures, 1),
        ("keepalives", c.keepalives, 0),
        ("detached", c.detached, 0),
        ("leaks", c.leaks, 0),
        ("closed.broken", c.closed.broken, 2),
        ("closed.failed_validation", c.closed.failed_validation, 1),
        ("closed.overflow_returned", c.closed.overflow_returned, 2),
        ("closed.total", c.closed.total(), 5),
    ];
    for (name, value, want) in got {
        assert_eq!(value, want, "counter {name}");
    }
    let g = s.gauges;
    assert_eq!(
        (g.size, g.idle, g.in_use, g.waiting, g.pending, g.overflow),
        (1, 1, 0, 0, 0, 0)
    );
    assert_eq!((g.max_size, g.min_idle, g.max_overflow), (2, 0, 1));
    assert_eq!(knobs.validations(), 11);
    check_accounting(&pool);

    // Histograms: 11 checkouts recorded; 10 holds; 6 creates.
    assert_eq!(s.acquire.count, 11);
    assert_eq!(s.hold.count, 10);
    assert_eq!(s.create.count, 6);
    assert_eq!(s.hold.max, Duration::from_millis(30));
    assert_eq!(s.derived.hit_ratio, Some(0.4));
    assert_eq!(s.derived.reuse_ratio, Some(5.0 / 6.0));
}
