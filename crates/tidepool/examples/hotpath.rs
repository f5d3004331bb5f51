//! Times the uncontended hot path: one task, get + return, in a loop.
//!
//! Run with `cargo run --release -p tidepool --example hotpath`; `HOTPATH_N`
//! sets the gets per round (2 000 000 by default; fewer under callgrind).
//! Many tasks at once, as in a cell of the contention matrix, are run by
//! tidepool-bench's `cell` example.
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

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let n: u32 = std::env::var("HOTPATH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000_000);
    rt.block_on(async {
        let pool = Pool::builder(Ints).max_size(4).build().expect("pool");
        drop(pool.get().await.expect("warm"));
        for round in 0..3 {
            let start = Instant::now();
            for _ in 0..n {
                let mut c = pool.get().await.expect("get");
                *c += 1;
            }
            let ns = start.elapsed().as_nanos() as f64 / f64::from(n);
            println!("round {round}: {ns:.1} ns per get + return");
        }
    });
}
