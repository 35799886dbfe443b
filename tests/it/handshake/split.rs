//! Split-invariance: TCP may deliver a handshake in any pieces (拆包) and glue the first frames
//! to it (粘包); the parsed result must not depend on where the cuts fall.

use bytes::BytesMut;
use http::HeaderMap;
use proptest::prelude::*;
use tether_handshake::{
    Accept, ClientHandshake, ClientRequest, Config, Error, Incoming, ServerHandshake,
};

use super::support::{at, cuts, pieces, valid_request, valid_response};

/// Feeds `chunks` to a fresh server handshake until it answers, and returns the answer with
/// the chunks it was not given: on a socket those would still be waiting to be read.
fn serve(chunks: &[&[u8]]) -> Result<Option<(Incoming, Vec<u8>)>, Error> {
    let mut handshake = ServerHandshake::new(&Config::default());
    for (i, chunk) in chunks.iter().enumerate() {
        if let Some(incoming) = handshake.receive(chunk)? {
            return Ok(Some((incoming, chunks[i + 1..].concat())));
        }
    }
    Ok(None)
}

/// What a server parse yields, in a comparable form.
#[derive(Debug, PartialEq)]
struct Parsed {
    method: String,
    uri: String,
    headers: Vec<(String, Vec<u8>)>,
    subprotocols: Vec<String>,
    /// The leftover followed by the chunks not yet read.
    after_head: Vec<u8>,
}

fn summary((incoming, unread): (Incoming, Vec<u8>)) -> Parsed {
    let Incoming::Upgrade(upgrade) = incoming else {
        panic!("a valid websocket request came back as plain http");
    };
    let request = upgrade.request();
    let (method, uri) = (request.method().to_string(), request.uri().to_string());
    let headers = fields(request.headers());
    let subprotocols = upgrade.subprotocols().to_vec();
    let outcome = upgrade
        .accept(&Accept::new(), &mut BytesMut::new())
        .expect("accepting with nothing selected is valid");
    let mut after_head = outcome.leftover.to_vec();
    after_head.extend_from_slice(&unread);
    Parsed {
        method,
        uri,
        headers,
        subprotocols,
        after_head,
    }
}

fn fields(headers: &HeaderMap) -> Vec<(String, Vec<u8>)> {
    headers
        .iter()
        .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
        .collect()
}

proptest! {
    #[test]
    fn rfc6455_4_2_1_request_split_anywhere_parses_the_same(
        generated in valid_request(),
        leftover in prop::collection::vec(any::<u8>(), 0..64),
        points in cuts(),
    ) {
        let mut wire = generated.head.clone();
        wire.extend_from_slice(&leftover);
        let whole = summary(serve(&[&wire]).unwrap().expect("a complete request"));
        prop_assert_eq!(&whole.method, "GET");
        prop_assert_eq!(&whole.uri, &generated.target);
        prop_assert_eq!(&whole.subprotocols, &generated.subprotocols);
        prop_assert_eq!(&whole.after_head, &leftover);

        let split = serve(&pieces(&wire, &at(&points, wire.len()))).unwrap();
        prop_assert_eq!(summary(split.expect("a complete request")), whole);
    }

    #[test]
    fn rfc6455_4_1_response_split_anywhere_parses_the_same(
        generated in valid_response(),
        leftover in prop::collection::vec(any::<u8>(), 0..64),
        points in cuts(),
    ) {
        let mut wire = generated.head.clone();
        wire.extend_from_slice(&leftover);
        let points = at(&points, wire.len());

        let mut request = ClientRequest::new("ws://example.com/".parse().unwrap()).unwrap();
        for name in &generated.offered {
            request.subprotocol(name.clone());
        }
        let mut outcomes = Vec::new();
        for chunks in [vec![&wire[..]], pieces(&wire, &points)] {
            let mut handshake = ClientHandshake::start(
                &request, &generated.key, &Config::default(), &mut BytesMut::new(),
            ).unwrap();
            let mut outcome = None;
            for (i, chunk) in chunks.iter().enumerate() {
                if let Some(mut done) = handshake.receive(chunk).unwrap() {
                    // Unread chunks would still be waiting on the socket: after the leftover.
                    done.leftover.extend_from_slice(&chunks[i + 1..].concat());
                    outcome = Some(done);
                    break;
                }
            }
            let outcome = outcome.expect("a complete response");
            let headers = fields(outcome.response.headers());
            outcomes.push((outcome.subprotocol, headers, outcome.leftover.to_vec()));
        }
        prop_assert_eq!(&outcomes[0], &outcomes[1], "cut at {:?}", points);
        prop_assert_eq!(&outcomes[0].0, &generated.subprotocol);
        prop_assert_eq!(&outcomes[0].2, &leftover);
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_server(
        chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..200), 1..6),
    ) {
        let mut handshake = ServerHandshake::new(&Config::default());
        for chunk in &chunks {
            match handshake.receive(chunk) {
                Ok(None) => {}
                Ok(Some(_)) => break,
                Err(err) => {
                    // Every server-side failure knows what to answer, or is not an answer.
                    prop_assert!(err.status().is_some() || matches!(err, Error::Finished));
                    break;
                }
            }
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_client(
        chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..200), 1..6),
    ) {
        let request = ClientRequest::new("ws://example.com/".parse().unwrap()).unwrap();
        let key = tether_handshake::Key::from_bytes([9; 16]);
        let mut handshake =
            ClientHandshake::start(&request, &key, &Config::default(), &mut BytesMut::new()).unwrap();
        for chunk in &chunks {
            if !matches!(handshake.receive(chunk), Ok(None)) {
                break;
            }
        }
        let _ = handshake.receive_eof();
    }
}
