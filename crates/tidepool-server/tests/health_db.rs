//! `/health/db` through the real binary: a pool whose every connection is
//! in use is busy, not down — 200 `degraded` with the reason; 503 only when
//! a database fails.

mod common;

use std::time::{Duration, Instant};

use common::Server;
use serde_json::json;

const TOKEN: &str = "health-db-token-0123456789abcdef0123";
/// Rows the slow query counts: seconds on a loaded machine, long enough to
/// hold the pool's one connection through a health check (2 s).
const ROWS: u64 = 8_000_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_pool_is_degraded_not_down_and_a_failing_one_is_503() {
    let dir = tempfile::tempdir().unwrap();
    let closed = tidepool_testkit::closed_port();
    let toml = format!(
        "[server]\ntokens = [\"{TOKEN}\"]\nhealth_cache = \"1ms\"\nstatement_timeout = \"60s\"\n\n\
         [pools.demo]\nbackend = \"sqlite\"\npath = \"demo.db\"\nmax_size = 1\n"
    );
    let server = Server::with_config(dir.path(), &toml, &[]).await;
    let ok = server.call("GET", "/health/db", None, None).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.json["status"], "ok", "{}", ok.body);

    // One long query holds the pool's only connection.
    let id = server.open_session(TOKEN, "demo").await;
    let slow = server.spawn_counting(TOKEN, &id, ROWS);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let pool = server.call("GET", "/api/v1/pools/demo", None, None).await;
        if pool.json["gauges"]["in_use"] == 1 {
            break;
        }
        assert!(
            !slow.is_finished() && Instant::now() < deadline,
            "the query never ran"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let busy = server.call("GET", "/health/db", None, None).await;
    assert!(
        !slow.is_finished(),
        "the query ended before the check, so this proved nothing; count more rows"
    );
    assert_eq!(busy.status, 200, "busy is not down: {}", busy.body);
    assert_eq!(busy.json["status"], "degraded", "{}", busy.body);
    assert_eq!(busy.json["busy"], json!(["demo"]), "{}", busy.body);
    assert_eq!(busy.json["failing"], json!([]), "{}", busy.body);
    assert_eq!(busy.json["pools"]["demo"]["state"], "busy", "{}", busy.body);
    assert!(
        busy.json["pools"]["demo"]["reason"]
            .as_str()
            .unwrap()
            .contains("all connections busy"),
        "{}",
        busy.body
    );
    let done = slow.await.unwrap().unwrap();
    assert_eq!(done.status, 200, "{}", done.body);
    let ok = server.call("GET", "/health/db", None, None).await;
    assert_eq!(ok.json["status"], "ok", "{}", ok.body);
    drop(server);

    // A database that fails is down: 503.
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "[server]\ntokens = [\"{TOKEN}\"]\n\n\
         [pools.demo]\nbackend = \"sqlite\"\npath = \"demo.db\"\n\n\
         [pools.down]\nbackend = \"postgres\"\nurl = \"postgres://app@127.0.0.1:{closed}/x\"\nmax_retries = 0\n"
    );
    let server = Server::with_config(dir.path(), &toml, &[]).await;
    let down = server.call("GET", "/health/db", None, None).await;
    assert_eq!(down.status, 503, "{}", down.body);
    assert_eq!(down.json["status"], "failing", "{}", down.body);
    assert_eq!(down.json["failing"], json!(["down"]), "{}", down.body);
    assert_eq!(down.json["pools"]["down"]["state"], "down", "{}", down.body);
    assert_eq!(down.json["pools"]["demo"]["state"], "ok", "{}", down.body);
}
