//! [`Builder`]: typed, validated construction of a [`Pool`].

use std::fmt;
use std::time::Duration;

use tokio::time::{Instant, sleep};

use crate::config::{HealthConfig, IdleOrder, PoolConfig, Validation, WarmUp};
use crate::error::{BuildError, ConfigError, PoolError};
use crate::state::{CreateKind, CreateOrder};
use crate::{Manager, Pool, tasks};

/// Builds a [`Pool`]. Every setting starts at the default documented on
/// [`PoolConfig`]; [`build`](Builder::build) validates them all.
pub struct Builder<M> {
    manager: M,
    cfg: PoolConfig,
    name: String,
}

impl<M> fmt::Debug for Builder<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("name", &self.name)
            .field("config", &self.cfg)
            .finish_non_exhaustive()
    }
}

macro_rules! setters {
    ($($(#[$doc:meta])* $field:ident: $ty:ty;)*) => {$(
        $(#[$doc])*
        pub fn $field(mut self, value: $ty) -> Self {
            self.cfg.$field = value;
            self
        }
    )*};
}

impl<M: Manager> Builder<M> {
    pub(crate) fn new(manager: M) -> Self {
        Self {
            manager,
            cfg: PoolConfig::default(),
            name: "default".to_owned(),
        }
    }

    /// Replaces every setting at once (for example with one read from a file).
    pub fn config(mut self, cfg: PoolConfig) -> Self {
        self.cfg = cfg;
        self
    }

    /// Names the pool, for logs, metrics and the registry. Default: `"default"`.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    setters! {
        /// Most connections kept. Default: 10.
        max_size: usize;
        /// Idle connections kept ready. Default: 0.
        min_idle: usize;
        /// Temporary connections beyond `max_size`. Default: 0.
        max_overflow: usize;
        /// How long `get()` waits. Default: 30 s.
        acquire_timeout: Duration;
        /// Longest one connect attempt. Default: 10 s.
        create_timeout: Duration;
        /// Longest validation ping or reset. Default: 5 s.
        validation_timeout: Duration;
        /// Age at which connections retire (`None`: never). Default: 30 min.
        max_lifetime: Option<Duration>;
        /// Random early retirement, as a fraction of `max_lifetime`. Default: 0.025.
        max_lifetime_jitter: f64;
        /// Idle time after which connections close (`None`: never). Default: 10 min.
        idle_timeout: Option<Duration>;
        /// Idle time after which connections are pinged (`None`: never). Default: 5 min.
        keepalive_interval: Option<Duration>;
        /// When to validate before checkout. Default: [`Validation::IfIdle`].
        validation: Validation;
        /// Window for [`Validation::IfIdle`]. Default: 500 ms.
        validation_window: Duration;
        /// Connect retries. Default: 3.
        max_retries: u32;
        /// First retry delay. Default: 100 ms.
        retry_backoff: Duration;
        /// Longest retry delay. Default: 5 s.
        retry_backoff_max: Duration;
        /// Idle order. Default: [`IdleOrder::Lifo`].
        idle_order: IdleOrder;
        /// Leak detection threshold (`None`: off). Default: off.
        leak_detection_threshold: Option<Duration>;
        /// Warm-up done by [`build_warm`](Builder::build_warm). Default: [`WarmUp::Lazy`].
        warm_up: WarmUp;
        /// Maintenance period. Default: 1 s.
        maintenance_interval: Duration;
        /// Window for recent rates and errors. Default: 60 s.
        stats_window: Duration;
        /// Health and advice thresholds.
        health: HealthConfig;
    }

    /// Builds the pool and returns at once; `min_idle` fills in the
    /// background. Must be called inside a tokio runtime, which then runs
    /// the pool's background work.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the invalid setting, or the missing runtime.
    pub fn build(self) -> Result<Pool<M>, ConfigError> {
        Pool::start(self.manager, self.cfg, self.name)
    }

    /// Builds the pool and warms it up as `warm_up` says: `lazy` returns at
    /// once; `eager` waits (up to `acquire_timeout`) until `min_idle`
    /// connections are open; `eager_fail_fast` also opens the first
    /// connection itself and fails if it cannot.
    ///
    /// # Errors
    /// [`BuildError::Config`] for invalid settings; with `eager_fail_fast`,
    /// [`BuildError::Connect`] carrying the connect error.
    pub async fn build_warm(self) -> Result<Pool<M>, BuildError<M::Error>> {
        let warm_up = self.cfg.warm_up;
        let pool = self.build()?;
        if warm_up == WarmUp::Lazy {
            return Ok(pool);
        }
        let shared = &pool.shared;
        let deadline = Instant::now() + shared.cfg.acquire_timeout;
        if warm_up == WarmUp::EagerFailFast {
            let reserved = shared.with_state(|st| st.reserve());
            if reserved {
                let order = CreateOrder {
                    kind: CreateKind::Regular,
                    deadline: Some(deadline),
                };
                match tasks::open(shared, order, true).await {
                    Ok((conn, took)) => {
                        let now = shared.clock.now();
                        shared.with_state(|st| st.created(conn, CreateKind::Regular, took, now));
                    }
                    Err(gave_up) => {
                        let error = shared.with_state(|st| {
                            st.create_gave_up(
                                CreateKind::Regular,
                                gave_up.attempts,
                                false,
                                shared.clock.now(),
                            );
                            st.last_error()
                        });
                        pool.close();
                        let err = match error {
                            Some(error) => PoolError::Connect {
                                attempts: gave_up.attempts,
                                error,
                            },
                            None => PoolError::Closed,
                        };
                        return Err(BuildError::Connect(err));
                    }
                }
            }
        }
        while Instant::now() < deadline {
            let g = pool.gauges();
            if g.idle + g.in_use >= g.min_idle {
                break;
            }
            sleep(Duration::from_millis(5)).await;
        }
        Ok(pool)
    }
}
