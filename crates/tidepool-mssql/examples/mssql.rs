//! Pools SQL Server connections: a query, a transaction, the reset between
//! users, and the pool's statistics.
//!
//! ```text
//! TIDEPOOL_MSSQL_URL="Server=tcp:127.0.0.1,1433;User Id=sa;Password=...;TrustServerCertificate=true" \
//!     cargo run -p tidepool-mssql --example mssql
//! ```
//!
//! Without `TIDEPOOL_MSSQL_URL` it starts Microsoft's mock TDS server
//! (`mssql-mock-tds`) in-process and runs against that.
#![allow(clippy::print_stdout)]

use mssql_mock_tds::MockTdsServer;
use tidepool_mssql::{Encrypt, MssqlConfig, MssqlManager, tiberius, transaction};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config = match std::env::var("TIDEPOOL_MSSQL_URL") {
        Ok(s) => MssqlConfig::from_ado_string(&s)?,
        Err(_) => {
            let server = MockTdsServer::new("127.0.0.1:0").await?;
            let addr = server.local_addr();
            tokio::spawn(server.run());
            println!("no TIDEPOOL_MSSQL_URL: using the mock TDS server at {addr}");
            MssqlConfig::builder()
                .host(addr.ip().to_string())
                .port(addr.port())
                .sql_login("sa", "any-password")
                .encrypt(Encrypt::NotSupported)
                // The mock keeps no session state (and knows none of the
                // reset's catalog queries): nothing to reset.
                .reset_on_return(false)
                .build()?
        }
    };
    println!("{config:?}");
    let pool = MssqlManager::new(config)
        .pool_builder()
        .max_size(4)
        .build()?;

    let mut conn = pool.get().await?;
    let row = conn.simple_query("SELECT 1").await?.into_row().await?;
    println!("SELECT 1 -> {:?}", row.and_then(|r| r.get::<i32, _>(0)));

    let one = transaction(&mut conn, async |tx| {
        let row = tx.simple_query("SELECT 1").await?.into_row().await?;
        Ok::<_, tiberius::error::Error>(row.and_then(|r| r.get::<i32, _>(0)))
    })
    .await?;
    println!("in a transaction -> {one:?}");
    drop(conn);

    println!("{:?}", pool.stats().counters);
    Ok(())
}
