//! Helpers shared by the MySQL behaviour tests.
#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use tidepool::Pool;
use tidepool_mysql::mysql_async::prelude::Queryable;
use tidepool_mysql::{MySqlConfig, MySqlManager, MySqlPool, MySqlPooled};

/// The server's id for the session behind `conn` (`CONNECTION_ID()`).
pub async fn session_id(conn: &mut MySqlPooled<'_>) -> u32 {
    conn.query_first("SELECT CONNECTION_ID()")
        .await
        .expect("SELECT CONNECTION_ID()")
        .expect("a row")
}

/// Settings for the local server at `addr` (`host:port`): user root, no
/// password, database `test`.
pub fn config(addr: &str) -> MySqlConfig {
    MySqlConfig::from_url(&format!("mysql://root@{addr}/test")).expect("a valid URL")
}

/// A pool of at most `max_size` connections with the default settings.
pub fn pool(addr: &str, max_size: usize) -> MySqlPool {
    pool_with(config(addr), max_size)
}

/// A pool of at most `max_size` connections made with `cfg`.
pub fn pool_with(cfg: MySqlConfig, max_size: usize) -> MySqlPool {
    Pool::builder(MySqlManager::new(cfg).expect("a valid config"))
        .max_size(max_size)
        .build()
        .expect("a valid pool")
}

/// A table name no other test (or run) uses.
pub fn table(prefix: &str) -> String {
    format!("tp_{prefix}_{:016x}", fastrand::u64(..))
}

/// Creates `name (id INT PRIMARY KEY, note VARCHAR(64))`.
pub async fn create_table(pool: &MySqlPool, name: &str) {
    let mut conn = pool.get().await.expect("a connection");
    conn.query_drop(format!(
        "CREATE TABLE {name} (id INT PRIMARY KEY, note VARCHAR(64) NOT NULL) ENGINE=InnoDB"
    ))
    .await
    .expect("create table");
}

/// Drops the table.
pub async fn drop_table(pool: &MySqlPool, name: &str) {
    let mut conn = pool.get().await.expect("a connection");
    conn.query_drop(format!("DROP TABLE IF EXISTS {name}"))
        .await
        .expect("drop table");
}

/// Rows in the table, as seen by a fresh statement on a pooled connection.
pub async fn count(pool: &MySqlPool, name: &str) -> i64 {
    let mut conn = pool.get().await.expect("a connection");
    conn.query_first(format!("SELECT COUNT(*) FROM {name}"))
        .await
        .expect("count")
        .expect("one row")
}

/// Waits (up to 10 s) until server session `id` has gone from the process
/// list; returns whether it did.
pub async fn session_gone(pool: &MySqlPool, id: u32) -> bool {
    let mut conn = pool.connect_direct().await.expect("a direct connection");
    for _ in 0..200 {
        let n: Option<i64> = conn
            .exec_first(
                "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = ?",
                (id,),
            )
            .await
            .expect("processlist");
        if n == Some(0) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// Waits (up to 10 s) until every connection of `pool` is idle, so that
/// background resets have finished.
pub async fn settled(pool: &MySqlPool) {
    for _ in 0..1000 {
        let g = pool.gauges();
        if g.in_use == 0 && g.checking == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("connections still in use: {:?}", pool.gauges());
}

/// Asserts that the row with `id` is absent and that its key can be written:
/// nothing committed it and no open transaction still locks it.
pub async fn assert_rolled_back(pool: &MySqlPool, name: &str, id: i32) {
    let mut conn = pool.connect_direct().await.expect("a direct connection");
    let n: Option<i64> = conn
        .exec_first(format!("SELECT COUNT(*) FROM {name} WHERE id = ?"), (id,))
        .await
        .expect("count");
    assert_eq!(n, Some(0), "row {id} of {name} is visible");
    conn.query_drop("SET SESSION innodb_lock_wait_timeout = 5")
        .await
        .expect("set lock wait timeout");
    conn.exec_drop(
        format!("INSERT INTO {name} (id, note) VALUES (?, 'after')"),
        (id,),
    )
    .await
    .expect("the key is no longer locked by the abandoned transaction");
}
