//! A refused login fails the caller at once with the server's message, and
//! is not retried.
//!
//! The mock server accepts every login, so this runs only against a real
//! server (`TIDEPOOL_MSSQL_ADDR`).

mod common;

use std::time::Duration;

#[tokio::test]
async fn a_wrong_password_is_reported_without_retries_on_a_real_server() {
    let Some(cfg) = common::real_config("credentials") else {
        return;
    };
    let addr = cfg.addr();
    let (host, port) = addr.rsplit_once(':').unwrap();
    let wrong = tidepool_mssql::MssqlConfig::builder()
        .host(host)
        .port(port.parse().unwrap())
        .sql_login("sa", "certainly-not-the-password")
        .trust_server_certificate(true)
        .build()
        .unwrap();
    let pool = tidepool::Pool::builder(tidepool_mssql::MssqlManager::new(wrong))
        .max_retries(3)
        .retry_backoff(Duration::from_millis(200))
        .build()
        .unwrap();
    let err = pool.get().await.expect_err("the login is refused");
    let backend = err.backend_error().expect("the server's error");
    assert!(backend.is_login_failure(), "{err}");
    assert!(err.to_string().contains("Login failed"), "{err}");
    assert!(!err.to_string().contains("certainly-not-the-password"));
    assert!(
        matches!(&err, tidepool::PoolError::Connect(c) if c.attempts == 1),
        "{err:?}"
    );
}
