//! CVE-2023-43669: tungstenite re-parsed the whole buffered head after every read, so one long
//! header sent in small pieces cost minutes of CPU. Here the head is scanned once per byte and
//! parsed once.

use std::time::{Duration, Instant};

use tether_handshake::{Config, Error, Incoming, ServerHandshake};

/// 256 KiB of one header, a byte at a time. Re-parsing from the start on every read would
/// touch ~34 billion bytes; scanning only the new bytes touches ~1 million. The bound leaves
/// room for a slow, shared machine while failing any quadratic reader by orders of magnitude.
#[test]
fn trickled_huge_header_costs_linear_work() {
    const HEADER: usize = 256 * 1024;
    let mut config = Config::default();
    config.set_max_header_bytes(HEADER + 1024);
    let mut handshake = ServerHandshake::new(&config);
    let started = Instant::now();
    for &byte in b"GET / HTTP/1.1\r\nHost: a\r\nX-Long: " {
        assert!(handshake.receive(&[byte]).unwrap().is_none());
    }
    for _ in 0..HEADER {
        assert!(handshake.receive(b"a").unwrap().is_none());
    }
    let incoming = handshake.receive(b"\r\n\r\n").unwrap();
    assert!(matches!(incoming, Some(Incoming::Plain(_))));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
}

/// Past the limit, reading stops at once, however the bytes arrive: nothing keeps growing.
#[test]
fn trickled_header_past_the_limit_is_refused_at_the_limit() {
    let mut config = Config::default();
    config.set_max_header_bytes(1000);
    let mut handshake = ServerHandshake::new(&config);
    let mut fed = 0;
    let err = loop {
        match handshake.receive(b"a") {
            Ok(None) => fed += 1,
            Ok(Some(_)) => panic!("no head was sent"),
            Err(err) => break err,
        }
    };
    assert_eq!(
        fed, 999,
        "the 1000th byte without a blank line reaches the limit"
    );
    assert!(matches!(err, Error::HeadTooLarge { limit: 1000 }));
}
