//! The command timeout (default 30 s, `command_timeout`) bounds a server
//! that stops answering; the connection, left out of step with the server,
//! is not reused.

mod common;

use std::time::Duration;

#[tokio::test]
async fn a_stalled_command_times_out_and_its_connection_is_closed() {
    let server = common::MockServer::start().await;
    server
        .register(
            "SELECT 2",
            common::int_response("two", 2).with_delay(Duration::from_secs(10)),
        )
        .await;
    let cfg =
        common::mock_config(server.addr()).with_command_timeout(Some(Duration::from_millis(200)));
    let pool = common::pool(cfg, 1);

    let mut conn = pool.get().await.unwrap();
    let err = match conn.simple_query("SELECT 2").await {
        Ok(stream) => stream.into_results().await.map(drop).unwrap_err(),
        Err(e) => e,
    };
    assert!(err.to_string().contains("within 200ms"), "{err}");
    drop(conn);
    common::settled(&pool).await;

    let mut conn = pool.get().await.unwrap();
    assert_eq!(common::scalar(&mut conn, "SELECT 1").await, Some(1));
    let counters = pool.counters();
    assert_eq!(counters.created, 2, "{counters:?}");
}

#[test]
fn the_default_command_timeout_is_thirty_seconds() {
    let cfg = tidepool_mssql::MssqlConfig::builder().build().unwrap();
    assert_eq!(cfg.command_timeout(), Some(Duration::from_secs(30)));
    assert_eq!(
        tidepool_mssql::DEFAULT_COMMAND_TIMEOUT,
        Duration::from_secs(30)
    );
}
