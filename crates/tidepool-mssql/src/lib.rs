#![doc = include_str!("../README.md")]
//!
//! # Contents
//! - [`MssqlConfig`]: where and how to connect, from an ADO.NET connection
//!   string or fields (serde too); [`Encrypt`] is the TLS choice.
//! - [`MssqlManager`]: the [`tidepool::Manager`] for tiberius.
//! - [`MssqlConnection`]: the pooled connection, a [`tiberius::Client`] that
//!   knows when its TCP connection ended.
//! - [`transaction`]: a transaction that never leaks back into the pool.
//! - [`MssqlError`]: the manager's error; [`InitialState`] and
//!   [`INITIAL_STATE_SQL`]: what the reset restores.

mod config;
mod connection;
mod error;
mod manager;
mod session;
mod stream;
mod txn;

pub use config::{
    DEFAULT_COMMAND_TIMEOUT, DEFAULT_HANDSHAKE_TIMEOUT, Encrypt, MssqlConfig, MssqlConfigBuilder,
};
pub use connection::{MssqlClient, MssqlConnection};
pub use error::MssqlError;
pub use manager::MssqlManager;
pub use session::{INITIAL_STATE_SQL, InitialState};
pub use stream::MssqlStream;
pub use txn::transaction;

/// The driver, re-exported so callers use the same version as this crate.
pub use tiberius;
/// The configuration errors of every tidepool backend.
pub use tidepool::ConfigError;

/// A pool of SQL Server connections.
pub type MssqlPool = tidepool::Pool<MssqlManager>;

/// The guard a [`MssqlPool`] hands out; derefs to [`MssqlConnection`].
pub type MssqlPooled<'a> = tidepool::Pooled<'a, MssqlManager>;
