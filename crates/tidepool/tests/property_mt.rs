//! Random sequences of operations, including faults and panicking hooks,
//! run against the pool on a multi-thread runtime, in real time, with
//! spawned callers racing each other: the pool's invariants hold in every
//! snapshot, and once the callers are done every connection and every unit
//! of capacity is back and every get is accounted for.
mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{Fake, Knobs, pool_with, quiet};
use proptest::prelude::*;
use tidepool::{Pool, Pooled, Validation};

#[derive(Debug, Clone)]
enum Op {
    Get,
    TryGet,
    Return(usize),
    Detach(usize),
    BrokenReturn(usize),
    /// Spawns a get and drops it after this many microseconds.
    DropPendingGet(u64),
    /// Spawns a caller that holds its connection this many milliseconds.
    SpawnCaller(u64),
    FailConnects(bool),
    FailValidation(bool),
    Resets(bool),
    PanicIn(Hook, bool),
    Pause,
    Resume,
    Resize(usize),
    Evict,
    Sleep(u64),
    Close,
}

#[derive(Debug, Clone, Copy)]
enum Hook {
    Connect,
    HasBroken,
    Reset,
}

fn op() -> impl Strategy<Value = Op> {
    let hook = prop_oneof![
        Just(Hook::Connect),
        Just(Hook::HasBroken),
        Just(Hook::Reset)
    ];
    prop_oneof![
        6 => Just(Op::Get),
        2 => Just(Op::TryGet),
        6 => any::<usize>().prop_map(Op::Return),
        1 => any::<usize>().prop_map(Op::Detach),
        1 => any::<usize>().prop_map(Op::BrokenReturn),
        3 => (0u64..2_000).prop_map(Op::DropPendingGet),
        4 => (0u64..5).prop_map(Op::SpawnCaller),
        1 => any::<bool>().prop_map(Op::FailConnects),
        1 => any::<bool>().prop_map(Op::FailValidation),
        1 => any::<bool>().prop_map(Op::Resets),
        1 => (hook, any::<bool>()).prop_map(|(h, on)| Op::PanicIn(h, on)),
        1 => Just(Op::Pause),
        2 => Just(Op::Resume),
        1 => (1usize..5).prop_map(Op::Resize),
        1 => Just(Op::Evict),
        2 => (0u64..3).prop_map(Op::Sleep),
        // Rare: most sequences run on an open pool.
        1 => Just(Op::Close).prop_filter("rare", |_| fastrand::u8(0..8) == 0),
    ]
}

/// A get in a task of its own, as a service's request would run it: a hook
/// that panics on the get path (`has_broken` before checkout) ends that task,
/// not the test.
async fn get_in_task(pool: &Pool<Fake>, try_only: bool) -> Option<Pooled<'static, Fake>> {
    let pool = pool.clone();
    let task = tokio::spawn(async move {
        if try_only {
            pool.try_get().await.ok().map(Pooled::into_owned)
        } else {
            pool.get_timeout(Duration::from_millis(5))
                .await
                .ok()
                .map(Pooled::into_owned)
        }
    });
    match task.await {
        Ok(conn) => conn,
        Err(e) => {
            assert!(e.is_panic(), "{e}");
            None
        }
    }
}

fn take<'p>(held: &mut Vec<Pooled<'p, Fake>>, i: usize) -> Option<Pooled<'p, Fake>> {
    (!held.is_empty()).then(|| held.swap_remove(i % held.len()))
}

fn panic_flag(knobs: &Knobs, hook: Hook) -> &std::sync::atomic::AtomicBool {
    match hook {
        Hook::Connect => &knobs.panic_connect,
        Hook::HasBroken => &knobs.panic_has_broken,
        Hook::Reset => &knobs.panic_reset,
    }
}

/// What every snapshot must satisfy, whatever runs concurrently.
fn check_snapshot(pool: &Pool<Fake>, peak_max: usize) {
    let g = pool.gauges();
    assert_eq!(g.idle + g.in_use + g.checking + g.closing, g.size, "{g:?}");
    assert!(
        g.size <= peak_max + g.max_overflow,
        "{g:?} (peak max {peak_max})"
    );
    assert!(g.overflow <= g.max_overflow, "{g:?}");
}

async fn run(ops: Vec<Op>) {
    let mut cfg = quiet(3);
    cfg.max_overflow = 1;
    cfg.min_idle = 1;
    cfg.max_lifetime = Some(Duration::from_millis(300));
    cfg.idle_timeout = Some(Duration::from_millis(200));
    cfg.keepalive_interval = Some(Duration::from_millis(50));
    cfg.validation = Validation::IfIdle;
    cfg.validation_window = Duration::from_millis(2);
    cfg.validation_timeout = Duration::from_millis(50);
    cfg.max_retries = 1;
    cfg.retry_backoff = Duration::from_millis(2);
    cfg.retry_backoff_max = Duration::from_millis(5);
    cfg.maintenance_interval = Duration::from_millis(20);
    let fake = Fake::new();
    let knobs = fake.knobs();
    let pool: Pool<Fake> = pool_with(fake, cfg);
    let mut held: Vec<Pooled<'static, Fake>> = Vec::new();
    let mut tasks = Vec::new();
    let mut peak_max = 3;
    for op in ops {
        match op {
            Op::Get => held.extend(get_in_task(&pool, false).await),
            Op::TryGet => held.extend(get_in_task(&pool, true).await),
            Op::Return(i) => drop(take(&mut held, i)),
            Op::Detach(i) => drop(take(&mut held, i).map(Pooled::detach)),
            Op::BrokenReturn(i) => {
                if let Some(mut c) = take(&mut held, i) {
                    c.mark_broken();
                }
            }
            Op::DropPendingGet(us) => {
                let pool = pool.clone();
                tasks.push(tokio::spawn(async move {
                    let _ = tokio::time::timeout(Duration::from_micros(us), pool.get()).await;
                }));
            }
            Op::SpawnCaller(hold_ms) => {
                let pool = pool.clone();
                tasks.push(tokio::spawn(async move {
                    if let Ok(c) = pool.get_timeout(Duration::from_millis(20)).await {
                        tokio::time::sleep(Duration::from_millis(hold_ms)).await;
                        drop(c);
                    }
                }));
            }
            Op::FailConnects(on) => knobs.set_fail_all(on),
            Op::FailValidation(on) => knobs.invalidate_all.store(on, Ordering::SeqCst),
            Op::Resets(on) => knobs.reset_on_return.store(on, Ordering::SeqCst),
            Op::PanicIn(hook, on) => knobs.set(panic_flag(&knobs, hook), on),
            Op::Pause => pool.pause(),
            Op::Resume => pool.resume(),
            Op::Resize(n) => {
                pool.resize(n).unwrap();
                peak_max = peak_max.max(n);
            }
            Op::Evict => pool.evict(),
            Op::Sleep(ms) => tokio::time::sleep(Duration::from_millis(ms)).await,
            Op::Close => pool.close(),
        }
        check_snapshot(&pool, peak_max);
        let g = pool.gauges();
        assert!(g.in_use >= held.len(), "{g:?} vs {} held", held.len());
        if g.in_use == 0 {
            peak_max = g.max_size;
        }
    }
    drop(held);
    for t in tasks {
        if let Err(e) = t.await {
            assert!(e.is_panic(), "{e}");
        }
    }
    // The faults clear; background work (resets, pings, retries) settles.
    knobs.set_fail_all(false);
    knobs.invalidate_all.store(false, Ordering::SeqCst);
    for hook in [Hook::Connect, Hook::HasBroken, Hook::Reset] {
        knobs.set(panic_flag(&knobs, hook), false);
    }
    pool.resume();
    tokio::time::sleep(Duration::from_millis(150)).await;
    let closed = pool.is_closed();
    if !closed {
        let conn = pool.get_timeout(Duration::from_secs(2)).await;
        assert!(
            conn.is_ok(),
            "the pool serves once the faults clear: {:?}",
            conn.err()
        );
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let g = pool.gauges();
    assert_eq!((g.in_use, g.waiting), (0, 0), "{g:?}");
    assert_eq!(g.idle + g.checking, g.size, "{g:?}");
    common::check_accounting(&pool);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn invariants_hold_on_a_multi_thread_runtime(ops in prop::collection::vec(op(), 1..60)) {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(run(ops));
    }
}

/// The same operations, and every parked or waiting connection, on a pool
/// hammered by many threads at once.
#[test]
fn many_threads_racing_lose_nothing() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let pool = pool_with(Fake::new(), quiet(3));
        let pool = Arc::new(pool);
        let mut tasks = Vec::new();
        for t in 0..16 {
            let pool = Arc::clone(&pool);
            tasks.push(tokio::spawn(async move {
                for i in 0..500 {
                    match (t + i) % 7 {
                        0 => {
                            let _ =
                                tokio::time::timeout(Duration::from_micros(50), pool.get()).await;
                        }
                        1 => drop(pool.try_get().await),
                        _ => {
                            if let Ok(c) = pool.get().await {
                                tokio::task::yield_now().await;
                                drop(c);
                            }
                        }
                    }
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let g = pool.gauges();
        assert_eq!((g.in_use, g.waiting, g.pending), (0, 0, 0), "{g:?}");
        assert_eq!(g.idle, g.size, "{g:?}");
        common::check_accounting(&pool);
    });
}
