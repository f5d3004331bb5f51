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
