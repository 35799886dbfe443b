//! What the supervisor publishes: its state (a `watch`) and its events (a bounded channel).

use std::time::Duration;

use crate::close::{CloseReason, Failure};
use crate::keepalive::{Health, StallCause};

/// The supervisor's state, published through a `tokio::sync::watch`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LinkState {
    /// Connecting (or running the `on_connected` hook); `attempt` counts consecutive
    /// failures before this attempt.
    Connecting {
        /// Failed attempts so far in this outage.
        attempt: u32,
    },
    /// Connected, with the keepalive's view of the link.
    Open(Health),
    /// Waiting `delay` before the next attempt.
    Reconnecting {
        /// Failed attempts so far in this outage.
        attempt: u32,
        /// The delay drawn for this wait.
        delay: Duration,
    },
    /// Disconnected on request; [`resume`](crate::Supervisor::resume) connects again.
    Paused,
    /// Stopped for good.
    Closed(CloseReason),
}

/// Something that happened, sent through a bounded channel. When the application does not
/// drain the channel, new events are dropped (and counted) rather than blocking the
/// heartbeat.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A probe was written to the transport.
    ProbeSent {
        /// Its nonce.
        nonce: u64,
    },
    /// A pong acknowledged probes up to `nonce`.
    ProbeAcked {
        /// The nonce it echoed.
        nonce: u64,
        /// The round-trip sample, `None` when the probe predates a local stall.
        rtt: Option<Duration>,
        /// The pong timeout after this sample.
        timeout: Duration,
    },
    /// A pong matched no probe in flight.
    MismatchedPong,
    /// A probe missed its deadline.
    Suspect {
        /// Consecutive misses so far.
        misses: u8,
    },
    /// A pong came after a miss or a stall: healthy again.
    Recovered,
    /// This side stalled; the verdict waits.
    LocalStall(StallCause),
    /// The keepalive gave its verdict; the connection is being closed.
    Dead(CloseReason),
    /// The peer probed too soon.
    Strike {
        /// Strikes so far.
        strikes: u8,
    },
    /// The supervisor's first connection is open.
    Connected,
    /// A connection ended or an attempt failed.
    Disconnected(Failure),
    /// The next attempt waits `delay`.
    Reconnecting {
        /// Failed attempts so far in this outage.
        attempt: u32,
        /// The delay before the next attempt.
        delay: Duration,
    },
    /// Connected again after an outage, a pause or [`reconnect_now`](crate::Supervisor::reconnect_now).
    Reconnected {
        /// From the moment the link went down to the moment the new one opened.
        downtime: Duration,
        /// Attempts it took.
        attempts: u32,
    },
    /// Messages were refused (`Reject`) or dropped (`DropOldest`) because the outbox was full.
    OutboxOverflow {
        /// How many.
        messages: usize,
    },
    /// Messages were dropped because they waited longer than the outbox's age limit.
    OutboxExpired {
        /// How many.
        messages: u64,
    },
}
