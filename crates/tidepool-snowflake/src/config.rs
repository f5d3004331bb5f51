//! [`SnowflakeConfig`]: which account, as whom, and how long a session may
//! live.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use snowflake_connector_rs::{
    AuthConfig, ClientConfig, EndpointConfig, KeyPairConfig, QueryConfig, SessionConfig,
};
use tidepool::ConfigError;

/// How long Snowflake's session token is valid after login (one hour);
/// snowflake-connector-rs does not renew it.
pub const SESSION_TOKEN_VALIDITY: Duration = Duration::from_secs(60 * 60);

/// The default [`SnowflakeConfig::session_lifetime`]: 50 minutes, ten short
/// of the token's hour so that a query started late still finishes.
pub const DEFAULT_SESSION_LIFETIME: Duration = Duration::from_secs(50 * 60);

/// The default [`SnowflakeConfig::query_timeout`] (the driver's): 5 minutes.
pub const DEFAULT_QUERY_TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// How a session logs in.
#[derive(Clone)]
#[non_exhaustive]
pub enum SnowflakeAuth {
    /// User and password. Snowflake enforces MFA for password logins on
    /// most accounts, which suits interactive use only: prefer a key pair
    /// for services.
    Password(String),
    /// Key-pair authentication: a JWT signed with this RSA private key
    /// (PKCS#8 PEM), whose public key is set on the user.
    KeyPair {
        /// The private key, PEM.
        private_key_pem: String,
        /// The key's passphrase, when the PEM is encrypted.
        passphrase: Option<String>,
    },
}

impl fmt::Debug for SnowflakeAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Password(_) => f.write_str("Password(<redacted>)"),
            Self::KeyPair { passphrase, .. } => f
                .debug_struct("KeyPair")
                .field("private_key_pem", &"<redacted>")
                .field("passphrase", &passphrase.as_ref().map(|_| "<redacted>"))
                .finish(),
        }
    }
}

/// Where and how to open Snowflake sessions.
///
/// Build it with [`new`](Self::new) and assign the optional fields, or
/// deserialize it (unknown keys are an error; durations are written as
/// `"50m"`):
///
/// ```toml
/// account = "xy12345.eu-west-1"
/// user = "APP"
/// private_key_path = "/run/secrets/snowflake.p8"
/// warehouse = "REPORTING"
/// database = "SALES"
/// schema = "PUBLIC"
/// ```
///
/// Exactly one of `password`, `private_key_pem` and `private_key_path` is
/// given. `Debug` never prints the password, the key or its passphrase.
#[derive(Clone)]
#[non_exhaustive]
pub struct SnowflakeConfig {
    /// Account identifier (`orgname-account` or `xy12345.region`).
    pub account: String,
    /// User to log in as.
    pub user: String,
    /// How to log in.
    pub auth: SnowflakeAuth,
    /// Warehouse a new session uses. Default: the user's default.
    pub warehouse: Option<String>,
    /// Database a new session uses. Default: the user's default.
    pub database: Option<String>,
    /// Schema a new session uses. Default: the user's default.
    pub schema: Option<String>,
    /// Role a new session uses. Default: the user's default.
    pub role: Option<String>,
    /// Another address for the account's REST API (a PrivateLink endpoint,
    /// a local test server), `http(s)://host[:port]`. Default: none
    /// (`https://<account>.snowflakecomputing.com`).
    pub base_url: Option<String>,
    /// Longest the driver waits for a query's response. Default: 5 min.
    pub query_timeout: Duration,
    /// Age at which a session is replaced rather than handed out: the
    /// driver does not renew the session token, which Snowflake expires an
    /// hour after login. [`SnowflakeManager::pool_builder`](crate::SnowflakeManager::pool_builder)
    /// also makes it the pool's `max_lifetime`. Must be under an hour.
    /// Default: 50 min.
    pub session_lifetime: Duration,
}

impl SnowflakeConfig {
    /// Settings for `user` on `account`, every optional field at its
    /// default.
    pub fn new(account: impl Into<String>, user: impl Into<String>, auth: SnowflakeAuth) -> Self {
        Self {
            account: account.into(),
            user: user.into(),
            auth,
            warehouse: None,
            database: None,
            schema: None,
            role: None,
            base_url: None,
            query_timeout: DEFAULT_QUERY_TIMEOUT,
            session_lifetime: DEFAULT_SESSION_LIFETIME,
        }
    }

    /// Checks the settings that can be checked without a server.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first invalid setting.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.account.trim().is_empty() {
            return Err(ConfigError::new("account", "must not be empty"));
        }
        if self.user.trim().is_empty() {
            return Err(ConfigError::new("user", "must not be empty"));
        }
        if self.session_lifetime.is_zero() || self.session_lifetime >= SESSION_TOKEN_VALIDITY {
            return Err(ConfigError::new(
                "session_lifetime",
                "must be above zero and under one hour (the session token's validity)",
            ));
        }
        if self.query_timeout.is_zero() {
            return Err(ConfigError::new("query_timeout", "must be above zero"));
        }
        self.endpoint()?;
        Ok(())
    }

    fn endpoint(&self) -> Result<EndpointConfig, ConfigError> {
        let Some(base) = &self.base_url else {
            return Ok(EndpointConfig::AccountDefault);
        };
        let url = url::Url::parse(base)
            .map_err(|e| ConfigError::new("base_url", format!("not a valid http(s) URL ({e})")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(ConfigError::new(
                "base_url",
                "the scheme must be http or https",
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(ConfigError::new(
                "base_url",
                "must not carry credentials (use `user` and the auth settings)",
            ));
        }
        if !matches!(url.path(), "" | "/") || url.query().is_some() {
            return Err(ConfigError::new(
                "base_url",
                "give only scheme, host and port (no path or query)",
            ));
        }
        Ok(EndpointConfig::CustomBaseUrl(url))
    }

    /// The driver's configuration for these settings.
    ///
    /// Every login sends the session parameter `CLIENT_SESSION_KEEP_ALIVE =
    /// false`: the pool's keepalive pings idle sessions, so the driver's
    /// heartbeat (which snowflake-connector-rs does not have anyway) stays
    /// off. The parameter also makes the login carry a `SESSION_PARAMETERS`
    /// object, which fakesnow requires.
    ///
    /// # Errors
    /// As [`validate`](Self::validate).
    pub fn to_driver(&self) -> Result<ClientConfig, ConfigError> {
        self.validate()?;
        let auth = match &self.auth {
            SnowflakeAuth::Password(p) => AuthConfig::password(p.clone()),
            SnowflakeAuth::KeyPair {
                private_key_pem,
                passphrase: None,
            } => AuthConfig::key_pair(KeyPairConfig::from_pem(private_key_pem.clone())),
            SnowflakeAuth::KeyPair {
                private_key_pem,
                passphrase: Some(pass),
            } => AuthConfig::key_pair(KeyPairConfig::from_encrypted_pem(
                private_key_pem.clone(),
                pass.clone().into_bytes(),
            )),
        };
        let mut session = SessionConfig::new()
            .with_session_parameter("CLIENT_SESSION_KEEP_ALIVE", serde_json::Value::Bool(false));
        if let Some(w) = &self.warehouse {
            session = session.with_warehouse(w);
        }
        if let Some(d) = &self.database {
            session = session.with_database(d);
        }
        if let Some(s) = &self.schema {
            session = session.with_schema(s);
        }
        if let Some(r) = &self.role {
            session = session.with_role(r);
        }
        Ok(ClientConfig::new(&self.user, &self.account, auth)
            .with_session(session)
            .with_query(QueryConfig::new().with_query_response_timeout(self.query_timeout))
            .with_endpoint(self.endpoint()?))
    }
}

impl fmt::Debug for SnowflakeConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SnowflakeConfig")
            .field("account", &self.account)
            .field("user", &self.user)
            .field("auth", &self.auth)
            .field("warehouse", &self.warehouse)
            .field("database", &self.database)
            .field("schema", &self.schema)
            .field("role", &self.role)
            .field("base_url", &self.base_url)
            .field("query_timeout", &self.query_timeout)
            .field("session_lifetime", &self.session_lifetime)
            .finish()
    }
}

/// What serde reads before it becomes a [`SnowflakeConfig`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    account: String,
    user: String,
    password: Option<String>,
    private_key_pem: Option<String>,
    private_key_path: Option<std::path::PathBuf>,
    private_key_passphrase: Option<String>,
    warehouse: Option<String>,
    database: Option<String>,
    schema: Option<String>,
    role: Option<String>,
    base_url: Option<String>,
    #[serde(default, with = "humantime_serde")]
    query_timeout: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    session_lifetime: Option<Duration>,
}

impl TryFrom<RawConfig> for SnowflakeConfig {
    type Error = ConfigError;

    fn try_from(raw: RawConfig) -> Result<Self, ConfigError> {
        let auth = match (raw.password, raw.private_key_pem, raw.private_key_path) {
            (Some(p), None, None) => SnowflakeAuth::Password(p),
            (None, Some(pem), None) => SnowflakeAuth::KeyPair {
                private_key_pem: pem,
                passphrase: raw.private_key_passphrase,
            },
            (None, None, Some(path)) => SnowflakeAuth::KeyPair {
                private_key_pem: std::fs::read_to_string(&path).map_err(|e| {
                    ConfigError::new(
                        "private_key_path",
                        format!("cannot read {}: {e}", path.display()),
                    )
                })?,
                passphrase: raw.private_key_passphrase,
            },
            _ => {
                return Err(ConfigError::new(
                    "password",
                    "give exactly one of `password`, `private_key_pem` and `private_key_path`",
                ));
            }
        };
        let cfg = Self {
            warehouse: raw.warehouse,
            database: raw.database,
            schema: raw.schema,
            role: raw.role,
            base_url: raw.base_url,
            query_timeout: raw.query_timeout.unwrap_or(DEFAULT_QUERY_TIMEOUT),
            session_lifetime: raw.session_lifetime.unwrap_or(DEFAULT_SESSION_LIFETIME),
            ..Self::new(raw.account, raw.user, auth)
        };
        cfg.validate()?;
        Ok(cfg)
    }
}

impl<'de> Deserialize<'de> for SnowflakeConfig {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        RawConfig::deserialize(d)?
            .try_into()
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_deserializes_with_defaults() {
        let cfg: SnowflakeConfig = serde_json::from_str(
            r#"{"account": "xy1", "user": "app", "password": "hunter2", "database": "DB"}"#,
        )
        .unwrap();
        assert_eq!(cfg.session_lifetime, DEFAULT_SESSION_LIFETIME);
        assert_eq!(cfg.query_timeout, DEFAULT_QUERY_TIMEOUT);
        assert_eq!(cfg.database.as_deref(), Some("DB"));
        assert!(!format!("{cfg:?}").contains("hunter2"));
    }

    #[test]
    fn bad_settings_name_the_field() {
        let err = serde_json::from_str::<SnowflakeConfig>(
            r#"{"account": "a", "user": "u", "password": "p", "private_key_pem": "k"}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("exactly one"), "{err}");
        let mut cfg = SnowflakeConfig::new("a", "u", SnowflakeAuth::Password("p".into()));
        cfg.session_lifetime = Duration::from_secs(3600);
        assert_eq!(cfg.validate().unwrap_err().field(), "session_lifetime");
        cfg.session_lifetime = DEFAULT_SESSION_LIFETIME;
        cfg.base_url = Some("http://user:hunter2@host".into());
        let err = cfg.validate().unwrap_err();
        assert_eq!(err.field(), "base_url");
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }
}
