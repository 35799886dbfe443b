//! The crate's errors: a failed negotiation (the handshake fails the connection) and a failed
//! (de)compression (the codec closes with 1009 or 1002).

/// What went wrong in `tether-deflate`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DeflateError {
    /// A window size outside 8..=15 (RFC 7692 §7.1.2.1).
    #[error("window bits {0} is outside 8..=15")]
    BadWindowBits(u8),
    /// A compression level outside 0..=9.
    #[error("compression level {0} is outside 0..=9")]
    BadLevel(u32),
    /// The server's `permessage-deflate` response does not fit the client's offer; RFC 7692 §7
    /// says the client must fail the WebSocket connection.
    #[error("bad permessage-deflate response: {0}")]
    Negotiation(#[from] NegotiationError),
    /// Inflating the message would produce more than the limit; the codec closes with 1009.
    /// At most `limit` bytes were appended to the caller's buffer.
    #[error("inflated message exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The limit the decompressor was built with.
        limit: usize,
    },
    /// The peer sent data that is not a DEFLATE stream (RFC 1951); the codec closes with 1002.
    #[error("compressed payload is not valid deflate data")]
    Corrupt,
    /// The compressor failed; with a valid state and level this does not happen.
    #[error("deflate compressor failed")]
    Compress,
}

/// Why a `permessage-deflate` offer or response breaks RFC 7692 §7 (the parameter names are the
/// RFC's, so they are `&'static str`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NegotiationError {
    /// A parameter RFC 7692 does not define for this direction.
    #[error("unknown parameter {0:?}")]
    UnknownParameter(String),
    /// The same parameter twice.
    #[error("parameter {0} given twice")]
    DuplicateParameter(&'static str),
    /// A value that is not allowed: a flag with a value, a window size that is not a decimal
    /// integer 8..=15 without leading zeroes, or a window parameter without a value where one
    /// is required.
    #[error("parameter {0} has a bad value")]
    BadValue(&'static str),
    /// The response lacks a parameter the offer asked for, so it does not accept the offer.
    #[error("response lacks {0}, which the offer asked for")]
    Missing(&'static str),
    /// The response answers a window size larger than the offer allowed.
    #[error("response {name}={answered} exceeds the offered {offered}")]
    WindowTooLarge {
        /// The parameter.
        name: &'static str,
        /// What the offer allowed.
        offered: u8,
        /// What the response said.
        answered: u8,
    },
    /// More than one `permessage-deflate` in a response: the client made one offer.
    #[error("response accepts permessage-deflate more than once")]
    SeveralResponses,
}
