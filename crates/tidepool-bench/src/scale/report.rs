//! The report's "Scale" section: tables, curves and the growth stated from
//! the stored results.

use std::fmt::Write as _;
use std::path::Path;

use plotters::chart::SeriesLabelPosition;

use super::conns::ConnPoint;
use super::registry::RegistryPoint;
use super::waiters::{WaiterFigures, WaiterPoint};
use super::{ScaleResults, count_label, growth_words, tail_exponent};
use crate::chart::{ChartError, LineChart, Series};
use crate::report::{Link, Stamped, ratio, spread_cell, stamp_line};
use crate::stats::Spread;

/// Writes section 5 and draws its charts.
///
/// # Errors
/// When a chart cannot be written.
pub fn section(
    w: &mut String,
    s: &Stamped<ScaleResults>,
    charts_dir: &Path,
    link: &Link<'_>,
) -> Result<(), ChartError> {
    let r = &s.data;
    let _ = writeln!(w, "## 5. Scale\n");
    let _ = writeln!(w, "{}\n", stamp_line(s));
    let _ = writeln!(
        w,
        "How cost grows with the work: waiters queued on one connection, pools in a \
         registry, connections in one pool, for tidepool beside deadpool and bb8 (defaults \
         but the sizes), each point repeated {} times (median, with min–max), the contenders \
         in a random order in every repetition. Growth is stated as the exponent k of \
         y ≈ c·Nᵏ fitted on logarithms over the three largest N: k ≈ 0 is flat, k ≈ 1 \
         linear, k ≈ 2 quadratic. Heap bytes are what the program asked of the allocator \
         (counted by the runner's global allocator, `tracking-allocator`, switched on only \
         while a pool is being measured; the allocator's own rounding is not included). \
         CPU time is the sum over the process's threads of `/proc/self/task/*/schedstat`. \
         The load average at the start is given above: with more runnable work than cores \
         (a load above the core count) the suite did not have the machine to itself, and \
         the times, lateness above all, are noisier and higher than on a quiet machine; the \
         counts of bytes are not affected.\n",
        r.config.reps
    );
    if !r.memory_counted {
        let _ = writeln!(
            w,
            "Heap bytes were not counted in this run (the binary lacked the counting \
             allocator).\n"
        );
    }
    waiters_part(w, r, charts_dir, link)?;
    registry_part(w, r, charts_dir, link)?;
    conns_part(w, r, charts_dir, link)?;
    scrape_part(w, r);
    Ok(())
}

/// The contenders that have points, in table order.
fn names<'a>(points: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for name in points {
        if !out.iter().any(|n| n == name) {
            out.push(name.to_owned());
        }
    }
    out
}

fn counts<'a>(ns: impl Iterator<Item = &'a usize>) -> Vec<usize> {
    let mut out: Vec<usize> = ns.copied().collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// One line per contender: the growth of `total` over N.
fn growth_lines(w: &mut String, what: &str, series: &[(String, Vec<(f64, f64)>)]) {
    for (name, points) in series {
        if let Some(k) = tail_exponent(points) {
            let _ = writeln!(w, "- {name}: {what} {}.", growth_words(k));
        }
    }
    let _ = writeln!(w);
}

fn ms_cell(s: &Spread) -> String {
    let digits = if s.median < 10.0 { 2 } else { 1 };
    spread_cell(s, digits)
}

/// Per contender, one value (`f` of its point) at each N, for a chart.
fn series_over<'a, T: 'a>(
    contenders: &[String],
    ns: &[usize],
    find: impl Fn(&str, usize) -> Option<&'a T>,
    f: impl Fn(&'a T) -> Option<Spread>,
) -> Vec<Series> {
    contenders
        .iter()
        .map(|name| Series {
            name: name.clone(),
            points: ns.iter().map(|&n| find(name, n).and_then(&f)).collect(),
        })
        .collect()
}

/// Per contender, the `(N, y)` points where `f` has a value, for a fit.
fn curves_over<'a, T: 'a>(
    contenders: &[String],
    ns: &[usize],
    find: impl Fn(&str, usize) -> Option<&'a T>,
    f: impl Fn(&'a T) -> Option<f64>,
) -> Vec<(String, Vec<(f64, f64)>)> {
    contenders
        .iter()
        .map(|name| {
            let pts = ns
                .iter()
                .filter_map(|&n| Some((n as f64, f(find(name, n)?)?)))
                .collect();
            (name.clone(), pts)
        })
        .collect()
}

/// A chart to draw: file, title, y axis, lines.
type ChartSpec<'a> = (&'a str, &'a str, &'a str, Vec<Series>);

/// Draws each chart that has a point over the counts `ns`, and links it.
fn draw_charts(
    w: &mut String,
    charts_dir: &Path,
    link: &Link<'_>,
    (x_desc, ns, legend): (&str, &[usize], SeriesLabelPosition),
    charts: Vec<ChartSpec<'_>>,
) -> Result<(), ChartError> {
    let ticks: Vec<String> = ns.iter().map(|&n| count_label(n)).collect();
    for (file, title, y_desc, series) in charts {
        if series.iter().all(|s| s.points.iter().all(Option::is_none)) {
            continue;
        }
        LineChart {
            title: title.into(),
            x_desc: x_desc.into(),
            x_ticks: ticks.clone(),
            y_desc: y_desc.into(),
            series,
            legend: legend.clone(),
        }
        .draw(&charts_dir.join(file))?;
        let _ = writeln!(w, "![{y_desc}]({})\n", link(file));
    }
    Ok(())
}

fn waiters_part(
    w: &mut String,
    r: &ScaleResults,
    charts_dir: &Path,
    link: &Link<'_>,
) -> Result<(), ChartError> {
    let points = &r.waiters;
    if points.is_empty() {
        return Ok(());
    }
    let (lo, hi) = r.config.deadline_ms;
    let _ = writeln!(w, "### 5.1 Waiters on one held connection\n");
    let _ = writeln!(
        w,
        "A pool of one connection, held throughout; N tasks each ask for a connection with \
         a deadline of their own drawn uniformly from {lo}–{hi} ms (so the queue's order and \
         the deadlines' order differ), and all time out. tidepool and deadpool use their \
         per-call deadline (`get_timeout`, `timeout_get`); bb8 has none, so its gets are \
         wrapped in `tokio::time::timeout` (cancelled on expiry). *Formed*: first get to \
         last get issued (a million take longer to spawn than the shortest deadline, so \
         timeouts then start before the queue is complete). *Drain*: from the last get \
         issued to the last timeout returned; *ideal*: from the last get issued to the \
         latest deadline. *Late*: a waiter's return minus its deadline (tokio's timer \
         rounds up to the next millisecond). *Within 5 %*: share of waiters late by at most \
         5 % of their own deadline. *CPU*: process CPU time from the first spawn to the last \
         return, per waiter.\n"
    );
    let _ = writeln!(
        w,
        "| waiters | pool | formed ms | drain ms | ideal ms | late p50 ms | late p99 ms | late max ms | max late / deadline | within 5 % | CPU µs / waiter |"
    );
    let _ = writeln!(w, "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for p in points {
        if p.reps.is_empty() {
            let why = p.failure.as_deref().unwrap_or("no result");
            let _ = writeln!(
                w,
                "| {} | {} | {why} | | | | | | | | |",
                count_label(p.n),
                p.contender
            );
            continue;
        }
        let cpu = p
            .spread_of(|f| f.cpu_us_per_waiter)
            .map_or("n/a".to_owned(), |s| spread_cell(&s, 2));
        let _ = writeln!(
            w,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {:.1} % | {:.2} % | {cpu} |",
            count_label(p.n),
            p.contender,
            ms_cell(&p.spread(|f| f.formed_ms)),
            ms_cell(&p.spread(|f| f.drain_ms)),
            ms_cell(&p.spread(|f| f.ideal_ms)),
            ms_cell(&p.spread(|f| f.late_p50_ms)),
            ms_cell(&p.spread(|f| f.late_p99_ms)),
            ms_cell(&p.spread(|f| f.late_max_ms)),
            p.spread(|f| f.late_max_share).median * 100.0,
            p.spread(|f| f.within_5pct).median * 100.0,
        );
        if let Some(why) = &p.failure {
            let _ = writeln!(w, "| | | {why} | | | | | | | | |");
        }
    }
    let _ = writeln!(w);
    let contenders = names(points.iter().map(|p| p.contender.as_str()));
    let ns = counts(points.iter().map(|p| &p.n));
    let find = |name: &str, n: usize| {
        points
            .iter()
            .find(|p| p.contender == name && p.n == n && !p.reps.is_empty())
    };
    let figure = |f: fn(&WaiterFigures) -> f64| move |p: &WaiterPoint| Some(p.spread(f));
    let mut drain = series_over(&contenders, &ns, find, figure(|f| f.drain_ms));
    if let Some(reference) = contenders.first() {
        let ideal = series_over(
            std::slice::from_ref(reference),
            &ns,
            find,
            figure(|f| f.ideal_ms),
        );
        drain.extend(ideal.into_iter().map(|s| Series {
            name: "ideal (latest deadline)".into(),
            points: s.points,
        }));
    }
    let cpu = |p: &WaiterPoint| p.spread_of(|f| f.cpu_us_per_waiter);
    draw_charts(
        w,
        charts_dir,
        link,
        ("waiters queued", &ns, SeriesLabelPosition::UpperLeft),
        vec![
            (
                "scale_waiters_drain.svg",
                "Waiters: drain time after the queue formed (lower is better)",
                "drain, ms",
                drain,
            ),
            (
                "scale_waiters_late.svg",
                "Waiters: latest timeout past its deadline (lower is better)",
                "max lateness, ms",
                series_over(&contenders, &ns, find, figure(|f| f.late_max_ms)),
            ),
            (
                "scale_waiters_cpu.svg",
                "Waiters: CPU time per waiter (flat is O(1))",
                "CPU µs per waiter",
                series_over(&contenders, &ns, find, cpu),
            ),
        ],
    )?;
    if !r.waiter_bytes.is_empty() {
        let each: Vec<String> = r
            .waiter_bytes
            .iter()
            .map(|(name, bytes)| format!("{name} {bytes:.0}"))
            .collect();
        let _ = writeln!(
            w,
            "Heap bytes one queued waiter holds (its task with the get future in it, and what \
             the pool keeps for it; {} queued, counted on a runtime of their own): {}.\n",
            count_label(super::waiters::QUEUED_FOR_BYTES),
            each.join(", ")
        );
    }
    let _ = writeln!(w, "Growth over the three largest N:\n");
    let cpu_total = |p: &WaiterPoint| cpu(p).map(|s| s.median * p.n as f64);
    growth_lines(
        w,
        "the CPU time to queue and time out N waiters",
        &curves_over(&contenders, &ns, find, cpu_total),
    );
    Ok(())
}

fn registry_part(
    w: &mut String,
    r: &ScaleResults,
    charts_dir: &Path,
    link: &Link<'_>,
) -> Result<(), ChartError> {
    let points = &r.registry;
    if points.is_empty() {
        return Ok(());
    }
    let _ = writeln!(w, "### 5.2 Pools in a registry\n");
    let _ = writeln!(
        w,
        "N pools (`max_size` {}, defaults otherwise), each having opened one connection and \
         taken it back: idle, background work started. tidepool's are in a \
         `tidepool::Registry` (names and registry included in its bytes); deadpool and bb8 \
         have no registry, so theirs are in a `Vec`. *Bytes per pool*: heap bytes allocated \
         from the first build to 100 ms after the last, divided by N. *`/metrics`*: one \
         rendering of tidepool-http's Prometheus text (the body of `GET /metrics`) over an \
         `AppState` on the registry, median of {} per repetition.\n",
        super::registry::POOL_MAX,
        super::registry::SCRAPES
    );
    let contenders = names(points.iter().map(|p| p.contender.as_str()));
    let ns = counts(points.iter().map(|p| &p.n));
    let find = |name: &str, n: usize| points.iter().find(|p| p.contender == name && p.n == n);
    let _ = write!(w, "| pools |");
    for c in &contenders {
        let _ = write!(w, " {c} bytes / pool |");
    }
    let _ = writeln!(w, " tidepool `/metrics` ms | µs per pool | text KiB |");
    let _ = write!(w, "|---:|");
    for _ in &contenders {
        let _ = write!(w, "---:|");
    }
    let _ = writeln!(w, "---:|---:|---:|");
    for &n in &ns {
        let _ = write!(w, "| {} |", count_label(n));
        let reference = find("tidepool", n)
            .and_then(RegistryPoint::bytes)
            .map(|s| s.median);
        for c in &contenders {
            let cell = match find(c, n).and_then(RegistryPoint::bytes) {
                Some(s) if c == "tidepool" => spread_cell(&s, 0),
                Some(s) => format!("{} {}", spread_cell(&s, 0), ratio(s.median, reference)),
                None => "n/a".to_owned(),
            };
            let _ = write!(w, " {cell} |");
        }
        match find("tidepool", n).and_then(|p| Some((p.scrape()?, p.scrape_bytes?))) {
            Some((s, bytes)) => {
                let _ = writeln!(
                    w,
                    " {} | {:.1} | {:.0} |",
                    ms_cell(&s),
                    s.median * 1000.0 / n as f64,
                    bytes as f64 / 1024.0
                );
            }
            None => {
                let _ = writeln!(w, " n/a | | |");
            }
        }
    }
    let _ = writeln!(w);
    let tidepool_only = ["tidepool".to_owned()];
    draw_charts(
        w,
        charts_dir,
        link,
        ("pools", &ns, SeriesLabelPosition::UpperLeft),
        vec![
            (
                "scale_registry_memory.svg",
                "Idle pools: heap bytes per pool (lower is better)",
                "bytes per pool",
                series_over(&contenders, &ns, find, RegistryPoint::bytes),
            ),
            (
                "scale_registry_scrape.svg",
                "Registry: one /metrics rendering (lower is better)",
                "ms per scrape",
                series_over(&tidepool_only, &ns, find, RegistryPoint::scrape),
            ),
        ],
    )?;
    let _ = writeln!(w, "Growth over the three largest N:\n");
    growth_lines(
        w,
        "the heap bytes of N idle pools",
        &curves_over(&contenders, &ns, find, |p| {
            p.bytes().map(|s| s.median * p.n as f64)
        }),
    );
    growth_lines(
        w,
        "the `/metrics` rendering time",
        &curves_over(&tidepool_only, &ns, find, |p| p.scrape().map(|s| s.median)),
    );
    Ok(())
}

fn conns_part(
    w: &mut String,
    r: &ScaleResults,
    charts_dir: &Path,
    link: &Link<'_>,
) -> Result<(), ChartError> {
    let points = &r.conns;
    if points.is_empty() {
        return Ok(());
    }
    let _ = writeln!(w, "### 5.3 Connections in one pool\n");
    let _ = writeln!(
        w,
        "One pool of `max_size` N with all N connections opened and idle (a manager that \
         hands out an `i32` at once). *Get + return*: the uncontended loop of suite 2 with \
         N idle, {} ms per repetition. *Bytes*: heap bytes from before the build to after \
         the warm-up, in all and per connection (at small N the pool's own fixed size \
         dominates). *Stats*: one call of the pool's statistics snapshot (tidepool \
         `stats()`, deadpool `status()`, bb8 `state()`: they do not report the same things; \
         tidepool's includes its histograms).\n",
        r.config.loop_ms
    );
    let _ = writeln!(
        w,
        "| connections | pool | get + return ns | bytes / connection | pool KiB | stats ns |\n|---:|---|---:|---:|---:|---:|"
    );
    for p in points {
        let bytes = p
            .bytes_per_conn()
            .map_or("n/a".to_owned(), |s| spread_cell(&s, 0));
        let kib = p
            .bytes()
            .map_or("n/a".to_owned(), |s| format!("{:.1}", s.median / 1024.0));
        let _ = writeln!(
            w,
            "| {} | {} | {} | {bytes} | {kib} | {} |",
            count_label(p.n),
            p.contender,
            spread_cell(&p.get_return(), 1),
            spread_cell(&p.stats(), 0),
        );
    }
    let _ = writeln!(w);
    let contenders = names(points.iter().map(|p| p.contender.as_str()));
    let ns = counts(points.iter().map(|p| &p.n));
    let find = |name: &str, n: usize| {
        points
            .iter()
            .find(|p| p.contender == name && p.n == n && !p.get_return_ns.is_empty())
    };
    draw_charts(
        w,
        charts_dir,
        link,
        (
            "connections in the pool",
            &ns,
            SeriesLabelPosition::UpperRight,
        ),
        vec![
            (
                "scale_conns_get.svg",
                "One pool: uncontended get + return with N idle (lower is better)",
                "ns per get + return",
                series_over(&contenders, &ns, find, |p| Some(p.get_return())),
            ),
            (
                "scale_conns_memory.svg",
                "One pool: heap bytes per connection (lower is better)",
                "bytes per connection",
                series_over(&contenders, &ns, find, ConnPoint::bytes_per_conn),
            ),
            (
                "scale_conns_stats.svg",
                "One pool: statistics snapshot (lower is better)",
                "ns per snapshot",
                series_over(&contenders, &ns, find, |p| Some(p.stats())),
            ),
        ],
    )?;
    let _ = writeln!(w, "Growth over the three largest N:\n");
    for (what, f) in [
        (
            "the cost of one get + return",
            (|p: &ConnPoint| Some(p.get_return().median)) as fn(&ConnPoint) -> Option<f64>,
        ),
        ("the pool's heap bytes", |p| p.bytes().map(|s| s.median)),
        ("the cost of one statistics snapshot", |p| {
            Some(p.stats().median)
        }),
    ] {
        growth_lines(w, what, &curves_over(&contenders, &ns, find, f));
    }
    marginal_bytes(w, &contenders, &ns, find);
    Ok(())
}

/// Heap bytes each connection adds, between the two largest N: the pool's
/// fixed size cancels out.
fn marginal_bytes<'a>(
    w: &mut String,
    contenders: &[String],
    ns: &[usize],
    find: impl Fn(&str, usize) -> Option<&'a ConnPoint>,
) {
    let [.., below, top] = ns else {
        return;
    };
    let each: Vec<String> = contenders
        .iter()
        .filter_map(|name| {
            let low = find(name, *below)?.bytes()?.median;
            let high = find(name, *top)?.bytes()?.median;
            Some(format!(
                "{name} {:.0}",
                (high - low) / (*top - *below) as f64
            ))
        })
        .collect();
    if !each.is_empty() {
        let _ = writeln!(
            w,
            "Heap bytes each connection adds, from {} to {} connections: {}.\n",
            count_label(*below),
            count_label(*top),
            each.join(", ")
        );
    }
}

fn scrape_part(w: &mut String, r: &ScaleResults) {
    let Some(s) = &r.scrape else {
        return;
    };
    if s.quiet_ns.is_empty() {
        return;
    }
    let _ = writeln!(
        w,
        "### 5.4 Get + return while scraped every {} ms\n",
        s.every_ms
    );
    let _ = writeln!(
        w,
        "The uncontended loop of suite 2 on tidepool ({} warmed connections, the pool in a \
         registry behind an `AppState`), run in slices of {} ms that come in {} pairs: one \
         *quiet*, one *scraped*, in a random order within the pair. During a scraped slice \
         an OS thread takes `pool.stats()` and renders the whole `/metrics` text every {} ms \
         (from the slice's start). A shared machine speeds up and slows down over seconds; \
         the two slices of a pair see the same phase, so pairs are compared: if scraping \
         changes nothing, the scraped slice is the slower of its pair as often as not, and \
         the share of pairs where it was must lie within a fair coin's 95 % range (a sign \
         test).\n",
        crate::uncontended::POOL_SIZE,
        s.slice_ms,
        s.quiet_ns.len(),
        s.every_ms
    );
    let v = s.verdict();
    let _ = writeln!(
        w,
        "| slices | ns per get + return |\n|---|---:|\n| quiet | {} |\n| scraped | {} |\n",
        spread_cell(&s.quiet(), 1),
        spread_cell(&s.scraped(), 1),
    );
    let changes = s.changes();
    let _ = writeln!(
        w,
        "Pair by pair, scraped against quiet: median {:+.1} % (from {:+.1} % to {:+.1} %); the \
         scraped slice was the slower in {:.0} % of the pairs, against a fair coin's \
         {:.0}–{:.0} %: {}. {} scrapes in all, {:.0} µs each on average (`stats()` and the \
         rendering).\n",
        v.change * 100.0,
        changes.min * 100.0,
        changes.max * 100.0,
        v.slower_share * 100.0,
        v.fair_low * 100.0,
        v.fair_high * 100.0,
        if v.within_noise() {
            "not measurable"
        } else {
            "measurable"
        },
        s.scrapes,
        s.scrape_us
    );
}
