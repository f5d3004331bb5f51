//! The HTTPS listener through the real binary: with `[server] tls_cert` and
//! `tls_key` (a certificate made here with rcgen) it speaks TLS only; a
//! client that trusts the certificate is served, one that does not is
//! refused, plain HTTP gets no answer, and a client that never completes
//! its handshake is closed at the header-read timeout. A missing or bad
//! key stops the server with a message naming the key.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

const TOKEN: &str = "https-token-0123456789abcdef0123456789";

/// A TLS client trusting `roots` only.
fn connector(roots: &[CertificateDer<'static>]) -> TlsConnector {
    let mut store = rustls::RootCertStore::empty();
    for r in roots {
        store.add(r.clone()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(store)
        .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

/// `GET path` over TLS: the status and body.
async fn https_get(
    addr: &str,
    tls: &TlsConnector,
    path: &str,
    token: Option<&str>,
) -> std::io::Result<(u16, String)> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from("localhost").unwrap();
    let mut s = tls.connect(name, tcp).await?;
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Connection: close\r\n\r\n")
            .as_bytes(),
    )
    .await?;
    let mut raw = Vec::new();
    // A server may end TLS without close_notify after `Connection: close`.
    let _ = s.read_to_end(&mut raw).await;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Ok((status, text))
}

fn spawn(dir: &Path, addr: &str, toml: &str) -> Child {
    let config = dir.join("tidepool.toml");
    std::fs::write(&config, toml).unwrap();
    let log = std::fs::File::create(dir.join("server.log")).unwrap();
    Command::new(env!("CARGO_BIN_EXE_tidepool"))
        .args(["serve", "--listen", addr, "--config"])
        .arg(&config)
        .current_dir(dir)
        .env_remove("TIDEPOOL_TOKENS")
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap()
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_speaks_https_with_a_configured_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
    let trusted = connector(&[made.cert.der().clone()]);
    let addr = format!("127.0.0.1:{}", common::free_port());
    let toml = format!(
        "[server]\ntokens = [\"{TOKEN}\"]\nheader_read_timeout = \"2s\"\n\
         tls_cert = \"{}\"\ntls_key = \"{}\"\n\n\
         [pools.demo]\nbackend = \"sqlite\"\npath = \"demo.db\"\n",
        cert.display(),
        key.display()
    );
    let mut child = Killed(spawn(dir.path(), &addr, &toml));
    let log = || std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            panic!("the server exited ({status}):\n{}", log());
        }
        if let Ok((200, _)) = https_get(&addr, &trusted, "/health", None).await {
            break;
        }
        assert!(Instant::now() < deadline, "no HTTPS answer:\n{}", log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        log().contains(&format!("listening on https://{addr}")),
        "{}",
        log()
    );

    let (status, body) = https_get(&addr, &trusted, "/api/v1/config", Some(TOKEN))
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("cert.pem"), "{body}");

    // A client that does not trust the certificate is refused by its own
    // TLS; plain HTTP gets no HTTP answer.
    assert!(
        https_get(&addr, &connector(&[]), "/health", None)
            .await
            .is_err(),
        "an untrusted certificate was accepted"
    );
    let plain = common::request(&addr, "GET", "/health", None, None).await;
    assert!(
        plain.map_or(true, |r| r.status == 0),
        "plain HTTP was answered"
    );

    // A client that never sends its handshake is closed at the header-read
    // timeout.
    let mut silent = TcpStream::connect(&addr).await.unwrap();
    let start = Instant::now();
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(Duration::from_secs(10), silent.read(&mut buf)).await;
    assert!(
        matches!(read, Ok(Ok(0) | Err(_))),
        "a silent TLS client was kept"
    );
    assert!(
        start.elapsed() >= Duration::from_millis(1500),
        "{:?}",
        start.elapsed()
    );

    let (status, _) = https_get(&addr, &trusted, "/health", None).await.unwrap();
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_certificate_or_key_stops_the_server_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert = dir.path().join("cert.pem");
    std::fs::write(&cert, made.cert.pem()).unwrap();
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a key").unwrap();
    for (extra, code, says) in [
        (
            format!("tls_cert = \"{}\"", cert.display()),
            2,
            "key `server.tls_cert`",
        ),
        (
            format!(
                "tls_cert = \"{}\"\ntls_key = \"{}\"",
                cert.display(),
                garbage.display()
            ),
            1,
            "tls_key",
        ),
        (
            format!(
                "tls_cert = \"{}\"\ntls_key = \"{}\"",
                dir.path().join("missing.pem").display(),
                garbage.display()
            ),
            1,
            "tls_cert",
        ),
    ] {
        let toml = format!(
            "[server]\n{extra}\n\n[pools.demo]\nbackend = \"sqlite\"\npath = \"demo.db\"\n"
        );
        let (status, log) = common::start_expecting_exit(dir.path(), &toml).await;
        assert_eq!(status.code(), Some(code), "{extra}: {log}");
        assert!(log.contains(says), "{extra}: {log}");
        assert!(!log.contains("listening on"), "{log}");
    }
}
