//! `tidepool load --url`: the real binary drives the real server's query
//! gateway over HTTP (sessions, keep-alive), and its report is checked
//! against the server's own counters.

mod common;

use common::{Server, count as u, load_gateway, load_json};

const TOKEN: &str = "load-gateway-token-0123456789abcdef";

/// The server with the demo database as pool `demo` (read-only), and a
/// query tenant whose quotas leave room for a load test (the defaults, 2
/// statements at once and 50 requests/s, would refuse most requests).
async fn serve_demo(dir: &std::path::Path) -> Server {
    let db = dir.join("demo.db");
    let conn = tidepool_sqlite::rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(tidepool_server::sample::SAMPLE_SQL)
        .unwrap();
    drop(conn);
    let toml = format!(
        r#"
[[tenants]]
name = "loader"
role = "query"
tokens = ["${{LOAD_TOKEN}}"]
pools = ["demo"]
max_concurrent_queries = 8
requests_per_second = 100000
burst = 100000

[pools.demo]
backend = "sqlite"
path = "{}"
max_size = 4
"#,
        db.display()
    );
    Server::with_config(dir, &toml, &[("LOAD_TOKEN", TOKEN)]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_is_loaded_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve_demo(dir.path()).await;
    let token = dir.path().join("token");
    std::fs::write(&token, format!("{TOKEN}\n")).unwrap();
    let before = server
        .call("GET", "/api/v1/pools/demo", None, None)
        .await
        .json;
    let url = format!("http://{}", server.addr);
    let w = dir.path().join("w.toml");
    std::fs::write(
        &w,
        r#"
[[statement]]
weight = 9
sql = "SELECT name FROM employees WHERE id = ?1"
params = [{ int = [1, 6] }]

[[statement]]
name = "write"
sql = "DELETE FROM employees WHERE id = ?1"
params = [{ int = [1, 6] }]
"#,
    )
    .unwrap();
    let args: Vec<String> = [
        "--url",
        &url,
        "--token-file",
        token.to_str().unwrap(),
        "--pool",
        "demo",
        "--requests",
        "300",
        "--clients",
        "4",
        "--workload",
        w.to_str().unwrap(),
    ]
    .map(str::to_owned)
    .to_vec();
    let cwd = dir.path().to_owned();
    let (ran, out) = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        load_json(&cwd, &args)
    })
    .await
    .unwrap();
    assert!(!ran.stdout.contains(TOKEN) && !ran.stderr.contains(TOKEN));
    assert_eq!(out["target"], "gateway");
    assert_eq!(out["backend"], "sqlite");
    let run = &out["run"];
    assert_eq!(u(&run["requests"]), 300);
    // The demo pool is read-only: every write is refused by the database,
    // and counted once, under the gateway's answer.
    let errors = u(&run["errors"]);
    let kinds = run["errors_by_kind"].as_array().unwrap();
    assert_eq!(kinds.len(), 1, "{kinds:?}");
    assert_eq!(kinds[0]["kind"], "http 403 not_authorized");
    assert_eq!(u(&kinds[0]["count"]), errors);
    assert!(errors > 0 && errors < 100, "{run}");
    // The server's counters moved by exactly the requests made.
    let after = server
        .call("GET", "/api/v1/pools/demo", None, None)
        .await
        .json;
    let gets = u(&after["counters"]["gets"]) - u(&before["counters"]["gets"]);
    assert_eq!(gets, 300, "one get per request");
    assert_eq!(u(&run["pool"]["counters"]["gets"]), 300);
    assert!(
        ran.stdout
            .contains("through the gateway at http://127.0.0.1:")
    );
    // Sessions were closed at the end.
    let stats = server
        .call("GET", "/api/v1/sessions/stats", Some(TOKEN), None)
        .await;
    assert_eq!(stats.json["active"], 0, "{}", stats.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_or_unknown_pool_is_said() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve_demo(dir.path()).await;
    let url = format!("http://{}", server.addr);
    let good = dir.path().join("good");
    std::fs::write(&good, TOKEN).unwrap();
    let bad = dir.path().join("bad");
    std::fs::write(&bad, "not-the-token-at-all").unwrap();
    let run = |token: std::path::PathBuf, pool: &'static str| {
        let dir = dir.path().to_owned();
        let url = url.clone();
        tokio::task::spawn_blocking(move || load_gateway(&dir, &url, &token, pool))
    };
    let ran = run(bad, "demo").await.unwrap();
    assert_eq!(ran.status.code(), Some(1), "{}", ran.stderr);
    assert!(
        ran.stderr
            .contains("refused the token from --token-file (401"),
        "{}",
        ran.stderr
    );
    assert!(!ran.stderr.contains("not-the-token-at-all"));
    let ran = run(good, "nope").await.unwrap();
    assert_eq!(ran.status.code(), Some(1), "{}", ran.stderr);
    assert!(ran.stderr.contains("has no pool `nope`"), "{}", ran.stderr);
}
