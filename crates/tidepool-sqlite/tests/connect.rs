//! A pool opens a file database and runs a query.

mod common;

#[tokio::test]
async fn connects_and_queries() {
    let dir = tempfile::tempdir().unwrap();
    let pool = common::file_pool(dir.path(), 2);
    let conn = pool.get().await.expect("a connection");
    let (sum, version): (i64, String) = conn
        .interact(|c| {
            c.query_row("SELECT 1 + 1, sqlite_version()", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
        })
        .await
        .expect("interact")
        .expect("query");
    assert_eq!(sum, 2);
    assert!(version.starts_with("3."), "{version}");
    drop(conn);
    assert!(dir.path().join("test.db").exists());
    assert_eq!(pool.stats().counters.created, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_modes_never_create_and_read_only_refuses_writes() {
    use tidepool_sqlite::{OpenMode, SqliteConfig, SqliteManager};
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.db");
    let mut cfg = SqliteConfig::file(&missing);
    cfg.open = OpenMode::ReadWrite;
    let pool = tidepool::Pool::builder(SqliteManager::new(cfg).unwrap())
        .max_retries(0)
        .build()
        .unwrap();
    assert!(pool.get().await.is_err(), "a missing file is an error");
    assert!(!missing.exists(), "and is not created");

    let existing = dir.path().join("existing.db");
    let writer =
        tidepool::Pool::builder(SqliteManager::new(SqliteConfig::file(&existing)).unwrap())
            .build()
            .unwrap();
    let conn = writer.get().await.unwrap();
    conn.interact(|c| c.execute_batch("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1);"))
        .await
        .unwrap()
        .unwrap();
    drop(conn);
    let mut cfg = SqliteConfig::file(&existing);
    cfg.open = OpenMode::ReadOnly;
    let reader = tidepool::Pool::builder(SqliteManager::new(cfg).unwrap())
        .build()
        .unwrap();
    let conn = reader.get().await.unwrap();
    let n: i64 = conn
        .interact(|c| c.query_row("SELECT count(*) FROM t", [], |r| r.get(0)))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(n, 1);
    let refused = conn
        .interact(|c| c.execute("INSERT INTO t VALUES (2)", []))
        .await
        .unwrap();
    assert!(refused.unwrap_err().to_string().contains("readonly"));
}
