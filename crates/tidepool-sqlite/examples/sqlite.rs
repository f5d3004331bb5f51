//! A file database in a temporary directory: one writer task and four reader
//! tasks share a pool, then the pool prints its statistics.
//!
//!     cargo run -p tidepool-sqlite --example sqlite
#![allow(clippy::print_stdout)]

use std::error::Error;

use tidepool::Pool;
use tidepool_sqlite::{SqliteConfig, SqliteError, SqliteManager, SqlitePool, transaction};

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("example.db");
    let pool: SqlitePool = Pool::builder(SqliteManager::new(SqliteConfig::file(&path))?)
        .name("sqlite-example")
        .max_size(5)
        .build()?;
    println!("database: {}", path.display());

    let conn = pool.get().await?;
    conn.interact(|c| {
        c.execute_batch("CREATE TABLE events (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
    })
    .await??;
    drop(conn);

    let writer = {
        let pool = pool.clone();
        tokio::spawn(async move {
            for batch in 0..20 {
                let mut conn = pool.get().await?;
                transaction(&mut conn, move |tx| {
                    let mut insert = tx.prepare_cached("INSERT INTO events (body) VALUES (?1)")?;
                    for i in 0..50 {
                        insert.execute([format!("batch {batch} event {i}")])?;
                    }
                    Ok::<_, SqliteError>(())
                })
                .await?;
            }
            Ok::<_, Box<dyn Error + Send + Sync>>(())
        })
    };
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let mut seen = 0_i64;
                for _ in 0..50 {
                    let conn = pool.get().await?;
                    seen = conn
                        .interact(|c| c.query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0)))
                        .await??;
                }
                Ok::<_, Box<dyn Error + Send + Sync>>(seen)
            })
        })
        .collect();

    writer.await?.map_err(|e| e as Box<dyn Error>)?;
    for reader in readers {
        let seen = reader.await?.map_err(|e| e as Box<dyn Error>)?;
        println!("a reader last saw {seen} rows");
    }
    let conn = pool.get().await?;
    let total: i64 = conn
        .interact(|c| c.query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0)))
        .await??;
    println!("{total} rows written");
    drop(conn);

    let c = pool.stats().counters;
    println!(
        "gets {}, connections created {}, reused {}",
        c.gets, c.created, c.reused
    );
    Ok(())
}
