//! The request timeout (tower-http's `TimeoutLayer` in the router): a
//! request still running after `request_timeout` is cancelled and answered
//! with 408 and a JSON `{error, detail}` body, and leaves no lost capacity.

mod common;

use std::time::Duration;

use axum::http::StatusCode;
use common::*;
use serde_json::json;
use tidepool_http::Settings;

/// The paused clock makes this exact: the query waits for a connection
/// (both are held here) far longer than the request may take, so only the
/// request timeout can end it.
#[tokio::test(start_paused = true)]
async fn a_request_past_the_request_timeout_is_408_json() {
    let mut settings = Settings::default();
    settings.request_timeout = Duration::from_millis(300);
    settings.statement_timeout = Duration::from_secs(3600);
    let (state, pool) = state_with(settings).await;
    let app = tidepool_http::router(state);
    let id = session(&app).await;
    let path = format!("/api/v1/sessions/{id}/query");
    let held = (pool.get().await.unwrap(), pool.get().await.unwrap());
    assert_eq!(pool.gauges().in_use, 2);

    let started = tokio::time::Instant::now();
    let r = tokio::time::timeout(
        Duration::from_secs(60),
        admin_post(&app, &path, Some(r#"{"sql":"SELECT 1"}"#)),
    )
    .await
    .expect("the request was not cut off by the request timeout");
    r.assert_error(StatusCode::REQUEST_TIMEOUT, "timeout");
    assert_eq!(
        r.json["detail"], "the request took too long and was cancelled",
        "the 408 comes from the request timeout, not the statement's: {}",
        r.text
    );
    assert_eq!(
        r.json.as_object().unwrap().len(),
        2,
        "exactly {{error, detail}}: {}",
        r.text
    );
    assert_eq!(started.elapsed(), Duration::from_millis(300));
    assert_eq!(
        pool.gauges().waiting,
        0,
        "the cancelled wait left the queue"
    );

    drop(held);
    let ok = admin_post(&app, &path, Some(r#"{"sql":"SELECT 2"}"#)).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    assert_eq!(ok.json["rows"], json!([[2]]));
}
