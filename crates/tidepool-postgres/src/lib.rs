#![doc = include_str!("../README.md")]
//!
//! # Modules at a glance
//! - [`PgConfig`]: connection settings, from a URL or fields (serde too).
//! - [`PgManager`] and [`RecyclePolicy`]: the [`tidepool::Manager`] and what
//!   happens to a connection between users.
//! - [`PgConnection`]: the pooled connection, a [`tokio_postgres::Client`]
//!   with a prepared-statement cache.
//! - [`transaction`]: a transaction that never leaks back into the pool.
//! - [`PgError`]: the manager's error, the driver's with its causes shown.

mod calls;
mod config;
mod connection;
mod error;
mod manager;
#[cfg(feature = "rustls")]
mod tls;
mod transaction;

pub use config::{PgConfig, RootCerts, SslMode};
pub use connection::{DEFAULT_STATEMENT_CACHE_CAPACITY, PgConnection};
pub use error::PgError;
pub use manager::{CLEAN_SQL, PgManager, RecyclePolicy};
#[cfg(feature = "rustls")]
pub use tls::client_config;
pub use transaction::transaction;

/// The configuration errors of every tidepool backend (and of the pool).
pub use tidepool::ConfigError;

/// The driver, re-exported so callers use the same version as this crate.
pub use tokio_postgres;

/// The rustls version [`PgManager::with_rustls`] takes its configuration from.
#[cfg(feature = "rustls")]
pub use rustls;

/// A pool of PostgreSQL connections.
pub type PgPool = tidepool::Pool<PgManager>;
