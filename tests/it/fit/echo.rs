//! Real clients echo through the axum and hyper integrations, next to a plain HTTP route.

use tether::deflate::DeflateConfig;
use tether::{ClientBuilder, CloseCode, Config, Message, StreamExt};

use super::support::{send_raw, LIMIT};
use super::Host;
use crate::interop::peer::{run_client, Kind, FULL_RUN};

fn deflating() -> Config {
    let mut config = Config::default();
    config.set_deflate(Some(DeflateConfig::default()));
    config
}

async fn next_data<S>(ws: &mut tether::WebSocket<S>) -> Message
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    tokio::time::timeout(LIMIT, async {
        loop {
            let message = ws.next().await.expect("a message").expect("no error");
            if message.is_data() {
                return message;
            }
        }
    })
    .await
    .expect("a message within the limit")
}

/// Tether's client: subprotocol selected, deflate agreed (the config enables it), echo of
/// small and large messages, then a clean close.
async fn tether_client_echoes(host: Host) {
    let service = host.start(deflating()).await;
    let mut builder = ClientBuilder::new();
    builder.subprotocol("other").subprotocol("chat");
    let mut ws = builder.connect(&service.url("/ws")).await.expect("upgrade");
    assert_eq!(ws.subprotocol(), Some("chat"));
    assert!(ws.deflate().is_some(), "permessage-deflate agreed");
    for size in [0, 125, 126, 65536, 1 << 20] {
        let text = Message::text("x".repeat(size));
        ws.send(text.clone()).await.expect("send");
        assert_eq!(next_data(&mut ws).await, text, "{size} bytes");
    }
    let answer = ws.close(CloseCode::NORMAL, "bye").await.expect("close");
    assert_eq!(answer.map(|f| f.code), Some(CloseCode::NORMAL));
}

#[tokio::test]
async fn axum_tether_client_echoes_with_subprotocol_and_deflate() {
    tether_client_echoes(Host::Axum).await;
}

#[tokio::test]
async fn hyper_tether_client_echoes_with_subprotocol_and_deflate() {
    tether_client_echoes(Host::Hyper).await;
}

/// RFC 7692 §5: the server accepts permessage-deflate only when its config says so; the
/// default server config declines the client's offer.
async fn deflate_declined_by_default(host: Host) {
    let service = host.start(Config::default()).await;
    let mut ws = ClientBuilder::new()
        .connect(&service.url("/ws"))
        .await
        .expect("upgrade");
    assert!(ws.deflate().is_none());
    ws.send(Message::text("plain")).await.expect("send");
    assert_eq!(next_data(&mut ws).await, Message::text("plain"));
}

#[tokio::test]
async fn axum_rfc7692_deflate_declined_unless_configured() {
    deflate_declined_by_default(Host::Axum).await;
}

#[tokio::test]
async fn hyper_rfc7692_deflate_declined_unless_configured() {
    deflate_declined_by_default(Host::Hyper).await;
}

/// A peer's full scripted run (sizes to 1 MiB, fragments, ping, close 4001), with deflate.
async fn peer_client_echoes(host: Host, kind: Kind) {
    let service = host.start(deflating()).await;
    let args = ["--subprotocols", "chat", "--expect-deflate"];
    let run = run_client(kind, &service.url("/ws"), &args).await;
    run.assert_ok(FULL_RUN);
    run.assert_ok(&["ok subprotocol chat"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_python_client_echoes_with_deflate() {
    peer_client_echoes(Host::Axum, Kind::Python).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_node_client_echoes_with_deflate() {
    peer_client_echoes(Host::Axum, Kind::Node).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hyper_python_client_echoes_with_deflate() {
    peer_client_echoes(Host::Hyper, Kind::Python).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hyper_node_client_echoes_with_deflate() {
    peer_client_echoes(Host::Hyper, Kind::Node).await;
}

/// The plain route answers while a WebSocket of the same service is open.
async fn plain_route_still_answers(host: Host) {
    let service = host.start(Config::default()).await;
    let mut ws = ClientBuilder::new()
        .connect(&service.url("/ws"))
        .await
        .expect("upgrade");
    let request = "GET /health HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n";
    let (response, _) = send_raw(service.addr, request).await;
    assert_eq!(response.status, 200);
    assert_eq!(response.body, b"ok");
    ws.send(Message::text("still here")).await.expect("send");
    assert_eq!(next_data(&mut ws).await, Message::text("still here"));
}

#[tokio::test]
async fn axum_plain_route_answers_next_to_the_websocket_route() {
    plain_route_still_answers(Host::Axum).await;
}

#[tokio::test]
async fn hyper_plain_route_answers_next_to_the_websocket_route() {
    plain_route_still_answers(Host::Hyper).await;
}

/// axum's own extractors work next to `WebSocketUpgrade`, and the handler reads the query
/// from the validated head.
#[tokio::test]
async fn axum_handler_sees_path_headers_query_and_extensions() {
    let service = Host::Axum.start(Config::default()).await;
    let mut builder = ClientBuilder::new();
    builder.header(
        tether::http::HeaderName::from_static("x-user"),
        tether::http::HeaderValue::from_static("ada"),
    );
    let mut ws = builder
        .connect(&service.url("/who/lobby?since=7"))
        .await
        .expect("upgrade");
    assert_eq!(
        next_data(&mut ws).await,
        Message::text("room=lobby user=ada tag=from-the-router query=since=7")
    );
}
