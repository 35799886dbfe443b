//! The session id: 128 random bits, 22 base64url characters without padding on the wire.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

/// Length of an id on the wire.
pub const ID_LEN: usize = 22;

/// A session id. The caller draws its 16 bytes from a secure random generator (this crate
/// has no randomness); whoever presents the id gets the session (it is a bearer secret).
///
/// ```
/// use tether_session::SessionId;
///
/// let id = SessionId::from_bytes([0xFB; 16]);
/// assert_eq!(id.to_string(), "-_v7-_v7-_v7-_v7-_v7-w");
/// assert_eq!(SessionId::parse("-_v7-_v7-_v7-_v7-_v7-w"), Some(id));
/// assert_eq!(SessionId::parse("short"), None);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId([u8; 16]);

impl SessionId {
    /// The id made of these bytes.
    pub fn from_bytes(bytes: [u8; 16]) -> SessionId {
        SessionId(bytes)
    }

    /// The id's bytes.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// Parses the wire form: exactly 22 characters of `[A-Za-z0-9_-]`, canonical (the
    /// unused low bits of the last character are zero).
    pub fn parse(text: &str) -> Option<SessionId> {
        if text.len() != ID_LEN {
            return None;
        }
        let mut bytes = [0u8; 16];
        // 22 characters decode to exactly 16 bytes; the engine rejects non-canonical
        // trailing bits and characters outside the alphabet.
        let n = URL_SAFE_NO_PAD.decode_slice(text, &mut bytes).ok()?;
        (n == 16).then_some(SessionId(bytes))
    }
}

impl std::fmt::Display for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&URL_SAFE_NO_PAD.encode(self.0))
    }
}

/// Shows only the first characters: the id is a secret, logs must not hold it whole.
impl std::fmt::Debug for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = self.to_string();
        write!(f, "SessionId({}…)", &text[..4])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_reject_what_is_not_canonical() {
        for seed in 0u8..=255 {
            let id = SessionId::from_bytes([seed.wrapping_mul(37); 16]);
            let text = id.to_string();
            assert_eq!(text.len(), ID_LEN);
            assert_eq!(SessionId::parse(&text), Some(id));
        }
        let valid = SessionId::from_bytes([7; 16]).to_string();
        assert_eq!(SessionId::parse(&valid[..21]), None);
        assert_eq!(SessionId::parse(&format!("{valid}A")), None);
        assert_eq!(SessionId::parse(&valid.replace('B', "+")), None);
        // The last character carries 2 bits of padding that must be zero.
        assert_eq!(SessionId::parse("AAAAAAAAAAAAAAAAAAAAAB"), None);
        assert!(SessionId::parse("AAAAAAAAAAAAAAAAAAAAAA").is_some());
        assert!(!format!("{:?}", SessionId::from_bytes([7; 16])).contains(&valid));
    }
}
