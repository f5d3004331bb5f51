//! Issue 14 §1 on PostgreSQL: two tenants sharing a pool of one connection.
//! Each request is its own transaction, always ended, followed by a reset:
//! one tenant's BEGIN, ROLLBACK, lock, SET, LISTEN or TEMP table never
//! reaches the other.

mod common;

use common::{Server, pg_admin, pg_plain_role};
use serde_json::json;

const A: &str = "tenant-a-token-0123456789abcdef";
const B: &str = "tenant-b-token-0123456789abcdef";
const ROLE: &str = "tp_gw_iso";

fn config(addr: &str, mode: &str) -> String {
    format!(
        r#"
[server]
statement_timeout = "3s"

[[tenants]]
name = "a"
role = "query"
tokens = ["{A}"]
pools = ["main"]

[[tenants]]
name = "b"
role = "query"
tokens = ["{B}"]
pools = ["main"]

[pools.main]
backend = "postgres"
url = "postgres://{ROLE}@{addr}/test?sslmode=disable"
max_size = 1
gateway = "{mode}"
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_tenants_transaction_control_never_touches_another_tenants_work() {
    let Some((admin, addr)) = pg_admin().await else {
        return;
    };
    pg_plain_role(&admin, ROLE, "iso_txn").await;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::with_config(dir.path(), &config(&addr, "read_write"), &[]).await;
    let a = server.open_session(A, "main").await;
    let b = server.open_session(B, "main").await;

    server.query(A, &a, "BEGIN", json!([])).await;
    let insert = server
        .query(
            B,
            &b,
            "INSERT INTO iso_txn VALUES (1, 'acknowledged')",
            json!([]),
        )
        .await;
    assert_eq!(
        (insert.status, insert.json["rows_affected"].as_u64()),
        (200, Some(1)),
        "{}",
        insert.body
    );
    server.query(A, &a, "ROLLBACK", json!([])).await;
    let kept = admin
        .query_one("SELECT count(*) FROM iso_txn", &[])
        .await
        .unwrap()
        .get::<_, i64>(0);
    assert_eq!(kept, 1, "B's acknowledged write was rolled back by A");

    server.query(A, &a, "BEGIN", json!([])).await;
    let failed = server.query(A, &a, "SELECT 1/0", json!([])).await;
    assert_eq!(failed.status, 400, "{}", failed.body);
    let next = server.query(B, &b, "SELECT 1", json!([])).await;
    assert_eq!(
        next.status, 200,
        "B inherited an aborted transaction: {}",
        next.body
    );

    server.query(A, &a, "BEGIN", json!([])).await;
    let lock = server
        .query(
            A,
            &a,
            "LOCK TABLE iso_txn IN ACCESS EXCLUSIVE MODE",
            json!([]),
        )
        .await;
    assert_eq!(lock.status, 200, "{}", lock.body);
    admin
        .batch_execute("SET lock_timeout = '1s'")
        .await
        .unwrap();
    let read = admin.query_one("SELECT count(*) FROM iso_txn", &[]).await;
    assert!(read.is_ok(), "the lock outlived A's request: {read:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_state_set_by_one_tenant_is_reset_before_the_next() {
    let Some((admin, addr)) = pg_admin().await else {
        return;
    };
    pg_plain_role(&admin, ROLE, "iso_accounts").await;
    admin
        .batch_execute(&format!(
            "BEGIN; SELECT pg_advisory_xact_lock(1414); \
             DO $$ BEGIN CREATE ROLE tp_gw_iso_other NOLOGIN; \
             EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$; \
             GRANT tp_gw_iso_other TO {ROLE}; \
             DO $$ BEGIN CREATE TYPE tp_gw_iso_mood_a AS ENUM ('a'); \
             EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$; \
             DO $$ BEGIN CREATE TYPE tp_gw_iso_mood_b AS ENUM ('b'); \
             EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$; \
             INSERT INTO iso_accounts VALUES (1, 'real'); COMMIT;"
        ))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::with_config(dir.path(), &config(&addr, "read_write"), &[]).await;
    let a = server.open_session(A, "main").await;
    let b = server.open_session(B, "main").await;

    for sql in [
        "SET ROLE tp_gw_iso_other",
        "SET search_path = pg_catalog",
        "SET default_transaction_read_only = on",
        "LISTEN tenant_a_channel",
        "CREATE TEMP TABLE iso_accounts AS SELECT 99 AS id, 'forged'::text AS note",
        "PREPARE tenant_a_stmt AS SELECT 1",
        "SELECT pg_advisory_lock(4242)",
    ] {
        let r = server.query(A, &a, sql, json!([])).await;
        assert_eq!(r.status, 200, "{sql}: {}", r.body);
    }
    let seen = server
        .query(
            B,
            &b,
            "SELECT current_user::text, current_setting('search_path'), \
             current_setting('default_transaction_read_only'), \
             (SELECT count(*) FROM pg_listening_channels()), \
             (SELECT note FROM iso_accounts LIMIT 1), \
             (SELECT count(*) FROM pg_prepared_statements WHERE from_sql), \
             (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid())",
            json!([]),
        )
        .await;
    assert_eq!(
        seen.json["rows"],
        json!([[ROLE, "\"$user\", public", "off", 0, "real", 0, 0]]),
        "{}",
        seen.body
    );
    let write = server
        .query(B, &b, "INSERT INTO iso_accounts VALUES (2, 'b')", json!([]))
        .await;
    assert_eq!(write.status, 200, "{}", write.body);

    // A DEALLOCATE ALL drops the driver's own statements (its type lookups):
    // the next tenant must not be handed a connection that lost them.
    let first = server
        .query(B, &b, "SELECT 'a'::tp_gw_iso_mood_a", json!([]))
        .await;
    assert_eq!(first.json["rows"], json!([["a"]]), "{}", first.body);
    let r = server.query(A, &a, "DEALLOCATE ALL", json!([])).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let second = server
        .query(B, &b, "SELECT 'b'::tp_gw_iso_mood_b", json!([]))
        .await;
    assert_eq!(second.json["rows"], json!([["b"]]), "{}", second.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_gateway_cannot_be_talked_into_writing() {
    let Some((admin, addr)) = pg_admin().await else {
        return;
    };
    pg_plain_role(&admin, ROLE, "iso_ro").await;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::with_config(dir.path(), &config(&addr, "read_only"), &[]).await;
    let a = server.open_session(A, "main").await;
    let insert = server
        .query(A, &a, "INSERT INTO iso_ro VALUES (1, 'x')", json!([]))
        .await;
    assert_eq!(insert.status, 400, "{}", insert.body);
    assert!(insert.body.contains("read-only"), "{}", insert.body);
    for escape in [
        json!([
            ["COMMIT", []],
            ["INSERT INTO iso_ro VALUES (2, 'after commit')", []]
        ]),
        json!([
            ["ROLLBACK", []],
            ["INSERT INTO iso_ro VALUES (3, 'after rollback')", []]
        ]),
        json!([
            ["SET TRANSACTION READ WRITE", []],
            ["INSERT INTO iso_ro VALUES (4, 'rw')", []]
        ]),
        json!([
            ["COMMIT", []],
            ["SET default_transaction_read_only = off", []],
            ["INSERT INTO iso_ro VALUES (5, 'x')", []]
        ]),
    ] {
        let r = server.transaction(A, &a, escape.clone()).await;
        assert!(r.status >= 400, "{escape}: {}", r.body);
    }
    let written = admin
        .query_one("SELECT count(*) FROM iso_ro", &[])
        .await
        .unwrap()
        .get::<_, i64>(0);
    assert_eq!(written, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_request_gives_its_connection_back_for_reuse() {
    let Some((admin, addr)) = pg_admin().await else {
        return;
    };
    pg_plain_role(&admin, ROLE, "iso_reuse").await;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::with_config(dir.path(), &config(&addr, "read_write"), &[]).await;
    let a = server.open_session(A, "main").await;
    for i in 0..5 {
        let r = server
            .query(A, &a, "INSERT INTO iso_reuse VALUES ($1, 'x')", json!([i]))
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        let r = server
            .query(A, &a, "SELECT count(*) FROM iso_reuse", json!([]))
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let stats = server.call("GET", "/api/v1/pools/main", None, None).await;
    assert_eq!(stats.json["counters"]["created"], 1, "{}", stats.body);
}
