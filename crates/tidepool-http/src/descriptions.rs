//! Connection descriptions: a session that brings its own database instead
//! of naming a configured pool — off unless the operator turns it on, and
//! then held to a structured allow-list.
//!
//! # Implementation notes
//! A description is parsed first (a PostgreSQL URL by the backend's own
//! parser, or the seed-style fields `host`, `port`, `database`, `username`,
//! `password`; a SQLite path), and the parsed, normalised fields are
//! matched one by one against [`AllowEntry`]s — never the text against a
//! prefix. What PostgreSQL will connect to is what is matched: the host
//! after any `?host=` override, a Unix socket directory only if an entry
//! names it, the port, the database and the user. A SQLite path may not
//! contain `..`; its directory is resolved (symlinks included) and must lie
//! under an allowed directory, as must the file a symlink points to; a
//! missing file is created only where the entry says `create = true`. Every
//! refusal answers the same words, so a client learns nothing about hosts,
//! ports or paths it is not allowed.

use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::path::PathBuf;
#[cfg(feature = "sqlite")]
use std::path::{Component, Path};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::gateway::{Gateway, GatewayMode};

/// The one answer to any description that is not allowed.
const NOT_ALLOWED: &str = "this connection is not on the server's allow-list";

/// Whether sessions may bring their own connection, and which.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Descriptions {
    /// Whether descriptions are accepted at all. Default: `false`.
    pub enabled: bool,
    /// What a description must match (one entry is enough). Default: empty
    /// (nothing matches).
    pub allow: Vec<AllowEntry>,
    /// The gateway mode of on-demand pools. Default:
    /// [`GatewayMode::ReadOnly`].
    pub mode: GatewayMode,
    /// Settings of on-demand pools. Default: the pool defaults with
    /// `max_size = 4`.
    pub pool: tidepool::PoolConfig,
}

impl Default for Descriptions {
    fn default() -> Self {
        let mut pool = tidepool::PoolConfig::default();
        pool.max_size = 4;
        Self {
            enabled: false,
            allow: Vec::new(),
            mode: GatewayMode::ReadOnly,
            pool,
        }
    }
}

/// One allowed kind of connection. `"*"` as `database` or `user` allows any.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "backend", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum AllowEntry {
    /// A PostgreSQL server: by TCP (`host`, `port`) or by the Unix socket
    /// directory `socket` (with `port`, which names the socket file).
    Postgres {
        /// Host name or IP address, compared as written (no DNS lookup).
        #[serde(default)]
        host: Option<String>,
        /// A Unix socket directory.
        #[serde(default)]
        socket: Option<String>,
        /// The port. Default: 5432.
        #[serde(default = "default_port")]
        port: u16,
        /// The database, or `"*"`.
        database: String,
        /// The role to log in as, or `"*"`.
        user: String,
    },
    /// SQLite files under a directory (any depth).
    Sqlite {
        /// The directory.
        directory: PathBuf,
        /// Whether a missing file may be created (read-write on-demand pools
        /// only). Default: `false`.
        #[serde(default)]
        create: bool,
    },
}

fn default_port() -> u16 {
    5432
}

impl AllowEntry {
    /// Checks the entry on its own.
    ///
    /// # Errors
    /// A message naming what is missing or contradictory.
    pub fn validate(&self) -> Result<(), String> {
        match self {
            Self::Postgres { host, socket, .. } => match (host, socket) {
                (Some(_), Some(_)) => Err("set `host` or `socket`, not both".into()),
                (None, None) => {
                    Err("set `host` (TCP) or `socket` (a Unix socket directory)".into())
                }
                (None, Some(s)) if !s.starts_with('/') => {
                    Err("`socket` must be an absolute directory".into())
                }
                _ => Ok(()),
            },
            Self::Sqlite { directory, .. } if !directory.is_absolute() => {
                Err("`directory` must be absolute".into())
            }
            Self::Sqlite { .. } => Ok(()),
        }
    }
}

/// A parsed, allowed description: what an on-demand pool is made from.
/// `Debug` never prints the password.
#[derive(Clone, PartialEq)]
pub struct Description {
    target: Target,
}

#[derive(Clone, PartialEq)]
enum Target {
    #[cfg(feature = "postgres")]
    Postgres(tidepool_postgres::PgConfig),
    #[cfg(feature = "sqlite")]
    Sqlite {
        path: PathBuf,
        open: tidepool_sqlite::OpenMode,
    },
    /// Built without a gateway backend: no description can be made.
    #[cfg(not(any(feature = "postgres", feature = "sqlite")))]
    None(std::convert::Infallible),
}

impl fmt::Debug for Description {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.target {
            #[cfg(feature = "postgres")]
            Target::Postgres(cfg) => f.debug_tuple("Description").field(cfg).finish(),
            #[cfg(feature = "sqlite")]
            Target::Sqlite { path, open } => f
                .debug_struct("Description")
                .field("path", path)
                .field("open", open)
                .finish(),
            #[cfg(not(any(feature = "postgres", feature = "sqlite")))]
            Target::None(never) => match *never {},
        }
    }
}

/// What a client sent to describe a connection.
#[derive(Debug, Default)]
// Only PostgreSQL reads the host, port, user and password fields.
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
pub(crate) struct Requested {
    pub(crate) backend: String,
    pub(crate) url: Option<String>,
    pub(crate) host: Option<String>,
    pub(crate) port: Option<u16>,
    pub(crate) database: Option<String>,
    pub(crate) username: Option<String>,
    pub(crate) password: Option<String>,
}

fn refused() -> ApiError {
    ApiError::forbidden(NOT_ALLOWED)
}

impl Description {
    /// Parses `req` and matches it against `settings`.
    pub(crate) fn parse(req: &Requested, settings: &Descriptions) -> Result<Self, ApiError> {
        if !settings.enabled {
            return Err(ApiError::forbidden(
                "this server only opens sessions on configured pools: send {\"pool\": NAME}",
            ));
        }
        match req.backend.as_str() {
            #[cfg(feature = "postgres")]
            "postgres" | "postgresql" => {
                let cfg = postgres_config(req)?;
                if settings.allow.iter().any(|e| pg_allowed(e, &cfg)) {
                    Ok(Self {
                        target: Target::Postgres(cfg),
                    })
                } else {
                    Err(refused())
                }
            }
            #[cfg(feature = "sqlite")]
            "sqlite" => {
                let raw = match (&req.url, &req.host, &req.database, &req.username) {
                    (Some(url), None, None, None) => url,
                    _ => {
                        return Err(ApiError::bad_request(
                            "a sqlite description takes `url` (a path) only",
                        ));
                    }
                };
                if sqlite_userinfo(raw) {
                    // A password here would become part of a file name, and
                    // so of the file system and of every error naming it.
                    return Err(ApiError::bad_request(
                        "a sqlite URL takes no user name or password: send a path",
                    ));
                }
                let (path, open) =
                    sqlite_target(&settings.allow, raw, settings.mode).ok_or_else(refused)?;
                Ok(Self {
                    target: Target::Sqlite { path, open },
                })
            }
            other => Err(ApiError::bad_request(format!(
                "unknown backend `{other}` (this server supports: {})",
                crate::gateway::backends().join(", ")
            ))),
        }
    }

    /// The backend's name.
    pub fn backend(&self) -> &'static str {
        match &self.target {
            #[cfg(feature = "postgres")]
            Target::Postgres(_) => "postgres",
            #[cfg(feature = "sqlite")]
            Target::Sqlite { .. } => "sqlite",
            #[cfg(not(any(feature = "postgres", feature = "sqlite")))]
            Target::None(never) => match *never {},
        }
    }

    /// The on-demand pool's name for `tenant`: the same description of the
    /// same tenant always names the same pool; another tenant's never does.
    pub(crate) fn pool_name(&self, tenant: &str, hasher: &RandomState) -> String {
        let key = match &self.target {
            #[cfg(feature = "postgres")]
            Target::Postgres(cfg) => format!(
                "{}\u{0}{}\u{0}{}\u{0}{:?}\u{0}{:?}\u{0}{:?}\u{0}{:?}\u{0}{:?}",
                cfg.host,
                cfg.port,
                cfg.user,
                cfg.password,
                cfg.dbname,
                cfg.application_name,
                cfg.connect_timeout,
                cfg.ssl_mode
            ),
            #[cfg(feature = "sqlite")]
            Target::Sqlite { path, .. } => path.display().to_string(),
            #[cfg(not(any(feature = "postgres", feature = "sqlite")))]
            Target::None(never) => match *never {},
        };
        let hash = hasher.hash_one((tenant, key));
        format!("session-{}-{hash:016x}", self.backend())
    }

    /// The password, if any (for the redactor).
    pub(crate) fn password(&self) -> Option<&str> {
        match &self.target {
            #[cfg(feature = "postgres")]
            Target::Postgres(cfg) => cfg.password.as_deref(),
            #[cfg(feature = "sqlite")]
            Target::Sqlite { .. } => None,
            #[cfg(not(any(feature = "postgres", feature = "sqlite")))]
            Target::None(never) => match *never {},
        }
    }

    /// Gets or makes the pool `name` in `registry` with `cfg`, and its
    /// gateway in `mode`.
    pub(crate) fn open(
        &self,
        registry: &tidepool::Registry,
        name: &str,
        cfg: &tidepool::PoolConfig,
        mode: GatewayMode,
    ) -> Result<Arc<dyn Gateway>, String> {
        match &self.target {
            #[cfg(feature = "postgres")]
            Target::Postgres(pg) => {
                let manager = tidepool_postgres::PgManager::with_tls(pg.clone())
                    .map_err(|e| e.to_string())?;
                let pool = on_demand_pool(registry, name, manager, cfg)?;
                Ok(Arc::new(crate::gateway::PgGateway::new(pool).mode(mode)))
            }
            #[cfg(feature = "sqlite")]
            Target::Sqlite { path, open } => {
                let mut config = tidepool_sqlite::SqliteConfig::file(path);
                config.open = *open;
                let manager =
                    tidepool_sqlite::SqliteManager::new(config).map_err(|e| e.to_string())?;
                let pool = on_demand_pool(registry, name, manager, cfg)?;
                Ok(Arc::new(
                    crate::gateway::SqliteGateway::new(pool).mode(mode),
                ))
            }
            #[cfg(not(any(feature = "postgres", feature = "sqlite")))]
            Target::None(never) => match *never {},
        }
    }
}

/// Gets or makes the removable pool `name` of `manager` with `cfg`.
#[cfg(any(feature = "postgres", feature = "sqlite"))]
fn on_demand_pool<M: tidepool::Manager>(
    registry: &tidepool::Registry,
    name: &str,
    manager: M,
    cfg: &tidepool::PoolConfig,
) -> Result<tidepool::Pool<M>, String> {
    registry
        .get_or_create(name, |n| {
            tidepool::Pool::builder(manager)
                .config(cfg.clone())
                .name(n)
                .build()
        })
        .map_err(|e| e.to_string())
}

#[cfg(feature = "postgres")]
fn postgres_config(req: &Requested) -> Result<tidepool_postgres::PgConfig, ApiError> {
    let fields = req.host.is_some()
        || req.port.is_some()
        || req.database.is_some()
        || req.username.is_some()
        || req.password.is_some();
    match (&req.url, fields) {
        (Some(url), false) => {
            let cfg = tidepool_postgres::PgConfig::from_url(url).map_err(|e| {
                ApiError::bad_request(format!("the connection URL is invalid: {e}"))
            })?;
            if matches!(
                cfg.ssl_root_cert,
                Some(tidepool_postgres::RootCerts::File(_))
            ) {
                // A path on the server's disk is not the tenant's to name.
                return Err(ApiError::bad_request(
                    "a description's `sslrootcert` can only be `system`: a file would be read from the server's disk",
                ));
            }
            Ok(cfg)
        }
        (None, true) => {
            let mut cfg = tidepool_postgres::PgConfig::default();
            cfg.host = req
                .host
                .clone()
                .ok_or_else(|| ApiError::bad_request("`host` is missing"))?;
            cfg.port = req.port.unwrap_or(5432);
            cfg.dbname.clone_from(&req.database);
            cfg.user = req
                .username
                .clone()
                .ok_or_else(|| ApiError::bad_request("`username` is missing"))?;
            cfg.password.clone_from(&req.password);
            Ok(cfg)
        }
        _ => Err(ApiError::bad_request(
            "describe a postgres connection by `url`, or by `host`, `port`, `database`, `username` and `password`, not both",
        )),
    }
}

#[cfg(feature = "postgres")]
fn pg_allowed(entry: &AllowEntry, cfg: &tidepool_postgres::PgConfig) -> bool {
    let AllowEntry::Postgres {
        host,
        socket,
        port,
        database,
        user,
    } = entry
    else {
        return false;
    };
    let place = if cfg.host.starts_with('/') {
        socket
            .as_deref()
            .is_some_and(|s| s.trim_end_matches('/') == cfg.host.trim_end_matches('/'))
    } else {
        host.as_deref()
            .is_some_and(|h| h.eq_ignore_ascii_case(&cfg.host))
    };
    let any_or = |pattern: &str, value: Option<&str>| match value {
        Some(v) => pattern == "*" || pattern == v,
        None => false,
    };
    place
        && *port == cfg.port
        && any_or(database, cfg.dbname.as_deref())
        && any_or(user, Some(&cfg.user))
}

/// Whether a `sqlite://` URL carries user information (`user:pw@`) in its
/// authority.
#[cfg(feature = "sqlite")]
fn sqlite_userinfo(raw: &str) -> bool {
    raw.strip_prefix("sqlite://")
        .and_then(|rest| rest.split('/').next())
        .is_some_and(|authority| authority.contains('@'))
}

/// The file a SQLite description names, if an entry allows it, and how to
/// open it.
#[cfg(feature = "sqlite")]
fn sqlite_target(
    entries: &[AllowEntry],
    raw: &str,
    mode: GatewayMode,
) -> Option<(PathBuf, tidepool_sqlite::OpenMode)> {
    use tidepool_sqlite::OpenMode;
    let raw = raw
        .strip_prefix("sqlite://")
        .or_else(|| raw.strip_prefix("sqlite:"))
        .unwrap_or(raw);
    if raw.is_empty() || raw.starts_with("file:") || raw.contains('\0') {
        return None;
    }
    let path = Path::new(raw);
    if path
        .components()
        .any(|c| matches!(c, Component::ParentDir | Component::CurDir))
    {
        return None;
    }
    let dirs: Vec<(PathBuf, bool)> = entries
        .iter()
        .filter_map(|e| match e {
            AllowEntry::Sqlite { directory, create } => {
                Some((directory.canonicalize().ok()?, *create))
            }
            AllowEntry::Postgres { .. } => None,
        })
        .collect();
    let candidate = if path.is_absolute() {
        path.to_owned()
    } else {
        dirs.first()?.0.join(path)
    };
    let file_name = candidate.file_name()?;
    let parent = candidate.parent()?.canonicalize().ok()?;
    let full = parent.join(file_name);
    let (_, create) = dirs.iter().find(|(dir, _)| parent.starts_with(dir))?;
    let existing = match std::fs::symlink_metadata(&full) {
        Ok(meta) if meta.is_file() => Some(full),
        Ok(meta) if meta.file_type().is_symlink() => {
            let target = full.canonicalize().ok()?;
            let inside = dirs.iter().any(|(dir, _)| target.starts_with(dir));
            (inside && target.is_file()).then_some(target)
        }
        Ok(_) => return None,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(_) => return None,
    };
    match (existing, mode) {
        (Some(file), GatewayMode::ReadWrite) => Some((file, OpenMode::ReadWrite)),
        (Some(file), _) => Some((file, OpenMode::ReadOnly)),
        (None, GatewayMode::ReadWrite) if *create => {
            Some((parent.join(file_name), OpenMode::ReadWriteCreate))
        }
        (None, _) => None,
    }
}

#[cfg(all(test, feature = "postgres", feature = "sqlite"))]
mod tests {
    use super::*;

    fn pg(url: &str) -> tidepool_postgres::PgConfig {
        tidepool_postgres::PgConfig::from_url(url).unwrap()
    }

    #[test]
    fn postgres_entries_match_field_by_field() {
        let entry = AllowEntry::Postgres {
            host: Some("db.internal".into()),
            socket: None,
            port: 5432,
            database: "reporting".into(),
            user: "*".into(),
        };
        assert!(pg_allowed(
            &entry,
            &pg("postgres://r@db.internal/reporting")
        ));
        assert!(pg_allowed(
            &entry,
            &pg("postgres://r@DB.internal:5432/reporting")
        ));
        for bad in [
            "postgres://r@db.internal:3306/reporting",
            "postgres://r@db.internal/other",
            "postgres://r@db.internal",
            "postgres://r@db.internal/reporting?host=/var/run/postgresql",
            "postgres://r@db.internal@127.0.0.1:6379/reporting",
            "postgres://r@db.internal.evil.example/reporting",
        ] {
            assert!(!pg_allowed(&entry, &pg(bad)), "{bad}");
        }
        let socket = AllowEntry::Postgres {
            host: None,
            socket: Some("/var/run/postgresql/".into()),
            port: 5432,
            database: "*".into(),
            user: "app".into(),
        };
        assert!(pg_allowed(
            &socket,
            &pg("postgres://app@localhost/x?host=/var/run/postgresql")
        ));
        assert!(!pg_allowed(&socket, &pg("postgres://app@localhost/x")));
    }

    #[test]
    fn sqlite_paths_stay_inside_and_are_never_created_unasked() {
        use tidepool_sqlite::OpenMode;
        let dir = tempfile::tempdir().unwrap();
        let inside = dir.path().join("in");
        std::fs::create_dir(&inside).unwrap();
        std::fs::write(inside.join("a.db"), b"").unwrap();
        std::fs::write(dir.path().join("out.db"), b"").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(dir.path().join("out.db"), inside.join("link.db")).unwrap();
        let entries = [AllowEntry::Sqlite {
            directory: inside.clone(),
            create: false,
        }];
        let ro = GatewayMode::ReadOnly;
        let got = sqlite_target(&entries, "a.db", ro).unwrap();
        assert_eq!(got.1, OpenMode::ReadOnly);
        assert!(sqlite_target(&entries, &format!("{}/../out.db", inside.display()), ro).is_none());
        assert!(
            sqlite_target(&entries, "link.db", ro).is_none(),
            "symlink out"
        );
        assert!(sqlite_target(&entries, "missing.db", GatewayMode::ReadWrite).is_none());
        assert!(sqlite_target(&entries, "file:a.db?mode=rwc", ro).is_none());
        assert!(sqlite_userinfo("sqlite://user:pw@a.db"));
        assert!(sqlite_userinfo("sqlite://user:pw@/srv/a.db"));
        assert!(!sqlite_userinfo("sqlite:///srv/a@b.db"));
        assert!(!sqlite_userinfo("a@b.db"));
        let creating = [AllowEntry::Sqlite {
            directory: inside.clone(),
            create: true,
        }];
        let made = sqlite_target(&creating, "new.db", GatewayMode::ReadWrite).unwrap();
        assert_eq!(made.1, OpenMode::ReadWriteCreate);
        assert!(sqlite_target(&creating, "new.db", ro).is_none());
    }
}
