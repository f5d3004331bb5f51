//! The suite's targets, judged from the stored results: one line each in
//! the report, with the figures it was judged on, so that whether a target
//! was met is read off the same run as the tables, never written by hand.
//!
//! The targets (from the benchmark issue):
//! - contention matrix: tidepool's median ≤ the best peer's in every cell;
//! - uncontended get + return ≤ 100 ns;
//! - fairness: tidepool's p99.9 wait ≤ the fairest peer's;
//! - PostgreSQL at 8 clients: ≥ 0.9 × pgbench, ≥ every Rust peer in the same
//!   run, ≥ 100 × the connect-per-query loop.
//!
//! And from the scale issue and the observability issue:
//! - 100 000 waiters with mixed deadlines time out within 5 % of their
//!   deadlines (every one of them, in the median repetition);
//! - a scrape every 100 ms does not measurably move get + return (in pairs
//!   of slices, scraped and quiet, the scraped one is the slower no more
//!   often than a fair coin's 95 % range allows).

use std::fmt::Write as _;

use crate::matrix::MatrixResults;
use crate::pools::Contender;
use crate::postgres::{PgResults, names};
use crate::report::Results;
use crate::scale::ScaleResults;

/// The uncontended target, in nanoseconds per get + return.
pub const UNCONTENDED_NS: f64 = 100.0;

/// The client count the PostgreSQL targets are judged at.
pub const PG_CLIENTS: usize = 8;

/// tidepool-postgres's least share of pgbench's throughput.
pub const PG_SHARE_OF_PGBENCH: f64 = 0.9;

/// How many times the connect-per-query loop's throughput pooling must give.
pub const PG_TIMES_CONNECT_PER_QUERY: f64 = 100.0;

fn verdict(met: bool) -> &'static str {
    if met { "**met**" } else { "**not met**" }
}

/// Writes the "Targets" section: a line per target for every suite that
/// has results.
pub fn section(w: &mut String, r: &Results) {
    let mut lines = Vec::new();
    if let Some(m) = &r.matrix {
        lines.extend(matrix_line(&m.data));
    }
    if let Some(u) = &r.uncontended {
        let tidepool = u.data.rows.iter().find(|row| row.contender == "tidepool");
        if let Some(t) = tidepool {
            let ns = t.spread().median;
            lines.push(format!(
                "Uncontended get + return ≤ {UNCONTENDED_NS:.0} ns: {} — {ns:.1} ns.",
                verdict(ns <= UNCONTENDED_NS)
            ));
        }
    }
    if let Some(f) = &r.fairness {
        lines.extend(fairness_line(&f.data));
    }
    if let Some(Ok(p)) = r.postgres.as_ref().map(|s| &s.data) {
        lines.extend(postgres_lines(p));
    }
    if let Some(s) = &r.scale {
        lines.extend(waiters_line(&s.data));
        lines.extend(scrape_line(&s.data));
    }
    if lines.is_empty() {
        return;
    }
    let _ = writeln!(w, "## Targets\n");
    let _ = writeln!(
        w,
        "Judged from the medians below, by the rules of the benchmark issue (see \
         `src/targets.rs`).\n"
    );
    for line in lines {
        let _ = writeln!(w, "- {line}");
    }
    let _ = writeln!(w);
}

fn matrix_line(r: &MatrixResults) -> Option<String> {
    let mut cells = 0;
    let mut behind = Vec::new();
    for &size in &r.config.pool_sizes {
        for &workers in &r.config.workers {
            let (Some(t), Some(best)) = (
                r.cell(size, workers, Contender::Tidepool.name()),
                r.best_peer(size, workers),
            ) else {
                continue;
            };
            cells += 1;
            let (tm, bm) = (t.spread().median, best.spread().median);
            if tm > bm {
                let won = best
                    .share_faster_than_tidepool()
                    .map_or(String::new(), |share| {
                        format!(
                            ", {} won {:.0} % of the paired rounds",
                            best.contender,
                            share * 100.0
                        )
                    });
                let tasks_alone =
                    r.cell(size, workers, Contender::NoPool.name())
                        .map_or(String::new(), |c| {
                            format!(
                                "; the tasks alone, with no pool, {:.1} µs",
                                c.spread().median
                            )
                        });
                behind.push(format!(
                    "size {size} × {workers} workers: {tm:.1} µs against {} {bm:.1} µs \
                     (+{:.1} %{won}{tasks_alone})",
                    best.contender,
                    (tm / bm - 1.0) * 100.0
                ));
            }
        }
    }
    if cells == 0 {
        return None;
    }
    let mut line = format!(
        "Contention matrix, tidepool's median ≤ the best peer's in every cell: {} — in {} of \
         {cells} cells",
        verdict(behind.is_empty()),
        cells - behind.len()
    );
    if !behind.is_empty() {
        let _ = write!(line, "; behind in {}", behind.join("; "));
    }
    line.push('.');
    Some(line)
}

fn fairness_line(r: &crate::fairness::FairnessResults) -> Option<String> {
    let p999 = |name: &str| {
        r.rows
            .iter()
            .find(|row| row.contender == name && !row.reps.is_empty())
            .map(|row| row.spread(|f| f.p999_us).median / 1e3)
    };
    let tidepool = p999(Contender::Tidepool.name())?;
    let fairest = r
        .rows
        .iter()
        .filter(|row| {
            row.contender != Contender::Tidepool.name()
                && row.contender != Contender::FifoFloor.name()
                && row.failure.is_none()
                && !row.reps.is_empty()
        })
        .map(|row| {
            (
                row.contender.as_str(),
                row.spread(|f| f.p999_us).median / 1e3,
            )
        })
        .min_by(|a, b| a.1.total_cmp(&b.1))?;
    let floor = p999(Contender::FifoFloor.name())
        .map_or(String::new(), |ms| format!("; the fifo floor {ms:.1} ms"));
    Some(format!(
        "Fairness, tidepool's p99.9 wait ≤ the fairest peer's: {} — {tidepool:.1} ms against \
         {} {:.1} ms{floor}.",
        verdict(tidepool <= fairest.1),
        fairest.0,
        fairest.1
    ))
}

/// The waiter count the lateness target is judged at.
pub const WAITERS: usize = 100_000;

/// The most a timeout may be late, as a share of its deadline.
pub const WAITER_LATE_SHARE: f64 = 0.05;

fn waiters_line(r: &ScaleResults) -> Option<String> {
    let figures = |name: &str| {
        r.waiters
            .iter()
            .find(|p| p.contender == name && p.n == WAITERS && !p.reps.is_empty())
            .map(|p| {
                (
                    p.spread(|f| f.late_max_share).median,
                    p.spread(|f| f.late_max_ms).median,
                    p.spread(|f| f.late_p99_ms).median,
                )
            })
    };
    let (share, max_ms, p99_ms) = figures(Contender::Tidepool.name())?;
    let peers: Vec<String> = [Contender::Deadpool, Contender::Bb8]
        .iter()
        .filter_map(|c| {
            let (s, m, _) = figures(c.name())?;
            Some(format!("{} {m:.1} ms ({:.1} %)", c.name(), s * 100.0))
        })
        .collect();
    let peers = if peers.is_empty() {
        String::new()
    } else {
        format!("; {}", peers.join(", "))
    };
    Some(format!(
        "{WAITERS} waiters with deadlines of {}–{} ms time out within {:.0} % of their \
         deadlines: {} — the latest {max_ms:.1} ms late, {:.1} % of its deadline (p99 \
         {p99_ms:.1} ms){peers}.",
        r.config.deadline_ms.0,
        r.config.deadline_ms.1,
        WAITER_LATE_SHARE * 100.0,
        verdict(share <= WAITER_LATE_SHARE),
        share * 100.0
    ))
}

fn scrape_line(r: &ScaleResults) -> Option<String> {
    let s = r.scrape.as_ref().filter(|s| !s.quiet_ns.is_empty())?;
    let v = s.verdict();
    Some(format!(
        "A scrape every {} ms does not measurably move get + return: {} — pair by pair, \
         {:+.1} % (median); the scraped slice was the slower in {:.0} % of {} pairs, against \
         a fair coin's {:.0}–{:.0} %.",
        s.every_ms,
        verdict(v.within_noise()),
        v.change * 100.0,
        v.slower_share * 100.0,
        s.quiet_ns.len(),
        v.fair_low * 100.0,
        v.fair_high * 100.0
    ))
}

fn postgres_lines(r: &PgResults) -> Vec<String> {
    let qps = |name: &str| {
        r.row(name, PG_CLIENTS)
            .filter(|row| !row.reps.is_empty())
            .map(|row| row.spread(|f| f.qps).median)
    };
    let Some(tidepool) = qps(names::TIDEPOOL) else {
        return Vec::new();
    };
    let mut lines = Vec::new();
    if let Some(pgbench) = qps(names::PGBENCH) {
        let share = tidepool / pgbench;
        let driver = qps(names::DRIVER).map_or(String::new(), |d| {
            format!(
                "; tokio-postgres alone, with no pool, {d:.0} q/s = {:.2} × pgbench",
                d / pgbench
            )
        });
        lines.push(format!(
            "PostgreSQL at {PG_CLIENTS} clients, ≥ {PG_SHARE_OF_PGBENCH} × pgbench: {} — \
             {tidepool:.0} q/s against {pgbench:.0} q/s = {share:.2} × pgbench{driver}.",
            verdict(share >= PG_SHARE_OF_PGBENCH)
        ));
    }
    let not_peers = [
        names::TIDEPOOL,
        names::PGBENCH,
        names::DRIVER,
        names::CONNECT,
    ];
    let best = names::ALL
        .iter()
        .filter(|name| !not_peers.contains(name))
        .filter_map(|name| qps(name).map(|q| (*name, q)))
        .max_by(|a, b| a.1.total_cmp(&b.1));
    if let Some((peer, q)) = best {
        lines.push(format!(
            "PostgreSQL at {PG_CLIENTS} clients, ≥ every Rust peer (defaults and \"no test\" \
             rows alike): {} — {tidepool:.0} q/s against the best, {peer}, {q:.0} q/s.",
            verdict(tidepool >= q)
        ));
    }
    if let Some(connect) = qps(names::CONNECT) {
        let times = tidepool / connect.max(f64::MIN_POSITIVE);
        lines.push(format!(
            "PostgreSQL at {PG_CLIENTS} clients, ≥ {PG_TIMES_CONNECT_PER_QUERY:.0} × connect \
             per query: {} — × {times:.0} ({connect:.0} q/s without a pool).",
            verdict(times >= PG_TIMES_CONNECT_PER_QUERY)
        ));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matrix::{MatrixCell, MatrixConfig};
    use crate::postgres::{PgConfig, PgFigures, PgRow};

    fn cell(size: usize, workers: usize, name: &str, us: f64, won: &[f64]) -> MatrixCell {
        MatrixCell {
            pool_size: size,
            workers,
            contender: name.to_owned(),
            medians_us: vec![us],
            faster_than_tidepool: won.to_vec(),
        }
    }

    fn matrix(cells: Vec<MatrixCell>) -> MatrixResults {
        MatrixResults {
            config: MatrixConfig {
                pool_sizes: vec![4],
                workers: vec![4, 16],
                iterations: 1,
                reps: 1,
                only: None,
            },
            contenders: ["tidepool", "qp", "deadpool", "no pool"]
                .map(str::to_owned)
                .to_vec(),
            cells,
            failures: Vec::new(),
        }
    }

    #[test]
    fn the_matrix_names_every_cell_tidepool_is_behind_in() {
        let r = matrix(vec![
            cell(4, 4, "tidepool", 50.0, &[]),
            cell(4, 4, "qp", 49.0, &[0.52]),
            cell(4, 4, "deadpool", 60.0, &[0.1]),
            // A reference row faster than tidepool is not a peer.
            cell(4, 4, "no pool", 40.0, &[0.9]),
            cell(4, 16, "tidepool", 60.0, &[]),
            cell(4, 16, "qp", 61.0, &[0.45]),
        ]);
        let line = matrix_line(&r).unwrap();
        assert!(line.contains("**not met** — in 1 of 2 cells"), "{line}");
        assert!(
            line.contains(
                "size 4 × 4 workers: 50.0 µs against qp 49.0 µs (+2.0 %, qp won 52 % of the \
                 paired rounds; the tasks alone, with no pool, 40.0 µs)"
            ),
            "{line}"
        );
        assert!(!line.contains("16 workers"), "{line}");
        let r = matrix(vec![
            cell(4, 4, "tidepool", 48.0, &[]),
            cell(4, 4, "qp", 49.0, &[0.48]),
        ]);
        assert!(
            matrix_line(&r)
                .unwrap()
                .contains("**met** — in 1 of 1 cells")
        );
    }

    #[test]
    fn the_reference_rows_are_the_suites_own_names() {
        assert_eq!(
            crate::matrix::REFERENCES,
            [Contender::FifoFloor.name(), Contender::NoPool.name()]
        );
    }

    fn pg_row(name: &str, qps: f64) -> PgRow {
        PgRow {
            contender: name.to_owned(),
            clients: PG_CLIENTS,
            reps: vec![PgFigures {
                qps,
                mean_us: 0.0,
                p50_us: None,
                p99_us: None,
                errors: 0,
            }],
        }
    }

    #[test]
    fn postgres_is_judged_against_pgbench_the_best_rust_peer_and_no_pool() {
        let r = PgResults {
            config: PgConfig::quick(),
            server_version: String::new(),
            pgbench_version: None,
            contenders: names::ALL.map(str::to_owned).to_vec(),
            rows: vec![
                pg_row(names::TIDEPOOL, 59_000.0),
                pg_row(names::PGBENCH, 66_000.0),
                pg_row(names::DRIVER, 61_000.0),
                pg_row(names::DEADPOOL, 55_000.0),
                pg_row(names::BB8_NO_TEST, 59_500.0),
                pg_row(names::CONNECT, 360.0),
            ],
            skipped: Vec::new(),
        };
        let lines = postgres_lines(&r);
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert!(
            lines[0].contains("**not met** — 59000 q/s against 66000 q/s = 0.89"),
            "{}",
            lines[0]
        );
        assert!(lines[0].contains("tokio-postgres alone, with no pool, 61000 q/s = 0.92"));
        assert!(lines[1].contains("**not met**") && lines[1].contains("bb8-postgres (no test)"));
        assert!(lines[2].contains("**met** — × 164"), "{}", lines[2]);
    }

    fn waiter_point(name: &str, n: usize, late_max_ms: f64) -> crate::scale::waiters::WaiterPoint {
        crate::scale::waiters::WaiterPoint {
            contender: name.to_owned(),
            n,
            reps: vec![crate::scale::waiters::WaiterFigures {
                formed_ms: 200.0,
                drain_ms: 600.0,
                ideal_ms: 599.0,
                late_p50_ms: 1.0,
                late_p99_ms: late_max_ms / 2.0,
                late_max_ms,
                late_max_share: late_max_ms / 300.0,
                within_5pct: 1.0,
                cpu_us_per_waiter: Some(4.0),
                not_timed_out: 0,
            }],
            failure: None,
        }
    }

    fn scale(waiters: Vec<crate::scale::waiters::WaiterPoint>) -> ScaleResults {
        ScaleResults {
            config: crate::scale::ScaleConfig::quick(),
            memory_counted: false,
            waiters,
            waiter_bytes: Vec::new(),
            registry: Vec::new(),
            conns: Vec::new(),
            scrape: Some(crate::scale::scrape::ScrapeResults {
                quiet_ns: vec![60.0; 20],
                scraped_ns: (0..20).map(|i| if i < 16 { 63.0 } else { 59.0 }).collect(),
                scrapes: 60,
                scrape_us: 100.0,
                every_ms: 100,
                slice_ms: 300,
            }),
        }
    }

    #[test]
    fn the_waiters_are_judged_at_100k_on_the_latest_timeout() {
        let r = scale(vec![
            waiter_point("tidepool", WAITERS, 12.0),
            waiter_point("deadpool", WAITERS, 18.0),
            // Other counts do not count.
            waiter_point("tidepool", 10 * WAITERS, 3000.0),
        ]);
        let line = waiters_line(&r).unwrap();
        assert!(
            line.contains("**met** — the latest 12.0 ms late, 4.0 % of its deadline (p99 6.0 ms)"),
            "{line}"
        );
        assert!(line.contains("deadpool 18.0 ms (6.0 %)"), "{line}");
        let r = scale(vec![waiter_point("tidepool", WAITERS, 16.0)]);
        assert!(waiters_line(&r).unwrap().contains("**not met**"));
        assert!(waiters_line(&scale(Vec::new())).is_none());
    }

    #[test]
    fn a_scrape_is_judged_by_a_sign_test_over_pairs() {
        let line = scrape_line(&scale(Vec::new())).unwrap();
        assert!(
            line.contains(
                "**not met** — pair by pair, +5.0 % (median); the scraped slice was the slower \
                 in 80 % of 20 pairs, against a fair coin's 30–70 %."
            ),
            "{line}"
        );
    }
}
