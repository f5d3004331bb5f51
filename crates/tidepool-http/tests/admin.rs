//! Admin endpoints: advice, evict, evict-all, resize, pause, resume, config;
//! bearer authentication; bad input of every kind.

mod common;

use std::sync::Arc;

use axum::http::{Method, StatusCode};
use common::*;
use tidepool_http::{AppState, Settings};

#[tokio::test]
async fn admin_endpoints_need_a_valid_bearer_token() {
    let app = app().await;
    let paths = [
        (Method::GET, "/api/v1/pools/demo/advice"),
        (Method::POST, "/api/v1/pools/demo/evict"),
        (Method::POST, "/api/v1/pools/evict-all"),
        (Method::POST, "/api/v1/pools/demo/pause"),
        (Method::POST, "/api/v1/pools/demo/resume"),
        (Method::GET, "/api/v1/config"),
        (Method::GET, "/api/v1/sessions/stats"),
    ];
    for (m, p) in &paths {
        let r = send(&app, m.clone(), p, None, None).await;
        r.assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
        assert!(
            r.json["detail"].as_str().unwrap().contains("Authorization"),
            "{}",
            r.text
        );
        send(
            &app,
            m.clone(),
            p,
            Some("wrong-token-0123456789abcdef"),
            None,
        )
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
    }
    // A scheme other than Bearer.
    let req = axum::http::Request::builder()
        .uri("/api/v1/config")
        .header("authorization", format!("Basic {TOKEN}"))
        .body(axum::body::Body::empty())
        .unwrap();
    let r = reply(tower::ServiceExt::oneshot(app.clone(), req).await.unwrap()).await;
    r.assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
    assert!(!r.text.contains(TOKEN));
}

#[tokio::test]
async fn without_configured_tokens_admin_is_closed() {
    let registry = Arc::new(tidepool::Registry::new());
    let app = tidepool_http::router(AppState::builder(registry).build());
    let r = admin_get(&app, "/api/v1/config").await;
    r.assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
    assert!(
        r.json["detail"]
            .as_str()
            .unwrap()
            .contains("none configured")
    );
}

#[tokio::test]
async fn advice_has_recommendations_and_sizing() {
    let app = app().await;
    let r = admin_get(&app, "/api/v1/pools/demo/advice").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["pool"], "demo");
    assert!(r.json["recommendations"].is_array());
    assert_eq!(r.json["sizing"]["configured_max_size"], 2);
}

#[tokio::test]
async fn evict_pause_resume_act_on_the_pool() {
    let (state, pool) = state_with(Settings::default()).await;
    let app = tidepool_http::router(state);
    assert_eq!(pool.gauges().idle, 1);
    let r = admin_post(&app, "/api/v1/pools/demo/evict", None).await;
    assert_eq!(
        (r.status, r.json["action"].as_str()),
        (StatusCode::OK, Some("evicted"))
    );
    assert_eq!(pool.gauges().idle, 0);
    assert_eq!(pool.stats().counters.closed.evicted, 1);

    admin_post(&app, "/api/v1/pools/demo/pause", None).await;
    assert!(pool.gauges().paused);
    admin_post(&app, "/api/v1/pools/demo/resume", None).await;
    assert!(!pool.gauges().paused);
}

#[tokio::test]
async fn evict_all_names_every_pool() {
    let (state, pool) = state_with(Settings::default()).await;
    let other = sqlite_pool("other").await;
    state.registry().insert(other.clone()).unwrap();
    let app = tidepool_http::router(state);
    let r = admin_post(&app, "/api/v1/pools/evict-all", None).await;
    assert_eq!(r.json["evicted"], serde_json::json!(["demo", "other"]));
    assert_eq!(pool.gauges().idle + other.gauges().idle, 0);
}

#[tokio::test]
async fn resize_changes_max_size_and_refuses_bad_input() {
    let (state, pool) = state_with(Settings::default()).await;
    let app = tidepool_http::router(state);
    let r = admin_post(&app, "/api/v1/pools/demo/resize", Some(r#"{"max_size":5}"#)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["max_size"], 5);
    assert_eq!(pool.gauges().max_size, 5);

    let zero = admin_post(&app, "/api/v1/pools/demo/resize", Some(r#"{"max_size":0}"#)).await;
    zero.assert_error(StatusCode::BAD_REQUEST, "bad_request");
    assert!(zero.json["detail"].as_str().unwrap().contains("max_size"));
    admin_post(
        &app,
        "/api/v1/pools/demo/resize",
        Some(r#"{"max_size":"big"}"#),
    )
    .await
    .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body");
    admin_post(
        &app,
        "/api/v1/pools/demo/resize",
        Some(r#"{"max_size":-1}"#),
    )
    .await
    .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body");
    admin_post(
        &app,
        "/api/v1/pools/demo/resize",
        Some(r#"{"max_size":3,"extra":1}"#),
    )
    .await
    .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body");
    admin_post(&app, "/api/v1/pools/demo/resize", Some(r#"{"max_size":"#))
        .await
        .assert_error(StatusCode::BAD_REQUEST, "malformed_json");
    admin_post(&app, "/api/v1/pools/demo/resize", Some(""))
        .await
        .assert_error(StatusCode::BAD_REQUEST, "malformed_json");
    // No content type.
    let req = axum::http::Request::builder()
        .method(Method::POST)
        .uri("/api/v1/pools/demo/resize")
        .header("authorization", format!("Bearer {TOKEN}"))
        .body(axum::body::Body::from(r#"{"max_size":3}"#))
        .unwrap();
    reply(tower::ServiceExt::oneshot(app.clone(), req).await.unwrap())
        .await
        .assert_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");
    assert_eq!(pool.gauges().max_size, 5, "no bad request changed anything");
}

#[tokio::test]
async fn oversize_bodies_are_413_json() {
    let mut settings = Settings::default();
    settings.max_body_bytes = 256;
    let app = tidepool_http::router(state_with(settings).await.0);
    let big = format!(r#"{{"max_size":3,"pad":"{}"}}"#, "x".repeat(1000));
    admin_post(&app, "/api/v1/pools/demo/resize", Some(&big))
        .await
        .assert_error(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    // Without a Content-Length (a streamed body) the extractor's limit answers.
    let stream = futures_like_body(big.into_bytes());
    let req = axum::http::Request::builder()
        .method(Method::POST)
        .uri("/api/v1/pools/demo/resize")
        .header("authorization", format!("Bearer {TOKEN}"))
        .header("content-type", "application/json")
        .body(stream)
        .unwrap();
    reply(tower::ServiceExt::oneshot(app.clone(), req).await.unwrap())
        .await
        .assert_error(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
}

/// A body whose length is not known in advance.
fn futures_like_body(bytes: Vec<u8>) -> axum::body::Body {
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        bytes.chunks(100).map(|c| Ok(c.to_vec())).collect();
    axum::body::Body::from_stream(futures_util::stream::iter(chunks))
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_json() {
    let app = app().await;
    get(&app, "/nope")
        .await
        .assert_error(StatusCode::NOT_FOUND, "no_route");
    let r = send(&app, Method::DELETE, "/api/v1/pools", None, None).await;
    r.assert_error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
}

#[tokio::test]
async fn config_shows_settings_with_secrets_masked() {
    let registry = Arc::new(tidepool::Registry::new());
    let doc = serde_json::json!({
        "server": { "tokens": [TOKEN], "listen": "127.0.0.1:7070" },
        "pools": { "pg": { "url": "postgres://app:hunter2-secret@db/x", "password": "plain-secret" } }
    });
    let state = AppState::builder(registry)
        .token(TOKEN)
        .config_document(doc)
        .build();
    let app = tidepool_http::router(state);
    let r = admin_get(&app, "/api/v1/config").await;
    assert_eq!(r.status, StatusCode::OK);
    for secret in [TOKEN, "hunter2-secret", "plain-secret"] {
        assert!(!r.text.contains(secret), "{secret} leaked: {}", r.text);
    }
    assert_eq!(r.json["pools"]["pg"]["url"], "postgres://app:***@db/x");
    assert_eq!(r.json["server"]["listen"], "127.0.0.1:7070");

    // Without a document: the HTTP settings and each pool's settings.
    let app = common::app().await;
    let r = admin_get(&app, "/api/v1/config").await;
    let tenants = r.json["http"]["tenants"].as_array().unwrap();
    assert_eq!(tenants.len(), 2, "{}", r.text);
    assert_eq!(tenants[0]["name"], "admin");
    assert_eq!(tenants[0]["tokens"], serde_json::json!(["***"]));
    assert_eq!(r.json["pools"]["demo"]["max_size"], 2);
    assert!(!r.text.contains(TOKEN));
}
