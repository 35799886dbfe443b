//! Step 3c-5: any change to any handshake byte in flight makes the handshake fail.

use std::sync::OnceLock;

use proptest::prelude::*;
use tether_teaching_tls::{CipherSuite, ClientConfig, Error, ServerConfig};

use super::pair::{self, Way};
use super::pki::{ca_signed, Validity};

const NAME: &str = "tls.tether.test";

fn configs(suite: CipherSuite) -> (ClientConfig, ServerConfig) {
    static PKI: OnceLock<(ClientConfig, ServerConfig)> = OnceLock::new();
    let (c, s) = PKI.get_or_init(|| {
        let pki = ca_signed(&[NAME], Validity::Now);
        (pki.client_config(), pki.server_config())
    });
    let mut c = c.clone();
    c.set_cipher_suites(vec![suite]);
    (c, s.clone())
}

/// Offsets of every byte inside a handshake record's
/// fragment, in the order the flights travel.
fn handshake_positions(flight: &[u8]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 5 <= flight.len() {
        let len = usize::from(u16::from_be_bytes([flight[at + 3], flight[at + 4]]));
        if flight[at] == 0x16 {
            out.extend(at + 5..at + 5 + len);
        }
        at += 5 + len;
    }
    out
}

/// How many handshake bytes travel in a clean handshake with `suite` (the sizes do not
/// depend on the random values).
fn handshake_byte_count(suite: CipherSuite) -> usize {
    let (c, s) = configs(suite);
    let mut total = 0;
    let o = pair::run(c, s, NAME, |_, flight| {
        total += handshake_positions(flight).len()
    });
    assert!(o.client.is_established());
    total
}

fn run_flipped(suite: CipherSuite, target: usize, xor: u8) -> pair::Outcome {
    let (c, s) = configs(suite);
    let mut seen = 0;
    pair::run(c, s, NAME, |_, flight| {
        for pos in handshake_positions(flight) {
            if seen == target {
                flight[pos] ^= xor;
            }
            seen += 1;
        }
    })
}

fn counts() -> &'static [usize; CipherSuite::SUPPORTED.len()] {
    static COUNTS: OnceLock<[usize; CipherSuite::SUPPORTED.len()]> = OnceLock::new();
    COUNTS.get_or_init(|| {
        // Indexed like CipherSuite::SUPPORTED.
        CipherSuite::SUPPORTED.map(handshake_byte_count)
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// RFC 5246 section 7.4.9: the Finished hash covers every handshake byte, so a single
    /// flipped byte anywhere (hello, certificate, key exchange, Finished) stops the client
    /// from ever completing.
    #[test]
    fn rfc5246_7_4_9_any_flipped_handshake_byte_fails_the_handshake(
        which in 0..CipherSuite::SUPPORTED.len(),
        fraction in 0.0f64..1.0,
        xor in 1u8..=255,
    ) {
        let suite = CipherSuite::SUPPORTED[which];
        let target = (fraction * counts()[which] as f64) as usize;
        let o = run_flipped(suite, target, xor);
        prop_assert!(!o.client.is_established(), "{suite}: byte {target} ^ {xor:#04x} went unnoticed");
    }
}

/// Every byte of the first and last handshake records too, exhaustively for the boundaries
/// a random sample might miss.
#[test]
fn rfc5246_7_4_9_first_and_last_handshake_bytes_are_covered() {
    for (which, suite) in CipherSuite::SUPPORTED.into_iter().enumerate() {
        let n = counts()[which];
        for target in [0, 1, 2, 3, 4, 5, n - 12, n - 2, n - 1] {
            let o = run_flipped(suite, target, 0x80);
            assert!(!o.client.is_established(), "{suite}: byte {target}");
        }
    }
}

/// The man in the middle removes the forward-secret suites from the ClientHello, hoping
/// to force the suite whose sessions a stolen key opens later. The server complies, but the
/// client's Finished hashes the ClientHello it really sent: the server finds the mismatch
/// (RFC 5246 section 7.4.9).
#[test]
fn rfc5246_7_4_9_downgrade_by_removing_the_strongest_suite_is_caught_by_finished() {
    let (mut client, server) = configs(CipherSuite::ECDHE_RSA_WITH_AES_128_GCM_SHA256);
    client.set_cipher_suites(CipherSuite::SUPPORTED.to_vec());
    let mut downgraded = false;
    let o = pair::run(client, server, NAME, |way, flight| {
        if way == Way::ToServer && flight[5] == 0x01 && !downgraded {
            for suite in CipherSuite::SUPPORTED
                .into_iter()
                .filter(|s| s.is_ephemeral())
            {
                assert!(strip_suite(flight, suite));
            }
            downgraded = true;
        }
    });
    assert!(downgraded);
    assert_eq!(
        o.server.cipher_suite(),
        Some(CipherSuite::RSA_WITH_AES_128_GCM_SHA256)
    );
    assert!(
        matches!(o.server_error, Some(Error::FinishedMismatch)),
        "{:?}",
        o.server_error
    );
    assert!(!o.client.is_established());
}

/// Removes `suite` from a one-record ClientHello flight, fixing the three lengths.
fn strip_suite(flight: &mut Vec<u8>, suite: CipherSuite) -> bool {
    // record(5) | type(1) len(3) | version(2) random(32) | session_id<1> | suites<2>
    let sid_len = usize::from(flight[5 + 4 + 34]);
    let suites_at = 5 + 4 + 34 + 1 + sid_len;
    let n = usize::from(u16::from_be_bytes([
        flight[suites_at],
        flight[suites_at + 1],
    ]));
    let start = suites_at + 2;
    let Some(i) = (start..start + n)
        .step_by(2)
        .find(|&i| u16::from_be_bytes([flight[i], flight[i + 1]]) == suite.0)
    else {
        return false;
    };
    flight.drain(i..i + 2);
    let put16 = |f: &mut Vec<u8>, at: usize, v: usize| {
        f[at..at + 2].copy_from_slice(&(v as u16).to_be_bytes())
    };
    put16(flight, suites_at, n - 2);
    let record_len = usize::from(u16::from_be_bytes([flight[3], flight[4]])) - 2;
    put16(flight, 3, record_len);
    let hs_len = record_len - 4;
    flight[6..9].copy_from_slice(&(hs_len as u32).to_be_bytes()[1..]);
    true
}
