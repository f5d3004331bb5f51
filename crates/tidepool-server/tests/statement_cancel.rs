//! Issue 15 §1: a statement past its timeout is stopped, and the work it
//! leaves behind never takes more than the pool's `max_size` — on
//! PostgreSQL counted as server processes (`pg_stat_activity`), on SQLite
//! as connections open on the database file.

mod common;
mod procfs;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Server, pg_admin, pg_plain_role};
use procfs::Peak;
use serde_json::json;

const TOKEN: &str = "bound-cancel-token-0123456789abcdef";
const ROLE: &str = "tp_bound";

/// A statement that catches every cancel and runs about `secs` seconds.
fn stubborn(secs: u32) -> String {
    format!(
        "DO $$ DECLARE t timestamptz := clock_timestamp(); BEGIN \
           WHILE clock_timestamp() < t + interval '{secs} seconds' LOOP \
             BEGIN PERFORM pg_sleep(0.05); EXCEPTION WHEN query_canceled THEN NULL; END; \
           END LOOP; END $$"
    )
}

fn tenant() -> String {
    format!(
        r#"
[[tenants]]
name = "bound"
role = "admin"
tokens = ["{TOKEN}"]
max_concurrent_queries = 16
requests_per_second = 1000
burst = 1000
"#
    )
}

async fn backends(admin: &tidepool_postgres::tokio_postgres::Client, app: &str) -> usize {
    let n: i64 = admin
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
            &[&app],
        )
        .await
        .unwrap()
        .get(0);
    usize::try_from(n).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_postgres_statement_is_cancelled_and_never_outgrows_the_pool() {
    let Some((admin, addr)) = pg_admin().await else {
        return;
    };
    pg_plain_role(&admin, ROLE, "bound_cancel").await;
    let app = "tp_bound_cancel";
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        r#"
[server]
statement_timeout = "300ms"
{}
[pools.main]
backend = "postgres"
url = "postgres://{ROLE}@{addr}/test?sslmode=disable&application_name={app}"
max_size = 2
acquire_timeout = "1s"
"#,
        tenant()
    );
    let server = Server::with_config(dir.path(), &toml, &[]).await;
    let sid = server.open_session(TOKEN, "main").await;

    // A plain statement past its timeout: cancelled, and its session closed.
    let slept = server
        .query(TOKEN, &sid, "SELECT pg_sleep(60)", json!([]))
        .await;
    assert_eq!(slept.status, 408, "{}", slept.body);
    let deadline = Instant::now() + Duration::from_secs(10);
    while backends(&admin, app).await > 0 {
        assert!(
            Instant::now() < deadline,
            "the cancelled statement's session is still there after 10 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Statements that catch their cancel and run on: their sessions keep
    // their slots until they end, so the pool never has more than 2.
    let watcher = Arc::new(pg_admin().await.unwrap().0);
    let peak = Peak::watch(move || {
        let watcher = Arc::clone(&watcher);
        async move { backends(&watcher, app).await }
    });
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let r = server.query(TOKEN, &sid, &stubborn(5), json!([])).await;
        statuses.push(r.status);
    }
    let highest_during = peak.highest();
    assert!(
        statuses.iter().all(|s| [408, 503].contains(s)),
        "{statuses:?}"
    );
    assert!(
        statuses.iter().filter(|s| **s == 408).count() >= 2,
        "{statuses:?}"
    );
    // Once they have ended, the pool serves again.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = server
            .query(TOKEN, &sid, "SELECT 1 AS one", json!([]))
            .await;
        if r.status == 200 {
            assert_eq!(r.json["rows"], json!([[1]]));
            break;
        }
        assert!(Instant::now() < deadline, "never served again: {}", r.body);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let highest = peak.stop().await;
    assert!(
        highest <= 2,
        "the pool of 2 had {highest} server processes (statuses {statuses:?}, {highest_during} while they ran)"
    );
    assert!(highest >= 1, "the watcher saw the pool's sessions");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_work_stops_after_its_408_and_never_outgrows_the_pool() {
    if !procfs::available() {
        eprintln!("skipped: needs /proc");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        r#"
[server]
statement_timeout = "300ms"
{}
[pools.lite]
backend = "sqlite"
path = "lite.db"
max_size = 2
acquire_timeout = "1s"
gateway = "read_write"

[pools.lite.pragmas]
busy_timeout = "10s"
"#,
        tenant()
    );
    let server = Server::with_config(dir.path(), &toml, &[]).await;
    let sid = server.open_session(TOKEN, "lite").await;
    let pid = server.child.id();

    // A statement SQLite itself runs forever: interrupted.
    let endless = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) \
                   SELECT count(*) FROM c";
    let r = server.query(TOKEN, &sid, endless, json!([])).await;
    assert_eq!(r.status, 408, "{}", r.body);
    wait_idle(&server, "lite").await;
    let file = dir.path().join("lite.db").canonicalize().unwrap();

    // Another writer holds the database's write lock: each INSERT waits
    // for it (up to busy_timeout, 10 s), where no interrupt reaches. The
    // wait must end with its 408, or at least keep its connection's slot.
    let writer = tidepool_sqlite::rusqlite::Connection::open(&file).unwrap();
    writer
        .execute_batch(
            "CREATE TABLE IF NOT EXISTS t (x); BEGIN IMMEDIATE; INSERT INTO t VALUES (0);",
        )
        .unwrap();
    let peak = Peak::watch(move || {
        let file = file.clone();
        async move { procfs::open_count(pid, &file) }
    });
    let mut statuses = Vec::new();
    for i in 1..=6 {
        let r = server
            .query(TOKEN, &sid, "INSERT INTO t VALUES (?1)", json!([i]))
            .await;
        statuses.push(r.status);
    }
    assert!(
        statuses.iter().all(|s| [408, 503].contains(s)),
        "{statuses:?}"
    );
    assert!(statuses.contains(&408), "{statuses:?}");
    // The waits stopped with their requests: the pool is idle again well
    // before the busy_timeout of any of them (10 s) could have ended them.
    let started = Instant::now();
    wait_idle(&server, "lite").await;
    let idle_after = started.elapsed();
    let highest = peak.stop().await;
    writer.execute_batch("COMMIT").unwrap();
    assert!(
        highest <= 2,
        "the pool of 2 had {highest} SQLite connections open at once (statuses {statuses:?})"
    );
    assert!(
        idle_after < Duration::from_secs(5),
        "the lock waits went on for {idle_after:?} after their requests ended"
    );
    let r = server
        .query(TOKEN, &sid, "INSERT INTO t VALUES (7)", json!([]))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
}

/// Waits (up to 30 s) until no connection of `pool` is in use.
async fn wait_idle(server: &Server, pool: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = server
            .call("GET", &format!("/api/v1/pools/{pool}"), Some(TOKEN), None)
            .await;
        let gauges = &r.json["gauges"];
        if gauges["in_use"] == json!(0) && gauges["closing"].as_u64().unwrap_or(0) == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "pool `{pool}` still busy after 30 s: {gauges}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
