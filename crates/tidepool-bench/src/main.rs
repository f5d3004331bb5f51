//! The benchmark runner: runs the suites and writes BENCHMARKS.md and the
//! charts. `tidepool-bench --help` for the options.

#![allow(clippy::print_stdout)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use tidepool_bench::fairness::{self, FairnessConfig};
use tidepool_bench::machine::Machine;
use tidepool_bench::matrix::{self, MatrixConfig};
use tidepool_bench::postgres::{self, PgConfig, PgTarget};
use tidepool_bench::report::{self, Results, Stamped};
use tidepool_bench::scale::{self, ScaleConfig};
use tidepool_bench::uncontended::{self, UncontendedConfig};

/// Counts heap bytes for the scale suite inside `memory::counting`;
/// otherwise only checks a flag before and after the system allocator.
#[global_allocator]
static ALLOCATOR: tracking_allocator::Allocator<std::alloc::System> =
    tracking_allocator::Allocator::system();

const USAGE: &str = "\
Runs tidepool's benchmark suite and writes BENCHMARKS.md with charts.

usage: cargo run --release -p tidepool-bench -- [options]

options:
  --quick             short runs (a few minutes in all) to check the pipeline;
                      the numbers are labelled as quick in the report
  --suite NAMES       run only these suites, comma-separated or repeated:
                      matrix, uncontended, fairness, postgres, scale
                      (default: all);
                      the others keep their stored results
  --only NAMES        run only these contenders (comma-separated names as in
                      the report: tidepool,qp or tidepool-postgres,pgbench...);
                      the suites run replace their stored results, so use
                      --out/--charts elsewhere to keep the full report
  --render            run nothing: rewrite the report and charts from the
                      stored results
  --out FILE          the report (default: BENCHMARKS.md at the repository root)
  --charts DIR        charts and results.json (default: docs/bench at the root)
  -h, --help          this text

PostgreSQL is found through TIDEPOOL_PG_ADDR (host:port) or PGHOST, PGPORT,
PGUSER, PGDATABASE (default 127.0.0.1:5432, user postgres, database test).
";

const SUITES: [&str; 5] = ["matrix", "uncontended", "fairness", "postgres", "scale"];

struct Args {
    quick: bool,
    render_only: bool,
    suites: Vec<String>,
    only: Option<Vec<String>>,
    out: PathBuf,
    charts: PathBuf,
}

fn parse_args() -> Result<Option<Args>, String> {
    let root = report::repo_root();
    let mut args = Args {
        quick: false,
        render_only: false,
        suites: Vec::new(),
        only: None,
        out: root.join("BENCHMARKS.md"),
        charts: root.join("docs/bench"),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(None),
            "--quick" => args.quick = true,
            "--render" => args.render_only = true,
            "--suite" => {
                for name in value("--suite")?.split(',').filter(|s| !s.is_empty()) {
                    if !SUITES.contains(&name) {
                        return Err(format!(
                            "unknown suite {name:?} (expected one of {})",
                            SUITES.join(", ")
                        ));
                    }
                    args.suites.push(name.to_owned());
                }
            }
            "--only" => {
                let names = value("--only")?;
                args.only.get_or_insert_with(Vec::new).extend(
                    names
                        .split(',')
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned),
                );
            }
            "--out" => args.out = PathBuf::from(value("--out")?),
            "--charts" => args.charts = PathBuf::from(value("--charts")?),
            other => return Err(format!("unknown argument {other:?}\n\n{USAGE}")),
        }
    }
    if args.render_only {
        args.suites.clear();
    } else if args.suites.is_empty() {
        args.suites = SUITES.iter().map(|s| (*s).to_owned()).collect();
    }
    Ok(Some(args))
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(Some(args)) => args,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let started = Instant::now();
    let mut progress = |line: &str| {
        eprintln!("[{:>6.1}s] {line}", started.elapsed().as_secs_f64());
    };
    let results_path = args.charts.join("results.json");
    let mut results = Results::load(&results_path);
    let machine = Machine::detect();
    let mode = if args.quick { "quick" } else { "full" };
    if args.render_only {
        progress(&format!(
            "rewriting the report from {}",
            results_path.display()
        ));
    } else {
        progress(&format!(
            "{mode} run of {} on {} ({} cores), load average {}",
            args.suites.join(", "),
            machine.cpu,
            machine.cores,
            machine.load_average
        ));
    }
    if !args.render_only {
        results.command = command_line(args);
        results.machine = Some(machine);
    }
    let begin = || Stamped::<()>::begin(mode);
    let wants = |s: &str| args.suites.iter().any(|x| x == s);

    if wants("matrix") {
        let mut cfg = if args.quick {
            MatrixConfig::quick()
        } else {
            MatrixConfig::full()
        };
        cfg.only.clone_from(&args.only);
        let stamped = begin();
        let data = matrix::run(&rt, &cfg, &mut progress);
        results.matrix = Some(stamped.with(data));
    }
    if wants("uncontended") {
        let mut cfg = if args.quick {
            UncontendedConfig::quick()
        } else {
            UncontendedConfig::full()
        };
        cfg.only.clone_from(&args.only);
        let stamped = begin();
        let data = uncontended::run(&rt, &cfg, &mut progress);
        results.uncontended = Some(stamped.with(data));
    }
    if wants("fairness") {
        let mut cfg = if args.quick {
            FairnessConfig::quick()
        } else {
            FairnessConfig::full()
        };
        cfg.only.clone_from(&args.only);
        let stamped = begin();
        let data = fairness::run(&rt, &cfg, &mut progress);
        results.fairness = Some(stamped.with(data));
    }
    if wants("postgres") {
        let mut cfg = if args.quick {
            PgConfig::quick()
        } else {
            PgConfig::full()
        };
        cfg.only.clone_from(&args.only);
        let stamped = begin();
        let data = postgres::run(&rt, &PgTarget::from_env(), &cfg, &mut progress)
            .map_err(|e| e.to_string());
        if let Err(why) = &data {
            progress(&format!("postgres suite not run: {why}"));
        }
        results.postgres = Some(stamped.with(data));
    }
    if wants("scale") {
        let mut cfg = if args.quick {
            ScaleConfig::quick()
        } else {
            ScaleConfig::full()
        };
        cfg.only.clone_from(&args.only);
        if !tidepool_bench::memory::install() {
            progress("heap bytes cannot be counted: the memory figures are left out");
        }
        let stamped = begin();
        let data = scale::run(&rt, &cfg, &mut progress);
        results.scale = Some(stamped.with(data));
    }
    drop(rt);

    std::fs::create_dir_all(&args.charts)?;
    results.save(&results_path)?;
    let out_dir = args
        .out
        .parent()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    let out_dir = out_dir.canonicalize().unwrap_or(out_dir);
    let charts = args.charts.canonicalize().unwrap_or(args.charts.clone());
    let md = report::render(&results, &out_dir, &charts).map_err(|e| e.to_string())?;
    std::fs::write(&args.out, md)?;
    progress(&format!(
        "wrote {} and charts in {}",
        args.out.display(),
        args.charts.display()
    ));
    Ok(())
}

/// The command that reproduces this run, for the report.
fn command_line(args: &Args) -> String {
    let mut cmd = "cargo run --release -p tidepool-bench --".to_owned();
    if args.quick {
        cmd.push_str(" --quick");
    }
    if args.suites.len() < SUITES.len() {
        cmd.push_str(" --suite ");
        cmd.push_str(&args.suites.join(","));
    }
    if let Some(only) = &args.only {
        cmd.push_str(" --only ");
        cmd.push_str(&only.join(","));
    }
    cmd
}
