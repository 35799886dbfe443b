//! Why a connection ended, and what the reconnecting client makes of it.

use std::time::Duration;

/// Close codes of RFC 6455 §7.4.1 that the retry policy reads from a peer's close (the
/// crate's own vocabulary for what it sends is [`Farewell`]); the rest serve the tests.
pub(crate) mod code {
    #[cfg(test)]
    /// 1000: normal closure.
    pub(crate) const NORMAL: u16 = 0x03E8;
    #[cfg(test)]
    /// 1001: the endpoint is going away (server shutdown, page navigation).
    pub(crate) const GOING_AWAY: u16 = 0x03E9;
    /// 1002: protocol error.
    pub(crate) const PROTOCOL_ERROR: u16 = 0x03EA;
    /// 1003: a data type the endpoint cannot accept.
    pub(crate) const UNSUPPORTED_DATA: u16 = 0x03EB;
    #[cfg(test)]
    /// 1006: closed without a close frame (never sent on the wire).
    pub(crate) const ABNORMAL: u16 = 0x03EE;
    /// 1007: payload inconsistent with the message type (bad UTF-8).
    pub(crate) const INVALID_PAYLOAD: u16 = 0x03EF;
    /// 1008: policy violation.
    pub(crate) const POLICY_VIOLATION: u16 = 0x03F0;
    /// 1009: message too big.
    pub(crate) const MESSAGE_TOO_BIG: u16 = 0x03F1;
    /// 1010: the client expected an extension the server did not negotiate.
    pub(crate) const MANDATORY_EXTENSION: u16 = 0x03F2;
    #[cfg(test)]
    /// 1011: internal error; also what a heartbeat timeout sends.
    pub(crate) const INTERNAL_ERROR: u16 = 0x03F3;
    /// 1012: service restart (IANA registry).
    pub(crate) const SERVICE_RESTART: u16 = 0x03F4;
    /// 1013: try again later (IANA registry).
    pub(crate) const TRY_AGAIN_LATER: u16 = 0x03F5;
}

/// What this side tells the peer when it closes, in the heartbeat's own words.
///
/// The crate does not know the wire: a [`Probe`](crate::Probe) turns a farewell into its
/// message type's close message (the facade maps each to an RFC 6455 close code: 1000,
/// 1001, 1008, 1011, 1013).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Farewell {
    /// A normal closure: this side is done with the connection.
    Normal,
    /// This side is going away: a server shutting down, a page left.
    GoingAway,
    /// The peer broke a rule of this side (it probed too often, say).
    Policy,
    /// The peer, the path or this side stopped keeping up: no answer to probes, a probe
    /// that could not be written, an application that did not read.
    Unresponsive,
    /// This side is overloaded and sheds the peer; it may come back later.
    TryAgainLater,
}

/// Why a connection attempt or an open connection ended.
///
/// The reconnecting client hands it to its [`RetryPolicy`](crate::RetryPolicy); the connect
/// factory builds one from its own error (an I/O error, an HTTP status with its
/// `Retry-After`, a timeout).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Failure {
    /// An I/O error of this kind (connect refused, reset, broken pipe...).
    Io(std::io::ErrorKind),
    /// A connect, handshake or other timeout outside the heartbeat.
    Timeout,
    /// The server answered the upgrade with an HTTP status other than 101.
    Http {
        /// The status code.
        status: u16,
        /// The `Retry-After` delay it sent, if any.
        retry_after: Option<Duration>,
    },
    /// The peer closed; `None` when no close frame came (1006, RFC 6455 §7.1.5).
    Closed {
        /// The close code from the peer's close frame.
        code: Option<u16>,
    },
    /// This side ended the connection (heartbeat verdict, backpressure, probe flood).
    Local(CloseReason),
    /// Anything else, with the transport's description and whether retrying can help.
    Other {
        /// What went wrong.
        message: String,
        /// Whether a new connection may succeed.
        retryable: bool,
    },
}

impl Failure {
    /// Classifies a transport error: a [`Failure`] anywhere in its `source` chain is taken
    /// as it is (a transport that knows its errors says so, the facade does), an
    /// [`std::io::Error`] becomes [`Failure::Io`], anything else a retryable
    /// [`Failure::Other`].
    pub fn from_error(error: &(dyn std::error::Error + 'static)) -> Failure {
        let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
        while let Some(err) = current {
            if let Some(failure) = err.downcast_ref::<Failure>() {
                return failure.clone();
            }
            if let Some(io) = err.downcast_ref::<std::io::Error>() {
                return Failure::Io(io.kind());
            }
            current = err.source();
        }
        Failure::Other {
            message: error.to_string(),
            retryable: true,
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Io(kind) => write!(f, "i/o error: {kind}"),
            Failure::Timeout => f.write_str("timed out"),
            Failure::Http { status, .. } => write!(f, "http status {status}"),
            Failure::Closed { code: Some(code) } => write!(f, "peer closed with {code}"),
            Failure::Closed { code: None } => f.write_str("peer closed without a close frame"),
            Failure::Local(reason) => write!(f, "{reason}"),
            Failure::Other { message, .. } => f.write_str(message),
        }
    }
}

/// A transport error type can name its [`Failure`] by returning it from `source()`;
/// [`Failure::from_error`] finds it there.
impl std::error::Error for Failure {}

/// Why the supervisor (or this side of one connection) closed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// Consecutive probes went unanswered past their deadlines: the peer or the path is dead.
    HeartbeatTimeout,
    /// A probe could not be written to the transport within the write-stall limit.
    WriteStalled,
    /// The application did not read inbound messages within the read-stall limit.
    AppNotReading,
    /// The peer sent probes faster than allowed, past its strikes.
    ProbeFlood,
    /// The application closed the supervisor or asked for a reconnection or pause.
    Local,
    /// The retry policy judged the failure fatal.
    Fatal(Box<Failure>),
    /// The retry budget (count or elapsed time) is spent; the last failure is kept.
    RetriesExhausted(Box<Failure>),
    /// The supervised connection (server side, no reconnection) ended.
    Ended(Box<Failure>),
}

impl CloseReason {
    /// What this side tells the peer when it closes for this reason, if it says anything.
    ///
    /// ```
    /// use tether_heartbeat::{CloseReason, Farewell};
    /// assert_eq!(CloseReason::HeartbeatTimeout.farewell(), Some(Farewell::Unresponsive));
    /// assert_eq!(CloseReason::ProbeFlood.farewell(), Some(Farewell::Policy));
    /// ```
    pub fn farewell(&self) -> Option<Farewell> {
        match self {
            CloseReason::HeartbeatTimeout
            | CloseReason::WriteStalled
            | CloseReason::AppNotReading => Some(Farewell::Unresponsive),
            CloseReason::ProbeFlood => Some(Farewell::Policy),
            CloseReason::Local => Some(Farewell::Normal),
            CloseReason::Fatal(_) | CloseReason::RetriesExhausted(_) | CloseReason::Ended(_) => {
                None
            }
        }
    }

    /// The farewell and text this side sends for this reason, if any.
    pub(crate) fn close_message(&self) -> Option<(Farewell, &'static str)> {
        self.farewell()
            .map(|farewell| (farewell, self.close_text()))
    }

    /// The short text sent with the [`farewell`](Self::farewell) (fits a close frame).
    pub fn close_text(&self) -> &'static str {
        match self {
            CloseReason::HeartbeatTimeout => "heartbeat timeout",
            CloseReason::WriteStalled => "write stalled",
            CloseReason::AppNotReading => "application not reading",
            CloseReason::ProbeFlood => "too many pings",
            CloseReason::Local => "closing",
            CloseReason::Fatal(_) => "fatal failure",
            CloseReason::RetriesExhausted(_) => "retries exhausted",
            CloseReason::Ended(_) => "connection ended",
        }
    }
}

impl std::fmt::Display for CloseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CloseReason::Fatal(failure) => write!(f, "fatal: {failure}"),
            CloseReason::RetriesExhausted(failure) => {
                write!(f, "retries exhausted, last failure: {failure}")
            }
            CloseReason::Ended(failure) => write!(f, "connection ended: {failure}"),
            other => f.write_str(other.close_text()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("wrapped")]
    struct Wrapped(#[source] std::io::Error);

    #[test]
    fn from_error_finds_io_kind_in_source_chain() {
        let err = Wrapped(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        assert_eq!(
            Failure::from_error(&err),
            Failure::Io(std::io::ErrorKind::ConnectionReset)
        );
        #[derive(Debug, thiserror::Error)]
        #[error("knows its failure")]
        struct Knows(#[source] Failure);
        let knows = Knows(Failure::Closed { code: Some(1008) });
        assert_eq!(
            Failure::from_error(&knows),
            Failure::Closed { code: Some(1008) }
        );
        let fmt = std::fmt::Error;
        assert!(matches!(
            Failure::from_error(&fmt),
            Failure::Other {
                retryable: true,
                ..
            }
        ));
    }

    #[test]
    fn rfc6455_7_4_1_codes_in_hex_match_their_decimal_names() {
        assert_eq!(code::NORMAL, 1000);
        assert_eq!(code::ABNORMAL, 1006);
        assert_eq!(code::INTERNAL_ERROR, 1011);
        assert_eq!(code::TRY_AGAIN_LATER, 1013);
    }
}
