//! Suite 4: `SELECT 1` (prepared) against a real PostgreSQL.
//!
//! # Method
//! Each pool has [`POOL_SIZE`] connections, opened before measuring. For
//! each client count, that many tokio tasks loop until the deadline: get a
//! connection, run the prepared `SELECT 1`, check the answer, drop the
//! connection. Every query's latency (get to drop, so waiting for a
//! connection counts) is recorded; the figures are queries per second over
//! the phase and p50 / p99 latency. A warm-up phase at the same client count
//! comes first (statements get prepared on every connection there).
//!
//! Each pool runs with its defaults, as a user gets it:
//! - tidepool-postgres: `prepare_cached` on its connection; validation only
//!   of connections idle for more than 500 ms.
//! - deadpool-postgres: `prepare_cached`; recycling method `Fast` (no query).
//! - bb8-postgres: bb8 has no statement cache, so its manager is wrapped to
//!   prepare `SELECT 1` once per connection when it opens (what a bb8 user
//!   does with a connection customizer); bb8 tests every connection on
//!   checkout by default, an extra round trip per query. The row
//!   "bb8-postgres (no test)" turns that off.
//! - sqlx: `query_scalar` with its per-connection statement cache; sqlx pings
//!   every connection before handing it out by default, also an extra round
//!   trip. The row "sqlx (no test)" turns that off.
//!
//! Beside the pools: `pgbench -n -M prepared` with a script of `SELECT 1`,
//! one persistent connection per client (C's libpq, no pool: the ceiling for
//! this server; its mean latency only, see [`run_pgbench`]), and a
//! connect-per-query loop (life without a pool: connect, prepare, query,
//! close).

use std::collections::HashMap;
use std::error::Error;
use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::runtime::Runtime;
use tokio_postgres::NoTls;

use crate::stats::{Spread, quantile};

/// The query.
pub const SQL: &str = "SELECT 1";

/// Connections per pool.
pub const POOL_SIZE: usize = 8;

/// Any error a contender reports.
pub type BoxError = Box<dyn Error + Send + Sync>;

/// Where the server is: libpq's `PGHOST`, `PGPORT`, `PGUSER`, `PGDATABASE`,
/// defaulting to `127.0.0.1:5432`, user `postgres`, database `test` (trust
/// authentication, so no password).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PgTarget {
    /// Host name or address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// User name.
    pub user: String,
    /// Database.
    pub dbname: String,
}

impl Default for PgTarget {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".to_owned(),
            port: 5432,
            user: "postgres".to_owned(),
            dbname: "test".to_owned(),
        }
    }
}

impl PgTarget {
    /// The defaults, overridden by `TIDEPOOL_PG_ADDR` (`host:port`, as the
    /// workspace's tests read it), then by libpq's `PGHOST`, `PGPORT`,
    /// `PGUSER` and `PGDATABASE`.
    pub fn from_env() -> Self {
        let d = Self::default();
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let (mut host, mut port) = (d.host, d.port);
        if let Some((h, p)) = var("TIDEPOOL_PG_ADDR")
            .as_deref()
            .and_then(|a| a.rsplit_once(':'))
        {
            host = h.to_owned();
            port = p.parse().unwrap_or(port);
        }
        Self {
            host: var("PGHOST").unwrap_or(host),
            port: var("PGPORT").and_then(|p| p.parse().ok()).unwrap_or(port),
            user: var("PGUSER").unwrap_or(d.user),
            dbname: var("PGDATABASE").unwrap_or(d.dbname),
        }
    }

    /// `host:port`.
    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// The same target for tokio-postgres.
    pub fn tokio_config(&self) -> tokio_postgres::Config {
        let mut cfg = tokio_postgres::Config::new();
        cfg.host(&self.host)
            .port(self.port)
            .user(&self.user)
            .dbname(&self.dbname)
            .application_name("tidepool-bench");
        cfg
    }

    /// The same target for sqlx.
    pub fn sqlx_options(&self) -> sqlx::postgres::PgConnectOptions {
        sqlx::postgres::PgConnectOptions::new()
            .host(&self.host)
            .port(self.port)
            .username(&self.user)
            .database(&self.dbname)
            .application_name("tidepool-bench")
    }
}

/// What to run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PgConfig {
    /// Concurrent clients.
    pub clients: Vec<usize>,
    /// Measured seconds per (contender, client count, repetition). Whole
    /// seconds, because that is what `pgbench -T` takes.
    pub secs: u64,
    /// Warm-up before each measured phase, in milliseconds.
    pub warmup_ms: u64,
    /// Repetitions.
    pub reps: usize,
    /// Only these contenders (by name); everyone when `None`.
    #[serde(default)]
    pub only: Option<Vec<String>>,
}

impl PgConfig {
    /// The full run.
    pub fn full() -> Self {
        Self {
            clients: vec![1, 8, 32, 64],
            secs: 3,
            warmup_ms: 300,
            reps: 3,
            only: None,
        }
    }

    /// The quick run.
    pub fn quick() -> Self {
        Self {
            secs: 1,
            warmup_ms: 100,
            ..Self::full()
        }
    }
}

/// The figures of one phase.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct PgFigures {
    /// Successful queries per second.
    pub qps: f64,
    /// Mean latency, µs.
    pub mean_us: f64,
    /// Median latency, µs (`None` for pgbench: see [`run_pgbench`]).
    pub p50_us: Option<f64>,
    /// 99th percentile latency, µs (`None` for pgbench).
    pub p99_us: Option<f64>,
    /// Failed queries (connect errors, server errors).
    pub errors: u64,
}

/// One contender at one client count.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PgRow {
    /// Contender name.
    pub contender: String,
    /// Concurrent clients.
    pub clients: usize,
    /// One entry per repetition.
    pub reps: Vec<PgFigures>,
}

impl PgRow {
    /// Min / median / max over repetitions of one figure.
    pub fn spread(&self, figure: impl Fn(&PgFigures) -> f64) -> Spread {
        Spread::of(&self.reps.iter().map(figure).collect::<Vec<_>>())
    }

    /// Min / median / max over the repetitions that have `figure`; `None`
    /// when none has it.
    pub fn spread_of(&self, figure: impl Fn(&PgFigures) -> Option<f64>) -> Option<Spread> {
        let values: Vec<f64> = self.reps.iter().filter_map(figure).collect();
        (!values.is_empty()).then(|| Spread::of(&values))
    }

    /// Errors over all repetitions.
    pub fn errors(&self) -> u64 {
        self.reps.iter().map(|r| r.errors).sum()
    }
}

/// The suite's results.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PgResults {
    /// What was run.
    pub config: PgConfig,
    /// The server's `SELECT version()`.
    pub server_version: String,
    /// `pgbench --version`, if pgbench was found.
    pub pgbench_version: Option<String>,
    /// Contender names, in table order.
    pub contenders: Vec<String>,
    /// Every row measured.
    pub rows: Vec<PgRow>,
    /// Contenders that could not run, and why.
    pub skipped: Vec<(String, String)>,
}

impl PgResults {
    /// The row of `contender` at `clients`, if measured.
    pub fn row(&self, contender: &str, clients: usize) -> Option<&PgRow> {
        self.rows
            .iter()
            .find(|r| r.contender == contender && r.clients == clients)
    }
}

/// A pool (or no pool) that can run the query.
pub trait PgContender: Clone + Send + Sync + 'static {
    /// Runs the prepared `SELECT 1` once on a connection of the pool.
    fn select_one(&self) -> impl Future<Output = Result<(), BoxError>> + Send;

    /// Opens `n` connections by holding them at once.
    fn warm(&self, n: usize) -> impl Future<Output = Result<(), BoxError>> + Send;
}

fn check(value: i32) -> Result<(), BoxError> {
    if value == 1 {
        Ok(())
    } else {
        Err(format!("SELECT 1 returned {value}").into())
    }
}

/// tidepool over tidepool-postgres, with its defaults.
#[derive(Debug, Clone)]
pub struct TidepoolPg(pub tidepool_postgres::PgPool);

impl TidepoolPg {
    /// Builds the pool.
    ///
    /// # Errors
    /// If the pool rejects its configuration.
    pub fn build(target: &PgTarget) -> Result<Self, BoxError> {
        let mut config = tidepool_postgres::PgConfig::default();
        config.host.clone_from(&target.host);
        config.port = target.port;
        config.user.clone_from(&target.user);
        config.dbname = Some(target.dbname.clone());
        config.application_name = Some("tidepool-bench".to_owned());
        Ok(Self(
            tidepool_postgres::PgManager::new(config)
                .pool_builder()
                .max_size(POOL_SIZE)
                .build()?,
        ))
    }
}

impl PgContender for TidepoolPg {
    async fn select_one(&self) -> Result<(), BoxError> {
        let conn = self.0.get().await?;
        let statement = conn.prepare_cached(SQL).await?;
        check(conn.query_one(&statement, &[]).await?.try_get(0)?)
    }

    async fn warm(&self, n: usize) -> Result<(), BoxError> {
        let mut held = Vec::with_capacity(n);
        for _ in 0..n {
            held.push(self.0.get().await?);
        }
        Ok(())
    }
}

/// deadpool-postgres with its defaults.
#[derive(Clone)]
pub struct DeadpoolPg(pub deadpool_postgres::Pool);

impl fmt::Debug for DeadpoolPg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("DeadpoolPg").field(&self.0.status()).finish()
    }
}

impl DeadpoolPg {
    /// Builds the pool.
    ///
    /// # Errors
    /// If deadpool rejects the configuration.
    pub fn build(target: &PgTarget) -> Result<Self, BoxError> {
        let manager = deadpool_postgres::Manager::from_config(
            target.tokio_config(),
            NoTls,
            deadpool_postgres::ManagerConfig::default(),
        );
        Ok(Self(
            deadpool_postgres::Pool::builder(manager)
                .max_size(POOL_SIZE)
                .build()?,
        ))
    }
}

impl PgContender for DeadpoolPg {
    async fn select_one(&self) -> Result<(), BoxError> {
        let client = self.0.get().await?;
        let statement = client.prepare_cached(SQL).await?;
        check(client.query_one(&statement, &[]).await?.try_get(0)?)
    }

    async fn warm(&self, n: usize) -> Result<(), BoxError> {
        let mut held = Vec::with_capacity(n);
        for _ in 0..n {
            held.push(self.0.get().await?);
        }
        Ok(())
    }
}

/// bb8-postgres's manager, wrapped so each connection carries `SELECT 1`
/// prepared when it opened (bb8 has no statement cache).
#[derive(Debug)]
pub struct Bb8Prepared(pub bb8_postgres::PostgresConnectionManager<NoTls>);

impl bb8::ManageConnection for Bb8Prepared {
    type Connection = (tokio_postgres::Client, tokio_postgres::Statement);
    type Error = tokio_postgres::Error;

    async fn connect(&self) -> Result<Self::Connection, Self::Error> {
        let client = self.0.connect().await?;
        let statement = client.prepare(SQL).await?;
        Ok((client, statement))
    }

    async fn is_valid(&self, conn: &mut Self::Connection) -> Result<(), Self::Error> {
        self.0.is_valid(&mut conn.0).await
    }

    fn has_broken(&self, conn: &mut Self::Connection) -> bool {
        self.0.has_broken(&mut conn.0)
    }
}

/// bb8 over bb8-postgres.
#[derive(Debug, Clone)]
pub struct Bb8Pg(pub bb8::Pool<Bb8Prepared>);

impl Bb8Pg {
    /// Builds the pool; `test_on_check_out` is bb8's default (`true`) or not.
    pub fn build(target: &PgTarget, test_on_check_out: bool) -> Self {
        let manager = bb8_postgres::PostgresConnectionManager::new(target.tokio_config(), NoTls);
        Self(
            bb8::Pool::builder()
                .max_size(POOL_SIZE as u32)
                .test_on_check_out(test_on_check_out)
                .build_unchecked(Bb8Prepared(manager)),
        )
    }
}

impl PgContender for Bb8Pg {
    async fn select_one(&self) -> Result<(), BoxError> {
        let conn = self.0.get().await?;
        let (client, statement) = &*conn;
        check(client.query_one(statement, &[]).await?.try_get(0)?)
    }

    async fn warm(&self, n: usize) -> Result<(), BoxError> {
        let mut held = Vec::with_capacity(n);
        for _ in 0..n {
            held.push(self.0.get().await?);
        }
        Ok(())
    }
}

/// sqlx's `PgPool`.
#[derive(Debug, Clone)]
pub struct SqlxPg(pub sqlx::PgPool);

impl SqlxPg {
    /// Builds the pool (lazily: connections open on demand); with
    /// `test_before_acquire` at sqlx's default (`true`) or not.
    pub fn build(target: &PgTarget, test_before_acquire: bool) -> Self {
        Self(
            sqlx::postgres::PgPoolOptions::new()
                .max_connections(POOL_SIZE as u32)
                .test_before_acquire(test_before_acquire)
                .connect_lazy_with(target.sqlx_options()),
        )
    }
}

impl PgContender for SqlxPg {
    async fn select_one(&self) -> Result<(), BoxError> {
        let mut conn = self.0.acquire().await?;
        let value: i32 = sqlx::query_scalar(SQL).fetch_one(&mut *conn).await?;
        check(value)
    }

    async fn warm(&self, n: usize) -> Result<(), BoxError> {
        let mut held = Vec::with_capacity(n);
        for _ in 0..n {
            held.push(self.0.acquire().await?);
        }
        Ok(())
    }
}

/// No pool either way: tokio-postgres itself on [`POOL_SIZE`] persistent
/// connections, the statement prepared once on each. Every client task keeps
/// to one connection (tasks beyond the eighth share, which tokio-postgres
/// pipelines). What the driver does on this machine without any pool: the
/// ceiling for every Rust pool built on it.
#[derive(Clone)]
pub struct DriverOnly {
    conns: Arc<Vec<(tokio_postgres::Client, tokio_postgres::Statement)>>,
    assigned: Arc<std::sync::Mutex<HashMap<tokio::task::Id, usize>>>,
}

impl fmt::Debug for DriverOnly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DriverOnly")
            .field("connections", &self.conns.len())
            .finish()
    }
}

impl DriverOnly {
    /// Opens the connections and prepares the statement on each.
    ///
    /// # Errors
    /// If a connection cannot be opened or the statement prepared.
    pub async fn connect(target: &PgTarget) -> Result<Self, BoxError> {
        let mut conns = Vec::with_capacity(POOL_SIZE);
        for _ in 0..POOL_SIZE {
            let (client, connection) = target.tokio_config().connect(NoTls).await?;
            tokio::spawn(connection);
            let statement = client.prepare(SQL).await?;
            conns.push((client, statement));
        }
        Ok(Self {
            conns: Arc::new(conns),
            assigned: Arc::default(),
        })
    }
}

impl PgContender for DriverOnly {
    async fn select_one(&self) -> Result<(), BoxError> {
        let task = tokio::task::id();
        let i = {
            let mut assigned = self
                .assigned
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let next = assigned.len();
            *assigned.entry(task).or_insert(next) % self.conns.len()
        };
        let (client, statement) = &self.conns[i];
        check(client.query_one(statement, &[]).await?.try_get(0)?)
    }

    async fn warm(&self, _n: usize) -> Result<(), BoxError> {
        Ok(())
    }
}

/// No pool: every query opens its own connection and closes it.
#[derive(Debug, Clone)]
pub struct ConnectPerQuery(pub tokio_postgres::Config);

impl PgContender for ConnectPerQuery {
    async fn select_one(&self) -> Result<(), BoxError> {
        let (client, connection) = self.0.connect(NoTls).await?;
        let task = tokio::spawn(connection);
        let statement = client.prepare(SQL).await?;
        let value: i32 = client.query_one(&statement, &[]).await?.try_get(0)?;
        drop(client);
        // Wait for the connection to close, so closed sessions don't pile up.
        task.await??;
        check(value)
    }

    async fn warm(&self, _n: usize) -> Result<(), BoxError> {
        Ok(())
    }
}

/// What one phase of clients did.
#[derive(Debug, Default)]
struct Phase {
    latencies_ns: Vec<u64>,
    errors: u64,
    elapsed: Duration,
    first_error: Option<String>,
}

/// Runs `clients` tasks against `pool` for `length`.
async fn phase<C: PgContender>(pool: &C, clients: usize, length: Duration) -> Phase {
    let start = Instant::now();
    let deadline = start + length;
    let handles: Vec<_> = (0..clients)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let mut out = Phase::default();
                // At least one query per client, however short the phase.
                loop {
                    let t0 = Instant::now();
                    match pool.select_one().await {
                        Ok(()) => out
                            .latencies_ns
                            .push(u64::try_from(t0.elapsed().as_nanos()).unwrap_or(u64::MAX)),
                        Err(e) => {
                            out.errors += 1;
                            out.first_error.get_or_insert_with(|| e.to_string());
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                    }
                    if Instant::now() >= deadline {
                        break out;
                    }
                }
            })
        })
        .collect();
    let mut all = Phase::default();
    for handle in handles {
        match handle.await {
            Ok(p) => {
                all.latencies_ns.extend(p.latencies_ns);
                all.errors += p.errors;
                if all.first_error.is_none() {
                    all.first_error = p.first_error;
                }
            }
            Err(e) => {
                all.errors += 1;
                all.first_error.get_or_insert_with(|| e.to_string());
            }
        }
    }
    all.elapsed = start.elapsed();
    all
}

fn figures(mut p: Phase) -> PgFigures {
    p.latencies_ns.sort_unstable();
    let n = p.latencies_ns.len();
    let sum: u128 = p.latencies_ns.iter().map(|&ns| u128::from(ns)).sum();
    PgFigures {
        qps: n as f64 / p.elapsed.as_secs_f64().max(1e-9),
        mean_us: if n == 0 {
            0.0
        } else {
            sum as f64 / n as f64 / 1e3
        },
        p50_us: Some(quantile(&p.latencies_ns, 0.50) as f64 / 1e3),
        p99_us: Some(quantile(&p.latencies_ns, 0.99) as f64 / 1e3),
        errors: p.errors,
    }
}

/// Warms `pool`, runs the warm-up phase, then the measured phase.
pub async fn measure<C: PgContender>(
    pool: &C,
    clients: usize,
    cfg: &PgConfig,
) -> Result<PgFigures, BoxError> {
    pool.warm(POOL_SIZE.min(clients.max(1))).await?;
    phase(pool, clients, Duration::from_millis(cfg.warmup_ms)).await;
    let p = phase(pool, clients, Duration::from_secs(cfg.secs)).await;
    if p.latencies_ns.is_empty() {
        return Err(p
            .first_error
            .unwrap_or_else(|| "no query completed".to_owned())
            .into());
    }
    if let Some(e) = &p.first_error {
        eprintln!("warning: {} errors, the first: {e}", p.errors);
    }
    Ok(figures(p))
}

/// Names of the contenders, in table order.
pub mod names {
    /// tidepool-postgres.
    pub const TIDEPOOL: &str = "tidepool-postgres";
    /// deadpool-postgres.
    pub const DEADPOOL: &str = "deadpool-postgres";
    /// bb8-postgres, bb8's defaults.
    pub const BB8: &str = "bb8-postgres";
    /// bb8-postgres without the checkout test.
    pub const BB8_NO_TEST: &str = "bb8-postgres (no test)";
    /// sqlx, its defaults.
    pub const SQLX: &str = "sqlx";
    /// sqlx without `test_before_acquire`.
    pub const SQLX_NO_TEST: &str = "sqlx (no test)";
    /// pgbench with persistent connections.
    pub const PGBENCH: &str = "pgbench (no pool)";
    /// tokio-postgres on persistent connections, no pool.
    pub const DRIVER: &str = "tokio-postgres (no pool)";
    /// A new connection per query.
    pub const CONNECT: &str = "connect per query";

    /// All of them.
    pub const ALL: [&str; 9] = [
        TIDEPOOL,
        DEADPOOL,
        BB8,
        BB8_NO_TEST,
        SQLX,
        SQLX_NO_TEST,
        DRIVER,
        PGBENCH,
        CONNECT,
    ];
}

/// Runs one async contender at one client count; builds a fresh pool for it.
fn run_one(
    rt: &Runtime,
    target: &PgTarget,
    contender: &str,
    clients: usize,
    cfg: &PgConfig,
) -> Result<PgFigures, BoxError> {
    rt.block_on(async {
        match contender {
            names::TIDEPOOL => measure(&TidepoolPg::build(target)?, clients, cfg).await,
            names::DEADPOOL => measure(&DeadpoolPg::build(target)?, clients, cfg).await,
            names::BB8 => measure(&Bb8Pg::build(target, true), clients, cfg).await,
            names::BB8_NO_TEST => measure(&Bb8Pg::build(target, false), clients, cfg).await,
            names::SQLX => {
                let pool = SqlxPg::build(target, true);
                let out = measure(&pool, clients, cfg).await;
                pool.0.close().await;
                out
            }
            names::SQLX_NO_TEST => {
                let pool = SqlxPg::build(target, false);
                let out = measure(&pool, clients, cfg).await;
                pool.0.close().await;
                out
            }
            names::DRIVER => measure(&DriverOnly::connect(target).await?, clients, cfg).await,
            names::CONNECT => measure(&ConnectPerQuery(target.tokio_config()), clients, cfg).await,
            other => Err(format!("unknown contender {other}").into()),
        }
    })
}

/// Runs the suite: every contender at every client count, `reps` times,
/// interleaved, in a random order each time (see
/// [`run_order`](crate::pools::run_order)). Returns an error only when the
/// server cannot be reached.
///
/// # Errors
/// When nothing answers at the target or `SELECT version()` fails.
pub fn run(
    rt: &Runtime,
    target: &PgTarget,
    cfg: &PgConfig,
    progress: &mut dyn FnMut(&str),
) -> Result<PgResults, BoxError> {
    if !tidepool_testkit::reachable(&target.address()) {
        return Err(format!("PostgreSQL is not reachable at {}", target.address()).into());
    }
    let server_version = rt.block_on(server_version(target))?;
    let pgbench = find_pgbench();
    let pgbench_version = pgbench
        .as_deref()
        .and_then(|p| crate::machine::tool_version(&p.to_string_lossy()));
    let work = std::env::temp_dir().join(format!("tidepool-bench-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;

    let mut rows: Vec<PgRow> = Vec::new();
    let mut skipped: Vec<(String, String)> = Vec::new();
    if pgbench.is_none() {
        skipped.push((
            names::PGBENCH.to_owned(),
            "pgbench not found on PATH nor under /usr/lib/postgresql/*/bin".to_owned(),
        ));
    }
    let mut rng = fastrand::Rng::new();
    for rep in 0..cfg.reps {
        for &clients in &cfg.clients {
            for i in crate::pools::run_order(names::ALL.len(), &mut rng) {
                let contender = names::ALL[i];
                if !crate::pools::selected(cfg.only.as_deref(), contender)
                    || skipped.iter().any(|(name, _)| name == contender)
                {
                    continue;
                }
                let outcome = if contender == names::PGBENCH {
                    let path = pgbench.as_deref().expect("skipped when absent");
                    run_pgbench(path, &work, target, clients, cfg.secs)
                } else {
                    run_one(rt, target, contender, clients, cfg)
                };
                match outcome {
                    Ok(f) => {
                        progress(&format!(
                            "postgres rep {}/{} clients {clients:>2} {contender:<24} {:>8.0} q/s  mean {:>6.0} µs  p50 {:>6} µs  p99 {:>6} µs{}",
                            rep + 1,
                            cfg.reps,
                            f.qps,
                            f.mean_us,
                            f.p50_us.map_or("n/a".to_owned(), |v| format!("{v:.0}")),
                            f.p99_us.map_or("n/a".to_owned(), |v| format!("{v:.0}")),
                            if f.errors > 0 {
                                format!("  ({} errors)", f.errors)
                            } else {
                                String::new()
                            }
                        ));
                        match rows
                            .iter_mut()
                            .find(|r| r.contender == contender && r.clients == clients)
                        {
                            Some(row) => row.reps.push(f),
                            None => rows.push(PgRow {
                                contender: contender.to_owned(),
                                clients,
                                reps: vec![f],
                            }),
                        }
                    }
                    Err(e) => {
                        progress(&format!("postgres: {contender} skipped: {e}"));
                        skipped.push((contender.to_owned(), e.to_string()));
                    }
                }
            }
        }
    }
    let _ = std::fs::remove_dir_all(&work);
    Ok(PgResults {
        config: cfg.clone(),
        server_version,
        pgbench_version,
        contenders: names::ALL
            .iter()
            .filter(|name| crate::pools::selected(cfg.only.as_deref(), name))
            .map(|s| (*s).to_owned())
            .collect(),
        rows,
        skipped,
    })
}

async fn server_version(target: &PgTarget) -> Result<String, BoxError> {
    let (client, connection) = target.tokio_config().connect(NoTls).await?;
    let task = tokio::spawn(connection);
    let version: String = client
        .query_one("SELECT version()", &[])
        .await?
        .try_get(0)?;
    drop(client);
    let _ = task.await;
    Ok(version)
}

/// pgbench on `PATH`, else the newest under `/usr/lib/postgresql/*/bin`.
pub fn find_pgbench() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join("pgbench");
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("bin/pgbench"))
        .filter(|p| p.is_file())
        .collect();
    found.sort();
    found.pop()
}

/// Runs `pgbench -n -M prepared -f <SELECT 1> -c N -j min(N, 2) -T secs`
/// and reads its tps and mean latency.
///
/// pgbench's percentiles are not reported: it reads the clock lazily, once
/// per pass over the clients of a thread, so with several clients per thread
/// most transactions in its per-transaction log (`-l`) show a latency of
/// 0 µs. Its "latency average" (clients × duration / transactions) is sound.
///
/// # Errors
/// When pgbench fails or its output cannot be read.
pub fn run_pgbench(
    pgbench: &Path,
    work: &Path,
    target: &PgTarget,
    clients: usize,
    secs: u64,
) -> Result<PgFigures, BoxError> {
    let script = work.join("select1.sql");
    std::fs::write(&script, format!("{SQL};\n"))?;
    let out = Command::new(pgbench)
        .args(["-n", "-M", "prepared", "-f"])
        .arg(&script)
        .args(["-c", &clients.to_string()])
        .args(["-j", &clients.clamp(1, 2).to_string()])
        .args(["-T", &secs.to_string()])
        .args(["-h", &target.host, "-p", &target.port.to_string()])
        .args(["-U", &target.user])
        .arg(&target.dbname)
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(
            "pgbench failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )
        .into());
    }
    Ok(PgFigures {
        qps: parse_field(&stdout, "tps = ").ok_or("no tps in pgbench's output")?,
        mean_us: parse_field(&stdout, "latency average = ")
            .ok_or("no latency average in pgbench's output")?
            * 1000.0,
        p50_us: None,
        p99_us: None,
        errors: parse_field(&stdout, "number of failed transactions: ").map_or(0, |n| n as u64),
    })
}

/// The number after `prefix` on the first line of pgbench's output that
/// starts with it (`tps = 43105.1 (without ...)`, `latency average = 0.185
/// ms`).
pub fn parse_field(stdout: &str, prefix: &str) -> Option<f64> {
    stdout.lines().find_map(|l| {
        let rest = l.trim().strip_prefix(prefix)?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_pgbench_output() {
        let out = "transaction type: select1.sql\n\
                   number of transactions actually processed: 43123\n\
                   number of failed transactions: 0 (0.000%)\n\
                   latency average = 0.185 ms\n\
                   initial connection time = 3.117 ms\n\
                   tps = 43105.118842 (without initial connection time)\n";
        assert_eq!(parse_field(out, "tps = "), Some(43105.118842));
        assert_eq!(parse_field(out, "latency average = "), Some(0.185));
        assert_eq!(
            parse_field(out, "number of failed transactions: "),
            Some(0.0)
        );
        assert_eq!(parse_field(out, "nothing = "), None);
    }

    #[test]
    fn every_contender_runs_against_a_local_server() {
        if tidepool_testkit::service("PostgreSQL", "TIDEPOOL_PG_ADDR", "127.0.0.1:5432").is_none() {
            return;
        }
        let target = PgTarget::from_env();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        // A zero-length phase runs exactly one query per client.
        let cfg = PgConfig {
            clients: vec![3],
            secs: 0,
            warmup_ms: 0,
            reps: 1,
            only: None,
        };
        for contender in names::ALL {
            if contender == names::PGBENCH {
                continue;
            }
            let f = run_one(&rt, &target, contender, 3, &cfg)
                .unwrap_or_else(|e| panic!("{contender}: {e}"));
            assert_eq!(f.errors, 0, "{contender}");
            assert!(
                f.qps > 0.0 && f.mean_us > 0.0 && f.p50_us.is_some_and(|p| p > 0.0),
                "{contender}: {f:?}"
            );
        }
    }
}
