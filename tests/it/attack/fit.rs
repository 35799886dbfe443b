//! Hostile peers against the axum and hyper integrations: malformed Upgrade requests get
//! Tether's statuses (the same as `Server`), header and message limits hold at and past the
//! limit, and a client that goes silent after the Upgrade is closed by the heartbeat.

use bytes::BytesMut;
use tether::heartbeat::{CloseReason, LinkState};
use tether::{ClientBuilder, CloseCode, Config, Message, Role, StreamExt, WebSocket};

use crate::facade::support::EchoServer;
use crate::fit::support::{send_raw, upgrade_request, LIMIT};
use crate::fit::Host;

/// What a malformed request is, its bytes, the status and a header field it must get.
type Case = (
    &'static str,
    String,
    u16,
    Option<(&'static str, &'static str)>,
);

/// Each malformed request and the status and header it must get. RFC 6455 §4.2.1: "the server
/// MUST stop processing the client's handshake and return an HTTP response with an
/// appropriate error code (such as 400 Bad Request)"; §4.2.2: for another version, 426 with
/// `Sec-WebSocket-Version`.
async fn bad_upgrades_get_tethers_statuses(host: Host) {
    let service = host.start(Config::default()).await;
    let cases: [Case; 7] = [
        (
            "missing key",
            upgrade_request("GET", "/ws", "sec-websocket-key", ""),
            400,
            None,
        ),
        (
            "short key",
            upgrade_request(
                "GET",
                "/ws",
                "sec-websocket-key",
                "sec-websocket-key: dGhlIHNhbXBsZQ==\r\n",
            ),
            400,
            None,
        ),
        (
            "version 8",
            upgrade_request(
                "GET",
                "/ws",
                "sec-websocket-version",
                "sec-websocket-version: 8\r\n",
            ),
            426,
            Some(("sec-websocket-version", "13")),
        ),
        (
            "no version",
            upgrade_request("GET", "/ws", "sec-websocket-version", ""),
            426,
            Some(("sec-websocket-version", "13")),
        ),
        (
            "no connection upgrade",
            upgrade_request("GET", "/ws", "connection", "connection: keep-alive\r\n"),
            400,
            None,
        ),
        (
            "malformed extensions",
            upgrade_request("GET", "/ws", "", "sec-websocket-extensions: ;;\r\n"),
            400,
            None,
        ),
        (
            "plain GET on a websocket route",
            "GET /ws HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n".to_owned(),
            426,
            Some(("upgrade", "websocket")),
        ),
    ];
    // Tether's own server, as `tether serve` runs it, answers the same bytes the same way.
    let server = EchoServer::start(|_| {}).await;
    for (what, request, status, header) in cases {
        let (response, _) = send_raw(service.addr, &request).await;
        assert_eq!(response.status, status, "{what}: {response:?}");
        if let Some((name, value)) = header {
            assert_eq!(response.header(name), Some(value), "{what}: {response:?}");
        }
        assert!(!response.body.is_empty(), "{what}: a one-line reason");
        let (served, _) = send_raw(server.addr, &request).await;
        assert_eq!(
            (served.status, &served.body),
            (response.status, &response.body),
            "{what}: as tether's Server answers"
        );
    }
}

#[tokio::test]
async fn axum_rfc6455_4_2_1_bad_upgrades_get_tethers_statuses() {
    bad_upgrades_get_tethers_statuses(Host::Axum).await;
}

#[tokio::test]
async fn hyper_rfc6455_4_2_1_bad_upgrades_get_tethers_statuses() {
    bad_upgrades_get_tethers_statuses(Host::Hyper).await;
}

/// RFC 6455 §4.2.1 item 1: "An HTTP/1.1 or higher GET request". hyper hands any method to
/// the service, and Tether's rule answers 400; an axum `get` route answers 405 itself before
/// any extractor runs.
#[tokio::test]
async fn rfc6455_4_2_1_item_1_not_get_is_refused() {
    let hyper = Host::Hyper.start(Config::default()).await;
    let post = upgrade_request("POST", "/ws", "", "content-length: 0\r\n");
    assert_eq!(send_raw(hyper.addr, &post).await.0.status, 400);
    let old = upgrade_request("GET", "/ws", "", "").replacen("HTTP/1.1", "HTTP/1.0", 1);
    assert_eq!(send_raw(hyper.addr, &old).await.0.status, 400);

    let axum = Host::Axum.start(Config::default()).await;
    assert_eq!(send_raw(axum.addr, &post).await.0.status, 405);
}

/// The Config's header limits apply to the head hyper parsed: at the limit the Upgrade
/// completes, one field past it is answered 431.
async fn header_count_at_and_past_the_limit(host: Host) {
    let mut config = Config::default();
    let mut handshake = tether::handshake::Config::default();
    // The five fields of `upgrade_request`, and one more.
    handshake.set_max_headers(6);
    config.set_handshake(handshake);
    let service = host.start(config).await;
    let at = upgrade_request("GET", "/ws", "", "x-one: 1\r\n");
    assert_eq!(send_raw(service.addr, &at).await.0.status, 101);
    let past = upgrade_request("GET", "/ws", "", "x-one: 1\r\nx-two: 2\r\n");
    assert_eq!(send_raw(service.addr, &past).await.0.status, 431);
}

/// `Config::set_max_header_bytes` counted on the head as the client wrote it: at the limit
/// the Upgrade completes, one byte past it is answered 431.
async fn header_bytes_at_and_past_the_limit(host: Host) {
    let at = upgrade_request("GET", "/ws", "", "x-pad: 0123456789\r\n");
    let mut config = Config::default();
    let mut handshake = tether::handshake::Config::default();
    handshake.set_max_header_bytes(at.len());
    config.set_handshake(handshake);
    let service = host.start(config).await;
    assert_eq!(send_raw(service.addr, &at).await.0.status, 101);
    let past = upgrade_request("GET", "/ws", "", "x-pad: 01234567890\r\n");
    assert_eq!(past.len(), at.len() + 1);
    let (response, _) = send_raw(service.addr, &past).await;
    assert_eq!(response.status, 431, "{response:?}");
}

#[tokio::test]
async fn axum_header_bytes_at_and_past_the_limit() {
    header_bytes_at_and_past_the_limit(Host::Axum).await;
}

#[tokio::test]
async fn hyper_header_bytes_at_and_past_the_limit() {
    header_bytes_at_and_past_the_limit(Host::Hyper).await;
}

#[tokio::test]
async fn axum_header_count_at_and_past_the_limit() {
    header_count_at_and_past_the_limit(Host::Axum).await;
}

#[tokio::test]
async fn hyper_header_count_at_and_past_the_limit() {
    header_count_at_and_past_the_limit(Host::Hyper).await;
}

/// RFC 6455 §7.4.1: 1009 "indicates that an endpoint is terminating the connection because it
/// has received a message that is too big for it to process". The Config reaches the
/// WebSocket: a message at the limit echoes, one byte more closes with 1009.
async fn message_size_at_and_past_the_limit(host: Host) {
    let mut config = Config::default();
    config.set_max_message_size(1024);
    let service = host.start(config).await;
    let ws = ClientBuilder::new()
        .connect(&service.url("/ws"))
        .await
        .expect("upgrade");
    one_kib_limit_holds(ws).await;
}

/// The extractor's own setters: `max_message_size(1024)` and `deflate(..)` on the route,
/// over the default Config.
#[tokio::test]
async fn axum_extractor_setters_set_the_limit_and_deflate() {
    let service = Host::Axum.start(Config::default()).await;
    let ws = ClientBuilder::new()
        .connect(&service.url("/limited"))
        .await
        .expect("upgrade");
    assert!(ws.deflate().is_some(), "deflate agreed through the setter");
    one_kib_limit_holds(ws).await;
}

/// 1024 bytes echo; 1025 get close 1009.
async fn one_kib_limit_holds<S>(mut ws: WebSocket<S>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let at = Message::binary(vec![7; 1024]);
    ws.send(at.clone()).await.expect("send");
    assert_eq!(ws.next().await.expect("echo").expect("no error"), at);
    ws.send(Message::binary(vec![7; 1025])).await.expect("send");
    let closed = tokio::time::timeout(LIMIT, async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(frame))) => return frame.map(|f| f.code),
                Some(Ok(_)) => continue,
                other => panic!("expected the server's close, got {other:?}"),
            }
        }
    })
    .await
    .expect("a close within the limit");
    assert_eq!(closed, Some(CloseCode::MESSAGE_TOO_BIG));
}

#[tokio::test]
async fn axum_rfc6455_7_4_1_message_size_at_and_past_the_limit() {
    message_size_at_and_past_the_limit(Host::Axum).await;
}

#[tokio::test]
async fn hyper_rfc6455_7_4_1_message_size_at_and_past_the_limit() {
    message_size_at_and_past_the_limit(Host::Hyper).await;
}

/// A client that completes the Upgrade and then never reads nor answers: the server's
/// heartbeat declares it dead (the supervisor's event, no sleeping here) and closes it with
/// 1011 after the pings it never answered; then the connection ends.
async fn silent_client_is_closed_by_the_heartbeat(host: Host) {
    let mut service = host.start(Config::default()).await;
    let request = upgrade_request("GET", "/beat", "", "");
    let (response, tcp) = send_raw(service.addr, &request).await;
    assert_eq!(response.status, 101);

    let state = tokio::time::timeout(LIMIT, service.beats.recv())
        .await
        .expect("the heartbeat's verdict within the limit")
        .expect("a verdict");
    assert_eq!(state, LinkState::Closed(CloseReason::HeartbeatTimeout));

    // Only now read what the server sent while the client was silent.
    let mut ws = WebSocket::from_raw(tcp, Role::Client, &Config::default(), BytesMut::new(), None);
    let (mut pings, mut close) = (0, None);
    tokio::time::timeout(LIMIT, async {
        while let Some(message) = ws.next().await {
            match message {
                Ok(Message::Ping(_)) => pings += 1,
                Ok(Message::Close(frame)) => close = frame.map(|f| f.code),
                Ok(other) => panic!("unexpected {other:?}"),
                Err(_) => break,
            }
        }
    })
    .await
    .expect("the connection ends within the limit");
    assert!(pings >= 1, "the heartbeat probed first");
    assert_eq!(close, Some(CloseCode::INTERNAL_ERROR));
}

#[tokio::test]
async fn axum_silent_client_is_closed_by_the_heartbeat() {
    silent_client_is_closed_by_the_heartbeat(Host::Axum).await;
}

#[tokio::test]
async fn hyper_silent_client_is_closed_by_the_heartbeat() {
    silent_client_is_closed_by_the_heartbeat(Host::Hyper).await;
}

/// RFC 6455 §10.2: "If the origin indicated is unacceptable to the server, then it SHOULD
/// respond to the WebSocket handshake with a reply containing HTTP 403 Forbidden status code."
/// The extractor's allow-list is the `Server`'s: a foreign page gets 403, the allowed origin
/// and non-browser clients (no `Origin`) are upgraded.
#[tokio::test]
async fn axum_rfc6455_10_2_foreign_origin_gets_403() {
    let service = Host::Axum.start(Config::default()).await;
    let foreign = upgrade_request("GET", "/private", "", "origin: http://evil.test\r\n");
    let (response, _) = send_raw(service.addr, &foreign).await;
    assert_eq!(response.status, 403, "{response:?}");
    let allowed = upgrade_request("GET", "/private", "", "origin: http://APP.test\r\n");
    assert_eq!(send_raw(service.addr, &allowed).await.0.status, 101);
    let twice = upgrade_request(
        "GET",
        "/private",
        "",
        "origin: http://app.test\r\norigin: http://evil.test\r\n",
    );
    assert_eq!(send_raw(service.addr, &twice).await.0.status, 403);
    let none = upgrade_request("GET", "/private", "", "");
    assert_eq!(send_raw(service.addr, &none).await.0.status, 101);
}
