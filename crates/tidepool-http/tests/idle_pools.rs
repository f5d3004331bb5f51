//! On-demand pools (made for a session's connection description) are
//! removed from the registry once unused for the idle-removal period, by
//! the clean-up pass or its background task, and made again when a session
//! bound to one is next used.

mod common;

use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use common::*;
use serde_json::json;
use tidepool::DEFAULT_IDLE_REMOVAL;
use tidepool_http::AppState;

/// The pools `GET /api/v1/pools` lists, by name.
async fn listed(app: &Router) -> Vec<String> {
    let r = admin_get(app, "/api/v1/pools").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.json["pools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect()
}

/// A session on a fresh SQLite file holding one row; its id and pool name.
async fn on_demand_session(app: &Router, db: &std::path::Path) -> (String, String) {
    let body = json!({"backend": "sqlite", "url": db.display().to_string()}).to_string();
    let r = admin_post(app, "/api/v1/sessions", Some(&body)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let id = r.json["session_id"].as_str().unwrap().to_owned();
    let pool = r.json["pool"].as_str().unwrap().to_owned();
    for sql in ["CREATE TABLE t (x INTEGER)", "INSERT INTO t VALUES (42)"] {
        let body = json!({ "sql": sql }).to_string();
        let q = admin_post(app, &format!("/api/v1/sessions/{id}/query"), Some(&body)).await;
        assert_eq!(q.status, StatusCode::OK, "{}", q.text);
    }
    (id, pool)
}

/// The session still answers, from a pool made again on the same file.
async fn assert_session_works(app: &Router, state: &AppState, id: &str, pool: &str) {
    let q = admin_post(
        app,
        &format!("/api/v1/sessions/{id}/query"),
        Some(r#"{"sql":"SELECT x FROM t"}"#),
    )
    .await;
    assert_eq!(q.status, StatusCode::OK, "{}", q.text);
    assert_eq!(q.json["rows"], json!([[42]]));
    assert!(
        listed(app).await.contains(&pool.to_owned()),
        "pool made again"
    );
    let again = state.registry().handle(pool).unwrap();
    assert_eq!(
        again.stats().counters.created,
        1,
        "a new pool, not the old one"
    );
}

#[tokio::test(start_paused = true)]
async fn an_idle_on_demand_pool_is_removed_and_made_again_on_next_use() {
    let dir = tempfile::tempdir().unwrap();
    let (state, _demo) = state_with(sqlite_descriptions(dir.path())).await;
    let app = tidepool_http::router(state.clone());
    let (id, pool) = on_demand_session(&app, &dir.path().join("adhoc.db")).await;
    assert_eq!(listed(&app).await, ["demo", pool.as_str()]);
    let old = state.registry().handle(&pool).unwrap();

    // Just short of the period: kept.
    tokio::time::advance(DEFAULT_IDLE_REMOVAL - Duration::from_secs(1)).await;
    state.clean_up().await;
    assert_eq!(listed(&app).await, ["demo", pool.as_str()]);

    // Past it: removed (the configured pool stays), closed, without gateway.
    tokio::time::advance(Duration::from_secs(2)).await;
    state.clean_up().await;
    assert_eq!(listed(&app).await, ["demo"]);
    assert!(state.registry().handle(&pool).is_none());
    assert!(state.gateway(&pool).is_none());
    assert!(old.stats().gauges.closed, "the removed pool was closed");

    // The session outlives its pool (its TTL is longer).
    assert_session_works(&app, &state, &id, &pool).await;
}

#[tokio::test(start_paused = true)]
async fn the_background_clean_up_removes_idle_on_demand_pools() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = sqlite_descriptions(dir.path());
    settings.cleanup_interval = Duration::from_secs(60);
    let (state, _demo) = state_with(settings).await;
    let app = tidepool_http::router(state.clone());
    let maintenance = state.spawn_maintenance();
    let (id, pool) = on_demand_session(&app, &dir.path().join("adhoc.db")).await;

    tokio::time::sleep(DEFAULT_IDLE_REMOVAL - Duration::from_secs(120)).await;
    assert_eq!(listed(&app).await, ["demo", pool.as_str()]);
    tokio::time::sleep(Duration::from_secs(180)).await;
    assert_eq!(listed(&app).await, ["demo"], "removed without a request");

    assert_session_works(&app, &state, &id, &pool).await;
    maintenance.abort();
}
