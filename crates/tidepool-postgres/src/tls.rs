//! The rustls client configuration that follows a [`PgConfig`]'s `sslmode`
//! and `sslrootcert` (feature `rustls`).
//!
//! # Implementation notes
//! libpq's meanings are kept. `prefer` and `require` without root
//! certificates encrypt but check no certificate (only the handshake's
//! signatures, so the session is at least bound to the key the server
//! showed); `require` with root certificates, and `verify-ca`, check that
//! the certificate chains to them, not the name in it; `verify-full` checks
//! both, against the host connected to (an IP address is checked against
//! the certificate's IP addresses). Root certificates are read when the
//! manager is made, so a missing or unreadable file is a configuration
//! error, not a failure of every connect.

use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{self, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tidepool::ConfigError;

use crate::PgConfig;
use crate::config::{RootCerts, SslMode};

/// The rustls configuration for `config`: which certificates it trusts and
/// what it checks follow `ssl_mode` and `ssl_root_cert`.
///
/// # Errors
/// A [`ConfigError`] for `sslrootcert` when the root certificates cannot
/// be read or hold none, or for `sslmode` when `verify-ca`/`verify-full`
/// has no root certificates to check against.
pub fn client_config(config: &PgConfig) -> Result<rustls::ClientConfig, ConfigError> {
    let provider = Arc::new(crypto::ring::default_provider());
    let roots = match &config.ssl_root_cert {
        Some(which) => Some(Arc::new(root_store(which)?)),
        None => None,
    };
    if config.ssl_root_cert == Some(RootCerts::System) && config.ssl_mode != SslMode::VerifyFull {
        return Err(ConfigError::new(
            "sslmode",
            format!(
                "sslmode={} may not be used with sslrootcert=system (use verify-full): any certificate a public authority issued would pass",
                config.ssl_mode.as_str()
            ),
        ));
    }
    let chain = match (config.ssl_mode, roots) {
        (SslMode::VerifyFull, Some(roots)) => Some((webpki(roots, &provider)?, true)),
        (SslMode::VerifyCa | SslMode::Require, Some(roots)) => {
            Some((webpki(roots, &provider)?, false))
        }
        (SslMode::VerifyCa | SslMode::VerifyFull, None) => {
            return Err(ConfigError::new(
                "sslmode",
                format!(
                    "sslmode={} checks the server's certificate against root certificates: give sslrootcert (a PEM file, or `system`)",
                    config.ssl_mode.as_str()
                ),
            ));
        }
        (SslMode::Disable | SslMode::Prefer | SslMode::Require, _) => None,
    };
    let verifier = Arc::new(Verifier {
        chain,
        provider: Arc::clone(&provider),
    });
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ConfigError::new("sslmode", format!("TLS setup failed: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(tls)
}

fn root_store(which: &RootCerts) -> Result<RootCertStore, ConfigError> {
    let mut store = RootCertStore::empty();
    match which {
        RootCerts::File(path) => {
            let shown = path.display();
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| {
                    ConfigError::new("sslrootcert", format!("cannot read `{shown}`: {e}"))
                })?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| {
                    ConfigError::new(
                        "sslrootcert",
                        format!("`{shown}` is not a PEM certificate file: {e}"),
                    )
                })?;
            let (added, _) = store.add_parsable_certificates(certs);
            if added == 0 {
                return Err(ConfigError::new(
                    "sslrootcert",
                    format!("`{shown}` holds no usable certificate"),
                ));
            }
        }
        RootCerts::System => {
            let found = rustls_native_certs::load_native_certs();
            let (added, _) = store.add_parsable_certificates(found.certs);
            if added == 0 {
                return Err(ConfigError::new(
                    "sslrootcert",
                    "sslrootcert=system found no certificate in the system's trust store",
                ));
            }
        }
    }
    Ok(store)
}

fn webpki(
    roots: Arc<RootCertStore>,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<WebPkiServerVerifier>, ConfigError> {
    WebPkiServerVerifier::builder_with_provider(roots, Arc::clone(provider))
        .build()
        .map_err(|e| ConfigError::new("sslrootcert", format!("unusable root certificates: {e}")))
}

/// What is checked of the server's certificate: with `chain`, that it
/// chains to the roots, and (`true`) that it names the host (`verify-full`)
/// or (`false`) whatever name it shows (`verify-ca`, `require` with roots);
/// without, nothing (`prefer`, `require`). The handshake's signatures are
/// checked in every case.
#[derive(Debug)]
struct Verifier {
    chain: Option<(Arc<WebPkiServerVerifier>, bool)>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some((webpki, check_name)) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        match webpki.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !check_name => Ok(ServerCertVerified::assertion()),
            other => other,
        }
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
            &self.provider.signature_verification_algorithms,
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
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(url: &str) -> PgConfig {
        url.parse().unwrap()
    }

    #[test]
    fn verify_modes_need_root_certificates() {
        let err = client_config(&cfg("postgres://h/db?sslmode=verify-full")).unwrap_err();
        assert_eq!(err.field(), "sslmode");
        assert!(err.to_string().contains("sslrootcert"), "{err}");
        assert!(client_config(&cfg("postgres://h/db?sslmode=require")).is_ok());
    }

    #[test]
    fn an_unreadable_root_file_is_named() {
        let err = client_config(&cfg(
            "postgres://h/db?sslmode=verify-full&sslrootcert=/nonexistent/root.pem",
        ))
        .unwrap_err();
        assert_eq!(err.field(), "sslrootcert");
        assert!(err.to_string().contains("/nonexistent/root.pem"), "{err}");
    }
}
