//! What a supervisor is configured with, checked before it starts.

use std::time::Duration;

use crate::backoff::ReconnectConfig;
use crate::config::KeepaliveConfig;
use crate::error::Error;
use crate::keepalive::Timing;
use crate::outbox::OutboxConfig;
use crate::responder::ResponderConfig;

/// Everything a supervisor is configured with.
///
/// ```
/// use std::time::Duration;
/// use tether_heartbeat::{KeepaliveConfig, SupervisorConfig};
///
/// let mut keepalive = KeepaliveConfig::default();
/// keepalive.set_interval(Duration::from_secs(5));
/// let mut config = SupervisorConfig::default();
/// config.set_keepalive(Some(keepalive)).set_inbound_capacity(16).set_seed(Some(1));
/// assert!(config.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct SupervisorConfig {
    pub(super) keepalive: Option<KeepaliveConfig>,
    pub(super) reconnect: ReconnectConfig,
    pub(super) outbox: OutboxConfig,
    pub(super) responder: ResponderConfig,
    pub(super) close_grace: Duration,
    pub(super) inbound_capacity: usize,
    pub(super) inbound_bytes: usize,
    pub(super) event_capacity: usize,
    pub(super) seed: Option<u64>,
}

impl Default for SupervisorConfig {
    fn default() -> Self {
        SupervisorConfig {
            keepalive: Some(KeepaliveConfig::default()),
            reconnect: ReconnectConfig::default(),
            outbox: OutboxConfig::default(),
            responder: ResponderConfig::default(),
            close_grace: Duration::from_secs(1),
            inbound_capacity: 256,
            inbound_bytes: 1 << 20,
            event_capacity: 64,
            seed: None,
        }
    }
}

impl SupervisorConfig {
    /// Keepalive probing of the peer. Default on, with [`KeepaliveConfig::default`];
    /// `None` only answers the peer's probes (a server that leaves probing to clients).
    pub fn set_keepalive(&mut self, keepalive: Option<KeepaliveConfig>) -> &mut Self {
        self.keepalive = keepalive;
        self
    }

    /// The value set with [`set_keepalive`](Self::set_keepalive).
    pub fn keepalive(&self) -> Option<KeepaliveConfig> {
        self.keepalive
    }

    /// Reconnection of a client supervisor. Default [`ReconnectConfig::default`].
    pub fn set_reconnect(&mut self, reconnect: ReconnectConfig) -> &mut Self {
        self.reconnect = reconnect;
        self
    }

    /// The value set with [`set_reconnect`](Self::set_reconnect).
    pub fn reconnect(&self) -> ReconnectConfig {
        self.reconnect
    }

    /// Bounds of the outbox, which holds outbound messages until the transport takes
    /// them. Default [`OutboxConfig::default`].
    pub fn set_outbox(&mut self, outbox: OutboxConfig) -> &mut Self {
        self.outbox = outbox;
        self
    }

    /// The value set with [`set_outbox`](Self::set_outbox).
    pub fn outbox(&self) -> OutboxConfig {
        self.outbox
    }

    /// Limits on the peer's probes. Default [`ResponderConfig::default`].
    pub fn set_responder(&mut self, responder: ResponderConfig) -> &mut Self {
        self.responder = responder;
        self
    }

    /// The value set with [`set_responder`](Self::set_responder).
    pub fn responder(&self) -> ResponderConfig {
        self.responder
    }

    /// How long a closing connection may take to flush its close message and see the
    /// peer's end before the transport is dropped. Default 1 s (short: after a heartbeat
    /// death the peer is presumed gone).
    pub fn set_close_grace(&mut self, grace: Duration) -> &mut Self {
        self.close_grace = grace;
        self
    }

    /// The value set with [`set_close_grace`](Self::set_close_grace).
    pub fn close_grace(&self) -> Duration {
        self.close_grace
    }

    /// Inbound messages buffered for the application; when full, reading from the
    /// transport pauses (backpressure). Default 256; at least 1.
    pub fn set_inbound_capacity(&mut self, capacity: usize) -> &mut Self {
        self.inbound_capacity = capacity;
        self
    }

    /// The value set with [`set_inbound_capacity`](Self::set_inbound_capacity).
    pub fn inbound_capacity(&self) -> usize {
        self.inbound_capacity
    }

    /// Bytes of inbound messages (as the probe's `len` counts them) buffered for the
    /// application; once they reach this, reading from the transport pauses until the
    /// application receives (backpressure). Default 1 MiB; at least 1. The buffer holds at
    /// most this plus one message.
    pub fn set_inbound_bytes(&mut self, bytes: usize) -> &mut Self {
        self.inbound_bytes = bytes;
        self
    }

    /// The value set with [`set_inbound_bytes`](Self::set_inbound_bytes).
    pub fn inbound_bytes(&self) -> usize {
        self.inbound_bytes
    }

    /// Events buffered for the application; when full, new events are dropped and
    /// counted. Default 64; at least 1.
    pub fn set_event_capacity(&mut self, capacity: usize) -> &mut Self {
        self.event_capacity = capacity;
        self
    }

    /// The value set with [`set_event_capacity`](Self::set_event_capacity).
    pub fn event_capacity(&self) -> usize {
        self.event_capacity
    }

    /// Seed of the jitter and nonce generator. Default `None`: drawn from the OS.
    /// Fix it for reproducible tests.
    pub fn set_seed(&mut self, seed: Option<u64>) -> &mut Self {
        self.seed = seed;
        self
    }

    /// The value set with [`set_seed`](Self::set_seed).
    pub fn seed(&self) -> Option<u64> {
        self.seed
    }

    /// Checks every part, as [`Supervisor::connect`](crate::Supervisor::connect) and [`Supervisor::accept`](crate::Supervisor::accept) do before
    /// anything starts.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] naming the first value out of range.
    pub fn validate(&self) -> Result<(), Error> {
        self.checked().map(drop)
    }

    /// Validates everything once; gives the keepalive in the form a link starts from.
    pub(super) fn checked(&self) -> Result<Option<Timing>, Error> {
        self.reconnect.validate()?;
        self.outbox.validate()?;
        self.responder.validate()?;
        if self.inbound_capacity == 0 {
            return Err(Error::InvalidConfig {
                field: "inbound_capacity",
                problem: "must be at least 1",
            });
        }
        if self.inbound_bytes == 0 {
            return Err(Error::InvalidConfig {
                field: "inbound_bytes",
                problem: "must be at least 1",
            });
        }
        if self.event_capacity == 0 {
            return Err(Error::InvalidConfig {
                field: "event_capacity",
                problem: "must be at least 1",
            });
        }
        self.keepalive.as_ref().map(Timing::checked).transpose()
    }
}
