//! Limits and refusals of the sans-IO connection, each at the limit and one past it.

use std::sync::Arc;

use rustls_pki_types::ServerName;
use tether_teaching_tls::{
    CipherSuite, Connection, Error, MAX_FRAGMENT_LEN, MAX_HANDSHAKE_MESSAGE_LEN,
};

use super::pair::{self, Way};
use super::pki::{ca_signed, Validity};

const NAME: &str = "tls.tether.test";

fn server() -> Connection {
    Connection::server(Arc::new(ca_signed(&[NAME], Validity::Now).server_config()))
}

fn client_hello() -> Vec<u8> {
    let pki = ca_signed(&[NAME], Validity::Now);
    let name = ServerName::try_from(NAME).unwrap().to_owned();
    Connection::client(
        Arc::new(pki.client_config()),
        name,
        rustls_pki_types::UnixTime::now(),
    )
    .unwrap()
    .take_outgoing()
}

#[test]
fn rfc5246_e_1_client_below_tls12_gets_protocol_version_alert() {
    let mut hello = client_hello();
    // client_version sits after the record header (5) and handshake header (4).
    hello[9..11].copy_from_slice(&[0x03, 0x01]);
    let mut s = server();
    assert!(matches!(
        s.receive(&hello),
        Err(Error::UnsupportedVersion { version: 0x0301 })
    ));
    assert_eq!(s.take_outgoing(), [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 70]);
    // The error sticks.
    assert!(matches!(
        s.receive(&hello),
        Err(Error::UnsupportedVersion { .. })
    ));
    assert!(matches!(
        s.receive(b""),
        Err(Error::UnsupportedVersion { .. })
    ));
}

fn handshake_header(len: usize) -> Vec<u8> {
    // A record carrying only the 4-byte header of a ClientHello of `len` bytes.
    vec![
        0x16,
        0x03,
        0x01,
        0x00,
        0x04,
        0x01,
        (len >> 16) as u8,
        (len >> 8) as u8,
        len as u8,
    ]
}

#[test]
fn handshake_message_limit_at_and_past() {
    let mut s = server();
    assert!(s
        .receive(&handshake_header(MAX_HANDSHAKE_MESSAGE_LEN))
        .is_ok());
    assert!(s.is_handshaking());
    let mut s = server();
    assert!(matches!(
        s.receive(&handshake_header(MAX_HANDSHAKE_MESSAGE_LEN + 1)),
        Err(Error::HandshakeMessageTooLarge { len, limit })
            if len == MAX_HANDSHAKE_MESSAGE_LEN + 1 && limit == MAX_HANDSHAKE_MESSAGE_LEN
    ));
}

#[test]
fn rfc5246_6_2_1_plaintext_record_limit_at_and_past() {
    let header = |len: usize| {
        let mut h = vec![0x16, 0x03, 0x01];
        h.extend_from_slice(&(len as u16).to_be_bytes());
        h
    };
    let mut s = server();
    assert!(s.receive(&header(MAX_FRAGMENT_LEN)).is_ok());
    let mut s = server();
    assert!(matches!(
        s.receive(&header(MAX_FRAGMENT_LEN + 1)),
        Err(Error::RecordOverflow { len, limit }) if len == MAX_FRAGMENT_LEN + 1 && limit == MAX_FRAGMENT_LEN
    ));
}

#[test]
fn rfc5246_7_4_7_1_bad_premaster_shows_only_at_finished() {
    let pki = ca_signed(&[NAME], Validity::Now);
    let mut client = pki.client_config();
    client.set_cipher_suites(vec![CipherSuite::RSA_WITH_AES_128_GCM_SHA256]);
    let mut flights = 0;
    let o = pair::run(client, pki.server_config(), NAME, |way, flight| {
        if way == Way::ToServer {
            flights += 1;
            if flights == 2 {
                // ClientKeyExchange: record(5) | handshake header(4) | length(2) | ciphertext.
                assert_eq!(flight[5], 0x10);
                flight[5 + 4 + 2 + 100] ^= 0x01;
            }
        }
    });
    // The server went on with a random premaster: its keys differ, so the client's
    // Finished does not decrypt. Nothing told the client the premaster was bad.
    assert!(
        matches!(o.server_error, Some(Error::BadRecordMac)),
        "{:?}",
        o.server_error
    );
    assert!(o.server.transcript().events().iter().any(|e| e
        .fields
        .iter()
        .any(|f| f.value.contains("random premaster"))));
}

#[test]
fn rfc5246_7_4_1_4_unsolicited_server_extension_is_refused() {
    let pki = ca_signed(&[NAME], Validity::Now);
    let o = pair::run(
        pki.client_config(),
        pki.server_config(),
        NAME,
        |way, flight| {
            // Rename the server's renegotiation_info (ff01) to extended_master_secret (0017),
            // which the client never offered.
            if way == Way::ToClient && flight[5] == 0x02 {
                // record(5) handshake(4) version(2) random(32) session_id(1, empty)
                // suite(2) compression(1) extensions length(2), then the first extension.
                let at = 5 + 4 + 2 + 32 + 1 + 2 + 1 + 2;
                assert_eq!(flight[at..at + 2], [0xff, 0x01]);
                flight[at..at + 2].copy_from_slice(&[0x00, 0x17]);
            }
        },
    );
    assert!(matches!(
        o.client_error,
        Some(Error::UnsolicitedExtension { extension: 0x0017 })
    ));
}

#[test]
fn a_server_name_with_control_characters_is_escaped_in_the_transcript() {
    let mut hello = client_hello();
    // Same length as the real name, so every length field stays right.
    let evil = b"tls\x1b[2J\nevil.te";
    assert_eq!(evil.len(), NAME.len());
    let at = hello
        .windows(NAME.len())
        .position(|w| w == NAME.as_bytes())
        .unwrap();
    hello[at..at + NAME.len()].copy_from_slice(evil);
    let mut s = server();
    s.receive(&hello).unwrap();
    let sni = s.transcript().events()[0]
        .fields
        .iter()
        .find(|f| f.name == "server_name")
        .unwrap()
        .value
        .clone();
    assert_eq!(sni, "tls\\u{1b}[2J\\u{a}evil.te");
    let text = s.transcript().render(&Default::default());
    assert!(!text.contains('\x1b'));
    assert!(text.contains("tls\\u{1b}[2J\\u{a}evil.te"));
}
