//! Times the hot path: get + return in a loop, by one task or by many.
//!
//! Run with `cargo run --release -p tidepool --example hotpath`. Environment:
//! - `HOTPATH_N` sets the gets per round (2 000 000 by default; fewer under
//!   callgrind);
//! - `HOTPATH_WORKERS` (0 by default: one task, uncontended) spawns that many
//!   tasks per iteration instead, each doing 10 gets, as a cell of the
//!   benchmark suite's contention matrix does, until `HOTPATH_N` gets are done.
#![allow(clippy::print_stdout)]

use std::convert::Infallible;
use std::time::Instant;

use tidepool::{Manager, Pool};

struct Ints;

impl Manager for Ints {
    type Connection = i32;
    type Error = Infallible;
    async fn connect(&self) -> Result<i32, Infallible> {
        Ok(0)
    }
    async fn validate(&self, _: &mut i32) -> Result<(), Infallible> {
        Ok(())
    }
}

fn env(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let n = env("HOTPATH_N", 2_000_000);
    let workers = env("HOTPATH_WORKERS", 0);
    rt.block_on(async {
        let pool = Pool::builder(Ints).max_size(4).build().expect("pool");
        drop(pool.get().await.expect("warm"));
        for round in 0..3 {
            let start = Instant::now();
            if workers == 0 {
                for _ in 0..n {
                    let mut c = pool.get().await.expect("get");
                    *c += 1;
                }
            } else {
                for _ in 0..n / (workers * 10) {
                    let tasks: Vec<_> = (0..workers)
                        .map(|_| {
                            let pool = pool.clone();
                            tokio::spawn(async move {
                                for _ in 0..10 {
                                    let mut c = pool.get().await.expect("get");
                                    *c += 1;
                                }
                            })
                        })
                        .collect();
                    for task in tasks {
                        task.await.expect("task");
                    }
                }
            }
            let ns = start.elapsed().as_nanos() as f64 / f64::from(n);
            println!("round {round}: {ns:.1} ns per get + return");
        }
    });
}
