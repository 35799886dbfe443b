//! Step 3a: each certificate failure is its own error, and the opt-in accepts them all.

use rustls_pki_types::UnixTime;
use tether_teaching_tls::{AlertDescription, CertificateError, ClientConfig, Error};

use super::pair;
use super::pki::{ca_signed, self_signed, Pki, Validity};

const NAME: &str = "tls.tether.test";

fn run_with(pki: &Pki, client: ClientConfig, name: &str) -> pair::Outcome {
    pair::run(client, pki.server_config(), name, |_, _| {})
}

fn client_error(pki: &Pki, client: ClientConfig, name: &str) -> Option<Error> {
    run_with(pki, client, name).client_error
}

#[test]
fn rfc5280_trusted_certificate_is_accepted() {
    let pki = ca_signed(&[NAME], Validity::Now);
    assert!(client_error(&pki, pki.client_config(), NAME).is_none());
}

#[test]
fn rfc6125_wrong_host_is_name_mismatch() {
    let pki = ca_signed(&[NAME], Validity::Now);
    let o = run_with(&pki, pki.client_config(), "other.tether.test");
    assert!(matches!(
        &o.client_error,
        Some(Error::Certificate(CertificateError::NameMismatch { expected })) if expected == "other.tether.test"
    ));
    // The server learns why: certificate_unknown.
    assert!(matches!(
        o.server_error,
        Some(Error::AlertReceived(AlertDescription::CERTIFICATE_UNKNOWN))
    ));
}

#[test]
fn rfc5280_expired_certificate_is_refused() {
    let pki = ca_signed(&[NAME], Validity::Expired);
    assert!(matches!(
        client_error(&pki, pki.client_config(), NAME),
        Some(Error::Certificate(CertificateError::Expired { .. }))
    ));
}

#[test]
fn rfc5280_not_yet_valid_certificate_is_refused() {
    let pki = ca_signed(&[NAME], Validity::Future);
    assert!(matches!(
        client_error(&pki, pki.client_config(), NAME),
        Some(Error::Certificate(CertificateError::NotYetValid { .. }))
    ));
}

#[test]
fn verification_time_is_injectable() {
    // The "expired" certificate (2000-2001) is valid in mid-2000.
    let pki = ca_signed(&[NAME], Validity::Expired);
    let mut client = pki.client_config();
    client.set_verification_time(Some(UnixTime::since_unix_epoch(
        std::time::Duration::from_secs(962_409_600), // 2000-07-01
    )));
    assert!(client_error(&pki, client, NAME).is_none());
}

#[test]
fn rfc5280_untrusted_issuer_is_refused() {
    let pki = ca_signed(&[NAME], Validity::Now);
    assert!(matches!(
        client_error(&pki, ClientConfig::default(), NAME),
        Some(Error::Certificate(CertificateError::UnknownIssuer))
    ));
}

#[test]
fn rfc5280_self_signed_certificate_is_refused() {
    let pki = self_signed(&[NAME]);
    let trusts_other_ca = ca_signed(&[NAME], Validity::Now).client_config();
    assert!(matches!(
        client_error(&pki, trusts_other_ca, NAME),
        Some(Error::Certificate(CertificateError::UnknownIssuer))
    ));
}

#[test]
fn rfc5280_bad_signature_in_chain_is_refused() {
    // Flip a byte inside the CA's signature of the server certificate (its last bytes).
    let mut pki = ca_signed(&[NAME], Validity::Now);
    let mut der = pki.server.to_vec();
    let last = der.len() - 1;
    der[last] ^= 0x01;
    pki.server = rustls_pki_types::CertificateDer::from(der);
    // The server config refuses nothing here: the key still matches.
    let o = run_with(&pki, pki.client_config(), NAME);
    assert!(matches!(
        o.client_error,
        Some(Error::Certificate(CertificateError::BadSignature))
    ));
}

#[test]
fn dangerous_opt_in_accepts_every_refused_certificate_and_says_so() {
    let cases: Vec<(Pki, ClientConfig, &str)> = vec![
        (
            ca_signed(&[NAME], Validity::Now),
            ca_signed(&[NAME], Validity::Now).client_config(),
            "wrong.tether.test",
        ),
        (
            ca_signed(&[NAME], Validity::Expired),
            ca_signed(&[NAME], Validity::Now).client_config(),
            NAME,
        ),
        (
            ca_signed(&[NAME], Validity::Now),
            ClientConfig::default(),
            NAME,
        ),
        (self_signed(&[NAME]), ClientConfig::default(), NAME),
    ];
    for (pki, mut client, name) in cases {
        client.dangerous_accept_invalid_certificates(true);
        let o = run_with(&pki, client, name);
        assert!(o.client_error.is_none(), "{:?}", o.client_error);
        assert!(o.client.is_established());
        assert!(o
            .client
            .transcript()
            .events()
            .iter()
            .any(|e| e.title.contains("CERTIFICATE NOT TRUSTED")));
    }
}
