//! Runs queries through a pool of PostgreSQL connections: 32 tasks share 4
//! connections, one of them runs a transaction, then the pool prints its
//! statistics.
//!
//! Run with `cargo run -p tidepool-postgres --example postgres`; the URL
//! defaults to `postgres://postgres@127.0.0.1:5432/test` and can be set with
//! `TIDEPOOL_PG_URL`.
#![allow(clippy::print_stdout)]

use std::time::Duration;

use tidepool_postgres::{PgManager, RecyclePolicy, tokio_postgres, transaction};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("TIDEPOOL_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let pool = PgManager::from_url(&url)?
        .recycle_policy(RecyclePolicy::Clean)
        .pool_builder()
        .max_size(4)
        .acquire_timeout(Duration::from_secs(5))
        .build()?;

    let mut tasks = Vec::new();
    for i in 0..32_i32 {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            let conn = pool.get().await?;
            let stmt = conn.prepare_cached("SELECT $1::int * $1::int").await?;
            let square: i32 = conn.query_one(&stmt, &[&i]).await?.get(0);
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(square)
        }));
    }
    let mut sum = 0;
    for task in tasks {
        sum += task.await?.map_err(|e| e.to_string())?;
    }
    println!("sum of squares 0..32 = {sum}");

    let mut conn = pool.get().await?;
    let total: i64 = transaction(&mut conn, async |c| {
        c.batch_execute(
            "CREATE TEMP TABLE example_orders (total bigint); \
             INSERT INTO example_orders VALUES (10), (32)",
        )
        .await?;
        let row = c
            .query_one("SELECT sum(total)::bigint FROM example_orders", &[])
            .await?;
        Ok::<_, tokio_postgres::Error>(row.get(0))
    })
    .await?;
    drop(conn); // `Clean` drops the temporary table before the next user
    println!("transaction committed; orders total {total}");

    let stats = pool.stats();
    println!(
        "gets {}, connections created {}, reused {}, idle {}",
        stats.counters.gets, stats.counters.created, stats.counters.reused, stats.gauges.idle
    );
    Ok(())
}
