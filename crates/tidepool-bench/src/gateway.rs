//! The section on the HTTP query gateway end to end: `tidepool load`'s JSON
//! reports, stored beside the charts, of the same statement through the
//! gateway and through the library, beside the PostgreSQL suite's figure
//! for the library at the same client count.
//!
//! The two reports are made by hand (the section says how), because they
//! need a running server; this module only renders what they hold.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::Value;

use crate::postgres::PgResults;
use crate::report::Stamped;

/// The report of `tidepool load --url ... --json` through the gateway.
pub const GATEWAY_FILE: &str = "gateway-http.json";
/// The report of `tidepool load --config ... --json` on the same pool.
pub const LIBRARY_FILE: &str = "gateway-library.json";
/// What was measured, when, and on what: one Markdown paragraph, optional.
pub const NOTE_FILE: &str = "gateway-note.md";

fn read(dir: &Path, file: &str) -> Option<Value> {
    serde_json::from_str(&std::fs::read_to_string(dir.join(file)).ok()?).ok()
}

/// One table row from a `tidepool load` report; `None` if it has no run.
fn row(name: &str, report: &Value) -> Option<String> {
    let run = report.get("run")?;
    let l = &run["latency_ms"];
    let size = run["pool"]["max_size"]
        .as_u64()
        .map_or("?".into(), |s| s.to_string());
    Some(format!(
        "| {name} | {} | {size} | **{:.0}** | {:.3} | **{:.3}** | {:.3} | {} |",
        report["clients"],
        run["throughput"].as_f64()?,
        l["p50"].as_f64()?,
        l["p99"].as_f64()?,
        l["p999"].as_f64()?,
        run["errors"]
    ))
}

/// Writes the section, numbered `number`, if the reports are there.
pub fn section(
    w: &mut String,
    number: usize,
    charts_dir: &Path,
    postgres: Option<&Stamped<Result<PgResults, String>>>,
) {
    let (Some(http), Some(library)) = (
        read(charts_dir, GATEWAY_FILE),
        read(charts_dir, LIBRARY_FILE),
    ) else {
        return;
    };
    let _ = writeln!(w, "## {number}. The HTTP query gateway end to end\n");
    if let Ok(note) = std::fs::read_to_string(charts_dir.join(NOTE_FILE)) {
        let _ = writeln!(w, "{}\n", note.trim());
    }
    let sql = http["workload"][0]["sql"].as_str().unwrap_or("?");
    let _ = writeln!(
        w,
        "`{sql}` in a closed loop, measured by `tidepool load` (HDR histogram, latency in ms from \
         the start of a request to its end): through the gateway, each client with a session of \
         its own, `POST /api/v1/sessions/{{id}}/query` on a keep-alive connection, where each \
         request is a unit on a pooled connection (`BEGIN READ ONLY` with a snapshot mark, the \
         statement prepared and run, `ROLLBACK`, then a reset to a fresh session's state: \
         several round trips to the database where the library makes one, plus HTTP, JSON and \
         the tenant's checks); and through the library, the same pool settings in the same \
         process as the clients, the statement prepared once per connection. The reports are \
         `{GATEWAY_FILE}` and `{LIBRARY_FILE}` beside the charts.\n"
    );
    let _ = writeln!(
        w,
        "| path | clients | max_size | queries/s | p50 ms | p99 ms | p99.9 ms | errors |\n|---|---:|---:|---:|---:|---:|---:|---:|"
    );
    for (name, report) in [
        ("HTTP gateway (`tidepool load --url`)", &http),
        ("library (`tidepool load --config`)", &library),
    ] {
        if let Some(r) = row(name, report) {
            let _ = writeln!(w, "{r}");
        }
    }
    let clients = http["clients"]
        .as_u64()
        .and_then(|c| usize::try_from(c).ok());
    if let (Some(Ok(pg)), Some(clients)) = (postgres.map(|p| &p.data), clients)
        && let Some(r) = pg.row("tidepool-postgres", clients)
    {
        let p = |f: Option<crate::stats::Spread>| {
            f.map_or("n/a".into(), |s| format!("{:.3}", s.median / 1000.0))
        };
        let _ = writeln!(
            w,
            "| library, §4 above (prepared `SELECT 1`, median of repetitions) | {clients} | {} | **{:.0}** | {} | **{}** | n/a | {} |",
            crate::postgres::POOL_SIZE,
            r.spread(|f| f.qps).median,
            p(r.spread_of(|f| f.p50_us)),
            p(r.spread_of(|f| f.p99_us)),
            r.errors()
        );
    }
    let _ = writeln!(w);
}
