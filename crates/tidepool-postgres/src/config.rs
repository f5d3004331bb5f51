//! [`PgConfig`]: where and how to connect, from a URL or from fields.
//!
//! # Implementation notes
//! URLs are parsed by the driver (`tokio_postgres::Config`'s `FromStr`),
//! whose errors name the option at fault without quoting its value. Four
//! promises are kept before it runs, in a few lines of their own: the URL
//! must be a `postgres://` one; the last `@` of the authority ends the user
//! info, so a password may hold an unencoded `@` (the driver would stop at
//! the first); a bad percent-escape in the user name or password is an
//! error (the driver would keep it as text); and a query parameter this type
//! cannot carry is an error naming it, instead of being dropped.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use tidepool::ConfigError;
use tokio_postgres::config::Host;

/// Whether the connection is encrypted with TLS, and what is checked of the
/// server's certificate (libpq's `sslmode`).
///
/// TLS needs a connector: [`PgManager::new`](crate::PgManager::new) has none
/// (plain TCP); with the `rustls` feature, `PgManager::with_tls` makes one
/// that follows this setting and [`PgConfig::ssl_root_cert`].
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
    /// you do not control; needs a TLS connector. The certificate is checked
    /// only when root certificates are given (then as with `VerifyCa`), as
    /// libpq does: otherwise the session is private from eavesdroppers but
    /// not from an attacker in the middle.
    Require,
    /// Encrypted, and the server's certificate must chain to the root
    /// certificates ([`PgConfig::ssl_root_cert`]); its name is not checked.
    VerifyCa,
    /// Encrypted, the certificate must chain to the root certificates, and
    /// name the host connected to: the only mode that stops an attacker in
    /// the middle who has a certificate from the same authority.
    VerifyFull,
}

impl SslMode {
    pub(crate) fn to_driver(self) -> tokio_postgres::config::SslMode {
        match self {
            Self::Disable => tokio_postgres::config::SslMode::Disable,
            Self::Prefer => tokio_postgres::config::SslMode::Prefer,
            Self::Require | Self::VerifyCa | Self::VerifyFull => {
                tokio_postgres::config::SslMode::Require
            }
        }
    }

    /// The mode as a URL writes it (`verify-full`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Prefer => "prefer",
            Self::Require => "require",
            Self::VerifyCa => "verify-ca",
            Self::VerifyFull => "verify-full",
        }
    }

    fn from_url_value(value: &str) -> Option<Self> {
        [
            Self::Disable,
            Self::Prefer,
            Self::Require,
            Self::VerifyCa,
            Self::VerifyFull,
        ]
        .into_iter()
        .find(|m| m.as_str() == value)
    }
}

/// The root certificates the server's certificate must chain to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RootCerts {
    /// The PEM file at this path (one or more certificates).
    File(PathBuf),
    /// The operating system's trust store (`sslrootcert=system`, as libpq
    /// 16 spells it).
    System,
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
/// # Ok::<(), tidepool::ConfigError>(())
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
    /// The root certificates for [`SslMode::VerifyCa`] and
    /// [`SslMode::VerifyFull`] (and for `Require`, which then checks the
    /// chain too): URL parameter `sslrootcert`, a PEM file's path or
    /// `system`. Default: none.
    pub ssl_root_cert: Option<RootCerts>,
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
            ssl_root_cert: None,
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
            .field("ssl_root_cert", &self.ssl_root_cert)
            .finish()
    }
}

impl PgConfig {
    /// Parses a URL of the form
    /// `postgres://[user[:password]@][host][:port][/dbname][?param=value&...]`
    /// (`postgresql://` works too). Components may be percent-encoded; an
    /// IPv6 host is written in brackets. Query parameters:
    /// `application_name`, `connect_timeout` (whole seconds, as in libpq),
    /// `sslmode` (`disable`, `prefer`, `require`, `verify-ca`,
    /// `verify-full`), `sslrootcert` (a PEM file, or `system`) and `host`
    /// (for a Unix socket directory). Missing parts keep their [`Default`].
    ///
    /// # Errors
    /// A [`ConfigError`] for the `url` setting naming the part that is
    /// wrong. It quotes no value from the URL (only the name of an unknown
    /// query parameter), so it never contains the password.
    pub fn from_url(url: &str) -> Result<Self, ConfigError> {
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
    type Err = ConfigError;

    fn from_str(url: &str) -> Result<Self, Self::Err> {
        parse_url(url)
    }
}

/// The query parameters a [`PgConfig`] can carry.
const PARAMETERS: [&str; 5] = [
    "application_name",
    "connect_timeout",
    "sslmode",
    "sslrootcert",
    "host",
];

fn url_error(message: impl std::fmt::Display) -> ConfigError {
    ConfigError::new("url", format!("invalid PostgreSQL URL: {message}"))
}

fn parse_url(url: &str) -> Result<PgConfig, ConfigError> {
    let (scheme, rest) = ["postgres://", "postgresql://"]
        .iter()
        .find_map(|p| url.strip_prefix(p).map(|rest| (*p, rest)))
        .ok_or_else(|| url_error("it must start with postgres:// or postgresql://"))?;
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let normalized = match authority.rsplit_once('@') {
        Some((userinfo, host_port)) => {
            let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
            check_escapes(user, "user name")?;
            check_escapes(password, "password")?;
            format!(
                "{scheme}{}@{host_port}{}",
                userinfo.replace('@', "%40"),
                tail.replace('@', "%40")
            )
        }
        None => format!("{scheme}{authority}{}", tail.replace('@', "%40")),
    };
    let mut host_in_query = false;
    let mut ssl = SslParams::default();
    if let Some((_, query)) = tail.split_once('?') {
        for param in query.split('&').filter(|p| !p.is_empty()) {
            host_in_query |= param.starts_with("host=");
            let (key, value) = param.split_once('=').unwrap_or((param, ""));
            if ssl.take(key, value)? || PARAMETERS.contains(&key) {
                continue;
            }
            return Err(
                if key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    url_error(format_args!(
                        "unknown parameter `{key}` (supported: {})",
                        PARAMETERS.join(", ")
                    ))
                } else {
                    url_error("unknown query parameter")
                },
            );
        }
    }
    let normalized = without_ssl_params(&normalized);
    let driver: tokio_postgres::Config =
        normalized.parse().map_err(|e: tokio_postgres::Error| {
            let mut text = e.to_string();
            let mut cause = std::error::Error::source(&e);
            while let Some(c) = cause {
                text = format!("{text}: {c}");
                cause = c.source();
            }
            url_error(text)
        })?;
    let mut cfg = from_driver(&driver, host_in_query)?;
    // As libpq 16: the system's roots vouch for any name a public
    // authority certified, so they go with `verify-full` only, which is
    // their default.
    match (ssl.mode, &ssl.root_cert) {
        (None | Some(SslMode::VerifyFull), Some(RootCerts::System)) => {
            cfg.ssl_mode = SslMode::VerifyFull;
        }
        (Some(weak), Some(RootCerts::System)) => {
            return Err(url_error(format!(
                "sslmode={} may not be used with sslrootcert=system (use verify-full): any certificate a public authority issued would pass",
                weak.as_str()
            )));
        }
        (Some(mode), _) => cfg.ssl_mode = mode,
        (None, _) => {}
    }
    cfg.ssl_root_cert = ssl.root_cert;
    Ok(cfg)
}

/// The TLS parameters of a URL, read here rather than by the driver, which
/// knows neither `verify-ca`/`verify-full` nor `sslrootcert`.
#[derive(Default)]
struct SslParams {
    mode: Option<SslMode>,
    root_cert: Option<RootCerts>,
}

impl SslParams {
    /// Takes `key=value` if it is a TLS parameter (`true`), or fails on a
    /// bad value; `false` for any other parameter.
    fn take(&mut self, key: &str, value: &str) -> Result<bool, ConfigError> {
        match key {
            "sslmode" => {
                self.mode = Some(SslMode::from_url_value(value).ok_or_else(|| {
                    url_error(
                        "sslmode must be one of disable, prefer, require, verify-ca, verify-full",
                    )
                })?);
                Ok(true)
            }
            "sslrootcert" => {
                let path = percent_decode(value)
                    .ok_or_else(|| url_error("bad percent-encoding in sslrootcert"))?;
                self.root_cert = Some(match path.as_str() {
                    "" => return Err(url_error("sslrootcert is empty")),
                    "system" => RootCerts::System,
                    _ => RootCerts::File(PathBuf::from(path)),
                });
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

/// The URL without its `sslmode` and `sslrootcert` parameters.
fn without_ssl_params(url: &str) -> String {
    let Some((base, query)) = url.split_once('?') else {
        return url.to_owned();
    };
    let kept: Vec<&str> = query
        .split('&')
        .filter(|p| {
            let key = p.split_once('=').map_or(*p, |(k, _)| k);
            !matches!(key, "sslmode" | "sslrootcert")
        })
        .collect();
    if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    }
}

/// Decodes `%XX` escapes (and `+` as a space, as the driver does); `None`
/// on a bad escape or bytes that are not UTF-8.
fn percent_decode(value: &str) -> Option<String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// Fails on a `%` not followed by two hex digits.
fn check_escapes(part: &str, what: &str) -> Result<(), ConfigError> {
    let bytes = part.as_bytes();
    let bad = bytes.iter().enumerate().any(|(i, b)| {
        *b == b'%'
            && !bytes
                .get(i + 1..i + 3)
                .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
    });
    if bad {
        return Err(url_error(format_args!(
            "bad percent-encoding in the {what}"
        )));
    }
    Ok(())
}

/// The settings of a parsed URL; what keeps its default is missing there.
/// A `host` query parameter overrides the URL's host, as in libpq, where a
/// later setting wins.
fn from_driver(
    driver: &tokio_postgres::Config,
    host_in_query: bool,
) -> Result<PgConfig, ConfigError> {
    let mut cfg = PgConfig::default();
    let hosts = driver.get_hosts();
    let hosts = match hosts {
        [.., last] if host_in_query => std::slice::from_ref(last),
        _ => hosts,
    };
    match hosts {
        [] => {}
        [Host::Tcp(host)] if host.is_empty() => {}
        [Host::Tcp(host)] => cfg.host.clone_from(host),
        #[cfg(unix)]
        [Host::Unix(path)] => {
            cfg.host = path
                .to_str()
                .ok_or_else(|| url_error("the host is not valid UTF-8"))?
                .to_owned();
        }
        _ => return Err(url_error("give one host (several are not supported)")),
    }
    match driver.get_ports() {
        [] => {}
        [0] => return Err(url_error("the port is not a number from 1 to 65535")),
        [port] => cfg.port = *port,
        _ => return Err(url_error("give one port (several are not supported)")),
    }
    if let Some(user) = driver.get_user().filter(|u| !u.is_empty()) {
        user.clone_into(&mut cfg.user);
    }
    if let Some(password) = driver.get_password() {
        let password = std::str::from_utf8(password)
            .map_err(|_| url_error("the password is not valid UTF-8 once decoded"))?;
        cfg.password = Some(password.to_owned());
    }
    cfg.dbname = driver.get_dbname().map(str::to_owned);
    cfg.application_name = driver.get_application_name().map(str::to_owned);
    cfg.connect_timeout = driver.get_connect_timeout().copied();
    Ok(cfg)
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
    ssl_root_cert: Option<RootCerts>,
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
            ssl_root_cert,
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
            ssl_root_cert,
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
            ssl_root_cert: f.ssl_root_cert,
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
    fn a_host_in_the_query_overrides_the_urls_host() {
        let cfg: PgConfig = "postgres://u@db.internal:5433/db?host=/var/run/postgresql"
            .parse()
            .unwrap();
        assert_eq!((cfg.host.as_str(), cfg.port), ("/var/run/postgresql", 5433));
        assert!("postgres://u@h1,h2/db".parse::<PgConfig>().is_err());
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
    fn an_at_sign_after_the_host_is_data() {
        let cfg: PgConfig = "postgres://h/db?application_name=a%40b".parse().unwrap();
        assert_eq!(cfg.application_name.as_deref(), Some("a@b"));
        let cfg: PgConfig = "postgres://h/db?application_name=a@b".parse().unwrap();
        assert_eq!((cfg.host.as_str(), cfg.user.as_str()), ("h", "postgres"));
        assert_eq!(cfg.application_name.as_deref(), Some("a@b"));
    }

    #[test]
    fn verify_modes_and_root_certificates_come_from_the_url() {
        let cfg: PgConfig =
            "postgres://u@db/x?sslmode=verify-full&sslrootcert=%2Fetc%2Fpg%20ca.pem&application_name=a"
                .parse()
                .unwrap();
        assert_eq!(cfg.ssl_mode, SslMode::VerifyFull);
        assert_eq!(
            cfg.ssl_root_cert,
            Some(RootCerts::File(PathBuf::from("/etc/pg ca.pem")))
        );
        assert_eq!(cfg.application_name.as_deref(), Some("a"));
        let cfg: PgConfig = "postgres://u@db/x?sslrootcert=system&sslmode=verify-full"
            .parse()
            .unwrap();
        assert_eq!(
            (cfg.ssl_mode, cfg.ssl_root_cert),
            (SslMode::VerifyFull, Some(RootCerts::System))
        );
        let err = "postgres://u@db/x?sslmode=verify"
            .parse::<PgConfig>()
            .unwrap_err();
        assert!(err.to_string().contains("verify-full"), "{err}");
        assert!(
            "postgres://u@db/x?sslrootcert=%zz"
                .parse::<PgConfig>()
                .is_err()
        );
    }

    #[test]
    fn system_roots_go_with_verify_full_only_as_in_libpq() {
        // Any certificate a public authority issued, for any name, chains
        // to the system's roots: only the name check makes them mean much.
        let cfg: PgConfig = "postgres://u@db/x?sslrootcert=system".parse().unwrap();
        assert_eq!(cfg.ssl_mode, SslMode::VerifyFull);
        for weak in ["disable", "prefer", "require", "verify-ca"] {
            let err = format!("postgres://u@db/x?sslmode={weak}&sslrootcert=system")
                .parse::<PgConfig>()
                .unwrap_err();
            assert!(err.to_string().contains("verify-full"), "{weak}: {err}");
        }
    }

    #[test]
    fn several_hosts_are_refused_by_name() {
        let err = "postgres://a,b/db".parse::<PgConfig>().unwrap_err();
        assert_eq!(err.field(), "url");
        assert!(err.to_string().contains("one host"), "{err}");
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
