//! [`AppState`]: everything the handlers share, injected with axum's
//! `State` — the registry of pools, the query gateways, the tenants, the
//! sessions, the on-demand pools and their owners, and the limits. No
//! globals.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::RandomState;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Duration;

use tidepool::Registry;

use crate::descriptions::Descriptions;
use crate::error::Redactor;
use crate::gateway::Gateway;
use crate::sessions::{MemoryStore, SessionStore};
use crate::tenants::{Caller, Live, Role, Tenant, Tenants};

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
    /// Longest one gateway request (a statement, or a whole transaction)
    /// may run. Default: 30 s.
    pub statement_timeout: Duration,
    /// Most rows a query returns (the rest are never read and the answer
    /// says `truncated`). Default: 1000.
    pub max_rows: usize,
    /// Most bytes of JSON one request's rows may take, all the statements
    /// of a transaction together (the rest are never read and the answer
    /// says `truncated`; a first row larger than this answers 422). Default: 16 MiB. A query waits for a connection as
    /// long as its pool's own `acquire_timeout`.
    pub max_result_bytes: usize,
    /// A session unused this long expires (sliding). Default: 60 min.
    pub session_ttl: Duration,
    /// How long a session's schema stays cached. Default: 5 min.
    pub schema_ttl: Duration,
    /// Most live sessions at once, all tenants together (each tenant also
    /// has its own quota). Default: 1000.
    pub max_sessions: usize,
    /// Most statements in one transaction request. Default: 100.
    pub max_transaction_statements: usize,
    /// Whether sessions may describe their own connection, and which.
    /// Default: off.
    pub descriptions: Descriptions,
    /// The largest `max_size` a resize may set. Default: 100.
    pub resize_ceiling: usize,
    /// How long `/health/db` waits for each pool. Default: 2 s.
    pub health_check_timeout: Duration,
    /// How long a `/health/db` answer is reused, so callers cannot make the
    /// server check its databases at will. Default: 2 s.
    pub health_cache: Duration,
    /// How often expired sessions and idle on-demand pools are cleaned.
    /// Default: 30 s.
    pub cleanup_interval: Duration,
    /// How often the dashboard's stream (`/api/v1/stream`) sends a snapshot.
    /// Default: 1 s.
    pub stream_interval: Duration,
    /// How many snapshots a stream client may fall behind before it is
    /// dropped (its connection closed) rather than buffered for. Default: 8.
    pub stream_buffer: usize,
    /// Most dashboard streams open at once; more answer 503. Default: 32.
    pub max_streams: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            monitoring_requires_token: false,
            max_body_bytes: 64 * 1024,
            request_timeout: Duration::from_secs(60),
            statement_timeout: Duration::from_secs(30),
            max_rows: 1000,
            max_result_bytes: crate::gateway::DEFAULT_MAX_RESULT_BYTES,
            session_ttl: Duration::from_secs(60 * 60),
            schema_ttl: Duration::from_secs(5 * 60),
            max_sessions: 1000,
            max_transaction_statements: 100,
            descriptions: Descriptions::default(),
            resize_ceiling: 100,
            health_check_timeout: Duration::from_secs(2),
            health_cache: Duration::from_secs(2),
            cleanup_interval: Duration::from_secs(30),
            stream_interval: Duration::from_secs(1),
            stream_buffer: 8,
            max_streams: 32,
        }
    }
}

pub(crate) struct Inner {
    pub(crate) registry: Arc<Registry>,
    pub(crate) gateways: RwLock<HashMap<String, Arc<dyn Gateway>>>,
    pub(crate) tenants: Tenants,
    pub(crate) settings: Settings,
    pub(crate) sessions: Arc<dyn SessionStore>,
    pub(crate) redactor: Redactor,
    pub(crate) config_document: serde_json::Value,
    /// On-demand pools by name, with the tenant that owns each.
    on_demand: Mutex<HashMap<String, String>>,
    pub(crate) hasher: RandomState,
    pub(crate) health: crate::health::Cache,
    #[cfg(feature = "dashboard")]
    pub(crate) streams: crate::dashboard::Streams,
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
            .field("tenants", &self.inner.tenants)
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
            admin_tokens: Vec::new(),
            tenants: Vec::new(),
            settings: Settings::default(),
            redactor: Redactor::new(),
            config_document: serde_json::Value::Null,
            sessions: None,
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

    /// The tenant of a caller.
    pub(crate) fn tenant(&self, caller: Caller) -> &Tenant {
        &self.inner.tenants.get(caller).tenant
    }

    pub(crate) fn live(&self, caller: Caller) -> &Live {
        self.inner.tenants.get(caller)
    }

    fn owners(&self) -> MutexGuard<'_, HashMap<String, String>> {
        self.inner
            .on_demand
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The tenant owning on-demand pool `pool`; `None` for a configured pool.
    pub(crate) fn owner_of(&self, pool: &str) -> Option<String> {
        self.owners().get(pool).cloned()
    }

    /// How many on-demand pools `tenant` owns.
    pub(crate) fn on_demand_count(&self, tenant: &str) -> usize {
        self.owners().values().filter(|o| *o == tenant).count()
    }

    pub(crate) fn add_on_demand(&self, pool: &str, owner: &str, gateway: Arc<dyn Gateway>) {
        self.owners().insert(pool.to_owned(), owner.to_owned());
        self.add_gateway(pool, gateway);
    }

    /// Removes and closes an on-demand pool with its gateway.
    pub(crate) fn remove_on_demand(&self, pool: &str) {
        self.inner.registry.remove(pool);
        self.forget_on_demand(pool);
    }

    fn forget_on_demand(&self, pool: &str) {
        self.remove_gateway(pool);
        if let Some(owner) = self.owners().remove(pool) {
            for (i, t) in self.inner.tenants.all().enumerate() {
                if t.name == owner {
                    self.inner.tenants.get(Caller(i)).forget_pool(pool);
                }
            }
        }
    }

    /// Whether `caller` (`None`: anonymous) may see pool `pool`: configured
    /// pools are seen by all, an on-demand pool by its owner and admins.
    pub(crate) fn visible(&self, caller: Option<Caller>, pool: &str) -> bool {
        match self.owner_of(pool) {
            None => true,
            Some(owner) => caller.is_some_and(|c| {
                let t = self.tenant(c);
                t.role == Role::Admin || t.name == owner
            }),
        }
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
    pub async fn clean_up(&self) {
        let expired = self.inner.sessions.remove_expired().await;
        if expired > 0 {
            tracing::info!(expired, "expired sessions removed");
        }
        for name in self.inner.registry.remove_idle() {
            self.forget_on_demand(&name);
        }
    }

    /// Ends every dashboard stream and refuses new ones. Call it when
    /// graceful shutdown begins: a stream never ends by itself, so a
    /// shutdown that waits for open responses would wait for it. Does
    /// nothing without the `dashboard` feature.
    pub fn close_streams(&self) {
        #[cfg(feature = "dashboard")]
        self.inner.streams.close();
    }

    /// Dashboard streams open now, and streams dropped since start because
    /// their client fell `stream_buffer` snapshots behind. Zero without the
    /// `dashboard` feature.
    pub fn stream_counts(&self) -> (usize, u64) {
        #[cfg(feature = "dashboard")]
        return (self.inner.streams.open(), self.inner.streams.dropped());
        #[cfg(not(feature = "dashboard"))]
        (0, 0)
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
                state.clean_up().await;
            }
        })
    }
}

/// Builds an [`AppState`].
pub struct AppStateBuilder {
    registry: Arc<Registry>,
    gateways: BTreeMap<String, Arc<dyn Gateway>>,
    admin_tokens: Vec<String>,
    tenants: Vec<Tenant>,
    settings: Settings,
    redactor: Redactor,
    config_document: serde_json::Value,
    sessions: Option<Arc<dyn SessionStore>>,
}

impl fmt::Debug for AppStateBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppStateBuilder")
            .field("gateways", &self.gateways.keys().collect::<Vec<_>>())
            .field("admin_tokens", &self.admin_tokens.len())
            .field("tenants", &self.tenants)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl AppStateBuilder {
    /// Adds a token of the built-in tenant `admin` ([`Role::Admin`], default
    /// quotas): the single-token setup. Default: none (then only
    /// [`tenant`](Self::tenant)s are accepted; with neither, every endpoint
    /// that needs a token answers 401).
    #[must_use]
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.admin_tokens.push(token.into());
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

    /// Adds a tenant. Names must be unique (a later duplicate replaces the
    /// earlier one).
    #[must_use]
    pub fn tenant(mut self, tenant: Tenant) -> Self {
        self.tenants.retain(|t| t.name != tenant.name);
        self.tenants.push(tenant);
        self
    }

    /// Sets the limits and timings. Default: [`Settings::default`].
    #[must_use]
    pub fn settings(mut self, settings: Settings) -> Self {
        self.settings = settings;
        self
    }

    /// Keeps sessions in `store`. Default: a [`MemoryStore`] with the
    /// settings' `session_ttl`.
    #[must_use]
    pub fn session_store(mut self, store: Arc<dyn SessionStore>) -> Self {
        self.sessions = Some(store);
        self
    }

    /// Makes the registry's pool `pool` queryable through sessions.
    #[must_use]
    pub fn gateway(mut self, pool: impl Into<String>, gateway: Arc<dyn Gateway>) -> Self {
        self.gateways.insert(pool.into(), gateway);
        self
    }

    /// Shares a redactor (say, the server's, which knows the configured
    /// passwords). Every token is registered with it when the state is
    /// built.
    #[must_use]
    pub fn redactor(mut self, redactor: Redactor) -> Self {
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
        let mut tenants = self.tenants;
        if !self.admin_tokens.is_empty() {
            let mut admin = Tenant::new("admin", Role::Admin);
            admin.tokens = self.admin_tokens;
            tenants.retain(|t| t.name != admin.name);
            tenants.insert(0, admin);
        }
        for t in &tenants {
            for token in &t.tokens {
                self.redactor.add(token.clone());
            }
        }
        let sessions = self
            .sessions
            .unwrap_or_else(|| Arc::new(MemoryStore::new(self.settings.session_ttl)));
        AppState {
            inner: Arc::new(Inner {
                registry: self.registry,
                gateways: RwLock::new(self.gateways.into_iter().collect()),
                tenants: Tenants::new(tenants),
                sessions,
                redactor: self.redactor,
                config_document: self.config_document,
                on_demand: Mutex::default(),
                hasher: RandomState::new(),
                health: crate::health::Cache::default(),
                #[cfg(feature = "dashboard")]
                streams: crate::dashboard::Streams::new(self.settings.max_streams),
                settings: self.settings,
            }),
        }
    }
}
