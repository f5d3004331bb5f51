//! Helpers shared by the SQLite behaviour tests.
#![allow(dead_code, unreachable_pub)]

use std::path::Path;

use tidepool::Pool;
use tidepool_sqlite::{SqliteConfig, SqliteManager, SqlitePool};

/// A pool of at most `max_size` connections to `dir/test.db`, default
/// pragmas.
pub fn file_pool(dir: &Path, max_size: usize) -> SqlitePool {
    pool(SqliteConfig::file(dir.join("test.db")), max_size)
}

/// A pool of at most `max_size` connections made with `cfg`.
pub fn pool(cfg: SqliteConfig, max_size: usize) -> SqlitePool {
    Pool::builder(SqliteManager::new(cfg).expect("a valid config"))
        .max_size(max_size)
        .build()
        .expect("a valid pool")
}

/// A name no other test uses.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}_{:016x}", fastrand::u64(..))
}

/// Runs `sql` on a pooled connection.
pub async fn exec(pool: &SqlitePool, sql: &str) {
    let sql = sql.to_owned();
    let conn = pool.get().await.expect("a connection");
    conn.interact(move |c| c.execute_batch(&sql))
        .await
        .expect("interact")
        .expect("statement");
}

/// Rows in `table`, read inside an immediate transaction: it waits for any
/// transaction still writing to end, so what it sees is final.
pub async fn settled_count(pool: &SqlitePool, table: &str) -> i64 {
    let sql = format!("SELECT COUNT(*) FROM {table}");
    let mut conn = pool.get().await.expect("a connection");
    tidepool_sqlite::transaction(&mut conn, move |tx| {
        Ok::<_, tidepool_sqlite::SqliteError>(tx.query_row(&sql, [], |r| r.get(0))?)
    })
    .await
    .expect("count")
}
