//! TLS: with the `rustls` feature the session is encrypted; without a
//! connector, `sslmode=require` refuses to fall back to clear text.

use tidepool_postgres::PgManager;

#[tokio::test]
async fn require_without_a_tls_connector_fails_instead_of_sending_clear_text() {
    let Some(addr) = tidepool_testkit::service("PostgreSQL", "TIDEPOOL_PG_ADDR", "127.0.0.1:5432")
    else {
        return;
    };
    let pool = PgManager::from_url(&format!("postgres://postgres@{addr}/test?sslmode=require"))
        .unwrap()
        .pool_builder()
        .max_retries(0)
        .build()
        .unwrap();
    let err = pool.get().await.unwrap_err();
    assert!(err.to_string().contains("TLS"), "{err}");
}

#[cfg(feature = "rustls")]
mod rustls_connector {
    use tidepool_postgres::PgManager;

    #[tokio::test]
    async fn the_session_is_encrypted() {
        let Some(addr) =
            tidepool_testkit::service("PostgreSQL", "TIDEPOOL_PG_ADDR", "127.0.0.1:5432")
        else {
            return;
        };
        // `require` without root certificates: encrypted, certificate
        // unchecked (the local server's is self-signed).
        let cfg = format!("postgres://postgres@{addr}/test?sslmode=require")
            .parse()
            .unwrap();
        let pool = PgManager::with_tls(cfg)
            .unwrap()
            .pool_builder()
            .max_retries(0)
            .build()
            .unwrap();

        let conn = pool.get().await.unwrap();
        let ssl: bool = conn
            .query_one(
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert!(ssl, "the server sees an encrypted session");
    }
}
