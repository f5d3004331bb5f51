//! Sequential gets reuse one connection instead of opening new ones.

mod common;

use tidepool_mysql::mysql_async::prelude::Queryable;

#[tokio::test]
async fn sequential_gets_reuse_one_connection() {
    let Some(addr) = tidepool_testkit::service("MariaDB", "TIDEPOOL_MYSQL_ADDR", "127.0.0.1:3306")
    else {
        return;
    };
    // Without reset on return: a connection being reset in the background is
    // unavailable for that moment, and a get arriving then opens another one.
    let mut cfg = common::config(&addr);
    cfg.reset_on_return = false;
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
