#![doc = include_str!("../README.md")]
//!
//! # Modules at a glance
//! - [`Manager`]: what a backend implements.
//! - [`Pool`], [`Builder`], [`PoolConfig`]: the pool and its settings.
//! - [`Pooled`]: the guard a `get()` returns; [`Closing`]: the slot of a
//!   connection its holder is closing.
//! - [`Stats`], [`Health`], [`Advice`]: what the pool knows about itself.
//! - [`Registry`]: named pools of any manager behind one handle.
//! - [`catalog`]: every statistic as a named metric, for exporters.

mod acquire;
mod builder;
pub mod catalog;
mod clock;
mod config;
mod conn;
mod error;
mod guard;
mod health;
mod histogram;
mod manager;
mod panic;
mod pool;
mod registry;
mod shared;
mod stash;
mod state;
mod stats;
mod sync;
mod tasks;

#[cfg(all(test, feature = "loom"))]
mod loom;

pub use builder::Builder;
pub use config::{HealthConfig, IdleOrder, PoolConfig, Validation, WarmUp, off_or_duration};
pub use conn::ConnectionInfo;
pub use error::{
    BuildError, Check, ConfigError, ConnectError, ConnectFailure, PoolError, TimeoutCause,
    TimeoutError,
};
pub use guard::{Closing, Pooled};
pub use health::{
    Advice, AdviceKind, Health, HealthStatus, Recommendation, SizingEstimate, SizingVerdict,
};
pub use histogram::{Histogram, LatencySummary};
pub use manager::Manager;
pub use pool::{DrainOutcome, Pool};
pub use registry::{
    AggregateStats, CheckError, DEFAULT_IDLE_REMOVAL, PoolHandle, Registry, RegistryError,
};
pub use stats::{CloseReason, ClosedCounts, Counters, Derived, Gauges, Histograms, Stats};
