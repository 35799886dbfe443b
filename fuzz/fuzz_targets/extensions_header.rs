//! The `Sec-WebSocket-Extensions` header (RFC 6455 §9.1): the public parser
//! `tether_handshake::parse_extensions`, the server reading it in a request, and the round trip
//! offer → accept → client. The input is the header value a client sends (a CR LF in it
//! starts another header line).
//!
//! Checked besides "no panic": a parsed list holds at most `MAX_EXTENSIONS` extensions of at
//! most `MAX_EXTENSION_PARAMS` parameters, with token names and values; an error points inside
//! the value; the canonical form (`Display`, joined with `, `) parses back to the same list;
//! the server reads exactly what the parser reads; a client offering those extensions sends a
//! request the server reads back the same; and that client accepts the server's 101 selecting
//! all of them and reports the same extensions.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use tether_handshake::{
    parse_extensions, Accept, BadExtension, ClientHandshake, ClientRequest, Config, Extension,
    Incoming, Key, ServerHandshake, MAX_EXTENSIONS, MAX_EXTENSION_PARAMS,
};

/// RFC 6455 §1.3's key, in the request below.
const KEY: &[u8; 16] = b"the sample nonce";

fuzz_target!(|value: &[u8]| {
    let parsed = std::str::from_utf8(value).ok().map(check_parse);
    let mut request = b"GET /chat HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n\
        Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
        Sec-WebSocket-Version: 13\r\nSec-WebSocket-Extensions: "
        .to_vec();
    request.extend_from_slice(value);
    request.extend_from_slice(b"\r\n\r\n");
    let read = server_reads(&request);
    // A value on one line is the whole header: the server reads what the parser reads (a
    // value the parser refuses is answered 400, or is not even a header value).
    if !value.contains(&b'\r') && !value.contains(&b'\n') {
        match (&read, &parsed) {
            (Some(read), Some(Some(parsed))) => assert_eq!(read, parsed),
            (Some(read), _) => panic!("the server read {read:?} from a value the parser refuses"),
            (None, _) => {}
        }
    }
    let Some(offered) = read else {
        return;
    };
    round_trip(&offered);
});

/// Parses `value` and checks the list; `None` if it is refused.
fn check_parse(value: &str) -> Option<Vec<Extension>> {
    let list = match parse_extensions(value) {
        Ok(list) => list,
        Err(err) => {
            match err {
                BadExtension::ExpectedToken { at }
                | BadExtension::Unexpected { at }
                | BadExtension::BadQuotedString { at }
                | BadExtension::ValueNotToken { at } => {
                    assert!(at <= value.len(), "{err:?} in {} bytes", value.len());
                }
                BadExtension::TooManyExtensions { limit } => assert_eq!(limit, MAX_EXTENSIONS),
                BadExtension::TooManyParams { limit } => assert_eq!(limit, MAX_EXTENSION_PARAMS),
                _ => {}
            }
            return None;
        }
    };
    assert!(list.len() <= MAX_EXTENSIONS, "{} extensions", list.len());
    for extension in &list {
        assert!(is_token(extension.name()), "{extension:?}");
        assert!(extension.params().len() <= MAX_EXTENSION_PARAMS);
        for param in extension.params() {
            assert!(is_token(param.name()), "{param:?}");
            assert!(param.value().is_none_or(is_token), "{param:?}");
        }
    }
    let canonical = canonical(&list);
    assert_eq!(
        parse_extensions(&canonical).as_ref(),
        Ok(&list),
        "{canonical:?} reads back differently"
    );
    Some(list)
}

/// RFC 7230 §3.2.6 token: one or more tchar.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn canonical(list: &[Extension]) -> String {
    list.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Our own client offers exactly `offered`; the server reads them back, selects them all, and
/// the client agrees.
fn round_trip(offered: &[Extension]) {
    let mut client_request = ClientRequest::new("ws://example.com/chat".parse().unwrap()).unwrap();
    for extension in offered {
        client_request.extension(extension.to_string());
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

    let mut server = ServerHandshake::new(&Config::default());
    let Ok(Some(Incoming::Upgrade(upgrade))) = server.receive(&wire) else {
        panic!("our own request is an upgrade");
    };
    let mut accept = Accept::new();
    for extension in offered {
        accept = accept.with_extension(extension.to_string());
    }
    let mut answer = BytesMut::new();
    upgrade
        .accept(&accept, &mut answer)
        .expect("selecting what was offered");
    let outcome = client
        .receive(&answer)
        .expect("the client accepts what it offered")
        .expect("a complete response");
    let expected: Vec<String> = offered.iter().map(ToString::to_string).collect();
    assert_eq!(outcome.extensions, expected);
}

/// The extensions the server reads from `request`, or `None` if it is not an upgrade.
fn server_reads(request: &[u8]) -> Option<Vec<Extension>> {
    let mut server = ServerHandshake::new(&Config::default());
    match server.receive(request) {
        Ok(Some(Incoming::Upgrade(upgrade))) => Some(upgrade.extensions().to_vec()),
        _ => None,
    }
}
