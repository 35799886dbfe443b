//! The crate's error type, and which alert each error sends to the peer.

use crate::alert::AlertDescription;
use crate::suite::{self, CipherSuite};

/// Everything that can go wrong in the teaching TLS handshake and record layer.
///
/// A connection keeps its first error: every later call returns it again, and the fatal
/// alert it maps to ([`Error::alert`]) is queued for the peer before the connection stops.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A message or record from the peer was malformed: `what` names the field.
    #[error("malformed {what}")]
    Decode {
        /// The field that was short, too long or invalid.
        what: &'static str,
    },
    /// A record header announced more than RFC 5246 section 6.2 allows.
    #[error("record of {len} bytes exceeds the limit of {limit} bytes")]
    RecordOverflow {
        /// The announced length.
        len: usize,
        /// The limit for this kind of record.
        limit: usize,
    },
    /// A handshake message announced more bytes than this crate buffers.
    #[error("handshake message of {len} bytes exceeds the limit of {limit} bytes")]
    HandshakeMessageTooLarge {
        /// The announced length.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// The peer sent a message that is not allowed at this point of the handshake.
    #[error("unexpected {got}, expected {expected}")]
    UnexpectedMessage {
        /// What the state machine waited for.
        expected: &'static str,
        /// What arrived.
        got: String,
    },
    /// The peer does not speak TLS 1.2.
    #[error("peer offered protocol version 0x{version:04x}, only TLS 1.2 (0x0303) is spoken")]
    UnsupportedVersion {
        /// The version from the hello or record.
        version: u16,
    },
    /// Step 1-2: the client's offer and the server's list have no suite in common.
    #[error(
        "no cipher suite in common: the client offered {}, the server supports {}",
        suite::list(offered),
        suite::list(supported)
    )]
    NoCommonCipherSuite {
        /// What the client offered.
        offered: Vec<CipherSuite>,
        /// What the server was willing to use.
        supported: Vec<CipherSuite>,
    },
    /// The server chose a suite the client never offered.
    #[error("server chose {chosen}, which the client did not offer")]
    SuiteNotOffered {
        /// The suite in ServerHello.
        chosen: CipherSuite,
    },
    /// The server answered with an extension the client did not ask for (RFC 5246
    /// section 7.4.1.4).
    #[error("server sent extension 0x{extension:04x}, which the client did not offer")]
    UnsolicitedExtension {
        /// The extension type.
        extension: u16,
    },
    /// The client offered no key exchange parameters this server can use.
    #[error("the client offered no usable {what}")]
    NoCommonParameters {
        /// What was missing (group, signature algorithm, compression method).
        what: &'static str,
    },
    /// Step 3a: the certificate is not acceptable.
    #[error("certificate refused: {0}")]
    Certificate(#[from] CertificateError),
    /// The server's signature over its ECDHE parameters does not verify with the
    /// certificate's key.
    #[error("the signature over the server's key exchange parameters does not verify")]
    BadKeyExchangeSignature,
    /// Step 4/5: the peer's Finished does not match the hash of the handshake as this side
    /// saw it: a message was changed in flight, or the keys differ.
    #[error("the peer's Finished does not match this side's handshake hash")]
    FinishedMismatch,
    /// A protected record did not decrypt: tampered, replayed, reordered or not ours.
    #[error("a record failed authentication (bad_record_mac)")]
    BadRecordMac,
    /// The peer sent a fatal alert.
    #[error("peer sent fatal alert {0}")]
    AlertReceived(AlertDescription),
    /// The transport ended in the middle of a record, or without close_notify.
    #[error("the connection ended without close_notify ({buffered} bytes of a record buffered)")]
    Truncated {
        /// Bytes of an incomplete record left in the buffer.
        buffered: usize,
    },
    /// The peer sent close_notify before the handshake completed: the handshake cannot
    /// finish (RFC 5246 section 7.2.1: nothing after close_notify counts).
    #[error("the peer sent close_notify before the handshake completed")]
    CloseNotifyDuringHandshake,
    /// The transport ended before the handshake completed.
    #[error("the connection ended during the handshake ({buffered} bytes of a record buffered)")]
    EofDuringHandshake {
        /// Bytes of an incomplete record left in the buffer.
        buffered: usize,
    },
    /// Application data was written before the handshake completed or after close.
    #[error("cannot send application data: {reason}")]
    NotReady {
        /// Why: "handshake not complete" or "close_notify already sent".
        reason: &'static str,
    },
    /// A key or certificate handed to the configuration is unusable.
    #[error("invalid configuration: {reason}")]
    InvalidConfig {
        /// What was wrong with it.
        reason: String,
    },
    /// A cryptographic primitive failed locally (randomness, key agreement, encryption).
    #[error("local crypto failure: {what}")]
    Crypto {
        /// The operation that failed.
        what: &'static str,
    },
    /// The transport under [`TeachingTlsStream`](crate::TeachingTlsStream) failed (shared,
    /// so the error stays `Clone` for the sticky error slot).
    #[error("i/o error: {0}")]
    Io(std::sync::Arc<std::io::Error>),
}

/// Step 3a: why a server certificate was refused. Each check of the tutorial ("is the
/// issuer trusted, is the address the one we asked for") is its own variant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CertificateError {
    /// The server sent an empty Certificate message.
    #[error("the server sent no certificate")]
    NoCertificate,
    /// No chain leads from the certificate to a configured trust anchor (this includes
    /// self-signed certificates that are not themselves trusted).
    #[error("unknown issuer: the certificate does not chain to a trusted root")]
    UnknownIssuer,
    /// The certificate's notAfter is before the verification time.
    #[error("expired: valid until {not_after} (unix), now is {now} (unix)")]
    Expired {
        /// Verification time, seconds since the Unix epoch.
        now: u64,
        /// The certificate's notAfter, seconds since the Unix epoch.
        not_after: u64,
    },
    /// The certificate's notBefore is after the verification time.
    #[error("not yet valid: valid from {not_before} (unix), now is {now} (unix)")]
    NotYetValid {
        /// Verification time, seconds since the Unix epoch.
        now: u64,
        /// The certificate's notBefore, seconds since the Unix epoch.
        not_before: u64,
    },
    /// The certificate is not valid for the name the client asked for.
    #[error("name mismatch: the certificate is not valid for {expected}")]
    NameMismatch {
        /// The server name the client connected to.
        expected: String,
    },
    /// A signature in the chain does not verify.
    #[error("bad signature in the certificate chain")]
    BadSignature,
    /// The certificate's key is not an RSA key, which both suites need.
    #[error("the certificate's public key is not a usable RSA key")]
    NotRsa,
    /// Any other reason rustls-webpki gave.
    #[error("invalid certificate: {0}")]
    Other(String),
}

impl Error {
    /// The fatal alert this error sends to the peer, or `None` when nothing is sent (the
    /// peer closed, or the error is local).
    ///
    /// ```
    /// use tether_teaching_tls::{AlertDescription, Error};
    /// assert_eq!(Error::BadRecordMac.alert(), Some(AlertDescription::BAD_RECORD_MAC));
    /// ```
    pub fn alert(&self) -> Option<AlertDescription> {
        use AlertDescription as A;
        Some(match self {
            Error::Decode { .. } => A::DECODE_ERROR,
            Error::RecordOverflow { .. } => A::RECORD_OVERFLOW,
            Error::HandshakeMessageTooLarge { .. } => A::ILLEGAL_PARAMETER,
            Error::UnexpectedMessage { .. } => A::UNEXPECTED_MESSAGE,
            Error::UnsupportedVersion { .. } => A::PROTOCOL_VERSION,
            Error::NoCommonCipherSuite { .. } | Error::NoCommonParameters { .. } => {
                A::HANDSHAKE_FAILURE
            }
            Error::SuiteNotOffered { .. } => A::ILLEGAL_PARAMETER,
            Error::UnsolicitedExtension { .. } => A::UNSUPPORTED_EXTENSION,
            Error::Certificate(e) => match e {
                CertificateError::UnknownIssuer => A::UNKNOWN_CA,
                CertificateError::Expired { .. } | CertificateError::NotYetValid { .. } => {
                    A::CERTIFICATE_EXPIRED
                }
                CertificateError::NotRsa => A::UNSUPPORTED_CERTIFICATE,
                CertificateError::NameMismatch { .. } => A::CERTIFICATE_UNKNOWN,
                _ => A::BAD_CERTIFICATE,
            },
            Error::BadKeyExchangeSignature | Error::FinishedMismatch => A::DECRYPT_ERROR,
            Error::BadRecordMac => A::BAD_RECORD_MAC,
            Error::Crypto { .. } => A::INTERNAL_ERROR,
            Error::AlertReceived(_)
            | Error::CloseNotifyDuringHandshake
            | Error::EofDuringHandshake { .. }
            | Error::Truncated { .. }
            | Error::NotReady { .. }
            | Error::InvalidConfig { .. }
            | Error::Io(_) => return None,
        })
    }
}

impl From<ring::error::Unspecified> for Error {
    fn from(_: ring::error::Unspecified) -> Self {
        Error::Crypto {
            what: "ring operation",
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(std::sync::Arc::new(e))
    }
}
