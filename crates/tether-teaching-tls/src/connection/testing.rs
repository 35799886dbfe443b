//! Test helpers for the state files: a client and a server in memory, and the flights
//! between them cut into single records so each transition can be observed.

use std::sync::{Arc, OnceLock};

use rsa::pkcs8::EncodePrivateKey;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};

use crate::alert::{AlertDescription, LEVEL_FATAL};
use crate::config::{ClientConfig, ServerConfig, ServerKey};
use crate::error::Error;
use crate::record::{self, ContentType, MAX_CIPHERTEXT_LEN};
use crate::suite::CipherSuite;

use super::Connection;

const NAME: &str = "states.test";

/// One self-signed RSA certificate for [`NAME`] per test binary (RSA key generation is
/// the slow part) and its PKCS#8 key.
fn pki() -> &'static (CertificateDer<'static>, Vec<u8>) {
    static PKI: OnceLock<(CertificateDer<'static>, Vec<u8>)> = OnceLock::new();
    PKI.get_or_init(|| {
        let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).expect("RSA key");
        let pkcs8 = key.to_pkcs8_der().expect("PKCS#8").as_bytes().to_vec();
        let signer = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(
            &PrivatePkcs8KeyDer::from(pkcs8.clone()),
            &rcgen::PKCS_RSA_SHA256,
        )
        .expect("rcgen key");
        let cert = rcgen::CertificateParams::new(vec![NAME.to_owned()])
            .expect("params")
            .self_signed(&signer)
            .expect("certificate");
        (cert.der().clone(), pkcs8)
    })
}

/// A fresh client (its ClientHello queued) and server that both offer only `suite`.
pub(super) fn pair(suite: CipherSuite) -> (Connection, Connection) {
    pair_with(suite, |_| {})
}

/// The caller's clock in these tests: 2033, inside rcgen's default validity (1975-4096).
pub(super) const NOW: u64 = 2_000_000_000;

/// [`pair`], with the client's configuration changed by `edit` first.
pub(super) fn pair_with(
    suite: CipherSuite,
    edit: impl FnOnce(&mut ClientConfig),
) -> (Connection, Connection) {
    pair_at(suite, NOW, edit)
}

/// [`pair_with`], the client's clock reading `now` (unix seconds).
pub(super) fn pair_at(
    suite: CipherSuite,
    now: u64,
    edit: impl FnOnce(&mut ClientConfig),
) -> (Connection, Connection) {
    pair_configured(suite, now, edit, |_| {})
}

/// Test-only, never for real use: the same predictable bytes on every call.
pub(super) struct FixedRandom;

impl crate::random::RandomSource for FixedRandom {
    fn fill(&self, dest: &mut [u8]) -> Result<(), Error> {
        dest.iter_mut().enumerate().for_each(|(i, b)| *b = i as u8);
        Ok(())
    }
}

/// [`pair`], both sides drawing from [`FixedRandom`].
pub(super) fn pair_seeded(suite: CipherSuite) -> (Connection, Connection) {
    pair_configured(
        suite,
        NOW,
        |c| {
            c.set_random(Arc::new(FixedRandom));
        },
        |s| {
            s.set_random(Arc::new(FixedRandom));
        },
    )
}

/// A client (clock at `now`) and a server, their configurations changed by the edits.
fn pair_configured(
    suite: CipherSuite,
    now: u64,
    edit: impl FnOnce(&mut ClientConfig),
    edit_server: impl FnOnce(&mut ServerConfig),
) -> (Connection, Connection) {
    let (cert, pkcs8) = pki();
    let mut client_config = ClientConfig::default();
    client_config
        .add_root(cert.clone())
        .expect("root")
        .set_cipher_suites(vec![suite]);
    edit(&mut client_config);
    let key = ServerKey::from_der(&PrivateKeyDer::Pkcs8(pkcs8.clone().into())).expect("key");
    let mut server_config = ServerConfig::new(vec![cert.clone()], key).expect("config");
    server_config.set_cipher_suites(vec![suite]);
    edit_server(&mut server_config);
    let name = ServerName::try_from(NAME).expect("name").to_owned();
    let now = UnixTime::since_unix_epoch(std::time::Duration::from_secs(now));
    let client = Connection::client(Arc::new(client_config), name, now).expect("client");
    (client, Connection::server(Arc::new(server_config)))
}

/// Everything `conn` queued, cut into whole records (header included).
pub(super) fn records(conn: &mut Connection) -> Vec<Vec<u8>> {
    let bytes = conn.take_outgoing();
    let mut rest = &bytes[..];
    let mut out = Vec::new();
    while let Some((_, n)) = record::split_record(rest, MAX_CIPHERTEXT_LEN).expect("record") {
        out.push(rest[..n].to_vec());
        rest = &rest[n..];
    }
    assert!(rest.is_empty(), "a partial record was queued");
    out
}

/// Feeds `records` to `conn` one by one; returns what it expects after each.
pub(super) fn expects_after_each(conn: &mut Connection, records: &[Vec<u8>]) -> Vec<&'static str> {
    records
        .iter()
        .map(|r| {
            conn.receive(r).expect("an in-order record");
            conn.state.expects()
        })
        .collect()
}

/// A plaintext handshake record carrying `msg`.
pub(super) fn handshake_record(msg: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    record::write_record(&mut out, ContentType::Handshake, msg);
    out
}

/// A plaintext ChangeCipherSpec record.
pub(super) fn change_cipher_spec_record() -> Vec<u8> {
    let mut out = Vec::new();
    record::write_record(&mut out, ContentType::ChangeCipherSpec, &[1]);
    out
}

/// Asserts that `record` is refused as unexpected while `expected` is awaited (RFC 5246
/// section 7.2.2), that the connection queued a fatal unexpected_message alert and stays
/// failed.
pub(super) fn assert_unexpected(conn: &mut Connection, record: &[u8], expected: &str, got: &str) {
    let e = conn
        .receive(record)
        .expect_err("an out-of-order message must fail");
    match &e {
        Error::UnexpectedMessage {
            expected: exp,
            got: g,
        } => {
            assert_eq!((*exp, g.as_str()), (expected, got));
        }
        other => panic!("expected UnexpectedMessage, got {other:?}"),
    }
    let out = conn.take_outgoing();
    if conn.write_cipher.is_none() {
        let alert = [LEVEL_FATAL, AlertDescription::UNEXPECTED_MESSAGE.0];
        assert!(out.ends_with(&alert), "no fatal unexpected_message alert");
    } else {
        assert!(!out.is_empty(), "no (encrypted) alert queued");
    }
    assert!(!conn.is_handshaking() && !conn.is_established());
    assert_eq!(conn.receive(&[]).unwrap_err().to_string(), e.to_string());
}
