//! The PostgreSQL gateway against a real server (127.0.0.1:5432, user
//! postgres, trust auth, database test): sessions on a configured pool and
//! on a connection description, typed parameters and columns, SQL errors,
//! the row limit and the statement timeout.

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use common::*;
use serde_json::json;
use tidepool_http::gateway::PgGateway;
use tidepool_http::{AppState, GatewayMode, Settings};

fn url(addr: &str) -> String {
    format!("postgres://postgres:not-a-real-pw-42@{addr}/test")
}

async fn pg_app(addr: &str, settings: Settings) -> axum::Router {
    let registry = Arc::new(tidepool::Registry::with_idle_removal(
        tidepool::DEFAULT_IDLE_REMOVAL,
    ));
    let pool = tidepool::Pool::builder(tidepool_postgres::PgManager::from_url(&url(addr)).unwrap())
        .name("pg")
        .max_size(2)
        .build()
        .unwrap();
    registry.insert(pool.clone()).unwrap();
    let state = AppState::builder(registry)
        .token(TOKEN)
        .settings(settings)
        .gateway(
            "pg",
            Arc::new(
                PgGateway::new(pool)
                    .mode(GatewayMode::ReadWrite)
                    // The local `postgres` role is a superuser; the server's
                    // tests cover plain roles and the refusal.
                    .allow_privileged_role(true),
            ),
        )
        .build();
    tidepool_http::router(state)
}

async fn pg_session(app: &axum::Router) -> String {
    let r = admin_post(app, "/api/v1/sessions", Some(r#"{"pool":"pg"}"#)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    r.json["session_id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn typed_parameters_and_columns_round_trip() {
    let Some(addr) = tidepool_testkit::service("PostgreSQL", "TIDEPOOL_PG_ADDR", "127.0.0.1:5432")
    else {
        return;
    };
    let app = pg_app(&addr, Settings::default()).await;
    let id = pg_session(&app).await;
    let path = format!("/api/v1/sessions/{id}/query");
    let body = json!({
        "sql": "SELECT $1::int4 AS i, $2::int8 AS big, $3::float8 AS f, $4::text AS t, $5::bool AS b, \
                $6::jsonb AS j, $7::uuid AS u, NULL::int AS n, 12.50::numeric(5,2) AS num, \
                DATE '2024-02-29' AS d, TIMESTAMPTZ '2024-01-02 03:04:05.5+00' AS ts, 'x'::bytea AS bin",
        "params": [7, "9000000000", 1.5, "hello", true, {"k": [1, 2]}, "67e55044-10b1-426f-9247-bb680e5fe0c8"]
    });
    let r = admin_post(&app, &path, Some(&body.to_string())).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        r.json["columns"],
        json!([
            "i", "big", "f", "t", "b", "j", "u", "n", "num", "d", "ts", "bin"
        ])
    );
    assert_eq!(
        r.json["rows"][0],
        json!([7, 9_000_000_000_i64, 1.5, "hello", true, {"k": [1, 2]},
               "67e55044-10b1-426f-9247-bb680e5fe0c8", null, "12.50", "2024-02-29",
               "2024-01-02T03:04:05.500000Z", "\\x78"])
    );
}

#[tokio::test]
async fn schema_and_writes_on_a_scratch_table() {
    let Some(addr) = tidepool_testkit::service("PostgreSQL", "TIDEPOOL_PG_ADDR", "127.0.0.1:5432")
    else {
        return;
    };
    let app = pg_app(&addr, Settings::default()).await;
    let id = pg_session(&app).await;
    let path = format!("/api/v1/sessions/{id}/query");
    let table = format!("tp_http_{}", std::process::id());
    for sql in [
        format!("DROP TABLE IF EXISTS {table}"),
        format!("CREATE TABLE {table} (id int PRIMARY KEY, name text NOT NULL)"),
    ] {
        let r = admin_post(&app, &path, Some(&json!({ "sql": sql }).to_string())).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
    let ins = json!({"sql": format!("INSERT INTO {table} VALUES ($1, $2), ($3, $4)"), "params": [1, "a", 2, "b"]});
    let r = admin_post(&app, &path, Some(&ins.to_string())).await;
    assert_eq!(r.json["rows_affected"], 2, "{}", r.text);
    let schema = admin_get(&app, &format!("/api/v1/sessions/{id}/schema")).await;
    let t = schema.json["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == table.as_str())
        .unwrap_or_else(|| panic!("{table} missing: {}", schema.text));
    assert_eq!(t["schema"], "public");
    assert_eq!(
        t["columns"][0],
        json!({"name":"id","type":"integer","nullable":false,"primary_key":true})
    );
    assert_eq!(t["columns"][1]["primary_key"], false);
    let dup = admin_post(&app, &path, Some(&ins.to_string())).await;
    dup.assert_error(StatusCode::BAD_REQUEST, "sql_error");
    assert!(
        dup.json["detail"]
            .as_str()
            .unwrap()
            .contains("duplicate key"),
        "{}",
        dup.text
    );
    admin_post(
        &app,
        &path,
        Some(&json!({ "sql": format!("DROP TABLE {table}") }).to_string()),
    )
    .await;
}

#[tokio::test]
async fn errors_limits_and_timeouts() {
    let Some(addr) = tidepool_testkit::service("PostgreSQL", "TIDEPOOL_PG_ADDR", "127.0.0.1:5432")
    else {
        return;
    };
    let mut settings = Settings::default();
    settings.max_rows = 3;
    settings.statement_timeout = Duration::from_millis(300);
    let app = pg_app(&addr, settings).await;
    let id = pg_session(&app).await;
    let path = format!("/api/v1/sessions/{id}/query");
    admin_post(&app, &path, Some(r#"{"sql":"SELEC 1"}"#))
        .await
        .assert_error(StatusCode::BAD_REQUEST, "sql_error");
    admin_post(
        &app,
        &path,
        Some(r#"{"sql":"SELECT $1::int","params":["abc"]}"#),
    )
    .await
    .assert_error(StatusCode::BAD_REQUEST, "bad_parameter");
    admin_post(
        &app,
        &path,
        Some(r#"{"sql":"SELECT $1::int, $2::int","params":[1]}"#),
    )
    .await
    .assert_error(StatusCode::BAD_REQUEST, "bad_parameter");
    let r = admin_post(
        &app,
        &path,
        Some(r#"{"sql":"SELECT generate_series(1, 100)"}"#),
    )
    .await;
    assert_eq!(
        (r.json["row_count"].as_u64(), r.json["truncated"].as_bool()),
        (Some(3), Some(true)),
        "{}",
        r.text
    );
    let started = std::time::Instant::now();
    admin_post(&app, &path, Some(r#"{"sql":"SELECT pg_sleep(30)"}"#))
        .await
        .assert_error(StatusCode::REQUEST_TIMEOUT, "timeout");
    assert!(started.elapsed() < Duration::from_secs(10));
    let ok = admin_post(&app, &path, Some(r#"{"sql":"SELECT 1 AS one"}"#)).await;
    assert_eq!(ok.json["rows"], json!([[1]]), "{}", ok.text);
}

#[tokio::test]
async fn a_connection_description_opens_an_on_demand_pool() {
    let Some(addr) = tidepool_testkit::service("PostgreSQL", "TIDEPOOL_PG_ADDR", "127.0.0.1:5432")
    else {
        return;
    };
    let admin = tidepool_postgres::PgConfig::from_url(&format!("postgres://postgres@{addr}/test"))
        .unwrap()
        .to_tokio_postgres();
    let (client, conn) = admin.connect(tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    client
        .batch_execute(
            "BEGIN; SELECT pg_advisory_xact_lock(1414); \
             DO $$ BEGIN CREATE ROLE tp_http_plain LOGIN; \
             EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$; COMMIT;",
        )
        .await
        .unwrap();
    let (host, port) = addr.rsplit_once(':').unwrap();
    let settings = postgres_descriptions(host, port.parse().unwrap(), "test", "tp_http_plain");
    let app = tidepool_http::router(state_with(settings).await.0);
    let body = json!({
        "backend": "postgres",
        "url": format!("postgres://tp_http_plain:not-a-real-pw-42@{addr}/test?sslmode=disable")
    })
    .to_string();
    let r = admin_post(&app, "/api/v1/sessions", Some(&body)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.json["backend"], "postgres");
    let id = r.json["session_id"].as_str().unwrap();
    let q = admin_post(
        &app,
        &format!("/api/v1/sessions/{id}/query"),
        Some(r#"{"sql":"SELECT current_database()"}"#),
    )
    .await;
    assert_eq!(q.json["rows"], json!([["test"]]), "{}", q.text);
    let pools = get(&app, "/api/v1/pools").await;
    assert!(!pools.text.contains("not-a-real-pw-42"));
}
