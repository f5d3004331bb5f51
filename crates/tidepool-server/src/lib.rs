#![doc = include_str!("../README.md")]
//!
//! # Modules at a glance
//! - [`config`]: the TOML configuration and its errors.
//! - [`serve`]: building pools and serving the HTTP API until a signal.
//! - [`listener`]: client connections — timeouts, the connection limit,
//!   HTTPS.
//! - [`sample`]: the bundled default's sample database and token.
//! - [`load`]: `tidepool load`, the load generator.
//! - [`cli`]: the command line.

pub mod cli;
pub mod config;
pub mod listener;
pub mod load;
pub mod sample;
pub mod serve;
