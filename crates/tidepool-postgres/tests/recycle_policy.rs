//! What each recycle policy lets through from one user of a connection to
//! the next.

use tidepool_postgres::{PgManager, PgPool, RecyclePolicy};

fn pool(addr: &str, policy: RecyclePolicy) -> PgPool {
    // One connection, so the second user gets the first one's session.
    PgManager::from_url(&format!("postgres://postgres@{addr}/test"))
        .unwrap()
        .recycle_policy(policy)
        .pool_builder()
        .max_size(1)
        .build()
        .unwrap()
}

/// Leaves session state behind: a setting, a temporary table, an advisory
/// lock and an open transaction. Returns the connection's pool id.
async fn dirty(pool: &PgPool) -> u64 {
    let conn = pool.get().await.unwrap();
    conn.batch_execute(
        "SET statement_timeout = '1234s'; \
         CREATE TEMP TABLE leftover (x int); \
         SELECT pg_advisory_lock(424242); \
         BEGIN; SET LOCAL work_mem = '7MB'",
    )
    .await
    .unwrap();
    conn.info().id
}

struct Seen {
    id: u64,
    statement_timeout: String,
    temp_tables: i64,
    advisory_locks: i64,
    /// The `SET LOCAL` of the transaction left open is still in force.
    in_transaction: bool,
}

async fn look(pool: &PgPool) -> Seen {
    let conn = pool.get().await.unwrap();
    let row = conn
        .query_one(
            "SELECT current_setting('statement_timeout'), \
                    (SELECT count(*) FROM pg_class WHERE relname = 'leftover' AND relpersistence = 't'), \
                    (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()), \
                    current_setting('work_mem') = '7MB'",
            &[],
        )
        .await
        .unwrap();
    Seen {
        id: conn.info().id,
        statement_timeout: row.get(0),
        temp_tables: row.get(1),
        advisory_locks: row.get(2),
        in_transaction: row.get(3),
    }
}

#[tokio::test]
async fn clean_leaves_nothing_to_the_next_user() {
    let Some(addr) = tidepool_testkit::service("PostgreSQL", "TIDEPOOL_PG_ADDR", "127.0.0.1:5432")
    else {
        return;
    };
    let pool = pool(&addr, RecyclePolicy::Clean);
    let id = dirty(&pool).await;
    let seen = look(&pool).await;
    assert_eq!(seen.id, id, "the same connection, reset");
    assert_eq!(seen.statement_timeout, "0");
    assert_eq!(seen.temp_tables, 0);
    assert_eq!(seen.advisory_locks, 0);
    assert!(!seen.in_transaction);
    assert_eq!(pool.counters().closed.total(), 0);
}

#[tokio::test]
async fn fast_hands_session_state_on() {
    let Some(addr) = tidepool_testkit::service("PostgreSQL", "TIDEPOOL_PG_ADDR", "127.0.0.1:5432")
    else {
        return;
    };
    // The trade-off `Fast` documents, shown so the test above is not
    // vacuous: the same session, with everything still there.
    let pool = pool(&addr, RecyclePolicy::Fast);
    let id = dirty(&pool).await;
    let seen = look(&pool).await;
    assert_eq!(seen.id, id);
    assert_eq!(seen.statement_timeout, "1234s");
    assert_eq!(seen.temp_tables, 1);
    assert_eq!(seen.advisory_locks, 1);
    assert!(seen.in_transaction);
}

#[tokio::test]
async fn clean_keeps_cached_statements_and_custom_types_working() {
    let Some(addr) = tidepool_testkit::service("PostgreSQL", "TIDEPOOL_PG_ADDR", "127.0.0.1:5432")
    else {
        return;
    };
    let pool = pool(&addr, RecyclePolicy::Clean);
    let suffix = format!("{:016x}", fastrand::u64(..));
    let (mood, weather) = (format!("tp_mood_{suffix}"), format!("tp_weather_{suffix}"));
    let conn = pool.get().await.unwrap();
    conn.batch_execute(&format!(
        "CREATE TYPE {mood} AS ENUM ('ok'); CREATE TYPE {weather} AS ENUM ('sun')"
    ))
    .await
    .unwrap();
    // Looking up the first custom type makes the driver prepare (and keep)
    // its own type-lookup statement on this session.
    let stmt = conn
        .prepare_cached(&format!("SELECT 'ok'::{mood}"))
        .await
        .unwrap();
    conn.query_one(&stmt, &[]).await.unwrap();
    let id = conn.info().id;
    drop(conn);

    let conn = pool.get().await.unwrap();
    assert_eq!(conn.info().id, id, "the same connection, reset");
    assert_eq!(conn.cached_statements(), 1);
    conn.query_one(&stmt, &[])
        .await
        .expect("a cached statement survives the reset");
    // A type not seen before needs the driver's own lookup statement, which
    // a `DISCARD ALL` would have dropped.
    conn.prepare(&format!("SELECT 'sun'::{weather}"))
        .await
        .expect("the driver's type lookup survives the reset");
    conn.batch_execute(&format!("DROP TYPE {mood}; DROP TYPE {weather}"))
        .await
        .unwrap();
}
