//! The reset between users.
//!
//! Against the mock server (which keeps no session state of its own) the
//! tests prove the reset batch is sent on every return, that a failed reset
//! closes the connection, and that `reset_on_return = false` sends nothing.
//! That no `SET` option, temporary table, open transaction or database
//! change reaches the next caller can only be seen on a real SQL Server
//! (`TIDEPOOL_MSSQL_ADDR`).

mod common;

use mssql_mock_tds::{QueryResponse, TerminalError};
use tidepool_mssql::InitialState;

/// The reset batch of a connection to the mock server.
fn mock_reset_sql() -> String {
    InitialState {
        options: common::INITIAL_OPTIONS,
        language_id: 0,
        date_first: 7,
        lock_timeout: -1,
        text_size: i32::MAX,
        isolation_level: 2,
        deadlock_priority: 0,
        database_id: 1,
    }
    .reset_sql()
}

#[tokio::test]
async fn every_return_sends_the_reset_batch() {
    let server = common::MockServer::start().await;
    let pool = common::pool(common::mock_config(server.addr()), 1);
    for _ in 0..3 {
        let mut conn = pool.get().await.unwrap();
        assert_eq!(common::scalar(&mut conn, "SELECT 1").await, Some(1));
        drop(conn);
        common::settled(&pool).await;
    }
    // Per return: the caller's SELECT and the reset batch; before the
    // first, the session-settings query.
    assert_eq!(server.requests().await, vec![vec![0; 1 + 3 * 2]]);
    assert_eq!(pool.counters().created, 1);
}

#[tokio::test]
async fn a_failed_reset_closes_the_connection() {
    let server = common::MockServer::start().await;
    server
        .register(
            &mock_reset_sql(),
            QueryResponse::error_only(TerminalError::new(50000, 16, "reset refused")),
        )
        .await;
    let pool = common::pool(common::mock_config(server.addr()), 1);

    let conn = pool.get().await.unwrap();
    drop(conn);
    common::settled(&pool).await;
    let conn = pool.get().await.unwrap();
    drop(conn);
    common::settled(&pool).await;

    let counters = pool.counters();
    assert_eq!(counters.created, 2, "{counters:?}");
    assert_eq!(counters.closed.error, 2, "{counters:?}");
    assert_eq!(server.logins().await, 2);
}

#[tokio::test]
async fn without_reset_nothing_is_sent_on_return() {
    let server = common::MockServer::start().await;
    let cfg = common::mock_config(server.addr()).with_reset_on_return(false);
    let pool = common::pool(cfg, 1);
    for _ in 0..3 {
        let mut conn = pool.get().await.unwrap();
        assert_eq!(common::scalar(&mut conn, "SELECT 1").await, Some(1));
    }
    common::settled(&pool).await;
    // Only the three SELECTs: no settings query, no reset batch.
    assert_eq!(server.requests().await, vec![vec![0; 3]]);
}

#[tokio::test]
async fn no_session_state_reaches_the_next_caller_on_a_real_server() {
    let Some(cfg) = common::real_config("reset") else {
        return;
    };
    let pool = common::pool(cfg, 1);
    let table = format!("tp_reset_{:016x}", std::process::id() as u64 * 7919);
    let mut conn = pool.get().await.unwrap();
    let spid = common::spid(&mut conn).await;
    let language = common::scalar(&mut conn, "SELECT CAST(@@LANGID AS int)").await;
    common::exec(
        &mut conn,
        format!("CREATE TABLE {table} (id int PRIMARY KEY)"),
    )
    .await;
    conn.simple_query(format!(
        "SET XACT_ABORT ON; SET NOCOUNT ON; SET LOCK_TIMEOUT 1234; SET LANGUAGE Deutsch; \
         SET TRANSACTION ISOLATION LEVEL SERIALIZABLE; \
         CREATE TABLE #tp_leak (x int); BEGIN TRANSACTION; INSERT INTO {table} VALUES (1);"
    ))
    .await
    .unwrap()
    .into_results()
    .await
    .unwrap();
    drop(conn);
    common::settled(&pool).await;

    let mut conn = pool.get().await.unwrap();
    assert_eq!(common::spid(&mut conn).await, spid, "the same session");
    for (sql, expected) in [
        ("SELECT CAST(@@OPTIONS & 16384 AS int)", Some(0)), // XACT_ABORT
        ("SELECT CAST(@@OPTIONS & 512 AS int)", Some(0)),   // NOCOUNT
        ("SELECT CAST(@@LOCK_TIMEOUT AS int)", Some(-1)),
        ("SELECT CAST(@@LANGID AS int)", language),
        ("SELECT CAST(@@TRANCOUNT AS int)", Some(0)),
        (
            "SELECT CAST(CASE WHEN OBJECT_ID('tempdb..#tp_leak') IS NULL THEN 1 ELSE 0 END AS int)",
            Some(1),
        ),
        (
            "SELECT CAST(transaction_isolation_level AS int) FROM sys.dm_exec_sessions WHERE session_id = @@SPID",
            Some(2),
        ),
    ] {
        assert_eq!(common::scalar(&mut conn, sql).await, expected, "{sql}");
    }
    let rows = common::scalar(&mut conn, &format!("SELECT COUNT(*) FROM {table}")).await;
    assert_eq!(rows, Some(0), "the open transaction was rolled back");
    common::exec(&mut conn, format!("DROP TABLE {table}")).await;
}

#[tokio::test]
async fn a_session_that_changed_database_is_closed_on_a_real_server() {
    let Some(cfg) = common::real_config("reset (USE)") else {
        return;
    };
    let pool = common::pool(cfg, 1);
    let mut conn = pool.get().await.unwrap();
    let spid = common::spid(&mut conn).await;
    let other = if common::scalar(&mut conn, "SELECT CAST(DB_ID() AS int)").await == Some(2) {
        "master"
    } else {
        "tempdb"
    };
    common::exec(&mut conn, format!("USE {other}")).await;
    drop(conn);
    common::settled(&pool).await;
    let mut conn = pool.get().await.unwrap();
    assert_ne!(common::spid(&mut conn).await, spid);
    assert_eq!(pool.counters().closed.error, 1);
}
