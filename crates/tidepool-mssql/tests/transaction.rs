//! `transaction`: commit on `Ok`, roll back on `Err`, and close the
//! connection when the future is dropped midway.
//!
//! The mock server answers the driver's Transaction Manager requests and
//! records the transaction descriptor every request carries, so the tests
//! see which requests ran inside the transaction. Whether the data was
//! committed or rolled back is checked on a real server.

mod common;

use std::time::Duration;

use tidepool_mssql::tiberius;

/// The descriptor the mock hands out for a transaction.
const IN_TXN: u64 = 1;

#[tokio::test]
async fn requests_inside_the_transaction_carry_it_and_commit_ends_it() {
    let server = common::MockServer::start().await;
    let pool = common::pool(common::mock_config(server.addr()), 1);
    let mut conn = pool.get().await.unwrap();
    let one = tidepool_mssql::transaction(&mut conn, async |tx| {
        let row = tx.simple_query("SELECT 1").await?.into_row().await?;
        Ok::<_, tiberius::error::Error>(row.and_then(|r| r.get::<i32, _>(0)))
    })
    .await
    .unwrap();
    assert_eq!(one, Some(1));
    assert_eq!(common::scalar(&mut conn, "SELECT 1").await, Some(1));
    drop(conn);
    common::settled(&pool).await;

    // Settings query, the SELECT in the transaction, the SELECT after the
    // commit, the reset batch.
    assert_eq!(server.requests().await, vec![vec![0, IN_TXN, 0, 0]]);
    assert_eq!(pool.counters().created, 1);
}

#[tokio::test]
async fn an_error_rolls_back_and_the_connection_is_reused() {
    let server = common::MockServer::start().await;
    let pool = common::pool(common::mock_config(server.addr()), 1);
    let mut conn = pool.get().await.unwrap();
    let result: Result<(), tiberius::error::Error> =
        tidepool_mssql::transaction(&mut conn, async |tx| {
            tx.simple_query("SELECT 1").await?.into_results().await?;
            Err(tiberius::error::Error::Conversion(
                "the caller gave up".into(),
            ))
        })
        .await;
    assert!(result.is_err());
    assert_eq!(common::scalar(&mut conn, "SELECT 1").await, Some(1));
    drop(conn);
    common::settled(&pool).await;

    assert_eq!(server.requests().await, vec![vec![0, IN_TXN, 0, 0]]);
    let counters = pool.counters();
    assert_eq!((counters.created, counters.closed.broken), (1, 0));
}

#[tokio::test]
async fn a_dropped_transaction_closes_its_connection() {
    let server = common::MockServer::start().await;
    server
        .register(
            "SELECT 2",
            common::int_response("two", 2).with_delay(Duration::from_secs(5)),
        )
        .await;
    let pool = common::pool(common::mock_config(server.addr()), 1);
    let mut conn = pool.get().await.unwrap();
    let cut_short = tokio::time::timeout(
        Duration::from_millis(200),
        tidepool_mssql::transaction(&mut conn, async |tx| {
            tx.simple_query("SELECT 2").await?.into_results().await?;
            Ok::<_, tiberius::error::Error>(())
        }),
    )
    .await;
    assert!(cut_short.is_err(), "the timeout fired");
    drop(conn);
    common::settled(&pool).await;

    let counters = pool.counters();
    assert_eq!(counters.closed.broken, 1, "{counters:?}");
    let mut conn = pool.get().await.unwrap();
    assert_eq!(common::scalar(&mut conn, "SELECT 1").await, Some(1));
    assert_eq!(pool.counters().created, 2);
}

#[tokio::test]
async fn commit_and_rollback_are_kept_on_a_real_server() {
    let Some(cfg) = common::real_config("transaction") else {
        return;
    };
    let pool = common::pool(cfg, 2);
    let table = format!("tp_txn_{}", std::process::id());
    let mut conn = pool.get().await.unwrap();
    common::exec(
        &mut conn,
        format!("CREATE TABLE {table} (id int PRIMARY KEY)"),
    )
    .await;
    tidepool_mssql::transaction(&mut conn, async |tx| {
        tx.execute(format!("INSERT INTO {table} VALUES (@P1)"), &[&1i32])
            .await?;
        Ok::<_, tiberius::error::Error>(())
    })
    .await
    .unwrap();
    let rolled_back: Result<(), tiberius::error::Error> =
        tidepool_mssql::transaction(&mut conn, async |tx| {
            tx.execute(format!("INSERT INTO {table} VALUES (@P1)"), &[&2i32])
                .await?;
            Err(tiberius::error::Error::Conversion("give up".into()))
        })
        .await;
    assert!(rolled_back.is_err());
    let ids = common::scalar(&mut conn, &format!("SELECT SUM(id) FROM {table}")).await;
    assert_eq!(ids, Some(1));
    common::exec(&mut conn, format!("DROP TABLE {table}")).await;
}
