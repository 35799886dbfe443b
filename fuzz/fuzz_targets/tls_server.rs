//! The teaching-TLS `Connection` as a server, fed a client's bytes in reads the input chooses.
//!
//! Flags: bits 0-1 the suites the server accepts (all, RSA, ECDHE-AES, ECDHE-ChaCha). Checks:
//! see `tether_fuzz::tls::drive`; the server sends at most its one flight and one alert.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tether_fuzz::{tls, Input};

fuzz_target!(|raw: &[u8]| {
    let Some(input) = Input::parse(raw) else {
        return;
    };
    // ServerHello, the certificate, ServerKeyExchange (an RSA-2048 signature), ServerHelloDone
    // and an alert, with room to spare.
    let max_sent = tls::CERT_DER.len() + 1024;
    let mut server = tls::server(input.flags);
    tls::drive(&mut server, input.chunks(), max_sent);
});
