//! [`Spread`]: a figure over repetitions, as a chart draws it.

use serde::{Deserialize, Serialize};

/// The minimum, median and maximum of a figure over repetitions, so noise is
/// visible next to the figure itself.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    /// Smallest value.
    pub min: f64,
    /// Median (the mean of the two middle values for an even count).
    pub median: f64,
    /// Largest value.
    pub max: f64,
}

impl Spread {
    /// The spread of `values`; all zero when there are none.
    pub fn of(values: &[f64]) -> Self {
        if values.is_empty() {
            return Self::one(0.0);
        }
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Self {
            min: v[0],
            median,
            max: v[n - 1],
        }
    }

    /// A single measurement: min, median and max all `value`.
    pub fn one(value: f64) -> Self {
        Self {
            min: value,
            median: value,
            max: value,
        }
    }

    /// `(max - min) / median`: how noisy the repetitions were.
    pub fn relative_range(&self) -> f64 {
        if self.median == 0.0 {
            0.0
        } else {
            (self.max - self.min) / self.median
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_of_odd_and_even_counts() {
        let s = Spread::of(&[3.0, 1.0, 2.0]);
        assert_eq!((s.min, s.median, s.max), (1.0, 2.0, 3.0));
        let s = Spread::of(&[4.0, 1.0, 2.0, 3.0]);
        assert_eq!((s.min, s.median, s.max), (1.0, 2.5, 4.0));
        assert!((s.relative_range() - 3.0 / 2.5).abs() < 1e-12);
        assert_eq!(Spread::of(&[]).median, 0.0);
        assert_eq!(Spread::one(4.0), Spread::of(&[4.0]));
    }
}
