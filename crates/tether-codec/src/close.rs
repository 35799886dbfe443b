//! Close codes and close frame bodies (RFC 6455 §5.5.1, §7.4).

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::Error;
use crate::utf8::Utf8Bytes;

/// Largest control frame payload (RFC 6455 §5.5).
pub(crate) const MAX_CONTROL_PAYLOAD: usize = 125;

/// Largest close reason: the control payload limit less the two-byte code.
pub(crate) const MAX_CLOSE_REASON: usize = MAX_CONTROL_PAYLOAD - 2;

/// A close status code (RFC 6455 §7.4), kept as the raw `u16` so unknown codes survive.
///
/// ```
/// use tether_codec::CloseCode;
/// assert_eq!(CloseCode::NORMAL, CloseCode(1000));
/// assert!(CloseCode(4000).is_sendable());
/// assert!(!CloseCode::NO_STATUS_RECEIVED.is_sendable());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CloseCode(pub u16);

impl CloseCode {
    /// 1000: the purpose of the connection has been fulfilled.
    pub const NORMAL: CloseCode = CloseCode(1000);
    /// 1001: the endpoint is going away (server shutdown, page navigation).
    pub const GOING_AWAY: CloseCode = CloseCode(1001);
    /// 1002: the peer violated the protocol.
    pub const PROTOCOL_ERROR: CloseCode = CloseCode(1002);
    /// 1003: the endpoint cannot accept this type of data.
    pub const UNSUPPORTED_DATA: CloseCode = CloseCode(1003);
    /// 1005: reported locally when a close frame had no code; never sent.
    pub const NO_STATUS_RECEIVED: CloseCode = CloseCode(1005);
    /// 1006: reported locally when the connection dropped without a close frame; never sent.
    pub const ABNORMAL: CloseCode = CloseCode(1006);
    /// 1007: a message's data was inconsistent with its type (invalid UTF-8 in text).
    pub const INVALID_PAYLOAD: CloseCode = CloseCode(1007);
    /// 1008: a message violated the endpoint's policy.
    pub const POLICY_VIOLATION: CloseCode = CloseCode(1008);
    /// 1009: a message was too big to process.
    pub const MESSAGE_TOO_BIG: CloseCode = CloseCode(1009);
    /// 1010: the client expected the server to negotiate an extension.
    pub const MANDATORY_EXTENSION: CloseCode = CloseCode(1010);
    /// 1011: the server hit an unexpected condition.
    pub const INTERNAL_ERROR: CloseCode = CloseCode(1011);
    /// 1012: the service is restarting (IANA registry).
    pub const SERVICE_RESTART: CloseCode = CloseCode(1012);
    /// 1013: try again later (IANA registry).
    pub const TRY_AGAIN_LATER: CloseCode = CloseCode(1013);
    /// 1014: a gateway received an invalid response (IANA registry).
    pub const BAD_GATEWAY: CloseCode = CloseCode(1014);
    /// 1015: reported locally when the TLS handshake failed; never sent.
    pub const TLS_HANDSHAKE: CloseCode = CloseCode(1015);

    /// Whether this code may appear in a close frame on the wire (RFC 6455 §7.4.1, §7.4.2).
    ///
    /// Allowed: 1000-1003, 1007-1014 (1012-1014 registered with IANA), 3000-4999 (registered
    /// and private use). Everything else - below 1000, 1004-1006, 1015, the unassigned
    /// 1016-2999, and above 4999 - is refused.
    pub fn is_sendable(self) -> bool {
        matches!(self.0, 1000..=1003 | 1007..=1014 | 3000..=4999)
    }
}

impl fmt::Display for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl From<u16> for CloseCode {
    fn from(code: u16) -> Self {
        CloseCode(code)
    }
}

impl From<CloseCode> for u16 {
    fn from(code: CloseCode) -> u16 {
        code.0
    }
}

/// The body of a close frame: a code and a UTF-8 reason of at most 123 bytes.
///
/// ```
/// use tether_codec::{CloseCode, CloseFrame};
/// let frame = CloseFrame::new(CloseCode::GOING_AWAY, "bye").unwrap();
/// let payload = frame.to_payload();
/// assert_eq!(&payload[..], b"\x03\xe9bye");
/// assert_eq!(CloseFrame::decode(payload).unwrap(), Some(frame));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CloseFrame {
    /// The status code.
    pub code: CloseCode,
    /// The reason, for humans; may be empty.
    pub reason: Utf8Bytes,
}

impl CloseFrame {
    /// A close frame body with `code` and `reason`, checked for sending.
    ///
    /// # Errors
    ///
    /// [`Error::UnsendableCloseCode`] if `code` may not appear on the wire, and
    /// [`Error::ControlPayloadTooLong`] if the reason is longer than 123 bytes.
    pub fn new(code: CloseCode, reason: impl Into<Utf8Bytes>) -> Result<CloseFrame, Error> {
        let frame = CloseFrame {
            code,
            reason: reason.into(),
        };
        frame.check_sendable()?;
        Ok(frame)
    }

    /// Parses a close frame payload (RFC 6455 §5.5.1).
    ///
    /// An empty payload means the peer gave no code (`Ok(None)`).
    ///
    /// # Errors
    ///
    /// [`Error::CloseFrameOneByte`] for a one-byte payload, [`Error::InvalidCloseCode`] for a
    /// code that may not appear on the wire (both 1002), [`Error::InvalidUtf8`] for a reason
    /// that is not UTF-8 (1007).
    pub fn decode(payload: Bytes) -> Result<Option<CloseFrame>, Error> {
        match payload.len() {
            0 => Ok(None),
            // "If there is a body, the first two bytes of the body MUST be a 2-byte unsigned
            // integer ... representing a status code" (RFC 6455 §5.5.1).
            1 => Err(Error::CloseFrameOneByte),
            _ => {
                let code = CloseCode(u16::from_be_bytes([payload[0], payload[1]]));
                if !code.is_sendable() {
                    return Err(Error::InvalidCloseCode(code.0));
                }
                let reason = Utf8Bytes::try_from(payload.slice(2..))?;
                Ok(Some(CloseFrame { code, reason }))
            }
        }
    }

    /// The wire payload: the code in network byte order followed by the reason.
    pub fn to_payload(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(2 + self.reason.len());
        out.put_u16(self.code.0);
        out.extend_from_slice(self.reason.as_bytes());
        out.freeze()
    }

    pub(crate) fn check_sendable(&self) -> Result<(), Error> {
        if !self.code.is_sendable() {
            return Err(Error::UnsendableCloseCode(self.code.0));
        }
        if self.reason.len() > MAX_CLOSE_REASON {
            return Err(Error::ControlPayloadTooLong {
                len: self.reason.len() + 2,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6455_7_4_sendable_codes() {
        for code in 0..=u16::MAX {
            let expect = matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999);
            assert_eq!(CloseCode(code).is_sendable(), expect, "{code}");
        }
    }

    #[test]
    fn rfc6455_5_5_1_decode_rejects_bad_bodies() {
        assert!(matches!(
            CloseFrame::decode(Bytes::from_static(b"\x03")),
            Err(Error::CloseFrameOneByte)
        ));
        assert!(matches!(
            CloseFrame::decode(Bytes::from_static(b"\x03\xed")),
            Err(Error::InvalidCloseCode(1005))
        ));
        assert!(matches!(
            CloseFrame::decode(Bytes::from_static(b"\x03\xe8\xff")),
            Err(Error::InvalidUtf8)
        ));
        assert_eq!(CloseFrame::decode(Bytes::new()).unwrap(), None);
    }

    #[test]
    fn reason_limit_is_123_bytes() {
        assert!(CloseFrame::new(CloseCode::NORMAL, "a".repeat(123)).is_ok());
        assert!(matches!(
            CloseFrame::new(CloseCode::NORMAL, "a".repeat(124)),
            Err(Error::ControlPayloadTooLong { len: 126 })
        ));
        assert!(matches!(
            CloseFrame::new(CloseCode::ABNORMAL, ""),
            Err(Error::UnsendableCloseCode(1006))
        ));
    }
}
