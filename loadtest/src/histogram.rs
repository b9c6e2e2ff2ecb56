//! Percentiles of durations, kept in an HDR histogram.
//!
//! Every time measurement in a run (join time, first decrypted frame, per-frame latency, jitter)
//! goes into a [`DurationHistogram`]: microsecond resolution, three significant digits (values are
//! exact to within 0.1 %), values above ten minutes clamped to ten minutes. Merging two histograms
//! is exact, so per-receiver histograms are combined without losing the tail.
//!
//! A report keeps its histograms as [`HistogramBuckets`] (every non-empty bucket and its count), so
//! that `loadtest merge` can add the reports of several generator processes and take the
//! percentiles of the sum, not an average of percentiles.

use std::fmt;
use std::str::FromStr;

use hdrhistogram::Histogram;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The largest duration recorded, in microseconds; longer ones are clamped to it. Runs are
/// bounded well below this.
const MAX_US: u64 = 600_000_000;

/// A histogram of durations in microseconds, reporting percentiles in milliseconds.
#[derive(Debug, Clone)]
pub struct DurationHistogram {
    inner: Histogram<u64>,
}

impl Default for DurationHistogram {
    fn default() -> Self {
        Self::new()
    }
}

impl DurationHistogram {
    /// An empty histogram (1 µs to 10 min, 3 significant digits).
    pub fn new() -> Self {
        DurationHistogram {
            // The bounds are constants that satisfy the crate's rules (low >= 1,
            // high >= 2 * low, sigfig <= 5), so creation cannot fail.
            inner: Histogram::new_with_bounds(1, MAX_US, 3).expect("valid histogram bounds"),
        }
    }

    /// Records one duration in microseconds (clamped to ten minutes).
    pub fn record_us(&mut self, us: u64) {
        self.inner.saturating_record(us.min(MAX_US));
    }

    /// Records one duration given in (possibly fractional) milliseconds; negative values count
    /// as zero.
    pub fn record_ms(&mut self, ms: f64) {
        let us = (ms * 1000.0).round();
        self.record_us(if us.is_finite() && us > 0.0 {
            us as u64
        } else {
            0
        });
    }

    /// Adds every sample of `other` to this histogram.
    pub fn merge(&mut self, other: &DurationHistogram) {
        // Both histograms share the same bounds and precision (only `new` builds them), and
        // saturating recording keeps every count in range, so adding cannot fail.
        self.inner
            .add(&other.inner)
            .expect("histograms with identical bounds add");
    }

    /// How many samples were recorded.
    pub fn count(&self) -> u64 {
        self.inner.len()
    }

    /// The value at quantile `q` (0.0–1.0) in milliseconds, or `None` when nothing was recorded
    /// (a report shows "no data" rather than a made-up zero).
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        if self.inner.is_empty() {
            None
        } else {
            Some(self.inner.value_at_quantile(q) as f64 / 1000.0)
        }
    }

    /// The median in milliseconds.
    pub fn p50_ms(&self) -> Option<f64> {
        self.quantile_ms(0.50)
    }

    /// The 99th percentile in milliseconds.
    pub fn p99_ms(&self) -> Option<f64> {
        self.quantile_ms(0.99)
    }

    /// Every non-empty bucket and its count: what [`DurationHistogram::from_buckets`] rebuilds the
    /// same histogram from.
    pub fn buckets(&self) -> HistogramBuckets {
        HistogramBuckets(
            self.inner
                .iter_recorded()
                .map(|v| (v.value_iterated_to(), v.count_at_value()))
                .collect(),
        )
    }

    /// The histogram whose buckets are `buckets` (values clamped to ten minutes, as recording
    /// does).
    pub fn from_buckets(buckets: &HistogramBuckets) -> Self {
        let mut h = DurationHistogram::new();
        for &(value_us, count) in &buckets.0 {
            h.inner.saturating_record_n(value_us.min(MAX_US), count);
        }
        h
    }

    /// The largest recorded value in milliseconds.
    pub fn max_ms(&self) -> Option<f64> {
        if self.inner.is_empty() {
            None
        } else {
            Some(self.inner.max() as f64 / 1000.0)
        }
    }
}

/// A histogram's non-empty buckets: `(value_us, count)`, the value being the highest one the
/// bucket holds (any value of a bucket records into it, so rebuilding is exact).
///
/// In JSON it is one string, `"VALUE[*COUNT] ..."` in ascending order (`*1` left out), e.g.
/// `"4003 4007*12 80063"`: compact, and still readable.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistogramBuckets(pub Vec<(u64, u64)>);

impl fmt::Display for HistogramBuckets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, &(value, count)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            if count == 1 {
                write!(f, "{value}")?;
            } else {
                write!(f, "{value}*{count}")?;
            }
        }
        Ok(())
    }
}

/// Why a bucket string did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("histogram bucket {0:?} is not VALUE or VALUE*COUNT (non-negative integers, count > 0)")]
pub struct BucketParseError(String);

impl FromStr for HistogramBuckets {
    type Err = BucketParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.split_ascii_whitespace()
            .map(|token| {
                let bad = || BucketParseError(token.to_owned());
                let (value, count) = token.split_once('*').unwrap_or((token, "1"));
                let value = value.parse::<u64>().map_err(|_| bad())?;
                let count = count.parse::<u64>().map_err(|_| bad())?;
                if count == 0 {
                    return Err(bad());
                }
                Ok((value, count))
            })
            .collect::<Result<_, _>>()
            .map(HistogramBuckets)
    }
}

impl Serialize for HistogramBuckets {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for HistogramBuckets {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(actual: f64, expected: f64) -> bool {
        (actual - expected).abs() <= expected * 0.002 + 0.001
    }

    #[test]
    fn empty_histogram_has_no_percentiles() {
        let h = DurationHistogram::new();
        assert_eq!(h.p50_ms(), None);
        assert_eq!(h.p99_ms(), None);
        assert_eq!(h.count(), 0);
    }

    #[test]
    fn percentiles_of_a_uniform_ramp_match_the_definition() {
        // 1..=10_000 µs: p50 is 5 ms and p99 is 9.9 ms (the smallest value with at least
        // q * n samples at or below it), each within the histogram's 0.1 % precision.
        let mut h = DurationHistogram::new();
        let mut shuffled: Vec<u64> = (1..=10_000).collect();
        shuffled.reverse();
        for v in shuffled {
            h.record_us(v);
        }
        assert_eq!(h.count(), 10_000);
        assert!(close(h.p50_ms().unwrap(), 5.0), "{:?}", h.p50_ms());
        assert!(close(h.p99_ms().unwrap(), 9.9), "{:?}", h.p99_ms());
        assert!(close(h.max_ms().unwrap(), 10.0));
    }

    #[test]
    fn tail_is_not_hidden_by_the_bulk() {
        // 98 fast samples and 2 slow ones: the p99 must be a slow one.
        let mut h = DurationHistogram::new();
        for _ in 0..98 {
            h.record_ms(1.0);
        }
        h.record_ms(250.0);
        h.record_ms(250.0);
        assert!(close(h.p50_ms().unwrap(), 1.0));
        assert!(close(h.p99_ms().unwrap(), 250.0));
    }

    #[test]
    fn merge_equals_recording_everything_in_one() {
        let mut a = DurationHistogram::new();
        let mut b = DurationHistogram::new();
        let mut all = DurationHistogram::new();
        for v in 0..500u64 {
            let us = v * 37 % 20_000;
            if v % 3 == 0 {
                a.record_us(us);
            } else {
                b.record_us(us);
            }
            all.record_us(us);
        }
        a.merge(&b);
        assert_eq!(a.count(), all.count());
        for q in [0.1, 0.5, 0.9, 0.99, 1.0] {
            assert_eq!(a.quantile_ms(q), all.quantile_ms(q));
        }
    }

    #[test]
    fn buckets_rebuild_the_same_histogram_through_json() {
        let mut h = DurationHistogram::new();
        for v in 0..3000u64 {
            h.record_us(v * v % 250_000 + 1);
        }
        h.record_ms(1e9);
        let json = serde_json::to_string(&h.buckets()).unwrap();
        let back: HistogramBuckets = serde_json::from_str(&json).unwrap();
        let rebuilt = DurationHistogram::from_buckets(&back);
        assert_eq!(rebuilt.count(), h.count());
        for q in [0.0, 0.25, 0.5, 0.9, 0.99, 0.999, 1.0] {
            assert_eq!(rebuilt.quantile_ms(q), h.quantile_ms(q), "q {q}");
        }
        assert_eq!(rebuilt.buckets(), h.buckets());
        assert_eq!(
            DurationHistogram::from_buckets(&"".parse().unwrap()).count(),
            0
        );
        for bad in ["12*0", "x", "3*", "-4", "5*2*1"] {
            assert!(bad.parse::<HistogramBuckets>().is_err(), "{bad}");
        }
        assert_eq!(
            "7 9*3".parse::<HistogramBuckets>().unwrap().to_string(),
            "7 9*3"
        );
    }

    #[test]
    fn out_of_range_values_are_clamped_not_lost() {
        let mut h = DurationHistogram::new();
        h.record_ms(-5.0);
        h.record_ms(f64::NAN);
        h.record_us(u64::MAX);
        assert_eq!(h.count(), 3);
        assert!(close(h.max_ms().unwrap(), 600_000.0));
    }
}
