//! Typed pool settings: defaults, (de)serialization and validation.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::ConfigError;

/// Every setting of a pool. Deserializes from TOML/JSON with the defaults below
/// for missing keys and an error for unknown ones; durations are written as
/// human-readable strings (`"30s"`, `"10m"`), and settings that can be turned
/// off accept `"off"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct PoolConfig {
    /// Most connections kept by the pool. Default: 10.
    pub max_size: usize,
    /// Idle connections the pool keeps ready; never shrunk below by the idle
    /// timeout. Default: 0.
    pub min_idle: usize,
    /// Temporary connections allowed beyond `max_size` when every regular one
    /// is busy; each is closed when returned and nobody waits for it.
    /// Default: 0.
    pub max_overflow: usize,
    /// How long `get()` waits before failing with a timeout. Default: 30 s.
    #[serde(with = "humantime_serde")]
    pub acquire_timeout: Duration,
    /// Longest a single connect attempt (with `after_create`) may take.
    /// Default: 10 s.
    #[serde(with = "humantime_serde")]
    pub create_timeout: Duration,
    /// Longest a validation ping or reset may take. Default: 5 s.
    #[serde(with = "humantime_serde")]
    pub validation_timeout: Duration,
    /// Age at which a connection retires: idle ones are closed, busy ones on
    /// return. `"off"` keeps connections forever. Default: 30 min.
    #[serde(with = "off_or_duration")]
    pub max_lifetime: Option<Duration>,
    /// Fraction of `max_lifetime` by which each connection retires early, at
    /// random, so a pool never reconnects all at once. Default: 0.025.
    pub max_lifetime_jitter: f64,
    /// Idle connections unused this long are closed, down to `min_idle`.
    /// Default: 10 min.
    #[serde(with = "off_or_duration")]
    pub idle_timeout: Option<Duration>,
    /// Idle connections unused this long are pinged in the background.
    /// Default: 5 min.
    #[serde(with = "off_or_duration")]
    pub keepalive_interval: Option<Duration>,
    /// When a connection is validated before checkout. Default: `if_idle`.
    pub validation: Validation,
    /// With `validation = "if_idle"`: a connection used within this window
    /// skips the ping. Default: 500 ms.
    #[serde(with = "humantime_serde")]
    pub validation_window: Duration,
    /// Retries after a failed connect attempt, never past the caller's
    /// deadline. Default: 3.
    pub max_retries: u32,
    /// First retry delay; it doubles each retry, with jitter. Default: 100 ms.
    #[serde(with = "humantime_serde")]
    pub retry_backoff: Duration,
    /// Cap on the retry delay. Default: 5 s.
    #[serde(with = "humantime_serde")]
    pub retry_backoff_max: Duration,
    /// Which idle connection is handed out first. Default: `lifo`.
    pub idle_order: IdleOrder,
    /// A connection held longer than this is reported as a possible leak,
    /// with the code location that checked it out. Default: off. While on,
    /// every get and return passes the pool's one lock (no per-thread
    /// stash), which costs throughput under contention.
    #[serde(with = "off_or_duration")]
    pub leak_detection_threshold: Option<Duration>,
    /// With leak detection on, also capture a backtrace of every checkout,
    /// shown in leak reports. Capturing one costs tens of microseconds per
    /// `get()` (symbols are resolved only when a report is written, outside
    /// the pool's lock); without it a report names the checkout's source
    /// location, which costs nothing. Default: `false`.
    pub leak_detection_backtrace: bool,
    /// Whether [`Builder::build_warm`](crate::Builder::build_warm) fills
    /// `min_idle` before returning. Default: `lazy`.
    pub warm_up: WarmUp,
    /// How often the background task reaps, refills, pings and looks for
    /// leaks. Default: 1 s.
    #[serde(with = "humantime_serde")]
    pub maintenance_interval: Duration,
    /// The recent window over which rates, errors and mean hold time are
    /// computed. Default: 60 s.
    #[serde(with = "humantime_serde")]
    pub stats_window: Duration,
    /// Thresholds for health classification and advice.
    pub health: HealthConfig,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            max_size: 10,
            min_idle: 0,
            max_overflow: 0,
            acquire_timeout: Duration::from_secs(30),
            create_timeout: Duration::from_secs(10),
            validation_timeout: Duration::from_secs(5),
            max_lifetime: Some(Duration::from_secs(30 * 60)),
            max_lifetime_jitter: 0.025,
            idle_timeout: Some(Duration::from_secs(10 * 60)),
            keepalive_interval: Some(Duration::from_secs(5 * 60)),
            validation: Validation::IfIdle,
            validation_window: Duration::from_millis(500),
            max_retries: 3,
            retry_backoff: Duration::from_millis(100),
            retry_backoff_max: Duration::from_secs(5),
            idle_order: IdleOrder::Lifo,
            leak_detection_threshold: None,
            leak_detection_backtrace: false,
            warm_up: WarmUp::Lazy,
            maintenance_interval: Duration::from_secs(1),
            stats_window: Duration::from_secs(60),
            health: HealthConfig::default(),
        }
    }
}

impl PoolConfig {
    /// Checks every setting and says which one is wrong.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first invalid setting.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_size == 0 {
            return Err(ConfigError::new("max_size", "must be at least 1"));
        }
        if self.min_idle > self.max_size {
            return Err(ConfigError::new(
                "min_idle",
                format!(
                    "{} must not exceed max_size ({})",
                    self.min_idle, self.max_size
                ),
            ));
        }
        for (field, d) in [
            ("acquire_timeout", self.acquire_timeout),
            ("create_timeout", self.create_timeout),
            ("validation_timeout", self.validation_timeout),
            ("maintenance_interval", self.maintenance_interval),
            ("stats_window", self.stats_window),
        ] {
            if d.is_zero() {
                return Err(ConfigError::new(field, "must be greater than zero"));
            }
        }
        for (field, d) in [
            ("max_lifetime", self.max_lifetime),
            ("idle_timeout", self.idle_timeout),
            ("keepalive_interval", self.keepalive_interval),
            ("leak_detection_threshold", self.leak_detection_threshold),
        ] {
            if d.is_some_and(|d| d.is_zero()) {
                return Err(ConfigError::new(
                    field,
                    "must be greater than zero (write \"off\" to disable)",
                ));
            }
        }
        if !(0.0..=0.5).contains(&self.max_lifetime_jitter) {
            return Err(ConfigError::new(
                "max_lifetime_jitter",
                format!("{} is outside 0.0..=0.5", self.max_lifetime_jitter),
            ));
        }
        if self.retry_backoff > self.retry_backoff_max {
            return Err(ConfigError::new(
                "retry_backoff",
                format!(
                    "{:?} exceeds retry_backoff_max ({:?})",
                    self.retry_backoff, self.retry_backoff_max
                ),
            ));
        }
        self.health.validate()
    }
}

/// When a connection is validated (pinged) before it is handed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Validation {
    /// Ping before every checkout: no broken connection ever reaches a
    /// caller, at the price of a round trip on every `get()`.
    Always,
    /// Ping only connections idle longer than `validation_window`
    /// (HikariCP's rule): hot connections skip it, stale ones are checked.
    #[default]
    IfIdle,
    /// Never ping: the fastest; a connection that died while idle surfaces
    /// as an error in the caller's first query.
    Never,
}

/// The order in which idle connections are handed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum IdleOrder {
    /// Most recently returned first: hot connections get reused, the rest
    /// age out through the idle timeout, so the pool shrinks to the load.
    /// While nobody waits, a connection returned on a thread is parked for
    /// that thread's next get (the per-thread stash), so gets and returns
    /// on different cores share no lock.
    #[default]
    Lifo,
    /// Least recently returned first: spreads use over every connection,
    /// which keeps them all warm but never lets the pool shrink. Every get
    /// and return then passes the pool's one lock (no per-thread stash).
    Fifo,
}

/// What [`Builder::build_warm`](crate::Builder::build_warm) does before returning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum WarmUp {
    /// Return at once; connections are made on demand and `min_idle` is filled
    /// in the background. Starts fastest, first callers pay for connecting.
    #[default]
    Lazy,
    /// Wait until `min_idle` connections exist (up to `acquire_timeout`),
    /// but start even if the database is down.
    Eager,
    /// Like `Eager`, but fail if the first connection cannot be made, so a
    /// misconfigured service stops at start-up instead of at its first request.
    EagerFailFast,
}

/// Thresholds for [`Health`](crate::Health) and [`Advice`](crate::Advice).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct HealthConfig {
    /// Utilization (in use / max size) at which a pool is degraded. Default: 0.80.
    pub degraded_utilization: f64,
    /// Utilization above which a pool is reported saturated. Saturation is
    /// not failure: a saturated pool is degraded, with that reason; only a
    /// pool that fails its callers (errors, closed) is unhealthy. Also read
    /// as `unhealthy_utilization`, its former name. Default: 0.95.
    #[serde(alias = "unhealthy_utilization")]
    pub saturated_utilization: f64,
    /// Errors (failed connects, timeouts) in the stats window above which a
    /// pool is unhealthy; any error at all makes it degraded. Default: 10.
    pub unhealthy_errors: u64,
    /// Hit ratio under which advice says to raise `min_idle`. Default: 0.80.
    pub min_hit_ratio: f64,
    /// Headroom multiplied into the Little's-law estimate. Default: 1.25.
    pub sizing_headroom: f64,
}

impl Default for HealthConfig {
    fn default() -> Self {
        Self {
            degraded_utilization: 0.80,
            saturated_utilization: 0.95,
            unhealthy_errors: 10,
            min_hit_ratio: 0.80,
            sizing_headroom: 1.25,
        }
    }
}

impl HealthConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if !(0.0..=1.0).contains(&self.degraded_utilization) {
            return Err(ConfigError::new(
                "health.degraded_utilization",
                "must be within 0.0..=1.0",
            ));
        }
        if !(self.degraded_utilization..=1.0).contains(&self.saturated_utilization) {
            return Err(ConfigError::new(
                "health.saturated_utilization",
                "must be within degraded_utilization..=1.0",
            ));
        }
        if !(0.0..=1.0).contains(&self.min_hit_ratio) {
            return Err(ConfigError::new(
                "health.min_hit_ratio",
                "must be within 0.0..=1.0",
            ));
        }
        if !(self.sizing_headroom >= 1.0 && self.sizing_headroom <= 10.0) {
            return Err(ConfigError::new(
                "health.sizing_headroom",
                "must be within 1.0..=10.0",
            ));
        }
        Ok(())
    }
}

/// (De)serializes `Option<Duration>` as a human-readable duration or `"off"`.
pub mod off_or_duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    /// Writes `"off"` for `None`, else a duration such as `"30m"`.
    ///
    /// # Errors
    /// Only the serializer's own.
    pub fn serialize<S: Serializer>(value: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            None => s.serialize_str("off"),
            Some(d) => {
                s.serialize_str(&humantime_serde::re::humantime::format_duration(*d).to_string())
            }
        }
    }

    /// Reads `"off"` (or `"none"`, `"disabled"`) as `None`, else a duration.
    ///
    /// # Errors
    /// When the text is neither.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let text = String::deserialize(d)?;
        match text.trim() {
            "off" | "none" | "disabled" => Ok(None),
            other => humantime_serde::re::humantime::parse_duration(other)
                .map(Some)
                .map_err(|e| {
                    D::Error::custom(format!(
                        "invalid duration {other:?} ({e}); write e.g. \"30s\", \"10m\" or \"off\""
                    ))
                }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        PoolConfig::default().validate().unwrap();
    }

    #[test]
    fn min_idle_above_max_size_is_named() {
        let cfg = PoolConfig {
            min_idle: 11,
            ..PoolConfig::default()
        };
        let err = cfg.validate().unwrap_err();
        assert_eq!(err.field(), "min_idle");
        assert!(
            err.to_string().contains("must not exceed max_size (10)"),
            "{err}"
        );
    }

    #[test]
    fn zero_durations_are_rejected() {
        let cfg = PoolConfig {
            idle_timeout: Some(Duration::ZERO),
            ..PoolConfig::default()
        };
        assert_eq!(cfg.validate().unwrap_err().field(), "idle_timeout");
        let cfg = PoolConfig {
            acquire_timeout: Duration::ZERO,
            ..PoolConfig::default()
        };
        assert_eq!(cfg.validate().unwrap_err().field(), "acquire_timeout");
    }

    #[test]
    fn jitter_and_backoff_are_bounded() {
        let cfg = PoolConfig {
            max_lifetime_jitter: 0.9,
            ..PoolConfig::default()
        };
        assert_eq!(cfg.validate().unwrap_err().field(), "max_lifetime_jitter");
        let cfg = PoolConfig {
            retry_backoff: Duration::from_secs(10),
            ..PoolConfig::default()
        };
        assert_eq!(cfg.validate().unwrap_err().field(), "retry_backoff");
    }
}
