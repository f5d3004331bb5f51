//! A session killed on the server while idle in the pool is detected before
//! anyone gets it, and replaced: the next caller's get and query succeed.
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
