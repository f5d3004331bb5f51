//! Issue 14 §3: connection descriptions are off by default; when on, each is
//! parsed and matched field by field against a structured allow-list;
//! SQLite files only under configured directories; on-demand pools belong
//! to their tenant and are made only after every limit is checked.

mod common;

use common::{Server, pg_admin, pg_plain_role};
use serde_json::json;

const A: &str = "tenant-a-token-0123456789abcdef";
const B: &str = "tenant-b-token-0123456789abcdef";
const ROLE: &str = "tp_gw_desc";

fn tenants(a_extra: &str) -> String {
    format!(
        r#"
[[tenants]]
name = "a"
role = "query"
tokens = ["{A}"]
pools = ["demo"]
{a_extra}

[[tenants]]
name = "b"
role = "query"
tokens = ["{B}"]
pools = ["demo"]

[pools.demo]
backend = "sqlite"
path = "demo.db"
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn descriptions_are_refused_unless_configured() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::with_config(dir.path(), &tenants(""), &[]).await;
    let target = dir.path().join("made-by-a-client.db");
    let r = server
        .create_session(
            A,
            json!({"backend": "sqlite", "url": target.display().to_string()}),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(!target.exists(), "a refused description created a file");
    let r = server
        .create_session(
            A,
            json!({"backend": "postgres", "url": "postgres://postgres@127.0.0.1:1/x"}),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
}

fn pg_allow(addr: &str) -> String {
    let (host, port) = addr.rsplit_once(':').unwrap();
    format!(
        r#"
[descriptions]
enabled = true

[descriptions.pool]
max_size = 2

[[descriptions.allow]]
backend = "postgres"
host = "{host}"
port = {port}
database = "test"
user = "{ROLE}"
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_allow_list_matches_parsed_fields_not_prefixes() {
    let Some((admin, addr)) = pg_admin().await else {
        return;
    };
    pg_plain_role(&admin, ROLE, "desc_table").await;
    let (host, port) = addr.rsplit_once(':').unwrap();
    let dir = tempfile::tempdir().unwrap();
    let toml = format!("{}{}", tenants(""), pg_allow(&addr));
    let server = Server::with_config(dir.path(), &toml, &[]).await;
    let closed = tidepool_testkit::closed_port();
    let mut refusals = Vec::new();
    for url in [
        format!("postgres://{ROLE}@{host}:{port}/test?host=/var/run/postgresql"),
        format!("postgres://{ROLE}@{host}:3306/test"),
        format!("postgres://{ROLE}@{host}:{closed}/test"),
        format!("postgres://{ROLE}@{host}@127.0.0.1:6379/test"),
        format!("postgres://{ROLE}@{host}:{port}/postgres"),
        format!("postgres://postgres@{host}:{port}/test"),
        format!("postgres://{ROLE}@localhost:{port}/test"),
        format!("postgres://{ROLE}@{host}:{port}"),
    ] {
        let r = server
            .create_session(A, json!({"backend": "postgres", "url": url}))
            .await;
        assert_eq!(r.status, 403, "{url}: {}", r.body);
        refusals.push(r.json["detail"].clone());
    }
    assert!(
        refusals.windows(2).all(|w| w[0] == w[1]),
        "refusals differ, which tells a prober something: {refusals:?}"
    );
    let ok = server
        .create_session(
            A,
            json!({"backend": "postgres", "url": format!("postgres://{ROLE}@{host}:{port}/test?sslmode=disable")}),
        )
        .await;
    assert_eq!(ok.status, 201, "{}", ok.body);
    let fields = server
        .create_session(
            A,
            json!({"backend": "postgres", "host": host, "port": port.parse::<u16>().unwrap(),
                   "database": "test", "username": ROLE, "password": "unused-with-trust"}),
        )
        .await;
    assert_eq!(fields.status, 201, "{}", fields.body);
    let id = fields.json["session_id"].as_str().unwrap();
    let r = server
        .query(A, id, "SELECT current_user::text", json!([]))
        .await;
    assert_eq!(r.json["rows"], json!([[ROLE]]), "{}", r.body);
    let pool = fields.json["pool"].as_str().unwrap().to_owned();
    let one = server
        .call("GET", &format!("/api/v1/pools/{pool}"), Some(A), None)
        .await;
    assert_eq!(
        one.json["gauges"]["max_size"], 2,
        "on-demand settings: {}",
        one.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_descriptions_stay_in_their_directory_and_create_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let allowed = dir.path().join("allowed");
    std::fs::create_dir(&allowed).unwrap();
    tidepool_sqlite::rusqlite::Connection::open(allowed.join("ok.db"))
        .unwrap()
        .execute_batch("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (7);")
        .unwrap();
    tidepool_sqlite::rusqlite::Connection::open(dir.path().join("secret.db"))
        .unwrap()
        .execute_batch("CREATE TABLE s (x INTEGER);")
        .unwrap();
    let toml = format!(
        r#"{}
[descriptions]
enabled = true

[[descriptions.allow]]
backend = "sqlite"
directory = "{}"
"#,
        tenants(""),
        allowed.display()
    );
    let server = Server::with_config(dir.path(), &toml, &[]).await;
    let mut refusals = Vec::new();
    for path in [
        format!("{}/../secret.db", allowed.display()),
        dir.path().join("secret.db").display().to_string(),
        "/etc/passwd".to_owned(),
        "/no/such/dir/x.db".to_owned(),
        format!("{}/missing.db", allowed.display()),
        "../secret.db".to_owned(),
        "file:ok.db?mode=rwc".to_owned(),
    ] {
        let r = server
            .create_session(A, json!({"backend": "sqlite", "url": path}))
            .await;
        assert_eq!(r.status, 403, "{path}: {}", r.body);
        refusals.push(r.json["detail"].clone());
    }
    assert!(
        refusals.windows(2).all(|w| w[0] == w[1]),
        "refusals tell whether a path exists: {refusals:?}"
    );
    assert!(!allowed.join("missing.db").exists(), "a file was created");
    for url in [
        format!("{}/ok.db", allowed.display()),
        "ok.db".to_owned(),
        format!("sqlite://{}/ok.db", allowed.display()),
    ] {
        let ok = server
            .create_session(A, json!({"backend": "sqlite", "url": url}))
            .await;
        assert_eq!(ok.status, 201, "{url}: {}", ok.body);
        let id = ok.json["session_id"].as_str().unwrap();
        let r = server.query(A, id, "SELECT x FROM t", json!([])).await;
        assert_eq!(r.json["rows"], json!([[7]]), "{}", r.body);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_demand_pools_belong_to_the_tenant_that_made_them() {
    let dir = tempfile::tempdir().unwrap();
    let allowed = dir.path().join("allowed");
    std::fs::create_dir(&allowed).unwrap();
    tidepool_sqlite::rusqlite::Connection::open(allowed.join("ok.db"))
        .unwrap()
        .execute_batch("CREATE TABLE t (x INTEGER);")
        .unwrap();
    let toml = format!(
        "{}\n[descriptions]\nenabled = true\n\n[[descriptions.allow]]\nbackend = \"sqlite\"\ndirectory = \"{}\"\n",
        tenants(""),
        allowed.display()
    );
    let server = Server::with_config(dir.path(), &toml, &[]).await;
    let made = server
        .create_session(A, json!({"backend": "sqlite", "url": "ok.db"}))
        .await;
    assert_eq!(made.status, 201, "{}", made.body);
    let pool = made.json["pool"].as_str().unwrap().to_owned();

    let open = server.call("GET", "/api/v1/pools", None, None).await;
    assert!(
        !open.body.contains(&pool),
        "listed without a token: {}",
        open.body
    );
    let as_b = server.call("GET", "/api/v1/pools", Some(B), None).await;
    assert!(
        !as_b.body.contains(&pool),
        "listed to another tenant: {}",
        as_b.body
    );
    let one = server
        .call("GET", &format!("/api/v1/pools/{pool}"), Some(B), None)
        .await;
    assert_eq!(one.status, 404, "{}", one.body);
    let metrics = server.call("GET", "/metrics", None, None).await;
    assert!(!metrics.body.contains(&pool), "{}", metrics.body);
    let hijack = server.create_session(B, json!({"pool": pool})).await;
    assert_eq!(hijack.status, 404, "{}", hijack.body);
    let as_a = server.call("GET", "/api/v1/pools", Some(A), None).await;
    assert!(
        as_a.body.contains(&pool),
        "the owner sees it: {}",
        as_a.body
    );
    let gets = |r: &common::Reply| r.json["counters"]["gets"].as_u64().unwrap();
    let before = server
        .call("GET", &format!("/api/v1/pools/{pool}"), Some(A), None)
        .await;
    let health = server.call("GET", "/health/db", None, None).await;
    assert!(!health.body.contains(&pool), "{}", health.body);
    let after = server
        .call("GET", &format!("/api/v1/pools/{pool}"), Some(A), None)
        .await;
    assert_eq!(
        gets(&before),
        gets(&after),
        "/health/db used a tenant's pool"
    );

    let own = server
        .create_session(B, json!({"backend": "sqlite", "url": "ok.db"}))
        .await;
    assert_eq!(own.status, 201, "{}", own.body);
    assert_ne!(own.json["pool"], made.json["pool"], "keyed by tenant too");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_sessions_leave_no_pool_and_no_connection_behind() {
    let Some((admin, addr)) = pg_admin().await else {
        return;
    };
    pg_plain_role(&admin, ROLE, "desc_quota").await;
    let (host, port) = addr.rsplit_once(':').unwrap();
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "{}{}",
        tenants("max_sessions = 1\nmax_on_demand_pools = 1"),
        pg_allow(&addr)
    );
    let server = Server::with_config(dir.path(), &toml, &[]).await;
    server.open_session(A, "demo").await;
    for i in 0..20 {
        let url = format!(
            "postgres://{ROLE}@{host}:{port}/test?sslmode=disable&application_name=tp-gw-probe-{i}"
        );
        let r = server
            .create_session(A, json!({"backend": "postgres", "url": url}))
            .await;
        assert_eq!(r.status, 429, "{}", r.body);
    }
    let pools = server.call("GET", "/api/v1/pools", Some(A), None).await;
    assert_eq!(pools.json["count"], 1, "{}", pools.body);
    let backends = admin
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'tp-gw-probe-%'",
            &[],
        )
        .await
        .unwrap()
        .get::<_, i64>(0);
    assert_eq!(backends, 0);

    // The on-demand pool quota holds on its own too.
    let dir = tempfile::tempdir().unwrap();
    let toml = format!("{}{}", tenants("max_on_demand_pools = 1"), pg_allow(&addr));
    let server = Server::with_config(dir.path(), &toml, &[]).await;
    let url = |i: u32| {
        format!(
            "postgres://{ROLE}@{host}:{port}/test?sslmode=disable&application_name=tp-gw-pool-{i}"
        )
    };
    let first = server
        .create_session(A, json!({"backend": "postgres", "url": url(1)}))
        .await;
    assert_eq!(first.status, 201, "{}", first.body);
    let again = server
        .create_session(A, json!({"backend": "postgres", "url": url(1)}))
        .await;
    assert_eq!(
        again.status, 201,
        "the same description reuses its pool: {}",
        again.body
    );
    let second = server
        .create_session(A, json!({"backend": "postgres", "url": url(2)}))
        .await;
    assert_eq!(second.status, 429, "{}", second.body);
    let other = server
        .create_session(B, json!({"backend": "postgres", "url": url(2)}))
        .await;
    assert_eq!(
        other.status, 201,
        "B has a quota of its own: {}",
        other.body
    );
}
