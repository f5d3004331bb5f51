//! Read-only endpoints: liveness, database health, pool statistics, health,
//! aggregates, Prometheus metrics, and the monitoring token switch.

mod common;

use std::sync::Arc;

use axum::http::StatusCode;
use common::*;
use tidepool_http::{AppState, Settings};
use tidepool_sqlite::{SqliteConfig, SqliteManager};

#[tokio::test]
async fn liveness_needs_nothing() {
    let app = app().await;
    let r = get(&app, "/health").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json["status"], "ok");
}

#[tokio::test]
async fn db_health_is_ok_when_every_pool_answers() {
    let app = app().await;
    let r = get(&app, "/health/db").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["pools"]["demo"]["ok"], true);
    assert_eq!(r.json["failing"], serde_json::json!([]));
}

#[tokio::test]
async fn db_health_is_503_naming_the_failing_pool() {
    let (state, _pool) = state_with(Settings::default()).await;
    let mut cfg = tidepool::PoolConfig::default();
    cfg.max_retries = 0;
    let broken = tidepool::Pool::builder(
        SqliteManager::new(SqliteConfig::file("/nonexistent-dir/for/sure/x.db")).unwrap(),
    )
    .config(cfg)
    .name("broken")
    .build()
    .unwrap();
    state.registry().insert(broken).unwrap();
    let app = tidepool_http::router(state);
    let r = get(&app, "/health/db").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text);
    assert_eq!(r.json["failing"], serde_json::json!(["broken"]));
    assert_eq!(r.json["error"], "database_unavailable");
    assert!(r.json["detail"].as_str().unwrap().contains("broken"));
    assert_eq!(r.json["pools"]["demo"]["ok"], true);
}

#[tokio::test]
async fn pools_list_and_one_pool() {
    let app = app().await;
    let r = get(&app, "/api/v1/pools").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json["count"], 1);
    let demo = &r.json["pools"][0];
    assert_eq!(demo["name"], "demo");
    assert_eq!(demo["backend"], "sqlite");
    assert_eq!(demo["gauges"]["max_size"], 2);
    assert!(demo["counters"]["created"].as_u64().unwrap() >= 1);
    assert!(demo["derived"]["utilization"].is_number());
    assert!(demo["acquire"]["p99"].is_number());

    let r = get(&app, "/api/v1/pools/demo").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json["name"], "demo");
    assert_eq!(r.json["health"]["status"], "healthy");
}

#[tokio::test]
async fn unknown_pool_is_404() {
    let app = app().await;
    get(&app, "/api/v1/pools/nope")
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    admin_get(&app, "/api/v1/pools/nope/advice")
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    for action in ["evict", "pause", "resume"] {
        admin_post(&app, &format!("/api/v1/pools/nope/{action}"), None)
            .await
            .assert_error(StatusCode::NOT_FOUND, "not_found");
    }
    admin_post(&app, "/api/v1/pools/nope/resize", Some(r#"{"max_size":3}"#))
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn pools_health_reports_each_pool_and_the_worst() {
    let (state, pool) = state_with(Settings::default()).await;
    let app = tidepool_http::router(state);
    let r = get(&app, "/api/v1/pools/health").await;
    assert_eq!(r.json["status"], "healthy", "{}", r.text);
    assert_eq!(r.json["pools"][0]["name"], "demo");
    pool.pause();
    let r = get(&app, "/api/v1/pools/health").await;
    assert_eq!(r.json["status"], "degraded", "{}", r.text);
    assert!(
        r.json["pools"][0]["reasons"][0]
            .as_str()
            .unwrap()
            .contains("paused")
    );
}

#[tokio::test]
async fn aggregate_metrics_sum_the_pools() {
    let (state, _pool) = state_with(Settings::default()).await;
    let second = sqlite_pool("second").await;
    state.registry().insert(second).unwrap();
    let app = tidepool_http::router(state);
    let r = get(&app, "/api/v1/pools/metrics").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json["pools"], 2);
    assert_eq!(r.json["capacity"], 4);
    assert_eq!(r.json["created"], 2);
    for key in [
        "connections",
        "active",
        "idle",
        "utilization",
        "reused",
        "closed",
        "errors",
        "reuse_ratio",
    ] {
        assert!(!r.json[key].is_null(), "{key} missing: {}", r.text);
    }
}

#[tokio::test]
async fn prometheus_exposition_has_every_family_with_a_pool_label() {
    let (state, pool) = state_with(Settings::default()).await;
    drop(pool.get().await.unwrap());
    let app = tidepool_http::router(state);
    let r = get(&app, "/metrics").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.content_type.starts_with("application/openmetrics-text"));
    for line in [
        "tidepool_pool_connections{pool=\"demo\",state=\"idle\"} 1",
        "tidepool_pool_connections{pool=\"demo\",state=\"in_use\"} 0",
        "tidepool_pool_max_connections{pool=\"demo\"} 2",
        "tidepool_pool_min_idle_connections{pool=\"demo\"} 0",
        "tidepool_pool_waiting{pool=\"demo\"} 0",
        "tidepool_pool_acquire_wait_seconds_count{pool=\"demo\"} 2",
        "tidepool_pool_acquire_wait_seconds_bucket{le=\"+Inf\",pool=\"demo\"} 2",
        "tidepool_pool_hold_seconds_count{pool=\"demo\"} 2",
        "tidepool_pool_timeouts_total{pool=\"demo\"} 0",
        "tidepool_pool_connections_created_total{pool=\"demo\"} 1",
        "tidepool_pool_connections_closed_total{pool=\"demo\",reason=\"evicted\"} 0",
        "tidepool_pool_create_errors_total{pool=\"demo\"} 0",
        "tidepool_pool_leaks_total{pool=\"demo\"} 0",
        "# EOF",
    ] {
        assert!(r.text.contains(line), "missing {line:?} in\n{}", r.text);
    }
    // Buckets are cumulative: never decreasing.
    let mut last = 0;
    for l in r
        .text
        .lines()
        .filter(|l| l.starts_with("tidepool_pool_hold_seconds_bucket"))
    {
        let n: u64 = l.rsplit(' ').next().unwrap().parse().unwrap();
        assert!(n >= last, "{l}");
        last = n;
    }
}

/// What the dashboard shows is what Prometheus shows: hits, misses, reuse,
/// overflow, validation failures, keepalives, retries, panics, the window's
/// peaks and the health status.
#[tokio::test]
async fn prometheus_carries_the_counters_peaks_and_health_the_dashboard_shows() {
    let (state, pool) = state_with(Settings::default()).await;
    let stats = pool.stats();
    drop(pool.get().await.unwrap());
    let app = tidepool_http::router(state);
    let text = get(&app, "/metrics").await.text;
    let value = |family: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(family))
            .unwrap_or_else(|| panic!("missing {family:?} in\n{text}"))
            .rsplit(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let after = pool.stats();
    assert_eq!(
        value("tidepool_pool_hits_total{pool=\"demo\"}"),
        after.counters.hits as f64
    );
    assert!(after.counters.hits > stats.counters.hits);
    assert_eq!(
        value("tidepool_pool_misses_total{pool=\"demo\"}"),
        after.counters.misses as f64
    );
    assert_eq!(
        value("tidepool_pool_reused_total{pool=\"demo\"}"),
        after.counters.reused as f64
    );
    for family in [
        "tidepool_pool_overflow_opened_total{pool=\"demo\"}",
        "tidepool_pool_overflow_returned_total{pool=\"demo\"}",
        "tidepool_pool_validation_failures_total{pool=\"demo\"}",
        "tidepool_pool_keepalives_total{pool=\"demo\"}",
        "tidepool_pool_retries_total{pool=\"demo\"}",
        "tidepool_pool_panics_total{pool=\"demo\"}",
    ] {
        assert_eq!(value(family), 0.0, "{family}");
    }
    assert!(value("tidepool_pool_peak_in_use{pool=\"demo\"}") >= 1.0);
    // The first get waited for the first connection.
    assert_eq!(
        value("tidepool_pool_peak_waiting{pool=\"demo\"}"),
        after.derived.peak_waiting as f64
    );
    assert_eq!(
        value("tidepool_pool_health{pool=\"demo\",status=\"healthy\"}"),
        1.0
    );
    assert_eq!(
        value("tidepool_pool_health{pool=\"demo\",status=\"degraded\"}"),
        0.0
    );
    pool.pause();
    let text = get(&app, "/metrics").await.text;
    assert!(
        text.contains("tidepool_pool_health{pool=\"demo\",status=\"degraded\"} 1"),
        "{text}"
    );
}

#[tokio::test]
async fn monitoring_can_require_a_token() {
    let mut settings = Settings::default();
    settings.monitoring_requires_token = true;
    let app = tidepool_http::router(state_with(settings).await.0);
    for path in [
        "/api/v1/pools",
        "/api/v1/pools/demo",
        "/api/v1/pools/health",
        "/api/v1/pools/metrics",
        "/metrics",
        "/health/db",
    ] {
        get(&app, path)
            .await
            .assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
        assert_eq!(admin_get(&app, path).await.status, StatusCode::OK, "{path}");
    }
    assert_eq!(get(&app, "/health").await.status, StatusCode::OK);
}

#[tokio::test]
async fn an_app_can_mount_the_router_beside_its_own_routes() {
    let registry = Arc::new(tidepool::Registry::new());
    let state = AppState::builder(registry).build();
    let app = axum::Router::new()
        .route("/mine", axum::routing::get(|| async { "mine" }))
        .merge(tidepool_http::router(state));
    assert_eq!(get(&app, "/mine").await.text, "mine");
    assert_eq!(get(&app, "/api/v1/pools").await.json["count"], 0);
}
