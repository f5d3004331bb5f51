//! Runs one cell of the contention matrix, over and over, for a profiler
//! (`perf record`, `valgrind --tool=callgrind`) to watch.
//!
//! ```text
//! cargo run --release -p tidepool-bench --example cell -- qp 4 16 [iterations] [rounds]
//! ```
//! Arguments: the contenders' names as in the report (comma-separated: they
//! take turns iteration by iteration, as in the matrix; one name profiles
//! that contender alone), the pool size, the workers, iterations per round
//! (2000 by default) and rounds (5). Each round prints each contender's
//! median, minimum and maximum iteration time.
#![allow(clippy::print_stdout)]

use std::time::Duration;

use tidepool_bench::matrix::{self, CONTENDERS};

fn arg(args: &[String], i: usize, what: &str, default: usize) -> Result<usize, String> {
    args.get(i).map_or(Ok(default), |a| {
        a.parse().map_err(|_| {
            format!(
                "the {what} (argument {}) must be a whole number, not {a:?}",
                i + 1
            )
        })
    })
}

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let names = args.first().map_or("tidepool", String::as_str);
    let contenders = names
        .split(',')
        .map(|name| {
            CONTENDERS
                .into_iter()
                .find(|c| c.name() == name)
                .ok_or_else(|| {
                    let known: Vec<_> = CONTENDERS.iter().map(|c| c.name()).collect();
                    format!("unknown contender {name:?}; one of {known:?}")
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let pool_size = arg(&args, 1, "pool size", 4)?;
    let workers = arg(&args, 2, "worker count", 16)?;
    if pool_size == 0 || workers == 0 {
        return Err("the pool size and the worker count must be at least 1".into());
    }
    let iterations = arg(&args, 3, "iteration count", 2000)?.max(1);
    let rounds = arg(&args, 4, "round count", 5)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    for round in 0..rounds {
        for (contender, times) in
            matrix::measure_cell(&rt, &contenders, pool_size, workers, iterations)
        {
            let mut times = times?;
            times.sort();
            let us = |d: Duration| d.as_secs_f64() * 1e6;
            println!(
                "round {round}: {} size {pool_size} workers {workers}: median {:.1} µs (min {:.1}, max {:.1})",
                contender.name(),
                us(times[times.len() / 2]),
                us(times[0]),
                us(times[times.len() - 1]),
            );
        }
    }
    Ok(())
}
