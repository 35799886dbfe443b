//! The server side of the opening handshake (`ServerHandshake`) reading a client's request in
//! reads the input chooses.
//!
//! Flags: bits 0-1 pick the limits (`tether_fuzz::handshake::config`).
//!
//! Checked besides "no panic": every error has an HTTP status and a rejection that encodes;
//! after a result or an error the handshake is finished; an upgrade can be accepted (and
//! with the first subprotocol and every extension offered) with a 101 whose accept key is the
//! RFC 6455 §4.2.2 hash; the head plus the leftover is what was read; and one read or many give
//! the same request.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use tether_fuzz::handshake::config;
use tether_fuzz::Input;
use tether_handshake::{
    accept_key, Accept, Config, Error, Incoming, ServerHandshake, MAX_EXTENSIONS,
    MAX_EXTENSION_PARAMS,
};

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
    // A result comes at the read that completes the head: what followed it in that read is
    // the leftover, the rest was never fed.
    assert_eq!(chunked.head_len, whole.head_len);
    if let Some(head) = whole.head_len {
        assert!(
            head <= config.max_header_bytes(),
            "a head of {head} bytes passed"
        );
    }
    assert!(whole.leftover.starts_with(&chunked.leftover));
});

struct Outcome {
    /// The request or the error, as text (neither type compares).
    result: Option<String>,
    leftover: Vec<u8>,
    /// Bytes of the head, for a result.
    head_len: Option<usize>,
}

fn run<'a>(config: &Config, reads: impl Iterator<Item = &'a [u8]>) -> Outcome {
    let mut handshake = ServerHandshake::new(config);
    let mut fed = 0usize;
    for read in reads {
        fed += read.len();
        match handshake.receive(read) {
            Ok(None) => continue,
            Ok(Some(incoming)) => {
                assert_finished(&mut handshake);
                return upgrade_or_plain(incoming, fed);
            }
            Err(err) => {
                check_error(&err);
                assert_finished(&mut handshake);
                return Outcome {
                    result: Some(format!("error {err:?}")),
                    leftover: Vec::new(),
                    head_len: None,
                };
            }
        }
    }
    Outcome {
        result: None,
        leftover: Vec::new(),
        head_len: None,
    }
}

fn assert_finished(handshake: &mut ServerHandshake) {
    assert!(matches!(
        handshake.receive(b"\r\n\r\n"),
        Err(Error::Finished)
    ));
}

fn check_error(err: &Error) {
    assert!(err.status().is_some(), "no status for {err:?}");
    let rejection = err.rejection().expect("a rejection");
    let mut answer = BytesMut::new();
    rejection.encode(&mut answer);
    assert!(answer.starts_with(b"HTTP/1.1 "), "{answer:?}");
}

fn upgrade_or_plain(incoming: Incoming, fed: usize) -> Outcome {
    match incoming {
        Incoming::Plain(plain) => Outcome {
            result: Some(format!("plain {:?}", plain.request)),
            head_len: Some(fed - plain.leftover.len()),
            leftover: plain.leftover.to_vec(),
        },
        Incoming::Upgrade(upgrade) => {
            let text = format!(
                "upgrade {:?} {:?} {:?}",
                upgrade.request(),
                upgrade.subprotocols(),
                upgrade.extensions()
            );
            for element in upgrade.subprotocols() {
                assert!(!element.is_empty() && element.trim() == element && !element.contains(','));
            }
            assert!(upgrade.extensions().len() <= MAX_EXTENSIONS);
            for extension in upgrade.extensions() {
                assert!(!extension.name().is_empty());
                assert!(extension.params().len() <= MAX_EXTENSION_PARAMS);
            }
            let key = upgrade.request().headers()["sec-websocket-key"].clone();
            let mut accept = Accept::new();
            if let Some(first) = upgrade.subprotocols().first() {
                accept = accept.with_subprotocol(first.clone());
            }
            for extension in upgrade.extensions() {
                accept = accept.with_extension(extension.to_string());
            }
            let mut answer = BytesMut::new();
            let outcome = upgrade
                .accept(&accept, &mut answer)
                .expect("accepting what was offered");
            let expected = format!(
                "sec-websocket-accept: {}\r\n",
                accept_key(key.as_bytes().trim_ascii())
            );
            let answer = String::from_utf8(answer.to_vec()).expect("an ASCII answer");
            assert!(answer.starts_with("HTTP/1.1 101 Switching Protocols\r\n"));
            assert!(answer.contains(&expected), "{answer}");
            assert!(answer.ends_with("\r\n\r\n"));
            Outcome {
                result: Some(text),
                head_len: Some(fed - outcome.leftover.len()),
                leftover: outcome.leftover.to_vec(),
            }
        }
    }
}
