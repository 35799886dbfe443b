//! `Sec-WebSocket-Key` and `Sec-WebSocket-Accept` (RFC 6455 §1.3, §4.1, §4.2.2).

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use sha1::{Digest, Sha1};

use crate::error::Error;

/// The GUID that RFC 6455 §1.3 appends to the key before hashing.
const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The `Sec-WebSocket-Accept` value for a `Sec-WebSocket-Key` value: base64(SHA-1(key + GUID)).
///
/// RFC 6455 §4.2.2: the key is used "as a string, not base64-decoded", so pass the header
/// value's bytes as they were sent (without surrounding whitespace).
///
/// ```
/// // The example of RFC 6455 §1.3.
/// assert_eq!(
///     tether_handshake::accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
///     "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
/// );
/// ```
pub fn accept_key(key: &[u8]) -> String {
    let mut sha1 = Sha1::new();
    sha1.update(key);
    sha1.update(GUID);
    STANDARD.encode(sha1.finalize())
}

/// A client's `Sec-WebSocket-Key`: 16 random bytes, sent base64-encoded (RFC 6455 §4.1:
/// "a randomly selected 16-byte value ... MUST be selected randomly for each connection").
///
/// ```
/// use tether_handshake::Key;
///
/// let key = Key::from_bytes(*b"the sample nonce");
/// assert_eq!(key.as_str(), "dGhlIHNhbXBsZSBub25jZQ==");
/// assert_eq!(key.accept(), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
/// assert_ne!(Key::random()?.as_str(), Key::random()?.as_str());
/// # Ok::<(), tether_handshake::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    encoded: String,
}

impl Key {
    /// A fresh key from the operating system's random number generator (ring's
    /// `SystemRandom`). Fails with [`Error::Random`] only if that generator fails.
    pub fn random() -> Result<Self, Error> {
        let bytes: [u8; 16] = ring::rand::generate(&ring::rand::SystemRandom::new())
            .map_err(|_| Error::Random)?
            .expose();
        Ok(Key::from_bytes(bytes))
    }

    /// A key from caller-chosen bytes: for tests and known-answer checks. Real connections
    /// should use [`Key::random`].
    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        Key {
            encoded: STANDARD.encode(bytes),
        }
    }

    /// The base64 form sent in `Sec-WebSocket-Key` (always 24 characters).
    pub fn as_str(&self) -> &str {
        &self.encoded
    }

    /// The `Sec-WebSocket-Accept` value the server must answer with.
    pub fn accept(&self) -> String {
        accept_key(self.encoded.as_bytes())
    }
}

/// Whether a `Sec-WebSocket-Key` value is the base64 form of exactly 16 bytes
/// (RFC 6455 §4.2.1 item 5).
pub(crate) fn is_valid_key(value: &[u8]) -> bool {
    // 16 bytes encode to 22 characters and "==": check the length before decoding anything.
    value.len() == 24 && STANDARD.decode(value).is_ok_and(|bytes| bytes.len() == 16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6455_1_3_accept_key_example() {
        assert_eq!(
            accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn rfc6455_4_1_key_encodes_sixteen_bytes() {
        let key = Key::random().unwrap();
        assert_eq!(key.as_str().len(), 24);
        assert!(is_valid_key(key.as_str().as_bytes()));
    }

    #[test]
    fn rfc6455_4_2_1_key_must_decode_to_sixteen_bytes() {
        assert!(is_valid_key(b"dGhlIHNhbXBsZSBub25jZQ=="));
        // 15 and 17 bytes, non-base64, and a bad padding.
        assert!(!is_valid_key(b"dGhlIHNhbXBsZSBub25jZQ="));
        assert!(!is_valid_key(b"dGhlIHNhbXBsZSBub25jZTE="));
        assert!(!is_valid_key(b"dGhlIHNhbXBsZSBub25jZ!=="));
        assert!(!is_valid_key(b"dGhlIHNhbXBsZSBub25jZQ"));
        assert!(!is_valid_key(b""));
    }
}
