//! A returned connection is handed to the next caller: one login serves
//! many gets.

mod common;

#[tokio::test]
async fn one_login_serves_sequential_gets_on_the_mock_server() {
    let server = common::MockServer::start().await;
    let pool = common::pool(common::mock_config(server.addr()), 4);
    for _ in 0..5 {
        let mut conn = pool.get().await.expect("a connection");
        assert_eq!(common::scalar(&mut conn, "SELECT 1").await, Some(1));
        drop(conn);
        common::settled(&pool).await;
    }
    assert_eq!(server.logins().await, 1);
    let counters = pool.counters();
    assert_eq!(counters.created, 1);
    assert_eq!(counters.gets, 5);
}

#[tokio::test]
async fn the_same_session_serves_sequential_gets_on_a_real_server() {
    let Some(cfg) = common::real_config("reuse") else {
        return;
    };
    let pool = common::pool(cfg, 4);
    let mut conn = pool.get().await.unwrap();
    let first = common::spid(&mut conn).await;
    drop(conn);
    common::settled(&pool).await;
    let mut conn = pool.get().await.unwrap();
    assert_eq!(common::spid(&mut conn).await, first);
}
