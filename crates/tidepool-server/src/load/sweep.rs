//! `--sweep-sizes`: what the runs at each pool size say, beside what the
//! pool's Little's-law advice says.
//!
//! Every size gets the same open-loop arrival rate. Throughput grows with
//! the size until the pool can keep up with the rate, then stays flat;
//! latency (measured from each request's intended start) falls steeply
//! while requests queue for a connection, then flattens — and may rise
//! again when more connections only crowd the database. The knee is the
//! smallest size that has both: throughput within 5 % of the best, and
//! p90 within 1.5 × of the best p90. Queueing for a connection moves the
//! bulk of the distribution, which p90 sees; p99 is reported beside it but
//! not judged by, because on a shared machine one stall of the load
//! generator (tens of milliseconds, hundreds of requests started late)
//! decides a run's p99 whatever the pool size.
//!
//! The advice is taken from the run at the largest size, where the pool
//! was least in the way, so the arrival rate and hold time it measured
//! are the load's own. Two of its numbers are compared with the knee, each
//! rounded up to the next swept size: Little's law with the pool's
//! headroom (what the mean load needs), and the size the pool recommends,
//! which also covers the peak demand it saw (the most connections in use
//! plus callers waiting at one moment; on a busy machine a stall of the
//! load generator turns into such a peak). Each agrees when it lands on the
//! knee, is close when it lands next to it, and disagrees otherwise.

use serde::Serialize;

use super::summary::{RunReport, Sizing};

/// Throughput within this fraction of the best counts as the best.
const THROUGHPUT_SLACK: f64 = 0.95;
/// p90 within this factor of the best counts as the best.
const LATENCY_SLACK: f64 = 1.5;

/// One size's figures, for the analysis.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Step {
    /// The pool's `max_size`.
    pub size: usize,
    /// Requests per second.
    pub throughput: f64,
    /// p90 latency, ms.
    pub p90_ms: f64,
}

/// Where the knee is, and whether the advice agrees.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Findings {
    /// The smallest size with throughput within 5 % of the best.
    pub throughput_stops_growing_at: Option<usize>,
    /// The smallest size with p90 within 1.5 × of the best.
    pub latency_flattens_at: Option<usize>,
    /// The smallest size with both.
    pub knee: Option<usize>,
    /// A size past the best p90 whose p90 is over 1.5 × the best: where
    /// more connections made latency worse.
    pub latency_rises_again_at: Option<usize>,
    /// The size whose run the advice was read from.
    pub advice_from_size: Option<usize>,
    /// The advice beside the knee.
    pub advice: Option<AdviceSeen>,
    /// Little's law's agreement with the knee: `agree`, `close`,
    /// `disagree`, or `unknown` without a knee or advice.
    pub agreement: String,
    /// The finding in one sentence.
    pub summary: String,
}

/// The pool's advice, placed on the sweep's grid.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AdviceSeen {
    /// Little's law: arrival rate × mean hold.
    pub littles_law_connections: f64,
    /// That with the pool's headroom, rounded up.
    pub littles_law_size: usize,
    /// The smallest swept size at or above it (the largest if none).
    pub littles_law_on_grid: usize,
    /// `agree`, `close` or `disagree` with the knee.
    pub littles_law_agreement: String,
    /// The most connections in use plus callers waiting at one moment.
    pub peak_demand: usize,
    /// The pool's recommended `max_size`.
    pub recommended_max_size: usize,
    /// The smallest swept size at or above it (the largest if none).
    pub recommended_on_grid: usize,
    /// `agree`, `close` or `disagree` with the knee.
    pub recommended_agreement: String,
}

/// The figures of the whole sweep.
#[derive(Debug, Clone, Serialize)]
pub struct SweepReport {
    /// The open-loop rate every size was held to.
    pub rate: f64,
    /// One run per size, in ascending size.
    pub steps: Vec<RunReport>,
    /// What they say.
    pub findings: Findings,
}

/// Analyses `steps` beside the advice read after the run at size `from`.
pub fn analyse(steps: &[Step], advice: Option<(usize, &Sizing)>) -> Findings {
    let mut sorted = steps.to_vec();
    sorted.sort_by_key(|s| s.size);
    let sizes: Vec<usize> = sorted.iter().map(|s| s.size).collect();
    let best_tput = sorted.iter().map(|s| s.throughput).fold(0.0, f64::max);
    let best_p90 = sorted
        .iter()
        .map(|s| s.p90_ms)
        .filter(|p| *p > 0.0)
        .fold(f64::INFINITY, f64::min);
    let tput_knee = sorted
        .iter()
        .find(|s| best_tput > 0.0 && s.throughput >= THROUGHPUT_SLACK * best_tput)
        .map(|s| s.size);
    let lat_knee = sorted
        .iter()
        .find(|s| best_p90.is_finite() && s.p90_ms <= LATENCY_SLACK * best_p90)
        .map(|s| s.size);
    let knee = match (tput_knee, lat_knee) {
        (Some(a), Some(b)) => Some(a.max(b)),
        _ => None,
    };
    let best_at = sorted.iter().find(|s| s.p90_ms == best_p90).map(|s| s.size);
    let rises = best_at.and_then(|b| {
        sorted
            .iter()
            .find(|s| s.size > b && s.p90_ms > LATENCY_SLACK * best_p90)
            .map(|s| s.size)
    });
    let on_grid = |n: usize| {
        sizes
            .iter()
            .copied()
            .find(|&size| size >= n)
            .unwrap_or_else(|| sizes.last().copied().unwrap_or(n))
    };
    let judge = |grid: usize| {
        let at = |size: usize| sizes.iter().position(|&s| s == size);
        match (knee.and_then(at), at(grid)) {
            (Some(k), Some(a)) if k == a => "agree",
            (Some(k), Some(a)) if k.abs_diff(a) == 1 => "close",
            (Some(_), Some(_)) => "disagree",
            _ => "unknown",
        }
        .to_owned()
    };
    let seen = advice.map(|(_, z)| {
        let littles = z.littles_law_size();
        AdviceSeen {
            littles_law_connections: z.needed,
            littles_law_size: littles,
            littles_law_on_grid: on_grid(littles),
            littles_law_agreement: judge(on_grid(littles)),
            peak_demand: z.peak_demand,
            recommended_max_size: z.recommended,
            recommended_on_grid: on_grid(z.recommended),
            recommended_agreement: judge(on_grid(z.recommended)),
        }
    });
    let agreement = seen
        .as_ref()
        .map_or_else(|| "unknown".to_owned(), |a| a.littles_law_agreement.clone());
    let summary = match (knee, &seen) {
        (Some(k), Some(a)) => format!(
            "the runs level off at max_size {k}; Little's law with headroom says {} (on this grid {}): {}; the pool's recommendation, {} (on this grid {}): {}",
            a.littles_law_size,
            a.littles_law_on_grid,
            a.littles_law_agreement,
            a.recommended_max_size,
            a.recommended_on_grid,
            a.recommended_agreement
        ),
        (Some(k), None) => {
            format!("the runs level off at max_size {k}; the pool gave no sizing advice to compare")
        }
        (None, _) => {
            "no size reached the others' throughput and latency: too few runs completed".to_owned()
        }
    };
    Findings {
        throughput_stops_growing_at: tput_knee,
        latency_flattens_at: lat_knee,
        knee,
        latency_rises_again_at: rises,
        advice_from_size: advice.map(|(from, _)| from),
        advice: seen,
        agreement,
        summary,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steps(rows: &[(usize, f64, f64)]) -> Vec<Step> {
        rows.iter()
            .map(|&(size, throughput, p90_ms)| Step {
                size,
                throughput,
                p90_ms,
            })
            .collect()
    }

    fn sizing(needed: f64, peak_demand: usize, recommended: usize) -> Sizing {
        Sizing {
            needed,
            headroom: 1.25,
            peak_demand,
            recommended,
            verdict: "right_sized".into(),
        }
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
        // 5.1 × 1.25 → 7 → 8 on the grid; a peak of 20 → 32.
        let f = analyse(&s, Some((32, &sizing(5.1, 20, 20))));
        assert_eq!(f.throughput_stops_growing_at, Some(4));
        assert_eq!(f.latency_flattens_at, Some(8));
        assert_eq!(f.knee, Some(8));
        assert_eq!(f.latency_rises_again_at, Some(32));
        let a = f.advice.unwrap();
        assert_eq!((a.littles_law_size, a.littles_law_on_grid), (7, 8));
        assert_eq!(a.littles_law_agreement, "agree");
        assert_eq!(a.recommended_on_grid, 32);
        assert_eq!(a.recommended_agreement, "disagree");
        assert_eq!(f.agreement, "agree");
        assert!(f.summary.contains("max_size 8"), "{}", f.summary);
    }

    #[test]
    fn advice_one_step_off_is_close_and_further_disagrees() {
        let s = steps(&[(2, 500.0, 900.0), (4, 1000.0, 2.0), (8, 1000.0, 2.0)]);
        assert_eq!(
            analyse(&s, Some((8, &sizing(2.0, 3, 3)))).agreement,
            "agree"
        );
        assert_eq!(
            analyse(&s, Some((8, &sizing(6.0, 8, 8)))).agreement,
            "close"
        );
        let wide = steps(&[
            (2, 500.0, 900.0),
            (4, 1000.0, 2.0),
            (8, 1000.0, 2.0),
            (16, 1000.0, 2.0),
        ]);
        assert_eq!(
            analyse(&wide, Some((16, &sizing(11.0, 14, 14)))).agreement,
            "disagree"
        );
        // Advice beyond the grid is placed on its largest size.
        let far = analyse(&s, Some((8, &sizing(40.0, 50, 50))))
            .advice
            .unwrap();
        assert_eq!(far.littles_law_on_grid, 8);
        assert_eq!(analyse(&s, None).agreement, "unknown");
    }
}
