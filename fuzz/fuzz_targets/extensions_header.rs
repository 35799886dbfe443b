//! The `Sec-WebSocket-Extensions` header as both ends read it, round trip: the input is the
//! header value a client sends (a CR LF in it starts another header line).
//!
//! Today the handshake has no public parser for this header: `ServerHandshake` splits it on
//! commas into `UpgradeRequest::extensions`, and `ClientHandshake` the same way into
//! `ClientOutcome::extensions`. This target drives those; switch it to the dedicated parser
//! once the handshake exports one.
//!
//! Checked besides "no panic": every element is non-empty, trimmed and holds no comma; the
//! server can accept every offered element; a client offering exactly those elements sends a
//! request the server reads back the same; and that client accepts the server's 101 and
//! reports the same extensions.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use tether_handshake::{
    Accept, ClientHandshake, ClientRequest, Config, Incoming, Key, ServerHandshake,
};

/// RFC 6455 §1.3's key, in the request below.
const KEY: &[u8; 16] = b"the sample nonce";

fuzz_target!(|value: &[u8]| {
    let mut request = b"GET /chat HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n\
        Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
        Sec-WebSocket-Version: 13\r\nSec-WebSocket-Extensions: "
        .to_vec();
    request.extend_from_slice(value);
    request.extend_from_slice(b"\r\n\r\n");
    let Some(offered) = server_reads(&request) else {
        return;
    };
    for element in &offered {
        assert!(
            !element.is_empty() && element.trim() == element && !element.contains(','),
            "{element:?}"
        );
    }

    // Our own client offering exactly these elements.
    let mut client_request = ClientRequest::new("ws://example.com/chat".parse().unwrap()).unwrap();
    for element in &offered {
        client_request.extension(element.clone());
    }
    let mut wire = BytesMut::new();
    let mut client = ClientHandshake::start(
        &client_request,
        &Key::from_bytes(*KEY),
        &Config::default(),
        &mut wire,
    )
    .expect("a client can offer what a server parsed");
    let reread = server_reads(&wire).expect("our own request is an upgrade");
    assert_eq!(reread, offered, "the offer changed on the way");

    // The server selects everything offered; the client must agree.
    let mut server = ServerHandshake::new(&Config::default());
    let Ok(Some(Incoming::Upgrade(upgrade))) = server.receive(&wire) else {
        panic!("our own request is an upgrade");
    };
    let mut accept = Accept::new();
    for element in &offered {
        accept = accept.with_extension(element.clone());
    }
    let mut answer = BytesMut::new();
    upgrade
        .accept(&accept, &mut answer)
        .expect("selecting what was offered");
    let outcome = client
        .receive(&answer)
        .expect("the client accepts what it offered")
        .expect("a complete response");
    assert_eq!(outcome.extensions, offered);
});

/// The extensions the server reads from `request`, or `None` if it is not an upgrade.
fn server_reads(request: &[u8]) -> Option<Vec<String>> {
    let mut server = ServerHandshake::new(&Config::default());
    match server.receive(request) {
        Ok(Some(Incoming::Upgrade(upgrade))) => Some(upgrade.extensions().to_vec()),
        _ => None,
    }
}
