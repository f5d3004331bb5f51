//! `tidepool load` against the SQLite demo database: the real binary, short
//! runs, and the report's numbers checked against the pool's own counters.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Ran, consistent, count as u, load_json};
use serde_json::Value;

/// A directory with the demo database and a configuration serving it as
/// pool `demo` (`max_size` 4).
fn demo() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("demo.db");
    let conn = tidepool_sqlite::rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(tidepool_server::sample::SAMPLE_SQL)
        .unwrap();
    drop(conn);
    let config = dir.path().join("tidepool.toml");
    std::fs::write(
        &config,
        format!(
            "[pools.demo]\nbackend = \"sqlite\"\npath = \"{}\"\nmax_size = 4\n",
            db.display()
        ),
    )
    .unwrap();
    (dir, config)
}

/// `load --config CONFIG --pool demo EXTRA...`
fn demo_args<'a>(config: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "load",
        "--config",
        config.to_str().unwrap(),
        "--pool",
        "demo",
    ];
    args.extend_from_slice(extra);
    args
}

fn load(dir: &Path, config: &Path, extra: &[&str]) -> (Ran, Value) {
    load_json(dir, &demo_args(config, extra)[1..])
}

const MIXED: &str = r#"
[[statement]]
name = "by_id"
weight = 3
sql = "SELECT name, salary FROM employees WHERE id = ?1"
params = [{ int = [1, 6] }]

[[statement]]
name = "overflow"
sql = "SELECT abs(?1)"
params = [-9223372036854775808]
"#;

#[test]
fn a_closed_loop_reports_what_the_pool_counted() {
    let (dir, config) = demo();
    let workload = dir.path().join("mixed.toml");
    std::fs::write(&workload, MIXED).unwrap();
    let (ran, out) = load(
        dir.path(),
        &config,
        &[
            "--workload",
            workload.to_str().unwrap(),
            "--requests",
            "400",
            "--clients",
            "4",
        ],
    );
    let run = &out["run"];
    consistent(run);
    assert_eq!(u(&run["requests"]), 400);
    assert_eq!(out["backend"], "sqlite");
    assert_eq!(out["requests_limit"], 400);
    // About one in four requests overflows, each counted once under its kind.
    let errors = u(&run["errors"]);
    assert!(errors > 20 && errors < 200, "{run}");
    let kinds = run["errors_by_kind"].as_array().unwrap();
    assert_eq!(kinds.len(), 1, "{kinds:?}");
    assert_eq!(kinds[0]["kind"], "sql error");
    assert!(kinds[0]["example"].as_str().unwrap().contains("overflow"));
    let by: Vec<(&str, u64)> = run["by_statement"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["name"].as_str().unwrap(), u(&s["errors"])))
        .collect();
    assert_eq!(by, [("by_id", 0), ("overflow", errors)]);
    assert!(ran.stdout.contains("by statement"), "{}", ran.stdout);
    let pool = &run["pool"];
    assert_eq!(pool["max_size"], 4);
    assert!(u(&pool["counters"]["created"]) <= 4);
    assert!(ran.stdout.contains("requests     400 ("), "{}", ran.stdout);
    assert!(ran.stdout.contains("errors by kind"), "{}", ran.stdout);
    assert!(ran.stdout.contains("acquire wait"), "{}", ran.stdout);
    assert!(ran.stdout.contains("Little's law needs"), "{}", ran.stdout);
    assert!(
        !ran.stderr.contains("req/s"),
        "no progress display when stderr is not a terminal:\n{}",
        ran.stderr
    );
}

#[test]
fn an_open_loop_measures_from_the_intended_start() {
    let (dir, config) = demo();
    let (ran, out) = load(
        dir.path(),
        &config,
        &["--rate", "200", "--duration", "2s", "--clients", "4"],
    );
    let run = &out["run"];
    consistent(run);
    assert_eq!(out["rate"], 200.0);
    let requests = u(&run["requests"]);
    assert!(
        requests > 0 && requests <= 400,
        "at most the schedule: {requests}"
    );
    // Each request's service time is part of its latency, so every
    // percentile of one is at most the other's.
    for k in ["p50", "p90", "p99", "max"] {
        let (s, l) = (
            run["service_ms"][k].as_f64().unwrap(),
            run["latency_ms"][k].as_f64().unwrap(),
        );
        assert!(s <= l, "{k}: service {s} > latency {l}");
    }
    assert!(run["late_starts"].is_u64());
    assert!(ran.stdout.contains("from each request's intended start"));
}

#[test]
fn compare_unpooled_runs_the_same_workload_on_new_connections() {
    let (dir, config) = demo();
    let svg = dir.path().join("compare.svg");
    let (ran, out) = load(
        dir.path(),
        &config,
        &[
            "--requests",
            "150",
            "--clients",
            "3",
            "--compare-unpooled",
            "--sql",
            "SELECT count(*) FROM scores",
            "--svg",
            svg.to_str().unwrap(),
        ],
    );
    consistent(&out["run"]);
    let unpooled = &out["unpooled"];
    consistent(unpooled);
    assert_eq!(u(&unpooled["requests"]), 150);
    assert_eq!(u(&unpooled["errors"]), 0, "{unpooled}");
    assert!(unpooled["pool"].is_null());
    assert!(
        ran.stdout.contains("| connections opened | ")
            && ran
                .stdout
                .contains("| pooled | new connection per request |"),
        "{}",
        ran.stdout
    );
    let chart = std::fs::read_to_string(&svg).unwrap();
    assert!(
        chart.starts_with("<svg") && chart.contains("unpooled p99"),
        "{chart}"
    );
}

#[test]
fn a_sweep_runs_each_size_and_compares_with_the_advice() {
    let (dir, config) = demo();
    let svg = dir.path().join("sweep.svg");
    let (ran, out) = load(
        dir.path(),
        &config,
        &[
            "--sweep-sizes",
            "2,1",
            "--rate",
            "100",
            "--duration",
            "1s",
            "--clients",
            "8",
            "--svg",
            svg.to_str().unwrap(),
        ],
    );
    let sweep = &out["sweep"];
    let steps = sweep["steps"].as_array().unwrap();
    let sizes: Vec<u64> = steps.iter().map(|s| u(&s["pool"]["max_size"])).collect();
    assert_eq!(sizes, [1, 2], "ascending, each in a pool of its own");
    for s in steps {
        consistent(s);
    }
    let f = &sweep["findings"];
    assert!(
        ["agree", "close", "disagree", "unknown"].contains(&f["agreement"].as_str().unwrap()),
        "{f}"
    );
    assert!(f["advice_from_size"] == 2, "{f}");
    assert!(
        ran.stdout.contains("| max_size | throughput req/s |"),
        "{}",
        ran.stdout
    );
    assert!(ran.stdout.contains("the pool's advice"), "{}", ran.stdout);
    let chart = std::fs::read_to_string(&svg).unwrap();
    assert!(chart.contains("throughput per pool size"), "{chart}");
}

#[test]
fn ctrl_c_stops_early_and_still_reports() {
    let (dir, config) = demo();
    let json = dir.path().join("out.json");
    let mut child = Command::new(env!("CARGO_BIN_EXE_tidepool"))
        .args(demo_args(
            &config,
            &["--duration", "5m", "--json", json.to_str().unwrap()],
        ))
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    // Generous: the run must end long before its five minutes.
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "still running after Ctrl-C");
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("stopped early by Ctrl-C"), "{stdout}");
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let run = &report["run"];
    assert_eq!(run["interrupted"], true);
    assert!(u(&run["requests"]) > 0);
    consistent(run);
}

#[test]
fn progress_is_drawn_on_a_terminal_and_nowhere_else() {
    let (dir, config) = demo();
    let args = demo_args(&config, &["--duration", "2s", "--clients", "2"]);
    // Piped: two ticks pass, and nothing but the report is written.
    let piped = common::tidepool(dir.path(), &args);
    assert!(piped.status.success(), "{}", piped.stderr);
    assert!(!piped.stderr.contains("req/s"), "{}", piped.stderr);
    assert!(!piped.stdout.contains("left]"), "{}", piped.stdout);
    // On a terminal (util-linux `script` gives the command a pty).
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipped the terminal half: `script` (util-linux) is not installed");
        return;
    }
    let line = format!("{} {}", env!("CARGO_BIN_EXE_tidepool"), args.join(" "));
    let out = Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{screen}");
    assert!(
        screen.contains("elapsed, ") && screen.contains("req/s  p50"),
        "no progress line on a terminal:\n{screen}"
    );
    assert!(screen.contains("/4 in use"), "the pool's gauges:\n{screen}");
    assert!(
        screen.contains("throughput"),
        "the report follows:\n{screen}"
    );
}
