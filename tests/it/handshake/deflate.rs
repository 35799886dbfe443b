//! permessage-deflate negotiation in the opening handshake (RFC 7692 §5, §7): the client's
//! offer, the server's choice and answer, and the client's check of that answer.

use bytes::BytesMut;
use tether_handshake::{
    Accept, BadResponse, ClientHandshake, ClientOutcome, ClientRequest, Config, DeflateConfig,
    Error, Incoming, Key, NegotiationError, ServerHandshake, UpgradeRequest,
};

const KEY: [u8; 16] = *b"the sample nonce";
/// The accept value for `KEY` (RFC 6455 §1.3).
const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

fn request(deflate: Option<DeflateConfig>) -> ClientRequest {
    let mut request: ClientRequest = "ws://localhost/".parse().unwrap();
    request.set_deflate(deflate);
    request
}

/// Starts a client handshake; the request bytes and the handshake waiting for its answer.
fn start(request: &ClientRequest) -> (BytesMut, ClientHandshake) {
    let mut wire = BytesMut::new();
    let handshake = ClientHandshake::start(
        request,
        &Key::from_bytes(KEY),
        &Config::default(),
        &mut wire,
    )
    .unwrap();
    (wire, handshake)
}

fn upgrade(wire: &[u8]) -> UpgradeRequest {
    match ServerHandshake::new(&Config::default()).receive(wire) {
        Ok(Some(Incoming::Upgrade(request))) => request,
        other => panic!("not an upgrade: {other:?}"),
    }
}

/// The client's outcome for a 101 whose `Sec-WebSocket-Extensions` is `extensions`.
fn answer(deflate: Option<DeflateConfig>, extensions: &str) -> Result<ClientOutcome, Error> {
    let (_, mut client) = start(&request(deflate));
    let head = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {ACCEPT}\r\nSec-WebSocket-Extensions: {extensions}\r\n\r\n"
    );
    client.receive(head.as_bytes()).map(Option::unwrap)
}

#[test]
fn rfc7692_5_client_offers_and_both_ends_agree() {
    let mut client_config = DeflateConfig::default();
    client_config.set_client_no_context_takeover(true);
    let (wire, mut client) = start(&request(Some(client_config)));
    let text = std::str::from_utf8(&wire).unwrap();
    assert!(
        text.contains(
            "sec-websocket-extensions: permessage-deflate; client_max_window_bits; \
             client_no_context_takeover\r\n"
        ),
        "{text}"
    );
    let server_request = upgrade(&wire);
    let accepted = server_request
        .deflate_offer(&DeflateConfig::default())
        .expect("the offer is acceptable");
    let mut response = BytesMut::new();
    let server = server_request
        .accept(&Accept::new().with_deflate(&accepted), &mut response)
        .unwrap();
    assert!(std::str::from_utf8(&response)
        .unwrap()
        .contains("sec-websocket-extensions: permessage-deflate; client_no_context_takeover\r\n"));
    let client = client.receive(&response).unwrap().unwrap();
    assert_eq!(client.deflate, server.deflate);
    assert!(client.deflate.unwrap().client_no_context_takeover());
}

#[test]
fn rfc7692_5_no_offer_no_deflate() {
    let (wire, _) = start(&request(None));
    assert!(!std::str::from_utf8(&wire)
        .unwrap()
        .contains("sec-websocket-extensions"));
    assert!(upgrade(&wire)
        .deflate_offer(&DeflateConfig::default())
        .is_none());
}

#[test]
fn rfc7692_7_1_server_skips_malformed_offers_and_takes_the_next() {
    let wire = b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
        Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=99, \
        x-other, permessage-deflate; server_no_context_takeover\r\n\r\n";
    let accepted = upgrade(wire)
        .deflate_offer(&DeflateConfig::default())
        .unwrap();
    assert_eq!(
        accepted.response(),
        "permessage-deflate; server_no_context_takeover"
    );
}

#[test]
fn rfc7692_7_server_declining_leaves_deflate_off() {
    let outcome = answer(Some(DeflateConfig::default()), "").unwrap();
    assert_eq!(outcome.deflate, None);
}

#[test]
fn rfc7692_7_bad_answers_fail_the_handshake_precisely() {
    let cases = [
        (
            "permessage-deflate; server_max_window_bits=16",
            NegotiationError::BadValue("server_max_window_bits"),
        ),
        (
            "permessage-deflate; x_bogus",
            NegotiationError::UnknownParameter("x_bogus".into()),
        ),
        (
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            NegotiationError::DuplicateParameter("server_no_context_takeover"),
        ),
        (
            "permessage-deflate, permessage-deflate",
            NegotiationError::SeveralResponses,
        ),
    ];
    for (extensions, expected) in cases {
        match answer(Some(DeflateConfig::default()), extensions) {
            Err(Error::Deflate(err)) => assert_eq!(err, expected, "{extensions}"),
            other => panic!("{extensions}: {other:?}"),
        }
    }
}

#[test]
fn rfc6455_4_1_deflate_answer_without_offer_fails() {
    assert!(matches!(
        answer(None, "permessage-deflate"),
        Err(Error::BadResponse(BadResponse::Extension))
    ));
}
