//! `tidepool load`: a load generator for any pool of a configuration file
//! (or for the server's query gateway), with live progress, a report of
//! throughput, HDR latency percentiles, errors by kind and the pool's own
//! statistics, a comparison with a connection per request, and a sweep of
//! pool sizes beside the pool's Little's-law advice.
//!
//! # Modules
//! - [`args`]: the flags and the checks between them.
//! - [`workload`]: weighted statements with generated parameters.
//! - [`exec`]: running a statement on each backend; naming failures.
//! - [`target`], [`http`]: what the clients drive (a pool, a connection per
//!   request, the HTTP gateway).
//! - [`engine`], [`record`], [`progress`]: the run, its measurements and
//!   the live display.
//! - [`summary`], [`report`], [`sweep`], [`chart`]: the figures as JSON,
//!   text and SVG.

pub mod args;
pub mod chart;
pub mod engine;
pub mod exec;
pub mod http;
pub mod progress;
pub mod record;
pub mod report;
pub mod summary;
pub mod sweep;
pub mod target;
pub mod workload;

use std::process::ExitCode;
use std::sync::Arc;

use serde::Serialize;
use tidepool::Pool;
use tidepool_postgres::PgManager;
use tidepool_sqlite::SqliteManager;
use tokio::sync::watch;

pub use args::LoadArgs;
use args::{Limit, Plan};
use exec::Backend;
use progress::Progress;
use summary::{PoolReport, RunReport};
use sweep::{Step, SweepReport};
use target::{Pooled, Target, Unpooled};
use workload::Workload;

use crate::config::{self, Config, PoolSection};

/// Why the command failed.
#[derive(Debug)]
enum Fail {
    /// Bad flags or files: exit code 2.
    Usage(String),
    /// The database or server could not be used: exit code 1.
    Runtime(String),
}

/// What was run, for the report and the JSON.
#[derive(Debug, Serialize)]
struct Output {
    tidepool_version: &'static str,
    /// `library` (a pool of this process) or `gateway` (HTTP).
    target: &'static str,
    pool: String,
    backend: String,
    url: Option<String>,
    workload: Vec<StatementInfo>,
    clients: usize,
    /// Open-loop rate; `null` for a closed loop.
    rate: Option<f64>,
    duration_s: Option<f64>,
    requests_limit: Option<u64>,
    run: Option<RunReport>,
    unpooled: Option<RunReport>,
    sweep: Option<SweepReport>,
}

#[derive(Debug, Serialize)]
struct StatementInfo {
    name: String,
    sql: String,
    params: usize,
}

/// Runs `tidepool load`; the process exit code.
pub fn main(args: LoadArgs) -> ExitCode {
    let fail = |e: Fail| match e {
        Fail::Usage(m) => {
            eprintln!("tidepool load: {m}");
            ExitCode::from(2)
        }
        Fail::Runtime(m) => {
            eprintln!("tidepool load: {m}");
            ExitCode::FAILURE
        }
    };
    let plan = match args.plan() {
        Ok(plan) => plan,
        Err(m) => return fail(Fail::Usage(m)),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(Fail::Runtime(format!("cannot start the runtime: {e}"))),
    };
    let result = runtime.block_on(run(&args, &plan));
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}

/// A receiver that turns true at the first Ctrl-C; a second one exits.
fn interrupt_on_ctrl_c() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_err() {
            return;
        }
        let _ = tx.send(true);
        eprintln!(
            "tidepool load: stopping; waiting for requests in flight (Ctrl-C again to quit at once)"
        );
        if tokio::signal::ctrl_c().await.is_ok() {
            std::process::exit(130);
        }
    });
    rx
}

async fn run(args: &LoadArgs, plan: &Plan) -> Result<(), Fail> {
    let workload = Arc::new(match (&args.workload, &args.sql) {
        (Some(path), _) => Workload::load(path).map_err(|e| Fail::Usage(e.to_string()))?,
        (None, Some(sql)) => Workload::single(sql),
        (None, None) => Workload::single(args::DEFAULT_SQL),
    });
    let interrupt = interrupt_on_ctrl_c();
    let mut out = Output {
        tidepool_version: env!("CARGO_PKG_VERSION"),
        target: if args.url.is_some() {
            "gateway"
        } else {
            "library"
        },
        pool: args.pool.clone(),
        backend: String::new(),
        url: args.url.clone(),
        workload: workload
            .statements
            .iter()
            .map(|s| StatementInfo {
                name: s.name.clone(),
                sql: s.sql.to_string(),
                params: s.param_count(),
            })
            .collect(),
        clients: plan.clients,
        rate: plan.rate,
        duration_s: match plan.limit {
            Limit::Duration(d) => Some(d.as_secs_f64()),
            Limit::Requests(_) => None,
        },
        requests_limit: match plan.limit {
            Limit::Requests(n) => Some(n),
            Limit::Duration(_) => None,
        },
        run: None,
        unpooled: None,
        sweep: None,
    };
    match (&args.url, &args.config) {
        (Some(url), _) => gateway(args, url, plan, &workload, interrupt, &mut out).await?,
        (None, Some(path)) => {
            let cfg = Config::load(path).map_err(|e| Fail::Usage(e.to_string()))?;
            let section = cfg.pools.get(&args.pool).ok_or_else(|| {
                let names: Vec<&str> = cfg.pools.keys().map(String::as_str).collect();
                Fail::Usage(format!(
                    "{}: no pool `{}`; the file configures: {}",
                    cfg.origin,
                    args.pool,
                    if names.is_empty() {
                        "no pools".to_owned()
                    } else {
                        names.join(", ")
                    }
                ))
            })?;
            let ctx = Library {
                args,
                plan,
                section,
                workload: &workload,
                interrupt,
            };
            match &section.backend {
                config::Backend::Sqlite(c) => {
                    let c = c.clone();
                    ctx.run(
                        move || SqliteManager::new(c.clone()).map_err(|e| e.to_string()),
                        &mut out,
                    )
                    .await?;
                }
                config::Backend::Postgres { config, .. } => {
                    let c = config.clone();
                    ctx.run(move || Ok(PgManager::new(c.clone())), &mut out)
                        .await?;
                }
            }
        }
        (None, None) => return Err(Fail::Usage("give --config FILE or --url URL".into())),
    }
    finish(args, &out)
}

/// Prints the report and writes the JSON and SVG files.
fn finish(args: &LoadArgs, out: &Output) -> Result<(), Fail> {
    let mut text = String::new();
    header(&mut text, out);
    match (&out.run, &out.unpooled, &out.sweep) {
        (_, _, Some(s)) => report::sweep(&mut text, s),
        (Some(pooled), Some(unpooled), None) => {
            text.push_str("## pooled\n");
            report::run(&mut text, pooled);
            text.push_str("\n## a new connection per request\n");
            report::run(&mut text, unpooled);
            text.push('\n');
            report::compare(&mut text, pooled, unpooled);
        }
        (Some(r), None, None) => report::run(&mut text, r),
        _ => {}
    }
    {
        use std::io::Write as _;
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.write_all(text.as_bytes());
        let _ = stdout.flush();
    }
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(out)
            .map_err(|e| Fail::Runtime(format!("cannot encode the JSON: {e}")))?;
        std::fs::write(path, json + "\n").map_err(|e| {
            Fail::Runtime(format!("--json {}: cannot write it: {e}", path.display()))
        })?;
    }
    if let Some(path) = &args.svg {
        let drawn = match (&out.run, &out.unpooled, &out.sweep) {
            (_, _, Some(s)) => chart::sweep(s, path),
            (Some(a), Some(b), None) => chart::over_time(&[a, b], path),
            (Some(a), None, None) => chart::over_time(&[a], path),
            _ => Ok(()),
        };
        drawn.map_err(|e| Fail::Runtime(format!("--svg {}: {e}", path.display())))?;
    }
    Ok(())
}

fn header(text: &mut String, out: &Output) {
    use std::fmt::Write as _;
    let shape = match out.rate {
        Some(r) => format!("open loop at {r} requests/s"),
        None => "closed loop".to_owned(),
    };
    let limit = match (out.duration_s, out.requests_limit) {
        (Some(d), _) => format!("{d} s"),
        (_, Some(n)) => format!("{n} requests"),
        _ => String::new(),
    };
    let via = match &out.url {
        Some(url) => format!(" through the gateway at {url}"),
        None => String::new(),
    };
    let statements: Vec<&str> = out.workload.iter().map(|s| s.sql.as_str()).collect();
    let _ = writeln!(
        text,
        "tidepool load: pool `{}` ({}){via}, {} clients, {shape}, {limit}\nworkload: {}\n",
        out.pool,
        out.backend,
        out.clients,
        statements.join(" | ")
    );
}

/// Shows a progress bar while `target` is driven by `plan`.
async fn drive<T: Target>(
    label: &str,
    target: Arc<T>,
    workload: &Arc<Workload>,
    plan: &Plan,
    interrupt: &watch::Receiver<bool>,
) -> engine::Outcome {
    let progress = Progress::new(label, plan.limit);
    let outcome = engine::run(
        target,
        Arc::clone(workload),
        plan,
        interrupt.clone(),
        &progress,
    )
    .await;
    progress.finish();
    outcome
}

/// A run against a pool of this process.
struct Library<'a> {
    args: &'a LoadArgs,
    plan: &'a Plan,
    section: &'a PoolSection,
    workload: &'a Arc<Workload>,
    interrupt: watch::Receiver<bool>,
}

impl Library<'_> {
    async fn run<B: Backend + std::fmt::Debug>(
        &self,
        make: impl Fn() -> Result<B, String>,
        out: &mut Output,
    ) -> Result<(), Fail>
    where
        B::Connection: Sync,
    {
        out.backend = B::NAME.to_owned();
        let name = &self.args.pool;
        let fail = |e: String| Fail::Runtime(format!("pool `{name}`: {e}"));
        self.preflight(make().map_err(fail)?).await?;
        if let Some(sizes) = &self.args.sweep_sizes {
            out.sweep = Some(self.sweep(&make, sizes).await?);
            return Ok(());
        }
        let cfg = self.section.pool.clone();
        out.run = Some(self.pooled(make().map_err(fail)?, cfg, "pooled").await?);
        if self.args.compare_unpooled && !*self.interrupt.borrow() {
            let target = Arc::new(Unpooled::new(
                make().map_err(fail)?,
                self.section.pool.create_timeout,
            ));
            let outcome = drive(
                "unpooled",
                target,
                self.workload,
                self.plan,
                &self.interrupt,
            )
            .await;
            out.unpooled = Some(RunReport::new(
                "unpooled",
                outcome,
                self.plan.rate.is_some(),
                None,
            ));
        }
        Ok(())
    }

    /// Connects once outside any pool and prepares every statement, so a
    /// database that cannot be reached or a statement that cannot run is
    /// said before the run starts.
    async fn preflight<B: Backend>(&self, manager: B) -> Result<(), Fail> {
        let name = &self.args.pool;
        let within = self.section.pool.create_timeout;
        let conn = match tokio::time::timeout(within, manager.connect()).await {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) => {
                return Err(Fail::Runtime(format!(
                    "pool `{name}`: cannot connect to the database: {e}"
                )));
            }
            Err(_) => {
                return Err(Fail::Runtime(format!(
                    "pool `{name}`: cannot connect to the database: no answer within {within:?} (create_timeout)"
                )));
            }
        };
        for s in &self.workload.statements {
            let takes = B::check(&conn, &s.sql).await.map_err(|f| {
                Fail::Usage(format!(
                    "{}: `{}` cannot run on pool `{name}`: {}",
                    self.workload.origin, s.name, f.detail
                ))
            })?;
            if takes != s.param_count() {
                return Err(Fail::Usage(format!(
                    "{}: `{}` takes {takes} parameter(s) but {} are given",
                    self.workload.origin,
                    s.name,
                    s.param_count()
                )));
            }
        }
        Ok(())
    }

    /// One run through a pool built for it with `cfg`.
    async fn pooled<B: Backend + std::fmt::Debug>(
        &self,
        manager: B,
        cfg: tidepool::PoolConfig,
        label: &str,
    ) -> Result<RunReport, Fail>
    where
        B::Connection: Sync,
    {
        let pool = Pool::builder(manager)
            .config(cfg)
            .name(self.args.pool.as_str())
            .build()
            .map_err(|e| Fail::Usage(format!("pool `{}`: {e}", self.args.pool)))?;
        let target = Arc::new(Pooled { pool });
        let outcome = drive(
            label,
            Arc::clone(&target),
            self.workload,
            self.plan,
            &self.interrupt,
        )
        .await;
        let (stats, advice) = target.snapshot();
        target.pool.close();
        let pool = PoolReport::from_stats(&stats, &advice);
        Ok(RunReport::new(
            label,
            outcome,
            self.plan.rate.is_some(),
            Some(pool),
        ))
    }

    async fn sweep<B: Backend + std::fmt::Debug>(
        &self,
        make: &impl Fn() -> Result<B, String>,
        sizes: &[usize],
    ) -> Result<SweepReport, Fail>
    where
        B::Connection: Sync,
    {
        let mut sizes = sizes.to_vec();
        sizes.sort_unstable();
        sizes.dedup();
        let mut steps = Vec::new();
        for size in sizes {
            if *self.interrupt.borrow() {
                break;
            }
            let mut cfg = self.section.pool.clone();
            cfg.max_size = size;
            cfg.min_idle = cfg.min_idle.min(size);
            let manager =
                make().map_err(|e| Fail::Runtime(format!("pool `{}`: {e}", self.args.pool)))?;
            steps.push(
                self.pooled(manager, cfg, &format!("max_size {size}"))
                    .await?,
            );
        }
        let figures: Vec<Step> = steps
            .iter()
            .filter_map(|r| {
                Some(Step {
                    size: r.pool.as_ref()?.max_size,
                    throughput: r.throughput,
                    p90_ms: r.latency_ms.p90,
                })
            })
            .collect();
        let advice = steps.last().and_then(|r| {
            let p = r.pool.as_ref()?;
            Some((p.max_size, p.sizing()?))
        });
        Ok(SweepReport {
            rate: self.plan.rate.unwrap_or(0.0),
            findings: sweep::analyse(&figures, advice.as_ref().map(|(n, z)| (*n, z))),
            steps,
        })
    }
}

async fn gateway(
    args: &LoadArgs,
    url: &str,
    plan: &Plan,
    workload: &Arc<Workload>,
    interrupt: watch::Receiver<bool>,
    out: &mut Output,
) -> Result<(), Fail> {
    let Some(token_file) = &args.token_file else {
        return Err(Fail::Usage("--url needs --token-file".into()));
    };
    let token = http::read_token(token_file).map_err(Fail::Usage)?;
    let gw = http::Gateway::open(url, token, &args.pool, plan.clients)
        .await
        .map_err(Fail::Runtime)?;
    let before = gw.pool_stats().await;
    out.backend = before
        .as_ref()
        .and_then(|v| v.get("backend")?.as_str())
        .unwrap_or("unknown")
        .to_owned();
    let gw = Arc::new(gw);
    let outcome = drive("gateway", Arc::clone(&gw), workload, plan, &interrupt).await;
    let pool = gw.pool_report(before.as_ref()).await;
    gw.close().await;
    out.run = Some(RunReport::new(
        "gateway",
        outcome,
        plan.rate.is_some(),
        pool,
    ));
    Ok(())
}
