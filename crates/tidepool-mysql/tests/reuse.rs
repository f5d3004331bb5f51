//! Sequential gets reuse one connection instead of opening new ones.

mod common;

use tidepool_mysql::mysql_async::prelude::Queryable;

#[tokio::test]
async fn sequential_gets_reuse_one_connection() {
    let Some(addr) = tidepool_testkit::service("MariaDB", "TIDEPOOL_MYSQL_ADDR", "127.0.0.1:3306")
    else {
        return;
    };
    // With the default reset on return: a get arriving while the connection
    // resets in the background waits for it rather than opening another.
    let cfg = common::config(&addr);
    assert!(cfg.reset_on_return);
    let pool = common::pool_with(cfg, 4);
    for i in 0..1000_i64 {
        let mut conn = pool.get().await.expect("a connection");
        let got: Option<i64> = conn.exec_first("SELECT ?", (i,)).await.expect("query");
        assert_eq!(got, Some(i));
    }
    let c = pool.stats().counters;
    assert_eq!(c.gets, 1000);
    assert_eq!(c.created, 1, "{c:?}");
    assert_eq!(c.reused, 999, "{c:?}");
}
