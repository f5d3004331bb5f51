#![doc = include_str!("../README.md")]
//!
//! # Contents
//! - [`MySqlConfig`]: where to connect, and whether returned connections are
//!   reset.
//! - [`MySqlManager`]: the [`tidepool::Manager`] for `mysql_async`.
//! - [`transaction`]: run an async closure in a transaction that commits,
//!   rolls back, or closes the connection if it is cut short.
//! - [`MySqlPool`]: the pool type; [`mysql_async`] is re-exported.

mod config;
mod manager;
mod txn;

pub use config::MySqlConfig;
pub use manager::MySqlManager;
pub use mysql_async;
/// The configuration errors of every tidepool backend (and of the pool).
pub use tidepool::ConfigError;
pub use txn::transaction;

/// A pool of MySQL or MariaDB connections.
pub type MySqlPool = tidepool::Pool<MySqlManager>;

/// The guard a [`MySqlPool`] hands out; derefs to [`mysql_async::Conn`].
pub type MySqlPooled<'a> = tidepool::Pooled<'a, MySqlManager>;
