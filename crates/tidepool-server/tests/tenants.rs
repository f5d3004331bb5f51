//! Issue 14 §4: tenants with roles, quotas and rate limits; admin actions
//! admin-only, bounded and logged with the tenant's name; statistics and
//! monitoring that show each caller only what is theirs.

mod common;

use common::{Server, pg_admin, pg_plain_role};
use serde_json::json;

const OPS: &str = "ops-token-0123456789abcdef01234567";
const ANA: &str = "analyst-token-0123456789abcdef0123";
const BOB: &str = "bob-token-0123456789abcdef01234567";
const MON: &str = "monitor-token-0123456789abcdef0123";

fn config(extra_ana: &str, server: &str) -> String {
    format!(
        r#"
[server]
resize_ceiling = 16
{server}

[[tenants]]
name = "ops"
role = "admin"
tokens = ["{OPS}"]

[[tenants]]
name = "analyst"
role = "query"
tokens = ["{ANA}"]
pools = ["demo"]
{extra_ana}

[[tenants]]
name = "bob"
role = "query"
tokens = ["{BOB}"]
pools = ["*"]

[[tenants]]
name = "grafana"
role = "monitor"
tokens = ["{MON}"]

[pools.demo]
backend = "sqlite"
path = "demo.db"
max_size = 4

[pools.other]
backend = "sqlite"
path = "other.db"
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_actions_are_for_admins_and_sessions_for_granted_pools() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::with_config(dir.path(), &config("", ""), &[]).await;
    let admin_only: [(&str, &str, Option<&str>); 7] = [
        ("POST", "/api/v1/pools/demo/pause", None),
        ("POST", "/api/v1/pools/demo/resume", None),
        ("POST", "/api/v1/pools/demo/evict", None),
        ("POST", "/api/v1/pools/evict-all", None),
        (
            "POST",
            "/api/v1/pools/demo/resize",
            Some(r#"{"max_size":2}"#),
        ),
        ("GET", "/api/v1/pools/demo/advice", None),
        ("GET", "/api/v1/config", None),
    ];
    for token in [ANA, MON, BOB] {
        for (method, path, body) in admin_only {
            let r = server.call(method, path, Some(token), body).await;
            assert_eq!(r.status, 403, "{method} {path}: {}", r.body);
        }
    }
    for (method, path, body) in admin_only {
        let r = server.call(method, path, Some(OPS), body).await;
        assert_eq!(r.status, 200, "{method} {path}: {}", r.body);
    }
    let r = server.create_session(MON, json!({"pool": "demo"})).await;
    assert_eq!(r.status, 403, "a monitor opens no session: {}", r.body);
    let r = server.create_session(ANA, json!({"pool": "other"})).await;
    assert_eq!(r.status, 403, "not granted: {}", r.body);
    server.open_session(ANA, "demo").await;
    server.open_session(BOB, "other").await;
    server.open_session(OPS, "other").await;
    let stats = server.call("GET", "/api/v1/pools", Some(MON), None).await;
    assert_eq!(stats.status, 200, "{}", stats.body);

    let log = server.log_text();
    assert!(
        log.lines()
            .any(|l| l.contains("admin action") && l.contains("ops") && l.contains("paused")),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resize_is_bounded_by_the_configured_ceiling() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::with_config(dir.path(), &config("", ""), &[]).await;
    for body in [
        r#"{"max_size":18446744073709551615}"#,
        r#"{"max_size":17}"#,
        r#"{"max_size":0}"#,
    ] {
        let r = server
            .call("POST", "/api/v1/pools/demo/resize", Some(OPS), Some(body))
            .await;
        assert_eq!(r.status, 400, "{body}: {}", r.body);
    }
    let r = server
        .call(
            "POST",
            "/api/v1/pools/demo/resize",
            Some(OPS),
            Some(r#"{"max_size":16}"#),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        server
            .log_text()
            .lines()
            .any(|l| l.contains("resize") && l.contains("ops")),
        "the action is logged with the tenant"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_tenant_cannot_take_every_session() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::with_config(dir.path(), &config("max_sessions = 3", ""), &[]).await;
    for _ in 0..3 {
        server.open_session(ANA, "demo").await;
    }
    let r = server.create_session(ANA, json!({"pool": "demo"})).await;
    assert_eq!(r.status, 429, "{}", r.body);
    assert_eq!(r.json["error"], "too_many_sessions");
    server.open_session(BOB, "demo").await;

    let mine = server
        .call("GET", "/api/v1/sessions/stats", Some(ANA), None)
        .await;
    assert_eq!(mine.json["active"], 3, "{}", mine.body);
    let bobs = server
        .call("GET", "/api/v1/sessions/stats", Some(BOB), None)
        .await;
    assert_eq!(bobs.json["active"], 1, "{}", bobs.body);
    let all = server
        .call("GET", "/api/v1/sessions/stats", Some(OPS), None)
        .await;
    assert_eq!(all.json["active"], 4, "{}", all.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_past_its_rate_limit_gets_429_and_the_others_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::with_config(
        dir.path(),
        &config("requests_per_second = 1\nburst = 3", ""),
        &[],
    )
    .await;
    let mut limited = 0;
    for _ in 0..8 {
        let r = server
            .call("GET", "/api/v1/sessions/stats", Some(ANA), None)
            .await;
        if r.status == 429 {
            assert_eq!(r.json["error"], "rate_limited", "{}", r.body);
            assert!(
                r.head.to_ascii_lowercase().contains("retry-after"),
                "{}",
                r.head
            );
            limited += 1;
        }
    }
    assert!(limited >= 4, "only {limited} of 8 were limited");
    let r = server
        .call("GET", "/api/v1/sessions/stats", Some(BOB), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitoring_without_a_token_shows_configured_pools_and_no_driver_errors() {
    let dir = tempfile::tempdir().unwrap();
    let closed = tidepool_testkit::closed_port();
    let toml = format!(
        "{}\n[pools.down]\nbackend = \"postgres\"\nurl = \"postgres://secret_role@127.0.0.1:{closed}/secret_db\"\nmax_retries = 0\nacquire_timeout = \"300ms\"\n",
        config("", "health_cache = \"60s\"")
    );
    let server = Server::with_config(dir.path(), &toml, &[]).await;

    let health = server.call("GET", "/health/db", None, None).await;
    assert_eq!(health.status, 503, "{}", health.body);
    assert!(
        health.json["failing"].to_string().contains("down"),
        "{}",
        health.body
    );
    for word in ["secret_role", "secret_db", "refused", "127.0.0.1"] {
        assert!(!health.body.contains(word), "{word} in {}", health.body);
    }
    let before = server.call("GET", "/api/v1/pools/demo", None, None).await;
    for _ in 0..10 {
        server.call("GET", "/health/db", None, None).await;
    }
    let after = server.call("GET", "/api/v1/pools/demo", None, None).await;
    assert_eq!(
        before.json["counters"]["gets"], after.json["counters"]["gets"],
        "/health/db checked the database again for every caller"
    );
    let admin = server.call("GET", "/health/db", Some(OPS), None).await;
    assert_eq!(admin.status, 503);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_tenants_long_queries_leave_room_for_another() {
    let Some((admin, addr)) = pg_admin().await else {
        return;
    };
    pg_plain_role(&admin, "tp_gw_quota", "quota_t").await;
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        r#"
[[tenants]]
name = "greedy"
role = "query"
tokens = ["{ANA}"]
pools = ["main"]
max_concurrent_queries = 2

[[tenants]]
name = "bob"
role = "query"
tokens = ["{BOB}"]
pools = ["main"]

[pools.main]
backend = "postgres"
url = "postgres://tp_gw_quota@{addr}/test?sslmode=disable"
max_size = 4
"#
    );
    let server = std::sync::Arc::new(Server::with_config(dir.path(), &toml, &[]).await);
    let greedy = server.open_session(ANA, "main").await;
    let bob = server.open_session(BOB, "main").await;
    let mut slow = Vec::new();
    for _ in 0..6 {
        let (s, id) = (server.clone(), greedy.clone());
        slow.push(tokio::spawn(async move {
            s.query(ANA, &id, "SELECT pg_sleep(1.5)", json!([]))
                .await
                .status
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let b = server.query(BOB, &bob, "SELECT 1", json!([])).await;
    assert_eq!(b.status, 200, "{}", b.body);
    let mut statuses = Vec::new();
    for t in slow {
        statuses.push(t.await.unwrap());
    }
    statuses.sort();
    assert_eq!(statuses, [200, 200, 429, 429, 429, 429]);
}
