//! A connection whose server went away is never handed out again: the
//! pool replaces it.
//!
//! The mock server cannot kill one session, so it is killed whole (every
//! socket closes, as when a server crashes) and started again on the same
//! port. On a real server one session is killed with `KILL`.

mod common;

use tidepool::Validation;

#[tokio::test]
async fn an_idle_connection_to_a_dead_server_fails_validation_and_is_replaced() {
    let mut server = common::MockServer::start().await;
    let pool = tidepool::Pool::builder(tidepool_mssql::MssqlManager::new(common::mock_config(
        server.addr(),
    )))
    .max_size(1)
    .validation(Validation::Always)
    .build()
    .unwrap();
    drop(pool.get().await.unwrap());
    common::settled(&pool).await;

    server.restart().await;
    let mut conn = pool.get().await.expect("a replacement");
    assert_eq!(common::scalar(&mut conn, "SELECT 1").await, Some(1));
    let counters = pool.counters();
    // Caught by the free broken check if the driver already saw the socket
    // close, else by the ping.
    assert_eq!(
        counters.closed.failed_validation + counters.closed.broken,
        1,
        "{counters:?}"
    );
    assert_eq!(counters.created, 2);
}

#[tokio::test]
async fn a_connection_that_broke_in_use_is_closed_on_return() {
    let mut server = common::MockServer::start().await;
    let pool = common::pool(common::mock_config(server.addr()), 1);
    let mut conn = pool.get().await.unwrap();
    assert_eq!(common::scalar(&mut conn, "SELECT 1").await, Some(1));

    server.restart().await;
    let err = conn
        .simple_query("SELECT 1")
        .await
        .map(drop)
        .expect_err("the server closed the connection");
    assert!(conn.is_closed(), "the end was seen: {err}");
    drop(conn);
    common::settled(&pool).await;
    assert_eq!(pool.counters().closed.broken, 1);

    let mut conn = pool.get().await.unwrap();
    assert_eq!(common::scalar(&mut conn, "SELECT 1").await, Some(1));
    assert_eq!(pool.counters().created, 2);
}

#[tokio::test]
async fn a_killed_session_is_replaced_on_a_real_server() {
    let Some(cfg) = common::real_config("killed") else {
        return;
    };
    let pool = tidepool::Pool::builder(tidepool_mssql::MssqlManager::new(cfg))
        .max_size(2)
        .validation(Validation::Always)
        .build()
        .unwrap();
    let mut victim = pool.get().await.unwrap();
    let spid = common::spid(&mut victim).await;
    let mut killer = pool.get().await.unwrap();
    drop(victim);
    common::settled(&pool).await;
    common::exec(&mut killer, format!("KILL {spid}")).await;
    drop(killer);
    common::settled(&pool).await;

    for _ in 0..2 {
        let mut conn = pool.get().await.expect("a live connection");
        assert_ne!(common::spid(&mut conn).await, spid);
    }
    assert!(pool.counters().closed.failed_validation >= 1);
}
