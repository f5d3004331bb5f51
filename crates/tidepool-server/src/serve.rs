//! `tidepool serve`: pools from the configuration, the HTTP API over them,
//! and a graceful shutdown on SIGINT/SIGTERM.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tidepool::{BuildError, Pool, Registry};
use tidepool_http::gateway::{PgGateway, SqliteGateway};
use tidepool_http::{AppState, GatewayMode, Redactor, Settings};
use tidepool_postgres::{PgManager, PgPool};
use tidepool_sqlite::{SqliteManager, SqlitePool};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::config::{Backend, Config, LEGACY_ADMIN};
use crate::sample;

/// A configured pool, typed, so that shutdown can drain it.
enum Served {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Served {
    async fn drain(self, deadline: Duration) -> (String, usize) {
        let outcome = match &self {
            Self::Sqlite(p) => p.drain(deadline).await,
            Self::Postgres(p) => p.drain(deadline).await,
        };
        let name = match &self {
            Self::Sqlite(p) => p.name().to_owned(),
            Self::Postgres(p) => p.name().to_owned(),
        };
        (name, outcome.still_in_use)
    }
}

fn settings(cfg: &Config) -> Settings {
    let s = &cfg.server;
    let mut out = Settings::default();
    out.monitoring_requires_token = s.monitoring_requires_token;
    out.max_body_bytes = s.max_body_bytes;
    out.request_timeout = s.request_timeout;
    out.statement_timeout = s.statement_timeout;
    out.max_rows = s.max_rows;
    out.max_result_bytes = s.max_result_bytes;
    out.session_ttl = s.session_ttl;
    out.schema_ttl = s.schema_ttl;
    out.max_sessions = s.max_sessions;
    out.max_transaction_statements = s.max_transaction_statements;
    out.resize_ceiling = s.resize_ceiling;
    out.health_cache = s.health_cache;
    out.stream_interval = s.stream_interval;
    out.stream_buffer = s.stream_buffer;
    out.max_streams = s.max_streams;
    out.descriptions = cfg.descriptions.clone();
    out
}

/// Tokens from the configuration and from `TIDEPOOL_TOKENS`.
fn tokens(cfg: &Config) -> Vec<String> {
    let mut tokens = cfg.server.tokens.clone();
    if let Ok(env) = std::env::var("TIDEPOOL_TOKENS") {
        tokens.extend(
            env.split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_owned),
        );
    }
    tokens
}

/// Runs the server until a shutdown signal; returns once pools are drained.
///
/// # Errors
/// A message (free of secrets) when a pool cannot be built or the address
/// cannot be bound.
pub async fn run(
    mut cfg: Config,
    listen: Option<SocketAddr>,
    data_dir: Option<&Path>,
) -> Result<(), String> {
    if let Some(addr) = listen {
        cfg.server.listen = addr;
    }
    let tls = cfg
        .listener
        .tls()
        .map(|(cert, key)| crate::listener::tls::acceptor(cert, key))
        .transpose()?;
    if let Some(dir) = data_dir {
        // The demo database lives here, whether or not a token file does.
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {}", dir.display(), e.kind()))?;
    }
    let redactor = Redactor::new();
    let mut tokens = tokens(&cfg);
    for t in &tokens {
        redactor.add(t.clone());
    }
    if let Some(dir) = data_dir
        && tokens.is_empty()
    {
        tokens.push(sample::admin_token(dir)?);
    }
    if !tokens.is_empty() && cfg.tenants.iter().any(|t| t.name == LEGACY_ADMIN) {
        return Err(format!(
            "a tenant is named `{LEGACY_ADMIN}`, the name of the tenant that [server] tokens and TIDEPOOL_TOKENS make; rename it"
        ));
    }
    if tokens.is_empty() && cfg.tenants.is_empty() {
        tracing::warn!(
            "no tenants configured: admin endpoints and sessions answer 401 (add [[tenants]], [server] tokens or TIDEPOOL_TOKENS)"
        );
    }
    let registry = Arc::new(Registry::with_idle_removal(cfg.server.idle_pool_removal));
    let mut builder = AppState::builder(Arc::clone(&registry))
        .redactor(redactor.clone())
        .tokens(tokens)
        .settings(settings(&cfg))
        .config_document(cfg.to_redacted_json());
    for tenant in &cfg.tenants {
        builder = builder.tenant(tenant.clone());
    }
    let mut role_checks = Vec::new();
    let mut served = Vec::new();
    for (name, section) in &cfg.pools {
        match &section.backend {
            Backend::Sqlite(sqlite) => {
                let manager = SqliteManager::new(sqlite.clone())
                    .map_err(|e| format!("pool `{name}`: {e}"))?;
                let pool = Pool::builder(manager)
                    .config(section.pool.clone())
                    .name(name.as_str())
                    .build_warm()
                    .await
                    .map_err(|e| build_error(name, &e, &redactor))?;
                registry
                    .insert(pool.clone())
                    .map_err(|e| format!("pool `{name}`: {e}"))?;
                let gateway = SqliteGateway::new(pool.clone()).mode(section.gateway);
                builder = builder.gateway(name.as_str(), Arc::new(gateway));
                served.push(Served::Sqlite(pool));
            }
            Backend::Postgres { url, config } => {
                redactor.add_url_password(url);
                if let Some(p) = &config.password {
                    redactor.add(p.clone());
                }
                let manager = PgManager::with_tls(config.clone())
                    .map_err(|e| format!("pool `{name}`: {e}"))?;
                let pool = Pool::builder(manager)
                    .config(section.pool.clone())
                    .name(name.as_str())
                    .build_warm()
                    .await
                    .map_err(|e| build_error(name, &e, &redactor))?;
                registry
                    .insert(pool.clone())
                    .map_err(|e| format!("pool `{name}`: {e}"))?;
                let gateway = Arc::new(
                    PgGateway::new(pool.clone())
                        .mode(section.gateway)
                        .allow_privileged_role(section.allow_privileged_role),
                );
                if section.gateway != GatewayMode::Off {
                    role_checks.push((name.clone(), Arc::clone(&gateway)));
                }
                builder = builder.gateway(name.as_str(), gateway);
                served.push(Served::Postgres(pool));
            }
        }
        tracing::info!(pool = %name, "pool ready");
    }
    if data_dir.is_some() {
        for s in &served {
            if let Served::Sqlite(pool) = s {
                sample::ensure(pool).await.map_err(|e| redactor.clean(&e))?;
            }
        }
    }
    check_roles(role_checks).await;
    let state = builder.build();
    let maintenance = state.spawn_maintenance();
    let addr = cfg.server.listen;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(
        "tidepool {} listening on {scheme}://{addr}",
        env!("CARGO_PKG_VERSION")
    );
    if cfg!(feature = "dashboard") {
        tracing::info!("dashboard: open {scheme}://{addr}/ in a browser");
    }
    tracing::info!(
        "open {scheme}://{addr}/api/v1/pools (API: {scheme}://{addr}/api/v1/openapi.json)"
    );

    let (tx, mut rx) = tokio::sync::watch::channel(false);
    let app = tidepool_http::router(state.clone());
    let streams = state.clone();
    let server = crate::listener::serve(listener, app, &cfg.listener, tls, async move {
        shutdown_signal().await;
        // Dashboard streams never end by themselves: end them, so that
        // shutdown waits only for requests.
        streams.close_streams();
        let _ = tx.send(true);
    });
    let grace = cfg.server.shutdown_timeout;
    let deadline = async move {
        let _ = rx.wait_for(|stop| *stop).await;
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        () = server => {}
        () = deadline => tracing::warn!(?grace, "in-flight requests did not finish in time"),
    }
    maintenance.abort();
    tracing::info!("draining pools");
    let mut drains = JoinSet::new();
    for s in served {
        drains.spawn(s.drain(grace));
    }
    while let Some(done) = drains.join_next().await {
        if let Ok((name, left)) = done
            && left > 0
        {
            tracing::warn!(pool = %name, still_in_use = left, "pool not fully drained");
        }
    }
    registry.close_all();
    tracing::info!("stopped");
    Ok(())
}

/// Why pool `name` could not be built: an invalid setting, or (with
/// `warm_up = "eager_fail_fast"`) a database that cannot be reached.
fn build_error<E: std::error::Error>(name: &str, e: &BuildError<E>, redactor: &Redactor) -> String {
    match e {
        BuildError::Config(e) => format!("pool `{name}`: {e}"),
        BuildError::Connect(e) => format!(
            "pool `{name}`: warm_up = \"eager_fail_fast\" and its database cannot be reached, so the server does not start: {}",
            redactor.clean(&e.to_string())
        ),
    }
}

/// Checks the role of each PostgreSQL gateway pool and logs what it found:
/// a privileged role refuses the gateway (unless the pool allows it); a
/// database that cannot be reached now is checked on its first request.
async fn check_roles(checks: Vec<(String, Arc<PgGateway>)>) {
    let mut running = JoinSet::new();
    for (name, gateway) in checks {
        running.spawn(async move {
            let found = gateway.check_role(ROLE_CHECK_WITHIN).await;
            (name, found)
        });
    }
    while let Some(done) = running.join_next().await {
        let Ok((pool, found)) = done else {
            continue;
        };
        match found {
            Ok(found) => match (&found.refusal, found.privileges.is_empty()) {
                (Some(why), _) => {
                    tracing::error!(pool = %pool, "query gateway refused: {why}");
                }
                (None, false) => tracing::warn!(
                    pool = %pool,
                    role = %found.role,
                    privileges = %found.privileges.join(", "),
                    "serving the query gateway on a privileged role because allow_privileged_role = true"
                ),
                (None, true) => {
                    tracing::info!(pool = %pool, role = %found.role, "gateway role checked: no privileges beyond its database");
                }
            },
            Err(e) => tracing::warn!(
                pool = %pool,
                error = %e,
                "could not check the pool's role now; its first gateway request checks it"
            ),
        }
    }
}

/// How long the start-up role check waits for a connection.
const ROLE_CHECK_WITHIN: Duration = Duration::from_secs(3);

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("SIGINT received, shutting down"),
        () = term => tracing::info!("SIGTERM received, shutting down"),
    }
}
