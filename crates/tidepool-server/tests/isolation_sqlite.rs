//! Issue 14 §1 on SQLite: nothing one tenant's request leaves on a pooled
//! connection reaches the next request — TEMP objects, ATTACH and
//! state-changing PRAGMAs are refused (an authorizer, not SQL parsing), and
//! `rows_affected` is only ever the current statement's.

mod common;

use common::Server;
use serde_json::json;

const A: &str = "tenant-a-token-0123456789abcdef";
const B: &str = "tenant-b-token-0123456789abcdef";

fn config(mode: &str) -> String {
    format!(
        r#"
[[tenants]]
name = "a"
role = "query"
tokens = ["{A}"]
pools = ["shared"]

[[tenants]]
name = "b"
role = "query"
tokens = ["{B}"]
pools = ["shared"]

[pools.shared]
backend = "sqlite"
path = "shared.db"
max_size = 1
gateway = "{mode}"
"#
    )
}

fn seed(dir: &std::path::Path) {
    let c = tidepool_sqlite::rusqlite::Connection::open(dir.join("shared.db")).unwrap();
    c.execute_batch(
        "CREATE TABLE employees (name TEXT NOT NULL);
         INSERT INTO employees VALUES ('Ada'), ('Grace');
         CREATE TABLE loot (name TEXT);
         CREATE TABLE parent (id INTEGER PRIMARY KEY);
         CREATE TABLE child (parent_id INTEGER REFERENCES parent(id));",
    )
    .unwrap();
    tidepool_sqlite::rusqlite::Connection::open(dir.join("other.db"))
        .unwrap()
        .execute_batch("CREATE TABLE secrets (s TEXT); INSERT INTO secrets VALUES ('x');")
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn temp_objects_attach_and_pragmas_never_reach_another_tenant() {
    let dir = tempfile::tempdir().unwrap();
    seed(dir.path());
    let server = Server::with_config(dir.path(), &config("read_write"), &[]).await;
    let a = server.open_session(A, "shared").await;
    let b = server.open_session(B, "shared").await;

    for sql in [
        "CREATE TEMP VIEW employees AS SELECT 'forged' AS name",
        "CREATE TEMP TABLE employees (name TEXT)",
        "CREATE TEMP TRIGGER spy AFTER INSERT ON employees BEGIN INSERT INTO loot VALUES (new.name); END",
        "ATTACH DATABASE 'other.db' AS other",
        "PRAGMA foreign_keys = OFF",
        "PRAGMA query_only = 1",
        "BEGIN",
    ] {
        let r = server.query(A, &a, sql, json!([])).await;
        assert_eq!(r.status, 403, "{sql} was not refused: {}", r.body);
        assert_eq!(r.json["error"], "not_authorized", "{}", r.body);
    }
    let names = server
        .query(B, &b, "SELECT name FROM employees ORDER BY name", json!([]))
        .await;
    assert_eq!(
        names.json["rows"],
        json!([["Ada"], ["Grace"]]),
        "{}",
        names.body
    );
    let insert = server
        .query(B, &b, "INSERT INTO employees VALUES (?1)", json!(["Alan"]))
        .await;
    assert_eq!(insert.json["rows_affected"], 1, "{}", insert.body);
    let loot = server
        .query(A, &a, "SELECT count(*) FROM loot", json!([]))
        .await;
    assert_eq!(loot.json["rows"], json!([[0]]), "{}", loot.body);
    let attached = server
        .query(B, &b, "SELECT count(*) FROM other.secrets", json!([]))
        .await;
    assert_eq!(
        attached.status, 400,
        "ATTACH carried over: {}",
        attached.body
    );
    let fk = server.query(B, &b, "PRAGMA foreign_keys", json!([])).await;
    assert_eq!(fk.json["rows"], json!([[1]]), "{}", fk.body);
    let orphan = server
        .query(B, &b, "INSERT INTO child VALUES (42)", json!([]))
        .await;
    assert_eq!(
        orphan.status, 400,
        "foreign keys still enforced: {}",
        orphan.body
    );
    let write = server
        .query(
            B,
            &b,
            "INSERT INTO loot VALUES ('still writable')",
            json!([]),
        )
        .await;
    assert_eq!(
        write.status, 200,
        "query_only did not carry over: {}",
        write.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_affected_is_only_the_current_statements() {
    let dir = tempfile::tempdir().unwrap();
    seed(dir.path());
    let server = Server::with_config(dir.path(), &config("read_write"), &[]).await;
    let a = server.open_session(A, "shared").await;
    let b = server.open_session(B, "shared").await;
    let three = server
        .query(
            A,
            &a,
            "INSERT INTO loot VALUES ('1'), ('2'), ('3')",
            json!([]),
        )
        .await;
    assert_eq!(three.json["rows_affected"], 3, "{}", three.body);
    let ddl = server
        .query(B, &b, "CREATE TABLE mine (x INTEGER)", json!([]))
        .await;
    assert_eq!(ddl.status, 200, "{}", ddl.body);
    assert_eq!(ddl.json["rows_affected"], 0, "{}", ddl.body);
    let none = server
        .query(B, &b, "DELETE FROM loot WHERE name = 'nothing'", json!([]))
        .await;
    assert_eq!(none.json["rows_affected"], 0, "{}", none.body);
    let stats = server.call("GET", "/api/v1/pools/shared", None, None).await;
    assert_eq!(
        stats.json["counters"]["created"], 1,
        "clean requests give their connection back: {}",
        stats.body
    );
}
