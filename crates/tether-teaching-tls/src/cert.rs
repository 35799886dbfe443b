//! Step 3a: the certificate check, with rustls-webpki (RFC 5280 path validation).
//!
//! "Is the issuer trusted, is the address in the certificate the one we are visiting?"
//! webpki builds a chain from the server's certificate to one of the configured trust
//! anchors, checks every signature and the validity period at the given time, and then
//! checks the name.

use rsa::pkcs8::DecodePublicKey;
use rsa::RsaPublicKey;
use rustls_pki_types::{CertificateDer, ServerName, TrustAnchor, UnixTime};

use crate::error::CertificateError;

/// Verifies `chain` (end entity first) for `name` at `now` against `roots`.
pub(crate) fn verify_server_chain(
    chain: &[CertificateDer<'_>],
    roots: &[TrustAnchor<'static>],
    name: &ServerName<'_>,
    now: UnixTime,
) -> Result<(), CertificateError> {
    let (ee, intermediates) = chain.split_first().ok_or(CertificateError::NoCertificate)?;
    let ee = webpki::EndEntityCert::try_from(ee).map_err(map_webpki)?;
    ee.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        roots,
        intermediates,
        now,
        webpki::KeyUsage::server_auth(),
        None,
        None,
    )
    .map_err(map_webpki)?;
    ee.verify_is_valid_for_subject_name(name)
        .map_err(|_| CertificateError::NameMismatch {
            expected: server_name_str(name),
        })
}

/// The RSA public key inside a certificate: what step 3b encrypts the premaster with.
pub(crate) fn rsa_public_key(cert: &CertificateDer<'_>) -> Result<RsaPublicKey, CertificateError> {
    let ee = webpki::EndEntityCert::try_from(cert).map_err(map_webpki)?;
    let spki = ee.subject_public_key_info();
    RsaPublicKey::from_public_key_der(spki.as_ref()).map_err(|_| CertificateError::NotRsa)
}

/// Checks the server's signature over its ECDHE parameters with the certificate's key.
pub(crate) fn verify_signature(
    cert: &CertificateDer<'_>,
    scheme: u16,
    message: &[u8],
    signature: &[u8],
) -> bool {
    use crate::message::{SIG_RSA_PKCS1_SHA256, SIG_RSA_PKCS1_SHA384, SIG_RSA_PKCS1_SHA512};
    let alg = match scheme {
        SIG_RSA_PKCS1_SHA256 => webpki::ring::RSA_PKCS1_2048_8192_SHA256,
        SIG_RSA_PKCS1_SHA384 => webpki::ring::RSA_PKCS1_2048_8192_SHA384,
        SIG_RSA_PKCS1_SHA512 => webpki::ring::RSA_PKCS1_2048_8192_SHA512,
        _ => return false,
    };
    let Ok(ee) = webpki::EndEntityCert::try_from(cert) else {
        return false;
    };
    ee.verify_signature(alg, message, signature).is_ok()
}

pub(crate) fn server_name_str(name: &ServerName<'_>) -> String {
    match name {
        ServerName::DnsName(d) => d.as_ref().to_owned(),
        ServerName::IpAddress(ip) => std::net::IpAddr::from(*ip).to_string(),
        _ => "<unsupported name type>".to_owned(),
    }
}

fn map_webpki(e: webpki::Error) -> CertificateError {
    use webpki::Error as W;
    match e {
        W::UnknownIssuer => CertificateError::UnknownIssuer,
        W::CertExpired { time, not_after } => CertificateError::Expired {
            now: time.as_secs(),
            not_after: not_after.as_secs(),
        },
        W::CertNotValidYet { time, not_before } => CertificateError::NotYetValid {
            now: time.as_secs(),
            not_before: not_before.as_secs(),
        },
        W::InvalidSignatureForPublicKey
        | W::UnsupportedSignatureAlgorithmContext(_)
        | W::UnsupportedSignatureAlgorithmForPublicKeyContext(_) => CertificateError::BadSignature,
        other => CertificateError::Other(format!("{other:?}")),
    }
}
