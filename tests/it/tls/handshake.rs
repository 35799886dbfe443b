//! Full handshakes in memory: both suites, both directions of data, negotiation rules.

use tether_teaching_tls::{AlertDescription, CipherSuite, Error, Step};

use super::pair::{self, deliver, Way};
use super::pki::{ca_signed, Validity};

const NAME: &str = "tls.tether.test";

fn handshake_for(suites_client: &[CipherSuite], suites_server: &[CipherSuite]) -> pair::Outcome {
    let pki = ca_signed(&[NAME], Validity::Now);
    let mut client = pki.client_config();
    client.set_cipher_suites(suites_client.to_vec());
    let mut server = pki.server_config();
    server.set_cipher_suites(suites_server.to_vec());
    pair::run(client, server, NAME, |_, _| {})
}

#[test]
fn rfc5246_7_3_both_suites_complete_and_carry_data_both_ways() {
    for suite in CipherSuite::SUPPORTED {
        let mut o = handshake_for(&[suite], &CipherSuite::SUPPORTED);
        assert!(
            o.client_error.is_none() && o.server_error.is_none(),
            "{suite}"
        );
        assert!(o.client.is_established() && o.server.is_established());
        assert_eq!(o.client.cipher_suite(), Some(suite));
        assert_eq!(o.server.cipher_suite(), Some(suite));

        o.client.send(b"ping from client").unwrap();
        assert_eq!(deliver(&mut o.client, &mut o.server), b"ping from client");
        o.server.send(b"pong from server").unwrap();
        assert_eq!(deliver(&mut o.server, &mut o.client), b"pong from server");

        // Every step of the tutorial shows up in the client's transcript.
        let steps: Vec<Step> = o
            .client
            .transcript()
            .events()
            .iter()
            .map(|e| e.step)
            .collect();
        for step in [
            Step::OfferCiphers,
            Step::ChooseCipher,
            Step::CheckCertificate,
            Step::Premaster,
            Step::ClientFinished,
            Step::ClientVerifies,
            Step::ApplicationData,
        ] {
            assert!(steps.contains(&step), "{suite}: {step:?} missing");
        }
        assert!(o
            .server
            .transcript()
            .events()
            .iter()
            .any(|e| e.step == Step::ServerFinished));
    }
}

#[test]
fn rfc5246_6_2_1_large_writes_are_split_into_records_of_at_most_2_14() {
    let mut o = handshake_for(&CipherSuite::SUPPORTED, &CipherSuite::SUPPORTED);
    let data: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
    o.client.send(&data).unwrap();
    let wire = o.client.take_outgoing();
    // 100 000 bytes = 6 full records of 16384 and one of 1696.
    let mut records = 0;
    let mut rest = &wire[..];
    while !rest.is_empty() {
        let len = usize::from(u16::from_be_bytes([rest[3], rest[4]]));
        assert!(len <= (1 << 14) + 24);
        rest = &rest[5 + len..];
        records += 1;
    }
    assert_eq!(records, 7);
    // Delivered one byte at a time: records are reassembled across reads.
    for b in &wire {
        o.server.receive(std::slice::from_ref(b)).unwrap();
    }
    let mut got = vec![0u8; data.len() + 1];
    assert_eq!(o.server.read_plaintext(&mut got), data.len());
    assert_eq!(&got[..data.len()], &data[..]);
}

#[test]
fn rfc5246_7_4_1_3_server_preference_decides() {
    let o = handshake_for(
        &[
            CipherSuite::RSA_WITH_AES_128_GCM_SHA256,
            CipherSuite::ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        ],
        &[
            CipherSuite::ECDHE_RSA_WITH_AES_128_GCM_SHA256,
            CipherSuite::RSA_WITH_AES_128_GCM_SHA256,
        ],
    );
    assert_eq!(
        o.server.cipher_suite(),
        Some(CipherSuite::ECDHE_RSA_WITH_AES_128_GCM_SHA256)
    );
    let o = handshake_for(
        &CipherSuite::SUPPORTED,
        &[
            CipherSuite::RSA_WITH_AES_128_GCM_SHA256,
            CipherSuite::ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        ],
    );
    assert_eq!(
        o.server.cipher_suite(),
        Some(CipherSuite::RSA_WITH_AES_128_GCM_SHA256)
    );
}

#[test]
fn rfc5246_7_4_1_3_no_common_suite_is_handshake_failure_naming_both_lists() {
    let o = handshake_for(
        &[CipherSuite::RSA_WITH_AES_128_GCM_SHA256],
        &[CipherSuite::ECDHE_RSA_WITH_AES_128_GCM_SHA256],
    );
    match &o.server_error {
        Some(Error::NoCommonCipherSuite { offered, supported }) => {
            assert_eq!(offered, &[CipherSuite::RSA_WITH_AES_128_GCM_SHA256]);
            assert_eq!(supported, &[CipherSuite::ECDHE_RSA_WITH_AES_128_GCM_SHA256]);
        }
        other => panic!("expected NoCommonCipherSuite, got {other:?}"),
    }
    let text = o.server_error.as_ref().unwrap().to_string();
    assert!(text.contains("TLS_RSA_WITH_AES_128_GCM_SHA256") && text.contains("TLS_ECDHE_RSA"));
    assert!(matches!(
        o.client_error,
        Some(Error::AlertReceived(AlertDescription::HANDSHAKE_FAILURE))
    ));
}

#[test]
fn rfc5246_7_2_1_close_notify_ends_the_stream_cleanly() {
    let mut o = handshake_for(&CipherSuite::SUPPORTED, &CipherSuite::SUPPORTED);
    o.client.close();
    assert!(matches!(
        o.client.send(b"late"),
        Err(Error::NotReady { .. })
    ));
    let bytes = o.client.take_outgoing();
    o.server.receive(&bytes).unwrap();
    assert!(o.server.peer_closed());
    assert!(o.server.receive_eof().is_ok());
}

#[test]
fn rfc5246_7_2_1_eof_without_close_notify_is_truncation() {
    let mut o = handshake_for(&CipherSuite::SUPPORTED, &CipherSuite::SUPPORTED);
    o.client.send(b"hello").unwrap();
    let bytes = o.client.take_outgoing();
    // Cut the record in half, then the transport ends.
    o.server.receive(&bytes[..bytes.len() / 2]).unwrap();
    assert!(
        matches!(o.server.receive_eof(), Err(Error::Truncated { buffered }) if buffered == bytes.len() / 2)
    );
}

#[test]
fn rfc5246_7_4_9_application_data_before_finished_is_unexpected() {
    let pki = ca_signed(&[NAME], Validity::Now);
    // Inject an application_data record into the first flight to the server.
    let o = pair::run(
        pki.client_config(),
        pki.server_config(),
        NAME,
        |way, bytes| {
            if way == Way::ToServer && bytes[5] == 1 {
                bytes.extend_from_slice(&[0x17, 0x03, 0x03, 0x00, 0x01, 0x00]);
            }
        },
    );
    assert!(matches!(
        o.server_error,
        Some(Error::UnexpectedMessage { .. })
    ));
}

#[test]
fn application_data_cannot_be_sent_during_the_handshake() {
    let pki = ca_signed(&[NAME], Validity::Now);
    let name = rustls_pki_types::ServerName::try_from(NAME)
        .unwrap()
        .to_owned();
    let mut c = tether_teaching_tls::Connection::client(
        std::sync::Arc::new(pki.client_config()),
        name,
        rustls_pki_types::UnixTime::now(),
    )
    .unwrap();
    assert!(c.is_handshaking());
    assert!(matches!(
        c.send(b"x"),
        Err(Error::NotReady {
            reason: "handshake not complete"
        })
    ));
}

#[test]
fn rfc5246_6_2_3_replayed_tampered_and_reordered_application_records_fail() {
    let fresh = || handshake_for(&CipherSuite::SUPPORTED, &CipherSuite::SUPPORTED);

    // Replayed: the same record twice.
    let mut o = fresh();
    o.client.send(b"pay 100").unwrap();
    let record = o.client.take_outgoing();
    o.server.receive(&record).unwrap();
    assert!(matches!(
        o.server.receive(&record),
        Err(Error::BadRecordMac)
    ));

    // Tampered: one ciphertext bit.
    let mut o = fresh();
    o.client.send(b"pay 100").unwrap();
    let mut record = o.client.take_outgoing();
    record[15] ^= 0x01;
    assert!(matches!(
        o.server.receive(&record),
        Err(Error::BadRecordMac)
    ));
    // The server told the client why, and the error sticks.
    assert!(matches!(
        o.client.receive(&o.server.take_outgoing()),
        Err(Error::AlertReceived(AlertDescription::BAD_RECORD_MAC))
    ));
    assert!(matches!(o.server.receive(b""), Err(Error::BadRecordMac)));

    // Reordered: the second record first.
    let mut o = fresh();
    o.client.send(b"first").unwrap();
    let _held_back = o.client.take_outgoing();
    o.client.send(b"second").unwrap();
    let second = o.client.take_outgoing();
    assert!(matches!(
        o.server.receive(&second),
        Err(Error::BadRecordMac)
    ));
}
