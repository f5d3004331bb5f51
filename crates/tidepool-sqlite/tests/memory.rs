//! A named in-memory database is shared by the pool's connections, and
//! outlives them as long as the pool does.

mod common;

use tidepool_sqlite::SqliteConfig;

#[tokio::test]
async fn a_table_created_on_one_connection_is_seen_by_another() {
    let pool = common::pool(SqliteConfig::memory(common::unique("shared")), 2);
    let a = pool.get().await.unwrap();
    a.interact(|c| c.execute_batch("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (7);"))
        .await
        .unwrap()
        .unwrap();
    let b = pool.get().await.unwrap();
    assert_ne!(a.info().id, b.info().id, "two distinct connections");
    let x: i64 = b
        .interact(|c| c.query_row("SELECT x FROM t", [], |r| r.get(0)))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(x, 7);
    // WAL does not apply in memory: the journal stays in memory.
    let mode: String = b
        .interact(|c| c.pragma_query_value(None, "journal_mode", |r| r.get(0)))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(mode, "memory");
}

#[tokio::test]
async fn the_data_survives_the_pool_closing_every_connection() {
    let pool = common::pool(SqliteConfig::memory(common::unique("kept")), 2);
    common::exec(
        &pool,
        "CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (9);",
    )
    .await;
    pool.evict();
    let g = pool.gauges();
    assert_eq!(g.size, 0, "{g:?}");
    assert_eq!(pool.counters().closed.evicted, 1);

    let conn = pool.get().await.unwrap();
    let x: i64 = conn
        .interact(|c| c.query_row("SELECT x FROM t", [], |r| r.get(0)))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(x, 9);
    assert_eq!(pool.counters().created, 2);
}

#[tokio::test]
async fn different_names_are_different_databases() {
    let one = common::pool(SqliteConfig::memory(common::unique("one")), 1);
    let two = common::pool(SqliteConfig::memory(common::unique("two")), 1);
    common::exec(&one, "CREATE TABLE only_in_one (x INTEGER)").await;
    let conn = two.get().await.unwrap();
    let found: i64 = conn
        .interact(|c| {
            c.query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE name = 'only_in_one'",
                [],
                |r| r.get(0),
            )
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found, 0);
}
