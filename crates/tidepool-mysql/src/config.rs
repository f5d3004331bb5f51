//! [`MySqlConfig`]: where to connect and how to treat returned connections.

use std::fmt;
use std::str::FromStr;

use mysql_async::{Opts, OptsBuilder};
use percent_encoding::percent_decode_str;
use serde::Deserialize;
use tidepool::ConfigError;
use url::{Host, Url};

/// How to reach a MySQL or MariaDB server, and what the pool does with a
/// connection when it comes back.
///
/// Built from a URL ([`from_url`](Self::from_url), or `.parse()`), from
/// [`Default`] plus field assignments, or deserialized. When deserializing,
/// `url` and the separate fields may be combined: the fields override the
/// URL's parts, so the password can come from elsewhere than the URL. Unknown
/// keys are an error.
///
/// ```toml
/// url = "mysql://app@db.internal:3306/orders"
/// password = "from-a-secret-store"
/// reset_on_return = true
/// ```
///
/// `Debug` never prints the password, and no error from parsing a URL repeats
/// any part of it.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawConfig")]
#[non_exhaustive]
pub struct MySqlConfig {
    /// Host name or IP address. Default: `localhost`.
    pub host: String,
    /// TCP port. Default: 3306.
    pub port: u16,
    /// User name. Default: none (the server sees an empty user).
    pub user: Option<String>,
    /// Password. Default: none.
    pub password: Option<String>,
    /// Database selected on connect. Default: none.
    pub database: Option<String>,
    /// Path of a Unix socket to connect through instead of TCP (`host` and
    /// `port` are then ignored). Default: none.
    ///
    /// The driver's "prefer socket" behaviour (connect over TCP, ask the
    /// server for its socket, reconnect through it) is always off: a pooled
    /// connection goes exactly where the configuration says, under the
    /// account it names.
    pub socket: Option<String>,
    /// Statements run on every new connection and again after every reset,
    /// for example `SET SESSION time_zone = '+00:00'`. Default: none.
    pub init: Vec<String>,
    /// Whether a returned connection is reset with `COM_RESET_CONNECTION`
    /// before it is reused. Default: `true`.
    ///
    /// **On** (the default), no session state leaks from one user to the
    /// next: an open transaction is rolled back and its locks released;
    /// user variables, temporary tables, session variables and prepared
    /// statements are cleared, and [`init`](Self::init) runs again. It costs
    /// one round trip per return, done in the background (the caller who
    /// returns the connection does not wait, but the connection is not
    /// available until the reset is done), and the driver's prepared
    /// statement cache is emptied, so statements are prepared again after
    /// every checkout. And since a connection being reset is not idle, a
    /// `get()` arriving in that moment may open another connection (up to
    /// `max_size`) rather than wait: a task that gets and returns in a tight
    /// loop ends up using a few connections instead of one.
    ///
    /// **Off**, connections are reused as they are: faster, and prepared
    /// statements stay cached, but code must leave no session state behind.
    /// As a safety net a connection returned with a transaction still open
    /// (as far as the last server reply shows) is closed instead of reused.
    pub reset_on_return: bool,
}

impl Default for MySqlConfig {
    fn default() -> Self {
        Self {
            host: "localhost".to_owned(),
            port: 3306,
            user: None,
            password: None,
            database: None,
            socket: None,
            init: Vec::new(),
            reset_on_return: true,
        }
    }
}

impl fmt::Debug for MySqlConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MySqlConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("database", &self.database)
            .field("socket", &self.socket)
            .field("init", &self.init)
            .field("reset_on_return", &self.reset_on_return)
            .finish()
    }
}

impl MySqlConfig {
    /// Reads `mysql://user:password@host:port/database` (or `mariadb://`).
    /// Every part but the host is optional; user, password and database are
    /// percent-decoded, so write `%40` for an `@` in a password. Other
    /// settings keep their defaults.
    ///
    /// # Errors
    /// A [`ConfigError`] for a malformed URL, another scheme, a path
    /// with more than a database name, or query parameters (set options
    /// through the fields instead). The error never repeats the URL.
    pub fn from_url(url: &str) -> Result<Self, ConfigError> {
        let mut cfg = Self::default();
        cfg.apply_url(url)?;
        Ok(cfg)
    }

    fn apply_url(&mut self, text: &str) -> Result<(), ConfigError> {
        let url = Url::parse(text)
            .map_err(|e| ConfigError::new("url", format!("not a valid connection URL ({e})")))?;
        if !matches!(url.scheme(), "mysql" | "mariadb") {
            return Err(ConfigError::new(
                "url",
                "the scheme must be mysql:// or mariadb://",
            ));
        }
        match url.host() {
            Some(Host::Domain(d)) if !d.is_empty() => self.host = decode("url", d)?,
            Some(Host::Ipv4(ip)) => self.host = ip.to_string(),
            Some(Host::Ipv6(ip)) => self.host = ip.to_string(),
            _ => return Err(ConfigError::new("url", "the URL names no host")),
        }
        if let Some(port) = url.port() {
            self.port = port;
        }
        if !url.username().is_empty() {
            self.user = Some(decode("url", url.username())?);
        }
        if let Some(pass) = url.password() {
            self.password = Some(decode("url", pass)?);
        }
        let path = url.path().trim_start_matches('/');
        if path.contains('/') {
            return Err(ConfigError::new(
                "url",
                "the URL path must be a single database name",
            ));
        }
        if !path.is_empty() {
            self.database = Some(decode("url", path)?);
        }
        if let Some((key, _)) = url.query_pairs().next() {
            return Err(ConfigError::new(
                "url",
                format!(
                    "URL parameters are not supported (found `{key}`); use the configuration fields"
                ),
            ));
        }
        if url.fragment().is_some() {
            return Err(ConfigError::new("url", "the URL must not have a #fragment"));
        }
        Ok(())
    }

    /// Checks the settings that can be checked without a server.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first invalid setting.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.socket.is_none() {
            if self.host.trim().is_empty() {
                return Err(ConfigError::new("host", "must not be empty"));
            }
            if self.port == 0 {
                return Err(ConfigError::new("port", "must not be 0"));
            }
        }
        if self.socket.as_deref().is_some_and(str::is_empty) {
            return Err(ConfigError::new(
                "socket",
                "must not be empty (leave it out to use TCP)",
            ));
        }
        Ok(())
    }

    /// The driver's options for these settings.
    pub(crate) fn opts(&self) -> Opts {
        OptsBuilder::default()
            .ip_or_hostname(self.host.clone())
            .tcp_port(self.port)
            .user(self.user.clone())
            .pass(self.password.clone())
            .db_name(self.database.clone())
            .socket(self.socket.clone())
            .prefer_socket(false)
            .setup(self.init.clone())
            .into()
    }
}

impl FromStr for MySqlConfig {
    type Err = ConfigError;

    /// Same as [`MySqlConfig::from_url`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_url(s)
    }
}

fn decode(field: &'static str, part: &str) -> Result<String, ConfigError> {
    percent_decode_str(part)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| ConfigError::new(field, "a percent-encoded part is not valid UTF-8"))
}

/// What serde reads before it becomes a [`MySqlConfig`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    url: Option<String>,
    host: Option<String>,
    port: Option<u16>,
    user: Option<String>,
    password: Option<String>,
    database: Option<String>,
    socket: Option<String>,
    init: Option<Vec<String>>,
    reset_on_return: Option<bool>,
}

impl TryFrom<RawConfig> for MySqlConfig {
    type Error = ConfigError;

    fn try_from(raw: RawConfig) -> Result<Self, ConfigError> {
        let mut cfg = match raw.url {
            Some(url) => Self::from_url(&url)?,
            None => Self::default(),
        };
        if let Some(host) = raw.host {
            cfg.host = host;
        }
        if let Some(port) = raw.port {
            cfg.port = port;
        }
        if raw.user.is_some() {
            cfg.user = raw.user;
        }
        if raw.password.is_some() {
            cfg.password = raw.password;
        }
        if raw.database.is_some() {
            cfg.database = raw.database;
        }
        if raw.socket.is_some() {
            cfg.socket = raw.socket;
        }
        if let Some(init) = raw.init {
            cfg.init = init;
        }
        if let Some(reset) = raw.reset_on_return {
            cfg.reset_on_return = reset;
        }
        cfg.validate()?;
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_url_fills_every_part() {
        let cfg = MySqlConfig::from_url("mysql://app:s%40cret@db.example:3307/orders").unwrap();
        assert_eq!(cfg.host, "db.example");
        assert_eq!(cfg.port, 3307);
        assert_eq!(cfg.user.as_deref(), Some("app"));
        assert_eq!(cfg.password.as_deref(), Some("s@cret"));
        assert_eq!(cfg.database.as_deref(), Some("orders"));
        assert!(cfg.reset_on_return);
    }

    #[test]
    fn a_minimal_url_keeps_the_defaults() {
        let cfg: MySqlConfig = "mariadb://[::1]".parse().unwrap();
        assert_eq!(cfg.host, "::1");
        assert_eq!(cfg.port, 3306);
        assert_eq!(cfg.user, None);
        assert_eq!(cfg.database, None);
    }

    #[test]
    fn bad_urls_are_refused_without_echoing_them() {
        for (url, expect) in [
            ("postgres://u:hunter2@h/db", "scheme"),
            ("mysql://u:hunter2@h:99999/db", "not a valid connection URL"),
            ("mysql://u:hunter2@h/db/extra", "single database name"),
            ("mysql://u:hunter2@h/db?ssl=hunter2", "found `ssl`"),
            ("u:hunter2@h/db", "scheme"),
            ("mysql://u:hunter2@/db", "empty host"),
            ("mysql:/db", "no host"),
        ] {
            let err = MySqlConfig::from_url(url).unwrap_err();
            let text = err.to_string();
            assert!(text.contains(expect), "{url}: {text}");
            assert!(!text.contains("hunter2"), "{url}: {text}");
            assert_eq!(err.field(), "url");
        }
    }

    #[test]
    fn validate_names_the_field() {
        let cfg = MySqlConfig {
            port: 0,
            ..MySqlConfig::default()
        };
        assert_eq!(cfg.validate().unwrap_err().field(), "port");
        let cfg = MySqlConfig {
            host: " ".to_owned(),
            ..MySqlConfig::default()
        };
        assert_eq!(cfg.validate().unwrap_err().field(), "host");
    }
}
