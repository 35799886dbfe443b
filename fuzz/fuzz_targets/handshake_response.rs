//! The client side of the opening handshake (`ClientHandshake`) reading a server's response
//! in reads the input chooses, then the end of the connection.
//!
//! The request offers subprotocols `chat` and `superchat` and extensions
//! `permessage-deflate; client_max_window_bits` and `x-test`, with the key of RFC 6455 §1.3
//! ("the sample nonce"), so the RFC's response is a valid seed. Flags: bits 0-1 pick the limits
//! (`tether_fuzz::handshake::config`).
//!
//! Checked besides "no panic": a success is a 101 selecting only what was offered; a non-101
//! answer keeps at most the configured body prefix; after an outcome or an error the
//! handshake is finished; and one read or many give the same outcome.
#![no_main]

use bytes::BytesMut;
use http::StatusCode;
use libfuzzer_sys::fuzz_target;
use tether_fuzz::handshake::config;
use tether_fuzz::Input;
use tether_handshake::{ClientHandshake, ClientOutcome, ClientRequest, Config, Error, Key};

const SUBPROTOCOLS: [&str; 2] = ["chat", "superchat"];
const EXTENSIONS: [&str; 2] = ["permessage-deflate; client_max_window_bits", "x-test"];

fuzz_target!(|raw: &[u8]| {
    let Some(input) = Input::parse(raw) else {
        return;
    };
    let config = config(input.flags);
    let chunked = run(&config, input.chunks());
    let whole = run(&config, std::iter::once(input.data));
    assert_eq!(
        chunked.result, whole.result,
        "the read boundaries changed the outcome"
    );
    assert!(whole.leftover.starts_with(&chunked.leftover));
});

struct Outcome {
    result: String,
    leftover: Vec<u8>,
}

fn run<'a>(config: &Config, reads: impl Iterator<Item = &'a [u8]>) -> Outcome {
    let mut request = ClientRequest::new("ws://example.com/chat".parse().unwrap()).unwrap();
    for name in SUBPROTOCOLS {
        request.subprotocol(name);
    }
    for offer in EXTENSIONS {
        request.extension(offer);
    }
    let key = Key::from_bytes(*b"the sample nonce");
    let mut sent = BytesMut::new();
    let mut handshake = ClientHandshake::start(&request, &key, config, &mut sent).unwrap();
    for read in reads {
        match handshake.receive(read) {
            Ok(None) => continue,
            Ok(Some(outcome)) => {
                assert_finished(&mut handshake);
                return success(outcome);
            }
            Err(err) => {
                check_error(&err, config);
                assert_finished(&mut handshake);
                return failure(&err);
            }
        }
    }
    let err = handshake.receive_eof();
    check_error(&err, config);
    assert!(
        matches!(err, Error::ConnectionClosed | Error::UnexpectedStatus(_)),
        "{err:?}"
    );
    assert_finished(&mut handshake);
    failure(&err)
}

fn assert_finished(handshake: &mut ClientHandshake) {
    assert!(matches!(
        handshake.receive(b"\r\n\r\n"),
        Err(Error::Finished)
    ));
    assert!(matches!(handshake.receive_eof(), Error::Finished));
}

fn success(outcome: ClientOutcome) -> Outcome {
    assert_eq!(outcome.response.status(), StatusCode::SWITCHING_PROTOCOLS);
    if let Some(chosen) = &outcome.subprotocol {
        assert!(
            SUBPROTOCOLS.contains(&chosen.as_str()),
            "{chosen:?} was not offered"
        );
    }
    for extension in &outcome.extensions {
        let name = extension.split(';').next().unwrap_or_default().trim();
        assert!(
            EXTENSIONS.iter().any(|offer| offer
                .split(';')
                .next()
                .unwrap()
                .eq_ignore_ascii_case(name)),
            "{extension:?} was not offered"
        );
    }
    Outcome {
        result: format!(
            "101 {:?} {:?} {:?}",
            outcome.response, outcome.subprotocol, outcome.extensions
        ),
        leftover: outcome.leftover.to_vec(),
    }
}

fn check_error(err: &Error, config: &Config) {
    if let Error::UnexpectedStatus(response) = err {
        assert_ne!(response.status, StatusCode::SWITCHING_PROTOCOLS);
        assert!(response.body.len() <= config.max_body_prefix());
    }
}

fn failure(err: &Error) -> Outcome {
    Outcome {
        result: format!("error {err:?}"),
        leftover: Vec::new(),
    }
}
