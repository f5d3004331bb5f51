//! Records, for the report, the exact versions this binary was built with:
//! rustc's, and every benchmarked crate's as resolved in the workspace's
//! Cargo.lock.

use std::path::PathBuf;
use std::process::Command;

/// The crates whose resolved versions the report names.
const CRATES: &[&str] = &[
    "tidepool",
    "tidepool-postgres",
    "tidepool-http",
    "deadpool",
    "bb8",
    "qp",
    "mobc",
    "r2d2",
    "deadpool-postgres",
    "bb8-postgres",
    "sqlx",
    "tokio-postgres",
    "tokio",
    "criterion",
    "plotters",
    "tracking-allocator",
];

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let lock = manifest.join("../../Cargo.lock");
    println!("cargo:rerun-if-changed={}", lock.display());
    println!("cargo:rerun-if-changed=build.rs");

    let text = std::fs::read_to_string(&lock).unwrap_or_default();
    let mut found = Vec::new();
    let mut name: Option<String> = None;
    for line in text.lines() {
        let line = line.trim();
        if line == "[[package]]" {
            name = None;
        } else if let Some(v) = line.strip_prefix("name = ") {
            name = Some(v.trim_matches('"').to_owned());
        } else if let Some(v) = line.strip_prefix("version = ")
            && let Some(n) = name.take()
            && CRATES.contains(&n.as_str())
        {
            found.push(format!("{n}={}", v.trim_matches('"')));
        }
    }
    println!(
        "cargo:rustc-env=TIDEPOOL_BENCH_VERSIONS={}",
        found.join(";")
    );

    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let version = Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=TIDEPOOL_BENCH_RUSTC={version}");
}
