//! `tidepool load` against the local PostgreSQL (127.0.0.1:5432, user
//! postgres, database test): short runs whose report is checked against
//! the pool's own counters, including errors and acquire timeouts.

mod common;

use std::path::{Path, PathBuf};

use common::{consistent, count as u, errors_of as kind, load_json};
use serde_json::Value;

/// A configuration with pool `main` on the local PostgreSQL; `None` (test
/// skipped) when it is absent.
fn pg(dir: &Path, settings: &str) -> Option<PathBuf> {
    let addr = tidepool_testkit::service("PostgreSQL", "TIDEPOOL_PG_ADDR", "127.0.0.1:5432")?;
    let config = dir.join("tidepool.toml");
    std::fs::write(
        &config,
        format!(
            "[pools.main]\nbackend = \"postgres\"\nurl = \"postgres://postgres@{addr}/test?application_name=tidepool-load-test\"\n{settings}\n"
        ),
    )
    .unwrap();
    Some(config)
}

fn load(dir: &Path, config: &Path, extra: &[&str]) -> (String, Value) {
    let mut args = vec!["--config", config.to_str().unwrap(), "--pool", "main"];
    args.extend_from_slice(extra);
    let (ran, out) = load_json(dir, &args);
    for run in [&out["run"], &out["unpooled"]] {
        if run.is_object() {
            consistent(run);
        }
    }
    for step in out["sweep"]["steps"].as_array().into_iter().flatten() {
        consistent(step);
    }
    (ran.stdout, out)
}

#[test]
fn sql_errors_are_counted_once_by_sqlstate() {
    let dir = tempfile::tempdir().unwrap();
    let Some(config) = pg(dir.path(), "max_size = 4") else {
        return;
    };
    let w = dir.path().join("w.toml");
    std::fs::write(
        &w,
        r#"
[[statement]]
name = "add"
weight = 4
sql = "SELECT $1::int + 1"
params = [{ int = [1, 1000] }]

[[statement]]
name = "divide_by_zero"
sql = "SELECT 1 / ($1::int - $1::int)"
params = [{ int = [1, 9] }]
"#,
    )
    .unwrap();
    let (stdout, out) = load(
        dir.path(),
        &config,
        &[
            "--workload",
            w.to_str().unwrap(),
            "--requests",
            "500",
            "--clients",
            "8",
        ],
    );
    let run = &out["run"];
    assert_eq!(out["backend"], "postgres");
    assert_eq!(u(&run["requests"]), 500);
    let errors = u(&run["errors"]);
    assert_eq!(kind(run, "sql 22012"), errors, "{run}");
    assert!(errors > 30 && errors < 200, "about one in five: {errors}");
    assert_eq!(u(&run["ok"]) + errors, 500);
    let c = &run["pool"]["counters"];
    assert_eq!(u(&c["gets"]), 500, "requests = the pool's gets");
    assert_eq!(u(&c["timeouts"]), 0);
    assert!(u(&c["created"]) <= 4, "{c}");
    assert!(stdout.contains("sql 22012"), "{stdout}");
    assert!(stdout.contains("division by zero"), "{stdout}");
}

#[test]
fn acquire_timeouts_are_the_pools_timeouts() {
    let dir = tempfile::tempdir().unwrap();
    let Some(config) = pg(dir.path(), "max_size = 1\nacquire_timeout = \"30ms\"") else {
        return;
    };
    // One connection, four clients, each holding it 50 ms: most gets time
    // out after 30 ms in the queue.
    let (stdout, out) = load(
        dir.path(),
        &config,
        &[
            "--sql",
            "SELECT pg_sleep(0.05)",
            "--requests",
            "40",
            "--clients",
            "4",
        ],
    );
    let run = &out["run"];
    let c = &run["pool"]["counters"];
    let timeouts = kind(run, "acquire timeout");
    assert!(timeouts > 0, "{run}");
    assert_eq!(timeouts, u(&c["timeouts"]), "{c}");
    assert_eq!(u(&run["requests"]), 40);
    assert_eq!(u(&c["gets"]), 40);
    assert_eq!(
        u(&run["ok"]),
        u(&c["checkouts"]) - u(&c["checkout_rejections"])
    );
    assert_eq!(u(&run["errors"]), timeouts, "no other failure: {run}");
    assert!(stdout.contains("acquire timeout"), "{stdout}");
}

#[test]
fn pooled_beside_a_connection_per_request() {
    let dir = tempfile::tempdir().unwrap();
    let Some(config) = pg(dir.path(), "max_size = 4") else {
        return;
    };
    let (stdout, out) = load(
        dir.path(),
        &config,
        &["--requests", "120", "--clients", "4", "--compare-unpooled"],
    );
    let (pooled, unpooled) = (&out["run"], &out["unpooled"]);
    assert_eq!(u(&pooled["requests"]), 120);
    assert_eq!(u(&unpooled["requests"]), 120);
    assert_eq!(
        (u(&pooled["errors"]), u(&unpooled["errors"])),
        (0, 0),
        "{out}"
    );
    assert!(u(&pooled["pool"]["counters"]["created"]) <= 4);
    assert!(stdout.contains("| connections opened | "), "{stdout}");
    assert!(stdout.contains("× the throughput"), "{stdout}");
}

#[test]
fn a_sweep_of_sizes_against_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let Some(config) = pg(dir.path(), "") else {
        return;
    };
    let (stdout, out) = load(
        dir.path(),
        &config,
        &[
            "--sweep-sizes",
            "1,2,4",
            "--rate",
            "200",
            "--duration",
            "1s",
            "--sql",
            "SELECT pg_sleep(0.004)",
        ],
    );
    let steps = out["sweep"]["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 3);
    for s in steps {
        assert_eq!(
            u(&s["requests"]),
            u(&s["pool"]["counters"]["gets"]),
            "requests = gets at max_size {}",
            s["pool"]["max_size"]
        );
    }
    let f = &out["sweep"]["findings"];
    assert_eq!(f["advice_from_size"], 4, "{f}");
    assert!(f["advice"]["recommended_max_size"].is_u64(), "{f}");
    assert!(f["advice"]["littles_law_size"].is_u64(), "{f}");
    assert!(
        stdout.contains("throughput stops growing at max_size"),
        "{stdout}"
    );
}

#[test]
fn requests_still_running_at_the_drain_timeout_are_cancelled_once() {
    let dir = tempfile::tempdir().unwrap();
    let Some(config) = pg(dir.path(), "max_size = 2") else {
        return;
    };
    // Two clients start a 30 s statement each; the run ends after 500 ms and
    // waits 300 ms more for them, then abandons both.
    let started = std::time::Instant::now();
    let (stdout, out) = load(
        dir.path(),
        &config,
        &[
            "--sql",
            "SELECT pg_sleep(30)",
            "--clients",
            "2",
            "--duration",
            "500ms",
            "--drain-timeout",
            "300ms",
        ],
    );
    // Generous: far below the statement's 30 s.
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    let run = &out["run"];
    assert_eq!(u(&run["requests"]), 2, "{run}");
    assert_eq!(kind(run, "cancelled at stop"), 2, "{run}");
    assert_eq!(u(&run["pool"]["counters"]["gets"]), 2);
    assert!(stdout.contains("cancelled at stop"), "{stdout}");
}
