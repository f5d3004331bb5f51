//! Sessions and the query gateway on SQLite: create, schema (cached),
//! query, delete, stats; ownership, expiry, connection descriptions, the
//! allow-list, and every error path.

mod common;

use std::time::Duration;

use axum::http::{Method, StatusCode};
use common::*;
use serde_json::json;
use tidepool_http::Settings;

#[tokio::test]
async fn create_returns_a_uuid_v4_and_an_expiry() {
    let app = app().await;
    let r = admin_post(&app, "/api/v1/sessions", Some(r#"{"pool":"demo"}"#)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let id = uuid::Uuid::parse_str(r.json["session_id"].as_str().unwrap()).unwrap();
    assert_eq!(id.get_version_num(), 4);
    assert!(r.json["expires_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(r.json["backend"], "sqlite");
}

#[tokio::test]
async fn create_refuses_bad_requests() {
    let app = app().await;
    admin_post(&app, "/api/v1/sessions", Some(r#"{"pool":"nope"}"#))
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    admin_post(&app, "/api/v1/sessions", Some(r#"{}"#))
        .await
        .assert_error(StatusCode::BAD_REQUEST, "bad_request");
    admin_post(
        &app,
        "/api/v1/sessions",
        Some(r#"{"pool":"demo","url":"x"}"#),
    )
    .await
    .assert_error(StatusCode::BAD_REQUEST, "bad_request");
    admin_post(&app, "/api/v1/sessions", Some(r#"{"pool":7}"#))
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body");
    admin_post(&app, "/api/v1/sessions", Some(r#"{"pool""#))
        .await
        .assert_error(StatusCode::BAD_REQUEST, "malformed_json");
    admin_post(
        &app,
        "/api/v1/sessions",
        Some(r#"{"backend":"oracle","url":"oracle://u:pw-secret-1@h/x"}"#),
    )
    .await
    .assert_error(StatusCode::FORBIDDEN, "forbidden");
    send(
        &app,
        Method::POST,
        "/api/v1/sessions",
        None,
        Some(r#"{"pool":"demo"}"#),
    )
    .await
    .assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
}

#[tokio::test]
async fn schema_lists_tables_and_is_cached() {
    let app = app().await;
    let id = session(&app).await;
    let r = admin_get(&app, &format!("/api/v1/sessions/{id}/schema")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["cached"], false);
    let people = &r.json["tables"][0];
    assert_eq!(people["name"], "people");
    assert_eq!(
        people["columns"][0],
        json!({"name":"id","type":"INTEGER","nullable":true,"primary_key":true})
    );
    assert_eq!(people["columns"][1]["nullable"], false);
    let again = admin_get(&app, &format!("/api/v1/sessions/{id}/schema")).await;
    assert_eq!(again.json["cached"], true);
    assert_eq!(again.json["tables"], r.json["tables"]);
}

#[tokio::test]
async fn query_returns_columns_rows_and_timing() {
    let app = app().await;
    let id = session(&app).await;
    let path = format!("/api/v1/sessions/{id}/query");
    let r = admin_post(&app, &path, Some(r#"{"sql":"SELECT id, name, score FROM people WHERE score > ?1 OR score IS NULL ORDER BY id","params":[8.5]}"#)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["columns"], json!(["id", "name", "score"]));
    assert_eq!(r.json["rows"], json!([[1, "ada", 9.5], [3, "alan", null]]));
    assert_eq!(r.json["row_count"], 2);
    assert!(r.json["elapsed_ms"].as_f64().unwrap() >= 0.0);

    let w = admin_post(
        &app,
        &path,
        Some(r#"{"sql":"UPDATE people SET score = ?1 WHERE name = ?2","params":[7, "grace"]}"#),
    )
    .await;
    assert_eq!(w.json["rows_affected"], 1, "{}", w.text);
    let blob = admin_post(
        &app,
        &path,
        Some(r#"{"sql":"SELECT x'00ff', true, 2.5e0, NULL"}"#),
    )
    .await;
    assert_eq!(blob.json["rows"], json!([["\\x00ff", 1, 2.5, null]]));
}

#[tokio::test]
async fn query_errors_are_400_and_the_server_keeps_serving() {
    let app = app().await;
    let id = session(&app).await;
    let path = format!("/api/v1/sessions/{id}/query");
    let r = admin_post(&app, &path, Some(r#"{"sql":"SELEC nonsense"}"#)).await;
    r.assert_error(StatusCode::BAD_REQUEST, "sql_error");
    assert!(
        r.json["detail"].as_str().unwrap().contains("syntax"),
        "{}",
        r.text
    );
    admin_post(
        &app,
        &path,
        Some(r#"{"sql":"SELECT * FROM missing_table"}"#),
    )
    .await
    .assert_error(StatusCode::BAD_REQUEST, "sql_error");
    admin_post(&app, &path, Some(r#"{"sql":"SELECT ?1, ?2","params":[1]}"#))
        .await
        .assert_error(StatusCode::BAD_REQUEST, "bad_parameter");
    admin_post(&app, &path, Some(r#"{"sql":"   "}"#))
        .await
        .assert_error(StatusCode::BAD_REQUEST, "bad_request");
    admin_post(&app, &path, Some(r#"{"sql":42}"#))
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body");
    admin_post(&app, &path, Some(r#"{"params":[]}"#))
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body");
    let ok = admin_post(&app, &path, Some(r#"{"sql":"SELECT 1"}"#)).await;
    assert_eq!(ok.json["rows"], json!([[1]]));
    let stats = admin_get(&app, "/api/v1/sessions/stats").await;
    assert_eq!(stats.json["query_errors"], 3, "{}", stats.text);
    assert_eq!(stats.json["queries"], 4);
}

#[tokio::test]
async fn rows_past_the_limit_are_dropped_and_flagged() {
    let mut settings = Settings::default();
    settings.max_rows = 5;
    let app = tidepool_http::router(state_with(settings).await.0);
    let id = session(&app).await;
    let r = admin_post(&app, &format!("/api/v1/sessions/{id}/query"), Some(r#"{"sql":"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100) SELECT i FROM n"}"#)).await;
    assert_eq!(r.json["row_count"], 5, "{}", r.text);
    assert_eq!(r.json["truncated"], true);
}

#[tokio::test]
async fn a_statement_past_its_timeout_is_cancelled_with_408() {
    let mut settings = Settings::default();
    settings.statement_timeout = Duration::from_millis(200);
    let app = tidepool_http::router(state_with(settings).await.0);
    let id = session(&app).await;
    let path = format!("/api/v1/sessions/{id}/query");
    let started = std::time::Instant::now();
    let r = admin_post(&app, &path, Some(r#"{"sql":"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT count(*) FROM n"}"#)).await;
    r.assert_error(StatusCode::REQUEST_TIMEOUT, "timeout");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the query was interrupted"
    );
    let ok = admin_post(&app, &path, Some(r#"{"sql":"SELECT 2"}"#)).await;
    assert_eq!(ok.json["rows"], json!([[2]]), "{}", ok.text);
}

#[tokio::test]
async fn sessions_belong_to_their_token_and_end_on_delete() {
    let app = app().await;
    let id = session(&app).await;
    let schema = format!("/api/v1/sessions/{id}/schema");
    send(&app, Method::GET, &schema, Some(OTHER_TOKEN), None)
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");
    send(
        &app,
        Method::DELETE,
        &format!("/api/v1/sessions/{id}"),
        Some(OTHER_TOKEN),
        None,
    )
    .await
    .assert_error(StatusCode::FORBIDDEN, "forbidden");
    let r = send(
        &app,
        Method::DELETE,
        &format!("/api/v1/sessions/{id}"),
        Some(TOKEN),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let gone = admin_get(&app, &schema).await;
    gone.assert_error(StatusCode::UNAUTHORIZED, "session_unknown");
    assert!(
        gone.json["detail"]
            .as_str()
            .unwrap()
            .contains("unknown or expired")
    );
    admin_get(&app, "/api/v1/sessions/not-a-uuid/schema")
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "session_unknown");
    let stats = admin_get(&app, "/api/v1/sessions/stats").await;
    assert_eq!(
        (
            stats.json["created"].as_u64(),
            stats.json["deleted"].as_u64(),
            stats.json["active"].as_u64()
        ),
        (Some(1), Some(1), Some(0))
    );
}

#[tokio::test(start_paused = true)]
async fn sessions_expire_after_the_sliding_ttl() {
    let mut settings = Settings::default();
    settings.session_ttl = Duration::from_secs(60);
    let (state, _pool) = state_with(settings).await;
    let app = tidepool_http::router(state.clone());
    let id = session(&app).await;
    let other = session(&app).await;
    tokio::time::advance(Duration::from_secs(50)).await;
    let stats = admin_get(&app, "/api/v1/sessions/stats").await;
    assert_eq!(stats.json["active"], 2);
    let r = send(
        &app,
        Method::DELETE,
        &format!("/api/v1/sessions/{other}"),
        Some(OTHER_TOKEN),
        None,
    )
    .await;
    r.assert_error(StatusCode::FORBIDDEN, "forbidden"); // a refused use does not extend it
    tokio::time::advance(Duration::from_secs(15)).await;
    // 65 s unused: expired, and said so.
    admin_get(&app, &format!("/api/v1/sessions/{id}/schema"))
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "session_expired");
    // The background clean-up removes the other one.
    state.clean_up().await;
    let stats = admin_get(&app, "/api/v1/sessions/stats").await;
    assert_eq!(stats.json["active"], 0);
    assert_eq!(stats.json["expired"], 2, "{}", stats.text);
}

#[tokio::test]
async fn a_connection_description_makes_a_removable_pool() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("adhoc.db");
    let (state, _pool) = state_with(sqlite_descriptions(dir.path())).await;
    let app = tidepool_http::router(state.clone());
    let body = json!({"backend": "sqlite", "url": db.display().to_string()}).to_string();
    let r = admin_post(&app, "/api/v1/sessions", Some(&body)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let pool = r.json["pool"].as_str().unwrap().to_owned();
    assert!(pool.starts_with("session-sqlite-"));
    assert!(state.registry().handle(&pool).is_some());
    let id = r.json["session_id"].as_str().unwrap();
    let q = admin_post(
        &app,
        &format!("/api/v1/sessions/{id}/query"),
        Some(r#"{"sql":"CREATE TABLE t (x INTEGER)"}"#),
    )
    .await;
    assert_eq!(q.status, StatusCode::OK, "{}", q.text);
    // The same description shares the pool.
    let again = admin_post(&app, "/api/v1/sessions", Some(&body)).await;
    assert_eq!(again.json["pool"], pool.as_str());
    let listed = admin_get(&app, "/api/v1/pools").await;
    assert_eq!(listed.json["count"], 2);
    let anonymous = get(&app, "/api/v1/pools").await;
    assert_eq!(
        anonymous.json["count"], 1,
        "on-demand pools are their tenant's"
    );
}

#[tokio::test]
async fn descriptions_can_be_refused_or_restricted() {
    let app = tidepool_http::router(state_with(Settings::default()).await.0);
    admin_post(
        &app,
        "/api/v1/sessions",
        Some(r#"{"backend":"sqlite","url":"/tmp/x.db"}"#),
    )
    .await
    .assert_error(StatusCode::FORBIDDEN, "forbidden");

    let settings = postgres_descriptions("db", 5432, "x", "reporting");
    let app = tidepool_http::router(state_with(settings).await.0);
    let r = admin_post(
        &app,
        "/api/v1/sessions",
        Some(r#"{"backend":"postgres","url":"postgres://admin:pw-not-allowed@db/x"}"#),
    )
    .await;
    r.assert_error(StatusCode::FORBIDDEN, "forbidden");
    assert!(!r.text.contains("pw-not-allowed"));
}

#[tokio::test]
async fn a_failing_connection_is_400_without_its_password() {
    let port = tidepool_testkit::closed_port();
    let settings = postgres_descriptions("127.0.0.1", port, "db", "app");
    let app = tidepool_http::router(state_with(settings).await.0);
    let body = json!({"backend":"postgres","url":format!("postgres://app:pw-s3cret-value@127.0.0.1:{port}/db")}).to_string();
    let r = admin_post(&app, "/api/v1/sessions", Some(&body)).await;
    r.assert_error(StatusCode::BAD_REQUEST, "connection_failed");
    assert!(!r.text.contains("pw-s3cret-value"), "{}", r.text);
    let bad_url = admin_post(
        &app,
        "/api/v1/sessions",
        Some(r#"{"backend":"postgres","url":"postgres://app:pw-s3cret-value/db"}"#),
    )
    .await;
    bad_url.assert_error(StatusCode::BAD_REQUEST, "bad_request");
    assert!(
        !bad_url.text.contains("pw-s3cret-value"),
        "{}",
        bad_url.text
    );
}

#[tokio::test]
async fn the_server_wide_session_limit_holds_across_tenants() {
    let mut settings = Settings::default();
    settings.max_sessions = 2;
    let app = tidepool_http::router(state_with(settings).await.0);
    session(&app).await;
    let other = send(
        &app,
        Method::POST,
        "/api/v1/sessions",
        Some(OTHER_TOKEN),
        Some(r#"{"pool":"demo"}"#),
    )
    .await;
    assert_eq!(other.status, StatusCode::CREATED, "{}", other.text);
    let full = admin_post(&app, "/api/v1/sessions", Some(r#"{"pool":"demo"}"#)).await;
    full.assert_error(StatusCode::TOO_MANY_REQUESTS, "too_many_sessions");
    assert!(
        full.json["detail"].as_str().unwrap().contains("2 sessions"),
        "{}",
        full.text
    );
}
