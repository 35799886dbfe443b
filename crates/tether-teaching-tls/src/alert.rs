//! Alerts (RFC 5246 section 7.2): how each side tells the other why it stops.

use std::fmt;

/// An alert description byte. Unknown values are kept.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct AlertDescription(pub u8);

impl AlertDescription {
    /// `close_notify` (0): the sender will send nothing more.
    pub const CLOSE_NOTIFY: Self = Self(0);
    /// `unexpected_message` (10).
    pub const UNEXPECTED_MESSAGE: Self = Self(10);
    /// `bad_record_mac` (20): a record failed to decrypt.
    pub const BAD_RECORD_MAC: Self = Self(20);
    /// `record_overflow` (22).
    pub const RECORD_OVERFLOW: Self = Self(22);
    /// `handshake_failure` (40): for example no cipher suite in common.
    pub const HANDSHAKE_FAILURE: Self = Self(40);
    /// `bad_certificate` (42).
    pub const BAD_CERTIFICATE: Self = Self(42);
    /// `unsupported_certificate` (43).
    pub const UNSUPPORTED_CERTIFICATE: Self = Self(43);
    /// `certificate_expired` (45).
    pub const CERTIFICATE_EXPIRED: Self = Self(45);
    /// `certificate_unknown` (46).
    pub const CERTIFICATE_UNKNOWN: Self = Self(46);
    /// `illegal_parameter` (47).
    pub const ILLEGAL_PARAMETER: Self = Self(47);
    /// `unknown_ca` (48).
    pub const UNKNOWN_CA: Self = Self(48);
    /// `decode_error` (50).
    pub const DECODE_ERROR: Self = Self(50);
    /// `decrypt_error` (51): a signature or Finished did not verify.
    pub const DECRYPT_ERROR: Self = Self(51);
    /// `protocol_version` (70).
    pub const PROTOCOL_VERSION: Self = Self(70);
    /// `internal_error` (80).
    pub const INTERNAL_ERROR: Self = Self(80);
    /// `no_renegotiation` (100).
    pub const NO_RENEGOTIATION: Self = Self(100);
    /// `unsupported_extension` (110).
    pub const UNSUPPORTED_EXTENSION: Self = Self(110);

    /// The RFC's name of this alert, or `None` if unknown.
    ///
    /// ```
    /// use tether_teaching_tls::AlertDescription;
    /// assert_eq!(AlertDescription::BAD_RECORD_MAC.name(), Some("bad_record_mac"));
    /// ```
    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            0 => "close_notify",
            10 => "unexpected_message",
            20 => "bad_record_mac",
            21 => "decryption_failed",
            22 => "record_overflow",
            40 => "handshake_failure",
            42 => "bad_certificate",
            43 => "unsupported_certificate",
            44 => "certificate_revoked",
            45 => "certificate_expired",
            46 => "certificate_unknown",
            47 => "illegal_parameter",
            48 => "unknown_ca",
            49 => "access_denied",
            50 => "decode_error",
            51 => "decrypt_error",
            70 => "protocol_version",
            71 => "insufficient_security",
            80 => "internal_error",
            86 => "inappropriate_fallback",
            90 => "user_canceled",
            100 => "no_renegotiation",
            110 => "unsupported_extension",
            112 => "unrecognized_name",
            _ => return None,
        })
    }
}

impl fmt::Debug for AlertDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for AlertDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{name} ({})", self.0),
            None => write!(f, "alert {}", self.0),
        }
    }
}

/// Alert level byte (RFC 5246 section 7.2).
pub(crate) const LEVEL_WARNING: u8 = 1;
pub(crate) const LEVEL_FATAL: u8 = 2;
