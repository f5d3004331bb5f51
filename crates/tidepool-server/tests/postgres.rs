//! The real server with a PostgreSQL-backed configuration (127.0.0.1:5432,
//! user postgres, trust auth, database test).

mod common;

use common::{Server, pg_admin, pg_plain_role};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_pool_is_served_monitored_and_queryable() {
    let Some((admin, addr)) = pg_admin().await else {
        return;
    };
    pg_plain_role(&admin, "tp_gw_served", "served_t").await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tidepool.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[server]
tokens = ["${{PG_TEST_TOKEN}}"]
statement_timeout = "2s"

[pools.main]
backend = "postgres"
url = "postgres://tp_gw_served:${{PG_TEST_PASSWORD}}@{addr}/test?application_name=tidepool-test"
max_size = 3
min_idle = 1
"#
        ),
    )
    .unwrap();
    let token = "pg-test-token-0123456789abcdef";
    let server = Server::start(
        dir.path(),
        &["--config", config.to_str().unwrap()],
        &[
            ("PG_TEST_TOKEN", token),
            ("PG_TEST_PASSWORD", "unused-with-trust"),
        ],
    )
    .await;

    let db = server.call("GET", "/health/db", None, None).await;
    assert_eq!(db.status, 200, "{}", db.body);
    assert_eq!(db.json["pools"]["main"]["ok"], true);
    let one = server.call("GET", "/api/v1/pools/main", None, None).await;
    assert_eq!(one.json["backend"], "postgres");
    assert_eq!(one.json["gauges"]["max_size"], 3);

    let id = server.open_session(token, "main").await;
    let q = json!({"sql": "SELECT current_setting('application_name') AS app, $1::int + 1 AS n", "params": [41]});
    let r = server
        .call(
            "POST",
            &format!("/api/v1/sessions/{id}/query"),
            Some(token),
            Some(&q.to_string()),
        )
        .await;
    assert_eq!(r.json["rows"], json!([["tidepool-test", 42]]), "{}", r.body);
    let slow = server
        .call(
            "POST",
            &format!("/api/v1/sessions/{id}/query"),
            Some(token),
            Some(r#"{"sql":"SELECT pg_sleep(20)"}"#),
        )
        .await;
    assert_eq!(
        (slow.status, slow.json["error"].as_str()),
        (408, Some("timeout")),
        "{}",
        slow.body
    );
    let schema = server
        .call(
            "GET",
            &format!("/api/v1/sessions/{id}/schema"),
            Some(token),
            None,
        )
        .await;
    assert_eq!(schema.status, 200, "{}", schema.body);

    let resize = server
        .call(
            "POST",
            "/api/v1/pools/main/resize",
            Some(token),
            Some(r#"{"max_size":5}"#),
        )
        .await;
    assert_eq!(resize.status, 200);
    let metrics = server.call("GET", "/metrics", None, None).await;
    assert!(
        metrics
            .body
            .contains("tidepool_pool_max_connections{pool=\"main\"} 5"),
        "{}",
        metrics.body
    );
    let config = server
        .call("GET", "/api/v1/config", Some(token), None)
        .await;
    assert_eq!(config.status, 200);
    assert!(
        !config.body.contains("unused-with-trust") && !config.body.contains(token),
        "{}",
        config.body
    );

    let (status, log) = server.terminate().await;
    assert!(status.success(), "{log}");
    assert!(log.contains("draining pools"), "{log}");
}
