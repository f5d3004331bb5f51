//! Shows a pool at work: 200 tasks share 8 simulated connections (connects
//! take 20 ms, queries 1–5 ms), then the pool's statistics, health and advice
//! are printed.
//!
//! Run with `cargo run --release -p tidepool --example demo`.
#![allow(clippy::print_stdout)]

use std::convert::Infallible;
use std::time::Duration;

use tidepool::{Manager, Pool};

/// A stand-in database: each connection counts the queries it ran.
struct SimulatedDb;

impl Manager for SimulatedDb {
    type Connection = u64;
    type Error = Infallible;

    async fn connect(&self) -> Result<u64, Infallible> {
        tokio::time::sleep(Duration::from_millis(20)).await;
        Ok(0)
    }

    async fn validate(&self, _conn: &mut u64) -> Result<(), Infallible> {
        tokio::time::sleep(Duration::from_micros(200)).await;
        Ok(())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let pool = Pool::builder(SimulatedDb)
        .name("demo")
        .max_size(8)
        .min_idle(2)
        .build()?;

    let mut tasks = Vec::new();
    for i in 0..200u64 {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = pool.get().await?;
            tokio::time::sleep(Duration::from_millis(1 + i % 5)).await;
            *conn += 1;
            Ok::<_, tidepool::PoolError<Infallible>>(())
        }));
    }
    for t in tasks {
        t.await??;
    }

    let s = pool.stats();
    let (g, c) = (&s.gauges, &s.counters);
    println!("pool `{}`", s.name);
    println!(
        "  connections: size {} (idle {}, in use {}), max {}",
        g.size, g.idle, g.in_use, g.max_size
    );
    println!(
        "  gets {}: hits {}, misses {}, waited {}, timeouts {}",
        c.gets, c.hits, c.misses, c.waited, c.timeouts
    );
    println!(
        "  created {}, reused {} (reuse ratio {:.1}), closed {}",
        c.created,
        c.reused,
        s.derived.reuse_ratio.unwrap_or(0.0),
        c.closed.total()
    );
    for (name, h) in [
        ("acquire", &s.acquire),
        ("hold", &s.hold),
        ("create", &s.create),
    ] {
        println!(
            "  {name:>7}: p50 {:>9.3?}  p95 {:>9.3?}  p99 {:>9.3?}  max {:>9.3?}",
            h.p50, h.p95, h.p99, h.max
        );
    }
    println!(
        "  arrival {:.0}/s, mean hold {:.2?}, mean in use {:.2}",
        s.derived.arrival_rate, s.derived.mean_hold, s.derived.mean_in_use
    );
    let health = pool.health();
    println!("health: {}", health.status.as_str());
    for r in &health.reasons {
        println!("  - {r}");
    }
    let advice = pool.advice();
    println!(
        "sizing: {:.2} connections needed, recommended max_size {} (configured {}): {:?}",
        advice.sizing.connections_needed,
        advice.sizing.recommended_max_size,
        advice.sizing.configured_max_size,
        advice.sizing.verdict
    );
    for r in &advice.recommendations {
        println!("  - {}", r.message);
    }
    Ok(())
}
