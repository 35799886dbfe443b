//! Round-trip time estimation and the adaptive pong timeout (RFC 6298 style).

use std::time::Duration;

/// Round-trip statistics of one connection, measured per acknowledged probe.
///
/// Follows the estimator of RFC 6298 §2: the first sample sets `smoothed = R` and
/// `variance = R/2`; later samples update `variance = 3/4 variance + 1/4 |smoothed - R|`
/// and then `smoothed = 7/8 smoothed + 1/8 R`. The pong timeout derived from it is
/// `smoothed + max(G, 4 variance)`, clamped to a floor and a ceiling.
///
/// ```
/// use std::time::Duration;
/// use tether_heartbeat::sans_io::RttStats;
///
/// let mut rtt = RttStats::default();
/// assert_eq!(rtt.smoothed(), None);
/// rtt.sample(Duration::from_millis(100));
/// assert_eq!(rtt.smoothed(), Some(Duration::from_millis(100)));
/// assert_eq!(rtt.variance(), Some(Duration::from_millis(50)));
/// // 100 ms + 4 * 50 ms = 300 ms, inside the [1 s, 30 s] bounds: the floor wins.
/// let timeout = rtt.timeout(Duration::from_secs(1), Duration::from_secs(30));
/// assert_eq!(timeout, Duration::from_secs(1));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RttStats {
    last: Option<Duration>,
    smoothed: Duration,
    variance: Duration,
    min: Duration,
}

/// Clock granularity `G` of RFC 6298 §2: the smallest variance term the timeout keeps.
const GRANULARITY: Duration = Duration::from_millis(1);

impl RttStats {
    /// Feeds one round-trip sample (probe written to its pong read).
    pub fn sample(&mut self, rtt: Duration) {
        match self.last {
            None => {
                // RFC 6298 §2.2: "SRTT <- R, RTTVAR <- R/2".
                self.smoothed = rtt;
                self.variance = rtt / 2;
                self.min = rtt;
            }
            Some(_) => {
                // RFC 6298 §2.3: RTTVAR is updated with the old SRTT, then SRTT.
                let delta = self.smoothed.abs_diff(rtt);
                self.variance = (self.variance * 3 + delta) / 4;
                self.smoothed = (self.smoothed * 7 + rtt) / 8;
                self.min = self.min.min(rtt);
            }
        }
        self.last = Some(rtt);
    }

    /// The most recent sample, `None` before the first acknowledged probe.
    pub fn last(&self) -> Option<Duration> {
        self.last
    }

    /// The smoothed round-trip time (SRTT), `None` before the first sample.
    pub fn smoothed(&self) -> Option<Duration> {
        self.last.map(|_| self.smoothed)
    }

    /// The round-trip variation (RTTVAR), `None` before the first sample.
    pub fn variance(&self) -> Option<Duration> {
        self.last.map(|_| self.variance)
    }

    /// The smallest sample seen, `None` before the first sample.
    pub fn min(&self) -> Option<Duration> {
        self.last.map(|_| self.min)
    }

    /// The pong timeout: `smoothed + max(G, 4 variance)` clamped to `[floor, ceiling]`;
    /// `floor` before the first sample. A `ceiling` below `floor` is treated as `floor`.
    pub fn timeout(&self, floor: Duration, ceiling: Duration) -> Duration {
        let ceiling = ceiling.max(floor);
        match self.last {
            None => floor,
            Some(_) => {
                let spread = (self.variance.saturating_mul(4)).max(GRANULARITY);
                self.smoothed.saturating_add(spread).clamp(floor, ceiling)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn rfc6298_2_2_first_sample_sets_srtt_and_half_variance() {
        let mut rtt = RttStats::default();
        rtt.sample(MS * 200);
        assert_eq!(rtt.smoothed(), Some(MS * 200));
        assert_eq!(rtt.variance(), Some(MS * 100));
        assert_eq!(rtt.min(), Some(MS * 200));
        assert_eq!(rtt.last(), Some(MS * 200));
    }

    #[test]
    fn rfc6298_2_3_later_samples_update_variance_before_srtt() {
        let mut rtt = RttStats::default();
        rtt.sample(MS * 200);
        rtt.sample(MS * 600);
        // RTTVAR = 3/4 * 100 + 1/4 * |200 - 600| = 175; SRTT = 7/8 * 200 + 1/8 * 600 = 250.
        assert_eq!(rtt.variance(), Some(MS * 175));
        assert_eq!(rtt.smoothed(), Some(MS * 250));
        assert_eq!(rtt.min(), Some(MS * 200));
        assert_eq!(rtt.last(), Some(MS * 600));
    }

    #[test]
    fn timeout_is_floor_before_any_sample_and_clamped_after() {
        let mut rtt = RttStats::default();
        let (floor, ceiling) = (MS * 1000, MS * 5000);
        assert_eq!(rtt.timeout(floor, ceiling), floor);
        rtt.sample(MS * 2000);
        // 2000 + 4 * 1000 = 6000, above the ceiling.
        assert_eq!(rtt.timeout(floor, ceiling), ceiling);
        let mut small = RttStats::default();
        small.sample(MS * 10);
        assert_eq!(small.timeout(floor, ceiling), floor);
        let mut mid = RttStats::default();
        mid.sample(MS * 400);
        // 400 + 4 * 200 = 1200, between the bounds.
        assert_eq!(mid.timeout(floor, ceiling), MS * 1200);
    }

    #[test]
    fn timeout_keeps_granularity_when_variance_vanishes() {
        let mut rtt = RttStats::default();
        for _ in 0..200 {
            rtt.sample(MS * 50);
        }
        assert_eq!(rtt.timeout(Duration::ZERO, MS * 1000), MS * 51);
    }
}
