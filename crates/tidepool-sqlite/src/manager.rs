//! [`SqliteManager`]: opens and checks SQLite connections on blocking threads.

use std::error::Error as StdError;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use rusqlite::{Connection, OpenFlags};
use tidepool::{ConfigError, Manager};

use crate::SqliteConfig;
use crate::config::{Database, OpenMode, Pragmas};
use crate::connection::{InteractError, SqliteConnection, State};

/// The [`Manager`] for SQLite: opens rusqlite connections and applies the
/// configured pragmas, all on tokio's blocking threads.
///
/// - `connect` opens the database (as [`OpenMode`] says: by default
///   read-write and created if missing; URI filenames on) and applies
///   [`Pragmas`], in one blocking call.
/// - `validate` runs `SELECT 1` on a blocking thread.
/// - `has_broken` (no I/O, never blocks) closes a returned connection whose
///   closure panicked, whose closure is still running after its caller gave
///   up, or that still has a transaction open.
pub struct SqliteManager {
    config: SqliteConfig,
    target: Target,
    /// For a shared in-memory database: one connection kept open while the
    /// manager lives, so the data outlives the pool's own connections.
    anchor: Arc<Mutex<Option<Connection>>>,
}

impl fmt::Debug for SqliteManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteManager")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// What `Connection::open_with_flags` is given.
#[derive(Debug, Clone)]
enum Target {
    File(PathBuf),
    Memory(String),
}

impl SqliteManager {
    /// A manager for `config`. Nothing is opened yet.
    ///
    /// # Errors
    /// A [`ConfigError`] when the configuration is invalid (see
    /// [`SqliteConfig::validate`]).
    pub fn new(config: SqliteConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let target = match &config.database {
            Database::File(path) => Target::File(path.clone()),
            Database::Memory(name) => {
                Target::Memory(format!("file:{}?mode=memory&cache=shared", encode(name)))
            }
        };
        Ok(Self {
            config,
            target,
            anchor: Arc::new(Mutex::new(None)),
        })
    }

    /// The configuration this manager opens connections with.
    pub fn config(&self) -> &SqliteConfig {
        &self.config
    }
}

/// Percent-encodes a name for use in a `file:` URI.
fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Opens one connection and sets it up. Runs on a blocking thread.
fn open(
    target: &Target,
    pragmas: &Pragmas,
    mode: OpenMode,
    anchor: &Mutex<Option<Connection>>,
) -> rusqlite::Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_URI
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = match target {
        Target::File(path) => {
            let file_flags = match mode {
                OpenMode::ReadWriteCreate => flags,
                OpenMode::ReadWrite => flags - OpenFlags::SQLITE_OPEN_CREATE,
                OpenMode::ReadOnly => {
                    OpenFlags::SQLITE_OPEN_READ_ONLY
                        | OpenFlags::SQLITE_OPEN_URI
                        | OpenFlags::SQLITE_OPEN_NO_MUTEX
                }
            };
            Connection::open_with_flags(path, file_flags)?
        }
        Target::Memory(uri) => {
            let mut anchor = anchor.lock().unwrap_or_else(PoisonError::into_inner);
            if anchor.is_none() {
                *anchor = Some(Connection::open_with_flags(uri, flags)?);
            }
            Connection::open_with_flags(uri, flags)?
        }
    };
    let read_only = mode == OpenMode::ReadOnly && matches!(target, Target::File(_));
    apply(
        &conn,
        pragmas,
        matches!(target, Target::Memory(_)),
        read_only,
    )?;
    Ok(conn)
}

/// Applies the pragmas. `busy_timeout` first, so that switching the journal
/// mode waits for a lock rather than failing.
fn apply(conn: &Connection, p: &Pragmas, in_memory: bool, read_only: bool) -> rusqlite::Result<()> {
    conn.busy_timeout(p.busy_timeout)?;
    if read_only {
        // Changing the journal mode writes the file; a read-only
        // connection keeps whatever the file has.
        return conn.execute_batch(&format!(
            "PRAGMA foreign_keys = {}; PRAGMA cache_size = {}; PRAGMA mmap_size = {};",
            if p.foreign_keys { "ON" } else { "OFF" },
            p.cache_size,
            p.mmap_size,
        ));
    }
    let mode: String = conn.query_row(
        &format!("PRAGMA journal_mode = {}", p.journal_mode.as_str()),
        [],
        |row| row.get(0),
    )?;
    if !mode.eq_ignore_ascii_case(p.journal_mode.as_str()) && !in_memory {
        // An in-memory database always reports `memory`; a file refusing
        // WAL (say, on a file system without shared memory) is worth a word.
        tracing::warn!(
            requested = p.journal_mode.as_str(),
            actual = %mode,
            "SQLite kept another journal mode"
        );
    }
    conn.execute_batch(&format!(
        "PRAGMA synchronous = {};
         PRAGMA temp_store = {};
         PRAGMA foreign_keys = {};
         PRAGMA cache_size = {};
         PRAGMA mmap_size = {};",
        p.synchronous.as_str(),
        p.temp_store.as_str(),
        if p.foreign_keys { "ON" } else { "OFF" },
        p.cache_size,
        p.mmap_size,
    ))
}

impl Manager for SqliteManager {
    type Connection = SqliteConnection;
    type Error = SqliteError;

    async fn connect(&self) -> Result<SqliteConnection, SqliteError> {
        let target = self.target.clone();
        let pragmas = self.config.pragmas.clone();
        let mode = self.config.open;
        let anchor = Arc::clone(&self.anchor);
        let conn = tokio::task::spawn_blocking(move || open(&target, &pragmas, mode, &anchor))
            .await
            .map_err(InteractError::from)??;
        Ok(SqliteConnection::new(conn))
    }

    async fn validate(&self, conn: &mut SqliteConnection) -> Result<(), SqliteError> {
        conn.interact(|c| c.query_row("SELECT 1", [], |row| row.get::<_, i64>(0)))
            .await??;
        Ok(())
    }

    fn has_broken(&self, conn: &mut SqliteConnection) -> bool {
        let state = conn.state();
        if state != State::Ready {
            tracing::debug!(state = ?state, "closing a returned SQLite connection");
        }
        state != State::Ready
    }
}

/// An error from the SQLite manager: opening, setting up or checking a
/// connection.
#[derive(Debug)]
#[non_exhaustive]
pub enum SqliteError {
    /// SQLite reported an error.
    Sqlite(rusqlite::Error),
    /// The work did not run to completion on its blocking thread.
    Interact(InteractError),
}

impl fmt::Display for SqliteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sqlite(e) => e.fmt(f),
            Self::Interact(e) => e.fmt(f),
        }
    }
}

impl StdError for SqliteError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            // Transparent: the wrapped error's own source.
            Self::Sqlite(e) => e.source(),
            Self::Interact(e) => e.source(),
        }
    }
}

impl From<rusqlite::Error> for SqliteError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Sqlite(e)
    }
}

impl From<InteractError> for SqliteError {
    fn from(e: InteractError) -> Self {
        Self::Interact(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_encoded_for_uris() {
        assert_eq!(encode("cache-1.db"), "cache-1.db");
        assert_eq!(encode("a b?c&d#e%"), "a%20b%3Fc%26d%23e%25");
        assert_eq!(encode("é"), "%C3%A9");
    }
}
