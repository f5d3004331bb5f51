//! [`SqliteConfig`]: which database, and the pragmas every connection gets.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tidepool::ConfigError;

/// Which database the pool opens, and how each connection is set up.
///
/// Deserializes from `path = "..."` or `memory = "..."` (exactly one), with
/// an optional `[pragmas]` table; unknown keys are an error.
///
/// ```toml
/// path = "/var/lib/app/app.db"
///
/// [pragmas]
/// busy_timeout = "2s"
/// synchronous = "full"
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawConfig", into = "RawConfig")]
#[non_exhaustive]
pub struct SqliteConfig {
    /// The database file, or the name of a shared in-memory database.
    pub database: Database,
    /// Pragmas applied to every new connection.
    pub pragmas: Pragmas,
    /// Whether a database file may be written, and created when missing.
    /// Default: [`OpenMode::ReadWriteCreate`].
    pub open: OpenMode,
}

/// How a database file is opened (in-memory databases are always read-write).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum OpenMode {
    /// Read-write, and created if missing: convenient for a database the
    /// application owns.
    #[default]
    ReadWriteCreate,
    /// Read-write, but a missing file is an error rather than a new empty
    /// database: for paths that come from elsewhere (say, a client), where a
    /// typo must not leave files behind.
    ReadWrite,
    /// Read-only, never created: SQLite itself refuses every write. The
    /// journal mode is left as the file has it.
    ReadOnly,
}

impl SqliteConfig {
    /// A database file at `path` (created if missing), with the default
    /// pragmas.
    pub fn file(path: impl Into<PathBuf>) -> Self {
        Self {
            database: Database::File(path.into()),
            pragmas: Pragmas::default(),
            open: OpenMode::default(),
        }
    }

    /// The in-memory database `name`, shared by the pool's connections, with
    /// the default pragmas.
    pub fn memory(name: impl Into<String>) -> Self {
        Self {
            database: Database::Memory(name.into()),
            pragmas: Pragmas::default(),
            open: OpenMode::default(),
        }
    }

    /// Checks the settings that can be checked without opening anything.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first invalid setting.
    pub fn validate(&self) -> Result<(), ConfigError> {
        match &self.database {
            Database::File(path) if path.as_os_str().is_empty() => {
                return Err(ConfigError::new("path", "must not be empty"));
            }
            Database::Memory(name) if name.is_empty() => {
                return Err(ConfigError::new("memory", "must not be empty"));
            }
            _ => {}
        }
        if self.pragmas.busy_timeout.as_millis() > i32::MAX as u128 {
            return Err(ConfigError::new(
                "pragmas.busy_timeout",
                "must be under 24 days",
            ));
        }
        if self.pragmas.mmap_size > i64::MAX as u64 {
            return Err(ConfigError::new(
                "pragmas.mmap_size",
                "must fit in a signed 64-bit integer",
            ));
        }
        Ok(())
    }
}

/// Where the data lives.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Database {
    /// A database file, created if missing. The path is opened with URI
    /// filenames enabled, so `file:app.db?mode=ro` works too.
    ///
    /// With the default `journal_mode = WAL`, readers and one writer work
    /// concurrently, and a connection waits up to `busy_timeout` for a lock
    /// instead of failing with `SQLITE_BUSY`.
    File(PathBuf),
    /// A named in-memory database (`file:NAME?mode=memory&cache=shared`)
    /// shared by every connection of the pool — and by any other pool in this
    /// process that uses the same name.
    ///
    /// The manager keeps one extra connection open for as long as it lives,
    /// so the data survives the pool closing all of its connections (idle
    /// timeout, lifetime, eviction); it is gone once the pool is dropped.
    ///
    /// Trade-offs: WAL does not apply to in-memory databases — the
    /// `journal_mode` pragma is accepted but the mode stays `memory` —, and
    /// shared-cache connections lock whole tables: a connection that meets a
    /// table another one is writing gets `SQLITE_LOCKED` at once,
    /// which `busy_timeout` does not retry. Suits tests and caches; for
    /// concurrent writers use a file.
    Memory(String),
}

/// Per-connection pragmas, applied when a connection is opened. Every field
/// has a default chosen for a pooled, concurrent workload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Pragmas {
    /// How the database journals writes. Default: [`JournalMode::Wal`].
    pub journal_mode: JournalMode,
    /// How often SQLite waits for data to reach the disk. Default:
    /// [`Synchronous::Normal`].
    pub synchronous: Synchronous,
    /// How long a connection waits for a lock held by another before failing
    /// with `SQLITE_BUSY`. Written as `"5s"`. Default: 5 s.
    #[serde(with = "humantime_serde")]
    pub busy_timeout: Duration,
    /// Bytes of the database file read through memory mapping (0: off).
    /// Default: 256 MiB.
    pub mmap_size: u64,
    /// Page cache per connection: pages when positive, KiB when negative
    /// (SQLite's convention). Default: 10000 pages.
    pub cache_size: i64,
    /// Where temporary tables and indices live. Default: [`TempStore::Memory`].
    pub temp_store: TempStore,
    /// Whether foreign key constraints are enforced. Default: `true`
    /// (SQLite's own default is off).
    pub foreign_keys: bool,
}

impl Default for Pragmas {
    fn default() -> Self {
        Self {
            journal_mode: JournalMode::Wal,
            synchronous: Synchronous::Normal,
            busy_timeout: Duration::from_secs(5),
            mmap_size: 256 * 1024 * 1024,
            cache_size: 10_000,
            temp_store: TempStore::Memory,
            foreign_keys: true,
        }
    }
}

/// `PRAGMA journal_mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum JournalMode {
    /// Write-ahead log: readers never block the writer nor it them, commits
    /// are a single append. Needs shared memory, so not for network file
    /// systems. Persistent: the file stays in WAL mode.
    Wal,
    /// Rollback journal, deleted after each transaction (SQLite's default):
    /// a writer blocks readers while it commits.
    Delete,
    /// Rollback journal truncated instead of deleted: like `Delete`, with
    /// fewer file system operations.
    Truncate,
    /// Rollback journal kept and its header zeroed: like `Truncate`.
    Persist,
    /// Journal in memory: faster, but a crash mid-transaction can corrupt
    /// the database.
    Memory,
    /// No journal: no rollback, and a crash can corrupt the database.
    Off,
}

impl JournalMode {
    /// The pragma's value, as SQLite reports it (`wal`, `delete`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Wal => "wal",
            Self::Delete => "delete",
            Self::Truncate => "truncate",
            Self::Persist => "persist",
            Self::Memory => "memory",
            Self::Off => "off",
        }
    }
}

/// `PRAGMA synchronous`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Synchronous {
    /// Never waits for the disk: fastest; a power loss can lose or corrupt
    /// recent transactions.
    Off,
    /// With WAL, waits only at checkpoints: a power loss can lose the last
    /// transactions but never corrupts the database. The usual choice for WAL.
    Normal,
    /// Waits at every commit: durable, slower.
    Full,
    /// Like `Full`, also syncing the directory after unlinking a journal.
    Extra,
}

impl Synchronous {
    /// The pragma's value (`NORMAL`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Off => "OFF",
            Self::Normal => "NORMAL",
            Self::Full => "FULL",
            Self::Extra => "EXTRA",
        }
    }
}

/// `PRAGMA temp_store`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TempStore {
    /// SQLite's compile-time default.
    Default,
    /// Temporary files: bounded memory use for large sorts.
    File,
    /// In memory: faster sorts and temporary tables, at the cost of memory.
    Memory,
}

impl TempStore {
    /// The pragma's value (`MEMORY`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Default => "DEFAULT",
            Self::File => "FILE",
            Self::Memory => "MEMORY",
        }
    }
}

/// What serde reads and writes for a [`SqliteConfig`].
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    path: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    memory: Option<String>,
    #[serde(default)]
    pragmas: Pragmas,
    #[serde(default, skip_serializing_if = "is_default_open")]
    open: OpenMode,
}

fn is_default_open(mode: &OpenMode) -> bool {
    *mode == OpenMode::default()
}

impl TryFrom<RawConfig> for SqliteConfig {
    type Error = ConfigError;

    fn try_from(raw: RawConfig) -> Result<Self, ConfigError> {
        let database = match (raw.path, raw.memory) {
            (Some(path), None) => Database::File(path),
            (None, Some(name)) => Database::Memory(name),
            (Some(_), Some(_)) => {
                return Err(ConfigError::new(
                    "path",
                    "set either `path` or `memory`, not both",
                ));
            }
            (None, None) => {
                return Err(ConfigError::new(
                    "path",
                    "set `path` (a database file) or `memory` (a shared in-memory database)",
                ));
            }
        };
        let cfg = Self {
            database,
            pragmas: raw.pragmas,
            open: raw.open,
        };
        cfg.validate()?;
        Ok(cfg)
    }
}

impl From<SqliteConfig> for RawConfig {
    fn from(cfg: SqliteConfig) -> Self {
        let (path, memory) = match cfg.database {
            Database::File(path) => (Some(path), None),
            Database::Memory(name) => (None, Some(name)),
        };
        Self {
            path,
            memory,
            pragmas: cfg.pragmas,
            open: cfg.open,
        }
    }
}
