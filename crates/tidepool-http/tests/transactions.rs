//! The transaction endpoint on SQLite: its statement limit, and what a
//! read-only gateway does with a transaction.

mod common;

use std::sync::Arc;

use axum::http::StatusCode;
use common::*;
use serde_json::json;
use tidepool_http::gateway::SqliteGateway;
use tidepool_http::{AppState, Settings};

#[tokio::test]
async fn a_transaction_takes_at_most_max_transaction_statements() {
    let mut settings = Settings::default();
    settings.max_transaction_statements = 3;
    let (state, _pool) = state_with(settings).await;
    let app = tidepool_http::router(state);
    let id = session(&app).await;
    let path = format!("/api/v1/sessions/{id}/transaction");
    let three = json!({"statements": [["SELECT 1", []], ["SELECT 2", []], {"sql": "SELECT ?1", "params": [3]}]});
    let r = admin_post(&app, &path, Some(&three.to_string())).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["results"][2]["rows"], json!([[3]]));
    let four = json!({"statements": [["SELECT 1", []], ["SELECT 2", []], ["SELECT 3", []], ["SELECT 4", []]]});
    admin_post(&app, &path, Some(&four.to_string()))
        .await
        .assert_error(StatusCode::BAD_REQUEST, "bad_request");
    admin_post(&app, &path, Some(r#"{"statements": []}"#))
        .await
        .assert_error(StatusCode::BAD_REQUEST, "bad_request");
}

#[tokio::test]
async fn a_read_only_gateway_rolls_every_transaction_back() {
    let registry = Arc::new(tidepool::Registry::new());
    let pool = sqlite_pool("ro").await;
    registry.insert(pool.clone()).unwrap();
    let state = AppState::builder(registry)
        .token(TOKEN)
        .gateway("ro", Arc::new(SqliteGateway::new(pool)))
        .build();
    let app = tidepool_http::router(state);
    let r = admin_post(&app, "/api/v1/sessions", Some(r#"{"pool":"ro"}"#)).await;
    assert_eq!(r.json["mode"], "read_only", "the default");
    let id = r.json["session_id"].as_str().unwrap();
    let path = format!("/api/v1/sessions/{id}/transaction");
    let read = json!({"statements": [["SELECT count(*) FROM people", []]]});
    let r = admin_post(&app, &path, Some(&read.to_string())).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["committed"], false);
    let write = json!({"statements": [["SELECT 1", []], ["DELETE FROM people", []]]});
    let r = admin_post(&app, &path, Some(&write.to_string())).await;
    r.assert_error(StatusCode::FORBIDDEN, "not_authorized");
    assert!(
        r.json["detail"]
            .as_str()
            .unwrap()
            .contains("statement 2 of 2"),
        "{}",
        r.text
    );
    let count = admin_post(
        &app,
        &format!("/api/v1/sessions/{id}/query"),
        Some(r#"{"sql":"SELECT count(*) FROM people"}"#),
    )
    .await;
    assert_eq!(count.json["rows"], json!([[3]]));
}
