//! `transaction` commits on `Ok`, rolls back on `Err`, and never lets a
//! connection with an open transaction back into the pool — whether the
//! future is dropped mid-way or the closure panics.

use tidepool_postgres::tokio_postgres::{self, NoTls};
use tidepool_postgres::{PgManager, PgPool, transaction};
use tokio::sync::Notify;

/// A pool of one connection (so "the next get" means "the same connection,
/// if it came back") and a table of its own.
async fn setup() -> Option<(PgPool, String)> {
    let addr = tidepool_testkit::service("PostgreSQL", "TIDEPOOL_PG_ADDR", "127.0.0.1:5432")?;
    let pool = PgManager::from_url(&format!("postgres://postgres@{addr}/test"))
        .unwrap()
        .pool_builder()
        .max_size(1)
        .build()
        .unwrap();
    let table = format!("tidepool_tx_{:016x}", fastrand::u64(..));
    let conn = pool.get().await.unwrap();
    conn.batch_execute(&format!("CREATE TABLE {table} (id int PRIMARY KEY)"))
        .await
        .unwrap();
    drop(conn);
    Some((pool, table))
}

async fn count(pool: &PgPool, table: &str, id: i32) -> i64 {
    let conn = pool.get().await.unwrap();
    conn.query_one(
        &format!("SELECT count(*) FROM {table} WHERE id = $1"),
        &[&id],
    )
    .await
    .unwrap()
    .get(0)
}

async fn teardown(pool: PgPool, table: &str) {
    let conn = pool.get().await.unwrap();
    conn.batch_execute(&format!("DROP TABLE {table}"))
        .await
        .unwrap();
}

/// Inserts `id` from a session outside the pool. Succeeding proves no other
/// session still holds an uncommitted row with that key: it would block
/// (`lock_timeout` turns that into an error) or, had it committed, violate
/// the primary key.
async fn insert_from_outside(pool: &PgPool, table: &str, id: i32) {
    let cfg = pool.manager().config().to_tokio_postgres();
    let (client, connection) = cfg.connect(NoTls).await.unwrap();
    tokio::spawn(connection);
    client
        .batch_execute("SET lock_timeout = '10s'")
        .await
        .unwrap();
    client
        .execute(&format!("INSERT INTO {table} (id) VALUES ($1)"), &[&id])
        .await
        .unwrap();
}

#[tokio::test]
async fn a_committed_transaction_is_visible() {
    let Some((pool, table)) = setup().await else {
        return;
    };
    let mut conn = pool.get().await.unwrap();
    let inserted = transaction(&mut conn, async |c| {
        let stmt = c
            .prepare_cached(&format!("INSERT INTO {table} (id) VALUES ($1)"))
            .await?;
        c.execute(&stmt, &[&1_i32]).await?;
        c.execute(&stmt, &[&2_i32]).await?;
        Ok::<_, tokio_postgres::Error>(2)
    })
    .await
    .unwrap();
    assert_eq!(inserted, 2);
    drop(conn);

    assert_eq!(count(&pool, &table, 1).await, 1);
    assert_eq!(count(&pool, &table, 2).await, 1);
    assert_eq!(pool.counters().closed.broken, 0);
    teardown(pool, &table).await;
}

/// A caller's own error type: it only has to absorb the driver's errors.
#[derive(Debug)]
enum AppError {
    Db,
    Refused,
}

impl From<tokio_postgres::Error> for AppError {
    fn from(_: tokio_postgres::Error) -> Self {
        Self::Db
    }
}

#[tokio::test]
async fn an_error_rolls_back_and_keeps_the_connection() {
    let Some((pool, table)) = setup().await else {
        return;
    };
    let mut conn = pool.get().await.unwrap();
    let first = conn.info().id;
    let outcome: Result<(), AppError> = transaction(&mut conn, async |c| {
        c.execute(&format!("INSERT INTO {table} (id) VALUES (1)"), &[])
            .await?;
        Err(AppError::Refused)
    })
    .await;
    assert!(matches!(outcome, Err(AppError::Refused)), "{outcome:?}");
    drop(conn);

    // The same connection comes back (rolled back, not broken) and no
    // longer sees the row it inserted.
    let conn = pool.get().await.unwrap();
    assert_eq!(conn.info().id, first);
    drop(conn);
    assert_eq!(count(&pool, &table, 1).await, 0);
    assert_eq!(pool.counters().closed.broken, 0);
    insert_from_outside(&pool, &table, 1).await;
    teardown(pool, &table).await;
}

#[tokio::test]
async fn a_database_error_rolls_back_and_is_returned() {
    let Some((pool, table)) = setup().await else {
        return;
    };
    let mut conn = pool.get().await.unwrap();
    let outcome = transaction(&mut conn, async |c| {
        c.execute(&format!("INSERT INTO {table} (id) VALUES (1)"), &[])
            .await?;
        c.execute(&format!("INSERT INTO {table} (id) VALUES (1)"), &[])
            .await?;
        Ok::<_, tokio_postgres::Error>(())
    })
    .await;
    let err = outcome.unwrap_err();
    assert_eq!(
        err.code(),
        Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION)
    );
    drop(conn);
    assert_eq!(count(&pool, &table, 1).await, 0);
    assert_eq!(pool.counters().closed.broken, 0);
    teardown(pool, &table).await;
}

#[tokio::test]
async fn a_dropped_transaction_closes_its_connection_and_rolls_back() {
    let Some((pool, table)) = setup().await else {
        return;
    };
    let mut conn = pool.get().await.unwrap();
    let first = conn.info().id;
    let inserted = Notify::new();
    let tx = transaction(&mut conn, async |c| {
        c.execute(&format!("INSERT INTO {table} (id) VALUES (1)"), &[])
            .await?;
        inserted.notify_one();
        std::future::pending::<()>().await;
        Ok::<_, tokio_postgres::Error>(())
    });
    // Drop the transaction's future once its insert is done, as a timeout
    // or a cancelled request would.
    tokio::select! {
        _ = tx => panic!("the transaction cannot finish"),
        () = inserted.notified() => {}
    }
    assert_eq!(pool.counters().closed.broken, 0, "not yet returned");
    drop(conn);
    assert_eq!(pool.counters().closed.broken, 1);

    let conn = pool.get().await.unwrap();
    assert_ne!(
        conn.info().id,
        first,
        "the interrupted connection was closed"
    );
    drop(conn);
    assert_eq!(count(&pool, &table, 1).await, 0);
    insert_from_outside(&pool, &table, 1).await;
    teardown(pool, &table).await;
}

/// The server only notices a closed client between statements, so the
/// guard cancels the running one: the row lock is released at once, not
/// when the 30-second sleep would have ended (`insert_from_outside` would
/// hit its lock timeout first).
#[tokio::test]
async fn a_transaction_dropped_mid_statement_is_cancelled_and_rolled_back() {
    let Some((pool, table)) = setup().await else {
        return;
    };
    let sleep_sql = format!("SELECT pg_sleep(30) /* {table} */");
    let mut conn = pool.get().await.unwrap();
    let tx = transaction(&mut conn, async |c| {
        c.execute(&format!("INSERT INTO {table} (id) VALUES (1)"), &[])
            .await?;
        c.batch_execute(&sleep_sql).await?;
        Ok::<_, tokio_postgres::Error>(())
    });
    // Drop the future (as a timeout would) once the server is running the
    // sleep, as seen from another session.
    let observer = pool.manager().config().to_tokio_postgres();
    let (watcher, connection) = observer.connect(NoTls).await.unwrap();
    tokio::spawn(connection);
    let running = async {
        for _ in 0..1000 {
            let n: i64 = watcher
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query = $1",
                    &[&sleep_sql],
                )
                .await
                .unwrap()
                .get(0);
            if n == 1 {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("the statement never started");
    };
    tokio::select! {
        _ = tx => panic!("the transaction cannot finish"),
        () = running => {}
    }
    drop(conn);
    assert_eq!(pool.counters().closed.broken, 1);
    assert_eq!(count(&pool, &table, 1).await, 0);
    insert_from_outside(&pool, &table, 1).await;
    teardown(pool, &table).await;
}

#[tokio::test]
async fn a_panic_in_the_closure_rolls_back() {
    let Some((pool, table)) = setup().await else {
        return;
    };
    let task = {
        let pool = pool.clone();
        let table = table.clone();
        // Spawning also proves the transaction's future is `Send`.
        tokio::spawn(async move {
            let mut conn = pool.get().await.unwrap();
            transaction(&mut conn, async |c| {
                c.execute(&format!("INSERT INTO {table} (id) VALUES (1)"), &[])
                    .await?;
                if std::hint::black_box(true) {
                    panic!("boom inside the transaction");
                }
                Ok::<_, tokio_postgres::Error>(())
            })
            .await
        })
    };
    let err = task.await.unwrap_err();
    assert!(err.is_panic());
    assert_eq!(pool.counters().closed.broken, 1);
    assert_eq!(count(&pool, &table, 1).await, 0);
    insert_from_outside(&pool, &table, 1).await;
    teardown(pool, &table).await;
}
