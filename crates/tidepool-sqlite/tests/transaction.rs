//! `transaction` commits on Ok, and rolls back on Err, on a dropped future
//! and on a panic — closing the connection in the last two cases.

mod common;

use std::sync::mpsc;
use std::time::Duration;

use tidepool_sqlite::{InteractError, SqliteError, SqlitePool, transaction};

#[derive(Debug)]
enum AppError {
    Db(#[expect(dead_code, reason = "read through Debug only")] SqliteError),
    Refused,
}

impl From<tidepool_sqlite::rusqlite::Error> for AppError {
    fn from(e: tidepool_sqlite::rusqlite::Error) -> Self {
        Self::Db(e.into())
    }
}

impl From<InteractError> for AppError {
    fn from(e: InteractError) -> Self {
        Self::Db(e.into())
    }
}

async fn setup() -> (tempfile::TempDir, SqlitePool, String) {
    let dir = tempfile::tempdir().unwrap();
    let pool = common::file_pool(dir.path(), 2);
    let table = common::unique("tx");
    common::exec(
        &pool,
        &format!("CREATE TABLE {table} (id INTEGER PRIMARY KEY, note TEXT NOT NULL)"),
    )
    .await;
    (dir, pool, table)
}

fn insert(table: &str) -> String {
    format!("INSERT INTO {table} (id, note) VALUES (1, 'inside')")
}

#[tokio::test]
async fn ok_commits() {
    let (_dir, pool, table) = setup().await;
    let mut conn = pool.get().await.unwrap();
    let sql = insert(&table);
    let changed = transaction(&mut conn, move |tx| {
        Ok::<_, SqliteError>(tx.execute(&sql, [])?)
    })
    .await
    .expect("committed");
    assert_eq!(changed, 1);
    drop(conn);

    assert_eq!(common::settled_count(&pool, &table).await, 1);
    assert_eq!(pool.counters().closed.broken, 0);
    common::exec(&pool, &format!("DROP TABLE {table}")).await;
}

#[tokio::test]
async fn err_rolls_back_and_keeps_the_connection() {
    let (_dir, pool, table) = setup().await;
    let mut conn = pool.get().await.unwrap();
    let sql = insert(&table);
    let outcome: Result<(), AppError> = transaction(&mut conn, move |tx| {
        tx.execute(&sql, [])?;
        Err(AppError::Refused)
    })
    .await;
    assert!(matches!(outcome, Err(AppError::Refused)), "{outcome:?}");
    drop(conn);

    assert_eq!(common::settled_count(&pool, &table).await, 0);
    assert_eq!(pool.counters().closed.broken, 0);
    common::exec(&pool, &format!("DROP TABLE {table}")).await;
}

#[tokio::test]
async fn a_dropped_future_rolls_back_and_closes_the_connection() {
    let (_dir, pool, table) = setup().await;
    let mut conn = pool.get().await.unwrap();
    let sql = insert(&table);
    let (inserted_tx, inserted_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let outcome = tokio::time::timeout(
        Duration::from_secs(1),
        transaction(&mut conn, move |tx| {
            tx.execute(&sql, [])?;
            inserted_tx.send(()).unwrap();
            // "Sleeps" until the test lets it go, long after the timeout.
            let _ = release_rx.recv_timeout(Duration::from_secs(30));
            Ok::<_, SqliteError>(())
        }),
    )
    .await;
    assert!(outcome.is_err(), "the transaction should have timed out");
    inserted_rx
        .recv_timeout(Duration::from_secs(5))
        .expect("the insert ran first");
    drop(conn);
    assert_eq!(pool.counters().closed.broken, 1);

    // Let the abandoned closure return; the helper rolls back instead of
    // committing. The settled count waits for its write lock to go.
    release_tx.send(()).unwrap();
    assert_eq!(common::settled_count(&pool, &table).await, 0);
    common::exec(&pool, &format!("DROP TABLE {table}")).await;
}

#[tokio::test]
async fn a_panic_rolls_back_and_closes_the_connection() {
    let (_dir, pool, table) = setup().await;
    let mut conn = pool.get().await.unwrap();
    let sql = insert(&table);
    let err = transaction(&mut conn, move |tx| -> Result<(), SqliteError> {
        tx.execute(&sql, [])?;
        panic!("boom inside the transaction");
    })
    .await
    .expect_err("the closure panicked");
    match &err {
        SqliteError::Interact(InteractError::Panicked(msg)) => {
            assert!(msg.contains("boom inside the transaction"), "{msg}");
        }
        other => panic!("expected a panic report, got {other:?}"),
    }
    drop(conn);
    assert_eq!(pool.counters().closed.broken, 1);

    assert_eq!(common::settled_count(&pool, &table).await, 0);
    common::exec(&pool, &format!("DROP TABLE {table}")).await;
}
