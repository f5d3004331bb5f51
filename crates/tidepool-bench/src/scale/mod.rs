//! Suite 5: how cost grows with the work, for tidepool beside deadpool and
//! bb8.
//!
//! # Method
//! Four parts, each a curve over a count swept by powers of ten:
//! - [`waiters`]: 1 000 → 1 000 000 gets queued on a pool of one held
//!   connection, each with its own deadline drawn from 300–600 ms in random
//!   order, so all time out: how long the queue takes to drain once formed,
//!   how late each timeout fires, and the CPU spent per waiter.
//! - [`registry`]: 1 → 10 000 idle pools (one connection each): heap bytes
//!   per pool, and the time of tidepool-http's `/metrics` rendering over a
//!   registry of them.
//! - [`conns`]: 1 → 10 000 idle connections in one pool: the cost of an
//!   uncontended get + return, heap bytes per connection, and the time of
//!   the pool's statistics snapshot.
//! - [`scrape`]: the uncontended get + return with and without a thread that
//!   reads the pool's statistics and renders the Prometheus text every
//!   100 ms, in alternating slices compared pair by pair.
//!
//! Every point is repeated and reported as the median with its min–max;
//! within a repetition the contenders run in a random order. Growth is
//! stated as the exponent `k` of `y ≈ c·Nᵏ` fitted (least squares on
//! logarithms) over the three largest counts: 0 is flat, 1 linear.
//!
//! Heap bytes are counted by the runner's allocator (see [`crate::memory`]);
//! CPU time is the sum over the process's threads of
//! `/proc/self/task/*/schedstat`.

pub mod conns;
pub mod peers;
pub mod registry;
pub mod report;
pub mod scrape;
pub mod waiters;

use serde::{Deserialize, Serialize};
use tokio::runtime::Runtime;

use crate::pools::Contender;

/// The pools set side by side in this suite, in table order.
pub const CONTENDERS: [Contender; 3] = [Contender::Tidepool, Contender::Deadpool, Contender::Bb8];

/// What to run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScaleConfig {
    /// Queued gets per point of the waiters curve.
    pub waiter_counts: Vec<usize>,
    /// Deadlines are drawn uniformly from `[min, max)` ms.
    pub deadline_ms: (u64, u64),
    /// A contender whose waiters point took longer than this (seconds, from
    /// the first get to the last timeout) is not run at larger counts.
    pub waiter_give_up_secs: f64,
    /// Pools per point of the registry curve.
    pub pool_counts: Vec<usize>,
    /// Connections per point of the one-pool curve.
    pub conn_counts: Vec<usize>,
    /// Repetitions of every point.
    pub reps: usize,
    /// Time spent in each get + return loop of the one-pool curve, ms.
    pub loop_ms: u64,
    /// Pairs of slices (quiet, scraped) of the scrape comparison.
    pub scrape_pairs: usize,
    /// Time spent in each slice of the scrape comparison, ms.
    pub scrape_slice_ms: u64,
    /// How often the scraping thread reads, ms.
    pub scrape_every_ms: u64,
    /// Only these contenders (by name); everyone when `None`.
    #[serde(default)]
    pub only: Option<Vec<String>>,
}

impl ScaleConfig {
    /// The full run (about three minutes on 2 cores).
    pub fn full() -> Self {
        Self {
            waiter_counts: vec![1_000, 10_000, 100_000, 1_000_000],
            deadline_ms: (300, 600),
            waiter_give_up_secs: 30.0,
            pool_counts: vec![1, 10, 100, 1_000, 10_000],
            conn_counts: vec![1, 10, 100, 1_000, 10_000],
            reps: 3,
            loop_ms: 300,
            scrape_pairs: 30,
            scrape_slice_ms: 300,
            scrape_every_ms: 100,
            only: None,
        }
    }

    /// The quick run: smaller counts, fewer repetitions.
    pub fn quick() -> Self {
        Self {
            waiter_counts: vec![1_000, 10_000, 100_000],
            pool_counts: vec![1, 10, 100, 1_000],
            conn_counts: vec![1, 10, 100, 1_000],
            reps: 1,
            loop_ms: 100,
            scrape_pairs: 10,
            scrape_slice_ms: 200,
            ..Self::full()
        }
    }

    fn chosen(&self) -> Vec<Contender> {
        CONTENDERS
            .into_iter()
            .filter(|c| crate::pools::selected(self.only.as_deref(), c.name()))
            .collect()
    }
}

/// The suite's results.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScaleResults {
    /// What was run.
    pub config: ScaleConfig,
    /// Whether heap bytes were counted (the runner's allocator).
    pub memory_counted: bool,
    /// The waiters curve.
    pub waiters: Vec<waiters::WaiterPoint>,
    /// Heap bytes per queued waiter, by contender (when counted).
    #[serde(default)]
    pub waiter_bytes: Vec<(String, f64)>,
    /// The registry curve.
    pub registry: Vec<registry::RegistryPoint>,
    /// The one-pool curve.
    pub conns: Vec<conns::ConnPoint>,
    /// The scrape comparison (tidepool only).
    pub scrape: Option<scrape::ScrapeResults>,
}

/// Runs the suite on `rt`.
pub fn run(rt: &Runtime, cfg: &ScaleConfig, progress: &mut dyn FnMut(&str)) -> ScaleResults {
    let chosen = cfg.chosen();
    let waiters = waiters::run(rt, cfg, &chosen, progress);
    let waiter_bytes: Vec<(String, f64)> = chosen
        .iter()
        .filter_map(|&c| Some((c.name().to_owned(), waiters::bytes_per_waiter(c)?)))
        .collect();
    for (name, bytes) in &waiter_bytes {
        progress(&format!(
            "scale waiters {name}: {bytes:.0} heap bytes per queued waiter"
        ));
    }
    let registry = registry::run(cfg, &chosen, progress);
    let conns = conns::run(rt, cfg, &chosen, progress);
    let scrape = chosen
        .contains(&Contender::Tidepool)
        .then(|| scrape::run(rt, cfg, progress));
    ScaleResults {
        config: cfg.clone(),
        memory_counted: crate::memory::available(),
        waiters,
        waiter_bytes,
        registry,
        conns,
        scrape,
    }
}

/// The exponent `k` of `y ≈ c·Nᵏ`, fitted by least squares on `(ln N, ln y)`
/// over the points given; `None` for fewer than two usable points (both
/// coordinates positive) or a single `N`.
pub fn exponent(points: &[(f64, f64)]) -> Option<f64> {
    let logs: Vec<(f64, f64)> = points
        .iter()
        .filter(|(n, y)| *n > 0.0 && *y > 0.0 && y.is_finite())
        .map(|(n, y)| (n.ln(), y.ln()))
        .collect();
    if logs.len() < 2 {
        return None;
    }
    let count = logs.len() as f64;
    let mean_x = logs.iter().map(|p| p.0).sum::<f64>() / count;
    let mean_y = logs.iter().map(|p| p.1).sum::<f64>() / count;
    let sxx: f64 = logs.iter().map(|p| (p.0 - mean_x).powi(2)).sum();
    if sxx == 0.0 {
        return None;
    }
    let sxy: f64 = logs.iter().map(|p| (p.0 - mean_x) * (p.1 - mean_y)).sum();
    Some(sxy / sxx)
}

/// The fitted exponent over the three largest counts of `points` (`(N, y)`
/// in any order).
pub fn tail_exponent(points: &[(f64, f64)]) -> Option<f64> {
    let mut sorted = points.to_vec();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    let start = sorted.len().saturating_sub(3);
    exponent(&sorted[start..])
}

/// Words for a fitted exponent: flat, linear or quadratic when within 0.15
/// of 0, 1 or 2; falling below that; otherwise a power of N.
pub fn growth_words(k: f64) -> String {
    let name = if k.abs() < 0.15 {
        "stays flat"
    } else if k < 0.0 {
        "falls as N grows"
    } else if (k - 1.0).abs() < 0.15 {
        "grows linearly"
    } else if (k - 2.0).abs() < 0.15 {
        "grows quadratically"
    } else {
        "grows as a power of N"
    };
    format!("{name} (k = {k:.2})")
}

/// CPU time used by the whole process so far, in nanoseconds: the sum of
/// every thread's run time in `/proc/self/task/*/schedstat` (threads that
/// already ended are not counted). `None` off Linux.
pub fn process_cpu_ns() -> Option<u64> {
    let mut total = 0u64;
    for entry in std::fs::read_dir("/proc/self/task").ok()? {
        let Ok(entry) = entry else { continue };
        // A thread may end between the listing and the read.
        let Ok(text) = std::fs::read_to_string(entry.path().join("schedstat")) else {
            continue;
        };
        total += text
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
    }
    Some(total)
}

/// `n` as `1k`, `10k`, `1M`.
pub fn count_label(n: usize) -> String {
    match n {
        n if n >= 1_000_000 && n % 1_000_000 == 0 => format!("{}M", n / 1_000_000),
        n if n >= 1_000 && n % 1_000 == 0 => format!("{}k", n / 1_000),
        n => n.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exponents_of_known_curves() {
        let flat: Vec<(f64, f64)> = [1e3, 1e4, 1e5].iter().map(|&n| (n, 7.0)).collect();
        assert!(exponent(&flat).unwrap().abs() < 1e-9);
        let linear: Vec<(f64, f64)> = [1e3, 1e4, 1e5].iter().map(|&n| (n, 3.0 * n)).collect();
        assert!((exponent(&linear).unwrap() - 1.0).abs() < 1e-9);
        let square: Vec<(f64, f64)> = [1.0, 10.0, 100.0, 1000.0]
            .iter()
            .map(|&n| (n, n * n))
            .collect();
        assert!((tail_exponent(&square).unwrap() - 2.0).abs() < 1e-9);
        assert_eq!(exponent(&[(10.0, 1.0)]), None);
        assert_eq!(exponent(&[(10.0, 1.0), (10.0, 2.0)]), None);
        assert!(growth_words(0.03).starts_with("stays flat"));
        assert!(growth_words(-0.4).starts_with("falls"));
        assert!(growth_words(1.08).starts_with("grows linearly"));
        assert!(growth_words(1.95).starts_with("grows quadratically"));
        assert!(growth_words(1.5).contains("power of N (k = 1.50)"));
    }

    #[test]
    fn labels_and_cpu_time() {
        assert_eq!(count_label(1_000), "1k");
        assert_eq!(count_label(1_000_000), "1M");
        assert_eq!(count_label(10), "10");
        // Threads that end take their time with them, so the sum is only
        // checked to be read.
        assert!(process_cpu_ns().unwrap() > 0);
    }
}
