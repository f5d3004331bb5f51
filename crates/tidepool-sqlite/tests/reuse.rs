//! Sequential gets reuse one connection instead of opening new ones.

mod common;

#[tokio::test]
async fn sequential_gets_reuse_one_connection() {
    let dir = tempfile::tempdir().unwrap();
    let pool = common::file_pool(dir.path(), 4);
    for i in 0..1000_i64 {
        let conn = pool.get().await.expect("a connection");
        let got: i64 = conn
            .interact(move |c| c.query_row("SELECT ?1", [i], |r| r.get(0)))
            .await
            .expect("interact")
            .expect("query");
        assert_eq!(got, i);
    }
    let c = pool.stats().counters;
    assert_eq!(c.gets, 1000);
    assert_eq!(c.created, 1, "{c:?}");
    assert_eq!(c.reused, 999, "{c:?}");
}
