//! A returned session serves the next caller: one login for many gets.

mod common;

#[tokio::test]
async fn one_login_serves_sequential_gets_on_fakesnow() {
    let Some(server) = common::Fakesnow::start() else {
        return;
    };
    let before = server.logins();
    let pool = common::pool(server.config(), 4);
    for id in 0..5 {
        let conn = pool.get().await.expect("a session");
        assert_eq!(common::insert(&conn, id).await, 1);
    }
    assert_eq!(server.logins() - before, 1, "one session for five gets");
    assert_eq!(pool.counters().created, 1);
    assert_eq!(server.rows(), 5);
}

#[tokio::test]
async fn the_same_session_serves_sequential_gets_on_a_real_account() {
    let Some(cfg) = common::real_config("reuse") else {
        return;
    };
    let pool = tidepool_snowflake::SnowflakeManager::new(cfg)
        .unwrap()
        .pool_builder()
        .max_size(4)
        .build()
        .unwrap();
    let first = common::current_session(&pool.get().await.unwrap()).await;
    let second = common::current_session(&pool.get().await.unwrap()).await;
    assert_eq!(first, second);
}
