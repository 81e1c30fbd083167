//! Nearest-rank percentiles of timings, and words for the reports' verdicts.

use std::time::Duration;

use serde_json::{Value, json};

/// Index of the nearest-rank `p` quantile (`0 < p <= 1`) in a sorted, non-empty slice of
/// `len` samples.
fn nearest_rank(p: f64, len: usize) -> usize {
    ((p * len as f64).ceil() as usize).clamp(1, len) - 1
}

/// p50 and p99 (nearest rank) of `samples`, in milliseconds; NaN for no samples. Sorts
/// `samples`.
pub fn percentiles(samples: &mut [Duration]) -> (f64, f64) {
    if samples.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    samples.sort_unstable();
    let rank = |p: f64| samples[nearest_rank(p, samples.len())].as_secs_f64() * 1e3;
    (rank(0.50), rank(0.99))
}

/// The nearest-rank `p` quantile (`0 < p <= 1`) of `samples`, in milliseconds; NaN for no
/// samples. Sorts `samples`.
pub fn quantile_ms(samples: &mut [Duration], p: f64) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    samples.sort_unstable();
    samples[nearest_rank(p, samples.len())].as_secs_f64() * 1e3
}

/// Percentiles of a set of durations, in microseconds (nearest rank; NaN for no samples).
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    /// Number of samples.
    pub n: usize,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest sample.
    pub max: f64,
    /// Arithmetic mean (0 for no samples).
    pub mean: f64,
}

impl Summary {
    /// Summarises `samples`.
    pub fn of(samples: &[Duration]) -> Summary {
        let mut us: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1e6).collect();
        us.sort_unstable_by(f64::total_cmp);
        let rank = |p: f64| {
            if us.is_empty() {
                return f64::NAN;
            }
            us[nearest_rank(p, us.len())]
        };
        Summary {
            n: us.len(),
            p50: rank(0.50),
            p90: rank(0.90),
            p99: rank(0.99),
            max: rank(1.0),
            mean: us.iter().sum::<f64>() / us.len().max(1) as f64,
        }
    }

    /// The summary as a JSON object with `_us` keys.
    pub fn json(&self) -> Value {
        json!({
            "n": self.n, "p50_us": self.p50, "p90_us": self.p90, "p99_us": self.p99,
            "max_us": self.max, "mean_us": self.mean,
        })
    }
}

/// A goal's verdict as the reports print it: `met` or `MISSED`.
pub fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "MISSED" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentiles(&mut v), (50.0, 99.0));
        let mut one = vec![Duration::from_millis(3)];
        assert_eq!(percentiles(&mut one), (3.0, 3.0));
        let (p50, p99) = percentiles(&mut []);
        assert!(p50.is_nan() && p99.is_nan());
    }

    #[test]
    fn summary_is_nearest_rank() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_micros).collect();
        let s = Summary::of(&v);
        assert_eq!((s.p50, s.p90, s.p99, s.max), (50.0, 90.0, 99.0, 100.0));
        let s = Summary::of(&[Duration::from_micros(7)]);
        assert_eq!((s.p50, s.max), (7.0, 7.0));
        let s = Summary::of(&[]);
        assert!(s.p50.is_nan() && s.mean == 0.0);
    }
}
