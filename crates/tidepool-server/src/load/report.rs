//! The text report: one run, pooled beside unpooled, or a sweep.

use std::fmt::Write as _;

use super::summary::{PoolReport, RunReport};
use super::sweep::SweepReport;

/// A figure with about three significant digits.
fn f(v: f64) -> String {
    tidepool_chart::short_number(v)
}

/// One run in full.
pub fn run(out: &mut String, r: &RunReport) {
    let _ = writeln!(
        out,
        "requests     {} ({} ok, {} failed) in {:.2} s{}",
        r.requests,
        r.ok,
        r.errors,
        r.elapsed_s,
        if r.interrupted {
            "  (stopped early by Ctrl-C)"
        } else {
            ""
        }
    );
    let _ = writeln!(out, "throughput   {:.1} requests/s", r.throughput);
    let l = &r.latency_ms;
    let from = if r.service_ms.is_some() {
        " (from each request's intended start)"
    } else {
        ""
    };
    let _ = writeln!(
        out,
        "latency ms   p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  mean {}{from}",
        f(l.p50),
        f(l.p90),
        f(l.p99),
        f(l.p999),
        f(l.max),
        f(l.mean)
    );
    if let Some(s) = &r.service_ms {
        let _ = writeln!(
            out,
            "service ms   p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  (from each request's real start)",
            f(s.p50),
            f(s.p90),
            f(s.p99),
            f(s.p999),
            f(s.max)
        );
    }
    if let Some(late) = r.late_starts {
        let _ = writeln!(
            out,
            "late starts  {late} request(s) started over 2 ms behind schedule (every client busy, or the machine slow to wake one)"
        );
    }
    if r.by_statement.len() > 1 {
        let _ = writeln!(out, "by statement");
        for s in &r.by_statement {
            let _ = writeln!(
                out,
                "  {:<20} {:>8} requests  {:>6} failed  p50 {}  p99 {}  max {}",
                s.name,
                s.requests,
                s.errors,
                f(s.latency_ms.p50),
                f(s.latency_ms.p99),
                f(s.latency_ms.max)
            );
        }
    }
    if r.errors_by_kind.is_empty() {
        let _ = writeln!(out, "errors       none");
    } else {
        let _ = writeln!(out, "errors by kind");
        for e in &r.errors_by_kind {
            let _ = writeln!(out, "  {:>8}  {:<20} e.g. {}", e.count, e.kind, e.example);
        }
    }
    if let Some(p) = &r.pool {
        pool(out, p);
    }
}

/// The pool's own statistics.
pub fn pool(out: &mut String, p: &PoolReport) {
    let c = &p.counters;
    let _ = writeln!(out, "pool         {}", p.source);
    let _ = writeln!(
        out,
        "  max_size {}, min_idle {}; gets {}  hits {}  misses {}  waited {}  creates {}  timeouts {}  connect failures {}",
        p.max_size,
        p.min_idle,
        c.gets,
        c.hits,
        c.misses,
        c.waited,
        c.created,
        c.timeouts,
        c.connect_failures
    );
    for (name, s) in [
        ("acquire wait", &p.acquire_ms),
        ("hold", &p.hold_ms),
        ("connect", &p.create_ms),
    ] {
        let _ = writeln!(
            out,
            "  {name:<13} ms  p50 {}  p99 {}  max {}  mean {}  ({} measured)",
            f(s.p50),
            f(s.p99),
            f(s.max),
            f(s.mean),
            s.count
        );
    }
    if let Some(z) = p.sizing() {
        let _ = writeln!(
            out,
            "  advice        Little's law needs {:.1} connection(s) ({} with {:.0}% headroom); at the peak {} in use or waiting; recommended max_size {} ({})",
            z.needed,
            z.littles_law_size(),
            (z.headroom - 1.0) * 100.0,
            z.peak_demand,
            z.recommended,
            z.verdict
        );
    }
    if let Some(recs) = p
        .advice
        .as_ref()
        .and_then(|a| a.get("recommendations"))
        .and_then(|r| r.as_array())
    {
        for m in recs.iter().filter_map(|r| r.get("message")?.as_str()) {
            let _ = writeln!(out, "                {m}");
        }
    }
}

/// Pooled and unpooled side by side.
pub fn compare(out: &mut String, pooled: &RunReport, unpooled: &RunReport) {
    type Figure = fn(&RunReport) -> String;
    let rows: [(&str, Figure); 10] = [
        ("requests", |r| r.requests.to_string()),
        ("throughput req/s", |r| format!("{:.1}", r.throughput)),
        ("p50 ms", |r| f(r.latency_ms.p50)),
        ("p90 ms", |r| f(r.latency_ms.p90)),
        ("p99 ms", |r| f(r.latency_ms.p99)),
        ("p99.9 ms", |r| f(r.latency_ms.p999)),
        ("max ms", |r| f(r.latency_ms.max)),
        ("mean ms", |r| f(r.latency_ms.mean)),
        ("errors", |r| r.errors.to_string()),
        ("connections opened", |r| match &r.pool {
            Some(p) => p.counters.created.to_string(),
            None => r.requests.to_string(),
        }),
    ];
    let _ = writeln!(out, "| | pooled | new connection per request |");
    let _ = writeln!(out, "|---|---:|---:|");
    for (name, figure) in rows {
        let _ = writeln!(
            out,
            "| {name} | {} | {} |",
            figure(pooled),
            figure(unpooled)
        );
    }
    if unpooled.throughput > 0.0 && pooled.latency_ms.mean > 0.0 {
        let _ = writeln!(
            out,
            "\npooled: {:.1} × the throughput, {:.1} × lower mean latency, {:.1} × lower p99",
            pooled.throughput / unpooled.throughput,
            unpooled.latency_ms.mean / pooled.latency_ms.mean,
            unpooled.latency_ms.p99 / pooled.latency_ms.p99.max(1e-9)
        );
    }
}

/// A sweep: one row per size, then the findings.
pub fn sweep(out: &mut String, s: &SweepReport) {
    let _ = writeln!(
        out,
        "| max_size | throughput req/s | p50 ms | p90 ms | p99 ms | max ms | errors | acquire p99 ms | late starts | Little's law needs (+headroom) | peak demand | pool recommends |"
    );
    let _ = writeln!(
        out,
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for r in &s.steps {
        let (size, acquire, advice) = match &r.pool {
            Some(p) => (
                p.max_size.to_string(),
                f(p.acquire_ms.p99),
                p.sizing()
                    .map(|z| {
                        format!(
                            "{:.1} ({}) | {} | {} ({})",
                            z.needed,
                            z.littles_law_size(),
                            z.peak_demand,
                            z.recommended,
                            z.verdict
                        )
                    })
                    .unwrap_or_else(|| " | | ".to_owned()),
            ),
            None => (r.label.clone(), String::new(), " | | ".to_owned()),
        };
        let _ = writeln!(
            out,
            "| {size} | {:.1} | {} | {} | {} | {} | {} | {acquire} | {} | {advice} |",
            r.throughput,
            f(r.latency_ms.p50),
            f(r.latency_ms.p90),
            f(r.latency_ms.p99),
            f(r.latency_ms.max),
            r.errors,
            r.late_starts.unwrap_or(0)
        );
    }
    let k = &s.findings;
    let show = |v: Option<usize>| v.map_or_else(|| "—".to_owned(), |v| v.to_string());
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "throughput stops growing at max_size {}; p90 flattens at {}{}",
        show(k.throughput_stops_growing_at),
        show(k.latency_flattens_at),
        k.latency_rises_again_at
            .map(|s| format!("; p90 rises again from {s}"))
            .unwrap_or_default()
    );
    if let (Some(a), Some(from)) = (&k.advice, k.advice_from_size) {
        let _ = writeln!(
            out,
            "the pool's advice after the max_size {from} run: Little's law needs {:.1}, {} with headroom (on this grid {}); it recommends max_size {} to cover the peak of {} in use or waiting (on this grid {})",
            a.littles_law_connections,
            a.littles_law_size,
            a.littles_law_on_grid,
            a.recommended_max_size,
            a.peak_demand,
            a.recommended_on_grid
        );
    }
    let _ = writeln!(out, "{}", k.summary);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::summary::{Percentiles, PoolCounters, PoolLatency};
    use crate::load::sweep::{Step, analyse};

    fn run(label: &str, pool: Option<PoolReport>) -> RunReport {
        RunReport {
            label: label.into(),
            requests: 10,
            ok: 10,
            errors: 0,
            errors_by_kind: Vec::new(),
            by_statement: Vec::new(),
            elapsed_s: 1.0,
            throughput: 10.0,
            latency_ms: Percentiles {
                count: 10,
                mean: 1.0,
                p50: 1.0,
                p90: 2.0,
                p99: 3.0,
                p999: 4.0,
                max: 5.0,
            },
            service_ms: None,
            late_starts: Some(0),
            interrupted: false,
            pool,
            timeline: Vec::new(),
        }
    }

    /// Every row of a Markdown table has as many cells as its header.
    fn same_width(text: &str) {
        let widths: Vec<usize> = text
            .lines()
            .filter(|l| l.starts_with('|'))
            .map(|l| l.matches('|').count())
            .collect();
        assert!(widths.len() > 2, "{text}");
        assert!(
            widths.windows(2).all(|w| w[0] == w[1]),
            "{widths:?}\n{text}"
        );
    }

    #[test]
    fn tables_have_a_cell_for_every_column() {
        let advice = serde_json::json!({"recommendations": [], "sizing": {
            "connections_needed": 1.5, "headroom": 1.25, "peak_demand": 3,
            "recommended_max_size": 3, "verdict": "right_sized"}});
        let pool = PoolReport {
            source: "test".into(),
            max_size: 4,
            min_idle: 0,
            counters: PoolCounters::default(),
            acquire_ms: PoolLatency::default(),
            hold_ms: PoolLatency::default(),
            create_ms: PoolLatency::default(),
            advice: Some(advice),
        };
        let step = Step {
            size: 4,
            throughput: 10.0,
            p90_ms: 2.0,
        };
        let sweep = SweepReport {
            rate: 10.0,
            steps: vec![run("max_size 4", Some(pool.clone())), run("x", None)],
            findings: analyse(&[step], None),
        };
        let mut text = String::new();
        super::sweep(&mut text, &sweep);
        same_width(&text);
        let mut text = String::new();
        compare(
            &mut text,
            &run("pooled", Some(pool)),
            &run("unpooled", None),
        );
        same_width(&text);
        assert!(text.contains("| connections opened | 0 | 10 |"), "{text}");
    }
}
