//! `--sweep-sizes`: what the runs at each pool size say, beside what the
//! pool's Little's-law advice says.
//!
//! Every size gets the same open-loop arrival rate. Throughput grows with
//! the size until the pool can keep up with the rate, then stays flat;
//! latency (measured from each request's intended start) falls steeply
//! while requests queue for a connection, then flattens — and may rise
//! again when more connections only crowd the database. The knee is the
//! smallest size that has both: throughput within 5 % of the best, and
//! p99 within 1.5 × of the best p99.
//!
//! The advice is taken from the run at the largest size, where the pool
//! was least in the way, so the arrival rate and hold time it measured
//! are the load's own. Its recommended size is rounded up to the next
//! swept size; the two agree when that is the knee, are close when it is
//! the size next to it, and disagree otherwise.

use serde::Serialize;

use super::summary::RunReport;

/// Throughput within this fraction of the best counts as the best.
const THROUGHPUT_SLACK: f64 = 0.95;
/// p99 within this factor of the best counts as the best.
const LATENCY_SLACK: f64 = 1.5;

/// One size's figures, for the analysis.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Step {
    /// The pool's `max_size`.
    pub size: usize,
    /// Requests per second.
    pub throughput: f64,
    /// p99 latency, ms.
    pub p99_ms: f64,
}

/// Where the knee is, and whether the advice agrees.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Findings {
    /// The smallest size with throughput within 5 % of the best.
    pub throughput_stops_growing_at: Option<usize>,
    /// The smallest size with p99 within 1.5 × of the best.
    pub latency_flattens_at: Option<usize>,
    /// The smallest size with both.
    pub knee: Option<usize>,
    /// A size past the best p99 whose p99 is over 1.5 × the best: where
    /// more connections made latency worse.
    pub latency_rises_again_at: Option<usize>,
    /// The size whose run the advice was read from.
    pub advice_from_size: Option<usize>,
    /// Little's law: arrival rate × mean hold (before headroom).
    pub littles_law_connections: Option<f64>,
    /// The pool's recommended `max_size`.
    pub advised_max_size: Option<usize>,
    /// The advised size rounded up to a swept size.
    pub advised_on_grid: Option<usize>,
    /// `agree`, `close`, `disagree` or `unknown`.
    pub agreement: String,
    /// The finding in one sentence.
    pub summary: String,
}

/// The figures of the whole sweep.
#[derive(Debug, Clone, Serialize)]
pub struct SweepReport {
    /// The open-loop rate every size was held to.
    pub rate: f64,
    /// One run per size, in the order given.
    pub steps: Vec<RunReport>,
    /// What they say.
    pub findings: Findings,
}

/// Analyses `steps` (in ascending size) beside the advice
/// `(connections needed, recommended size)` read at `advice_from`.
pub fn analyse(steps: &[Step], advice: Option<(usize, f64, usize)>) -> Findings {
    let mut sorted = steps.to_vec();
    sorted.sort_by_key(|s| s.size);
    let best_tput = sorted.iter().map(|s| s.throughput).fold(0.0, f64::max);
    let best_p99 = sorted
        .iter()
        .map(|s| s.p99_ms)
        .filter(|p| *p > 0.0)
        .fold(f64::INFINITY, f64::min);
    let tput_knee = sorted
        .iter()
        .find(|s| best_tput > 0.0 && s.throughput >= THROUGHPUT_SLACK * best_tput)
        .map(|s| s.size);
    let lat_knee = sorted
        .iter()
        .find(|s| best_p99.is_finite() && s.p99_ms <= LATENCY_SLACK * best_p99)
        .map(|s| s.size);
    let knee = match (tput_knee, lat_knee) {
        (Some(a), Some(b)) => sorted.iter().map(|s| s.size).find(|&size| size >= a.max(b)),
        _ => None,
    };
    let best_at = sorted
        .iter()
        .filter(|s| s.p99_ms == best_p99)
        .map(|s| s.size)
        .next();
    let rises = best_at.and_then(|b| {
        sorted
            .iter()
            .find(|s| s.size > b && s.p99_ms > LATENCY_SLACK * best_p99)
            .map(|s| s.size)
    });
    let (advice_from, needed, advised) = match advice {
        Some((from, needed, advised)) => (Some(from), Some(needed), Some(advised)),
        None => (None, None, None),
    };
    let on_grid = advised.map(|a| {
        sorted
            .iter()
            .map(|s| s.size)
            .find(|&size| size >= a)
            .unwrap_or_else(|| sorted.last().map_or(a, |s| s.size))
    });
    let position = |size: usize| sorted.iter().position(|s| s.size == size);
    let agreement = match (knee.and_then(position), on_grid.and_then(position)) {
        (Some(k), Some(a)) if k == a => "agree",
        (Some(k), Some(a)) if k.abs_diff(a) == 1 => "close",
        (Some(_), Some(_)) => "disagree",
        _ => "unknown",
    }
    .to_owned();
    let summary = match (knee, advised, on_grid) {
        (Some(k), Some(adv), Some(grid)) => format!(
            "the runs level off at max_size {k}; the pool's Little's-law advice says {adv} (on this grid {grid}): {agreement}"
        ),
        (Some(k), _, _) => {
            format!("the runs level off at max_size {k}; the pool gave no sizing advice to compare")
        }
        (None, _, _) => {
            "no size reached the others' throughput and latency: too few runs completed".to_owned()
        }
    };
    Findings {
        throughput_stops_growing_at: tput_knee,
        latency_flattens_at: lat_knee,
        knee,
        latency_rises_again_at: rises,
        advice_from_size: advice_from,
        littles_law_connections: needed,
        advised_max_size: advised,
        advised_on_grid: on_grid,
        agreement,
        summary,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steps(rows: &[(usize, f64, f64)]) -> Vec<Step> {
        rows.iter()
            .map(|&(size, throughput, p99_ms)| Step {
                size,
                throughput,
                p99_ms,
            })
            .collect()
    }

    #[test]
    fn the_knee_is_the_smallest_size_with_full_throughput_and_flat_latency() {
        // Undersized at 2 and 4 (queueing), levelled off at 8, worse at 32.
        let s = steps(&[
            (2, 900.0, 4000.0),
            (4, 1920.0, 900.0),
            (8, 2000.0, 3.0),
            (16, 2001.0, 2.5),
            (32, 1995.0, 6.0),
        ]);
        let f = analyse(&s, Some((32, 5.1, 7)));
        assert_eq!(f.throughput_stops_growing_at, Some(4));
        assert_eq!(f.latency_flattens_at, Some(8));
        assert_eq!(f.knee, Some(8));
        assert_eq!(f.latency_rises_again_at, Some(32));
        assert_eq!(f.advised_on_grid, Some(8));
        assert_eq!(f.agreement, "agree");
        assert!(f.summary.contains("max_size 8") && f.summary.contains("agree"));
    }

    #[test]
    fn advice_one_step_off_is_close_and_further_disagrees() {
        let s = steps(&[(2, 500.0, 900.0), (4, 1000.0, 2.0), (8, 1000.0, 2.0)]);
        assert_eq!(analyse(&s, Some((8, 3.0, 3))).agreement, "agree");
        assert_eq!(analyse(&s, Some((8, 6.0, 8))).agreement, "close");
        let wide = steps(&[
            (2, 500.0, 900.0),
            (4, 1000.0, 2.0),
            (8, 1000.0, 2.0),
            (16, 1000.0, 2.0),
        ]);
        let f = analyse(&wide, Some((16, 12.0, 14)));
        assert_eq!(
            (f.advised_on_grid, f.agreement.as_str()),
            (Some(16), "disagree")
        );
        // Advice beyond the grid is compared with its largest size.
        assert_eq!(analyse(&s, Some((8, 40.0, 50))).advised_on_grid, Some(8));
        assert_eq!(analyse(&s, None).agreement, "unknown");
    }
}
