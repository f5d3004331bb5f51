//! A session killed on the server while idle in the pool is detected before
//! anyone gets it, and replaced: the next caller's get and query succeed.
//! One killed while a statement runs fails that statement, and no other.
//!
//! Two things catch it before checkout: `has_broken` (free: the driver's own
//! closed flag), once the driver has read the server's goodbye; and, for a
//! kill the driver has not seen yet, a ping — the pool's
//! `Validation::Always`, or the manager's `RecyclePolicy::Verified` — so
//! each test turns one of them on, and accepts either catch.

use tidepool::Validation;
use tidepool_postgres::tokio_postgres::NoTls;
use tidepool_postgres::{PgManager, PgPool, RecyclePolicy};

/// Terminates the session `pid` from another session, waiting (up to 10 s)
/// until the server process has actually exited.
async fn kill(pool: &PgPool, pid: i32) {
    let cfg = pool.manager().config().to_tokio_postgres();
    let (client, connection) = cfg.connect(NoTls).await.unwrap();
    tokio::spawn(connection);
    let done: bool = client
        .query_one("SELECT pg_terminate_backend($1, 10000)", &[&pid])
        .await
        .unwrap()
        .get(0);
    assert!(done, "backend {pid} did not exit");
}

async fn backend_pid(pool: &PgPool) -> i32 {
    let conn = pool.get().await.expect("get succeeds");
    conn.query_one("SELECT pg_backend_pid()", &[])
        .await
        .expect("query succeeds")
        .get(0)
}

#[tokio::test]
async fn validation_always_replaces_a_killed_connection() {
    let Some(addr) = tidepool_testkit::service("PostgreSQL", "TIDEPOOL_PG_ADDR", "127.0.0.1:5432")
    else {
        return;
    };
    let pool = PgManager::from_url(&format!("postgres://postgres@{addr}/test"))
        .unwrap()
        .pool_builder()
        .max_size(1)
        .validation(Validation::Always)
        .build()
        .unwrap();

    let victim = backend_pid(&pool).await;
    kill(&pool, victim).await;
    let replacement = backend_pid(&pool).await;

    assert_ne!(replacement, victim);
    let counters = pool.counters();
    assert_eq!(
        counters.closed.failed_validation + counters.closed.broken,
        1,
        "{counters:?}"
    );
    assert_eq!(counters.created, 2);
}

#[tokio::test]
async fn the_verified_policy_replaces_a_killed_connection() {
    let Some(addr) = tidepool_testkit::service("PostgreSQL", "TIDEPOOL_PG_ADDR", "127.0.0.1:5432")
    else {
        return;
    };
    // `pool_builder` turns the pool's own validation off for `Verified`:
    // the manager's ping is the only one.
    let pool = PgManager::from_url(&format!("postgres://postgres@{addr}/test"))
        .unwrap()
        .recycle_policy(RecyclePolicy::Verified)
        .pool_builder()
        .max_size(1)
        .build()
        .unwrap();
    assert_eq!(pool.config().validation, Validation::Never);

    let victim = backend_pid(&pool).await;
    kill(&pool, victim).await;
    let replacement = backend_pid(&pool).await;

    assert_ne!(replacement, victim);
    let counters = pool.counters();
    assert_eq!(counters.checkout_rejections, 1);
    assert_eq!(
        counters.closed.error + counters.closed.broken,
        1,
        "before_checkout or has_broken rejected it: {counters:?}"
    );
    assert_eq!(counters.created, 2);
}

/// A session killed while a statement runs fails that statement with a
/// `FATAL` error, and the connection says it is closed from that moment:
/// the driver itself marks the client closed only once it has read the end
/// of the stream, which the server sends after its process has cleaned up,
/// so a pool asking the driver alone would hand the connection on.
#[tokio::test]
async fn a_session_killed_mid_statement_is_closed_as_soon_as_the_statement_fails() {
    let Some(addr) = tidepool_testkit::service("PostgreSQL", "TIDEPOOL_PG_ADDR", "127.0.0.1:5432")
    else {
        return;
    };
    let pool = PgManager::from_url(&format!("postgres://postgres@{addr}/test"))
        .unwrap()
        .pool_builder()
        .max_size(1)
        .build()
        .unwrap();
    let conn = pool.get().await.unwrap();
    let victim: i32 = conn
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);

    let killer = {
        let pool = pool.clone();
        tokio::spawn(async move {
            // Killed once the statement is running.
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            kill(&pool, victim).await;
        })
    };
    let err = conn.simple_query("SELECT pg_sleep(30)").await.unwrap_err();
    let closed_at_once = conn.is_closed();
    killer.await.unwrap();
    let severity = err.as_db_error().map(|db| db.severity().to_owned());
    assert_eq!(severity.as_deref(), Some("FATAL"), "{err:?}");
    assert!(
        closed_at_once,
        "the connection knew as soon as the statement failed"
    );
    let first = conn.info().id;
    drop(conn);

    let counters = pool.counters();
    assert_eq!(counters.closed.broken, 1, "{counters:?}");
    let conn = pool.get().await.unwrap();
    assert_ne!(conn.info().id, first);
    conn.simple_query("SELECT 1").await.unwrap();
}
