//! Uncontended get + return latency of each pool, with criterion: one task on
//! a runtime worker thread, one warmed pool, nobody else. The runner's
//! `uncontended` suite measures the same loop; this bench adds criterion's
//! statistics and its comparison with the previous run.
//!
//! `cargo bench -p tidepool-bench --bench uncontended`

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use tidepool_bench::pools::{AsyncPool, Bb8, Deadpool, Mobc, Qp, Tidepool, r2d2_pool};
use tidepool_bench::uncontended::POOL_SIZE;
use tokio::runtime::Runtime;

/// Times `iters` get + drop on a task spawned on the runtime, so the loop
/// runs on a worker thread as application code does.
fn bench_async<P: AsyncPool>(c: &mut Criterion, rt: &Runtime) {
    let pool = rt.block_on(async {
        let pool = P::build(POOL_SIZE);
        pool.warm(POOL_SIZE).await;
        pool
    });
    c.bench_function(P::NAME, |b| {
        b.iter_custom(|iters| {
            let pool = pool.clone();
            rt.block_on(async move {
                tokio::spawn(async move {
                    let start = Instant::now();
                    for _ in 0..iters {
                        let mut conn = pool.acquire().await;
                        *conn = black_box(*conn + 1);
                    }
                    start.elapsed()
                })
                .await
                .expect("the measuring task panicked")
            })
        });
    });
    rt.block_on(async move { drop(pool) });
}

fn uncontended(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    bench_async::<Tidepool>(c, &rt);
    bench_async::<Deadpool>(c, &rt);
    bench_async::<Bb8>(c, &rt);
    bench_async::<Qp>(c, &rt);
    bench_async::<Mobc>(c, &rt);
    let pool = r2d2_pool(POOL_SIZE);
    c.bench_function("r2d2", |b| {
        b.iter(|| {
            let mut conn = pool.get().expect("r2d2 get");
            *conn = black_box(*conn + 1);
        });
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = uncontended
}
criterion_main!(benches);
