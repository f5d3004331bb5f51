//! Issue 15 §4: a PostgreSQL session ended by the server under a request
//! (`pg_terminate_backend`) is the server's trouble — 503, not the
//! client's 400 — and a connection whose session is gone is never handed
//! to a later request.

mod common;

use std::time::{Duration, Instant};

use common::{Server, pg_admin, pg_plain_role};
use serde_json::json;

const TOKEN: &str = "bound-loss-token-0123456789abcdef";
const ROLE: &str = "tp_bound";
const APP: &str = "tp_bound_loss";

/// Ends every session of the pool; waits for each to be gone when `wait`.
async fn terminate_all(admin: &tidepool_postgres::tokio_postgres::Client, wait: bool) -> i64 {
    let sql = if wait {
        "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 5000)) \
         FROM pg_stat_activity WHERE application_name = $1"
    } else {
        "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) \
         FROM pg_stat_activity WHERE application_name = $1"
    };
    admin.query_one(sql, &[&APP]).await.unwrap().get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_ended_mid_query_answers_503_and_its_connection_is_never_reused() {
    let Some((admin, addr)) = pg_admin().await else {
        return;
    };
    pg_plain_role(&admin, ROLE, "bound_loss").await;
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        r#"
[server]
tokens = ["{TOKEN}"]
statement_timeout = "30s"

[pools.main]
backend = "postgres"
url = "postgres://{ROLE}@{addr}/test?sslmode=disable&application_name={APP}"
max_size = 1
"#
    );
    let server = Server::with_config(dir.path(), &toml, &[]).await;
    let sid = server.open_session(TOKEN, "main").await;
    let ok = server.query(TOKEN, &sid, "SELECT 1", json!([])).await;
    assert_eq!(ok.status, 200, "{}", ok.body);

    // Ended while it runs a statement.
    let running = {
        let (addr, sid) = (server.addr.clone(), sid.clone());
        tokio::spawn(async move {
            let body = json!({"sql": "SELECT pg_sleep(20)", "params": []}).to_string();
            common::request(
                &addr,
                "POST",
                &format!("/api/v1/sessions/{sid}/query"),
                Some(TOKEN),
                Some(&body),
            )
            .await
            .unwrap()
        })
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let active: i64 = admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 \
                 AND state = 'active' AND query LIKE '%pg_sleep(20)%'",
                &[&APP],
            )
            .await
            .unwrap()
            .get(0);
        if active == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "the statement never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(terminate_all(&admin, false).await, 1);
    let ended = running.await.unwrap();
    assert_eq!(ended.status, 503, "{}", ended.body);
    assert_eq!(
        ended.json["error"], "database_unavailable",
        "{}",
        ended.body
    );
    for i in 0..3 {
        let r = server.query(TOKEN, &sid, "SELECT 1", json!([])).await;
        assert_eq!(r.status, 200, "request {i} after the kill: {}", r.body);
    }

    // Ended while idle in the pool, then asked for at once: the request
    // never runs on the dead session.
    for wait in [true, false] {
        assert_eq!(terminate_all(&admin, wait).await, 1);
        for i in 0..3 {
            let r = server.query(TOKEN, &sid, "SELECT 1", json!([])).await;
            assert_eq!(
                r.status, 200,
                "request {i} after an idle kill (waited: {wait}): {}",
                r.body
            );
        }
    }
}
