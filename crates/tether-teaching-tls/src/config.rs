//! What each side is configured with: the client's trust anchors and offer, the server's
//! certificate, key and preference.

use std::fmt;
use std::sync::Arc;

use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::RsaPrivateKey;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, TrustAnchor, UnixTime};

use crate::cert;
use crate::error::Error;
use crate::keylog::KeyLog;
use crate::random::{Opaque, RandomSource, SystemRandomSource};
use crate::suite::CipherSuite;

/// Client configuration: whom to trust and what to offer.
///
/// ```
/// use tether_teaching_tls::{CipherSuite, ClientConfig};
/// let mut config = ClientConfig::default();
/// config.set_cipher_suites(vec![CipherSuite::RSA_WITH_AES_128_GCM_SHA256]);
/// assert_eq!(config.cipher_suites(), &[CipherSuite::RSA_WITH_AES_128_GCM_SHA256]);
/// ```
#[derive(Clone)]
pub struct ClientConfig {
    pub(crate) roots: Vec<TrustAnchor<'static>>,
    pub(crate) cipher_suites: Vec<CipherSuite>,
    pub(crate) time: Option<UnixTime>,
    pub(crate) accept_invalid_certificates: bool,
    pub(crate) key_log: Option<Arc<dyn KeyLog>>,
    pub(crate) random: Arc<dyn RandomSource>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            roots: Vec::new(),
            cipher_suites: CipherSuite::SUPPORTED.to_vec(),
            time: None,
            accept_invalid_certificates: false,
            key_log: None,
            random: Arc::new(SystemRandomSource),
        }
    }
}

impl ClientConfig {
    /// Adds a trust anchor (a root CA certificate, DER). Default: no roots, so every
    /// certificate is refused with [`CertificateError::UnknownIssuer`](crate::CertificateError::UnknownIssuer).
    ///
    /// Fails with [`Error::InvalidConfig`] if the certificate cannot be a trust anchor.
    pub fn add_root(&mut self, root: CertificateDer<'static>) -> Result<&mut Self, Error> {
        let anchor = webpki::anchor_from_trusted_cert(&root).map_err(|e| Error::InvalidConfig {
            reason: format!("unusable trust anchor: {e:?}"),
        })?;
        self.roots.push(anchor.to_owned());
        Ok(self)
    }

    /// Adds trust anchors as they are, for example `webpki_roots::TLS_SERVER_ROOTS` to
    /// check public sites. Default: none.
    pub fn add_trust_anchors(
        &mut self,
        anchors: impl IntoIterator<Item = TrustAnchor<'static>>,
    ) -> &mut Self {
        self.roots.extend(anchors);
        self
    }

    /// The suites the ClientHello offers, in this order (step 1). Default: both supported
    /// suites, ECDHE first. Suites this crate does not implement are dropped.
    pub fn set_cipher_suites(&mut self, suites: Vec<CipherSuite>) -> &mut Self {
        self.cipher_suites = suites.into_iter().filter(|s| s.is_supported()).collect();
        self
    }

    /// The offered suites.
    pub fn cipher_suites(&self) -> &[CipherSuite] {
        &self.cipher_suites
    }

    /// The time certificates are checked at (step 3a). Default: `None`, the system clock
    /// at the moment of the check. Tests inject a time to see expiry.
    pub fn set_verification_time(&mut self, time: Option<UnixTime>) -> &mut Self {
        self.time = time;
        self
    }

    /// **Dangerous, for the demo only**: continue the handshake when the certificate check
    /// fails, the way a user clicks through a browser warning (the tutorial's step 3b,
    /// "or the user accepted the untrusted certificate"). The failure is still recorded in
    /// the transcript. Anyone on the path can then read and change the traffic. Default:
    /// `false`.
    pub fn dangerous_accept_invalid_certificates(&mut self, accept: bool) -> &mut Self {
        self.accept_invalid_certificates = accept;
        self
    }

    /// Where to log session secrets in the NSS key log format. Default: `None`.
    pub fn set_key_log(&mut self, key_log: Option<Arc<dyn KeyLog>>) -> &mut Self {
        self.key_log = key_log;
        self
    }

    /// Where the handshake's random bytes come from, every one of them (see
    /// [`RandomSource`]). Default: [`SystemRandomSource`].
    pub fn set_random(&mut self, random: Arc<dyn RandomSource>) -> &mut Self {
        self.random = random;
        self
    }

    /// The configured random source.
    pub fn random(&self) -> &Arc<dyn RandomSource> {
        &self.random
    }
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("roots", &self.roots.len())
            .field("cipher_suites", &self.cipher_suites)
            .field("time", &self.time)
            .field(
                "accept_invalid_certificates",
                &self.accept_invalid_certificates,
            )
            .field("key_log", &self.key_log.is_some())
            .field("random", &Opaque)
            .finish()
    }
}

/// The server's RSA private key, usable for both decryption (RSA suite) and signing
/// (ECDHE suite).
///
/// Both operations use the `rsa` crate with blinding drawn from the connection's
/// [`RandomSource`] (ring's signer would draw its blinding from its own sealed generator, a
/// second source). Like everything here it is for learning: the `rsa` crate is not hardened
/// against timing attacks the way ring is (RUSTSEC-2023-0071).
#[derive(Clone)]
pub struct ServerKey {
    pub(crate) rsa: RsaPrivateKey,
}

/// Sizes of the modulus accepted, in bits: the range ring's RSA signer accepted before.
const MODULUS_BITS: std::ops::RangeInclusive<usize> = 2048..=8192;

/// RFC 8017 section 9.2, note 1: the DER `DigestInfo` header that precedes a SHA-256 hash
/// in a PKCS#1 v1.5 signature (the algorithm's OID, then the 32-byte hash).
const SHA256_DIGEST_INFO: [u8; 19] = [
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];

impl ServerKey {
    /// Loads an RSA key from PKCS#8 or PKCS#1 DER.
    ///
    /// Fails with [`Error::InvalidConfig`] for other key types (this handshake needs RSA)
    /// and for a modulus outside 2048-8192 bits.
    pub fn from_der(key: &PrivateKeyDer<'_>) -> Result<Self, Error> {
        let bad = |what: &str| Error::InvalidConfig {
            reason: format!("not a usable RSA private key: {what}"),
        };
        let rsa = match key {
            PrivateKeyDer::Pkcs8(k) => RsaPrivateKey::from_pkcs8_der(k.secret_pkcs8_der())
                .map_err(|e| bad(&e.to_string()))?,
            PrivateKeyDer::Pkcs1(k) => RsaPrivateKey::from_pkcs1_der(k.secret_pkcs1_der())
                .map_err(|e| bad(&e.to_string()))?,
            _ => return Err(bad("only PKCS#8 or PKCS#1 RSA keys")),
        };
        rsa.validate().map_err(|e| bad(&e.to_string()))?;
        let bits = rsa::traits::PublicKeyParts::n(&rsa).bits();
        if !MODULUS_BITS.contains(&bits) {
            return Err(bad(&format!("a {bits}-bit modulus (2048 to 8192 wanted)")));
        }
        Ok(Self { rsa })
    }

    /// The RSASSA-PKCS1-v1_5 signature with SHA-256 of `message` (RFC 8017 section 8.2),
    /// blinded with bytes from `random`. The signature itself is deterministic: the same key
    /// and message give the same bytes whatever the source.
    pub(crate) fn sign_pkcs1_sha256(
        &self,
        random: &dyn RandomSource,
        message: &[u8],
    ) -> Result<Vec<u8>, Error> {
        let hash = ring::digest::digest(&ring::digest::SHA256, message);
        let padding = rsa::Pkcs1v15Sign {
            hash_len: Some(hash.as_ref().len()),
            prefix: SHA256_DIGEST_INFO.into(),
        };
        self.rsa
            .sign_with_rng(&mut crate::random::rsa_rng(random)?, padding, hash.as_ref())
            .map_err(|_| Error::Crypto {
                what: "RSA signature",
            })
    }

    /// Decrypts an RSAES-PKCS1-v1_5 ciphertext (RFC 8017 section 7.2.2), blinded with
    /// bytes from `random`. `None` for any failure: the caller must not tell them apart.
    pub(crate) fn decrypt_pkcs1(
        &self,
        random: &dyn RandomSource,
        ciphertext: &[u8],
    ) -> Result<Option<Vec<u8>>, Error> {
        let mut rng = crate::random::rsa_rng(random)?;
        Ok(self
            .rsa
            .decrypt_blinded(&mut rng, rsa::Pkcs1v15Encrypt, ciphertext)
            .ok())
    }
}

impl fmt::Debug for ServerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ServerKey { .. }")
    }
}

/// Server configuration: its certificate chain, its key, the suites it accepts.
#[derive(Clone)]
pub struct ServerConfig {
    pub(crate) chain: Vec<CertificateDer<'static>>,
    pub(crate) key: ServerKey,
    pub(crate) cipher_suites: Vec<CipherSuite>,
    pub(crate) key_log: Option<Arc<dyn KeyLog>>,
    pub(crate) random: Arc<dyn RandomSource>,
}

impl ServerConfig {
    /// A server with `chain` (its own certificate first) and the matching RSA `key`.
    ///
    /// Fails with [`Error::InvalidConfig`] when the chain is empty, the certificate's key is
    /// not RSA, or the private key does not belong to the certificate.
    pub fn new(chain: Vec<CertificateDer<'static>>, key: ServerKey) -> Result<Self, Error> {
        let first = chain.first().ok_or_else(|| Error::InvalidConfig {
            reason: "empty certificate chain".to_owned(),
        })?;
        let public = cert::rsa_public_key(first).map_err(|e| Error::InvalidConfig {
            reason: format!("server certificate: {e}"),
        })?;
        if public != key.rsa.to_public_key() {
            return Err(Error::InvalidConfig {
                reason: "the private key does not match the certificate".to_owned(),
            });
        }
        Ok(Self {
            chain,
            key,
            cipher_suites: CipherSuite::SUPPORTED.to_vec(),
            key_log: None,
            random: Arc::new(SystemRandomSource),
        })
    }

    /// The suites the server accepts, most preferred first (step 2: "the site picks").
    /// Default: both supported suites, ECDHE first.
    pub fn set_cipher_suites(&mut self, suites: Vec<CipherSuite>) -> &mut Self {
        self.cipher_suites = suites.into_iter().filter(|s| s.is_supported()).collect();
        self
    }

    /// The accepted suites, in preference order.
    pub fn cipher_suites(&self) -> &[CipherSuite] {
        &self.cipher_suites
    }

    /// Where to log session secrets in the NSS key log format. Default: `None`.
    pub fn set_key_log(&mut self, key_log: Option<Arc<dyn KeyLog>>) -> &mut Self {
        self.key_log = key_log;
        self
    }

    /// Where the handshake's random bytes come from, every one of them (see
    /// [`RandomSource`]). Default: [`SystemRandomSource`].
    pub fn set_random(&mut self, random: Arc<dyn RandomSource>) -> &mut Self {
        self.random = random;
        self
    }

    /// The configured random source.
    pub fn random(&self) -> &Arc<dyn RandomSource> {
        &self.random
    }
}

impl fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerConfig")
            .field("chain", &self.chain.len())
            .field("cipher_suites", &self.cipher_suites)
            .field("key_log", &self.key_log.is_some())
            .field("random", &Opaque)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use rsa::pkcs8::EncodePrivateKey;
    use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

    use super::ServerKey;
    use crate::error::Error;

    fn key_of(bits: usize) -> PrivateKeyDer<'static> {
        let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, bits).expect("RSA key");
        let der = key.to_pkcs8_der().expect("PKCS#8").as_bytes().to_vec();
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(der))
    }

    #[test]
    fn server_keys_of_2048_bits_are_taken_and_of_1024_bits_refused() {
        assert!(ServerKey::from_der(&key_of(2048)).is_ok());
        let err = ServerKey::from_der(&key_of(1024)).unwrap_err();
        assert!(
            matches!(&err, Error::InvalidConfig { reason } if reason.contains("1024-bit")),
            "{err:?}"
        );
    }

    #[test]
    fn rfc8017_8_2_signatures_are_deterministic_whatever_the_blinding() {
        let key = ServerKey::from_der(&key_of(2048)).unwrap();
        let source = crate::random::SystemRandomSource;
        let a = key.sign_pkcs1_sha256(&source, b"message").unwrap();
        assert_eq!(a, key.sign_pkcs1_sha256(&source, b"message").unwrap());
        assert_eq!(a.len(), 256);
        assert_ne!(a, key.sign_pkcs1_sha256(&source, b"other").unwrap());
    }
}
