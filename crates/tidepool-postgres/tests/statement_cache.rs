//! `prepare_cached` prepares once per connection and stays within its bound.
//! What counts is the server: how many times the session holds a statement.

use tidepool_postgres::{PgConnection, PgManager};

/// How many prepared statements the session holds for exactly `sql`.
async fn on_server(conn: &PgConnection, sql: &str) -> i64 {
    conn.query_one(
        "SELECT count(*) FROM pg_prepared_statements WHERE statement = $1",
        &[&sql],
    )
    .await
    .unwrap()
    .get(0)
}

#[tokio::test]
async fn a_statement_is_prepared_once_per_connection() {
    let Some(addr) = tidepool_testkit::service("PostgreSQL", "TIDEPOOL_PG_ADDR", "127.0.0.1:5432")
    else {
        return;
    };
    let pool = PgManager::from_url(&format!("postgres://postgres@{addr}/test"))
        .unwrap()
        .pool_builder()
        .max_size(1)
        .build()
        .unwrap();
    let sql = "SELECT $1::int";

    for i in 0..5_i32 {
        let conn = pool.get().await.unwrap();
        let stmt = conn.prepare_cached(sql).await.unwrap();
        let row = conn.query_one(&stmt, &[&i]).await.unwrap();
        assert_eq!(row.get::<_, i32>(0), i);
    }
    let conn = pool.get().await.unwrap();
    assert_eq!(on_server(&conn, sql).await, 1);
    assert_eq!(conn.cached_statements(), 1);
    assert_eq!(pool.counters().created, 1);
}

#[tokio::test]
async fn the_cache_evicts_the_least_recently_used() {
    let Some(addr) = tidepool_testkit::service("PostgreSQL", "TIDEPOOL_PG_ADDR", "127.0.0.1:5432")
    else {
        return;
    };
    let pool = PgManager::from_url(&format!("postgres://postgres@{addr}/test"))
        .unwrap()
        .statement_cache_capacity(2)
        .pool_builder()
        .max_size(1)
        .build()
        .unwrap();
    let conn = pool.get().await.unwrap();
    let (one, two, three) = ("SELECT 1", "SELECT 2", "SELECT 3");

    conn.prepare_cached(one).await.unwrap();
    conn.prepare_cached(two).await.unwrap();
    // Using `one` again makes `two` the least recently used.
    conn.prepare_cached(one).await.unwrap();
    conn.prepare_cached(three).await.unwrap();
    assert_eq!(conn.cached_statements(), 2);

    assert_eq!(on_server(&conn, one).await, 1);
    assert_eq!(on_server(&conn, two).await, 0, "evicted and closed");
    assert_eq!(on_server(&conn, three).await, 1);

    conn.clear_statement_cache();
    assert_eq!(conn.cached_statements(), 0);
    assert_eq!(on_server(&conn, one).await, 0);
    assert_eq!(on_server(&conn, three).await, 0);
}

#[tokio::test]
async fn a_capacity_of_zero_turns_caching_off() {
    let Some(addr) = tidepool_testkit::service("PostgreSQL", "TIDEPOOL_PG_ADDR", "127.0.0.1:5432")
    else {
        return;
    };
    let pool = PgManager::from_url(&format!("postgres://postgres@{addr}/test"))
        .unwrap()
        .statement_cache_capacity(0)
        .pool_builder()
        .build()
        .unwrap();
    let conn = pool.get().await.unwrap();
    let stmt = conn.prepare_cached("SELECT 1").await.unwrap();
    assert_eq!(conn.cached_statements(), 0);
    assert_eq!(on_server(&conn, "SELECT 1").await, 1, "held by the caller");
    drop(stmt);
    assert_eq!(on_server(&conn, "SELECT 1").await, 0);
}
