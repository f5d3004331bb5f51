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
    use std::sync::Arc;

    use tidepool_postgres::rustls::client::danger::{
        HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
    };
    use tidepool_postgres::rustls::crypto::{self, CryptoProvider};
    use tidepool_postgres::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    use tidepool_postgres::rustls::{self, DigitallySignedStruct, SignatureScheme};
    use tidepool_postgres::{PgConfig, PgManager, SslMode};

    /// Trusts any certificate (the local server's is self-signed for
    /// another name) but still checks the handshake signatures. For tests
    /// only.
    #[derive(Debug)]
    struct AnyCertificate(Arc<CryptoProvider>);

    impl ServerCertVerifier for AnyCertificate {
        fn verify_server_cert(
            &self,
            _end_entity: &CertificateDer<'_>,
            _intermediates: &[CertificateDer<'_>],
            _server_name: &ServerName<'_>,
            _ocsp_response: &[u8],
            _now: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            Ok(ServerCertVerified::assertion())
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            crypto::verify_tls12_signature(
                message,
                cert,
                dss,
                &self.0.signature_verification_algorithms,
            )
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            crypto::verify_tls13_signature(
                message,
                cert,
                dss,
                &self.0.signature_verification_algorithms,
            )
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.0.signature_verification_algorithms.supported_schemes()
        }
    }

    #[tokio::test]
    async fn the_session_is_encrypted() {
        let Some(addr) =
            tidepool_testkit::service("PostgreSQL", "TIDEPOOL_PG_ADDR", "127.0.0.1:5432")
        else {
            return;
        };
        let provider = Arc::new(crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
            .with_no_client_auth();
        let mut cfg: PgConfig = format!("postgres://postgres@{addr}/test").parse().unwrap();
        cfg.ssl_mode = SslMode::Require;
        let pool = PgManager::with_rustls(cfg, tls)
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
