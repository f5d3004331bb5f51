//! A pool connects to the server and runs a query.

mod common;

use tidepool_mysql::mysql_async::prelude::Queryable;

#[tokio::test]
async fn connects_and_queries() {
    let Some(addr) = tidepool_testkit::service("MariaDB", "TIDEPOOL_MYSQL_ADDR", "127.0.0.1:3306")
    else {
        return;
    };
    let pool = common::pool(&addr, 2);
    let mut conn = pool.get().await.expect("a connection");
    let row: Option<(i64, String)> = conn
        .query_first("SELECT 1 + 1, DATABASE()")
        .await
        .expect("query");
    assert_eq!(row, Some((2, "test".to_owned())));
    drop(conn);
    assert_eq!(pool.stats().counters.created, 1);
}
