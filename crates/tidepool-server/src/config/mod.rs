//! The TOML configuration: `[server]`, `[[tenants]]`, `[descriptions]` and
//! `[pools.<name>]`, with `${VAR}` interpolation, and errors that name the
//! file, line and key.
//!
//! # Implementation notes
//! The file is read in three passes. First into a plain `toml::Table`
//! (syntax errors carry their position). Then every string is interpolated
//! from the environment, after parsing, so a secret from the environment is
//! never part of the text a syntax error quotes. Last, each section is
//! deserialized into its typed form; when that fails, each key is tried
//! alone to find the one at fault, and the spanned parse (`DeTable`) gives
//! its line. Error messages quote no values, only keys and variable names.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use tidepool::{HealthConfig, PoolConfig};
use tidepool_http::{Descriptions, GatewayMode, Tenant};
use toml::{Table, Value};

mod access;
mod bounds;
mod json;
pub mod listener;
mod scrub;
pub mod token_file;

pub use access::LEGACY_ADMIN;
pub use listener::ListenerSection;

/// A configuration error: where, which key, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file (or `(bundled default)`).
    pub origin: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// The dotted key at fault, when known.
    pub key: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.origin)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ": key `{key}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// `[server]`: where to listen, tokens, limits.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSection {
    /// Address to listen on. Default: 127.0.0.1:7070.
    pub listen: SocketAddr,
    /// Tokens of the built-in admin tenant `admin` (also from the
    /// `TIDEPOOL_TOKENS` environment variable, comma-separated): the
    /// single-token setup. `[[tenants]]` add more.
    pub tokens: Vec<String>,
    /// Whether monitoring endpoints need a token too. Default: false.
    pub monitoring_requires_token: bool,
    /// Largest request body in bytes. Default: 65536.
    pub max_body_bytes: usize,
    /// Longest a request may take. Default: 60 s.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Longest one gateway statement may run. Default: 30 s.
    #[serde(with = "humantime_serde")]
    pub statement_timeout: Duration,
    /// Most rows a query returns. Default: 1000.
    pub max_rows: usize,
    /// Most bytes of JSON one request's rows may take (all the statements
    /// of a transaction together); the rest is never read. Default: 16 MiB
    /// (16777216).
    pub max_result_bytes: usize,
    /// The `acquire_timeout` of every pool that sets none: how long a
    /// request waits for one of its connections. Default: 10 s.
    #[serde(with = "humantime_serde")]
    pub acquire_timeout: Duration,
    /// Sliding session expiry. Default: 60 min.
    #[serde(with = "humantime_serde")]
    pub session_ttl: Duration,
    /// Schema cache lifetime per session. Default: 5 min.
    #[serde(with = "humantime_serde")]
    pub schema_ttl: Duration,
    /// Most live sessions. Default: 1000.
    pub max_sessions: usize,
    /// Most statements in one transaction request. Default: 100.
    pub max_transaction_statements: usize,
    /// The largest `max_size` an admin's resize may set. Default: 100.
    pub resize_ceiling: usize,
    /// How long a `/health/db` answer is reused. Default: 2 s.
    #[serde(with = "humantime_serde")]
    pub health_cache: Duration,
    /// How often the dashboard's stream sends a snapshot. Default: 1 s.
    #[serde(with = "humantime_serde")]
    pub stream_interval: Duration,
    /// Snapshots a stream client may fall behind before it is dropped.
    /// Default: 8.
    pub stream_buffer: usize,
    /// Most dashboard streams open at once. Default: 32.
    pub max_streams: usize,
    /// On-demand pools unused this long are removed. Default: 30 min.
    #[serde(with = "humantime_serde")]
    pub idle_pool_removal: Duration,
    /// How long shutdown waits for requests and connections. Default: 10 s.
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: Duration,
}

impl Default for ServerSection {
    fn default() -> Self {
        let http = tidepool_http::Settings::default();
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 7070)),
            tokens: Vec::new(),
            monitoring_requires_token: http.monitoring_requires_token,
            max_body_bytes: http.max_body_bytes,
            request_timeout: http.request_timeout,
            statement_timeout: http.statement_timeout,
            max_rows: http.max_rows,
            max_result_bytes: http.max_result_bytes,
            acquire_timeout: Duration::from_secs(10),
            session_ttl: http.session_ttl,
            schema_ttl: http.schema_ttl,
            max_sessions: http.max_sessions,
            max_transaction_statements: http.max_transaction_statements,
            resize_ceiling: http.resize_ceiling,
            health_cache: http.health_cache,
            stream_interval: http.stream_interval,
            stream_buffer: http.stream_buffer,
            max_streams: http.max_streams,
            idle_pool_removal: tidepool::DEFAULT_IDLE_REMOVAL,
            shutdown_timeout: Duration::from_secs(10),
        }
    }
}

/// Which database a configured pool serves.
#[derive(Debug, Clone, PartialEq)]
pub enum Backend {
    /// A SQLite file (created if missing).
    Sqlite(tidepool_sqlite::SqliteConfig),
    /// A PostgreSQL server; `url` as written (it may hold a password).
    Postgres {
        /// The URL, interpolated.
        url: String,
        /// The parsed settings.
        config: tidepool_postgres::PgConfig,
    },
}

/// One `[pools.<name>]` section.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolSection {
    /// The database.
    pub backend: Backend,
    /// Every pool setting of the core.
    pub pool: PoolConfig,
    /// What sessions may do on it. Default: `read_only`.
    pub gateway: GatewayMode,
    /// Whether a PostgreSQL gateway serves even on a privileged role
    /// (superuser, pg_read_server_files, ...). Default: false.
    pub allow_privileged_role: bool,
}

/// The pool keys of the gateway, taken out before the core's settings.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct GatewayKeys {
    gateway: GatewayMode,
    allow_privileged_role: bool,
}

/// A whole configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Where it came from, for messages.
    pub origin: String,
    /// `[server]`.
    pub server: ServerSection,
    /// The listener's keys of `[server]` (timeouts, connections, HTTPS).
    pub listener: ListenerSection,
    /// `[[tenants]]`, in order.
    pub tenants: Vec<Tenant>,
    /// `[descriptions]`.
    pub descriptions: Descriptions,
    /// `[pools.<name>]`, by name.
    pub pools: BTreeMap<String, PoolSection>,
}

pub(crate) struct Ctx<'a> {
    origin: &'a str,
    text: &'a str,
    /// The values `${VAR}` took from the environment, masked in messages.
    interpolated: std::cell::RefCell<Vec<String>>,
}

impl Ctx<'_> {
    /// An error at `key`; `message` is scrubbed of any value it quotes.
    pub(crate) fn err(&self, key: Option<&str>, message: impl Into<String>) -> ConfigError {
        ConfigError {
            origin: self.origin.to_owned(),
            line: key.and_then(|k| key_line(self.text, k)),
            key: key.map(str::to_owned),
            message: scrub::scrub(&message.into(), &self.interpolated.borrow()),
        }
    }
}

/// The 1-based line of a dotted key (`pools.demo.max_size`), if present.
fn key_line(text: &str, key: &str) -> Option<usize> {
    let doc = toml::de::DeTable::parse(text).ok()?;
    let mut table = doc.get_ref();
    let mut span = None;
    for part in key.split('.') {
        let (k, v) = table.iter().find(|(k, _)| k.get_ref().as_ref() == part)?;
        span = Some(k.span());
        match v.get_ref() {
            toml::de::DeValue::Table(t) => table = t,
            _ => break,
        }
    }
    let start = span?.start;
    Some(text[..start].matches('\n').count() + 1)
}

/// Replaces `${VAR}` in every string; `$$` is a literal `$`.
fn interpolate(
    value: &mut Value,
    path: &str,
    env: &dyn Fn(&str) -> Option<String>,
    ctx: &Ctx<'_>,
) -> Result<(), ConfigError> {
    match value {
        Value::String(s) if s.contains('$') => {
            let mut out = String::with_capacity(s.len());
            let mut rest = s.as_str();
            while let Some(i) = rest.find('$') {
                out.push_str(&rest[..i]);
                rest = &rest[i..];
                if let Some(after) = rest.strip_prefix("$$") {
                    out.push('$');
                    rest = after;
                } else if let Some(after) = rest.strip_prefix("${") {
                    let end = after
                        .find('}')
                        .ok_or_else(|| ctx.err(Some(path), "unclosed `${` in a string"))?;
                    let var = &after[..end];
                    if var.is_empty() || !var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    {
                        return Err(ctx.err(
                            Some(path),
                            "`${...}` must name an environment variable (letters, digits, _)",
                        ));
                    }
                    let v = env(var).ok_or_else(|| {
                        ctx.err(
                            Some(path),
                            format!("environment variable `{var}` is not set"),
                        )
                    })?;
                    out.push_str(&v);
                    ctx.interpolated.borrow_mut().push(v);
                    rest = &after[end + 1..];
                } else {
                    out.push('$');
                    rest = &rest[1..];
                }
            }
            out.push_str(rest);
            *s = out;
        }
        Value::Array(items) => {
            for v in items {
                interpolate(v, path, env, ctx)?;
            }
        }
        Value::Table(t) => {
            for (k, v) in t.iter_mut() {
                interpolate(v, &format!("{path}.{k}"), env, ctx)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Deserializes a table into `T`; on failure names the key at fault by
/// trying each key alone (serde's messages from a `Value` carry no position).
pub(crate) fn typed<T: DeserializeOwned>(
    table: &Table,
    prefix: &str,
    ctx: &Ctx<'_>,
) -> Result<T, ConfigError> {
    match Value::Table(table.clone()).try_into::<T>() {
        Ok(v) => Ok(v),
        Err(whole) => {
            for (k, v) in table {
                let mut one = Table::new();
                one.insert(k.clone(), v.clone());
                if let Err(e) = Value::Table(one).try_into::<T>() {
                    let key = format!("{prefix}.{k}");
                    if let ("health", Value::Table(h)) = (k.as_str(), v) {
                        typed::<HealthConfig>(h, &key, ctx)?;
                    }
                    return Err(ctx.err(Some(&key), e.message().trim().to_owned()));
                }
            }
            Err(ctx.err(Some(prefix), whole.message().trim().to_owned()))
        }
    }
}

fn take_string(
    t: &mut Table,
    key: &str,
    prefix: &str,
    ctx: &Ctx<'_>,
) -> Result<Option<String>, ConfigError> {
    match t.remove(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ctx.err(Some(&format!("{prefix}.{key}")), "must be a string")),
    }
}

fn pool_section(name: &str, value: &Value, ctx: &Ctx<'_>) -> Result<PoolSection, ConfigError> {
    let prefix = format!("pools.{name}");
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(ctx.err(
            Some(&prefix),
            "pool names use letters, digits, `_` and `-` only",
        ));
    }
    let Value::Table(table) = value else {
        return Err(ctx.err(Some(&prefix), "must be a table: [pools.NAME]"));
    };
    let mut rest = table.clone();
    let backend = take_string(&mut rest, "backend", &prefix, ctx)?.ok_or_else(|| {
        ctx.err(
            Some(&prefix),
            "missing `backend` (\"sqlite\" or \"postgres\")",
        )
    })?;
    let url = take_string(&mut rest, "url", &prefix, ctx)?;
    let path = take_string(&mut rest, "path", &prefix, ctx)?;
    let backend = match backend.as_str() {
        "sqlite" => {
            if url.is_some() {
                return Err(ctx.err(
                    Some(&format!("{prefix}.url")),
                    "a sqlite pool takes `path`, not `url`",
                ));
            }
            let path = path.ok_or_else(|| {
                ctx.err(Some(&prefix), "missing `path` (the SQLite database file)")
            })?;
            let mut cfg = tidepool_sqlite::SqliteConfig::file(path);
            if let Some(p) = rest.remove("pragmas") {
                let Value::Table(p) = p else {
                    return Err(ctx.err(Some(&format!("{prefix}.pragmas")), "must be a table"));
                };
                cfg.pragmas = typed(&p, &format!("{prefix}.pragmas"), ctx)?;
            }
            cfg.validate().map_err(|e| {
                ctx.err(
                    Some(&format!("{prefix}.{}", e.field())),
                    e.message().to_owned(),
                )
            })?;
            Backend::Sqlite(cfg)
        }
        "postgres" | "postgresql" => {
            if path.is_some() {
                return Err(ctx.err(
                    Some(&format!("{prefix}.path")),
                    "a postgres pool takes `url`, not `path`",
                ));
            }
            let url = url.ok_or_else(|| {
                ctx.err(
                    Some(&prefix),
                    "missing `url` (postgres://user:password@host:port/db)",
                )
            })?;
            let config = tidepool_postgres::PgConfig::from_url(&url)
                .map_err(|e| ctx.err(Some(&format!("{prefix}.url")), e.to_string()))?;
            // TLS settings (root certificates) are checked here, so that
            // check-config finds what every connect would fail on.
            tidepool_postgres::PgManager::with_tls(config.clone())
                .map_err(|e| ctx.err(Some(&format!("{prefix}.url")), e.to_string()))?;
            Backend::Postgres { url, config }
        }
        _ => {
            return Err(ctx.err(
                Some(&format!("{prefix}.backend")),
                "unknown backend; use \"sqlite\" or \"postgres\"",
            ));
        }
    };
    let mut keys = Table::new();
    for k in ["gateway", "allow_privileged_role"] {
        if let Some(v) = rest.remove(k) {
            keys.insert(k.to_owned(), v);
        }
    }
    let keys: GatewayKeys = typed(&keys, &prefix, ctx)?;
    let pool: PoolConfig = typed(&rest, &prefix, ctx)?;
    pool.validate().map_err(|e| {
        ctx.err(
            Some(&format!("{prefix}.{}", e.field())),
            e.message().to_owned(),
        )
    })?;
    Ok(PoolSection {
        backend,
        pool,
        gateway: keys.gateway,
        allow_privileged_role: keys.allow_privileged_role,
    })
}

impl Config {
    /// Parses `text` read from `origin`, interpolating with `env`.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the origin, line and key.
    pub fn parse(
        text: &str,
        origin: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let ctx = Ctx {
            origin,
            text,
            interpolated: std::cell::RefCell::default(),
        };
        let mut root: Table = toml::from_str(text).map_err(|e| ConfigError {
            origin: origin.to_owned(),
            line: e
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1),
            key: None,
            message: e.message().trim().to_owned(),
        })?;
        for (k, v) in root.iter_mut() {
            if !["server", "pools", "tenants", "descriptions"].contains(&k.as_str()) {
                return Err(ctx.err(
                    Some(k),
                    "unknown section; expected [server], [[tenants]], [descriptions] or [pools.NAME]",
                ));
            }
            interpolate(v, k, env, &ctx)?;
        }
        let mut listener = ListenerSection::default();
        let server = match root.get_mut("server") {
            None => ServerSection::default(),
            Some(Value::Table(t)) => {
                listener = listener::take(t, &ctx)?;
                for old in ["allow_connection_descriptions", "connection_allow_list"] {
                    if t.contains_key(old) {
                        return Err(ctx.err(
                            Some(&format!("server.{old}")),
                            "connection descriptions are configured in [descriptions] now: `enabled = true` and [[descriptions.allow]] entries matched field by field (see the README)",
                        ));
                    }
                }
                typed(t, "server", &ctx)?
            }
            Some(_) => return Err(ctx.err(Some("server"), "must be a table: [server]")),
        };
        if server.tokens.iter().any(|t| t.trim().is_empty()) {
            return Err(ctx.err(Some("server.tokens"), "tokens must not be empty"));
        }
        for (key, zero) in [
            ("server.max_rows", server.max_rows == 0),
            ("server.max_result_bytes", server.max_result_bytes == 0),
            ("server.acquire_timeout", server.acquire_timeout.is_zero()),
            ("server.max_sessions", server.max_sessions == 0),
            ("server.max_body_bytes", server.max_body_bytes == 0),
            ("server.request_timeout", server.request_timeout.is_zero()),
            (
                "server.statement_timeout",
                server.statement_timeout.is_zero(),
            ),
            ("server.session_ttl", server.session_ttl.is_zero()),
            ("server.resize_ceiling", server.resize_ceiling == 0),
            ("server.stream_interval", server.stream_interval.is_zero()),
            ("server.stream_buffer", server.stream_buffer == 0),
            ("server.max_streams", server.max_streams == 0),
            (
                "server.max_transaction_statements",
                server.max_transaction_statements == 0,
            ),
        ] {
            if zero {
                return Err(ctx.err(Some(key), "must be greater than zero"));
            }
        }
        let mut pools = BTreeMap::new();
        match root.get("pools") {
            None => {}
            Some(Value::Table(t)) => {
                for (name, v) in t {
                    pools.insert(name.clone(), pool_section(name, v, &ctx)?);
                }
            }
            Some(_) => return Err(ctx.err(Some("pools"), "must be tables: [pools.NAME]")),
        }
        let mut descriptions = access::descriptions(root.get("descriptions"), &ctx)?;
        bounds::default_acquire_timeouts(
            &root,
            server.acquire_timeout,
            &mut pools,
            &mut descriptions,
        );
        let tenants = access::tenants(root.get("tenants"), &server, &pools, &ctx)?;
        Ok(Self {
            origin: origin.to_owned(),
            server,
            listener,
            tenants,
            descriptions,
            pools,
        })
    }

    /// Reads and parses a file, interpolating from the process environment.
    ///
    /// # Errors
    /// When the file cannot be read, or see [`parse`](Self::parse).
    pub fn load(path: &std::path::Path) -> Result<Self, ConfigError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            origin: origin.clone(),
            line: None,
            key: None,
            message: format!("cannot read the file: {e}"),
        })?;
        Self::parse(&text, &origin, &|var| std::env::var(var).ok())
    }

    /// The bundled default: one SQLite pool `demo` at `data_dir/demo.db`.
    pub fn bundled(data_dir: &std::path::Path) -> Self {
        let server = ServerSection::default();
        let mut pool = PoolConfig::default();
        pool.max_size = 4;
        pool.acquire_timeout = server.acquire_timeout;
        let mut pools = BTreeMap::new();
        pools.insert(
            "demo".to_owned(),
            PoolSection {
                backend: Backend::Sqlite(tidepool_sqlite::SqliteConfig::file(
                    data_dir.join("demo.db"),
                )),
                pool,
                gateway: GatewayMode::ReadOnly,
                allow_privileged_role: false,
            },
        );
        Self {
            origin: "(bundled default)".to_owned(),
            server,
            listener: ListenerSection::default(),
            tenants: Vec::new(),
            descriptions: Descriptions::default(),
            pools,
        }
    }
}

/// The data directory of the bundled default.
pub fn default_data_dir() -> PathBuf {
    PathBuf::from("data")
}
