//! With `reset_on_return`, a returned connection is reset before reuse (no
//! session state leaks, `init` runs again); without it, a connection
//! returned with a transaction open is closed instead of reused.

mod common;

use tidepool_mysql::mysql_async::{self, prelude::Queryable};

#[tokio::test]
async fn reset_on_return_clears_session_state() {
    let Some(addr) = tidepool_testkit::service("MariaDB", "TIDEPOOL_MYSQL_ADDR", "127.0.0.1:3306")
    else {
        return;
    };
    let mut cfg = common::config(&addr);
    cfg.init = vec!["SET @tp_init = 7".to_owned()];
    assert!(cfg.reset_on_return, "on by default");
    let pool = common::pool_with(cfg, 1);

    let mut conn = pool.get().await.unwrap();
    let id = conn.info().id;
    conn.query_drop("SET @tp_leak = 42").await.unwrap();
    conn.query_drop("CREATE TEMPORARY TABLE tp_leak_tmp (x INT)")
        .await
        .unwrap();
    drop(conn);

    let mut conn = pool.get().await.unwrap();
    assert_eq!(conn.info().id, id, "the same connection, reset");
    let (leak, init): (Option<i64>, Option<i64>) = conn
        .query_first("SELECT @tp_leak, @tp_init")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(leak, None, "user variable survived the reset");
    assert_eq!(init, Some(7), "init did not run again after the reset");
    match conn.query_drop("SELECT x FROM tp_leak_tmp").await {
        Err(mysql_async::Error::Server(e)) => assert_eq!(e.code, 1146, "{e}"),
        other => panic!("the temporary table survived the reset: {other:?}"),
    }
    drop(conn);
    assert_eq!(pool.counters().created, 1);
}

#[tokio::test]
async fn without_reset_an_open_transaction_is_not_reused() {
    let Some(addr) = tidepool_testkit::service("MariaDB", "TIDEPOOL_MYSQL_ADDR", "127.0.0.1:3306")
    else {
        return;
    };
    let mut cfg = common::config(&addr);
    cfg.reset_on_return = false;
    let pool = common::pool_with(cfg, 1);
    let table = common::table("reset_tx");
    common::create_table(&pool, &table).await;

    let mut conn = pool.get().await.unwrap();
    conn.query_drop("SET @tp_kept = 1").await.unwrap();
    drop(conn);
    let mut conn = pool.get().await.unwrap();
    let kept: Option<Option<i64>> = conn.query_first("SELECT @tp_kept").await.unwrap();
    assert_eq!(kept, Some(Some(1)), "no reset: session state is kept");
    conn.query_drop("START TRANSACTION").await.unwrap();
    conn.query_drop(format!("INSERT INTO {table} (id, note) VALUES (1, 'open')"))
        .await
        .unwrap();
    drop(conn);

    assert_eq!(pool.counters().closed.broken, 1);
    common::assert_rolled_back(&pool, &table, 1).await;
    common::drop_table(&pool, &table).await;
}
