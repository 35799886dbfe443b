//! permessage-deflate (RFC 7692) against real peers: Python `websockets` and Node `ws` as
//! clients of our server and as servers for our client, with compression agreed, and with the
//! server's context takeover off.

use futures::StreamExt;
use tether::deflate::{DeflateConfig, WindowBits};
use tether::{ClientBuilder, Config, Message};

use super::peer::{run_client, ClientRun, Kind, PeerServer, FULL_RUN};
use super::{binary_of, next_data, text_of};
use crate::facade::support::EchoServer;

/// Our server with permessage-deflate as `deflate` says.
async fn deflate_server(deflate: DeflateConfig) -> EchoServer {
    EchoServer::start(move |server| {
        let mut config = Config::default();
        config.set_deflate(Some(deflate));
        server.config(config);
    })
    .await
}

/// The run's `ok deflate <agreed extensions>` line, asserting the full run passed.
fn agreed(run: &ClientRun) -> String {
    run.assert_ok(FULL_RUN);
    run.lines
        .iter()
        .find_map(|line| line.strip_prefix("ok deflate "))
        .unwrap_or_else(|| panic!("no deflate line in {:#?}", run.lines))
        .to_owned()
}

async fn peer_client_with_deflate(kind: Kind, deflate: DeflateConfig) -> String {
    let server = deflate_server(deflate).await;
    let run = run_client(kind, &server.url("ws", "127.0.0.1"), &["--expect-deflate"]).await;
    server.stop().await;
    agreed(&run)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc7692_python_client_compressed_against_our_server() {
    let agreed = peer_client_with_deflate(Kind::Python, DeflateConfig::default()).await;
    assert!(agreed.starts_with("permessage-deflate"), "{agreed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc7692_node_client_compressed_against_our_server() {
    let agreed = peer_client_with_deflate(Kind::Node, DeflateConfig::default()).await;
    assert!(agreed.starts_with("permessage-deflate"), "{agreed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc7692_7_1_1_python_client_against_our_server_without_context_takeover() {
    let mut deflate = DeflateConfig::default();
    deflate.set_server_no_context_takeover(true);
    let agreed = peer_client_with_deflate(Kind::Python, deflate).await;
    assert!(agreed.contains("server_no_context_takeover"), "{agreed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc7692_7_1_1_node_client_without_context_takeover_both_ways_against_our_server() {
    let server = deflate_server(DeflateConfig::default()).await;
    let url = server.url("ws", "127.0.0.1");
    let run = run_client(
        Kind::Node,
        &url,
        &["--expect-deflate", "--deflate-no-context-takeover"],
    )
    .await;
    server.stop().await;
    // Every size echoed twice each way (the full run): with the context reset after each
    // message, the second copy cannot refer to the first.
    let agreed = agreed(&run);
    assert!(agreed.contains("server_no_context_takeover"), "{agreed}");
    assert!(agreed.contains("client_no_context_takeover"), "{agreed}");
}

#[tokio::test]
async fn rfc7692_7_1_1_our_client_against_node_server_without_context_takeover_both_ways() {
    let params = our_client_compressed(
        Kind::Node,
        &["--deflate-no-context-takeover"],
        DeflateConfig::default(),
    )
    .await;
    assert!(params.server_no_context_takeover());
    assert!(params.client_no_context_takeover());
}

/// The smallest windows RFC 7692 allows, 8 bits (256 bytes) both ways: zlib cannot deflate
/// with 8, so we deflate with 9, whose matches reach back 250 bytes at most.
fn smallest_windows() -> DeflateConfig {
    let mut deflate = DeflateConfig::default();
    deflate
        .set_client_max_window_bits(WindowBits::new(8).unwrap())
        .set_server_max_window_bits(WindowBits::new(8).unwrap());
    deflate
}

/// Node's zlib takes a window of 8 (as 9, like ours); Python's does not, and websockets
/// accepts only 9 to 15, so Python is tested for declining instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc7692_7_1_2_window_8_node_client_against_our_server() {
    let server = deflate_server(DeflateConfig::default()).await;
    let url = server.url("ws", "127.0.0.1");
    let run = run_client(
        Kind::Node,
        &url,
        &["--expect-deflate", "--deflate-window-8"],
    )
    .await;
    server.stop().await;
    // The full run passed both ways: our 8-bit stream (deflated with 9) inflates in Node's
    // 256-byte window. The client's own client_max_window_bits=8 is a hint of what it will
    // use; the answer need not repeat it (RFC 7692 §7.1.2.2).
    let agreed = agreed(&run);
    assert!(agreed.contains("server_max_window_bits=8"), "{agreed}");
}

#[tokio::test]
async fn rfc7692_7_1_2_window_8_our_client_against_node_server() {
    let params = our_client_compressed(Kind::Node, &["--deflate"], smallest_windows()).await;
    assert_eq!(params.server_max_window_bits().get(), 8);
    assert_eq!(params.client_max_window_bits().get(), 8);
}

#[tokio::test]
async fn rfc7692_7_1_2_window_8_declined_by_python_server_falls_back_to_no_compression() {
    let peer = PeerServer::start(Kind::Python, &[]).await;
    let mut config = Config::default();
    config.set_deflate(Some(smallest_windows()));
    let mut ws = ClientBuilder::new()
        .config(config)
        .connect(&peer.url("ws", "127.0.0.1"))
        .await
        .unwrap();
    assert!(
        ws.deflate().is_none(),
        "websockets cannot honour a window of 8"
    );
    ws.send(Message::text("uncompressed")).await.unwrap();
    assert_eq!(next_data(&mut ws).await, Message::text("uncompressed"));
    ws.close(tether::CloseCode::NORMAL, "").await.unwrap();
}

/// Windows of 9 bits (client) and 10 bits (server), below the default 15.
fn reduced_windows() -> DeflateConfig {
    let mut deflate = DeflateConfig::default();
    deflate
        .set_client_max_window_bits(WindowBits::new(9).unwrap())
        .set_server_max_window_bits(WindowBits::new(10).unwrap());
    deflate
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc7692_7_1_2_python_client_against_our_server_with_reduced_windows() {
    let agreed = peer_client_with_deflate(Kind::Python, reduced_windows()).await;
    assert!(agreed.contains("server_max_window_bits=10"), "{agreed}");
    assert!(agreed.contains("client_max_window_bits=9"), "{agreed}");
}

/// Our client offering permessage-deflate as `deflate` says against the peer's echo server
/// started with `args`: compression agreed, every size echoed both ways.
async fn our_client_compressed(
    kind: Kind,
    args: &[&str],
    deflate: DeflateConfig,
) -> tether::deflate::DeflateParams {
    let peer = PeerServer::start(kind, args).await;
    let mut config = Config::default();
    config.set_deflate(Some(deflate));
    let mut ws = ClientBuilder::new()
        .config(config)
        .connect(&peer.url("ws", "127.0.0.1"))
        .await
        .unwrap();
    let params = *ws.deflate().expect("permessage-deflate agreed");
    ws.send(Message::text("cmd:extensions")).await.unwrap();
    match next_data(&mut ws).await {
        Message::Text(agreed) => assert!(agreed.contains("permessage-deflate"), "{agreed}"),
        other => panic!("{other:?}"),
    }
    for size in [0, 63, 64, 125, 126, 65535, 65536, 1 << 20] {
        for message in [
            Message::text(text_of(size)),
            Message::binary(binary_of(size)),
        ] {
            // Twice: the second message may refer to the first through the shared window.
            for _ in 0..2 {
                ws.send(message.clone()).await.unwrap();
                assert_eq!(next_data(&mut ws).await, message, "{size} bytes");
            }
        }
    }
    ws.close(tether::CloseCode::NORMAL, "").await.unwrap();
    assert!(ws.next().await.is_none());
    params
}

#[tokio::test]
async fn rfc7692_our_client_compressed_against_python_server() {
    our_client_compressed(Kind::Python, &[], DeflateConfig::default()).await;
}

#[tokio::test]
async fn rfc7692_our_client_compressed_against_node_server() {
    our_client_compressed(Kind::Node, &["--deflate"], DeflateConfig::default()).await;
}

#[tokio::test]
async fn rfc7692_7_1_1_our_client_against_python_server_without_context_takeover() {
    let params = our_client_compressed(
        Kind::Python,
        &["--deflate-no-context-takeover"],
        DeflateConfig::default(),
    )
    .await;
    assert!(params.server_no_context_takeover());
}

#[tokio::test]
async fn rfc7692_7_1_2_our_client_against_python_and_node_servers_with_reduced_windows() {
    for (kind, args) in [(Kind::Python, &[][..]), (Kind::Node, &["--deflate"][..])] {
        let params = our_client_compressed(kind, args, reduced_windows()).await;
        assert_eq!(params.server_max_window_bits().get(), 10, "{kind:?}");
        assert!(params.client_max_window_bits().get() <= 9, "{kind:?}");
    }
}
