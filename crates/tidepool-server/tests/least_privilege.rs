//! Issue 14 §2: per-pool gateway modes enforced by the database, a SQLite
//! authorizer in every mode, and PostgreSQL pools whose role is privileged
//! refused unless the operator says otherwise.

mod common;

use common::{Server, pg_admin, pg_plain_role};
use serde_json::json;

const TOKEN: &str = "admin-token-0123456789abcdef0123";

fn sqlite_config(mode: Option<&str>) -> String {
    let mode = mode
        .map(|m| format!("gateway = \"{m}\"\n"))
        .unwrap_or_default();
    format!(
        r#"
[server]
tokens = ["{TOKEN}"]

[pools.demo]
backend = "sqlite"
path = "demo.db"
{mode}"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_gateways_refuse_attach_vacuum_into_and_extensions_in_every_mode() {
    for mode in [None, Some("read_write")] {
        let dir = tempfile::tempdir().unwrap();
        let c = tidepool_sqlite::rusqlite::Connection::open(dir.path().join("demo.db")).unwrap();
        c.execute_batch(
            "CREATE TABLE employees (name TEXT); INSERT INTO employees VALUES ('Ada');",
        )
        .unwrap();
        tidepool_sqlite::rusqlite::Connection::open(dir.path().join("private.db"))
            .unwrap()
            .execute_batch("CREATE TABLE secrets (s TEXT); INSERT INTO secrets VALUES ('s3');")
            .unwrap();
        drop(c);
        let server = Server::with_config(dir.path(), &sqlite_config(mode), &[]).await;
        let id = server.open_session(TOKEN, "demo").await;
        let evil = dir.path().join("evil.db");
        let copy = dir.path().join("copy.db");
        let private = dir.path().join("private.db");
        for sql in [
            format!("ATTACH DATABASE '{}' AS evil", evil.display()),
            format!("ATTACH DATABASE '{}' AS p", private.display()),
            format!("VACUUM INTO '{}'", copy.display()),
            "SELECT load_extension('/tmp/nothing.so')".to_owned(),
            "PRAGMA journal_mode = DELETE".to_owned(),
            "PRAGMA writable_schema = ON".to_owned(),
        ] {
            let r = server.query(TOKEN, &id, &sql, json!([])).await;
            assert!(
                r.status == 403 || r.status == 400,
                "{mode:?}: {sql} answered {}: {}",
                r.status,
                r.body
            );
        }
        assert!(!evil.exists(), "{mode:?}: ATTACH created a file");
        assert!(!copy.exists(), "{mode:?}: VACUUM INTO wrote a copy");
        let write = server
            .query(
                TOKEN,
                &id,
                "INSERT INTO employees VALUES ('Mallory')",
                json!([]),
            )
            .await;
        if mode.is_none() {
            assert_eq!(
                write.status, 403,
                "read_only is the default: {}",
                write.body
            );
            assert_eq!(write.json["error"], "not_authorized", "{}", write.body);
        } else {
            assert_eq!(write.status, 200, "{}", write.body);
        }
        let read = server
            .query(TOKEN, &id, "SELECT count(*) FROM employees", json!([]))
            .await;
        assert_eq!(read.status, 200, "{}", read.body);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_with_the_gateway_off_opens_no_session() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::with_config(dir.path(), &sqlite_config(Some("off")), &[]).await;
    let r = server.create_session(TOKEN, json!({"pool": "demo"})).await;
    assert_eq!(r.status, 403, "{}", r.body);
    let stats = server.call("GET", "/api/v1/pools/demo", None, None).await;
    assert_eq!(stats.status, 200, "the pool itself is still monitored");
}

fn pg_config(addr: &str, user: &str, extra: &str) -> String {
    format!(
        r#"
[server]
tokens = ["{TOKEN}"]

[pools.main]
backend = "postgres"
url = "postgres://{user}@{addr}/test?sslmode=disable"
gateway = "read_write"
{extra}
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_superuser_pool_serves_no_gateway_unless_the_operator_allows_it() {
    let Some((admin, addr)) = pg_admin().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let server = Server::with_config(dir.path(), &pg_config(&addr, "postgres", ""), &[]).await;
    let r = server.create_session(TOKEN, json!({"pool": "main"})).await;
    assert_eq!(r.status, 403, "{}", r.body);
    let stats = server.call("GET", "/api/v1/pools/main", None, None).await;
    assert_eq!(stats.status, 200);
    let (_, log) = server.terminate().await;
    assert!(
        log.contains("superuser") && log.contains("allow_privileged_role"),
        "{log}"
    );

    // A role granted pg_read_server_files is refused the same way.
    admin
        .batch_execute(
            "BEGIN; SELECT pg_advisory_xact_lock(1414); \
             DO $$ BEGIN CREATE ROLE tp_gw_reads_files LOGIN; \
             EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$; \
             GRANT pg_read_server_files TO tp_gw_reads_files; COMMIT;",
        )
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let server =
        Server::with_config(dir.path(), &pg_config(&addr, "tp_gw_reads_files", ""), &[]).await;
    let r = server.create_session(TOKEN, json!({"pool": "main"})).await;
    assert_eq!(r.status, 403, "{}", r.body);
    let (_, log) = server.terminate().await;
    assert!(log.contains("pg_read_server_files"), "{log}");

    let dir = tempfile::tempdir().unwrap();
    let server = Server::with_config(
        dir.path(),
        &pg_config(&addr, "postgres", "allow_privileged_role = true"),
        &[],
    )
    .await;
    let id = server.open_session(TOKEN, "main").await;
    let r = server.query(TOKEN, &id, "SELECT 1", json!([])).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(server.log_text().contains("allow_privileged_role"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_role_cannot_read_files_run_programs_or_end_other_backends() {
    let Some((admin, addr)) = pg_admin().await else {
        return;
    };
    pg_plain_role(&admin, "tp_gw_plain", "priv_plain").await;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::with_config(dir.path(), &pg_config(&addr, "tp_gw_plain", ""), &[]).await;
    let id = server.open_session(TOKEN, "main").await;
    let marker = dir.path().join("ran");
    for sql in [
        "SELECT pg_read_file('/etc/passwd')".to_owned(),
        format!("COPY (SELECT 1) TO PROGRAM 'touch {}'", marker.display()),
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'postgres'"
            .to_owned(),
    ] {
        let r = server.query(TOKEN, &id, &sql, json!([])).await;
        assert_eq!(r.status, 400, "{sql}: {}", r.body);
        assert!(
            r.body.contains("permission denied") || r.body.contains("must be"),
            "{sql}: {}",
            r.body
        );
    }
    assert!(!marker.exists());
    assert!(
        admin.simple_query("SELECT 1").await.is_ok(),
        "the admin connection survived"
    );
}
