//! Runs commands through a pool of Redis connections: 32 tasks share 4
//! connections to count to 3200, then the pool prints its statistics.
//!
//! Run with `cargo run -p tidepool-redis --example redis`; the URL defaults
//! to `redis://127.0.0.1:6379` and can be set with `TIDEPOOL_REDIS_URL`.
#![allow(clippy::print_stdout)]

use std::time::Duration;

use tidepool_redis::RedisManager;
use tidepool_redis::redis::AsyncCommands;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url =
        std::env::var("TIDEPOOL_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let pool = RedisManager::new(&url)?
        .pool_builder()
        .max_size(4)
        .acquire_timeout(Duration::from_secs(5))
        .build()?;
    let key = format!("tidepool:example:{}", std::process::id());

    let mut tasks = Vec::new();
    for _ in 0..32 {
        let pool = pool.clone();
        let key = key.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..100 {
                let mut conn = pool.get().await?;
                let _: i64 = conn.incr(&key, 1).await?;
            }
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
        }));
    }
    for task in tasks {
        task.await?.map_err(|e| e.to_string())?;
    }

    let mut conn = pool.get().await?;
    let total: i64 = conn.get(&key).await?;
    let () = conn.del(&key).await?;
    drop(conn);
    println!("counted to {total}");

    let stats = pool.stats();
    println!(
        "gets {}, connections created {}, reused {}, idle {}",
        stats.counters.gets, stats.counters.created, stats.counters.reused, stats.gauges.idle
    );
    Ok(())
}
