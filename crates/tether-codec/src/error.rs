//! The crate's one error type and its mapping to close codes.

use crate::close::CloseCode;
use crate::opcode::OpCode;

/// Everything that can go wrong while encoding or decoding WebSocket frames and messages.
///
/// The sans-IO core meets no I/O, so there is no I/O variant here; the tokio adapters report
/// transport failures beside these in [`CodecError`](crate::CodecError).
///
/// Variants that describe a violation by the peer carry the close code RFC 6455 names for it;
/// [`Error::close_code`] returns it, and [`Protocol`](crate::Protocol) sends a close frame with
/// that code before it reports the error. Variants that describe a misuse of this crate by the
/// local application (sending after close, an oversized ping) map to no close code.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A 16-bit or 64-bit extended payload length that would have fit in a shorter encoding
    /// (RFC 6455 §5.2: "the minimal number of bytes MUST be used"). Maps to 1002.
    #[error("payload length {len} is not minimally encoded (used {width} length bytes)")]
    NonMinimalLength {
        /// The announced payload length.
        len: u64,
        /// How many extended length bytes the peer used (2 or 8).
        width: u8,
    },
    /// A 64-bit payload length with the most significant bit set (RFC 6455 §5.2). Maps to 1002.
    #[error("64-bit payload length has its most significant bit set")]
    LengthTopBitSet,
    /// RSV1, RSV2 or RSV3 set without a negotiated extension that defines it (RFC 6455 §5.2).
    /// Maps to 1002.
    #[error("reserved bits {rsv:#05b} set without a negotiated extension")]
    ReservedBits {
        /// The three RSV bits, RSV1 as the most significant (`0b100`).
        rsv: u8,
    },
    /// An opcode RFC 6455 §5.2 reserves (0x3-0x7, 0xB-0xF). Maps to 1002.
    #[error("reserved opcode {0:#x}")]
    ReservedOpcode(u8),
    /// A server received a frame that the client did not mask (RFC 6455 §5.1). Maps to 1002.
    #[error("client sent an unmasked frame")]
    UnmaskedFrame,
    /// A client received a frame that the server masked (RFC 6455 §5.1). Maps to 1002.
    #[error("server sent a masked frame")]
    MaskedFrame,
    /// A control frame with more than 125 bytes of payload (RFC 6455 §5.5). Maps to 1002.
    #[error("control frame payload of {len} bytes exceeds 125")]
    ControlFrameTooLong {
        /// The announced payload length.
        len: u64,
    },
    /// A control frame without the FIN bit (RFC 6455 §5.5). Maps to 1002.
    #[error("fragmented control frame")]
    FragmentedControlFrame,
    /// A continuation frame with no data message in progress (RFC 6455 §5.4). Maps to 1002.
    #[error("continuation frame without a message in progress")]
    UnexpectedContinuation,
    /// A new text or binary frame while a fragmented message was in progress (RFC 6455 §5.4).
    /// Maps to 1002.
    #[error("{opcode:?} frame while a fragmented message was in progress")]
    ExpectedContinuation {
        /// The opcode that arrived instead of a continuation.
        opcode: OpCode,
    },
    /// A close frame whose payload is a single byte (RFC 6455 §5.5.1: the body, if present,
    /// starts with a two-byte code). Maps to 1002.
    #[error("close frame payload of one byte")]
    CloseFrameOneByte,
    /// A close code that may not appear on the wire (RFC 6455 §7.4). Maps to 1002.
    #[error("close code {0} may not be sent on the wire")]
    InvalidCloseCode(u16),
    /// A text message (or close reason) that is not valid UTF-8 (RFC 6455 §8.1). Maps to 1007.
    #[error("invalid UTF-8 in text payload")]
    InvalidUtf8,
    /// A frame whose payload exceeds the configured maximum. Maps to 1009.
    #[error("frame payload of {len} bytes exceeds the limit of {limit}")]
    FrameTooLarge {
        /// The announced payload length.
        len: u64,
        /// The configured limit ([`Config::set_max_frame_payload`](crate::Config::set_max_frame_payload)).
        limit: usize,
    },
    /// A message whose size (payload plus per-fragment overhead) exceeds the configured maximum.
    /// Maps to 1009.
    #[error("message size of at least {size} bytes exceeds the limit of {limit}")]
    MessageTooLarge {
        /// The size counted so far, including the frame that crossed the limit.
        size: u64,
        /// The configured limit ([`Config::set_max_message_size`](crate::Config::set_max_message_size)).
        limit: usize,
    },
    /// The local application tried to send after the connection was closed or closing.
    #[error("connection is closed; nothing more may be sent")]
    Closed,
    /// The local application tried to send a ping, pong or close payload over 125 bytes.
    #[error("control payload of {len} bytes exceeds 125")]
    ControlPayloadTooLong {
        /// The payload length the application asked for.
        len: usize,
    },
    /// The local application tried to send a close code that may not appear on the wire.
    #[error("close code {0} may not be sent")]
    UnsendableCloseCode(u16),
    /// The local application started a new data message (a text or binary
    /// [`send`](crate::Protocol::send) or first fragment) while its fragmented message was still
    /// open: RFC 6455 §5.4 lets only control frames go between the fragments of a message.
    #[error("a fragmented message is still being sent; finish it before the next data message")]
    MessageInProgress,
    /// The local application sent a continuation fragment with no fragmented message open.
    #[error("no fragmented message is being sent; start one with a text or binary fragment")]
    NoMessageInProgress,
    /// The local application asked to send a fragment with a control or reserved opcode: only
    /// data messages are fragmented (RFC 6455 §5.4, §5.5).
    #[error("{0:?} cannot be sent as a fragment")]
    NotADataOpcode(OpCode),
    /// The local application sent a text fragment after which the message can no longer be
    /// valid UTF-8 (RFC 6455 §8.1), or a final fragment that ends inside a code point. Nothing
    /// was queued; the message is still open.
    #[error("text fragment would make the message invalid UTF-8")]
    InvalidTextFragment,
    /// A frame handed to an encoder whose masking does not fit the role (clients mask, servers
    /// do not; RFC 6455 §5.1).
    #[error("frame masking does not match the role")]
    MaskMismatch,
    /// A message marked compressed (RSV1, RFC 7692 §6) whose payload is not DEFLATE data
    /// (RFC 1951). Maps to 1002.
    #[error("compressed message is not valid deflate data")]
    CorruptDeflate,
}

impl Error {
    /// The close code to send the peer for this error, or `None` for local errors.
    ///
    /// ```
    /// use tether_codec::{CloseCode, Error};
    /// assert_eq!(Error::InvalidUtf8.close_code(), Some(CloseCode::INVALID_PAYLOAD));
    /// assert_eq!(Error::Closed.close_code(), None);
    /// ```
    pub fn close_code(&self) -> Option<CloseCode> {
        match self {
            Error::NonMinimalLength { .. }
            | Error::LengthTopBitSet
            | Error::ReservedBits { .. }
            | Error::ReservedOpcode(_)
            | Error::UnmaskedFrame
            | Error::MaskedFrame
            | Error::ControlFrameTooLong { .. }
            | Error::FragmentedControlFrame
            | Error::UnexpectedContinuation
            | Error::ExpectedContinuation { .. }
            | Error::CloseFrameOneByte
            | Error::InvalidCloseCode(_)
            | Error::CorruptDeflate => Some(CloseCode::PROTOCOL_ERROR),
            Error::InvalidUtf8 => Some(CloseCode::INVALID_PAYLOAD),
            Error::FrameTooLarge { .. } | Error::MessageTooLarge { .. } => {
                Some(CloseCode::MESSAGE_TOO_BIG)
            }
            Error::Closed
            | Error::ControlPayloadTooLong { .. }
            | Error::UnsendableCloseCode(_)
            | Error::MessageInProgress
            | Error::NoMessageInProgress
            | Error::NotADataOpcode(_)
            | Error::InvalidTextFragment
            | Error::MaskMismatch => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_violations_map_to_rfc_codes() {
        assert_eq!(
            Error::LengthTopBitSet.close_code(),
            Some(CloseCode::PROTOCOL_ERROR)
        );
        assert_eq!(
            Error::FrameTooLarge { len: 1, limit: 0 }.close_code(),
            Some(CloseCode::MESSAGE_TOO_BIG)
        );
    }
}
