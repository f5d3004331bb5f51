//! [`AppState`]: everything the handlers share, injected with axum's
//! `State` — the registry of pools, the query gateways, the sessions, the
//! tokens and the limits. No globals.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use tidepool::Registry;

use crate::error::Redactor;
use crate::gateway::Gateway;
use crate::sessions::SessionStore;

/// Limits and timings of the HTTP layer. Every field has a default.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Settings {
    /// Whether the read-only monitoring endpoints (`/api/v1/pools...`,
    /// `/metrics`, `/health/db`) need a bearer token too. Default: `false`.
    pub monitoring_requires_token: bool,
    /// Largest request body accepted, in bytes. Default: 64 KiB.
    pub max_body_bytes: usize,
    /// Longest a request may take before it is answered with 408.
    /// Default: 60 s.
    pub request_timeout: Duration,
    /// Longest one gateway statement may run. Default: 30 s.
    pub statement_timeout: Duration,
    /// Most rows a query returns (the rest are dropped and the answer says
    /// `truncated`). Default: 1000.
    pub max_rows: usize,
    /// Longest a query waits for a pooled connection. Default: 10 s.
    pub acquire_timeout: Duration,
    /// A session unused this long expires (sliding). Default: 60 min.
    pub session_ttl: Duration,
    /// How long a session's schema stays cached. Default: 5 min.
    pub schema_ttl: Duration,
    /// Most live sessions at once. Default: 1000.
    pub max_sessions: usize,
    /// Whether sessions may describe their own connection (backend + URL)
    /// instead of naming a configured pool. Default: `true`.
    pub allow_connection_descriptions: bool,
    /// When non-empty, a connection description is accepted only if its URL
    /// starts with one of these prefixes (say `postgres://reporting@db:5432/`).
    /// Default: empty (any).
    pub connection_allow_list: Vec<String>,
    /// Settings for pools made on demand for connection descriptions.
    /// Default: the pool defaults with `max_size = 4`.
    pub on_demand_pool: tidepool::PoolConfig,
    /// How long `/health/db` waits for each pool. Default: 2 s.
    pub health_check_timeout: Duration,
    /// How often expired sessions and idle on-demand pools are cleaned.
    /// Default: 30 s.
    pub cleanup_interval: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        let mut on_demand_pool = tidepool::PoolConfig::default();
        on_demand_pool.max_size = 4;
        Self {
            monitoring_requires_token: false,
            max_body_bytes: 64 * 1024,
            request_timeout: Duration::from_secs(60),
            statement_timeout: Duration::from_secs(30),
            max_rows: 1000,
            acquire_timeout: Duration::from_secs(10),
            session_ttl: Duration::from_secs(60 * 60),
            schema_ttl: Duration::from_secs(5 * 60),
            max_sessions: 1000,
            allow_connection_descriptions: true,
            connection_allow_list: Vec::new(),
            on_demand_pool,
            health_check_timeout: Duration::from_secs(2),
            cleanup_interval: Duration::from_secs(30),
        }
    }
}

pub(crate) struct Inner {
    pub(crate) registry: Arc<Registry>,
    pub(crate) gateways: RwLock<HashMap<String, Arc<dyn Gateway>>>,
    pub(crate) tokens: Vec<String>,
    pub(crate) settings: Settings,
    pub(crate) sessions: SessionStore,
    pub(crate) redactor: Redactor,
    pub(crate) config_document: serde_json::Value,
}

/// The state behind the router: cheap to clone (one `Arc`).
///
/// ```
/// use std::sync::Arc;
/// use tidepool_http::{AppState, Settings};
///
/// let registry = Arc::new(tidepool::Registry::new());
/// let state = AppState::builder(registry)
///     .token("change-me-please")
///     .settings(Settings::default())
///     .build();
/// let app: axum::Router = tidepool_http::router(state);
/// # drop(app);
/// ```
#[derive(Clone)]
pub struct AppState {
    pub(crate) inner: Arc<Inner>,
}

impl fmt::Debug for AppState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppState")
            .field("registry", &self.inner.registry)
            .field("gateways", &self.gateway_names())
            .field("tokens", &self.inner.tokens.len())
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// Starts a state over `registry` (its pools are what the API shows).
    pub fn builder(registry: Arc<Registry>) -> AppStateBuilder {
        AppStateBuilder {
            registry,
            gateways: BTreeMap::new(),
            tokens: Vec::new(),
            settings: Settings::default(),
            redactor: Redactor::new(),
            config_document: serde_json::Value::Null,
        }
    }

    /// The registry of pools.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.inner.registry
    }

    /// The settings in force.
    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    /// The redactor every outgoing message goes through.
    pub fn redactor(&self) -> &Redactor {
        &self.inner.redactor
    }

    /// Makes a pool of the registry queryable through sessions.
    pub fn add_gateway(&self, pool: impl Into<String>, gateway: Arc<dyn Gateway>) {
        self.inner
            .gateways
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(pool.into(), gateway);
    }

    /// The gateway of a pool, if it has one.
    pub fn gateway(&self, pool: &str) -> Option<Arc<dyn Gateway>> {
        self.inner
            .gateways
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(pool)
            .cloned()
    }

    pub(crate) fn remove_gateway(&self, pool: &str) {
        self.inner
            .gateways
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(pool);
    }

    /// Names of the pools that have a gateway, sorted.
    pub fn gateway_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .inner
            .gateways
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .cloned()
            .collect();
        names.sort();
        names
    }

    /// Removes expired sessions and idle on-demand pools (with their
    /// gateways) once. [`spawn_maintenance`](Self::spawn_maintenance) calls
    /// it periodically.
    pub fn clean_up(&self) {
        let expired = self.inner.sessions.remove_expired();
        if expired > 0 {
            tracing::info!(expired, "expired sessions removed");
        }
        for name in self.inner.registry.remove_idle() {
            self.remove_gateway(&name);
        }
    }

    /// Runs [`clean_up`](Self::clean_up) every `cleanup_interval` until the
    /// returned task is aborted.
    pub fn spawn_maintenance(&self) -> tokio::task::JoinHandle<()> {
        let state = self.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(state.inner.settings.cleanup_interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticker.tick().await;
            loop {
                ticker.tick().await;
                state.clean_up();
            }
        })
    }
}

/// Builds an [`AppState`].
pub struct AppStateBuilder {
    registry: Arc<Registry>,
    gateways: BTreeMap<String, Arc<dyn Gateway>>,
    tokens: Vec<String>,
    settings: Settings,
    redactor: Redactor,
    config_document: serde_json::Value,
}

impl fmt::Debug for AppStateBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppStateBuilder")
            .field("gateways", &self.gateways.keys().collect::<Vec<_>>())
            .field("tokens", &self.tokens.len())
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl AppStateBuilder {
    /// Adds a bearer token accepted for the admin endpoints and sessions.
    /// Default: none (admin endpoints then answer 401).
    #[must_use]
    pub fn token(mut self, token: impl Into<String>) -> Self {
        let token = token.into();
        self.redactor.add(token.clone());
        self.tokens.push(token);
        self
    }

    /// Adds several tokens; see [`token`](Self::token).
    #[must_use]
    pub fn tokens(mut self, tokens: impl IntoIterator<Item = String>) -> Self {
        for t in tokens {
            self = self.token(t);
        }
        self
    }

    /// Sets the limits and timings. Default: [`Settings::default`].
    #[must_use]
    pub fn settings(mut self, settings: Settings) -> Self {
        self.settings = settings;
        self
    }

    /// Makes the registry's pool `pool` queryable through sessions.
    #[must_use]
    pub fn gateway(mut self, pool: impl Into<String>, gateway: Arc<dyn Gateway>) -> Self {
        self.gateways.insert(pool.into(), gateway);
        self
    }

    /// Shares a redactor (say, the server's, which knows the configured
    /// passwords). Tokens added before or after are registered with it.
    #[must_use]
    pub fn redactor(mut self, redactor: Redactor) -> Self {
        for t in &self.tokens {
            redactor.add(t.clone());
        }
        self.redactor = redactor;
        self
    }

    /// The effective configuration `GET /api/v1/config` shows, with secrets
    /// already redacted by the caller (string values are also passed through
    /// the redactor). Default: `null`, in which case the endpoint shows the
    /// HTTP settings and each pool's `PoolConfig`.
    #[must_use]
    pub fn config_document(mut self, doc: serde_json::Value) -> Self {
        self.config_document = doc;
        self
    }

    /// The state.
    pub fn build(self) -> AppState {
        let sessions = SessionStore::new(self.settings.session_ttl, self.settings.max_sessions);
        AppState {
            inner: Arc::new(Inner {
                registry: self.registry,
                gateways: RwLock::new(self.gateways.into_iter().collect()),
                tokens: self.tokens,
                settings: self.settings,
                sessions,
                redactor: self.redactor,
                config_document: self.config_document,
            }),
        }
    }
}
