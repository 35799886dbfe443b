//! Configuration errors are reported when the configuration is built.

use std::sync::Arc;

use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tether_teaching_tls::{ClientConfig, Connection, Error, ServerConfig, ServerKey};

use super::pki::{ca_signed, server_key, Validity};

#[test]
fn server_config_refuses_an_empty_chain() {
    assert!(matches!(
        ServerConfig::new(vec![], server_key()),
        Err(Error::InvalidConfig { .. })
    ));
}

#[test]
fn server_config_refuses_a_key_that_does_not_match_the_certificate() {
    // The CA certificate carries the other test key.
    let pki = ca_signed(&["a.test"], Validity::Now);
    assert!(matches!(
        ServerConfig::new(vec![pki.ca.clone()], server_key()),
        Err(Error::InvalidConfig { reason }) if reason.contains("does not match")
    ));
}

#[test]
fn server_config_refuses_a_non_rsa_certificate_and_key() {
    let ec = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["a.test".to_owned()])
        .unwrap()
        .self_signed(&ec)
        .unwrap();
    assert!(matches!(
        ServerConfig::new(vec![cert.der().clone()], server_key()),
        Err(Error::InvalidConfig { .. })
    ));
    let ec_key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ec.serialize_der()));
    assert!(matches!(
        ServerKey::from_der(&ec_key),
        Err(Error::InvalidConfig { .. })
    ));
}

#[test]
fn client_config_refuses_a_root_that_is_not_a_certificate() {
    let mut c = ClientConfig::default();
    assert!(matches!(
        c.add_root(CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01, 0x00])),
        Err(Error::InvalidConfig { .. })
    ));
}

#[test]
fn client_without_suites_is_refused_at_construction() {
    let mut c = ClientConfig::default();
    c.set_cipher_suites(vec![tether_teaching_tls::CipherSuite(0x1301)]);
    assert!(c.cipher_suites().is_empty());
    let name = ServerName::try_from("a.test").unwrap().to_owned();
    assert!(matches!(
        Connection::client(Arc::new(c), name, rustls_pki_types::UnixTime::now()),
        Err(Error::InvalidConfig { .. })
    ));
}
