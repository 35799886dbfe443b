//! The crate's error type.

use crate::close::CloseReason;

/// Which bound of the outbox a message did not fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum OutboxLimit {
    /// The outbox already holds its maximum number of messages.
    Messages,
    /// The message would take the outbox above its byte budget.
    Bytes,
}

impl std::fmt::Display for OutboxLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            OutboxLimit::Messages => "message count",
            OutboxLimit::Bytes => "byte",
        })
    }
}

/// Everything that can go wrong when configuring or using a supervisor.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration value is out of range or contradicts another one.
    #[error("invalid configuration: `{field}` {problem}")]
    InvalidConfig {
        /// The setter whose value is wrong.
        field: &'static str,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// The outbox is full; the message was not accepted (nothing was dropped silently).
    #[error("outbox full: the {limit} limit is reached")]
    OutboxFull {
        /// The bound that was hit.
        limit: OutboxLimit,
    },
    /// A single message is larger than the outbox's whole byte budget.
    #[error("message of {len} bytes exceeds the outbox budget of {max} bytes")]
    MessageTooLarge {
        /// Size of the rejected message, as reported by the probe.
        len: usize,
        /// The outbox byte budget.
        max: usize,
    },
    /// The supervisor has stopped for good; nothing more can be sent.
    #[error("supervisor closed: {reason}")]
    Closed {
        /// Why it stopped.
        reason: CloseReason,
    },
    /// Reconnection controls were used on a supervisor that does not reconnect.
    #[error("this supervisor does not reconnect (it supervises one accepted connection)")]
    NotReconnecting,
}
