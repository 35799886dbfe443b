//! Keepalive configuration: how often to probe and when to give up on the peer.

use std::time::Duration;

use crate::error::Error;

/// The largest number of probes that may be in flight at once (the cap of
/// [`KeepaliveConfig::max_in_flight`]); the per-connection state holds one slot per probe.
pub const MAX_IN_FLIGHT: usize = 4;

/// Which evidence keeps a link alive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Verdict {
    /// Any inbound frame written after a probe answers the question "is anything
    /// arriving?" for that probe's pong timeout; the probe still needs its pong within
    /// the round-trip deadline, so a link that only works one way is caught too.
    #[default]
    Activity,
    /// Only a pong echoing the probe's nonce, within the pong timeout, saves the probe.
    RoundTrip,
}

/// Keepalive settings for one connection: probing, verdict, stall limits.
///
/// ```
/// use std::time::Duration;
/// use tether_heartbeat::KeepaliveConfig;
///
/// let mut config = KeepaliveConfig::default();
/// config.set_interval(Duration::from_secs(5)).set_pong_timeout(Duration::from_secs(2));
/// assert!(config.validate().is_ok());
/// config.set_max_in_flight(0);
/// assert!(config.validate().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KeepaliveConfig {
    pub(crate) interval: Duration,
    pub(crate) jitter: f64,
    pub(crate) pong_timeout: Duration,
    pub(crate) max_pong_timeout: Duration,
    pub(crate) round_trip_deadline: Duration,
    pub(crate) misses_to_dead: u8,
    pub(crate) max_in_flight: u8,
    pub(crate) verdict: Verdict,
    pub(crate) stall_tolerance: Duration,
    pub(crate) max_write_stall: Duration,
    pub(crate) max_read_stall: Duration,
}

impl Default for KeepaliveConfig {
    fn default() -> Self {
        KeepaliveConfig {
            interval: Duration::from_secs(20),
            jitter: 0.1,
            pong_timeout: Duration::from_secs(10),
            max_pong_timeout: Duration::from_secs(30),
            round_trip_deadline: Duration::from_secs(40),
            misses_to_dead: 2,
            max_in_flight: 2,
            verdict: Verdict::Activity,
            stall_tolerance: Duration::from_secs(1),
            max_write_stall: Duration::from_secs(30),
            max_read_stall: Duration::from_secs(30),
        }
    }
}

impl KeepaliveConfig {
    /// A consistent configuration from a probe interval and an optional pong timeout, as a
    /// command line gives them (`--heartbeat 5s [--heartbeat-timeout 2s]`).
    ///
    /// The pong timeout floor is `pong_timeout`, or the interval itself when `None`; the
    /// ceiling is twice the floor but at least the default 30 s; the round-trip deadline
    /// is twice the interval but at least the floor. Everything else keeps its default.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tether_heartbeat::KeepaliveConfig;
    ///
    /// for (interval, timeout) in [(5, None), (5, Some(2)), (120, None), (1, Some(60))] {
    ///     let config = KeepaliveConfig::with_interval(
    ///         Duration::from_secs(interval),
    ///         timeout.map(Duration::from_secs),
    ///     );
    ///     assert!(config.validate().is_ok());
    /// }
    /// ```
    pub fn with_interval(interval: Duration, pong_timeout: Option<Duration>) -> Self {
        let defaults = KeepaliveConfig::default();
        let floor = pong_timeout.unwrap_or(interval);
        KeepaliveConfig {
            interval,
            pong_timeout: floor,
            max_pong_timeout: floor.saturating_mul(2).max(defaults.max_pong_timeout),
            round_trip_deadline: interval.saturating_mul(2).max(floor),
            ..defaults
        }
    }

    /// Probe period, outbound. Default 20 s: below the 30-60 s idle timeouts of common
    /// proxies and NATs. A probe goes out when nothing but pongs arrived for about this
    /// long, or nothing was written for about this long.
    pub fn set_interval(&mut self, interval: Duration) -> &mut Self {
        self.interval = interval;
        self
    }

    /// The value set with [`set_interval`](Self::set_interval).
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Fraction of the interval by which each period is shortened at random, in `[0, 0.5]`.
    /// Default 0.1. The first probe goes out at a random phase in `[0, interval)`.
    pub fn set_jitter(&mut self, jitter: f64) -> &mut Self {
        self.jitter = jitter;
        self
    }

    /// The value set with [`set_jitter`](Self::set_jitter).
    pub fn jitter(&self) -> f64 {
        self.jitter
    }

    /// Pong timeout floor, and the timeout before any round trip was measured. Default 10 s.
    /// The timeout adapts to measured round trips (RFC 6298 §2) between this floor and
    /// [`max_pong_timeout`](Self::max_pong_timeout).
    pub fn set_pong_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.pong_timeout = timeout;
        self
    }

    /// The value set with [`set_pong_timeout`](Self::set_pong_timeout).
    pub fn pong_timeout(&self) -> Duration {
        self.pong_timeout
    }

    /// Pong timeout ceiling. Default 30 s; must not be below the floor.
    pub fn set_max_pong_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.max_pong_timeout = timeout;
        self
    }

    /// The value set with [`set_max_pong_timeout`](Self::set_max_pong_timeout).
    pub fn max_pong_timeout(&self) -> Duration {
        self.max_pong_timeout
    }

    /// How long a probe may wait for its pong when inbound activity (not a pong) arrived
    /// after it, and how old the last round-trip proof may grow before a busy link is
    /// probed anyway. Default 40 s; must not be below the pong timeout floor.
    pub fn set_round_trip_deadline(&mut self, deadline: Duration) -> &mut Self {
        self.round_trip_deadline = deadline;
        self
    }

    /// The value set with [`set_round_trip_deadline`](Self::set_round_trip_deadline).
    pub fn round_trip_deadline(&self) -> Duration {
        self.round_trip_deadline
    }

    /// Consecutive missed probes that make the link Dead. Default 2; at least 1.
    /// The first miss makes it Suspect and sends an extra probe at once.
    pub fn set_misses_to_dead(&mut self, misses: u8) -> &mut Self {
        self.misses_to_dead = misses;
        self
    }

    /// The value set with [`set_misses_to_dead`](Self::set_misses_to_dead).
    pub fn misses_to_dead(&self) -> u8 {
        self.misses_to_dead
    }

    /// Most probes in flight at once. Default 2; from 1 to [`MAX_IN_FLIGHT`].
    pub fn set_max_in_flight(&mut self, probes: u8) -> &mut Self {
        self.max_in_flight = probes;
        self
    }

    /// The value set with [`set_max_in_flight`](Self::set_max_in_flight).
    pub fn max_in_flight(&self) -> u8 {
        self.max_in_flight
    }

    /// Which evidence keeps the link alive. Default [`Verdict::Activity`].
    pub fn set_verdict(&mut self, verdict: Verdict) -> &mut Self {
        self.verdict = verdict;
        self
    }

    /// The value set with [`set_verdict`](Self::set_verdict).
    pub fn verdict(&self) -> Verdict {
        self.verdict
    }

    /// How late a timer may fire before this side counts as stalled (the runtime was
    /// blocked): the verdict then waits and a fresh probe goes out. Default 1 s.
    pub fn set_stall_tolerance(&mut self, tolerance: Duration) -> &mut Self {
        self.stall_tolerance = tolerance;
        self
    }

    /// The value set with [`set_stall_tolerance`](Self::set_stall_tolerance).
    pub fn stall_tolerance(&self) -> Duration {
        self.stall_tolerance
    }

    /// How long a probe may wait to be written (behind a large outbound message, on a
    /// slow transport) before the connection is closed as [`WriteStalled`]. Default 30 s.
    ///
    /// [`WriteStalled`]: crate::CloseReason::WriteStalled
    pub fn set_max_write_stall(&mut self, limit: Duration) -> &mut Self {
        self.max_write_stall = limit;
        self
    }

    /// The value set with [`set_max_write_stall`](Self::set_max_write_stall).
    pub fn max_write_stall(&self) -> Duration {
        self.max_write_stall
    }

    /// How long the application may leave inbound messages unread (reading from the
    /// transport pauses meanwhile, and no probe is judged) before the connection is
    /// closed as [`AppNotReading`]. Default 30 s.
    ///
    /// [`AppNotReading`]: crate::CloseReason::AppNotReading
    pub fn set_max_read_stall(&mut self, limit: Duration) -> &mut Self {
        self.max_read_stall = limit;
        self
    }

    /// The value set with [`set_max_read_stall`](Self::set_max_read_stall).
    pub fn max_read_stall(&self) -> Duration {
        self.max_read_stall
    }

    /// Checks the values against each other.
    pub fn validate(&self) -> Result<(), Error> {
        let invalid = |field, problem| Err(Error::InvalidConfig { field, problem });
        if self.interval.is_zero() {
            return invalid("interval", "must be above zero");
        }
        if !(0.0..=0.5).contains(&self.jitter) {
            return invalid("jitter", "must be within [0, 0.5]");
        }
        if self.pong_timeout.is_zero() {
            return invalid("pong_timeout", "must be above zero");
        }
        if self.max_pong_timeout < self.pong_timeout {
            return invalid("max_pong_timeout", "must not be below pong_timeout");
        }
        if self.round_trip_deadline < self.pong_timeout {
            return invalid("round_trip_deadline", "must not be below pong_timeout");
        }
        if self.misses_to_dead == 0 {
            return invalid("misses_to_dead", "must be at least 1");
        }
        if self.max_in_flight == 0 || usize::from(self.max_in_flight) > MAX_IN_FLIGHT {
            return invalid("max_in_flight", "must be within [1, 4]");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(config: &KeepaliveConfig) -> Option<&'static str> {
        match config.validate() {
            Err(Error::InvalidConfig { field, .. }) => Some(field),
            _ => None,
        }
    }

    #[test]
    fn default_is_valid() {
        assert_eq!(field_of(&KeepaliveConfig::default()), None);
    }

    #[test]
    fn with_interval_defaults_the_timeout_floor_to_the_interval() {
        let config = KeepaliveConfig::with_interval(Duration::from_secs(5), None);
        assert_eq!(config.pong_timeout, Duration::from_secs(5));
        assert_eq!(config.interval, Duration::from_secs(5));
        assert_eq!(config.round_trip_deadline, Duration::from_secs(10));
        let config = KeepaliveConfig::with_interval(Duration::from_secs(100), None);
        assert_eq!(config.max_pong_timeout, Duration::from_secs(200));
        assert_eq!(field_of(&config), None);
    }

    #[test]
    fn max_in_flight_at_limit_and_one_past() {
        let mut config = KeepaliveConfig::default();
        config.set_max_in_flight(MAX_IN_FLIGHT as u8);
        assert_eq!(field_of(&config), None);
        config.set_max_in_flight(MAX_IN_FLIGHT as u8 + 1);
        assert_eq!(field_of(&config), Some("max_in_flight"));
        config.set_max_in_flight(0);
        assert_eq!(field_of(&config), Some("max_in_flight"));
    }

    #[test]
    fn jitter_at_limit_and_one_past() {
        let mut config = KeepaliveConfig::default();
        config.set_jitter(0.5);
        assert_eq!(field_of(&config), None);
        config.set_jitter(0.500_001);
        assert_eq!(field_of(&config), Some("jitter"));
    }

    #[test]
    fn constrained_fields_are_checked_against_each_other() {
        let mut config = KeepaliveConfig::default();
        config
            .set_pong_timeout(Duration::from_secs(5))
            .set_max_pong_timeout(Duration::from_secs(4));
        assert_eq!(field_of(&config), Some("max_pong_timeout"));
        config
            .set_max_pong_timeout(Duration::from_secs(5))
            .set_round_trip_deadline(Duration::from_secs(4));
        assert_eq!(field_of(&config), Some("round_trip_deadline"));
        config
            .set_round_trip_deadline(Duration::from_secs(5))
            .set_misses_to_dead(0);
        assert_eq!(field_of(&config), Some("misses_to_dead"));
        config.set_misses_to_dead(1).set_interval(Duration::ZERO);
        assert_eq!(field_of(&config), Some("interval"));
    }
}
