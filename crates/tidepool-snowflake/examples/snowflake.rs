//! Pools Snowflake sessions: one statement through a pooled session, then
//! the pool's statistics.
//!
//! ```text
//! TIDEPOOL_SNOWFLAKE_ACCOUNT=xy12345.eu-west-1 TIDEPOOL_SNOWFLAKE_USER=APP \
//! TIDEPOOL_SNOWFLAKE_PRIVATE_KEY_PATH=key.p8 TIDEPOOL_SNOWFLAKE_WAREHOUSE=WH \
//!     cargo run -p tidepool-snowflake --example snowflake
//! ```
//!
//! `TIDEPOOL_SNOWFLAKE_PASSWORD` replaces the key; `TIDEPOOL_SNOWFLAKE_BASE_URL`
//! points at another endpoint (a fakesnow server:
//! `python -m fakesnow -s --port 8085`, then `http://127.0.0.1:8085`);
//! `TIDEPOOL_SNOWFLAKE_SQL` is the statement (default `SELECT CURRENT_VERSION()`).
#![allow(clippy::print_stdout)]

use tidepool_snowflake::{SnowflakeAuth, SnowflakeConfig, SnowflakeManager};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let var = |name: &str| std::env::var(format!("TIDEPOOL_SNOWFLAKE_{name}")).ok();
    let Some(account) = var("ACCOUNT") else {
        println!(
            "set TIDEPOOL_SNOWFLAKE_ACCOUNT (and USER, PASSWORD or PRIVATE_KEY_PATH) to run this"
        );
        return Ok(());
    };
    let auth = match var("PRIVATE_KEY_PATH") {
        Some(path) => SnowflakeAuth::KeyPair {
            private_key_pem: std::fs::read_to_string(path)?,
            passphrase: var("PRIVATE_KEY_PASSPHRASE"),
        },
        None => SnowflakeAuth::Password(var("PASSWORD").unwrap_or_default()),
    };
    let mut config = SnowflakeConfig::new(account, var("USER").unwrap_or_default(), auth);
    config.warehouse = var("WAREHOUSE");
    config.database = var("DATABASE");
    config.schema = var("SCHEMA");
    config.base_url = var("BASE_URL");
    println!("{config:?}");

    let pool = SnowflakeManager::new(config)?
        .pool_builder()
        .max_size(4)
        .build()?;
    let sql = var("SQL").unwrap_or_else(|| "SELECT CURRENT_VERSION()".to_owned());
    let conn = pool.get().await?;
    match conn.query(sql.clone()).await {
        Ok(cursor) => {
            for row in cursor.collect::<Vec<_>>().await? {
                println!("{:?}", row.values());
            }
        }
        Err(e) => println!("{sql}: {e}"),
    }
    drop(conn);
    println!("{:?}", pool.stats().counters);
    Ok(())
}
