//! A session the server no longer knows (fakesnow restarted and forgot it,
//! as Snowflake forgets an expired or aborted one) fails its query, is
//! marked broken and closed on return; the next caller gets a new session.

mod common;

#[tokio::test]
async fn a_forgotten_session_is_replaced_on_fakesnow() {
    let Some(mut server) = common::Fakesnow::start() else {
        return;
    };
    let pool = common::pool(server.config(), 1);
    let conn = pool.get().await.unwrap();
    assert_eq!(common::insert(&conn, 1).await, 1);
    drop(conn);

    server.restart();
    let before = server.logins();
    let conn = pool.get().await.unwrap();
    let err = conn
        .query("INSERT INTO EVENTS (ID) VALUES (2)")
        .await
        .map(drop)
        .expect_err("the server forgot the session");
    assert!(conn.is_broken(), "{err}");
    assert!(err.to_string().contains("390104"), "{err}");
    drop(conn);
    assert_eq!(pool.counters().closed.broken, 1);

    let conn = pool.get().await.unwrap();
    assert_eq!(common::insert(&conn, 3).await, 1);
    assert_eq!(server.logins() - before, 1, "a new login");
    assert_eq!(pool.counters().created, 2);
}

#[tokio::test]
async fn validation_finds_a_forgotten_session_on_a_real_account() {
    let Some(cfg) = common::real_config("killed") else {
        return;
    };
    // Snowflake ends a session on `SYSTEM$ABORT_SESSION` (from another
    // session of the same user).
    let pool = tidepool_snowflake::SnowflakeManager::new(cfg)
        .unwrap()
        .pool_builder()
        .max_size(2)
        .validation(tidepool::Validation::Always)
        .build()
        .unwrap();
    let victim = pool.get().await.unwrap();
    let id = common::current_session(&victim).await;
    let killer = pool.get().await.unwrap();
    drop(victim);
    killer
        .query(format!("SELECT SYSTEM$ABORT_SESSION({id})"))
        .await
        .unwrap()
        .collect_table()
        .await
        .unwrap();
    drop(killer);
    for _ in 0..2 {
        let conn = pool.get().await.expect("a live session");
        assert_ne!(common::current_session(&conn).await, id);
    }
}
