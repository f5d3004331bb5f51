//! [`MssqlConfig`]: where and how to connect, from an ADO.NET connection
//! string or from fields.
//!
//! # Implementation notes
//! The connection string is parsed by tiberius
//! ([`tiberius::Config::from_ado_string`]), whose errors name the key at
//! fault and never quote a value. The driver's configuration is opaque (no
//! getters), so this type keeps it as the one source of truth and applies
//! the separate fields on top of it; `Debug` prints it, and tiberius keeps
//! the password in a redacting secret type.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tiberius::{AuthMethod, EncryptionLevel};
use tidepool::ConfigError;

/// Whether the connection is encrypted with TLS (rustls).
///
/// The names follow the ADO.NET `Encrypt` keyword.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Encrypt {
    /// Fail unless the whole session is encrypted (TLS after the TDS
    /// prelogin). The safe choice across networks you do not control.
    #[default]
    Required,
    /// TDS 8.0 "strict": TLS starts before any TDS byte, as with HTTPS, and
    /// the whole session is encrypted. Needs SQL Server 2022 or Azure SQL.
    Strict,
    /// Encrypt the whole session if the server supports it, else only the
    /// login packet. Convenient, but an attacker in the middle can force
    /// the weaker mode.
    On,
    /// Encrypt only the login packet (and so the password); queries and
    /// results cross the network in clear text.
    Off,
    /// No TLS at all, the password included: only for a loopback or a
    /// trusted private network, or servers without TLS.
    NotSupported,
}

impl Encrypt {
    fn to_driver(self) -> EncryptionLevel {
        match self {
            Self::Required => EncryptionLevel::Required,
            Self::Strict => EncryptionLevel::Strict,
            Self::On => EncryptionLevel::On,
            Self::Off => EncryptionLevel::Off,
            Self::NotSupported => EncryptionLevel::NotSupported,
        }
    }
}

/// The per-response command timeout tiberius applies unless told otherwise.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// How long the TLS handshake and login may take unless told otherwise.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);

/// Where and how to connect to SQL Server, and what the pool does with a
/// connection when it comes back.
///
/// Build it from an ADO.NET connection string
/// ([`from_ado_string`](Self::from_ado_string)), from fields
/// ([`MssqlConfig::builder`]), or deserialize it: serde reads a table whose
/// `connection_string` and separate fields may be combined, the fields
/// overriding the string, so the password can live outside the string.
/// Unknown keys are an error.
///
/// ```toml
/// connection_string = "Server=tcp:db.internal,1433;Database=orders;TrustServerCertificate=true"
/// user = "app"
/// password = "from-a-secret-store"
/// ```
///
/// `Debug` never prints the password, and no error repeats any value from
/// the connection string.
///
/// ```
/// use tidepool_mssql::MssqlConfig;
///
/// let cfg = MssqlConfig::from_ado_string(
///     "Server=tcp:db.internal,1433;User Id=app;Password=s3cret;Database=orders",
/// )?;
/// assert_eq!(cfg.addr(), "db.internal:1433");
/// assert!(!format!("{cfg:?}").contains("s3cret"));
/// # Ok::<(), tidepool::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct MssqlConfig {
    driver: tiberius::Config,
    reset_on_return: bool,
}

impl MssqlConfig {
    /// Reads an ADO.NET connection string (`Server=tcp:host,1433;User
    /// Id=app;Password=...;Database=orders;Encrypt=true;TrustServerCertificate=false`),
    /// with tiberius's parser: values holding `;` are quoted (`'...'`,
    /// `"..."` or `{...}`), never percent-encoded. Keys tiberius does not
    /// know are ignored. `reset_on_return` keeps its default (on).
    ///
    /// Without an `Encrypt` key the connection requires TLS
    /// ([`Encrypt::Required`]), as modern ADO.NET does.
    ///
    /// # Errors
    /// A [`ConfigError`] for the `connection_string` setting whose message
    /// says what is malformed; it never quotes a value from the string.
    pub fn from_ado_string(connection_string: &str) -> Result<Self, ConfigError> {
        let driver = tiberius::Config::from_ado_string(connection_string)
            .map_err(|e| ConfigError::new("connection_string", driver_message(&e)))?;
        Ok(Self {
            driver,
            reset_on_return: true,
        })
    }

    /// Settings built from fields, starting at `localhost:1433`, no
    /// credentials, [`Encrypt::Required`] and the server's certificate
    /// checked against the system's roots.
    pub fn builder() -> MssqlConfigBuilder {
        MssqlConfigBuilder::default()
    }

    /// The `host:port` the TCP connection goes to.
    ///
    /// A named instance (`Server=host\instance`) without a port would need
    /// the SQL Browser service to find its port, which this crate does not
    /// ask; give the port.
    pub fn addr(&self) -> String {
        self.driver.get_addr()
    }

    /// Whether a returned connection is reset before reuse. Default: `true`.
    ///
    /// **On**, the pool runs a reset batch in the background after every
    /// return (see the crate documentation for what it restores), so no
    /// session state reaches the next caller; it costs one round trip per
    /// return, off the caller's path, and one more per new connection to
    /// record the session's initial settings.
    ///
    /// **Off**, connections are reused as they are: `SET` options,
    /// temporary tables and an open transaction carry over to the next
    /// caller.
    pub fn reset_on_return(&self) -> bool {
        self.reset_on_return
    }

    /// Turns the reset between users on or off (see
    /// [`reset_on_return`](Self::reset_on_return)).
    #[must_use]
    pub fn with_reset_on_return(mut self, on: bool) -> Self {
        self.reset_on_return = on;
        self
    }

    /// Sets how long the server may take to send each part of a response
    /// (`None`: no limit). Past it the command fails with a timeout and the
    /// connection is out of step with the server: the pool's reset fails on
    /// it and it is closed. Default: 30 s.
    #[must_use]
    pub fn with_command_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.driver.command_timeout(timeout);
        self
    }

    /// The per-response command timeout (see
    /// [`with_command_timeout`](Self::with_command_timeout)).
    pub fn command_timeout(&self) -> Option<Duration> {
        self.driver.get_command_timeout()
    }

    /// The driver's configuration.
    pub fn to_tiberius(&self) -> tiberius::Config {
        self.driver.clone()
    }
}

impl fmt::Debug for MssqlConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // tiberius keeps passwords in `SecretString`, whose Debug redacts.
        f.debug_struct("MssqlConfig")
            .field("driver", &self.driver)
            .field("reset_on_return", &self.reset_on_return)
            .finish()
    }
}

/// Field-by-field settings for a [`MssqlConfig`]; every setter states its
/// default.
///
/// ```
/// use tidepool_mssql::{Encrypt, MssqlConfig};
///
/// let cfg = MssqlConfig::builder()
///     .host("db.internal")
///     .port(1433)
///     .sql_login("app", "s3cret")
///     .database("orders")
///     .encrypt(Encrypt::Strict)
///     .build()?;
/// assert_eq!(cfg.addr(), "db.internal:1433");
/// # Ok::<(), tidepool::ConfigError>(())
/// ```
#[derive(Clone, Default)]
pub struct MssqlConfigBuilder {
    fields: Fields,
}

impl fmt::Debug for MssqlConfigBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.fields.fmt(f)
    }
}

impl MssqlConfigBuilder {
    /// Server host name or IP address. Default: `localhost`.
    #[must_use]
    pub fn host(mut self, host: impl Into<String>) -> Self {
        self.fields.host = Some(host.into());
        self
    }

    /// TCP port. Default: 1433.
    #[must_use]
    pub fn port(mut self, port: u16) -> Self {
        self.fields.port = Some(port);
        self
    }

    /// SQL Server authentication with a login and password. Default: none
    /// (the server refuses the login).
    #[must_use]
    pub fn sql_login(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.fields.user = Some(user.into());
        self.fields.password = Some(password.into());
        self
    }

    /// Database selected at login. Default: the login's default database.
    #[must_use]
    pub fn database(mut self, database: impl Into<String>) -> Self {
        self.fields.database = Some(database.into());
        self
    }

    /// Shown in `sys.dm_exec_sessions.program_name`. Default: tiberius's.
    #[must_use]
    pub fn application_name(mut self, name: impl Into<String>) -> Self {
        self.fields.application_name = Some(name.into());
        self
    }

    /// TLS use. Default: [`Encrypt::Required`].
    #[must_use]
    pub fn encrypt(mut self, encrypt: Encrypt) -> Self {
        self.fields.encrypt = Some(encrypt);
        self
    }

    /// Accept any server certificate, without checking who signed it or
    /// whom it names: the session is encrypted but not authenticated, so an
    /// attacker in the middle can read it. For self-signed test servers.
    /// Default: `false`.
    #[must_use]
    pub fn trust_server_certificate(mut self, trust: bool) -> Self {
        self.fields.trust_server_certificate = Some(trust);
        self
    }

    /// Trust certificates signed by the CA in this PEM or DER file, besides
    /// nothing else. Exclusive with
    /// [`trust_server_certificate`](Self::trust_server_certificate).
    /// Default: the system's root certificates.
    #[must_use]
    pub fn trust_server_certificate_ca(mut self, path: impl Into<String>) -> Self {
        self.fields.trust_server_certificate_ca = Some(path.into());
        self
    }

    /// The name the server's certificate must carry, when it differs from
    /// `host` (an IP address, an alias). Default: `host`.
    #[must_use]
    pub fn hostname_in_certificate(mut self, name: impl Into<String>) -> Self {
        self.fields.hostname_in_certificate = Some(name.into());
        self
    }

    /// See [`MssqlConfig::with_command_timeout`]. Default: 30 s.
    #[must_use]
    pub fn command_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.fields.command_timeout = Some(timeout);
        self
    }

    /// How long the TLS handshake and login may take (`None`: no limit of
    /// its own; the pool's `create_timeout` still bounds the attempt).
    /// Default: 15 s.
    #[must_use]
    pub fn handshake_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.fields.handshake_timeout = Some(timeout);
        self
    }

    /// See [`MssqlConfig::reset_on_return`]. Default: `true`.
    #[must_use]
    pub fn reset_on_return(mut self, on: bool) -> Self {
        self.fields.reset_on_return = Some(on);
        self
    }

    /// The settings.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first invalid setting (a port of 0, an
    /// empty host, both certificate trust settings).
    pub fn build(self) -> Result<MssqlConfig, ConfigError> {
        self.fields.apply()
    }
}

/// The table form of [`MssqlConfig`]: what serde reads and the builder
/// collects. `None` leaves the connection string's (or the default) value.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Fields {
    connection_string: Option<String>,
    host: Option<String>,
    port: Option<u16>,
    user: Option<String>,
    password: Option<String>,
    database: Option<String>,
    application_name: Option<String>,
    encrypt: Option<Encrypt>,
    trust_server_certificate: Option<bool>,
    trust_server_certificate_ca: Option<String>,
    hostname_in_certificate: Option<String>,
    #[serde(default, with = "optional_off_or_duration")]
    command_timeout: Option<Option<Duration>>,
    #[serde(default, with = "optional_off_or_duration")]
    handshake_timeout: Option<Option<Duration>>,
    reset_on_return: Option<bool>,
}

impl fmt::Debug for Fields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redacted = |s: &Option<String>| s.as_ref().map(|_| "<redacted>");
        f.debug_struct("MssqlConfigBuilder")
            .field("connection_string", &redacted(&self.connection_string))
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &redacted(&self.password))
            .field("database", &self.database)
            .field("encrypt", &self.encrypt)
            .field("reset_on_return", &self.reset_on_return)
            .finish_non_exhaustive()
    }
}

impl Fields {
    /// Builds the configuration: the connection string (or tiberius's
    /// defaults, with host `localhost`), then every field that is set.
    fn apply(self) -> Result<MssqlConfig, ConfigError> {
        let mut cfg = match &self.connection_string {
            Some(s) => MssqlConfig::from_ado_string(s)?,
            None => {
                let mut driver = tiberius::Config::new();
                driver.host("localhost");
                MssqlConfig {
                    driver,
                    reset_on_return: true,
                }
            }
        };
        let d = &mut cfg.driver;
        if let Some(host) = &self.host {
            if host.trim().is_empty() {
                return Err(ConfigError::new("host", "must not be empty"));
            }
            d.host(host);
        }
        if let Some(port) = self.port {
            if port == 0 {
                return Err(ConfigError::new("port", "must be from 1 to 65535"));
            }
            d.port(port);
        }
        match (self.user, self.password) {
            (Some(user), password) => {
                d.authentication(AuthMethod::sql_server(user, password.unwrap_or_default()));
            }
            (None, Some(_)) => {
                return Err(ConfigError::new(
                    "password",
                    "set `user` too: the login a password belongs to is not read back from the connection string",
                ));
            }
            (None, None) => {}
        }
        if let Some(database) = &self.database {
            d.database(database);
        }
        if let Some(name) = &self.application_name {
            d.application_name(name);
        }
        if let Some(encrypt) = self.encrypt {
            d.encryption(encrypt.to_driver());
        }
        match (
            self.trust_server_certificate,
            &self.trust_server_certificate_ca,
        ) {
            (Some(true), Some(_)) => {
                return Err(ConfigError::new(
                    "trust_server_certificate",
                    "set either `trust_server_certificate` or `trust_server_certificate_ca`, not both",
                ));
            }
            (Some(true), None) => d.trust_cert(),
            (_, Some(ca)) => d.trust_cert_ca(ca),
            _ => {}
        }
        if let Some(name) = &self.hostname_in_certificate {
            d.hostname_in_certificate(name);
        }
        if let Some(timeout) = self.command_timeout {
            d.command_timeout(timeout);
        }
        if let Some(timeout) = self.handshake_timeout {
            d.handshake_timeout(timeout);
        }
        if let Some(on) = self.reset_on_return {
            cfg.reset_on_return = on;
        }
        Ok(cfg)
    }
}

impl<'de> Deserialize<'de> for MssqlConfig {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Fields::deserialize(d)?
            .apply()
            .map_err(serde::de::Error::custom)
    }
}

/// A tiberius error as text for a [`ConfigError`]: its own message, which
/// never quotes a value of the connection string.
fn driver_message(e: &tiberius::error::Error) -> String {
    match e {
        tiberius::error::Error::Conversion(msg) => msg.to_string(),
        other => other.to_string(),
    }
}

/// `Option<Option<Duration>>` for a field that may be absent (keep the
/// default), `"off"` (no limit) or a duration (`"30s"`).
mod optional_off_or_duration {
    use std::time::Duration;

    use serde::Deserializer;

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Option<Duration>>, D::Error> {
        tidepool::off_or_duration::deserialize(d).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_string_sets_the_address() {
        let cfg = MssqlConfig::from_ado_string("Server=tcp:db,1444;User Id=sa;Password=x").unwrap();
        assert_eq!(cfg.addr(), "db:1444");
        assert!(cfg.reset_on_return());
        assert_eq!(cfg.command_timeout(), Some(DEFAULT_COMMAND_TIMEOUT));
    }

    #[test]
    fn fields_default_to_localhost() {
        let cfg = MssqlConfig::builder().build().unwrap();
        assert_eq!(cfg.addr(), "localhost:1433");
    }

    #[test]
    fn fields_override_the_connection_string() {
        let cfg: MssqlConfig = serde_json::from_str(
            r#"{"connection_string": "Server=tcp:db,1444", "port": 1500, "user": "u",
                "password": "hunter2", "reset_on_return": false, "command_timeout": "off"}"#,
        )
        .unwrap();
        assert_eq!(cfg.addr(), "db:1500");
        assert!(!cfg.reset_on_return());
        assert_eq!(cfg.command_timeout(), None);
        assert!(!format!("{cfg:?}").contains("hunter2"));
    }

    #[test]
    fn bad_settings_name_the_field() {
        let err = MssqlConfig::builder().port(0).build().unwrap_err();
        assert_eq!(err.field(), "port");
        let err = serde_json::from_str::<MssqlConfig>(r#"{"password": "hunter2"}"#).unwrap_err();
        assert!(err.to_string().contains("`password`"), "{err}");
        assert!(!err.to_string().contains("hunter2"), "{err}");
        let err = MssqlConfig::builder()
            .trust_server_certificate(true)
            .trust_server_certificate_ca("/ca.pem")
            .build()
            .unwrap_err();
        assert_eq!(err.field(), "trust_server_certificate");
    }
}
