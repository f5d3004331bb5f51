//! A connection killed on the server is detected and replaced, so the next
//! caller never sees the dead one.
//!
//! Two signals catch it: validation before checkout (`COM_PING`, here with
//! `Validation::Always`) for a connection killed while idle in the pool, and
//! `has_broken` (the driver marks a connection disconnected when I/O on it
//! fails) for one killed while checked out.

mod common;

use tidepool::Validation;
use tidepool_mysql::mysql_async::prelude::Queryable;
use tidepool_mysql::{MySqlManager, MySqlPool};

fn pool(addr: &str, validation: Validation) -> MySqlPool {
    tidepool::Pool::builder(MySqlManager::new(common::config(addr)).unwrap())
        .max_size(2)
        .validation(validation)
        .build()
        .unwrap()
}

/// Kills server session `id` from a connection outside the pool and waits
/// until it is gone.
async fn kill(pool: &MySqlPool, id: u32) {
    let mut killer = pool.connect_direct().await.expect("a direct connection");
    killer.query_drop(format!("KILL {id}")).await.expect("KILL");
    assert!(
        common::session_gone(pool, id).await,
        "session {id} survived KILL"
    );
}

#[tokio::test]
async fn killed_while_idle_is_caught_by_validation() {
    let Some(addr) = tidepool_testkit::service("MariaDB", "TIDEPOOL_MYSQL_ADDR", "127.0.0.1:3306")
    else {
        return;
    };
    let pool = pool(&addr, Validation::Always);
    let mut conn = pool.get().await.unwrap();
    let first = common::session_id(&mut conn).await;
    drop(conn);
    common::settled(&pool).await;
    assert_eq!(pool.gauges().idle, 1);

    kill(&pool, first).await;

    // The next caller gets a working connection without seeing an error.
    let mut conn = pool.get().await.expect("a replacement connection");
    let second = common::session_id(&mut conn).await;
    assert_ne!(first, second);
    let c = pool.counters();
    assert_eq!(c.closed.failed_validation, 1, "{c:?}");
    assert_eq!(c.created, 2, "{c:?}");
}

#[tokio::test]
async fn killed_while_held_is_closed_on_return() {
    let Some(addr) = tidepool_testkit::service("MariaDB", "TIDEPOOL_MYSQL_ADDR", "127.0.0.1:3306")
    else {
        return;
    };
    // No validation at all: only `has_broken` can keep the dead connection
    // out of the pool.
    let pool = pool(&addr, Validation::Never);
    let mut conn = pool.get().await.unwrap();
    let first = common::session_id(&mut conn).await;

    kill(&pool, first).await;
    assert!(conn.query_drop("SELECT 1").await.is_err());
    drop(conn);
    assert_eq!(pool.counters().closed.broken, 1);

    let mut conn = pool.get().await.expect("a replacement connection");
    let second = common::session_id(&mut conn).await;
    assert_ne!(first, second);
    assert_eq!(pool.counters().created, 2);
}
