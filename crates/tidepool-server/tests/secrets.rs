//! Runs the server with configured secrets (tokens, database passwords in
//! URLs, a session's connection URL), drives every endpoint including the
//! failing paths, and greps every response and every log line for the
//! secrets: none may appear.

mod common;

use common::{Reply, Server};
use serde_json::json;

const TOKEN: &str = "tok-SECRET-0123456789abcdef";
const DOWN_PW: &str = "pw-SECRET-down-4242";
const LIVE_PW: &str = "pw-SECRET-live-4242";
const DESC_PW: &str = "pw-SECRET-desc-4242";
const BAD_TOKEN: &str = "guess-SECRET-0123456789";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_appears_in_any_response_or_log_line() {
    let dir = tempfile::tempdir().unwrap();
    let closed = tidepool_testkit::closed_port();
    let pg = tidepool_testkit::env_or("TIDEPOOL_PG_ADDR", "127.0.0.1:5432");
    let live = tidepool_testkit::reachable(&pg);
    let mut toml = format!(
        r#"
[server]
tokens = ["${{SECRET_TOKEN}}"]
statement_timeout = "1s"
acquire_timeout = "1s"

[pools.demo]
backend = "sqlite"
path = "demo.db"

[pools.down]
backend = "postgres"
url = "postgres://app:{DOWN_PW}@127.0.0.1:{closed}/x"
max_retries = 0
acquire_timeout = "500ms"

[descriptions]
enabled = true

[[descriptions.allow]]
backend = "postgres"
host = "127.0.0.1"
port = {closed}
database = "x"
user = "app"
"#
    );
    if live {
        toml.push_str(&format!(
            "\n[pools.live]\nbackend = \"postgres\"\nurl = \"postgres://postgres:{LIVE_PW}@{pg}/test\"\n"
        ));
    }
    let config = dir.path().join("secret.toml");
    std::fs::write(&config, toml).unwrap();
    let server = Server::start(
        dir.path(),
        &["--config", config.to_str().unwrap()],
        &[("SECRET_TOKEN", TOKEN), ("TIDEPOOL_LOG", "trace")],
    )
    .await;

    let mut replies: Vec<Reply> = Vec::new();
    let t = Some(TOKEN);
    for (m, p, tok, body) in [
        ("GET", "/health", None, None),
        ("GET", "/health/db", None, None),
        ("GET", "/metrics", None, None),
        ("GET", "/api/v1/openapi.json", None, None),
        ("GET", "/api/v1/pools", None, None),
        ("GET", "/api/v1/pools/down", None, None),
        ("GET", "/api/v1/pools/health", None, None),
        ("GET", "/api/v1/pools/metrics", None, None),
        ("GET", "/api/v1/pools/down/advice", t, None),
        ("GET", "/api/v1/config", t, None),
        ("GET", "/api/v1/config", Some(BAD_TOKEN), None),
        ("POST", "/api/v1/pools/down/evict", t, None),
        ("POST", "/api/v1/pools/evict-all", t, None),
        (
            "POST",
            "/api/v1/pools/down/resize",
            t,
            Some(r#"{"max_size":"x"}"#),
        ),
        ("POST", "/api/v1/pools/down/pause", t, None),
        ("POST", "/api/v1/pools/down/resume", t, None),
        ("POST", "/api/v1/sessions", t, Some(r#"{"pool":"down"#)),
        ("GET", "/api/v1/sessions/stats", t, None),
    ] {
        replies.push(server.call(m, p, tok, body).await);
    }
    // Sessions whose database fails, and a connection description with a
    // password that cannot connect.
    for pool in ["down", "demo", "live"] {
        let r = server
            .call(
                "POST",
                "/api/v1/sessions",
                t,
                Some(&json!({ "pool": pool }).to_string()),
            )
            .await;
        if let Some(id) = r.json["session_id"].as_str() {
            for sql in ["SELECT 1", "SELEC broken", "SELECT * FROM pg_stat_activity"] {
                let q = json!({ "sql": sql }).to_string();
                replies.push(
                    server
                        .call("POST", &format!("/api/v1/sessions/{id}/query"), t, Some(&q))
                        .await,
                );
            }
            replies.push(
                server
                    .call("GET", &format!("/api/v1/sessions/{id}/schema"), t, None)
                    .await,
            );
            replies.push(
                server
                    .call(
                        "GET",
                        &format!("/api/v1/sessions/{id}/schema"),
                        Some(BAD_TOKEN),
                        None,
                    )
                    .await,
            );
        }
        replies.push(r);
    }
    for url in [
        format!("postgres://app:{DESC_PW}@127.0.0.1:{closed}/x"),
        format!("postgres://app:{DESC_PW}/x"),
        format!("postgres://app:{DESC_PW}@127.0.0.1:{closed}/x?password={DESC_PW}"),
    ] {
        let body = json!({ "backend": "postgres", "url": url }).to_string();
        replies.push(
            server
                .call("POST", "/api/v1/sessions", t, Some(&body))
                .await,
        );
    }
    replies.push(server.call("GET", "/api/v1/pools", None, None).await);
    replies.push(server.call("GET", "/api/v1/config", t, None).await);
    assert!(
        replies.iter().any(|r| r.status == 503),
        "a failing database was exercised"
    );
    assert!(
        replies.iter().any(|r| r.status == 400),
        "bad input was exercised"
    );
    assert!(
        replies
            .iter()
            .any(|r| r.json["error"] == "connection_failed"),
        "an allowed description that cannot connect was exercised"
    );

    let (status, log) = server.terminate().await;
    assert!(status.success(), "{log}");
    assert!(log.lines().count() > 10, "{log}");
    for secret in [TOKEN, DOWN_PW, LIVE_PW, DESC_PW, BAD_TOKEN] {
        for r in &replies {
            assert!(
                !r.head.contains(secret) && !r.body.contains(secret),
                "{secret} in a response: {}",
                r.body
            );
        }
        for line in log.lines() {
            assert!(!line.contains(secret), "{secret} in a log line: {line}");
        }
    }
}
