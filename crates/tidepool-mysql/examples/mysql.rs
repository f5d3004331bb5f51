//! Runs a few queries and a transaction through a small MySQL pool, then
//! prints the pool's statistics.
//!
//! Needs a server: `TIDEPOOL_MYSQL_URL` (default
//! `mysql://root@127.0.0.1:3306/test`).
//!
//!     cargo run -p tidepool-mysql --example mysql
#![allow(clippy::print_stdout)]

use std::error::Error;

use tidepool::Pool;
use tidepool_mysql::mysql_async::{self, prelude::Queryable};
use tidepool_mysql::{MySqlConfig, MySqlManager, MySqlPool};

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let url = std::env::var("TIDEPOOL_MYSQL_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".to_owned());
    let config = MySqlConfig::from_url(&url)?;
    println!("connecting with {config:?}");
    let pool: MySqlPool = Pool::builder(MySqlManager::new(config)?)
        .name("mysql-example")
        .max_size(4)
        .build()?;

    let table = format!("tidepool_example_{}", std::process::id());
    {
        let mut conn = pool.get().await?;
        conn.query_drop(format!(
            "CREATE TABLE {table} (id INT AUTO_INCREMENT PRIMARY KEY, note VARCHAR(64) NOT NULL)"
        ))
        .await?;
    }

    // Eight tasks share four connections.
    let mut tasks = Vec::new();
    for task in 0..8 {
        let pool = pool.clone();
        let table = table.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = pool.get().await?;
            tidepool_mysql::transaction(&mut conn, async |tx| {
                tx.exec_drop(
                    format!("INSERT INTO {table} (note) VALUES (?)"),
                    (format!("task {task}"),),
                )
                .await?;
                Ok::<_, mysql_async::Error>(())
            })
            .await?;
            Ok::<_, Box<dyn Error + Send + Sync>>(())
        }));
    }
    for task in tasks {
        task.await?.map_err(|e| e as Box<dyn Error>)?;
    }

    let mut conn = pool.get().await?;
    let rows: Option<i64> = conn
        .query_first(format!("SELECT COUNT(*) FROM {table}"))
        .await?;
    println!("{table} holds {} rows", rows.unwrap_or(0));
    conn.query_drop(format!("DROP TABLE {table}")).await?;
    drop(conn);

    let stats = pool.stats();
    println!(
        "gets {}, connections created {}, reused {}",
        stats.counters.gets, stats.counters.created, stats.counters.reused
    );
    Ok(())
}
