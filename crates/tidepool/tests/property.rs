//! Random sequences of operations keep the pool's invariants after every step.
mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::{Fake, check_accounting, check_invariants, pool_with, quiet, settle};
use proptest::prelude::*;
use tidepool::{Pool, Pooled, Validation};

#[derive(Debug, Clone)]
enum Op {
    Get,
    Return(usize),
    Detach(usize),
    BrokenReturn(usize),
    FailNextConnects(bool),
    Advance(u64),
    Resize(usize),
    Evict,
    SpawnWaiter(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => Just(Op::Get),
        4 => any::<usize>().prop_map(Op::Return),
        1 => any::<usize>().prop_map(Op::Detach),
        1 => any::<usize>().prop_map(Op::BrokenReturn),
        1 => any::<bool>().prop_map(Op::FailNextConnects),
        2 => (0u64..2_000).prop_map(Op::Advance),
        1 => (1usize..6).prop_map(Op::Resize),
        1 => Just(Op::Evict),
        3 => (1u64..100).prop_map(Op::SpawnWaiter),
    ]
}

fn take<'p>(held: &mut Vec<Pooled<'p, Fake>>, i: usize) -> Option<Pooled<'p, Fake>> {
    (!held.is_empty()).then(|| held.swap_remove(i % held.len()))
}

async fn run(ops: Vec<Op>) {
    let mut cfg = quiet(3);
    cfg.max_overflow = 1;
    cfg.min_idle = 1;
    cfg.max_lifetime = Some(Duration::from_secs(3));
    cfg.idle_timeout = Some(Duration::from_secs(2));
    cfg.keepalive_interval = Some(Duration::from_secs(1));
    cfg.validation = Validation::IfIdle;
    cfg.max_retries = 1;
    cfg.retry_backoff = Duration::from_millis(10);
    cfg.maintenance_interval = Duration::from_millis(200);
    let fake = Fake::new().slow(Duration::from_millis(1));
    let knobs = fake.knobs();
    let pool: Pool<Fake> = pool_with(fake, cfg);
    let mut held: Vec<Pooled<'_, Fake>> = Vec::new();
    let mut tasks = Vec::new();
    let mut peak_max = 3;
    for op in ops {
        match op {
            Op::Get => {
                if let Ok(c) = pool.get_timeout(Duration::from_millis(20)).await {
                    held.push(c);
                }
            }
            Op::Return(i) => drop(take(&mut held, i)),
            Op::Detach(i) => drop(take(&mut held, i).map(Pooled::detach)),
            Op::BrokenReturn(i) => {
                if let Some(mut c) = take(&mut held, i) {
                    c.broken = true;
                }
            }
            Op::FailNextConnects(on) => knobs.set_fail_all(on),
            Op::Advance(ms) => tokio::time::sleep(Duration::from_millis(ms)).await,
            Op::Resize(n) => {
                pool.resize(n).unwrap();
                peak_max = peak_max.max(n);
            }
            Op::Evict => pool.evict(),
            Op::SpawnWaiter(hold_ms) => {
                let pool = pool.clone();
                tasks.push(tokio::spawn(async move {
                    if let Ok(c) = pool.get_timeout(Duration::from_millis(50)).await {
                        tokio::time::sleep(Duration::from_millis(hold_ms)).await;
                        drop(c);
                    }
                }));
            }
        }
        settle().await;
        check_invariants_with_shrink(&pool, peak_max);
        let ids: HashSet<u64> = held.iter().map(|c| c.info().id).collect();
        assert_eq!(ids.len(), held.len(), "no connection is held by two guards");
        let g = pool.gauges();
        assert!(g.in_use >= held.len(), "{g:?} vs {} held", held.len());
        let c = pool.counters();
        assert!(
            c.gets
                >= c.served()
                    + c.timeouts
                    + c.connect_failures
                    + c.rejected_closed
                    + c.none_idle
                    + c.cancelled,
            "{c:?}"
        );
        if g.in_use == 0 {
            peak_max = g.max_size;
        }
    }
    drop(held);
    for t in tasks {
        t.await.unwrap();
    }
    knobs.set_fail_all(false);
    tokio::time::sleep(Duration::from_secs(1)).await;
    check_invariants(&pool);
    check_accounting(&pool);
    let g = pool.gauges();
    assert_eq!((g.in_use, g.waiting), (0, 0), "{g:?}");
}

/// `check_invariants`, except that after a shrink, busy connections may
/// exceed the new `max_size` until they come back.
fn check_invariants_with_shrink(pool: &Pool<Fake>, peak_max: usize) {
    let g = pool.gauges();
    assert_eq!(
        g.idle + g.in_use + g.checking + g.closing,
        g.size,
        "idle + in use + checking = size: {g:?}"
    );
    assert!(
        g.size <= peak_max + g.max_overflow,
        "size within max + overflow: {g:?}"
    );
    assert!(g.idle <= g.max_size + g.max_overflow, "{g:?}");
    assert!(
        g.waiting == 0 || g.idle == 0,
        "nobody waits while a connection is idle: {g:?}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn invariants_hold_after_every_step(ops in prop::collection::vec(op(), 1..80)) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .unwrap();
        rt.block_on(run(ops));
    }
}
