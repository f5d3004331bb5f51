//! Issue 15 §1: a result is bounded by `max_rows` and `max_result_bytes`
//! (default 16 MiB) as it is read — the server's memory grows by about the
//! limit, not by the result — and the rest of a result cut short is never
//! read from the database.

mod common;
mod procfs;

use common::{Server, pg_admin, pg_plain_role};
use serde_json::json;

const TOKEN: &str = "bound-limits-token-0123456789abcdef";
const ROLE: &str = "tp_bound";
const MIB: u64 = 1024 * 1024;

fn tenant() -> String {
    format!(
        r#"
[[tenants]]
name = "bound"
role = "admin"
tokens = ["{TOKEN}"]
"#
    )
}

/// How much the server's peak memory rose above its resident memory
/// before `run`, in bytes.
async fn growth<F: std::future::Future<Output = common::Reply>>(
    server: &Server,
    run: F,
) -> (common::Reply, u64) {
    let pid = server.child.id();
    let before = procfs::rss(pid).max(procfs::peak_rss(pid));
    let reply = run.await;
    (reply, procfs::peak_rss(pid).saturating_sub(before))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_results_stop_at_the_byte_limit_with_memory_bounded_by_it() {
    if !procfs::available() {
        eprintln!("skipped: needs /proc");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        r#"
[server]
statement_timeout = "10s"
{}
[pools.lite]
backend = "sqlite"
path = "lite.db"
"#,
        tenant()
    );
    let server = Server::with_config(dir.path(), &toml, &[]).await;
    let sid = server.open_session(TOKEN, "lite").await;
    let warm = server.query(TOKEN, &sid, "SELECT 1", json!([])).await;
    assert_eq!(warm.status, 200, "{}", warm.body);

    // One value of 300 MB: refused before SQLite makes it.
    let (r, grew) = growth(
        &server,
        server.query(TOKEN, &sid, "SELECT zeroblob(300000000)", json!([])),
    )
    .await;
    eprintln!(
        "zeroblob(300000000): {}, peak memory +{} MiB",
        r.status,
        grew / MIB
    );
    assert!(grew < 64 * MIB, "peak memory rose by {} MiB", grew / MIB);
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(r.json["error"], "result_too_large", "{}", r.body);
    assert!(
        r.json["detail"]
            .as_str()
            .unwrap()
            .contains("16777216 bytes (max_result_bytes)"),
        "{}",
        r.body
    );

    // 3000 rows of 200 KB of JSON each: cut at 16 MiB.
    let many = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000) \
                SELECT x, randomblob(100000) AS b FROM c";
    let (r, grew) = growth(&server, server.query(TOKEN, &sid, many, json!([]))).await;
    eprintln!(
        "3000 rows of 100 kB blobs: {} with {} rows, {} bytes, peak memory +{} MiB",
        r.status,
        r.json["row_count"],
        r.body.len(),
        grew / MIB
    );
    assert_eq!(r.status, 200, "{}", &r.body[..r.body.len().min(300)]);
    assert_eq!(r.json["truncated"], true);
    assert_eq!(r.json["truncated_by"], "max_result_bytes");
    let rows = r.json["row_count"].as_u64().unwrap();
    assert!(
        (50..100).contains(&rows),
        "{rows} rows of ~200 kB in 16 MiB"
    );
    assert!(r.body.len() < 17 * 1024 * 1024, "{} bytes", r.body.len());
    assert!(grew < 128 * MIB, "peak memory rose by {} MiB", grew / MIB);

    // The row limit still applies, and says so.
    let small = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 5000) \
                 SELECT x FROM c";
    let r = server.query(TOKEN, &sid, small, json!([])).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        (r.json["row_count"].as_u64(), &r.json["truncated_by"]),
        (Some(1000), &json!("max_rows"))
    );
}

/// A server with a read-write PostgreSQL pool `main` of one connection
/// and a row limit of 100000, and a session on it.
async fn pg_server(dir: &std::path::Path, addr: &str, app: &str) -> (Server, String) {
    let toml = format!(
        r#"
[server]
statement_timeout = "60s"
max_rows = 100000
{}
[pools.main]
backend = "postgres"
url = "postgres://{ROLE}@{addr}/test?sslmode=disable&application_name={app}"
max_size = 1
gateway = "read_write"
"#,
        tenant()
    );
    let server = Server::with_config(dir, &toml, &[]).await;
    let sid = server.open_session(TOKEN, "main").await;
    let warm = server.query(TOKEN, &sid, "SELECT 1", json!([])).await;
    assert_eq!(warm.status, 200, "{}", warm.body);
    (server, sid)
}

/// [`pg_server`] in a new directory, when PostgreSQL and `/proc` (to
/// measure memory) are there.
async fn measured_pg_server(app: &str) -> Option<(tempfile::TempDir, Server, String)> {
    let (admin, addr) = pg_admin().await?;
    if !procfs::available() {
        eprintln!("skipped: needs /proc");
        return None;
    }
    pg_plain_role(&admin, ROLE, "bound_limits").await;
    let dir = tempfile::tempdir().unwrap();
    let (server, sid) = pg_server(dir.path(), &addr, app).await;
    Some((dir, server, sid))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_results_stop_at_the_byte_limit_with_memory_bounded_by_it() {
    let Some((_dir, server, sid)) = measured_pg_server("tp_bound_bytes").await else {
        return;
    };

    // 2000 rows of 100 kB: 200 MB, cut at 16 MiB.
    let big = "SELECT g, repeat('x', 100000) AS s FROM generate_series(1, 2000) g";
    let (r, grew) = growth(&server, server.query(TOKEN, &sid, big, json!([]))).await;
    eprintln!(
        "2000 rows of 100 kB text: {} with {} rows, {} bytes, peak memory +{} MiB",
        r.status,
        r.json["row_count"],
        r.body.len(),
        grew / MIB
    );
    assert_eq!(r.status, 200, "{}", &r.body[..r.body.len().min(300)]);
    assert!(grew < 128 * MIB, "peak memory rose by {} MiB", grew / MIB);
    assert_eq!(r.json["truncated_by"], "max_result_bytes");
    let rows = r.json["row_count"].as_u64().unwrap();
    assert!(
        (100..170).contains(&rows),
        "{rows} rows of ~100 kB in 16 MiB"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rest_of_a_postgres_result_cut_short_is_never_read() {
    let Some((admin, addr)) = pg_admin().await else {
        return;
    };
    pg_plain_role(&admin, ROLE, "bound_limits").await;
    admin
        .batch_execute(&format!(
            "CREATE SEQUENCE IF NOT EXISTS bound_seq; \
             GRANT USAGE ON SEQUENCE bound_seq TO {ROLE}; \
             SELECT setval('bound_seq', 1, false);"
        ))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (server, sid) = pg_server(dir.path(), &addr, "tp_bound_rest").await;

    // Each row draws a number from a sequence, which no rollback gives
    // back: how far it went says how much of the result the server made.
    let before = last_value(&admin).await;
    let r = server
        .query(
            TOKEN,
            &sid,
            "SELECT nextval('bound_seq') AS n FROM generate_series(1, 1000000)",
            json!([]),
        )
        .await;
    assert_eq!(r.status, 200, "{}", &r.body[..r.body.len().min(300)]);
    let drawn = last_value(&admin).await - before;
    eprintln!("a result cut at 100000 rows of 1000000 drew {drawn} numbers");
    assert!(
        drawn <= 100_001,
        "the server computed {drawn} rows of a result cut at 100000"
    );
    assert_eq!(r.json["row_count"], 100_000);
    assert_eq!(r.json["truncated_by"], "max_rows");
}

async fn last_value(admin: &tidepool_postgres::tokio_postgres::Client) -> i64 {
    admin
        .query_one("SELECT last_value FROM bound_seq", &[])
        .await
        .unwrap()
        .get(0)
}

/// A server whose result byte limit is 1 MiB, with a SQLite pool `lite`
/// and, when `pg` is given, a PostgreSQL pool `main` at that address.
async fn one_mib_server(dir: &std::path::Path, pg: Option<&str>) -> Server {
    let main = pg.map_or_else(String::new, |addr| {
        format!(
            r#"
[pools.main]
backend = "postgres"
url = "postgres://{ROLE}@{addr}/test?sslmode=disable&application_name=tp_bound_escapes"
max_size = 1
"#
        )
    });
    let toml = format!(
        r#"
[server]
max_result_bytes = 1048576
{}
[pools.lite]
backend = "sqlite"
path = "lite.db"
{main}"#,
        tenant()
    );
    Server::with_config(dir, &toml, &[]).await
}

/// [`one_mib_server`] with PostgreSQL, in a new directory, and a session
/// on its pool `main`, when PostgreSQL is there.
async fn one_mib_pg_session() -> Option<(tempfile::TempDir, Server, String)> {
    let (admin, addr) = pg_admin().await?;
    pg_plain_role(&admin, ROLE, "bound_limits").await;
    let dir = tempfile::tempdir().unwrap();
    let server = one_mib_server(dir.path(), Some(&addr)).await;
    let sid = server.open_session(TOKEN, "main").await;
    Some((dir, server, sid))
}

/// The answer to `sql` must be cut at the 1 MiB limit (`cut`) or refused
/// with 422 (`!cut`), its body never much over 1 MiB.
async fn assert_within_one_mib(server: &Server, sid: &str, sql: &str, cut: bool) {
    let r = server.query(TOKEN, sid, sql, json!([])).await;
    let head = &r.body[..r.body.len().min(300)];
    eprintln!("{sql}: {} with {} bytes", r.status, r.body.len());
    assert!(
        r.body.len() < 1024 * 1024 + 4096,
        "{sql}: an answer of {} bytes under a limit of 1 MiB: {head}",
        r.body.len()
    );
    if cut {
        assert_eq!(r.status, 200, "{sql}: {head}");
        assert_eq!(r.json["truncated_by"], "max_result_bytes", "{sql}: {head}");
    } else {
        assert_eq!(r.status, 422, "{sql}: {head}");
        assert_eq!(r.json["error"], "result_too_large", "{sql}: {head}");
    }
}

/// Text that JSON escapes — quotes, backslashes, newlines, other control
/// characters (six bytes each as `\u0001`) — counts as the JSON it
/// becomes, not as its raw bytes, so the answer stays within
/// `max_result_bytes`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_text_counts_as_the_escaped_json_it_becomes() {
    let dir = tempfile::tempdir().unwrap();
    let server = one_mib_server(dir.path(), None).await;
    let sid = server.open_session(TOKEN, "lite").await;
    // 100 rows of 100000 quotes: 200 kB of JSON each.
    let quotes = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 100) \
                  SELECT replace(hex(zeroblob(50000)), '0', '\"') AS s FROM c";
    assert_within_one_mib(&server, &sid, quotes, true).await;
    // One value of 400000 control characters: 2.4 MB of JSON.
    let controls = "SELECT replace(hex(zeroblob(200000)), '0', char(1)) AS s";
    assert_within_one_mib(&server, &sid, controls, false).await;
    // Bytes that are not UTF-8 are sent as U+FFFD, three bytes each.
    let invalid = "SELECT CAST(replace(zeroblob(600000), x'00', x'ff') AS TEXT) AS s";
    assert_within_one_mib(&server, &sid, invalid, false).await;
}

/// The same on PostgreSQL: text with quotes or newlines, and text with
/// other control characters (sent as hex).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_text_counts_as_the_escaped_json_it_becomes() {
    let Some((_dir, server, sid)) = one_mib_pg_session().await else {
        return;
    };
    let quotes = "SELECT repeat('\"', 100000) AS s FROM generate_series(1, 100)";
    assert_within_one_mib(&server, &sid, quotes, true).await;
    let newlines = "SELECT repeat(E'\\n', 600000) AS s";
    assert_within_one_mib(&server, &sid, newlines, false).await;
    let controls = "SELECT repeat(chr(1), 600000) AS s";
    assert_within_one_mib(&server, &sid, controls, false).await;
}

/// A `json`/`jsonb` value is read into a tree of values that takes far
/// more memory than its text (about 36 bytes per number of an array, 700
/// per small object): it counts toward `max_result_bytes` as that memory,
/// so that 14 MB of JSON text under the default limit of 16 MiB cannot take
/// a gigabyte of the server's memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_json_values_count_as_the_memory_they_take() {
    let Some((_dir, server, sid)) = measured_pg_server("tp_bound_json").await else {
        return;
    };
    for sql in [
        // 1.7 million small objects in 13.6 MB of text.
        "SELECT ('[' || repeat('{\"a\":0},', 1700000) || '0]')::json AS j",
        // 7 million numbers in 14 MB of text.
        "SELECT ('[' || repeat('0,', 7000000) || '0]')::jsonb AS j",
        // 10000 rows of 1000 objects each.
        "SELECT ('[' || repeat('{\"a\":0},', 1000) || '0]')::json AS j FROM generate_series(1, 10000)",
    ] {
        let (r, grew) = growth(&server, server.query(TOKEN, &sid, sql, json!([]))).await;
        eprintln!(
            "{sql}: {} with {} bytes, peak memory +{} MiB",
            r.status,
            r.body.len(),
            grew / MIB
        );
        assert!(
            grew < 128 * MIB,
            "{sql}: peak memory rose by {} MiB",
            grew / MIB
        );
        let head = &r.body[..r.body.len().min(300)];
        match r.status {
            422 => assert_eq!(r.json["error"], "result_too_large", "{head}"),
            200 => assert_eq!(r.json["truncated_by"], "max_result_bytes", "{head}"),
            other => panic!("{sql}: {other}: {head}"),
        }
    }
}

/// `max_result_bytes` bounds a request, not each of its statements: a
/// transaction of ten statements of 300 kB each under a limit of 1 MiB
/// answers about 1 MiB, not 3 MB (the default limits allowed 100
/// statements of 16 MiB each: 1.6 GB for one request).
async fn assert_transaction_within_one_mib(server: &Server, sid: &str, sql: &str) {
    let statements: Vec<_> = (0..10).map(|_| json!([sql, []])).collect();
    let r = server.transaction(TOKEN, sid, json!(statements)).await;
    let head = &r.body[..r.body.len().min(300)];
    eprintln!("10 x {sql}: {} with {} bytes", r.status, r.body.len());
    assert_eq!(r.status, 200, "{head}");
    assert!(
        r.body.len() < 1024 * 1024 + 4096,
        "a transaction answered {} bytes under a limit of 1 MiB",
        r.body.len()
    );
    let results = r.json["results"].as_array().unwrap();
    assert_eq!(results.len(), 10, "{head}");
    assert_eq!(results[0]["row_count"], 1);
    assert_eq!(results[9]["truncated_by"], "max_result_bytes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_transactions_statements_share_the_byte_limit() {
    let dir = tempfile::tempdir().unwrap();
    let server = one_mib_server(dir.path(), None).await;
    let sid = server.open_session(TOKEN, "lite").await;
    let sql = "SELECT hex(zeroblob(150000)) AS s";
    assert_transaction_within_one_mib(&server, &sid, sql).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_transactions_statements_share_the_byte_limit() {
    let Some((_dir, server, sid)) = one_mib_pg_session().await else {
        return;
    };
    let sql = "SELECT repeat('x', 300000) AS s";
    assert_transaction_within_one_mib(&server, &sid, sql).await;
}

/// A `numeric` is sent as a few bytes but read as text as long as its
/// digits: `1e131071` is 10 bytes on the wire and 131072 characters of
/// JSON, and `round(1, 16000)` 16000. It counts as its text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_numerics_count_as_their_text() {
    let Some((_dir, server, sid)) = one_mib_pg_session().await else {
        return;
    };
    let wide = "SELECT 1e131071::numeric AS n FROM generate_series(1, 40)";
    assert_within_one_mib(&server, &sid, wide, true).await;
    let scaled = "SELECT round(1::numeric, 16000) AS n FROM generate_series(1, 200)";
    assert_within_one_mib(&server, &sid, scaled, true).await;
}
