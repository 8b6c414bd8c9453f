//! Small statistics: latency percentiles and rates, formatted for the table.

use std::time::Duration;

/// Latencies in microseconds, sorted once for percentiles.
#[derive(Debug, Default)]
pub(crate) struct Latencies(Vec<u32>);

impl Latencies {
    /// The samples, in any order.
    pub(crate) fn new(mut samples: Vec<u32>) -> Self {
        samples.sort_unstable();
        Self(samples)
    }

    /// How many samples there are.
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// The `p`-th percentile (0-100), nearest rank; zero without samples.
    pub(crate) fn percentile(&self, p: u32) -> Duration {
        let Some(last) = self.0.len().checked_sub(1) else {
            return Duration::ZERO;
        };
        let rank = (last * usize::try_from(p.min(100)).unwrap_or(100)).div_ceil(100);
        Duration::from_micros(u64::from(self.0[rank]))
    }

    /// The largest sample.
    pub(crate) fn max(&self) -> Duration {
        self.0
            .last()
            .map_or(Duration::ZERO, |us| Duration::from_micros(u64::from(*us)))
    }

    /// "p50 / p99 / max" in milliseconds.
    pub(crate) fn summary(&self) -> String {
        format!(
            "p50 {} · p99 {} · max {}",
            millis(self.percentile(50)),
            millis(self.percentile(99)),
            millis(self.max())
        )
    }
}

/// A duration in microseconds for a latency sample (saturating at ~71 minutes).
pub(crate) fn micros(duration: Duration) -> u32 {
    u32::try_from(duration.as_micros()).unwrap_or(u32::MAX)
}

/// `count` per second over `elapsed`.
#[expect(
    clippy::cast_precision_loss,
    reason = "counts stay far below 2^52, where f64 is exact"
)]
pub(crate) fn per_second(count: u64, elapsed: Duration) -> f64 {
    let seconds = elapsed.as_secs_f64();
    if seconds > 0.0 {
        count as f64 / seconds
    } else {
        0.0
    }
}

/// `count` as f64, for ratios.
#[expect(
    clippy::cast_precision_loss,
    reason = "counts stay far below 2^52, where f64 is exact"
)]
pub(crate) fn float(count: u64) -> f64 {
    count as f64
}

/// A duration as "12.3 ms".
pub(crate) fn millis(duration: Duration) -> String {
    let ms = duration.as_secs_f64() * 1000.0;
    if ms >= 100.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{ms:.1} ms")
    }
}

/// A rate as "123,456/s".
pub(crate) fn rate(per_second: f64) -> String {
    format!("{}/s", thousands(per_second.round()))
}

/// A whole number with thousands separators.
#[expect(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "rates and counts are non-negative and far below u64::MAX"
)]
pub(crate) fn thousands(value: f64) -> String {
    let digits = (value.max(0.0) as u64).to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_take_the_nearest_rank() {
        let latencies = Latencies::new((1..=100).rev().collect());
        assert_eq!(latencies.percentile(50), Duration::from_micros(51));
        assert_eq!(latencies.percentile(99), Duration::from_micros(100));
        assert_eq!(latencies.percentile(0), Duration::from_micros(1));
        assert_eq!(latencies.max(), Duration::from_micros(100));
        assert_eq!(Latencies::default().percentile(99), Duration::ZERO);
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(thousands(1_234_567.0), "1,234,567");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(rate(200_000.4), "200,000/s");
        assert_eq!(millis(Duration::from_micros(1500)), "1.5 ms");
        assert!((per_second(500, Duration::from_millis(250)) - 2000.0).abs() < 1e-9);
    }
}
