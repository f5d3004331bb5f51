//! What the pools say, through the real binary: a paused pool's timeout
//! says it is paused; the leak warning names its pool; a pool whose
//! database is down writes its repeated failure once, not every retry.

mod common;

use std::time::Duration;

use common::Server;
use serde_json::json;

const TOKEN: &str = "pool-logs-token-0123456789abcdef0123";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_pools_timeout_says_it_is_paused() {
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "[server]\ntokens = [\"{TOKEN}\"]\n\n\
         [pools.demo]\nbackend = \"sqlite\"\npath = \"demo.db\"\nacquire_timeout = \"300ms\"\n"
    );
    let server = Server::with_config(dir.path(), &toml, &[]).await;
    let id = server.open_session(TOKEN, "demo").await;
    let paused = server
        .call("POST", "/api/v1/pools/demo/pause", Some(TOKEN), None)
        .await;
    assert_eq!(paused.status, 200, "{}", paused.body);
    let r = server.query(TOKEN, &id, "SELECT 1", json!([])).await;
    assert_eq!(r.status, 503, "{}", r.body);
    let detail = r.json["detail"].as_str().unwrap();
    assert!(detail.contains("the pool is paused"), "{detail}");
    assert!(!detail.contains("all connections busy"), "{detail}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leak_warning_names_the_pool() {
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "[server]\ntokens = [\"{TOKEN}\"]\n\n\
         [pools.demo]\nbackend = \"sqlite\"\npath = \"demo.db\"\nleak_detection_threshold = \"100ms\"\n"
    );
    let server = Server::with_config(dir.path(), &toml, &[]).await;
    let id = server.open_session(TOKEN, "demo").await;
    let done = server.spawn_counting(TOKEN, &id, 3_000_000).await.unwrap();
    assert_eq!(done.unwrap().status, 200);
    let log = server.log_text();
    let leak = log
        .lines()
        .find(|l| l.contains("possible connection leak"))
        .unwrap_or_else(|| panic!("no leak warning:\n{log}"));
    assert!(leak.contains("pool=demo"), "{leak}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_down_database_logs_its_repeated_failure_once() {
    let dir = tempfile::tempdir().unwrap();
    let closed = tidepool_testkit::closed_port();
    // Retries every 100 ms at most: many failures in a few seconds.
    let toml = format!(
        "[server]\ntokens = [\"{TOKEN}\"]\n\n\
         [pools.down]\nbackend = \"postgres\"\nurl = \"postgres://app@127.0.0.1:{closed}/x\"\n\
         min_idle = 1\nretry_backoff = \"20ms\"\nretry_backoff_max = \"100ms\"\n\
         acquire_timeout = \"200ms\"\n"
    );
    let server = Server::with_config(dir.path(), &toml, &[("TIDEPOOL_LOG", "info")]).await;
    let id = server.open_session(TOKEN, "down").await;
    for _ in 0..20 {
        let r = server.query(TOKEN, &id, "SELECT 1", json!([])).await;
        assert_eq!(r.status, 503, "{}", r.body);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let failures = server
        .call("GET", "/api/v1/pools/down", None, None)
        .await
        .json["counters"]["create_errors"]
        .as_u64()
        .unwrap_or(0);
    let (_, log) = server.terminate().await;
    let count = |what: &str| {
        log.lines()
            .filter(|l| l.contains(&format!("WARN {what} pool=down")))
            .count()
    };
    let connects = count("connect failed");
    let timeouts = count("get timed out");
    eprintln!(
        "{failures} failed connects, {connects} connect warnings, {timeouts} timeout warnings"
    );
    assert!(failures >= 10, "the database failed often: {failures}");
    assert!(connects >= 1, "the failure was logged:\n{log}");
    assert!(
        connects <= 1,
        "the same connect failure was logged {connects} times in a few seconds:\n{log}"
    );
    assert!(
        timeouts <= 1,
        "the same timeout was logged {timeouts} times in a few seconds:\n{log}"
    );
}
