//! Issue 15 §3: what a tenant sends never enters the shared redactor (so it
//! cannot mask other tenants' errors or the configuration, nor grow the
//! server's memory); a password in a description URL never reaches a log
//! or a file name; a short password containing `#` is masked in
//! `/api/v1/config` like any other.

mod common;

use common::Server;
use serde_json::json;

const A: &str = "tenant-a-token-0123456789abcdef0123";
const B: &str = "tenant-b-token-0123456789abcdef0123";

/// The server's resident memory in KiB.
fn rss_kib(server: &Server) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.child.id())).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn config(closed: u16, sqlite_dir: &std::path::Path, extra: &str) -> String {
    format!(
        r#"
[[tenants]]
name = "a"
role = "admin"
tokens = ["{A}"]
requests_per_second = 100000
burst = 100000
max_on_demand_pools = 20

[[tenants]]
name = "b"
role = "query"
tokens = ["{B}"]
pools = ["demo"]

[pools.demo]
backend = "sqlite"
path = "demo.db"
{extra}

[descriptions]
enabled = true
gateway = "read_write"

[[descriptions.allow]]
backend = "postgres"
host = "127.0.0.1"
port = {closed}
database = "x"
user = "*"

[[descriptions.allow]]
backend = "sqlite"
directory = "{}"
create = true
"#,
        sqlite_dir.display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_strings_never_enter_the_shared_redactor() {
    let dir = tempfile::tempdir().unwrap();
    let sq = dir.path().join("sq");
    std::fs::create_dir(&sq).unwrap();
    let closed = tidepool_testkit::closed_port();
    let server = Server::with_config(dir.path(), &config(closed, &sq, ""), &[]).await;

    // Tenant `a` sends descriptions, refused or failing, whose "passwords"
    // are words of other tenants' answers and of the configuration.
    for word in [
        "no pool named",
        "no such table",
        "sqlite",
        "read_only",
        "demo",
    ] {
        for url in [
            format!("postgres://u:{word}@10.255.255.1:5432/x"),
            format!("postgres://u:{word}@127.0.0.1:{closed}/x"),
        ] {
            let r = server
                .create_session(A, json!({"backend": "postgres", "url": url}))
                .await;
            assert!(r.status == 403 || r.status == 400, "{}", r.body);
        }
    }
    let unknown = server
        .create_session(B, json!({"pool": "no pool named x"}))
        .await;
    assert_eq!(unknown.status, 404, "{}", unknown.body);
    assert!(
        unknown.json["detail"]
            .as_str()
            .unwrap()
            .starts_with("no pool named"),
        "another tenant's error was masked: {}",
        unknown.body
    );
    let id = server.open_session(B, "demo").await;
    let bad = server
        .query(B, &id, "SELECT * FROM nowhere", json!([]))
        .await;
    assert!(
        bad.body.contains("no such table"),
        "another tenant's SQL error was masked: {}",
        bad.body
    );
    let cfg = server.call("GET", "/api/v1/config", Some(A), None).await;
    assert_eq!(cfg.status, 200, "{}", cfg.body);
    assert_eq!(
        cfg.json["pools"]["demo"]["backend"], "sqlite",
        "{}",
        cfg.body
    );
    assert_eq!(cfg.json["pools"]["demo"]["gateway"], "read_only");

    // Thousands of large refused "secrets" leave the server's memory where
    // it was: nothing of a request is kept. (Kept, they would add 60 MB.)
    let before = rss_kib(&server);
    let filler = "x".repeat(20_000);
    for i in 0..3000 {
        let url = format!("postgres://u:{i}{filler}@10.255.255.1:5432/x");
        let r = server
            .create_session(A, json!({"backend": "postgres", "url": url}))
            .await;
        assert_eq!(r.status, 403, "{}", r.body);
    }
    let after = rss_kib(&server);
    eprintln!("server RSS: {before} KiB before, {after} KiB after 3000 refused descriptions");
    assert!(
        after < before + 30 * 1024,
        "RSS grew from {before} KiB to {after} KiB over 3000 refused descriptions"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn description_passwords_never_reach_a_log_or_a_file_name() {
    let dir = tempfile::tempdir().unwrap();
    let sq = dir.path().join("sq");
    std::fs::create_dir(&sq).unwrap();
    let closed = tidepool_testkit::closed_port();
    let server = Server::with_config(
        dir.path(),
        &config(closed, &sq, ""),
        &[("TIDEPOOL_LOG", "trace")],
    )
    .await;
    let secrets = ["PwSqliteA1", "PwSqliteB2", "PwPgHash#3", "PwPgFields4"];
    let bodies = [
        json!({"backend": "sqlite", "url": "sqlite://user:PwSqliteA1@made.db"}),
        json!({"backend": "sqlite", "url": format!("sqlite://user:PwSqliteB2@{}/made.db", sq.display())}),
        json!({"backend": "postgres", "url": format!("postgres://u:PwPgHash#3@127.0.0.1:{closed}/x")}),
        json!({"backend": "postgres", "host": "127.0.0.1", "port": closed, "database": "x",
               "username": "u", "password": "PwPgFields4"}),
    ];
    for body in &bodies {
        let r = server.create_session(A, body.clone()).await;
        assert_eq!(r.status, 400, "{body}: {}", r.body);
        for s in secrets {
            assert!(!r.body.contains(s), "{s} in an answer: {}", r.body);
        }
    }
    let (status, log) = server.terminate().await;
    assert!(status.success(), "{log}");
    assert!(
        log.contains("connect failed"),
        "the failing connects were logged: {log}"
    );
    for s in secrets {
        for line in log.lines() {
            assert!(!line.contains(s), "{s} in a log line: {line}");
        }
    }
    let names: Vec<String> = std::fs::read_dir(&sq)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    for s in secrets {
        assert!(
            !names.iter().any(|n| n.contains(s)),
            "{s} became a file name: {names:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_password_with_a_hash_is_masked_in_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let sq = dir.path().join("sq");
    std::fs::create_dir(&sq).unwrap();
    let closed = tidepool_testkit::closed_port();
    let pools = format!(
        "\n[pools.short]\nbackend = \"postgres\"\nurl = \"postgres://app:p#1@127.0.0.1:{closed}/x\"\n\
         \n[pools.plain]\nbackend = \"postgres\"\nurl = \"postgres://app:q2@127.0.0.1:{closed}/x\"\n"
    );
    let server = Server::with_config(dir.path(), &config(closed, &sq, &pools), &[]).await;
    let cfg = server.call("GET", "/api/v1/config", Some(A), None).await;
    assert_eq!(cfg.status, 200, "{}", cfg.body);
    assert_eq!(
        cfg.json["pools"]["short"]["url"],
        format!("postgres://app:***@127.0.0.1:{closed}/x"),
        "{}",
        cfg.body
    );
    assert_eq!(
        cfg.json["pools"]["plain"]["url"],
        format!("postgres://app:***@127.0.0.1:{closed}/x"),
        "{}",
        cfg.body
    );
    assert!(!cfg.body.contains("p#1"), "{}", cfg.body);
}
