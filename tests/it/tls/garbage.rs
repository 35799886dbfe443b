//! No panic on peer input: arbitrary bytes, and arbitrary damage to real flights, only ever
//! produce errors.

use std::sync::{Arc, OnceLock};

use proptest::prelude::*;
use rustls_pki_types::ServerName;
use tether_teaching_tls::{ClientConfig, Connection, ServerConfig};

use super::pair::{self, Way};
use super::pki::{ca_signed, Validity};

const NAME: &str = "tls.tether.test";

fn configs() -> &'static (ClientConfig, ServerConfig) {
    static CONFIGS: OnceLock<(ClientConfig, ServerConfig)> = OnceLock::new();
    CONFIGS.get_or_init(|| {
        let pki = ca_signed(&[NAME], Validity::Now);
        (pki.client_config(), pki.server_config())
    })
}

/// A record header of a plausible type and version followed by `body`, so the bytes get
/// past the first checks and into the parsers.
fn plausible_records(parts: Vec<(u8, Vec<u8>)>) -> Vec<u8> {
    let mut out = Vec::new();
    for (t, body) in parts {
        out.extend_from_slice(&[0x14 + t % 4, 0x03, 0x03]);
        out.extend_from_slice(&(body.len() as u16).to_be_bytes());
        out.extend_from_slice(&body);
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn server_survives_arbitrary_bytes(
        raw in proptest::collection::vec(any::<u8>(), 0..600),
        parts in proptest::collection::vec((any::<u8>(), proptest::collection::vec(any::<u8>(), 0..300)), 0..4),
    ) {
        let mut s = Connection::server(Arc::new(configs().1.clone()));
        let _ = s.receive(&raw);
        let mut s = Connection::server(Arc::new(configs().1.clone()));
        let _ = s.receive(&plausible_records(parts));
        let _ = s.take_outgoing();
    }

    #[test]
    fn client_survives_arbitrary_server_bytes(
        parts in proptest::collection::vec((any::<u8>(), proptest::collection::vec(any::<u8>(), 0..300)), 0..4),
    ) {
        let name = ServerName::try_from(NAME).unwrap().to_owned();
        let mut c = Connection::client(Arc::new(configs().0.clone()), name, rustls_pki_types::UnixTime::now()).unwrap();
        let _ = c.take_outgoing();
        let _ = c.receive(&plausible_records(parts));
        prop_assert!(!c.is_established());
    }

    /// Several bytes changed and the flight cut short, in any flight of a real handshake:
/// the connections return errors (or wait for more bytes); they never panic.
    #[test]
    fn both_sides_survive_damaged_real_flights(
        target_flight in 0usize..4,
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let (c, s) = configs().clone();
        let mut flight_no = 0;
        // The property is the absence of panics: a panic fails the case.
        let _ = pair::run(c, s, NAME, |_way: Way, flight| {
            if flight_no == target_flight {
                for (at, value) in &edits {
                    let i = at.index(flight.len());
                    flight[i] = *value;
                }
                let keep = cut.index(flight.len() + 1).max(1);
                flight.truncate(keep);
            }
            flight_no += 1;
        });
    }
}
