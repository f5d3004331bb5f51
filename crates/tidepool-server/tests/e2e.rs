//! The real binary with the bundled default configuration: first run
//! creates the sample database and the token file; a client walks session →
//! schema → query → stats → metrics over HTTP; SIGTERM stops it with exit 0.

mod common;

use common::Server;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_config_serves_the_demo_database_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[], &[]).await;
    assert!(dir.path().join("data/demo.db").exists());
    let token = std::fs::read_to_string(dir.path().join("data/admin-token")).unwrap();
    let token = token.trim();
    assert!(token.len() >= 32);
    let log = server.log_text();
    assert!(
        log.contains(&format!("listening on http://{}", server.addr)),
        "{log}"
    );
    assert!(!log.contains(token), "the token was logged");

    let pools = server.call("GET", "/api/v1/pools", None, None).await;
    assert_eq!(pools.status, 200);
    assert_eq!(pools.json["pools"][0]["name"], "demo");

    let id = server.open_session(token, "demo").await;

    let schema = server
        .call(
            "GET",
            &format!("/api/v1/sessions/{id}/schema"),
            Some(token),
            None,
        )
        .await;
    assert_eq!(schema.status, 200, "{}", schema.body);
    let names: Vec<&str> = schema.json["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["employees", "scores"]);

    let q = json!({
        "sql": "SELECT e.name, s.score FROM employees e JOIN scores s ON s.employee_id = e.id \
                WHERE s.quarter = ?1 ORDER BY s.score DESC LIMIT 2",
        "params": ["2024-Q2"]
    });
    let rows = server
        .call(
            "POST",
            &format!("/api/v1/sessions/{id}/query"),
            Some(token),
            Some(&q.to_string()),
        )
        .await;
    assert_eq!(rows.status, 200, "{}", rows.body);
    assert_eq!(rows.json["columns"], json!(["name", "score"]));
    assert_eq!(
        rows.json["rows"],
        json!([["Grace Hopper", 97], ["Ada Lovelace", 94]])
    );
    assert_eq!(rows.json["row_count"], 2);
    assert!(rows.json["elapsed_ms"].is_number());

    // The bundled demo is read-only through the gateway.
    let write = server
        .call(
            "POST",
            &format!("/api/v1/sessions/{id}/query"),
            Some(token),
            Some(r#"{"sql":"UPDATE employees SET salary = 0"}"#),
        )
        .await;
    assert_eq!(write.status, 403, "{}", write.body);
    assert_eq!(write.json["error"], "not_authorized", "{}", write.body);

    let stats = server
        .call("GET", "/api/v1/sessions/stats", Some(token), None)
        .await;
    assert_eq!(
        (
            stats.json["active"].as_u64(),
            stats.json["queries"].as_u64()
        ),
        (Some(1), Some(2))
    );

    let metrics = server.call("GET", "/metrics", None, None).await;
    assert_eq!(metrics.status, 200);
    assert!(
        metrics
            .body
            .contains("tidepool_pool_connections{pool=\"demo\",state=\"idle\"}"),
        "{}",
        metrics.body
    );
    assert!(
        metrics
            .body
            .contains("tidepool_pool_acquire_wait_seconds_bucket")
    );
    assert!(metrics.body.contains("tidepool_sessions_active 1"));

    let deleted = server
        .call(
            "DELETE",
            &format!("/api/v1/sessions/{id}"),
            Some(token),
            None,
        )
        .await;
    assert_eq!(deleted.status, 204);
    let gone = server
        .call(
            "GET",
            &format!("/api/v1/sessions/{id}/schema"),
            Some(token),
            None,
        )
        .await;
    assert_eq!(gone.status, 401);

    let (status, log) = server.terminate().await;
    assert!(status.success(), "exit {status:?}\n{log}");
    assert!(log.contains("SIGTERM received"), "{log}");
    assert!(log.contains("stopped"), "{log}");

    // A second run reuses the database and the token.
    let again = Server::start(dir.path(), &[], &[]).await;
    let id = again.open_session(token, "demo").await;
    let count = again
        .call(
            "POST",
            &format!("/api/v1/sessions/{id}/query"),
            Some(token),
            Some(r#"{"sql":"SELECT count(*) FROM scores"}"#),
        )
        .await;
    assert_eq!(
        count.json["rows"],
        json!([[12]]),
        "sample rows are not inserted twice"
    );
    let (status, _) = again.terminate().await;
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_and_help() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tidepool"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains(env!("CARGO_PKG_VERSION")));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tidepool"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("serve") && help.contains("check-config"),
        "{help}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_starts_with_its_token_from_the_environment() {
    // With TIDEPOOL_TOKENS set no token file is written, and the demo
    // database's directory must still be made.
    let dir = tempfile::tempdir().unwrap();
    let token = "env-token-for-the-demo-0123456789";
    let server = Server::start(dir.path(), &[], &[("TIDEPOOL_TOKENS", token)]).await;
    assert!(dir.path().join("data/demo.db").exists());
    assert!(!dir.path().join("data/admin-token").exists());
    let id = server.open_session(token, "demo").await;
    let r = server
        .call(
            "POST",
            &format!("/api/v1/sessions/{id}/query"),
            Some(token),
            Some(r#"{"sql":"SELECT count(*) FROM employees"}"#),
        )
        .await;
    assert_eq!(r.json["rows"], serde_json::json!([[6]]), "{}", r.body);
}
