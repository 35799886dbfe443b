//! The crate's errors and the typed end of a session.

use crate::reason::LostReason;

/// A rule of `tether.session.v1` the peer broke (docs/sessions.md §3, §4); the session is
/// lost with [`LostReason::Protocol`] and the connection closed with 1002.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// A control message over [`MAX_CONTROL_LEN`](crate::MAX_CONTROL_LEN) bytes.
    #[error("control message of {len} bytes is over the 64-byte limit")]
    ControlTooLong {
        /// Its length.
        len: usize,
    },
    /// The message does not start with `0x00`.
    #[error("not a control message: it does not start with 0x00")]
    NotControl,
    /// A control message with bytes outside ASCII.
    #[error("control message is not ASCII")]
    NotAscii,
    /// A verb this version does not know.
    #[error("unknown control verb")]
    UnknownVerb,
    /// A field missing, extra or malformed.
    #[error("`{verb}` message has a missing or malformed {field}")]
    BadField {
        /// The verb.
        verb: &'static str,
        /// The field.
        field: &'static str,
    },
    /// A count above 2^53 − 1.
    #[error("count {count} is above 2^53 - 1")]
    CountTooLarge {
        /// The count.
        count: u64,
    },
    /// A binary message starting with `0x00` that is not stuffed.
    #[error("binary message starts with 0x00 but is not stuffed")]
    BinaryControl,
    /// A control message where the protocol does not allow it.
    #[error("unexpected `{verb}` {when}")]
    Unexpected {
        /// The verb.
        verb: &'static str,
        /// Where it came.
        when: &'static str,
    },
    /// A data message before the session handshake completed.
    #[error("data before the session handshake completed")]
    DataBeforeHandshake,
    /// A data message after the peer's `end`.
    #[error("data after the peer's end")]
    DataAfterEnd,
    /// The peer acknowledged more messages than were sent to it.
    #[error("peer acknowledged {acked} messages, {written} were sent")]
    AckAboveSent {
        /// The count it reported.
        acked: u64,
        /// Data messages sent to it.
        written: u64,
    },
    /// The peer reported a count below one it reported before.
    #[error("peer's count went back from {before} to {acked}")]
    AckWentBack {
        /// The count it reported.
        acked: u64,
        /// The count it reported before.
        before: u64,
    },
    /// The server answered a resume with another session's id.
    #[error("the server answered with another session id")]
    IdMismatch,
}

/// The typed end of a session: why, who said so, and the counts of this side.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("session lost ({reason}, said by the {origin}): sent {sent} ({unacked} unacknowledged), received {received}")]
pub struct SessionLost {
    /// Why.
    pub reason: LostReason,
    /// Which side decided (and sent `\0lost`).
    pub origin: Origin,
    /// Data messages this side sent on the session (numbered).
    pub sent: u64,
    /// Of those, how many the peer never acknowledged: they may not have arrived.
    pub unacked: u64,
    /// Data messages this side received on the session (all delivered).
    pub received: u64,
    /// The protocol error behind a [`LostReason::Protocol`] this side found.
    pub detail: Option<ProtocolError>,
}

/// Which side ended a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Origin {
    /// This side found the reason and sends `\0lost`.
    Local,
    /// The peer sent `\0lost` (or closed with the reason's code).
    Peer,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Origin::Local => "local side",
            Origin::Peer => "peer",
        })
    }
}

/// Everything that can go wrong using the sans-IO parts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration value is out of range.
    #[error("invalid configuration: `{field}` {problem}")]
    InvalidConfig {
        /// The setter.
        field: &'static str,
        /// What is wrong.
        problem: &'static str,
    },
    /// The replay buffer has no room for this message now; it frees as the peer acknowledges.
    #[error("replay buffer full ({messages} messages, {bytes} bytes unacknowledged)")]
    Full {
        /// Messages held.
        messages: usize,
        /// Bytes held.
        bytes: usize,
    },
    /// A message larger than the replay buffer's byte bound: it could never be kept.
    #[error("message of {len} bytes is over the replay buffer's {max} bytes")]
    MessageTooLarge {
        /// Its size.
        len: usize,
        /// The bound.
        max: usize,
    },
    /// The session is over.
    #[error(transparent)]
    Lost(#[from] SessionLost),
    /// Sending after this side's `end`.
    #[error("the session was ended for sending")]
    Ended,
}
