//! Runs one point of the scale suite's waiters curve, over and over, for a
//! profiler (`perf record`) to watch.
//!
//! ```text
//! cargo run --release -p tidepool-bench --example waiters -- tidepool 100000 [rounds]
//! ```
//! Arguments: the contender (tidepool, deadpool or bb8), the number of
//! waiters queued on a pool of one held connection, each with a deadline
//! drawn from 300–600 ms, and the rounds (3 by default). Each round prints
//! the drain time, the lateness of the timeouts and the CPU per waiter.
#![allow(clippy::print_stdout)]

use std::time::Duration;

use tidepool_bench::scale::{CONTENDERS, waiters};

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let name = args.first().map_or("tidepool", String::as_str);
    let contender = CONTENDERS
        .into_iter()
        .find(|c| c.name() == name)
        .ok_or_else(|| format!("unknown contender {name:?}; one of tidepool, deadpool, bb8"))?;
    let number = |i: usize, what: &str, default: usize| {
        args.get(i).map_or(Ok(default), |a| {
            a.parse::<usize>()
                .map_err(|_| format!("the {what} must be a whole number, not {a:?}"))
        })
    };
    let n = number(1, "number of waiters", 100_000)?.max(1);
    let rounds = number(2, "number of rounds", 3)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("the runtime did not start: {e}"))?;
    let mut rng = fastrand::Rng::new();
    for round in 1..=rounds {
        let deadlines: Vec<Duration> = (0..n)
            .map(|_| Duration::from_micros(rng.u64(300_000..600_000)))
            .collect();
        let f = waiters::measure(&rt, contender, &deadlines, 60.0)?;
        println!(
            "{name} {n} waiters, round {round}: formed in {:.1} ms, drained in {:.1} ms (ideal {:.1}), late p50 {:.2} ms p99 {:.2} ms max {:.2} ms ({:.1} % of its deadline), {:.2} µs CPU per waiter",
            f.formed_ms,
            f.drain_ms,
            f.ideal_ms,
            f.late_p50_ms,
            f.late_p99_ms,
            f.late_max_ms,
            f.late_max_share * 100.0,
            f.cpu_us_per_waiter.unwrap_or(f64::NAN)
        );
    }
    Ok(())
}
