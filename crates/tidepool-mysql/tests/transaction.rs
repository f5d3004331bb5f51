//! `transaction` commits on Ok, and rolls back on Err, on a dropped future
//! and on a panic — closing the connection in the last two cases.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tidepool_mysql::mysql_async::{self, prelude::Queryable};
use tidepool_mysql::transaction;

#[derive(Debug)]
enum AppError {
    Db(#[expect(dead_code, reason = "read through Debug only")] mysql_async::Error),
    Refused,
}

impl From<mysql_async::Error> for AppError {
    fn from(e: mysql_async::Error) -> Self {
        Self::Db(e)
    }
}

fn insert(table: &str) -> String {
    format!("INSERT INTO {table} (id, note) VALUES (1, 'inside')")
}

#[tokio::test]
async fn ok_commits() {
    let Some(addr) = tidepool_testkit::service("MariaDB", "TIDEPOOL_MYSQL_ADDR", "127.0.0.1:3306")
    else {
        return;
    };
    let pool = common::pool(&addr, 2);
    let table = common::table("tx_commit");
    common::create_table(&pool, &table).await;

    let mut conn = pool.get().await.unwrap();
    let affected = transaction(&mut conn, async |tx| {
        tx.query_drop(insert(&table)).await?;
        Ok::<_, mysql_async::Error>(tx.affected_rows())
    })
    .await
    .expect("committed");
    assert_eq!(affected, 1);
    drop(conn);

    assert_eq!(common::count(&pool, &table).await, 1);
    assert_eq!(pool.counters().closed.broken, 0);
    common::drop_table(&pool, &table).await;
}

#[tokio::test]
async fn err_rolls_back_and_keeps_the_connection() {
    let Some(addr) = tidepool_testkit::service("MariaDB", "TIDEPOOL_MYSQL_ADDR", "127.0.0.1:3306")
    else {
        return;
    };
    let pool = common::pool(&addr, 2);
    let table = common::table("tx_err");
    common::create_table(&pool, &table).await;

    let mut conn = pool.get().await.unwrap();
    let outcome: Result<(), AppError> = transaction(&mut conn, async |tx| {
        tx.query_drop(insert(&table)).await?;
        Err(AppError::Refused)
    })
    .await;
    assert!(matches!(outcome, Err(AppError::Refused)), "{outcome:?}");
    drop(conn);

    common::assert_rolled_back(&pool, &table, 1).await;
    assert_eq!(pool.counters().closed.broken, 0);
    common::drop_table(&pool, &table).await;
}

#[tokio::test]
async fn a_dropped_future_rolls_back_and_closes_the_connection() {
    let Some(addr) = tidepool_testkit::service("MariaDB", "TIDEPOOL_MYSQL_ADDR", "127.0.0.1:3306")
    else {
        return;
    };
    let pool = common::pool(&addr, 2);
    let table = common::table("tx_drop");
    common::create_table(&pool, &table).await;

    let mut conn = pool.get().await.unwrap();
    let session = conn.id();
    let inserted = AtomicBool::new(false);
    let outcome = tokio::time::timeout(
        Duration::from_secs(2),
        transaction(&mut conn, async |tx| {
            tx.query_drop(insert(&table)).await?;
            inserted.store(true, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok::<_, mysql_async::Error>(())
        }),
    )
    .await;
    assert!(outcome.is_err(), "the transaction should have timed out");
    assert!(inserted.load(Ordering::SeqCst), "the insert ran first");
    drop(conn);

    assert_eq!(pool.counters().closed.broken, 1);
    assert!(common::session_gone(&pool, session).await);
    common::assert_rolled_back(&pool, &table, 1).await;
    common::drop_table(&pool, &table).await;
}

#[tokio::test]
async fn a_panic_rolls_back_and_closes_the_connection() {
    let Some(addr) = tidepool_testkit::service("MariaDB", "TIDEPOOL_MYSQL_ADDR", "127.0.0.1:3306")
    else {
        return;
    };
    let pool = common::pool(&addr, 2);
    let table = common::table("tx_panic");
    common::create_table(&pool, &table).await;

    let (pool2, table2) = (pool.clone(), table.clone());
    let (tx_session, rx_session) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        let mut conn = pool2.get().await.unwrap();
        tx_session.send(conn.id()).unwrap();
        transaction(&mut conn, async |tx| -> Result<(), mysql_async::Error> {
            tx.query_drop(insert(&table2)).await?;
            panic!("boom inside the transaction");
        })
        .await
    });
    let err = task.await.expect_err("the task panicked");
    assert!(err.is_panic());
    let session = rx_session.await.unwrap();

    assert_eq!(pool.counters().closed.broken, 1);
    assert!(common::session_gone(&pool, session).await);
    common::assert_rolled_back(&pool, &table, 1).await;
    common::drop_table(&pool, &table).await;
}
