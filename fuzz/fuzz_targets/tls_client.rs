//! The teaching-TLS `Connection` as a client, fed a server's bytes in reads the input chooses.
//!
//! Flags: bits 0-1 the suites offered (all, RSA, ECDHE-AES, ECDHE-ChaCha), bit 2 accept any
//! certificate. Checks: see `tether_fuzz::tls::drive`; the client sends its ClientHello and
//! at most one flight and one alert after it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tether_fuzz::{tls, Input};

/// ClientHello, ClientKeyExchange (RSA-2048 at most), ChangeCipherSpec, Finished and an
/// alert, with room to spare.
const MAX_SENT: usize = 2048;

fuzz_target!(|raw: &[u8]| {
    let Some(input) = Input::parse(raw) else {
        return;
    };
    let mut client = tls::client(input.flags);
    tls::drive(&mut client, input.chunks(), MAX_SENT);
});
