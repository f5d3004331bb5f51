//! A session older than `session_lifetime` is never handed out (its token
//! is about to expire): the pool replaces it. The age comes from the pool's
//! clock, which a current-thread runtime takes from tokio's pausable clock;
//! it is paused only between the HTTP exchanges, whose own timeouts must
//! not run on it.

mod common;

use std::time::Duration;

#[tokio::test(flavor = "current_thread")]
async fn a_session_past_its_lifetime_is_replaced() {
    let Some(server) = common::Fakesnow::start() else {
        return;
    };
    let mut cfg = server.config();
    cfg.session_lifetime = Duration::from_secs(20 * 60);
    let pool = common::pool(cfg, 1);
    assert_eq!(
        pool.config().max_lifetime,
        Some(Duration::from_secs(20 * 60))
    );
    let conn = pool.get().await.unwrap();
    assert_eq!(common::insert(&conn, 1).await, 1);
    drop(conn);
    let before = server.logins();

    tokio::time::pause();
    tokio::time::advance(Duration::from_secs(20 * 60)).await;
    tokio::time::resume();

    let conn = pool.get().await.unwrap();
    assert_eq!(common::insert(&conn, 2).await, 1);
    let counters = pool.counters();
    assert_eq!(counters.created, 2, "{counters:?}");
    assert_eq!(
        counters.closed.error + counters.closed.max_lifetime,
        1,
        "{counters:?}"
    );
    assert_eq!(server.logins() - before, 1);
}

#[tokio::test(flavor = "current_thread")]
async fn the_checkout_check_alone_refuses_an_old_session() {
    let Some(server) = common::Fakesnow::start() else {
        return;
    };
    let mut cfg = server.config();
    cfg.session_lifetime = Duration::from_secs(20 * 60);
    // No max_lifetime: only the manager's check before checkout can catch it.
    let pool = tidepool_snowflake::SnowflakeManager::new(cfg)
        .unwrap()
        .pool_builder()
        .max_lifetime(None)
        .max_size(1)
        .validation(tidepool::Validation::Never)
        .keepalive_interval(None)
        .build()
        .unwrap();
    drop(pool.get().await.unwrap());

    tokio::time::pause();
    tokio::time::advance(Duration::from_secs(20 * 60)).await;
    tokio::time::resume();

    let conn = pool.get().await.unwrap();
    assert_eq!(common::insert(&conn, 1).await, 1);
    let counters = pool.counters();
    assert_eq!(
        (counters.created, counters.closed.error),
        (2, 1),
        "{counters:?}"
    );
}

#[test]
fn the_default_lifetime_is_fifty_minutes_and_under_the_token_hour() {
    assert_eq!(
        tidepool_snowflake::DEFAULT_SESSION_LIFETIME,
        Duration::from_secs(50 * 60)
    );
    assert!(
        tidepool_snowflake::DEFAULT_SESSION_LIFETIME < tidepool_snowflake::SESSION_TOKEN_VALIDITY
    );
}
