//! Bounds and timings of a session endpoint and of the server's registry.

use std::time::Duration;

use crate::error::Error;

/// One side of a session: its replay buffer and when it acknowledges.
///
/// ```
/// use std::time::Duration;
/// use tether_session::EndpointConfig;
///
/// let mut config = EndpointConfig::default();
/// config.set_max_replay_messages(256).set_ack_delay(Duration::from_millis(50));
/// assert!(config.validate().is_ok());
/// assert_eq!(config.max_replay_bytes(), 1 << 20);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndpointConfig {
    max_replay_messages: usize,
    max_replay_bytes: usize,
    ack_every: u64,
    ack_bytes: usize,
    ack_delay: Duration,
}

/// The most data bytes a receiver may take in before it acknowledges (docs/sessions.md §5).
pub const MAX_ACK_BYTES: usize = 256 << 10;

impl Default for EndpointConfig {
    fn default() -> Self {
        EndpointConfig {
            max_replay_messages: 1024,
            max_replay_bytes: 1 << 20,
            ack_every: 32,
            ack_bytes: 64 << 10,
            ack_delay: Duration::from_millis(200),
        }
    }
}

impl EndpointConfig {
    /// Sent messages kept until the peer acknowledges them (outbound). Default 1024; at
    /// least 1. A sender waits when it is reached.
    pub fn set_max_replay_messages(&mut self, messages: usize) -> &mut Self {
        self.max_replay_messages = messages;
        self
    }

    /// The value set with [`set_max_replay_messages`](Self::set_max_replay_messages).
    pub fn max_replay_messages(&self) -> usize {
        self.max_replay_messages
    }

    /// Bytes of sent messages kept until acknowledged (outbound). Default 1 MiB (a Tether
    /// server buffers twice that of a client's unacknowledged data before it stops
    /// reading); at least 1.
    pub fn set_max_replay_bytes(&mut self, bytes: usize) -> &mut Self {
        self.max_replay_bytes = bytes;
        self
    }

    /// The value set with [`set_max_replay_bytes`](Self::set_max_replay_bytes).
    pub fn max_replay_bytes(&self) -> usize {
        self.max_replay_bytes
    }

    /// Acknowledge after this many inbound data messages. Default 32 (the protocol's
    /// maximum); 1 to 32.
    pub fn set_ack_every(&mut self, messages: u64) -> &mut Self {
        self.ack_every = messages;
        self
    }

    /// The value set with [`set_ack_every`](Self::set_ack_every).
    pub fn ack_every(&self) -> u64 {
        self.ack_every
    }

    /// Acknowledge after this many bytes of inbound data. Default 64 KiB; 1 to
    /// [`MAX_ACK_BYTES`] (256 KiB, the protocol's bound).
    ///
    /// The peer keeps what it sent until this side acknowledges it: for a large message
    /// that is its whole payload, and an echo or a relay holds the receive buffer it
    /// arrived in. A side with many peers (a server) wants the others to acknowledge
    /// early; a side with one (a client) can let its peer acknowledge late, which costs
    /// both fewer acks. Tether's server acknowledges every 256 KiB, its client every
    /// 64 KiB.
    pub fn set_ack_bytes(&mut self, bytes: usize) -> &mut Self {
        self.ack_bytes = bytes;
        self
    }

    /// The value set with [`set_ack_bytes`](Self::set_ack_bytes).
    pub fn ack_bytes(&self) -> usize {
        self.ack_bytes
    }

    /// Acknowledge at most this long after the first unacknowledged inbound data message.
    /// Default 200 ms (the protocol's maximum); above zero, at most 200 ms.
    pub fn set_ack_delay(&mut self, delay: Duration) -> &mut Self {
        self.ack_delay = delay;
        self
    }

    /// The value set with [`set_ack_delay`](Self::set_ack_delay).
    pub fn ack_delay(&self) -> Duration {
        self.ack_delay
    }

    /// Checks every value.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] naming the first value out of range.
    pub fn validate(&self) -> Result<(), Error> {
        if self.max_replay_messages == 0 {
            return invalid("max_replay_messages", "must be at least 1");
        }
        if self.max_replay_bytes == 0 {
            return invalid("max_replay_bytes", "must be at least 1");
        }
        if !(1..=32).contains(&self.ack_every) {
            return invalid("ack_every", "must be 1 to 32 (the protocol's bound)");
        }
        if !(1..=MAX_ACK_BYTES).contains(&self.ack_bytes) {
            return invalid("ack_bytes", "must be 1 to 256 KiB (the protocol's bound)");
        }
        if self.ack_delay.is_zero() || self.ack_delay > Duration::from_millis(200) {
            return invalid("ack_delay", "must be above zero and at most 200 ms");
        }
        Ok(())
    }
}

/// The server's registry of sessions: how long and how many parked sessions it keeps.
///
/// ```
/// use std::time::Duration;
/// use tether_session::RegistryConfig;
///
/// let mut config = RegistryConfig::default();
/// config.set_resume_window(Duration::from_secs(30)).set_max_parked(100);
/// assert!(config.validate().is_ok());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegistryConfig {
    resume_window: Duration,
    max_parked: usize,
    max_parked_bytes: usize,
    max_dropped: usize,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            resume_window: Duration::from_secs(120),
            max_parked: 10_000,
            max_parked_bytes: 256 << 20,
            max_dropped: 10_000,
        }
    }
}

impl RegistryConfig {
    /// How long a parked session (its connection gone) waits for a resume. Default 120 s.
    pub fn set_resume_window(&mut self, window: Duration) -> &mut Self {
        self.resume_window = window;
        self
    }

    /// The value set with [`set_resume_window`](Self::set_resume_window).
    pub fn resume_window(&self) -> Duration {
        self.resume_window
    }

    /// Parked sessions kept at most; parking one more drops the oldest (`lost limit`).
    /// Default 10 000; at least 1.
    pub fn set_max_parked(&mut self, sessions: usize) -> &mut Self {
        self.max_parked = sessions;
        self
    }

    /// The value set with [`set_max_parked`](Self::set_max_parked).
    pub fn max_parked(&self) -> usize {
        self.max_parked
    }

    /// Bytes of all parked sessions' replay buffers; past it the oldest are dropped.
    /// Default 256 MiB; at least 1.
    pub fn set_max_parked_bytes(&mut self, bytes: usize) -> &mut Self {
        self.max_parked_bytes = bytes;
        self
    }

    /// The value set with [`set_max_parked_bytes`](Self::set_max_parked_bytes).
    pub fn max_parked_bytes(&self) -> usize {
        self.max_parked_bytes
    }

    /// Ids of dropped sessions remembered (for one resume window each) so that a resume
    /// hears `expired` or `limit` rather than `unknown`. Default 10 000; 0 remembers none.
    pub fn set_max_dropped(&mut self, ids: usize) -> &mut Self {
        self.max_dropped = ids;
        self
    }

    /// The value set with [`set_max_dropped`](Self::set_max_dropped).
    pub fn max_dropped(&self) -> usize {
        self.max_dropped
    }

    /// Checks every value.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] naming the first value out of range.
    pub fn validate(&self) -> Result<(), Error> {
        if self.resume_window.is_zero() {
            return invalid("resume_window", "must be above zero");
        }
        if self.max_parked == 0 {
            return invalid("max_parked", "must be at least 1");
        }
        if self.max_parked_bytes == 0 {
            return invalid("max_parked_bytes", "must be at least 1");
        }
        Ok(())
    }
}

fn invalid(field: &'static str, problem: &'static str) -> Result<(), Error> {
    Err(Error::InvalidConfig { field, problem })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// docs/sessions.md §5: acks at most 32 messages and 256 KiB apart.
    #[test]
    fn sessions_md_5_ack_bounds_at_the_protocols_limit_and_one_past() {
        let mut config = EndpointConfig::default();
        assert_eq!(config.ack_bytes(), 64 << 10);
        config.set_ack_every(32).set_ack_bytes(MAX_ACK_BYTES);
        assert!(config.validate().is_ok());
        config.set_ack_bytes(MAX_ACK_BYTES + 1);
        assert!(matches!(
            config.validate(),
            Err(Error::InvalidConfig {
                field: "ack_bytes",
                ..
            })
        ));
        config.set_ack_bytes(1);
        assert!(config.validate().is_ok());
        config.set_ack_bytes(0);
        assert!(config.validate().is_err());
        config.set_ack_bytes(1).set_ack_every(33);
        assert!(matches!(
            config.validate(),
            Err(Error::InvalidConfig {
                field: "ack_every",
                ..
            })
        ));
    }
}
