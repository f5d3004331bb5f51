#![doc = include_str!("../README.md")]
//!
//! # Modules at a glance
//! - [`RedisManager`]: the [`tidepool::Manager`], built from a URL.
//! - [`RedisConnection`]: the pooled connection, a multiplexed connection
//!   that notices when it breaks.

mod connection;
mod manager;

pub use connection::RedisConnection;
pub use manager::RedisManager;

/// The driver, re-exported so callers use the same version as this crate.
pub use redis;

/// A pool of Redis connections.
pub type RedisPool = tidepool::Pool<RedisManager>;
