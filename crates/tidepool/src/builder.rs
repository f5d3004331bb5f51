//! [`Builder`]: typed, validated construction of a [`Pool`].

use std::fmt;
use std::time::Duration;

use tokio::time::{Instant, timeout_at};

use crate::config::{HealthConfig, IdleOrder, PoolConfig, Validation, WarmUp};
use crate::error::{BuildError, ConfigError, PoolError};
use crate::state::Warmth;
use crate::{Manager, Pool};

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
        /// Capture a backtrace with every checkout for leak reports (tens of
        /// µs per get). Default: `false`.
        leak_detection_backtrace: bool;
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
    /// connections are open; `eager_fail_fast` waits until `min_idle` (at
    /// least one) are open, and fails once connecting has failed
    /// `max_retries + 1` times in a row, or with an error no retry can fix.
    ///
    /// # Errors
    /// [`BuildError::Config`] for invalid settings; with `eager_fail_fast`,
    /// [`BuildError::Connect`] carrying the connect error.
    pub async fn build_warm(self) -> Result<Pool<M>, BuildError<M::Error>> {
        let warm_up = self.cfg.warm_up;
        let pool = self.build()?;
        let target = match warm_up {
            WarmUp::Lazy => return Ok(pool),
            WarmUp::Eager => pool.shared.cfg.min_idle,
            WarmUp::EagerFailFast => pool.shared.cfg.min_idle.max(1),
        };
        let shared = &pool.shared;
        let now = shared.clock.now();
        shared.with_state(|st| st.warm_up(target, now));
        let deadline = Instant::now() + shared.cfg.acquire_timeout;
        let outcome = loop {
            let ended = shared.connect_ended.notified();
            tokio::pin!(ended);
            ended.as_mut().enable();
            let (warmth, last_error) = {
                let st = shared.lock();
                (st.warmth(target), st.last_error())
            };
            match (warmth, last_error) {
                (Warmth::Warm, _) => break Ok(()),
                (Warmth::Failed(attempts), Some(error)) if warm_up == WarmUp::EagerFailFast => {
                    break Err(PoolError::connect(attempts, error));
                }
                _ => {}
            }
            if timeout_at(deadline, ended).await.is_err() {
                break Ok(());
            }
        };
        shared.with_state(|st| st.warm_up(0, shared.clock.now()));
        match outcome {
            Ok(()) => Ok(pool),
            Err(e) => {
                pool.close();
                Err(BuildError::Connect(e))
            }
        }
    }
}
