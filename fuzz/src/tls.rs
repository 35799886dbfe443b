//! The teaching-TLS side of the fuzz targets: one fixed server identity, configurations
//! chosen by the input's flags, and the driver that feeds a `Connection` and checks it.
//!
//! The connection draws its randoms from the system (the default `RandomSource`, left on
//! purpose: a seeded source would let a crafted input compute our keys), so runs are not
//! bit-for-bit repeatable; the paths an input takes do not depend on them, because a peer that
//! does not know our random can never produce a valid Finished. That is also the strongest
//! check here: the handshake never completes. The clock is fixed: the client is given
//! [`VERIFICATION_TIME`] as its time.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use tether_teaching_tls::{
    CipherSuite, ClientConfig, Connection, Direction, Error, RenderOptions, ServerConfig,
    ServerKey, Step, MAX_FRAGMENT_LEN, TRANSCRIPT_ALERTS, TRANSCRIPT_MAX_BYTES,
    TRANSCRIPT_MAX_EVENTS,
};

/// The server's certificate (self-signed RSA-2048 for [`SERVER_NAME`], valid 2020 to 2099),
/// made by `fuzz/seedgen` and committed so every run uses the same identity.
pub const CERT_DER: &[u8] = include_bytes!("../fixtures/tls_cert.der");

/// The server's private key (PKCS#8 DER) matching [`CERT_DER`].
pub const KEY_DER: &[u8] = include_bytes!("../fixtures/tls_key.der");

/// The name in [`CERT_DER`].
pub const SERVER_NAME: &str = "example.test";

/// The time the client checks the certificate at: 2026-01-01, so runs do not depend on the
/// clock.
pub const VERIFICATION_TIME: Duration = Duration::from_secs(1_767_225_600);

/// Flags bits 0-1: the suites a side offers or accepts.
fn suites(flags: u8) -> Vec<CipherSuite> {
    match flags & 3 {
        1 => vec![CipherSuite::RSA_WITH_AES_128_GCM_SHA256],
        2 => vec![CipherSuite::ECDHE_RSA_WITH_AES_128_GCM_SHA256],
        3 => vec![CipherSuite::ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256],
        _ => CipherSuite::SUPPORTED.to_vec(),
    }
}

/// A server with the fixed identity; flags bits 0-1 pick its suites.
pub fn server(flags: u8) -> Connection {
    static CONFIGS: [OnceLock<Arc<ServerConfig>>; 4] = [const { OnceLock::new() }; 4];
    let config = CONFIGS[usize::from(flags & 3)].get_or_init(|| {
        let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(KEY_DER));
        let key = ServerKey::from_der(&der).expect("the fixture key loads");
        let mut config = ServerConfig::new(vec![CertificateDer::from(CERT_DER)], key)
            .expect("the fixture identity is usable");
        config.set_cipher_suites(suites(flags));
        Arc::new(config)
    });
    Connection::server(config.clone())
}

/// A client of [`SERVER_NAME`] trusting the fixed certificate; flags bits 0-1 pick its
/// suites, bit 2 accepts any certificate (so mutated chains reach the key exchange).
pub fn client(flags: u8) -> Connection {
    static CONFIGS: [OnceLock<Arc<ClientConfig>>; 8] = [const { OnceLock::new() }; 8];
    let config = CONFIGS[usize::from(flags & 7)].get_or_init(|| {
        let mut config = ClientConfig::default();
        config
            .add_root(CertificateDer::from(CERT_DER))
            .expect("the fixture certificate is a root");
        config
            .set_cipher_suites(suites(flags))
            .dangerous_accept_invalid_certificates(flags & 4 != 0);
        Arc::new(config)
    });
    let name = ServerName::try_from(SERVER_NAME).expect("a DNS name");
    let now = UnixTime::since_unix_epoch(VERIFICATION_TIME);
    Connection::client(config.clone(), name, now).expect("the client starts")
}

/// Feeds `reads` to `conn`, then the end of the stream, checking after each read: at most
/// `max_sent` bytes queued and sent in all, no handshake completed and no application data,
/// the transcript within its limits, and after an error a sticky failure that sends nothing
/// more. The end of the stream always fails: the handshake never completes.
pub fn drive<'a>(conn: &mut Connection, reads: impl Iterator<Item = &'a [u8]>, max_sent: usize) {
    let mut sent = take(conn);
    for read in reads {
        let result = conn.receive(read);
        assert!(
            sent + conn.outgoing_len() <= max_sent,
            "{sent} bytes sent and {} queued",
            conn.outgoing_len()
        );
        sent += take(conn);
        assert!(
            !conn.is_established(),
            "a handshake completed without our random"
        );
        assert_eq!(conn.plaintext_len(), 0);
        check_transcript(conn);
        if result.is_err() {
            check_failed(conn);
            return;
        }
    }
    // RFC 5246 §7.2.1: the stream ended without the handshake completing.
    match conn.receive_eof() {
        Err(Error::EofDuringHandshake { buffered }) => {
            // Complete records are processed at once: less than one record is left.
            assert!(
                buffered < RECORD_HEADER_LEN + MAX_CIPHERTEXT_LEN,
                "{buffered}"
            );
        }
        other => panic!("the end of the stream during the handshake gave {other:?}"),
    }
    check_failed(conn);
}

/// A TLS record header: type, version, length (RFC 5246 §6.2.1).
const RECORD_HEADER_LEN: usize = 5;

/// Largest protected fragment a record may carry (RFC 5246 §6.2.3: 2^14 + 2048).
const MAX_CIPHERTEXT_LEN: usize = MAX_FRAGMENT_LEN + 2048;

/// Takes what the connection queued, checking `outgoing_len` reported it.
fn take(conn: &mut Connection) -> usize {
    let queued = conn.outgoing_len();
    let taken = conn.take_outgoing().len();
    assert_eq!(queued, taken, "outgoing_len disagrees with take_outgoing");
    assert_eq!(conn.outgoing_len(), 0);
    taken
}

/// The transcript holds at most `TRANSCRIPT_MAX_EVENTS` events, `TRANSCRIPT_ALERTS` received
/// alerts and `TRANSCRIPT_MAX_BYTES` bytes, and `byte_len` counts every byte it holds.
fn check_transcript(conn: &Connection) {
    let transcript = conn.transcript();
    let events = transcript.events();
    assert!(
        events.len() <= TRANSCRIPT_MAX_EVENTS,
        "{} events",
        events.len()
    );
    let alerts = events
        .iter()
        .filter(|e| e.step == Step::Close && e.direction == Direction::Received)
        .count();
    assert!(alerts <= TRANSCRIPT_ALERTS, "{alerts} received alerts kept");
    if events.len() < TRANSCRIPT_MAX_EVENTS && alerts < TRANSCRIPT_ALERTS {
        assert_eq!(transcript.dropped(), 0, "dropped below every limit");
    }
    let held: usize = events
        .iter()
        .map(|e| {
            e.title.len() + e.bytes.len() + e.fields.iter().map(|f| f.value.len()).sum::<usize>()
        })
        .sum();
    assert_eq!(held, transcript.byte_len(), "byte_len miscounts");
    assert!(transcript.byte_len() <= TRANSCRIPT_MAX_BYTES);
}

fn check_failed(conn: &mut Connection) {
    assert!(conn.error().is_some());
    assert!(!conn.is_handshaking() && !conn.is_established());
    let error = conn.error().map(ToString::to_string);
    // A close_notify alert: nothing counts after a failure.
    assert!(conn.receive(&[21, 3, 3, 0, 2, 1, 0]).is_err());
    let again = conn.receive_eof().err().map(|e| e.to_string());
    assert_eq!(again, error, "the error is sticky");
    assert!(conn.send(b"late").is_err());
    conn.close();
    assert_eq!(conn.outgoing_len(), 0);
    assert!(!conn.has_outgoing(), "sent more after failing");
    check_transcript(conn);
    conn.transcript().render(&RenderOptions::default());
}
