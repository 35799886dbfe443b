//! Interop with real, independently written peers: Python `websockets` and Node `ws`, each as
//! a client of our server and as a server for our client.
//!
//! - `deflate`: permessage-deflate (RFC 7692) agreed with each peer in both roles.
//! - `fragments`: fragmented messages sent by our client and our server (RFC 6455 §5.4).

mod deflate;
mod fragments;
pub(crate) mod peer;

use std::time::Duration;

use futures::StreamExt;
use peer::{run_client, Kind, PeerServer, FULL_RUN};
use tether::http::StatusCode;
use tether::{Accept, ClientBuilder, CloseCode, Message, Rejection};

use crate::facade::support::{EchoServer, TestCert};

async fn peer_client_against_our_server(kind: Kind) {
    let server = EchoServer::start(|_| {}).await;
    let run = run_client(kind, &server.url("ws", "127.0.0.1"), &[]).await;
    run.assert_ok(FULL_RUN);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_client_against_our_server() {
    peer_client_against_our_server(Kind::Python).await;
}

/// Text of `size` bytes as the peers build it: "é" repeated, one "a" for an odd size.
fn text_of(size: usize) -> String {
    "é".repeat(size / 2) + &"a".repeat(size % 2)
}

fn binary_of(size: usize) -> Vec<u8> {
    (0..size).map(|i| (i * 7 + 3) as u8).collect()
}

/// Our client against the peer's echo server: every size both ways, fragmented messages from
/// the peer, pings both ways, subprotocol selection, close codes and reasons both ways.
async fn our_client_against_peer_server(kind: Kind) {
    let peer = PeerServer::start(kind, &["--subprotocols", "chat"]).await;
    let url = peer.url("ws", "127.0.0.1");
    let mut builder = ClientBuilder::new();
    builder.subprotocol("other").subprotocol("chat");
    let mut ws = builder.connect(&url).await.unwrap();
    // RFC 6455 §4.1: the server picks one of the offered subprotocols.
    assert_eq!(ws.subprotocol(), Some("chat"));
    ws.send(Message::text("cmd:subprotocol")).await.unwrap();
    assert_eq!(next_data(&mut ws).await, Message::text("chat"));

    for size in [0, 125, 126, 65535, 65536, 1 << 20] {
        let text = Message::text(text_of(size));
        ws.send(text.clone()).await.unwrap();
        assert_eq!(next_data(&mut ws).await, text, "text of {size} bytes");
        let binary = Message::binary(binary_of(size));
        ws.send(binary.clone()).await.unwrap();
        assert_eq!(next_data(&mut ws).await, binary, "binary of {size} bytes");
    }

    // RFC 6455 §5.4: the peer sends one message in 5 fragments; we see one message.
    let text = "fragmented message from the peer, reassembled by tether";
    ws.send(Message::text(format!("cmd:fragments 5 {text}")))
        .await
        .unwrap();
    assert_eq!(next_data(&mut ws).await, Message::text(text));

    // RFC 6455 §5.5.2: the peer pings us; the pong goes out without our asking.
    ws.send(Message::text("cmd:ping probe-7")).await.unwrap();
    assert_eq!(
        ws.next().await.unwrap().unwrap(),
        Message::Ping("probe-7".into())
    );
    assert_eq!(next_data(&mut ws).await, Message::text("pong-ok probe-7"));
    // And we ping the peer.
    ws.send(Message::Ping("from tether".into())).await.unwrap();
    assert_eq!(
        ws.next().await.unwrap().unwrap(),
        Message::Pong("from tether".into())
    );

    // RFC 6455 §7.4: our close code and reason, echoed back.
    let answer = ws.close(CloseCode(4003), "bye from tether").await.unwrap();
    let answer = answer.expect("a close code");
    assert_eq!(answer.code, CloseCode(4003));
    assert!(ws.next().await.is_none());

    // The peer closes with its own code and reason.
    let mut ws = builder.connect(&url).await.unwrap();
    ws.send(Message::text("cmd:close 4002 peer says bye"))
        .await
        .unwrap();
    match ws.next().await.unwrap().unwrap() {
        Message::Close(Some(frame)) => {
            assert_eq!(frame.code, CloseCode(4002));
            assert_eq!(frame.reason, "peer says bye");
        }
        other => panic!("expected the peer's close, got {other:?}"),
    }
    assert!(ws.next().await.is_none());
    assert!(ws.next().await.is_none());
}

/// The next text or binary message, skipping control events.
async fn next_data<S>(ws: &mut tether::WebSocket<S>) -> Message
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    loop {
        let message = tokio::time::timeout(Duration::from_secs(20), ws.next())
            .await
            .expect("a message within 20 s")
            .expect("the stream has not ended")
            .expect("no error");
        if message.is_data() {
            return message;
        }
    }
}

#[tokio::test]
async fn our_client_against_python_server() {
    our_client_against_peer_server(Kind::Python).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_client_against_our_server() {
    peer_client_against_our_server(Kind::Node).await;
}

#[tokio::test]
async fn our_client_against_node_server() {
    our_client_against_peer_server(Kind::Node).await;
}

/// `wss://` against Python `websockets` serving TLS with an rcgen certificate our client
/// trusts as its only root.
#[tokio::test]
async fn wss_our_client_against_python_tls_server() {
    let cert = TestCert::new();
    let dir = tempdir();
    let cert_path = dir.join("cert.pem");
    let key_path = dir.join("key.pem");
    std::fs::write(&cert_path, &cert.cert_pem).unwrap();
    std::fs::write(&key_path, &cert.key_pem).unwrap();
    let peer = PeerServer::start(
        Kind::Python,
        &[
            "--tls",
            cert_path.to_str().unwrap(),
            key_path.to_str().unwrap(),
        ],
    )
    .await;
    let mut builder = ClientBuilder::new();
    builder.root_store(cert.roots.clone()).unwrap();
    let mut ws = builder
        .connect(&peer.url("wss", "localhost"))
        .await
        .unwrap();
    assert!(ws.get_ref().is_tls());
    for size in [0, 126, 65536, 1 << 20] {
        let binary = Message::binary(binary_of(size));
        ws.send(binary.clone()).await.unwrap();
        assert_eq!(
            next_data(&mut ws).await,
            binary,
            "binary of {size} bytes over tls"
        );
    }
    let answer = ws.close(CloseCode::NORMAL, "tls done").await.unwrap();
    assert_eq!(answer.map(|frame| frame.code), Some(CloseCode::NORMAL));
    let _ = std::fs::remove_dir_all(dir);
}

/// A fresh directory under the target dir for files a peer reads.
fn tempdir() -> std::path::PathBuf {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "interop-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn rejections_both_ways(kind: Kind) {
    // Ours refuses; the peer client sees the status we sent.
    let server = EchoServer::start(|server| {
        server.decide(|_| Err(Rejection::new(StatusCode::FORBIDDEN)));
    })
    .await;
    let run = run_client(
        kind,
        &server.url("ws", "127.0.0.1"),
        &["--expect-status", "403"],
    )
    .await;
    run.assert_ok(&["ok rejected 403"]);
    server.stop().await;
    // The peer refuses; our client sees the status it sent.
    let peer = PeerServer::start(kind, &["--reject", "401"]).await;
    match tether::connect(&peer.url("ws", "127.0.0.1")).await {
        Err(tether::Error::Handshake(tether::handshake::Error::UnexpectedStatus(response))) => {
            assert_eq!(response.status, StatusCode::UNAUTHORIZED)
        }
        other => panic!("expected a 401, got {other:?}"),
    }
}

#[tokio::test]
async fn python_rejections_both_ways() {
    rejections_both_ways(Kind::Python).await;
}

#[tokio::test]
async fn node_rejections_both_ways() {
    rejections_both_ways(Kind::Node).await;
}

/// Subprotocol selection with a peer client: ours picks from what it offers.
#[tokio::test]
async fn python_client_gets_the_subprotocol_we_pick() {
    let server = EchoServer::start(|server| {
        server.decide(|request| {
            let pick = request
                .subprotocols()
                .iter()
                .find(|p| *p == "chat")
                .cloned();
            Ok(match pick {
                Some(pick) => Accept::new().with_subprotocol(pick),
                None => Accept::new(),
            })
        });
    })
    .await;
    let url = server.url("ws", "127.0.0.1");
    let run = run_client(Kind::Python, &url, &["--subprotocols", "superchat,chat"]).await;
    let mut expected = vec!["ok subprotocol chat"];
    expected.extend_from_slice(FULL_RUN);
    run.assert_ok(&expected);
    let run = run_client(Kind::Node, &url, &["--subprotocols", "chat"]).await;
    run.assert_ok(&["ok subprotocol chat", "ok close 4001"]);
    server.stop().await;
}
