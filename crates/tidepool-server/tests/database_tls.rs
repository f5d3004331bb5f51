//! Issue 15 §4: the server speaks TLS to PostgreSQL (rustls) as each
//! pool's URL says — `sslmode` disable / prefer / require / verify-ca /
//! verify-full, `sslrootcert` a PEM file — against the local server, whose
//! certificate is self-signed for `localhost`.

mod common;

use common::{Server, pg_admin, pg_plain_role};
use serde_json::json;

const TOKEN: &str = "bound-tls-token-0123456789abcdef";
const ROLE: &str = "tp_bound";

/// Whether the request's session is encrypted, as the server sees it.
const SSL: &str = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()";

fn pool(name: &str, host_port: &str, query: &str) -> String {
    format!(
        r#"
[pools.{name}]
backend = "postgres"
url = "postgres://{ROLE}@{host_port}/test?application_name=tp_bound_tls&{query}"
max_size = 1
max_retries = 0
acquire_timeout = "5s"
"#
    )
}

fn server_toml(pools: &[String]) -> String {
    format!("[server]\ntokens = [\"{TOKEN}\"]\n{}", pools.concat())
}

/// Runs [`SSL`] on `pool`; the reply.
async fn ssl_on(server: &Server, pool: &str) -> common::Reply {
    let sid = server.open_session(TOKEN, pool).await;
    server.query(TOKEN, &sid, SSL, json!([])).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sslmode_require_speaks_tls_to_postgres() {
    let Some((admin, addr)) = pg_admin().await else {
        return;
    };
    pg_plain_role(&admin, ROLE, "bound_tls").await;
    let dir = tempfile::tempdir().unwrap();
    let toml = server_toml(&[
        pool("required", &addr, "sslmode=require"),
        pool("plain", &addr, "sslmode=disable"),
    ]);
    let server = Server::with_config(dir.path(), &toml, &[]).await;
    let r = ssl_on(&server, "required").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json["rows"], json!([[true]]), "{}", r.body);
    let r = ssl_on(&server, "plain").await;
    assert_eq!(r.json["rows"], json!([[false]]), "{}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_full_checks_the_certificate_and_says_why_it_refused() {
    let Some((admin, addr)) = pg_admin().await else {
        return;
    };
    pg_plain_role(&admin, ROLE, "bound_tls").await;
    // The local server's certificate is self-signed: it is its own root.
    let cert: String = admin
        .query_one("SHOW ssl_cert_file", &[])
        .await
        .unwrap()
        .get(0);
    if std::fs::read(&cert).is_err() {
        eprintln!("skipped: the server's certificate {cert} is not readable here");
        return;
    }
    let port = addr.rsplit_once(':').unwrap().1;
    let localhost = format!("localhost:{port}");
    let ip = format!("127.0.0.1:{port}");
    let unrelated = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/unrelated-ca.pem"
    );
    let dir = tempfile::tempdir().unwrap();
    let toml = server_toml(&[
        pool(
            "full",
            &localhost,
            &format!("sslmode=verify-full&sslrootcert={cert}"),
        ),
        pool("ca", &ip, &format!("sslmode=verify-ca&sslrootcert={cert}")),
        pool(
            "wrong_name",
            &ip,
            &format!("sslmode=verify-full&sslrootcert={cert}"),
        ),
        pool(
            "wrong_root",
            &localhost,
            &format!("sslmode=verify-full&sslrootcert={unrelated}"),
        ),
    ]);
    let server = Server::with_config(dir.path(), &toml, &[]).await;

    for ok in ["full", "ca"] {
        let r = ssl_on(&server, ok).await;
        assert_eq!(r.status, 200, "pool `{ok}`: {}", r.body);
        assert_eq!(r.json["rows"], json!([[true]]), "pool `{ok}`: {}", r.body);
    }
    // The certificate names `localhost`, not 127.0.0.1.
    let r = ssl_on(&server, "wrong_name").await;
    assert_eq!(r.status, 503, "{}", r.body);
    let detail = r.json["detail"].as_str().unwrap();
    eprintln!("verify-full, wrong name: {detail}");
    assert!(
        detail.contains("certificate") && detail.contains("not valid for name"),
        "{detail}"
    );
    // Signed by nobody the pool trusts.
    let r = ssl_on(&server, "wrong_root").await;
    assert_eq!(r.status, 503, "{}", r.body);
    let detail = r.json["detail"].as_str().unwrap();
    eprintln!("verify-full, wrong root: {detail}");
    assert!(
        detail.contains("invalid peer certificate") && detail.contains("UnknownIssuer"),
        "{detail}"
    );
    assert!(server.log_text().contains("UnknownIssuer"));
}

#[test]
fn check_config_refuses_root_certificates_it_cannot_use() {
    let dir = tempfile::tempdir().unwrap();
    for (query, expected) in [
        (
            "sslmode=verify-full&sslrootcert=/nonexistent/root.pem",
            "cannot read `/nonexistent/root.pem`",
        ),
        ("sslmode=verify-full", "give sslrootcert"),
        ("sslmode=verify", "sslmode must be one of"),
    ] {
        let file = dir.path().join("tls.toml");
        std::fs::write(
            &file,
            format!(
                "[pools.db]\nbackend = \"postgres\"\nurl = \"postgres://u@db.internal/x?{query}\"\n"
            ),
        )
        .unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_tidepool"))
            .arg("check-config")
            .arg(&file)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{query}: {err}");
        assert!(
            err.contains("key `pools.db.url`") && err.contains(expected),
            "{query}: {err}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_description_speaks_tls_but_names_no_file_on_the_server() {
    let Some((admin, addr)) = pg_admin().await else {
        return;
    };
    pg_plain_role(&admin, ROLE, "bound_tls").await;
    let (host, port) = addr.rsplit_once(':').unwrap();
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        r#"
[[tenants]]
name = "a"
role = "query"
tokens = ["{TOKEN}"]

[descriptions]
enabled = true

[[descriptions.allow]]
backend = "postgres"
host = "{host}"
port = {port}
database = "test"
user = "{ROLE}"
"#
    );
    let server = Server::with_config(dir.path(), &toml, &[]).await;
    let url = |query: &str| format!("postgres://{ROLE}@{addr}/test?{query}");
    let r = server
        .create_session(
            TOKEN,
            json!({"backend": "postgres", "url": url("sslmode=verify-full&sslrootcert=/etc/passwd")}),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("sslrootcert"), "{}", r.body);
    let r = server
        .create_session(
            TOKEN,
            json!({"backend": "postgres", "url": url("sslmode=require")}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let sid = r.json["session_id"].as_str().unwrap().to_owned();
    let r = server.query(TOKEN, &sid, SSL, json!([])).await;
    assert_eq!(r.json["rows"], json!([[true]]), "{}", r.body);
}
