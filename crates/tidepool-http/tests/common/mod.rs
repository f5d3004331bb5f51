//! Shared helpers for the router tests: a state over an in-memory SQLite
//! pool, and a one-shot request helper.
#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::Value;
use tidepool::{Pool, Registry};
use tidepool_http::gateway::SqliteGateway;
use tidepool_http::{AllowEntry, AppState, GatewayMode, Role, Settings, Tenant};
use tidepool_sqlite::{SqliteConfig, SqliteManager, SqlitePool};
use tower::ServiceExt;

pub const TOKEN: &str = "test-token-0123456789abcdef";
pub const OTHER_TOKEN: &str = "other-token-9876543210fedcba";

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// An in-memory SQLite pool with a small table.
pub async fn sqlite_pool(name: &str) -> SqlitePool {
    let db = format!(
        "http-test-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    );
    let pool = Pool::builder(SqliteManager::new(SqliteConfig::memory(db)).unwrap())
        .name(name)
        .max_size(2)
        .build()
        .unwrap();
    let conn = pool.get().await.unwrap();
    conn.interact(|c| {
        c.execute_batch(
            "CREATE TABLE IF NOT EXISTS people (id INTEGER PRIMARY KEY, name TEXT NOT NULL, score REAL);
             DELETE FROM people;
             INSERT INTO people (id, name, score) VALUES (1, 'ada', 9.5), (2, 'grace', 8.0), (3, 'alan', NULL);",
        )
    })
    .await
    .unwrap()
    .unwrap();
    drop(conn);
    pool
}

/// A state with pool `demo` (queryable) and the two tokens.
pub async fn state_with(settings: Settings) -> (AppState, SqlitePool) {
    let registry = Arc::new(Registry::with_idle_removal(tidepool::DEFAULT_IDLE_REMOVAL));
    let pool = sqlite_pool("demo").await;
    registry.insert(pool.clone()).unwrap();
    let state = AppState::builder(registry)
        .token(TOKEN)
        .tenant(Tenant::new("other", Role::Admin).token(OTHER_TOKEN))
        .settings(settings)
        .gateway(
            "demo",
            Arc::new(SqliteGateway::new(pool.clone()).mode(GatewayMode::ReadWrite)),
        )
        .build();
    (state, pool)
}

pub async fn app() -> Router {
    tidepool_http::router(state_with(Settings::default()).await.0)
}

/// A response: status, content type, raw body and the body as JSON (or Null).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub content_type: String,
    pub text: String,
    pub json: Value,
}

impl Reply {
    /// Asserts an error reply with this status and code.
    pub fn assert_error(&self, status: StatusCode, code: &str) {
        assert_eq!(self.status, status, "{}", self.text);
        assert_eq!(self.json["error"], code, "{}", self.text);
        assert!(
            self.json["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{}",
            self.text
        );
        assert!(
            self.content_type.starts_with("application/json"),
            "{}",
            self.content_type
        );
    }
}

pub async fn send(
    app: &Router,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> Reply {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let req = match body {
        Some(b) => req
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(b.to_owned())),
        None => req.body(Body::empty()),
    }
    .unwrap();
    reply(app.clone().oneshot(req).await.unwrap()).await
}

pub async fn reply(resp: axum::response::Response) -> Reply {
    let status = resp.status();
    let content_type = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let text = if content_type.starts_with("text/event-stream") {
        // A stream never ends: its first event stands for the body.
        first_event(resp.into_body()).await
    } else {
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Reply {
        status,
        content_type,
        text,
        json,
    }
}

/// Reads a server-sent-event body until its first complete event (up to 10
/// s); the event's text.
pub async fn first_event(mut body: axum::body::Body) -> String {
    let mut text = String::new();
    let read = async {
        while !text.contains("\n\n") {
            match body.frame().await {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        text.push_str(&String::from_utf8_lossy(&data));
                    }
                }
                _ => break,
            }
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), read)
        .await
        .expect("no event within 10 s");
    text
}

/// The JSON of the first `data:` line of a server-sent event.
pub fn event_json(event: &str) -> Value {
    let data = event
        .lines()
        .find_map(|l| l.strip_prefix("data:"))
        .unwrap_or_else(|| panic!("no data line in {event:?}"));
    serde_json::from_str(data.trim_start()).unwrap()
}

pub async fn get(app: &Router, path: &str) -> Reply {
    send(app, Method::GET, path, None, None).await
}

pub async fn admin_get(app: &Router, path: &str) -> Reply {
    send(app, Method::GET, path, Some(TOKEN), None).await
}

pub async fn admin_post(app: &Router, path: &str, body: Option<&str>) -> Reply {
    send(app, Method::POST, path, Some(TOKEN), body).await
}

/// Opens a session on `demo`; its id.
pub async fn session(app: &Router) -> String {
    let r = admin_post(app, "/api/v1/sessions", Some(r#"{"pool":"demo"}"#)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    r.json["session_id"].as_str().unwrap().to_owned()
}

/// Settings that accept SQLite descriptions of files under `dir` (created
/// when missing), served read-write.
pub fn sqlite_descriptions(dir: &std::path::Path) -> Settings {
    let mut settings = Settings::default();
    let allow: AllowEntry = serde_json::from_value(serde_json::json!({
        "backend": "sqlite", "directory": dir, "create": true
    }))
    .unwrap();
    settings.descriptions.enabled = true;
    settings.descriptions.mode = GatewayMode::ReadWrite;
    settings.descriptions.allow = vec![allow];
    settings
}

/// Settings that accept PostgreSQL descriptions of `user@host:port/database`.
pub fn postgres_descriptions(host: &str, port: u16, database: &str, user: &str) -> Settings {
    let mut settings = Settings::default();
    let allow: AllowEntry = serde_json::from_value(serde_json::json!({
        "backend": "postgres", "host": host, "port": port, "database": database, "user": user
    }))
    .unwrap();
    settings.descriptions.enabled = true;
    settings.descriptions.allow = vec![allow];
    settings
}
