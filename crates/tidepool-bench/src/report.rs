//! The stored results of every suite, and the BENCHMARKS.md and charts made
//! from them.
//!
//! Results are kept as JSON beside the charts, so running one suite
//! (`--suite fairness`) replaces that suite's results and re-renders the
//! report with the others' last results, each labelled with when and how
//! (quick or full) it was taken.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use plotters::chart::SeriesLabelPosition;

use crate::chart::{BarChart, LineChart, Series};
use crate::fairness::{FairnessResults, WaitFigures};
use crate::machine::Machine;
use crate::matrix::MatrixResults;
use crate::postgres::{PgFigures, PgResults};
use crate::scale::ScaleResults;
use crate::stats::Spread;
use crate::uncontended::UncontendedResults;

/// A suite's results with when and how they were taken.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Stamped<T> {
    /// `quick` or `full`.
    pub mode: String,
    /// UTC date and time the suite started.
    pub taken: String,
    /// The machine's 1-minute load average when it started.
    pub load_average: String,
    /// The CPU it ran on (empty in results stored before it was kept).
    #[serde(default)]
    pub cpu: String,
    /// The results.
    pub data: T,
}

impl<T> Stamped<T> {
    /// Notes the mode, the time and the load now, for a suite about to run.
    pub fn begin(mode: &str) -> Stamped<()> {
        Stamped {
            mode: mode.to_owned(),
            taken: utc_now(),
            load_average: crate::machine::load_average(),
            cpu: crate::machine::Machine::detect().cpu,
            data: (),
        }
    }
}

impl Stamped<()> {
    /// Attaches the results of the suite that began.
    pub fn with<T>(self, data: T) -> Stamped<T> {
        Stamped {
            mode: self.mode,
            taken: self.taken,
            load_average: self.load_average,
            cpu: self.cpu,
            data,
        }
    }
}

/// The last results of every suite.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Results {
    /// The machine of the latest run.
    pub machine: Option<Machine>,
    /// The command line of the latest run.
    pub command: String,
    /// Suite 1.
    pub matrix: Option<Stamped<MatrixResults>>,
    /// Suite 2.
    pub uncontended: Option<Stamped<UncontendedResults>>,
    /// Suite 3.
    pub fairness: Option<Stamped<FairnessResults>>,
    /// Suite 4; an `Err` holds why it could not run.
    pub postgres: Option<Stamped<Result<PgResults, String>>>,
    /// Suite 5.
    pub scale: Option<Stamped<ScaleResults>>,
}

impl Results {
    /// Reads stored results; empty ones when the file is missing or from an
    /// incompatible version of this crate.
    pub fn load(path: &Path) -> Self {
        std::fs::read_to_string(path)
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default()
    }

    /// Writes the results as JSON.
    ///
    /// # Errors
    /// When the file cannot be written.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(path, text + "\n")
    }
}

/// The current UTC time as `YYYY-MM-DD HH:MM UTC`.
pub fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        rem / 3600,
        (rem % 3600) / 60
    )
}

/// `to` relative to the directory `from`, with `/` separators, when `to` is
/// inside it; else `to` as it is.
fn relative(from: &Path, to: &Path) -> String {
    match to.strip_prefix(from) {
        Ok(inside) => inside
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join("/"),
        Err(_) => to.display().to_string(),
    }
}

pub(crate) fn ratio(value: f64, reference: Option<f64>) -> String {
    match reference {
        Some(r) if r > 0.0 => format!("×{:.2}", value / r),
        _ => "–".to_owned(),
    }
}

/// [`spread_cell`] with no decimals, or `n/a`.
fn opt_cell(s: Option<&Spread>) -> String {
    s.map_or_else(|| "n/a".to_owned(), |s| spread_cell(s, 0))
}

/// `median (min–max)` with `digits` decimals.
pub(crate) fn spread_cell(s: &Spread, digits: usize) -> String {
    format!(
        "**{:.digits$}** ({:.digits$}–{:.digits$})",
        s.median, s.min, s.max
    )
}

pub(crate) fn stamp_line<T>(s: &Stamped<T>) -> String {
    let on = if s.cpu.is_empty() {
        String::new()
    } else {
        format!(" on {}", s.cpu)
    };
    format!(
        "_Taken {}{on} ({} run; load average {} at start)._",
        s.taken, s.mode, s.load_average
    )
}

/// Renders BENCHMARKS.md and draws the charts into `charts_dir`; `out_dir`
/// is where the Markdown file goes (chart links are relative to it).
///
/// # Errors
/// When a chart cannot be written.
pub fn render(
    results: &Results,
    out_dir: &Path,
    charts_dir: &Path,
) -> Result<String, crate::chart::ChartError> {
    std::fs::create_dir_all(charts_dir)?;
    let link = |file: &str| relative(out_dir, &charts_dir.join(file));
    let mut md = String::new();
    let w = &mut md;
    let _ = writeln!(w, "# Benchmarks\n");
    let _ = writeln!(
        w,
        "Generated by `tidepool-bench` (crates/tidepool-bench; see its README for the method \
         in full). Do not edit by hand: run\n\n    {}\n\nfrom the repository root. \
         Results are stored in `{}` so a single suite can be re-run \
         (`--suite NAME`) without losing the others.\n",
        if results.command.is_empty() {
            "cargo run --release -p tidepool-bench"
        } else {
            &results.command
        },
        link("results.json")
    );
    let _ = writeln!(
        w,
        "Ratios are each contender's figure divided by tidepool's: for times, ×1.50 means \
         50 % slower than tidepool and ×0.80 20 % faster; for throughput (queries/s, gets/s), \
         ×1.50 means 50 % more than tidepool. Every figure is the **median** over \
         repetitions, with (min–max) beside it so the noise is visible.\n"
    );
    if let Some(m) = &results.machine {
        machine_section(w, m);
    }
    crate::targets::section(w, results);
    if let Some(s) = &results.matrix {
        matrix_section(w, s, charts_dir, &link)?;
    }
    if let Some(s) = &results.uncontended {
        uncontended_section(w, s, charts_dir, &link)?;
    }
    if let Some(s) = &results.fairness {
        fairness_section(w, s, charts_dir, &link)?;
    }
    if let Some(s) = &results.postgres {
        postgres_section(w, s, charts_dir, &link)?;
    }
    if let Some(s) = &results.scale {
        crate::scale::report::section(w, s, charts_dir, &link)?;
    }
    crate::gateway::section(w, 6, charts_dir, results.postgres.as_ref());
    Ok(md)
}

fn machine_section(w: &mut String, m: &Machine) {
    let _ = writeln!(w, "## Machine and versions\n");
    let _ = writeln!(
        w,
        "Of the latest run; each section's stamp says when it ran (and, where recorded, on \
         which CPU).\n"
    );
    let _ = writeln!(w, "| | |\n|---|---|");
    let _ = writeln!(w, "| CPU | {} |", m.cpu);
    let _ = writeln!(w, "| cores | {} |", m.cores);
    let _ = writeln!(w, "| memory | {:.1} GiB |", m.memory_gib);
    let _ = writeln!(w, "| OS | {} |", m.os);
    let _ = writeln!(w, "| compiler | {} |", m.rustc);
    let _ = writeln!(
        w,
        "| tokio runtime | multi-threaded, {} worker threads (one per core), one runtime for every suite |",
        m.cores
    );
    let _ = writeln!(w, "\n| crate | version |\n|---|---|");
    for (name, version) in &m.crates {
        let _ = writeln!(w, "| {name} | {version} |");
    }
    let _ = writeln!(w);
}

pub(crate) type Link<'a> = dyn Fn(&str) -> String + 'a;

fn matrix_section(
    w: &mut String,
    s: &Stamped<MatrixResults>,
    charts_dir: &Path,
    link: &Link<'_>,
) -> Result<(), crate::chart::ChartError> {
    let r = &s.data;
    let _ = writeln!(w, "## 1. In-memory contention matrix\n");
    let _ = writeln!(w, "{}\n", stamp_line(s));
    let _ = writeln!(
        w,
        "The method of the public rust-pool-benchmark: a manager that hands out an `i32`; \
         for each pool size and worker count, one iteration spawns `workers` tokio tasks, each \
         doing {} × (get, increment, drop); the clock starts before the tasks are spawned and \
         stops when all have finished. Pools are warmed (every connection opened) first. \
         Within a cell the contenders take turns iteration by iteration: a round is one \
         iteration of each, in a random order drawn afresh each round, so that the \
         machine's phases (on a 2-core VM the same loop's iteration time moves between \
         distinct levels from one stretch of iterations to the next) and whatever ran just \
         before (OS threads starting, parked runtime threads) fall on every contender \
         alike, and the iterations of one round can be compared in pairs. Figure: \
         the median iteration time over {} rounds, in µs (lower is better), \
         {} repetitions. Every pool at its defaults except the size (mobc: `max_idle = \
         max_open`). r2d2 runs on OS threads, up to {} workers. \"no pool\" does an atomic \
         increment instead of get + drop: the cost of the tasks alone. \"fifo floor\" is a \
         FIFO-fair `tokio::sync::Semaphore` with one permit per connection and nothing else \
         (no connection, statistics or clock): what serving callers strictly in arrival order \
         costs by itself. Once every connection is busy, each drop must wake the oldest waiter \
         instead of letting the dropping task take its connection straight back; a pool that \
         runs below this line lets callers overtake (qp and bb8 do, see the fairness suite).\n",
        crate::matrix::OPS_PER_WORKER,
        r.config.iterations,
        r.config.reps,
        crate::matrix::R2D2_MAX_WORKERS
    );
    for &size in &r.config.pool_sizes {
        let file = format!("matrix_pool{size}.svg");
        let _ = writeln!(w, "### Pool size {size}\n");
        let _ = write!(w, "| workers |");
        for c in &r.contenders {
            let _ = write!(w, " {c} |");
        }
        let _ = write!(w, "\n|---:|");
        for _ in &r.contenders {
            let _ = write!(w, "---:|");
        }
        let _ = writeln!(w);
        for &workers in &r.config.workers {
            let reference = r.cell(size, workers, "tidepool").map(|c| c.spread().median);
            let _ = write!(w, "| {workers} |");
            for c in &r.contenders {
                match r.cell(size, workers, c) {
                    Some(cell) => {
                        let sp = cell.spread();
                        let mut text = spread_cell(&sp, 1);
                        if c != "tidepool" {
                            text = format!("{text} {}", ratio(sp.median, reference));
                        }
                        let _ = write!(w, " {text} |");
                    }
                    None => {
                        let _ = write!(w, " – |");
                    }
                }
            }
            let _ = writeln!(w);
        }
        let chart = LineChart {
            title: format!("Contention matrix, pool size {size} (lower is better)"),
            x_desc: "concurrent workers".into(),
            x_ticks: r.config.workers.iter().map(ToString::to_string).collect(),
            y_desc: "µs per iteration (median)".into(),
            series: r
                .contenders
                .iter()
                .map(|c| Series {
                    name: c.clone(),
                    points: r
                        .config
                        .workers
                        .iter()
                        .map(|&wk| r.cell(size, wk, c).map(|cell| cell.spread()))
                        .collect(),
                })
                .collect(),
            legend: SeriesLabelPosition::UpperLeft,
        };
        chart.draw(&charts_dir.join(&file))?;
        let _ = writeln!(w, "\n![pool size {size}]({})\n", link(&file));
    }
    best_peer_table(w, r);
    if !r.failures.is_empty() {
        let _ = writeln!(w, "Not measured:\n");
        for f in &r.failures {
            let _ = writeln!(w, "- {f}");
        }
        let _ = writeln!(w);
    }
    Ok(())
}

/// Per cell: tidepool against the peer with the lowest median, and how
/// often that peer won a round outright.
fn best_peer_table(w: &mut String, r: &MatrixResults) {
    let _ = writeln!(w, "### tidepool against the best peer in each cell\n");
    let _ = writeln!(
        w,
        "The best peer is the pool (not a reference row) with the lowest median in the cell. \
         \"Rounds it won\" is the share of rounds in which its iteration was faster than \
         tidepool's iteration of the same round (median over repetitions): 50 % is a tie, \
         below 50 % tidepool was faster more often.\n"
    );
    let _ = writeln!(
        w,
        "| pool size | workers | tidepool µs | best peer | its µs | vs tidepool | rounds it won |"
    );
    let _ = writeln!(w, "|---:|---:|---:|---|---:|---:|---:|");
    for &size in &r.config.pool_sizes {
        for &workers in &r.config.workers {
            let Some(tidepool) = r.cell(size, workers, "tidepool").map(|c| c.spread().median)
            else {
                continue;
            };
            let Some(best) = r.best_peer(size, workers) else {
                continue;
            };
            let median = best.spread().median;
            let won = best
                .share_faster_than_tidepool()
                .map_or("n/a".to_owned(), |share| format!("{:.0} %", share * 100.0));
            let _ = writeln!(
                w,
                "| {size} | {workers} | {tidepool:.1} | {} | {median:.1} | {} | {won} |",
                best.contender,
                ratio(median, Some(tidepool)),
            );
        }
    }
    let _ = writeln!(w);
}

fn uncontended_section(
    w: &mut String,
    s: &Stamped<UncontendedResults>,
    charts_dir: &Path,
    link: &Link<'_>,
) -> Result<(), crate::chart::ChartError> {
    let r = &s.data;
    let _ = writeln!(w, "## 2. Uncontended get + return\n");
    let _ = writeln!(w, "{}\n", stamp_line(s));
    let _ = writeln!(
        w,
        "One task (on a runtime worker thread), one pool of {} warmed connections, nobody \
         else: get, increment, drop, in a loop for {} ms per repetition after a warm-up; \
         {} repetitions. Figure: mean ns per get + drop (lower is better). r2d2 runs the loop \
         on a plain thread. \"fifo floor\" acquires and releases a permit of a FIFO-fair \
         `tokio::sync::Semaphore` and does nothing else: two atomic read-modify-writes, the \
         least any pool pays per get + drop. The criterion bench (`cargo bench -p \
         tidepool-bench --bench uncontended`) measures the same loop with criterion's \
         statistics.\n",
        crate::uncontended::POOL_SIZE,
        r.config.budget_ms,
        r.config.reps
    );
    let _ = writeln!(
        w,
        "| pool | ns per get + drop | vs tidepool |\n|---|---:|---:|"
    );
    let reference = r
        .rows
        .iter()
        .find(|row| row.contender == "tidepool")
        .map(|row| row.spread().median);
    for row in &r.rows {
        let sp = row.spread();
        let _ = writeln!(
            w,
            "| {} | {} | {} |",
            row.contender,
            spread_cell(&sp, 1),
            ratio(sp.median, reference)
        );
    }
    let file = "uncontended.svg";
    BarChart {
        title: "Uncontended get + drop (lower is better)".into(),
        y_desc: "ns per get + drop".into(),
        bars: r
            .rows
            .iter()
            .map(|row| (row.contender.clone(), row.spread()))
            .collect(),
    }
    .draw(&charts_dir.join(file))?;
    let _ = writeln!(w, "\n![uncontended]({})\n", link(file));
    Ok(())
}

fn fairness_section(
    w: &mut String,
    s: &Stamped<FairnessResults>,
    charts_dir: &Path,
    link: &Link<'_>,
) -> Result<(), crate::chart::ChartError> {
    let r = &s.data;
    let _ = writeln!(w, "## 3. Fairness and tail latency\n");
    let _ = writeln!(w, "{}\n", stamp_line(s));
    let _ = writeln!(
        w,
        "{} tasks share {} warmed connections; all start at once and each does {} × (get, \
         hold, drop), the hold being `tokio::time::sleep({} µs)` (an I/O-like hold that \
         frees the worker thread; tokio's timer rounds it up to the next millisecond). \
         Figure: how long each get waited, in ms, over all gets of a repetition; {} \
         repetitions. With strict FIFO service every get waits about {} / {} holds, so p50, \
         p99 and max stay close; a long tail means callers were overtaken. Throughput \
         (gets/s) is shown so that fairness is not read without its cost. \"fifo floor\" is \
         a FIFO-fair `tokio::sync::Semaphore` with one permit per connection and no other \
         work: strict arrival order at the least cost. r2d2 is left out (it would need {} OS \
         threads).\n",
        r.tasks,
        r.pool_size,
        r.config.rounds,
        r.config.hold_us,
        r.config.reps,
        r.tasks,
        r.pool_size,
        r.tasks
    );
    let _ = writeln!(
        w,
        "| pool | p50 ms | p99 ms | p99.9 ms | max ms | gets/s | p99 vs tidepool |\n|---|---:|---:|---:|---:|---:|---:|"
    );
    let ms = |f: fn(&WaitFigures) -> f64| move |x: &WaitFigures| f(x) / 1000.0;
    let reference = r
        .rows
        .iter()
        .find(|row| row.contender == "tidepool")
        .map(|row| row.spread(|f| f.p99_us).median);
    for row in &r.rows {
        if row.reps.is_empty() {
            let why = row.failure.as_deref().unwrap_or("no result");
            let _ = writeln!(w, "| {} | {why} | | | | | |", row.contender);
            continue;
        }
        let p99 = row.spread(|f| f.p99_us);
        let _ = writeln!(
            w,
            "| {} | {} | {} | {} | {} | {} | {} |",
            row.contender,
            spread_cell(&row.spread(ms(|f| f.p50_us)), 1),
            spread_cell(&row.spread(ms(|f| f.p99_us)), 1),
            spread_cell(&row.spread(ms(|f| f.p999_us)), 1),
            spread_cell(&row.spread(ms(|f| f.max_us)), 1),
            spread_cell(&row.spread(|f| f.gets_per_s), 0),
            ratio(p99.median, reference)
        );
    }
    let file = "fairness.svg";
    type Figure = fn(&WaitFigures) -> f64;
    let figures: [(&str, Figure); 4] = [
        ("p50", |f| f.p50_us / 1000.0),
        ("p99", |f| f.p99_us / 1000.0),
        ("p99.9", |f| f.p999_us / 1000.0),
        ("max", |f| f.max_us / 1000.0),
    ];
    LineChart {
        title: format!(
            "Acquire wait, {} tasks on {} connections (flat is fair)",
            r.tasks, r.pool_size
        ),
        x_desc: "percentile".into(),
        x_ticks: figures.iter().map(|(n, _)| (*n).to_owned()).collect(),
        y_desc: "wait, ms".into(),
        series: r
            .rows
            .iter()
            .filter(|row| !row.reps.is_empty())
            .map(|row| Series {
                name: row.contender.clone(),
                points: figures.iter().map(|(_, f)| Some(row.spread(f))).collect(),
            })
            .collect(),
        legend: SeriesLabelPosition::LowerRight,
    }
    .draw(&charts_dir.join(file))?;
    for row in r.rows.iter().filter(|r| !r.reps.is_empty()) {
        if let Some(why) = &row.failure {
            let _ = writeln!(w, "\n{} failed in a later repetition: {why}", row.contender);
        }
    }
    let _ = writeln!(w, "\n![fairness]({})\n", link(file));
    Ok(())
}

fn postgres_section(
    w: &mut String,
    s: &Stamped<Result<PgResults, String>>,
    charts_dir: &Path,
    link: &Link<'_>,
) -> Result<(), crate::chart::ChartError> {
    let _ = writeln!(w, "## 4. PostgreSQL `SELECT 1` (prepared)\n");
    let _ = writeln!(w, "{}\n", stamp_line(s));
    let r = match &s.data {
        Ok(r) => r,
        Err(why) => {
            let _ = writeln!(w, "Not run: {why}.\n");
            return Ok(());
        }
    };
    let _ = writeln!(
        w,
        "Server: {}. pgbench: {}.\n",
        r.server_version,
        r.pgbench_version.as_deref().unwrap_or("not found")
    );
    let _ = writeln!(
        w,
        "Pools of {} connections, opened before measuring. For each client count, that many \
         tokio tasks loop for {} s (after a {} ms warm-up): get a connection, run the \
         prepared `SELECT 1`, check the answer, drop the connection; {} repetitions. Figures: \
         queries/s over the phase (higher is better) and mean / p50 / p99 latency in µs from get to \
         drop. Each pool at its defaults: tidepool-postgres and deadpool-postgres with \
         `prepare_cached`; bb8-postgres (no statement cache) with `SELECT 1` prepared once \
         per connection at connect; sqlx with its statement cache. bb8 and sqlx test every \
         connection on checkout by default (one more round trip per query): the \"(no test)\" \
         rows turn that off. \"tokio-postgres (no pool)\" is the driver the Rust pools but \
         sqlx are built on, with no pool: 8 persistent connections, the statement prepared \
         once on each, every client task keeping to one of them (beyond 8 clients they share \
         and tokio-postgres pipelines): the ceiling of a pool built on tokio-postgres on this \
         machine. `pgbench -n -M prepared -c N -j min(N,2) -T {}` keeps N \
         persistent connections (libpq, no pool; only its mean latency is shown: it reads \
         the clock once per pass over its clients, so its per-transaction log is mostly \
         0 µs), and \"connect per query\" opens a connection for every query (life without \
         a pool). In a closed loop, mean latency ≈ clients / (queries/s); a p50 far below \
         the mean means some clients were served over and over while others waited.\n",
        crate::postgres::POOL_SIZE,
        r.config.secs,
        r.config.warmup_ms,
        r.config.reps,
        r.config.secs
    );
    for &clients in &r.config.clients {
        let _ = writeln!(
            w,
            "### {clients} concurrent client{}\n",
            if clients == 1 { "" } else { "s" }
        );
        let _ = writeln!(
            w,
            "| contender | queries/s | vs tidepool | mean µs | p50 µs | p99 µs | errors |\n|---|---:|---:|---:|---:|---:|---:|"
        );
        let reference = r
            .row(crate::postgres::names::TIDEPOOL, clients)
            .map(|row| row.spread(|f| f.qps).median);
        for name in &r.contenders {
            let Some(row) = r.row(name, clients) else {
                continue;
            };
            let qps = row.spread(|f: &PgFigures| f.qps);
            let _ = writeln!(
                w,
                "| {name} | {} | {} | {} | {} | {} | {} |",
                spread_cell(&qps, 0),
                ratio(qps.median, reference),
                spread_cell(&row.spread(|f| f.mean_us), 0),
                opt_cell(row.spread_of(|f| f.p50_us).as_ref()),
                opt_cell(row.spread_of(|f| f.p99_us).as_ref()),
                row.errors()
            );
        }
        let _ = writeln!(w);
    }
    if !r.skipped.is_empty() {
        let _ = writeln!(w, "Not measured:\n");
        for (name, why) in &r.skipped {
            let _ = writeln!(w, "- {name}: {why}");
        }
        let _ = writeln!(w);
    }
    let ticks: Vec<String> = r.config.clients.iter().map(ToString::to_string).collect();
    let series = |f: fn(&PgFigures) -> Option<f64>| -> Vec<Series> {
        r.contenders
            .iter()
            .filter(|name| r.rows.iter().any(|row| &row.contender == *name))
            .map(|name| Series {
                name: name.clone(),
                points: r
                    .config
                    .clients
                    .iter()
                    .map(|&c| r.row(name, c).and_then(|row| row.spread_of(f)))
                    .collect(),
            })
            .collect()
    };
    for (file, title, y_desc, f, legend) in [
        (
            "postgres_qps.svg",
            "PostgreSQL SELECT 1: throughput (higher is better)",
            "queries/s",
            (|f: &PgFigures| Some(f.qps)) as fn(&PgFigures) -> Option<f64>,
            SeriesLabelPosition::MiddleRight,
        ),
        (
            "postgres_p99.svg",
            "PostgreSQL SELECT 1: p99 latency (lower is better)",
            "p99 latency, µs",
            |f: &PgFigures| f.p99_us,
            SeriesLabelPosition::LowerRight,
        ),
        (
            "postgres_mean.svg",
            "PostgreSQL SELECT 1: mean latency (lower is better)",
            "mean latency, µs",
            |f: &PgFigures| Some(f.mean_us),
            SeriesLabelPosition::LowerRight,
        ),
    ] {
        LineChart {
            title: title.into(),
            x_desc: "concurrent clients".into(),
            x_ticks: ticks.clone(),
            y_desc: y_desc.into(),
            series: series(f),
            legend,
        }
        .draw(&charts_dir.join(file))?;
        let _ = writeln!(w, "![{y_desc}]({})\n", link(file));
    }
    Ok(())
}

/// Where the repository root is: two levels above this crate.
pub fn repo_root() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.canonicalize().unwrap_or(root)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_paths() {
        let now = utc_now();
        assert!(
            now.ends_with(" UTC") && now.len() == "2025-01-01 00:00 UTC".len(),
            "{now}"
        );
        assert!(now.as_str() > "2024");
        assert_eq!(
            relative(Path::new("/r"), Path::new("/r/docs/bench/a.svg")),
            "docs/bench/a.svg"
        );
        assert_eq!(ratio(3.0, Some(2.0)), "×1.50");
        assert_eq!(ratio(3.0, None), "–");
    }
}
