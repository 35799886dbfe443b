//! Cipher suites: step 1-2 of the tutorial, "the browser sends the set of cipher rules it
//! supports; the site picks one" (RFC 5246 section 7.4.1.2 and 7.4.1.3).

use std::fmt;

/// A TLS cipher suite number. Unknown numbers a peer offers are kept as they are, so an
/// error can name everything that was on the table.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CipherSuite(pub u16);

impl CipherSuite {
    /// `TLS_RSA_WITH_AES_128_GCM_SHA256` (RFC 5288): the tutorial's flow, the premaster
    /// travels encrypted under the server's RSA key. No forward secrecy.
    pub const RSA_WITH_AES_128_GCM_SHA256: Self = Self(0x009c);
    /// `TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256` (RFC 5289): X25519 key agreement, the
    /// server signs its ephemeral key with its RSA key. Forward secret.
    pub const ECDHE_RSA_WITH_AES_128_GCM_SHA256: Self = Self(0xc02f);

    /// `TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256` (RFC 7905): as the ECDHE suite above,
    /// with ChaCha20-Poly1305 records (fast without AES hardware).
    pub const ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256: Self = Self(0xcca8);

    /// The suites this crate implements, strongest first (the default preference).
    pub const SUPPORTED: [Self; 3] = [
        Self::ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        Self::ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        Self::RSA_WITH_AES_128_GCM_SHA256,
    ];

    /// The IANA name, or `None` for a suite this crate does not know.
    ///
    /// ```
    /// use tether_teaching_tls::CipherSuite;
    /// assert_eq!(
    ///     CipherSuite::RSA_WITH_AES_128_GCM_SHA256.name(),
    ///     Some("TLS_RSA_WITH_AES_128_GCM_SHA256")
    /// );
    /// assert_eq!(CipherSuite(0x1301).name(), None);
    /// ```
    pub fn name(self) -> Option<&'static str> {
        match self {
            Self::RSA_WITH_AES_128_GCM_SHA256 => Some("TLS_RSA_WITH_AES_128_GCM_SHA256"),
            Self::ECDHE_RSA_WITH_AES_128_GCM_SHA256 => {
                Some("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256")
            }
            Self::ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256 => {
                Some("TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256")
            }
            _ => None,
        }
    }

    /// Parses an IANA name (with or without the `TLS_` prefix), or an OpenSSL name
    /// (`AES128-GCM-SHA256`, `ECDHE-RSA-AES128-GCM-SHA256`).
    ///
    /// ```
    /// use tether_teaching_tls::CipherSuite;
    /// assert_eq!(
    ///     CipherSuite::from_name("ECDHE-RSA-AES128-GCM-SHA256"),
    ///     Some(CipherSuite::ECDHE_RSA_WITH_AES_128_GCM_SHA256)
    /// );
    /// ```
    pub fn from_name(name: &str) -> Option<Self> {
        let upper = name.trim().to_ascii_uppercase();
        let bare = upper.strip_prefix("TLS_").unwrap_or(&upper);
        match bare {
            "RSA_WITH_AES_128_GCM_SHA256" | "AES128-GCM-SHA256" | "RSA" => {
                Some(Self::RSA_WITH_AES_128_GCM_SHA256)
            }
            "ECDHE_RSA_WITH_AES_128_GCM_SHA256" | "ECDHE-RSA-AES128-GCM-SHA256" | "ECDHE" => {
                Some(Self::ECDHE_RSA_WITH_AES_128_GCM_SHA256)
            }
            "ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"
            | "ECDHE-RSA-CHACHA20-POLY1305"
            | "CHACHA" => Some(Self::ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256),
            _ => None,
        }
    }

    /// The OpenSSL name, as `openssl s_server -cipher` wants it.
    pub fn openssl_name(self) -> Option<&'static str> {
        match self {
            Self::RSA_WITH_AES_128_GCM_SHA256 => Some("AES128-GCM-SHA256"),
            Self::ECDHE_RSA_WITH_AES_128_GCM_SHA256 => Some("ECDHE-RSA-AES128-GCM-SHA256"),
            Self::ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256 => Some("ECDHE-RSA-CHACHA20-POLY1305"),
            _ => None,
        }
    }

    /// Whether the key exchange is ephemeral (ECDHE), hence forward secret.
    pub fn is_ephemeral(self) -> bool {
        self == Self::ECDHE_RSA_WITH_AES_128_GCM_SHA256
            || self == Self::ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256
    }

    /// The record protection this suite uses.
    pub(crate) fn aead(self) -> Aead {
        if self == Self::ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256 {
            Aead::ChaCha20Poly1305
        } else {
            Aead::Aes128Gcm
        }
    }

    pub(crate) fn is_supported(self) -> bool {
        Self::SUPPORTED.contains(&self)
    }
}

impl fmt::Debug for CipherSuite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for CipherSuite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{name} (0x{:04x})", self.0),
            None => write!(f, "0x{:04x}", self.0),
        }
    }
}

/// The two record protections (RFC 5288 and RFC 7905).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Aead {
    /// AES-128-GCM: 16-byte key, 4-byte implicit salt, 8-byte explicit nonce per record.
    Aes128Gcm,
    /// ChaCha20-Poly1305: 32-byte key, 12-byte IV XORed with the sequence number, no
    /// explicit nonce.
    ChaCha20Poly1305,
}

impl Aead {
    pub(crate) fn key_len(self) -> usize {
        match self {
            Aead::Aes128Gcm => 16,
            Aead::ChaCha20Poly1305 => 32,
        }
    }

    pub(crate) fn iv_len(self) -> usize {
        match self {
            Aead::Aes128Gcm => 4,
            Aead::ChaCha20Poly1305 => 12,
        }
    }

    pub(crate) fn explicit_nonce_len(self) -> usize {
        match self {
            Aead::Aes128Gcm => 8,
            Aead::ChaCha20Poly1305 => 0,
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Aead::Aes128Gcm => "AES-128-GCM",
            Aead::ChaCha20Poly1305 => "ChaCha20-Poly1305",
        }
    }
}

/// Formats a list of suites for an error message: `[A (0x..), B (0x..)]`.
pub(crate) fn list(suites: &[CipherSuite]) -> String {
    let names: Vec<String> = suites.iter().map(ToString::to_string).collect();
    format!("[{}]", names.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in CipherSuite::SUPPORTED {
            assert_eq!(CipherSuite::from_name(s.name().unwrap()), Some(s));
            assert_eq!(CipherSuite::from_name(s.openssl_name().unwrap()), Some(s));
        }
        assert_eq!(CipherSuite::from_name("RC4-MD5"), None);
    }

    #[test]
    fn unknown_suites_display_their_number() {
        assert_eq!(CipherSuite(0x00ff).to_string(), "0x00ff");
    }
}
