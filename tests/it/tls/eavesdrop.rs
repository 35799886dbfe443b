//! Forward secrecy, shown: a recorded RSA-suite session falls to a key stolen later; the
//! same recording of an ECDHE session does not. The key log decrypts both.

use std::sync::{Arc, Mutex};

use tether_teaching_tls::{
    decrypt_recording, CipherSuite, EavesdropError, Error, KeyLog, StolenSecret,
};

use super::pair;
use super::pki::{ca_signed, server_key, Validity};

const NAME: &str = "tls.tether.test";

/// One key log call: label, client random, secret.
type Line = (String, Vec<u8>, Vec<u8>);

#[derive(Default)]
struct Collect(Mutex<Vec<Line>>);

impl KeyLog for Collect {
    fn log(&self, label: &str, client_random: &[u8], secret: &[u8]) {
        self.0
            .lock()
            .unwrap()
            .push((label.to_owned(), client_random.to_vec(), secret.to_vec()));
    }
}

struct Recorded {
    to_server: Vec<u8>,
    to_client: Vec<u8>,
    master: [u8; 48],
}

/// A session with `suite` exchanging one request and one answer, recorded on the wire.
fn record_session(suite: CipherSuite) -> Recorded {
    let pki = ca_signed(&[NAME], Validity::Now);
    let log = Arc::new(Collect::default());
    let mut client = pki.client_config();
    client.set_cipher_suites(vec![suite]);
    client.set_key_log(Some(log.clone()));
    let mut o = pair::run(client, pki.server_config(), NAME, |_, _| {});
    assert!(o.client.is_established());
    let mut to_server = o.to_server;
    let mut to_client = o.to_client;
    o.client.send(b"GET /secret-diary").unwrap();
    let bytes = o.client.take_outgoing();
    to_server.extend_from_slice(&bytes);
    o.server.receive(&bytes).unwrap();
    o.server.send(b"dear diary, today").unwrap();
    let bytes = o.server.take_outgoing();
    to_client.extend_from_slice(&bytes);
    o.client.receive(&bytes).unwrap();

    let lines = log.0.lock().unwrap();
    assert_eq!(lines.len(), 1);
    let (label, random, secret) = &lines[0];
    assert_eq!(label, "CLIENT_RANDOM");
    assert_eq!(random.as_slice(), o.client.client_random());
    Recorded {
        to_server,
        to_client,
        master: secret.as_slice().try_into().unwrap(),
    }
}

#[test]
fn forward_secrecy_rsa_session_falls_to_the_stolen_server_key() {
    let r = record_session(CipherSuite::RSA_WITH_AES_128_GCM_SHA256);
    let key = server_key();
    let d = decrypt_recording(&r.to_server, &r.to_client, StolenSecret::ServerKey(&key)).unwrap();
    assert_eq!(d.suite, CipherSuite::RSA_WITH_AES_128_GCM_SHA256);
    assert_eq!(d.client_data, b"GET /secret-diary");
    assert_eq!(d.server_data, b"dear diary, today");
}

#[test]
fn forward_secrecy_ecdhe_session_resists_the_stolen_server_key() {
    let r = record_session(CipherSuite::ECDHE_RSA_WITH_AES_128_GCM_SHA256);
    let key = server_key();
    assert!(matches!(
        decrypt_recording(&r.to_server, &r.to_client, StolenSecret::ServerKey(&key)),
        Err(EavesdropError::ForwardSecret { .. })
    ));
}

#[test]
fn sslkeylogfile_master_secret_decrypts_either_suite() {
    for suite in CipherSuite::SUPPORTED {
        let r = record_session(suite);
        let d = decrypt_recording(
            &r.to_server,
            &r.to_client,
            StolenSecret::MasterSecret(&r.master),
        )
        .unwrap();
        assert_eq!(d.client_data, b"GET /secret-diary", "{suite}");
        // A wrong master secret fails authentication instead of producing garbage.
        let mut wrong = r.master;
        wrong[0] ^= 1;
        assert!(matches!(
            decrypt_recording(
                &r.to_server,
                &r.to_client,
                StolenSecret::MasterSecret(&wrong)
            ),
            Err(EavesdropError::Tls(Error::BadRecordMac))
        ));
    }
}
