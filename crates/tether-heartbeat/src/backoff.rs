//! Reconnection delays: exponential backoff with full jitter, a cap and a reset rule.

use std::time::{Duration, Instant};

use crate::error::Error;
use crate::splitmix::{splitmix64, unit};

/// Reconnection settings.
///
/// ```
/// use std::time::Duration;
/// use tether_heartbeat::ReconnectConfig;
///
/// let mut config = ReconnectConfig::default();
/// config.set_initial_delay(Duration::from_millis(200)).set_max_retries(Some(10));
/// assert!(config.validate().is_ok());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReconnectConfig {
    pub(crate) initial_delay: Duration,
    pub(crate) max_delay: Duration,
    pub(crate) min_uptime: Duration,
    pub(crate) max_retries: Option<u32>,
    pub(crate) max_elapsed: Option<Duration>,
    pub(crate) restart_floor: Duration,
    pub(crate) max_retry_after: Duration,
}

impl Default for ReconnectConfig {
    fn default() -> Self {
        ReconnectConfig {
            initial_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(30),
            min_uptime: Duration::from_secs(10),
            max_retries: None,
            max_elapsed: None,
            restart_floor: Duration::from_secs(5),
            max_retry_after: Duration::from_secs(300),
        }
    }
}

impl ReconnectConfig {
    /// Upper bound of the first delay; the `n`th consecutive failure waits a uniformly
    /// random time in `[0, min(max_delay, initial_delay * 2^n)]` (full jitter). Default 1 s.
    /// The first reconnection after a drop waits a random time too, so many clients cut
    /// off by one outage do not return at once.
    pub fn set_initial_delay(&mut self, delay: Duration) -> &mut Self {
        self.initial_delay = delay;
        self
    }

    /// The value set with [`set_initial_delay`](Self::set_initial_delay).
    pub fn initial_delay(&self) -> Duration {
        self.initial_delay
    }

    /// Cap of the backoff window. Default 30 s; not below `initial_delay`.
    pub fn set_max_delay(&mut self, delay: Duration) -> &mut Self {
        self.max_delay = delay;
        self
    }

    /// The value set with [`set_max_delay`](Self::set_max_delay).
    pub fn max_delay(&self) -> Duration {
        self.max_delay
    }

    /// How long a connection must stay open before the backoff starts over. Default 10 s:
    /// a server that accepts and closes at once keeps the backoff growing.
    pub fn set_min_uptime(&mut self, uptime: Duration) -> &mut Self {
        self.min_uptime = uptime;
        self
    }

    /// The value set with [`set_min_uptime`](Self::set_min_uptime).
    pub fn min_uptime(&self) -> Duration {
        self.min_uptime
    }

    /// Consecutive failed attempts after which the client gives up. Default `None` (never).
    pub fn set_max_retries(&mut self, retries: Option<u32>) -> &mut Self {
        self.max_retries = retries;
        self
    }

    /// The value set with [`set_max_retries`](Self::set_max_retries).
    pub fn max_retries(&self) -> Option<u32> {
        self.max_retries
    }

    /// Time since the link went down after which the client gives up. Default `None`.
    pub fn set_max_elapsed(&mut self, elapsed: Option<Duration>) -> &mut Self {
        self.max_elapsed = elapsed;
        self
    }

    /// The value set with [`set_max_elapsed`](Self::set_max_elapsed).
    pub fn max_elapsed(&self) -> Option<Duration> {
        self.max_elapsed
    }

    /// Least delay after a close with 1012 (service restart) or 1013 (try again later).
    /// Default 5 s. A `Retry-After` header sets its own floor.
    pub fn set_restart_floor(&mut self, floor: Duration) -> &mut Self {
        self.restart_floor = floor;
        self
    }

    /// The value set with [`set_restart_floor`](Self::set_restart_floor).
    pub fn restart_floor(&self) -> Duration {
        self.restart_floor
    }

    /// Most a server may hold back the next attempt: a `Retry-After` (or any floor the retry
    /// policy sets) above it waits this long instead. Default 5 min: a server, or whatever
    /// answers in its place, cannot park the client for days.
    pub fn set_max_retry_after(&mut self, cap: Duration) -> &mut Self {
        self.max_retry_after = cap;
        self
    }

    /// The value set with [`set_max_retry_after`](Self::set_max_retry_after).
    pub fn max_retry_after(&self) -> Duration {
        self.max_retry_after
    }

    /// Checks the values against each other.
    pub fn validate(&self) -> Result<(), Error> {
        if self.initial_delay.is_zero() {
            return Err(Error::InvalidConfig {
                field: "initial_delay",
                problem: "must be above zero",
            });
        }
        if self.max_delay < self.initial_delay {
            return Err(Error::InvalidConfig {
                field: "max_delay",
                problem: "must not be below initial_delay",
            });
        }
        Ok(())
    }
}

/// Sans-IO backoff: the delay before each reconnection attempt.
///
/// ```
/// use std::time::{Duration, Instant};
/// use tether_heartbeat::sans_io::Backoff;
/// use tether_heartbeat::ReconnectConfig;
///
/// let mut config = ReconnectConfig::default();
/// config.set_initial_delay(Duration::from_secs(1)).set_max_delay(Duration::from_secs(8));
/// let mut backoff = Backoff::new(&config, 42);
/// for n in 0..10 {
///     let window = Duration::from_secs(1 << n.min(3));
///     assert!(backoff.next_delay(None) <= window);
/// }
/// // A server asking for 20 s (Retry-After) gets at least that.
/// assert!(backoff.next_delay(Some(Duration::from_secs(20))) >= Duration::from_secs(20));
/// ```
#[derive(Debug, Clone)]
pub struct Backoff {
    config: ReconnectConfig,
    rng: u64,
    attempt: u32,
    connected_at: Option<Instant>,
}

impl Backoff {
    /// A backoff at its first attempt; `seed` drives the jitter.
    pub fn new(config: &ReconnectConfig, seed: u64) -> Self {
        Backoff {
            config: *config,
            rng: seed,
            attempt: 0,
            connected_at: None,
        }
    }

    /// Consecutive attempts so far (0 after a reset).
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The delay before the next attempt, at least `floor` capped at
    /// [`ReconnectConfig::max_retry_after`]; counts one attempt.
    pub fn next_delay(&mut self, floor: Option<Duration>) -> Duration {
        let window = self.window();
        self.attempt = self.attempt.saturating_add(1);
        let delay = window.mul_f64(unit(splitmix64(&mut self.rng)));
        let cap = self.config.max_retry_after;
        delay.max(floor.unwrap_or(Duration::ZERO).min(cap))
    }

    /// A connection opened at `now`.
    pub fn on_connected(&mut self, now: Instant) {
        self.connected_at = Some(now);
    }

    /// The connection opened last closed at `now`: the backoff starts over only if it
    /// stayed up for the minimum uptime.
    pub fn on_disconnected(&mut self, now: Instant) {
        if let Some(at) = self.connected_at.take() {
            if now.saturating_duration_since(at) >= self.config.min_uptime {
                self.attempt = 0;
            }
        }
    }

    fn window(&self) -> Duration {
        // 2^attempt saturates long before u32 overflows matter: the cap bounds it anyway.
        let factor = 1u32.checked_shl(self.attempt.min(31)).unwrap_or(u32::MAX);
        self.config
            .initial_delay
            .saturating_mul(factor)
            .min(self.config.max_delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ReconnectConfig {
        let mut config = ReconnectConfig::default();
        config
            .set_initial_delay(Duration::from_millis(100))
            .set_max_delay(Duration::from_secs(10))
            .set_min_uptime(Duration::from_secs(5));
        config
    }

    #[test]
    fn window_doubles_up_to_the_cap() {
        let mut backoff = Backoff::new(&config(), 1);
        let mut windows = Vec::new();
        for _ in 0..10 {
            windows.push(backoff.window());
            backoff.next_delay(None);
        }
        assert_eq!(windows[0], Duration::from_millis(100));
        assert_eq!(windows[1], Duration::from_millis(200));
        assert_eq!(windows[6], Duration::from_millis(6400));
        assert_eq!(windows[7], Duration::from_secs(10));
        assert_eq!(windows[9], Duration::from_secs(10));
        for _ in 0..100 {
            backoff.next_delay(None);
        }
        assert_eq!(backoff.window(), Duration::from_secs(10));
    }

    #[test]
    fn full_jitter_spreads_over_the_whole_window() {
        let mut low = 0;
        for seed in 0..1000 {
            let mut backoff = Backoff::new(&config(), seed);
            let delay = backoff.next_delay(None);
            assert!(delay <= Duration::from_millis(100));
            if delay < Duration::from_millis(50) {
                low += 1;
            }
        }
        assert!((400..600).contains(&low), "{low} of 1000 in the lower half");
    }

    #[test]
    fn reset_only_after_min_uptime_at_limit_not_below() {
        let t0 = Instant::now();
        let mut backoff = Backoff::new(&config(), 1);
        for _ in 0..4 {
            backoff.next_delay(None);
        }
        backoff.on_connected(t0);
        backoff.on_disconnected(t0 + Duration::from_millis(4999));
        assert_eq!(backoff.attempt(), 4);
        backoff.on_connected(t0);
        backoff.on_disconnected(t0 + Duration::from_secs(5));
        assert_eq!(backoff.attempt(), 0);
    }

    #[test]
    fn a_floor_is_capped_at_max_retry_after_at_the_cap_and_past_it() {
        let mut config = config();
        config.set_max_retry_after(Duration::from_secs(300));
        let mut backoff = Backoff::new(&config, 1);
        let cap = Duration::from_secs(300);
        assert_eq!(backoff.next_delay(Some(cap)), cap);
        assert_eq!(backoff.next_delay(Some(cap + Duration::from_nanos(1))), cap);
        assert_eq!(backoff.next_delay(Some(Duration::MAX)), cap);
    }

    #[test]
    fn invalid_bounds_are_refused() {
        let mut config = config();
        config.set_max_delay(Duration::from_millis(99));
        assert!(matches!(
            config.validate(),
            Err(Error::InvalidConfig {
                field: "max_delay",
                ..
            })
        ));
    }
}
