#![doc = include_str!("../README.md")]
//!
//! # Contents
//! - [`SqliteConfig`]: the database (a file or a shared in-memory database)
//!   and the [`Pragmas`] every connection gets.
//! - [`SqliteManager`]: the [`tidepool::Manager`] for rusqlite.
//! - [`SqliteConnection`]: the pooled connection; all work goes through
//!   [`SqliteConnection::interact`] on a blocking thread.
//! - [`transaction`], [`transaction_with`]: a closure in a transaction that
//!   commits, or rolls back on error, panic or cancellation.
//! - [`SqlitePool`]: the pool type; [`rusqlite`] is re-exported.

mod config;
mod connection;
mod manager;
mod txn;

pub use config::{Database, JournalMode, OpenMode, Pragmas, SqliteConfig, Synchronous, TempStore};
pub use connection::{InteractError, SqliteConnection};
pub use manager::{SqliteError, SqliteManager};
pub use rusqlite;
/// The configuration errors of every tidepool backend (and of the pool).
pub use tidepool::ConfigError;
pub use txn::{transaction, transaction_with};

/// A pool of SQLite connections.
pub type SqlitePool = tidepool::Pool<SqliteManager>;

/// The guard a [`SqlitePool`] hands out; derefs to [`SqliteConnection`].
pub type SqlitePooled<'a> = tidepool::Pooled<'a, SqliteManager>;
