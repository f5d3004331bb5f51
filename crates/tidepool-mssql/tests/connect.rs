//! A pool opens a connection, logs in and runs a query: against Microsoft's
//! mock TDS server always, and against a real SQL Server when
//! `TIDEPOOL_MSSQL_ADDR` is set.

mod common;

use mssql_mock_tds::{ColumnDefinition, ColumnValue, QueryResponse, Row, SqlDataType};

#[tokio::test]
async fn a_pooled_connection_runs_a_query_on_the_mock_server() {
    let server = common::MockServer::start().await;
    server
        .register(
            "SELECT ID, NAME FROM PEOPLE",
            QueryResponse::new(
                vec![
                    ColumnDefinition::new("id", SqlDataType::BigInt),
                    ColumnDefinition::new("name", SqlDataType::NVarChar),
                ],
                vec![Row::new(vec![
                    ColumnValue::BigInt(7),
                    ColumnValue::NVarChar("Ada".to_owned()),
                ])],
            ),
        )
        .await;
    let pool = common::pool(common::mock_config(server.addr()), 2);

    let mut conn = pool.get().await.expect("a connection");
    assert_eq!(common::scalar(&mut conn, "SELECT 1").await, Some(1));
    let row = conn
        .simple_query("SELECT ID, NAME FROM PEOPLE")
        .await
        .unwrap()
        .into_row()
        .await
        .unwrap()
        .expect("a row");
    assert_eq!(row.get::<i64, _>("id"), Some(7));
    assert_eq!(row.get::<&str, _>("name"), Some("Ada"));
    drop(conn);

    assert_eq!(server.logins().await, 1);
    assert_eq!(pool.counters().created, 1);
}

#[tokio::test]
async fn a_pooled_connection_runs_a_query_on_a_real_server() {
    let Some(cfg) = common::real_config("connect") else {
        return;
    };
    let pool = common::pool(cfg, 2);
    let mut conn = pool.get().await.expect("a connection");
    assert_eq!(common::scalar(&mut conn, "SELECT 1 + 1").await, Some(2));
    let row = conn
        .query("SELECT @P1 AS greeting", &[&"hello"])
        .await
        .unwrap()
        .into_row()
        .await
        .unwrap()
        .expect("a row");
    assert_eq!(row.get::<&str, _>("greeting"), Some("hello"));
}
