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

    /// The suites this crate implements, strongest first (the default preference).
    pub const SUPPORTED: [Self; 2] = [
        Self::ECDHE_RSA_WITH_AES_128_GCM_SHA256,
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
            _ => None,
        }
    }

    /// The OpenSSL name, as `openssl s_server -cipher` wants it.
    pub fn openssl_name(self) -> Option<&'static str> {
        match self {
            Self::RSA_WITH_AES_128_GCM_SHA256 => Some("AES128-GCM-SHA256"),
            Self::ECDHE_RSA_WITH_AES_128_GCM_SHA256 => Some("ECDHE-RSA-AES128-GCM-SHA256"),
            _ => None,
        }
    }

    /// Whether the key exchange is ephemeral (ECDHE), hence forward secret.
    pub fn is_ephemeral(self) -> bool {
        self == Self::ECDHE_RSA_WITH_AES_128_GCM_SHA256
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
