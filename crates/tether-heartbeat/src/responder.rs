//! The answering side: ping-rate strikes against peers that probe too often.

use std::time::{Duration, Instant};

use crate::error::Error;

/// Limits on the peer's probes (both roles answer them; servers care most).
///
/// ```
/// use std::time::Duration;
/// use tether_heartbeat::ResponderConfig;
///
/// let mut config = ResponderConfig::default();
/// config.set_min_probe_spacing(Some(Duration::from_secs(5))).set_max_strikes(2);
/// assert!(config.validate().is_ok());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponderConfig {
    min_probe_spacing: Option<Duration>,
    max_strikes: u8,
}

impl Default for ResponderConfig {
    fn default() -> Self {
        ResponderConfig {
            min_probe_spacing: Some(Duration::from_secs(1)),
            max_strikes: 3,
        }
    }
}

impl ResponderConfig {
    /// Shortest allowed gap between two probes from the peer; a closer one is a strike.
    /// Default 1 s (a well-behaved peer probes every few seconds at most, and its
    /// extra probe after a miss waits a whole pong timeout). `None` turns strikes off.
    pub fn set_min_probe_spacing(&mut self, spacing: Option<Duration>) -> &mut Self {
        self.min_probe_spacing = spacing;
        self
    }

    /// The value set with [`set_min_probe_spacing`](Self::set_min_probe_spacing).
    pub fn min_probe_spacing(&self) -> Option<Duration> {
        self.min_probe_spacing
    }

    /// Strikes tolerated; the next one closes the connection with 1008. Default 3.
    pub fn set_max_strikes(&mut self, strikes: u8) -> &mut Self {
        self.max_strikes = strikes;
        self
    }

    /// The value set with [`set_max_strikes`](Self::set_max_strikes).
    pub fn max_strikes(&self) -> u8 {
        self.max_strikes
    }

    /// Checks the values.
    pub fn validate(&self) -> Result<(), Error> {
        if self.min_probe_spacing.is_some_and(|s| s.is_zero()) {
            return Err(Error::InvalidConfig {
                field: "min_probe_spacing",
                problem: "must be above zero (use None to turn strikes off)",
            });
        }
        Ok(())
    }
}

/// What to do with a peer's probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RateVerdict {
    /// Answer it.
    Answer,
    /// Answer it, but it came too soon: this is strike number `n`.
    Strike(u8),
    /// Too many strikes: close with 1008 (policy violation).
    Close,
}

/// Sans-IO ping-rate limiter: the peer's probes get strikes when they come too close
/// together, and the connection closes past the allowed strikes. A well-spaced probe
/// clears the strikes. Stamps one instant per probe; allocates nothing.
///
/// ```
/// use std::time::{Duration, Instant};
/// use tether_heartbeat::sans_io::{ProbeRateLimit, RateVerdict};
/// use tether_heartbeat::ResponderConfig;
///
/// let mut config = ResponderConfig::default();
/// config.set_min_probe_spacing(Some(Duration::from_secs(1))).set_max_strikes(1);
/// let mut limit = ProbeRateLimit::new(&config);
/// let t0 = Instant::now();
/// assert_eq!(limit.on_probe(t0), RateVerdict::Answer);
/// assert_eq!(limit.on_probe(t0 + Duration::from_millis(10)), RateVerdict::Strike(1));
/// assert_eq!(limit.on_probe(t0 + Duration::from_millis(20)), RateVerdict::Close);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct ProbeRateLimit {
    spacing: Option<Duration>,
    max_strikes: u8,
    strikes: u8,
    last: Option<Instant>,
}

impl ProbeRateLimit {
    /// A limiter with no probe seen yet.
    pub fn new(config: &ResponderConfig) -> Self {
        ProbeRateLimit {
            spacing: config.min_probe_spacing,
            max_strikes: config.max_strikes,
            strikes: 0,
            last: None,
        }
    }

    /// A peer probe arrived at `now`.
    pub fn on_probe(&mut self, now: Instant) -> RateVerdict {
        let (Some(spacing), Some(last)) = (self.spacing, self.last) else {
            self.last = Some(now);
            return RateVerdict::Answer;
        };
        self.last = Some(now);
        if now.saturating_duration_since(last) >= spacing {
            self.strikes = 0;
            return RateVerdict::Answer;
        }
        if self.strikes >= self.max_strikes {
            return RateVerdict::Close;
        }
        self.strikes += 1;
        RateVerdict::Strike(self.strikes)
    }

    /// Strikes so far.
    pub fn strikes(&self) -> u8 {
        self.strikes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(spacing_ms: u64, strikes: u8) -> ProbeRateLimit {
        let mut config = ResponderConfig::default();
        config
            .set_min_probe_spacing(Some(Duration::from_millis(spacing_ms)))
            .set_max_strikes(strikes);
        ProbeRateLimit::new(&config)
    }

    #[test]
    fn spacing_exactly_at_limit_is_no_strike_one_below_is() {
        let t0 = Instant::now();
        let mut limit = limiter(1000, 3);
        assert_eq!(limit.on_probe(t0), RateVerdict::Answer);
        let t1 = t0 + Duration::from_millis(1000);
        assert_eq!(limit.on_probe(t1), RateVerdict::Answer);
        let t2 = t1 + Duration::from_millis(999);
        assert_eq!(limit.on_probe(t2), RateVerdict::Strike(1));
    }

    #[test]
    fn strikes_at_limit_answer_and_one_past_closes() {
        let t0 = Instant::now();
        let mut limit = limiter(1000, 3);
        limit.on_probe(t0);
        for n in 1..=3u8 {
            let at = t0 + Duration::from_millis(u64::from(n));
            assert_eq!(limit.on_probe(at), RateVerdict::Strike(n));
        }
        assert_eq!(limit.strikes(), 3);
        assert_eq!(
            limit.on_probe(t0 + Duration::from_millis(4)),
            RateVerdict::Close
        );
    }

    #[test]
    fn well_spaced_probe_clears_strikes() {
        let t0 = Instant::now();
        let mut limit = limiter(1000, 1);
        limit.on_probe(t0);
        assert_eq!(limit.on_probe(t0), RateVerdict::Strike(1));
        assert_eq!(
            limit.on_probe(t0 + Duration::from_secs(2)),
            RateVerdict::Answer
        );
        assert_eq!(limit.strikes(), 0);
    }

    #[test]
    fn no_spacing_means_no_strikes() {
        let mut config = ResponderConfig::default();
        config.set_min_probe_spacing(None);
        let mut limit = ProbeRateLimit::new(&config);
        let t0 = Instant::now();
        for _ in 0..100 {
            assert_eq!(limit.on_probe(t0), RateVerdict::Answer);
        }
        config.set_min_probe_spacing(Some(Duration::ZERO));
        assert!(matches!(
            config.validate(),
            Err(Error::InvalidConfig {
                field: "min_probe_spacing",
                ..
            })
        ));
    }
}
