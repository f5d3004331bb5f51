//! TLS through rustls: an encrypted session when the certificate is
//! trusted, a clear refusal when it is not, no login in clear text when the
//! server cannot encrypt.
//!
//! The mock server's TDS 8.0 "strict" mode (TLS before any TDS byte) serves
//! the certificate tests. Its TDS 7.x mode (TLS inside the prelogin) does
//! not interoperate with tiberius: the mock wraps its handshake replies in
//! TabularResult packets, and tiberius accepts only PreLogin packets there
//! ("expected a pre-login packet during the TLS handshake"). `Encrypt::Required`
//! on TDS 7.x is therefore exercised by the real-server runs
//! (`TIDEPOOL_MSSQL_ADDR`), which use it.

mod common;

use common::{MockServer, TestCert, Tls};
use tidepool_mssql::{Encrypt, MssqlConfig};

fn config(server: &MockServer, encrypt: Encrypt, trust: bool) -> MssqlConfig {
    MssqlConfig::builder()
        .host("localhost")
        .port(server.addr().port())
        .sql_login("sa", "mock-password")
        .encrypt(encrypt)
        .trust_server_certificate(trust)
        .build()
        .unwrap()
}

#[tokio::test]
async fn strict_encryption_connects_to_a_tds8_server() {
    let cert = TestCert::new();
    let server = MockServer::start_with("127.0.0.1:0", Tls::Strict, Some(&cert)).await;
    let pool = common::pool(config(&server, Encrypt::Strict, true), 1);
    let mut conn = pool.get().await.expect("a TDS 8.0 session");
    assert_eq!(common::scalar(&mut conn, "SELECT 1").await, Some(1));
}

#[tokio::test]
async fn an_untrusted_certificate_is_refused() {
    let cert = TestCert::new();
    let server = MockServer::start_with("127.0.0.1:0", Tls::Strict, Some(&cert)).await;
    let pool = tidepool::Pool::builder(tidepool_mssql::MssqlManager::new(config(
        &server,
        Encrypt::Strict,
        false,
    )))
    .max_retries(0)
    .build()
    .unwrap();
    let err = pool.get().await.expect_err("a self-signed certificate");
    let text = err.to_string().to_lowercase();
    assert!(text.contains("certificate"), "{text}");
    assert_eq!(server.logins().await, 0, "no login was sent");
}

#[tokio::test]
async fn required_encryption_fails_on_a_server_without_tls() {
    let server = MockServer::start().await;
    let pool = tidepool::Pool::builder(tidepool_mssql::MssqlManager::new(config(
        &server,
        Encrypt::Required,
        true,
    )))
    .max_retries(0)
    .build()
    .unwrap();
    let err = pool.get().await.expect_err("the server cannot encrypt");
    assert_eq!(server.logins().await, 0, "{err}");
}
