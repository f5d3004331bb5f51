//! `tidepool load` refuses bad flags, unknown pools, unreachable databases
//! and gateways, and broken workloads with messages that say what and
//! where, before any load starts.

mod common;

use std::path::{Path, PathBuf};

use common::{Ran, free_port, load_gateway, tidepool};

fn config(dir: &Path, toml: &str) -> PathBuf {
    let path = dir.join("tidepool.toml");
    std::fs::write(&path, toml).unwrap();
    path
}

fn sqlite(dir: &Path) -> PathBuf {
    config(
        dir,
        &format!(
            "[pools.demo]\nbackend = \"sqlite\"\npath = \"{}\"\n",
            dir.join("d.db").display()
        ),
    )
}

fn refused(ran: &Ran, code: i32, wanted: &[&str]) {
    assert_eq!(
        ran.status.code(),
        Some(code),
        "{}\n{}",
        ran.stdout,
        ran.stderr
    );
    for w in wanted {
        assert!(ran.stderr.contains(w), "wanted {w:?} in:\n{}", ran.stderr);
    }
    assert!(ran.stdout.is_empty(), "no report: {}", ran.stdout);
}

#[test]
fn bad_flags_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let c = sqlite(dir.path());
    let c = c.to_str().unwrap();
    let base = ["load", "--config", c, "--pool", "demo"];
    let run = |extra: &[&str]| {
        let mut args = base.to_vec();
        args.extend_from_slice(extra);
        tidepool(dir.path(), &args)
    };
    refused(
        &run(&["--clients", "0"]),
        2,
        &["--clients must be at least 1"],
    );
    refused(&run(&["--duration", "soon"]), 2, &["--duration", "soon"]);
    refused(&run(&["--rate=-3"]), 2, &["--rate must be"]);
    refused(
        &run(&["--sweep-sizes", "2,4"]),
        2,
        &["--sweep-sizes needs --rate"],
    );
    refused(
        &run(&["--requests", "9", "--duration", "1s"]),
        2,
        &["--requests", "--duration"],
    );
    refused(&run(&["--clients", "many"]), 2, &["--clients", "many"]);
    refused(
        &run(&["--sweep-sizes", "2,x", "--rate", "5"]),
        2,
        &["--sweep-sizes"],
    );
    refused(
        &tidepool(dir.path(), &["load", "--pool", "demo"]),
        2,
        &["--config"],
    );
    refused(
        &tidepool(
            dir.path(),
            &["load", "--url", "http://127.0.0.1:1", "--pool", "demo"],
        ),
        2,
        &["--token-file"],
    );
    let gateway = [
        "load",
        "--url",
        "http://127.0.0.1:1",
        "--token-file",
        "t",
        "--pool",
        "demo",
    ];
    for (flag, extra) in [
        ("--compare-unpooled", &["--compare-unpooled"][..]),
        (
            "--sweep-sizes",
            &["--sweep-sizes", "2,4", "--rate", "9"][..],
        ),
    ] {
        let mut args = gateway.to_vec();
        args.extend_from_slice(extra);
        refused(&tidepool(dir.path(), &args), 2, &[flag, "--url"]);
    }
    let mut args = gateway.to_vec();
    args[2] = "https://127.0.0.1:1";
    refused(&tidepool(dir.path(), &args), 2, &["plain-HTTP"]);
}

#[test]
fn an_unknown_pool_lists_the_configured_ones() {
    let dir = tempfile::tempdir().unwrap();
    let c = sqlite(dir.path());
    let ran = tidepool(
        dir.path(),
        &["load", "--config", c.to_str().unwrap(), "--pool", "nope"],
    );
    refused(&ran, 2, &["no pool `nope`; the file configures: demo"]);
    let missing = dir.path().join("missing.toml");
    let ran = tidepool(
        dir.path(),
        &[
            "load",
            "--config",
            missing.to_str().unwrap(),
            "--pool",
            "demo",
        ],
    );
    refused(&ran, 2, &["missing.toml", "cannot read the file"]);
}

#[test]
fn an_unreachable_database_is_said_without_its_password() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let c = config(
        dir.path(),
        &format!(
            "[pools.main]\nbackend = \"postgres\"\nurl = \"postgres://app:s3cret-pw@127.0.0.1:{port}/db\"\ncreate_timeout = \"3s\"\n"
        ),
    );
    let ran = tidepool(
        dir.path(),
        &["load", "--config", c.to_str().unwrap(), "--pool", "main"],
    );
    refused(&ran, 1, &["pool `main`: cannot connect to the database"]);
    assert!(!ran.stderr.contains("s3cret-pw"), "{}", ran.stderr);
}

#[test]
fn an_unreachable_gateway_is_said() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "some-token\n").unwrap();
    let url = format!("http://127.0.0.1:{}", free_port());
    let ran = load_gateway(dir.path(), &url, &token, "demo");
    refused(&ran, 1, &["cannot reach the gateway at http://127.0.0.1:"]);
    assert!(!ran.stderr.contains("some-token"), "{}", ran.stderr);
    let empty = dir.path().join("empty");
    std::fs::write(&empty, "\n").unwrap();
    let ran = load_gateway(dir.path(), &url, &empty, "demo");
    refused(&ran, 2, &["first line is empty"]);
}

#[test]
fn a_broken_workload_or_statement_is_named_before_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let c = sqlite(dir.path());
    let w = dir.path().join("w.toml");
    let with = |workload: &str| {
        std::fs::write(&w, workload).unwrap();
        let (c, w) = (c.to_str().unwrap(), w.to_str().unwrap());
        tidepool(
            dir.path(),
            &["load", "--config", c, "--pool", "demo", "--workload", w],
        )
    };
    let ran = with("[[statement]]\nsql = \"SELECT ?1\"\nparams = [{ int = [3] }]\n");
    refused(
        &ran,
        2,
        &["w.toml: `statement 1`: parameter 1: `int` takes [lo, hi]"],
    );
    let ran = with("[[statement]]\nname = \"two\"\nsql = \"SELECT ?1, ?2\"\nparams = [1]\n");
    refused(&ran, 2, &["`two` takes 2 parameter(s) but 1 are given"]);
    let c = c.to_str().unwrap();
    let ran = tidepool(
        dir.path(),
        &["load", "--config", c, "--pool", "demo", "--sql", "SELEC 1"],
    );
    refused(
        &ran,
        2,
        &["`sql` cannot run on pool `demo`", "syntax error"],
    );
}
