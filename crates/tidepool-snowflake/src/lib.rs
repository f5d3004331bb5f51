#![doc = include_str!("../README.md")]
//!
//! # Contents
//! - [`SnowflakeConfig`] and [`SnowflakeAuth`]: account, login (password or
//!   key pair), session defaults and lifetime; serde too.
//! - [`SnowflakeManager`]: the [`tidepool::Manager`] for
//!   snowflake-connector-rs.
//! - [`SnowflakeConnection`]: the pooled session, which notices when it
//!   dies.

mod config;
mod connection;
mod manager;

pub use config::{
    DEFAULT_QUERY_TIMEOUT, DEFAULT_SESSION_LIFETIME, SESSION_TOKEN_VALIDITY, SnowflakeAuth,
    SnowflakeConfig,
};
pub use connection::SnowflakeConnection;
pub use manager::SnowflakeManager;

/// The driver, re-exported so callers use the same version as this crate.
pub use snowflake_connector_rs;
/// The configuration errors of every tidepool backend (and of the pool).
pub use tidepool::ConfigError;

/// A pool of Snowflake sessions.
pub type SnowflakePool = tidepool::Pool<SnowflakeManager>;

/// The guard a [`SnowflakePool`] hands out; derefs to [`SnowflakeConnection`].
pub type SnowflakePooled<'a> = tidepool::Pooled<'a, SnowflakeManager>;
