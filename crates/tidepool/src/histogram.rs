//! A fixed-size log-linear latency histogram.
//!
//! # Implementation notes
//! Values are nanoseconds. Below 16 ns each value has its own bucket; above,
//! each power of two is split into 16 linear sub-buckets, so any recorded
//! value is reported within 1/16 (6.25 %) of the truth, from nanoseconds to
//! centuries, in 976 counters. Recording is an index computation and an
//! increment: no allocation, no branches on the size of the value. Exact
//! count, sum, minimum and maximum are kept beside the buckets.

use std::fmt;
use std::time::Duration;

use serde::Serialize;

const SUB_BITS: u32 = 4;
const SUB: u64 = 1 << SUB_BITS;
const BUCKETS: usize = (64 - SUB_BITS as usize + 1) * SUB as usize;

/// A latency histogram; percentiles are accurate to within 6.25 %.
#[derive(Clone)]
pub struct Histogram {
    counts: Box<[u64; BUCKETS]>,
    count: u64,
    sum_ns: u128,
    min_ns: u64,
    max_ns: u64,
}

impl fmt::Debug for Histogram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Histogram")
            .field("count", &self.count)
            .field("p50", &self.percentile(0.50))
            .field("p99", &self.percentile(0.99))
            .field("max", &self.max())
            .finish()
    }
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            counts: Box::new([0; BUCKETS]),
            count: 0,
            sum_ns: 0,
            min_ns: u64::MAX,
            max_ns: 0,
        }
    }
}

fn index(v: u64) -> usize {
    if v < SUB {
        return v as usize;
    }
    let msb = 63 - v.leading_zeros();
    let shift = msb - SUB_BITS;
    (((shift + 1) as u64) * SUB + ((v >> shift) & (SUB - 1))) as usize
}

/// The largest value that falls in bucket `i`.
fn upper_bound(i: usize) -> u64 {
    let i = i as u64;
    if i < SUB {
        return i;
    }
    let shift = i / SUB - 1;
    let sub = i % SUB;
    let low = (SUB + sub) << shift;
    low + ((1u64 << shift) - 1)
}

/// The smallest value that falls in bucket `i`.
fn lower_bound(i: usize) -> u64 {
    if i == 0 { 0 } else { upper_bound(i - 1) + 1 }
}

impl Histogram {
    /// Records one duration.
    pub fn record(&mut self, d: Duration) {
        self.record_nanos(
            d.as_secs()
                .saturating_mul(1_000_000_000)
                .saturating_add(u64::from(d.subsec_nanos())),
        );
    }

    /// Records one duration given in nanoseconds.
    #[inline]
    pub(crate) fn record_nanos(&mut self, ns: u64) {
        self.counts[index(ns)] += 1;
        self.count += 1;
        self.sum_ns += u128::from(ns);
        self.min_ns = self.min_ns.min(ns);
        self.max_ns = self.max_ns.max(ns);
    }

    /// Records `n` zero durations at once.
    pub(crate) fn record_zeros(&mut self, n: u64) {
        if n > 0 {
            self.counts[index(0)] += n;
            self.count += n;
            self.min_ns = 0;
        }
    }

    /// Number of values recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Sum of all values recorded.
    pub fn sum(&self) -> Duration {
        Duration::from_nanos(u64::try_from(self.sum_ns).unwrap_or(u64::MAX))
    }

    /// Mean of the values, zero when empty.
    pub fn mean(&self) -> Duration {
        if self.count == 0 {
            return Duration::ZERO;
        }
        Duration::from_nanos(
            u64::try_from(self.sum_ns / u128::from(self.count)).unwrap_or(u64::MAX),
        )
    }

    /// Largest value recorded (exact), zero when empty.
    pub fn max(&self) -> Duration {
        Duration::from_nanos(self.max_ns)
    }

    /// Smallest value recorded (exact), zero when empty.
    pub fn min(&self) -> Duration {
        if self.count == 0 {
            Duration::ZERO
        } else {
            Duration::from_nanos(self.min_ns)
        }
    }

    /// The value under which fraction `q` (0.0–1.0) of the values fall,
    /// never above the exact maximum. Zero when empty.
    pub fn percentile(&self, q: f64) -> Duration {
        if self.count == 0 {
            return Duration::ZERO;
        }
        let q = q.clamp(0.0, 1.0);
        let rank = ((q * self.count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Duration::from_nanos(upper_bound(i).min(self.max_ns).max(self.min_ns));
            }
        }
        self.max()
    }

    /// How many values were at most `bound` (exact when `bound` is a bucket
    /// edge, else counted by bucket, within 6.25 %). For cumulative
    /// Prometheus buckets.
    pub fn count_at_most(&self, bound: Duration) -> u64 {
        let ns = u64::try_from(bound.as_nanos()).unwrap_or(u64::MAX);
        let last = index(ns);
        self.counts[..=last].iter().sum()
    }

    /// Adds another histogram's values to this one.
    pub fn merge(&mut self, other: &Self) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a += b;
        }
        self.count += other.count;
        self.sum_ns += other.sum_ns;
        self.min_ns = self.min_ns.min(other.min_ns);
        self.max_ns = self.max_ns.max(other.max_ns);
    }

    /// The values recorded since `earlier`, an earlier snapshot of the same
    /// histogram: per-interval percentiles from two cumulative snapshots.
    /// Count, sum and buckets are exact; minimum and maximum are the edges of
    /// the lowest and highest buckets that gained values (within 6.25 %).
    /// A bucket that shrank (a histogram that was not the earlier one's
    /// continuation) counts as zero.
    pub fn since(&self, earlier: &Self) -> Self {
        let mut out = Self::default();
        for (i, (now, before)) in self.counts.iter().zip(earlier.counts.iter()).enumerate() {
            let gained = now.saturating_sub(*before);
            if gained > 0 {
                out.counts[i] = gained;
                out.count += gained;
                out.min_ns = out.min_ns.min(lower_bound(i));
                out.max_ns = upper_bound(i);
            }
        }
        out.sum_ns = self.sum_ns.saturating_sub(earlier.sum_ns);
        out
    }

    /// Forgets every value recorded.
    pub(crate) fn clear(&mut self) {
        self.counts.fill(0);
        self.count = 0;
        self.sum_ns = 0;
        self.min_ns = u64::MAX;
        self.max_ns = 0;
    }

    /// The usual summary: count, mean, p50, p95, p99, p99.9 and max.
    pub fn summary(&self) -> LatencySummary {
        LatencySummary {
            count: self.count,
            mean: self.mean(),
            p50: self.percentile(0.50),
            p95: self.percentile(0.95),
            p99: self.percentile(0.99),
            p999: self.percentile(0.999),
            max: self.max(),
        }
    }
}

/// Percentiles of one latency histogram; durations serialize as fractional
/// milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[non_exhaustive]
pub struct LatencySummary {
    /// Values recorded.
    pub count: u64,
    /// Mean value.
    #[serde(serialize_with = "ms")]
    pub mean: Duration,
    /// Median.
    #[serde(serialize_with = "ms")]
    pub p50: Duration,
    /// 95th percentile.
    #[serde(serialize_with = "ms")]
    pub p95: Duration,
    /// 99th percentile.
    #[serde(serialize_with = "ms")]
    pub p99: Duration,
    /// 99.9th percentile.
    #[serde(serialize_with = "ms")]
    pub p999: Duration,
    /// Largest value (exact).
    #[serde(serialize_with = "ms")]
    pub max: Duration,
}

pub(crate) fn ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64() * 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zeros_added_at_once_equal_zeros_recorded_one_by_one() {
        let mut one_by_one = Histogram::default();
        let mut at_once = Histogram::default();
        for h in [&mut one_by_one, &mut at_once] {
            h.record(Duration::from_millis(3));
        }
        for _ in 0..5 {
            one_by_one.record(Duration::ZERO);
        }
        at_once.record_zeros(5);
        assert_eq!(one_by_one.summary(), at_once.summary());
        assert_eq!(at_once.percentile(0.5), Duration::ZERO);
        at_once.record_zeros(0);
        assert_eq!(at_once.count(), 6);
    }

    #[test]
    fn buckets_cover_every_value_in_order() {
        let mut last = 0;
        for v in (0..100_000u64).chain([u64::MAX / 2, u64::MAX]) {
            let i = index(v);
            assert!(i < BUCKETS);
            assert!(i >= last, "index must not decrease at {v}");
            assert!(upper_bound(i) >= v, "bucket {i} upper bound below {v}");
            last = i;
        }
        assert_eq!(index(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn percentiles_are_within_resolution() {
        let mut h = Histogram::default();
        for us in 1..=1000u64 {
            h.record(Duration::from_micros(us));
        }
        for (q, want) in [(0.5, 500.0), (0.95, 950.0), (0.99, 990.0)] {
            let got = h.percentile(q).as_secs_f64() * 1e6;
            assert!((got - want).abs() / want <= 0.0625, "p{q}: {got} vs {want}");
        }
        assert_eq!(h.max(), Duration::from_micros(1000));
        assert_eq!(h.min(), Duration::from_micros(1));
        assert_eq!(h.count(), 1000);
        assert_eq!(h.sum(), Duration::from_micros(500_500));
    }

    #[test]
    fn empty_histogram_reports_zero() {
        let h = Histogram::default();
        assert_eq!(h.percentile(0.99), Duration::ZERO);
        assert_eq!(h.mean(), Duration::ZERO);
        assert_eq!(h.min(), Duration::ZERO);
    }

    #[test]
    fn since_holds_only_the_values_recorded_after_the_earlier_snapshot() {
        let mut h = Histogram::default();
        for _ in 0..100 {
            h.record(Duration::from_millis(1));
        }
        let earlier = h.clone();
        for ms in [40u64, 50, 60] {
            h.record(Duration::from_millis(ms));
        }
        let d = h.since(&earlier);
        assert_eq!(d.count(), 3);
        assert_eq!(d.sum(), Duration::from_millis(150));
        let p50 = d.percentile(0.5).as_secs_f64() * 1000.0;
        assert!((p50 - 50.0).abs() / 50.0 <= 0.0625, "{p50}");
        assert!(d.min() >= Duration::from_millis(37), "{:?}", d.min());
        assert!(d.max() <= Duration::from_millis(64), "{:?}", d.max());
        assert_eq!(h.since(&h).count(), 0);
        assert_eq!(h.since(&h).percentile(0.99), Duration::ZERO);
        for i in 1..BUCKETS {
            assert_eq!(lower_bound(i), upper_bound(i - 1) + 1);
            assert_eq!(index(lower_bound(i)), i);
        }
    }

    #[test]
    fn count_at_most_is_cumulative() {
        let mut h = Histogram::default();
        for ms in [1u64, 2, 5, 50, 500] {
            h.record(Duration::from_millis(ms));
        }
        assert_eq!(h.count_at_most(Duration::from_millis(10)), 3);
        assert_eq!(h.count_at_most(Duration::from_secs(1)), 5);
        assert_eq!(h.count_at_most(Duration::ZERO), 0);
    }
}
