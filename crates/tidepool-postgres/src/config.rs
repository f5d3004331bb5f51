//! [`PgConfig`]: where and how to connect, from a URL or from fields.
//!
//! # Implementation notes
//! The URL parser is written here rather than delegated to
//! `tokio_postgres::Config` so that it can promise two things: every error
//! names the part of the URL at fault without quoting its value (a URL missing
//! its `@` would otherwise put the password where the port should be, and an
//! error quoting the "port" would print it), and an unknown query parameter is
//! an error instead of being silently dropped.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};

/// Whether the connection is encrypted with TLS.
///
/// TLS needs a connector: [`PgManager::new`](crate::PgManager::new) has none
/// (plain TCP); with the `rustls` feature, `PgManager::with_rustls` adds one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SslMode {
    /// Never use TLS: no handshake cost, but credentials and data cross the
    /// network in clear text. Fine on a loopback or a trusted private network.
    Disable,
    /// Use TLS when both a connector is configured and the server offers it,
    /// else connect in clear text. Convenient, but an attacker in the middle
    /// can force clear text.
    #[default]
    Prefer,
    /// Fail unless the session is encrypted: the safe choice across networks
    /// you do not control; needs a TLS connector.
    Require,
}

impl SslMode {
    pub(crate) fn to_driver(self) -> tokio_postgres::config::SslMode {
        match self {
            Self::Disable => tokio_postgres::config::SslMode::Disable,
            Self::Prefer => tokio_postgres::config::SslMode::Prefer,
            Self::Require => tokio_postgres::config::SslMode::Require,
        }
    }
}

/// Where and how to connect to PostgreSQL.
///
/// Build it from a URL (`"postgres://user:pass@host:5432/db".parse()`, or
/// [`from_url`](PgConfig::from_url)), from [`Default`] and its public fields,
/// or deserialize it: serde accepts either a URL string or a table of the
/// fields below (unknown keys are an error; `connect_timeout` is written as
/// `"5s"` or `"off"`).
///
/// `Debug` never prints the password: it shows `"***"` instead.
///
/// ```
/// use tidepool_postgres::PgConfig;
///
/// let cfg: PgConfig = "postgres://app:s3cret@db.internal:6432/orders".parse()?;
/// assert_eq!(cfg.host, "db.internal");
/// assert_eq!(cfg.port, 6432);
/// assert_eq!(cfg.dbname.as_deref(), Some("orders"));
/// assert!(!format!("{cfg:?}").contains("s3cret"));
/// # Ok::<(), tidepool_postgres::PgConfigError>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PgConfig {
    /// Host name, IP address, or (starting with `/`) the directory of a Unix
    /// socket. Default: `"localhost"`.
    pub host: String,
    /// TCP port. Default: 5432.
    pub port: u16,
    /// Role to log in as. Default: `"postgres"`.
    pub user: String,
    /// Password, if the server asks for one. Default: none.
    pub password: Option<String>,
    /// Database; the server uses the role's name when unset. Default: none.
    pub dbname: Option<String>,
    /// Shown in `pg_stat_activity.application_name`. Default: none.
    pub application_name: Option<String>,
    /// Longest the TCP connect may take (`None`: no limit of its own; the
    /// pool's `create_timeout` still bounds the whole attempt). Default: none.
    pub connect_timeout: Option<Duration>,
    /// TLS use. Default: [`SslMode::Prefer`].
    pub ssl_mode: SslMode,
}

impl Default for PgConfig {
    fn default() -> Self {
        Self {
            host: "localhost".to_owned(),
            port: 5432,
            user: "postgres".to_owned(),
            password: None,
            dbname: None,
            application_name: None,
            connect_timeout: None,
            ssl_mode: SslMode::Prefer,
        }
    }
}

impl fmt::Debug for PgConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("dbname", &self.dbname)
            .field("application_name", &self.application_name)
            .field("connect_timeout", &self.connect_timeout)
            .field("ssl_mode", &self.ssl_mode)
            .finish()
    }
}

impl PgConfig {
    /// Parses a URL of the form
    /// `postgres://[user[:password]@][host][:port][/dbname][?param=value&...]`
    /// (`postgresql://` works too). Components may be percent-encoded; an
    /// IPv6 host is written in brackets. Query parameters:
    /// `application_name`, `connect_timeout` (whole seconds, as in libpq),
    /// `sslmode` (`disable`, `prefer`, `require`) and `host` (for a Unix
    /// socket directory). Missing parts keep their [`Default`].
    ///
    /// # Errors
    /// A [`PgConfigError`] naming the part that is wrong. It quotes no value
    /// from the URL (only the name of an unknown query parameter), so it
    /// never contains the password.
    pub fn from_url(url: &str) -> Result<Self, PgConfigError> {
        parse_url(url)
    }

    /// The driver's configuration for these settings.
    pub fn to_tokio_postgres(&self) -> tokio_postgres::Config {
        let mut pg = tokio_postgres::Config::new();
        pg.host(&self.host)
            .port(self.port)
            .user(&self.user)
            .ssl_mode(self.ssl_mode.to_driver());
        if let Some(password) = &self.password {
            pg.password(password);
        }
        if let Some(dbname) = &self.dbname {
            pg.dbname(dbname);
        }
        if let Some(name) = &self.application_name {
            pg.application_name(name);
        }
        if let Some(timeout) = self.connect_timeout {
            pg.connect_timeout(timeout);
        }
        pg
    }
}

impl FromStr for PgConfig {
    type Err = PgConfigError;

    fn from_str(url: &str) -> Result<Self, Self::Err> {
        parse_url(url)
    }
}

/// A PostgreSQL URL that could not be parsed. Its message names the part at
/// fault and quotes no value from the URL, so it is safe to log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgConfigError {
    message: String,
}

impl PgConfigError {
    fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }

    /// What is wrong, without the error's prefix.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for PgConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid PostgreSQL URL: {}", self.message)
    }
}

impl std::error::Error for PgConfigError {}

fn parse_url(url: &str) -> Result<PgConfig, PgConfigError> {
    let rest = url
        .strip_prefix("postgres://")
        .or_else(|| url.strip_prefix("postgresql://"))
        .ok_or_else(|| PgConfigError::new("it must start with postgres:// or postgresql://"))?;
    let (rest, query) = match rest.split_once('?') {
        Some((rest, query)) => (rest, Some(query)),
        None => (rest, None),
    };
    let (authority, path) = match rest.split_once('/') {
        Some((authority, path)) => (authority, Some(path)),
        None => (rest, None),
    };
    let mut cfg = PgConfig::default();

    // The last `@` ends the user info, so an unencoded `@` in a password
    // still parses.
    let host_port = match authority.rsplit_once('@') {
        Some((userinfo, host_port)) => {
            let (user, password) = match userinfo.split_once(':') {
                Some((user, password)) => (user, Some(password)),
                None => (userinfo, None),
            };
            if !user.is_empty() {
                cfg.user = decode(user, "user name")?;
            }
            if let Some(password) = password {
                cfg.password = Some(decode(password, "password")?);
            }
            host_port
        }
        None => authority,
    };
    let (host, port) = split_host_port(host_port)?;
    if !host.is_empty() {
        cfg.host = decode(host, "host")?;
    }
    if let Some(port) = port {
        cfg.port = parse_port(port)?;
    }
    if let Some(path) = path.filter(|p| !p.is_empty()) {
        cfg.dbname = Some(decode(path, "database name")?);
    }
    for pair in query.into_iter().flat_map(|q| q.split('&')) {
        if pair.is_empty() {
            continue;
        }
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = decode(key, "query parameter name")?;
        match key.as_str() {
            "application_name" => {
                cfg.application_name = Some(decode(value, "application_name")?);
            }
            "connect_timeout" => {
                let secs: u64 = decode(value, "connect_timeout")?.parse().map_err(|_| {
                    PgConfigError::new("connect_timeout must be a whole number of seconds")
                })?;
                // libpq reads 0 (like no value) as "wait forever".
                cfg.connect_timeout = (secs > 0).then(|| Duration::from_secs(secs));
            }
            "sslmode" => {
                cfg.ssl_mode = match decode(value, "sslmode")?.as_str() {
                    "disable" => SslMode::Disable,
                    "prefer" => SslMode::Prefer,
                    "require" => SslMode::Require,
                    _ => {
                        return Err(PgConfigError::new(
                            "sslmode must be one of disable, prefer, require",
                        ));
                    }
                };
            }
            "host" => cfg.host = decode(value, "host")?,
            _ if key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') => {
                return Err(PgConfigError::new(format!(
                    "unknown parameter `{key}` (supported: application_name, connect_timeout, sslmode, host)"
                )));
            }
            _ => return Err(PgConfigError::new("unknown query parameter")),
        }
    }
    Ok(cfg)
}

/// Splits `host[:port]`, with an IPv6 host in brackets.
fn split_host_port(s: &str) -> Result<(&str, Option<&str>), PgConfigError> {
    if let Some(bracketed) = s.strip_prefix('[') {
        let (host, after) = bracketed
            .split_once(']')
            .ok_or_else(|| PgConfigError::new("an IPv6 host misses its closing `]`"))?;
        return match after {
            "" => Ok((host, None)),
            _ => match after.strip_prefix(':') {
                Some(port) => Ok((host, Some(port))),
                None => Err(PgConfigError::new("unexpected text after the IPv6 host")),
            },
        };
    }
    Ok(match s.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (s, None),
    })
}

fn parse_port(port: &str) -> Result<u16, PgConfigError> {
    // Deliberately not quoted: a URL missing its `@` puts the password here.
    port.parse()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| PgConfigError::new("the port is not a number from 1 to 65535"))
}

/// Percent-decodes one URL component; `what` names it in errors.
fn decode(s: &str, what: &str) -> Result<String, PgConfigError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| PgConfigError::new(format!("bad percent-encoding in the {what}")))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out)
        .map_err(|_| PgConfigError::new(format!("the {what} is not valid UTF-8 once decoded")))
}

/// The table form of [`PgConfig`], for serde.
#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Fields {
    host: String,
    port: u16,
    user: String,
    password: Option<String>,
    dbname: Option<String>,
    application_name: Option<String>,
    #[serde(with = "tidepool::off_or_duration")]
    connect_timeout: Option<Duration>,
    ssl_mode: SslMode,
}

impl Default for Fields {
    fn default() -> Self {
        let PgConfig {
            host,
            port,
            user,
            password,
            dbname,
            application_name,
            connect_timeout,
            ssl_mode,
        } = PgConfig::default();
        Self {
            host,
            port,
            user,
            password,
            dbname,
            application_name,
            connect_timeout,
            ssl_mode,
        }
    }
}

impl From<Fields> for PgConfig {
    fn from(f: Fields) -> Self {
        Self {
            host: f.host,
            port: f.port,
            user: f.user,
            password: f.password,
            dbname: f.dbname,
            application_name: f.application_name,
            connect_timeout: f.connect_timeout,
            ssl_mode: f.ssl_mode,
        }
    }
}

impl<'de> Deserialize<'de> for PgConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct UrlOrFields;

        impl<'de> Visitor<'de> for UrlOrFields {
            type Value = PgConfig;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a postgres:// URL or a table of connection settings")
            }

            fn visit_str<E: de::Error>(self, url: &str) -> Result<PgConfig, E> {
                parse_url(url).map_err(E::custom)
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<PgConfig, A::Error> {
                Fields::deserialize(de::value::MapAccessDeserializer::new(map)).map(PgConfig::from)
            }
        }

        d.deserialize_any(UrlOrFields)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_url_fills_every_field() {
        let cfg: PgConfig =
            "postgresql://app:p%40ss@db:6432/orders?application_name=api&connect_timeout=3&sslmode=require"
                .parse()
                .unwrap();
        assert_eq!(cfg.user, "app");
        assert_eq!(cfg.password.as_deref(), Some("p@ss"));
        assert_eq!(cfg.host, "db");
        assert_eq!(cfg.port, 6432);
        assert_eq!(cfg.dbname.as_deref(), Some("orders"));
        assert_eq!(cfg.application_name.as_deref(), Some("api"));
        assert_eq!(cfg.connect_timeout, Some(Duration::from_secs(3)));
        assert_eq!(cfg.ssl_mode, SslMode::Require);
    }

    #[test]
    fn missing_parts_keep_their_defaults() {
        let cfg: PgConfig = "postgres://".parse().unwrap();
        assert_eq!(cfg, PgConfig::default());
        let cfg: PgConfig = "postgres://[::1]:5433".parse().unwrap();
        assert_eq!((cfg.host.as_str(), cfg.port), ("::1", 5433));
        let cfg: PgConfig = "postgres://u@/db?host=%2Fvar%2Frun%2Fpostgresql"
            .parse()
            .unwrap();
        assert_eq!(cfg.host, "/var/run/postgresql");
        assert_eq!(cfg.password, None);
    }

    #[test]
    fn an_unencoded_at_sign_stays_in_the_password() {
        let cfg: PgConfig = "postgres://u:a@b@host/db".parse().unwrap();
        assert_eq!(cfg.password.as_deref(), Some("a@b"));
        assert_eq!(cfg.host, "host");
    }

    #[test]
    fn errors_name_the_part_but_never_quote_the_password() {
        // Without its `@`, the password lands where the port belongs.
        let err = "postgres://user:hunter2/db"
            .parse::<PgConfig>()
            .unwrap_err();
        assert!(err.to_string().contains("port"), "{err}");
        assert!(!err.to_string().contains("hunter2"), "{err}");

        let err = "postgres://u:hunter2@h/db?sslmode=hunter2"
            .parse::<PgConfig>()
            .unwrap_err();
        assert!(err.to_string().contains("sslmode"), "{err}");
        assert!(!err.to_string().contains("hunter2"), "{err}");

        let err = "postgres://u:hunter2%zz@h".parse::<PgConfig>().unwrap_err();
        assert!(err.to_string().contains("password"), "{err}");
        assert!(!err.to_string().contains("hunter2"), "{err}");

        let err = "mysql://u:hunter2@h".parse::<PgConfig>().unwrap_err();
        assert!(err.to_string().contains("postgres://"), "{err}");
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }

    #[test]
    fn unknown_parameters_are_named() {
        let err = "postgres://h/db?target_session_attrs=any"
            .parse::<PgConfig>()
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("unknown parameter `target_session_attrs`"),
            "{err}"
        );
    }
}
