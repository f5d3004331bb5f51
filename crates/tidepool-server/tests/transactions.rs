//! Issue 14 §1: the transaction endpoint — statements with parameters run
//! atomically in one request, committed or rolled back as a whole.

mod common;

use common::{Server, pg_admin, pg_plain_role};
use serde_json::json;

const TOKEN: &str = "admin-token-0123456789abcdef0123";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_statements_commit_together_or_not_at_all() {
    let dir = tempfile::tempdir().unwrap();
    tidepool_sqlite::rusqlite::Connection::open(dir.path().join("t.db"))
        .unwrap()
        .execute_batch("CREATE TABLE acct (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL CHECK (balance >= 0)); INSERT INTO acct VALUES (1, 100), (2, 0);")
        .unwrap();
    let toml = format!(
        "[server]\ntokens = [\"{TOKEN}\"]\n\n[pools.t]\nbackend = \"sqlite\"\npath = \"t.db\"\ngateway = \"read_write\"\n"
    );
    let server = Server::with_config(dir.path(), &toml, &[]).await;
    let id = server.open_session(TOKEN, "t").await;
    let moved = server
        .transaction(
            TOKEN,
            &id,
            json!([
                ["UPDATE acct SET balance = balance - ?1 WHERE id = 1", [60]],
                ["UPDATE acct SET balance = balance + ?1 WHERE id = 2", [60]],
                ["SELECT id, balance FROM acct ORDER BY id", []]
            ]),
        )
        .await;
    assert_eq!(moved.status, 200, "{}", moved.body);
    assert_eq!(moved.json["committed"], true);
    assert_eq!(moved.json["results"][0]["rows_affected"], 1);
    assert_eq!(moved.json["results"][2]["rows"], json!([[1, 40], [2, 60]]));

    let refused = server
        .transaction(
            TOKEN,
            &id,
            json!([
                ["UPDATE acct SET balance = balance + ?1 WHERE id = 2", [60]],
                ["UPDATE acct SET balance = balance - ?1 WHERE id = 1", [60]]
            ]),
        )
        .await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(
        refused.json["detail"]
            .as_str()
            .unwrap()
            .contains("statement 2"),
        "{}",
        refused.body
    );
    let now = server
        .query(
            TOKEN,
            &id,
            "SELECT balance FROM acct ORDER BY id",
            json!([]),
        )
        .await;
    assert_eq!(
        now.json["rows"],
        json!([[40], [60]]),
        "rolled back as a whole: {}",
        now.body
    );

    for bad in [json!([]), json!([["SELECT 1"]]), json!("SELECT 1")] {
        let r = server.transaction(TOKEN, &id, bad.clone()).await;
        assert!(r.status == 400 || r.status == 422, "{bad}: {}", r.body);
    }
    let doc = server.call("GET", "/api/v1/openapi.json", None, None).await;
    assert!(
        doc.json["paths"]["/api/v1/sessions/{id}/transaction"]["post"].is_object(),
        "documented"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_statements_commit_together_or_not_at_all() {
    let Some((admin, addr)) = pg_admin().await else {
        return;
    };
    pg_plain_role(&admin, "tp_gw_txn", "txn_t").await;
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "[server]\ntokens = [\"{TOKEN}\"]\n\n[pools.main]\nbackend = \"postgres\"\nurl = \"postgres://tp_gw_txn@{addr}/test?sslmode=disable\"\ngateway = \"read_write\"\n"
    );
    let server = Server::with_config(dir.path(), &toml, &[]).await;
    let id = server.open_session(TOKEN, "main").await;
    let ok = server
        .transaction(
            TOKEN,
            &id,
            json!([
                ["INSERT INTO txn_t VALUES ($1, $2)", [1, "one"]],
                ["INSERT INTO txn_t VALUES ($1, $2)", [2, "two"]]
            ]),
        )
        .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    let failed = server
        .transaction(
            TOKEN,
            &id,
            json!([
                ["INSERT INTO txn_t VALUES ($1, $2)", [3, "three"]],
                ["SELECT 1/0", []]
            ]),
        )
        .await;
    assert_eq!(failed.status, 400, "{}", failed.body);
    let n = admin
        .query_one("SELECT count(*) FROM txn_t", &[])
        .await
        .unwrap()
        .get::<_, i64>(0);
    assert_eq!(n, 2);
}
