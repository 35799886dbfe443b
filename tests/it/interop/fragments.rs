//! Fragmented messages (RFC 6455 §5.4) with real peers: our client streams messages as
//! fragments to the Python `websockets` and Node `ws` echo servers, and our server answers their
//! scripted clients in fragments.

use std::num::NonZeroUsize;

use tether::{ClientBuilder, CloseCode, Config, Message, OpCode, Server, WebSocket};
use tokio::io::{AsyncRead, AsyncWrite};

use super::peer::{run_client, Kind, PeerServer, FULL_RUN};
use super::{binary_of, next_data, text_of};
use crate::facade::support::EchoServer;

/// 64 KiB, the fragment size the tests stream with.
const FRAGMENT: usize = 64 << 10;

/// Sends `payload` as a message of kind `opcode` in fragments of `size` bytes; with
/// `empty_final`, the last fragment is an empty one after all the data.
async fn send_in_fragments<S>(
    ws: &mut WebSocket<S>,
    opcode: OpCode,
    payload: &[u8],
    size: usize,
    empty_final: bool,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let pieces: Vec<&[u8]> = payload.chunks(size).collect();
    let count = pieces.len();
    let mut op = opcode;
    for (i, piece) in pieces.into_iter().enumerate() {
        let fin = i + 1 == count && !empty_final;
        ws.send_fragment(op, piece.to_vec(), fin).await.unwrap();
        op = OpCode::Continuation;
    }
    if empty_final || count == 0 {
        ws.send_fragment(op, &b""[..], true).await.unwrap();
    }
}

/// Our client against the peer's echo server: every message goes out fragmented and comes back
/// whole.
async fn our_client_streams_fragments_to(kind: Kind) {
    let peer = PeerServer::start(kind, &[]).await;
    let mut ws = ClientBuilder::new()
        .connect(&peer.url("ws", "127.0.0.1"))
        .await
        .unwrap();

    // 1 MiB binary in 64 KiB fragments, with and without an empty final fragment.
    let binary = binary_of(1 << 20);
    for empty_final in [false, true] {
        send_in_fragments(&mut ws, OpCode::Binary, &binary, FRAGMENT, empty_final).await;
        assert_eq!(
            next_data(&mut ws).await,
            Message::binary(binary.clone()),
            "1 MiB binary in 64 KiB fragments, empty final: {empty_final}"
        );
    }
    // 1 MiB text of two-byte characters in fragments of an odd size, so every cut but the last
    // splits a code point, then an empty final fragment (RFC 6455 §8.1 holds for the whole).
    let text = text_of(1 << 20);
    send_in_fragments(&mut ws, OpCode::Text, text.as_bytes(), FRAGMENT - 1, true).await;
    assert_eq!(next_data(&mut ws).await, Message::text(text.clone()));
    // Every code point width cut byte by byte, a ping between two of the fragments.
    let small = "aé€😀";
    let bytes = small.as_bytes();
    ws.send_fragment(OpCode::Text, &bytes[..2], false)
        .await
        .unwrap();
    ws.send(Message::Ping("between fragments".into()))
        .await
        .unwrap();
    for i in 2..bytes.len() {
        ws.send_fragment(
            OpCode::Continuation,
            bytes[i..=i].to_vec(),
            i + 1 == bytes.len(),
        )
        .await
        .unwrap();
    }
    assert_eq!(
        tokio::time::timeout(
            std::time::Duration::from_secs(20),
            futures::StreamExt::next(&mut ws)
        )
        .await
        .unwrap()
        .unwrap()
        .unwrap(),
        Message::Pong("between fragments".into()),
        "the peer answered the ping sent between fragments"
    );
    assert_eq!(next_data(&mut ws).await, Message::text(small));
    // An empty message as three empty fragments.
    ws.send_fragment(OpCode::Binary, &b""[..], false)
        .await
        .unwrap();
    ws.send_fragment(OpCode::Continuation, &b""[..], false)
        .await
        .unwrap();
    ws.send_fragment(OpCode::Continuation, &b""[..], true)
        .await
        .unwrap();
    assert_eq!(next_data(&mut ws).await, Message::binary(Vec::new()));

    let answer = ws.close(CloseCode::NORMAL, "fragments done").await.unwrap();
    assert_eq!(answer.map(|frame| frame.code), Some(CloseCode::NORMAL));
}

#[tokio::test]
async fn rfc6455_5_4_our_client_streams_fragments_to_python_server() {
    our_client_streams_fragments_to(Kind::Python).await;
}

#[tokio::test]
async fn rfc6455_5_4_our_client_streams_fragments_to_node_server() {
    our_client_streams_fragments_to(Kind::Node).await;
}

/// Our server, cutting what it sends into fragments of `size`, runs the peer client's full
/// scripted conversation: every echo (up to 1 MiB) must come back equal. The Python client
/// also counts the frames a 1 MiB text and binary echo arrived in.
async fn peer_client_gets_fragments_from_our_server(kind: Kind, size: usize) {
    let server = EchoServer::start(|server: &mut Server| {
        let mut config = Config::default();
        config.set_send_fragment_size(NonZeroUsize::new(size));
        server.config(config);
    })
    .await;
    let url = server.url("ws", "127.0.0.1");
    match kind {
        Kind::Python => {
            let run = run_client(kind, &url, &["--count-fragments"]).await;
            let frames = (1usize << 20).div_ceil(size);
            let text = format!("ok fragments text {frames}");
            let binary = format!("ok fragments binary {frames}");
            let mut expected = vec![text.as_str(), binary.as_str()];
            expected.extend_from_slice(FULL_RUN);
            run.assert_ok(&expected);
        }
        Kind::Node => run_client(kind, &url, &[]).await.assert_ok(FULL_RUN),
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc6455_5_4_python_client_gets_fragments_from_our_server() {
    peer_client_gets_fragments_from_our_server(Kind::Python, FRAGMENT).await;
    // Small odd fragments cut text through code points.
    peer_client_gets_fragments_from_our_server(Kind::Python, 1001).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc6455_5_4_node_client_gets_fragments_from_our_server() {
    peer_client_gets_fragments_from_our_server(Kind::Node, FRAGMENT).await;
    peer_client_gets_fragments_from_our_server(Kind::Node, 1001).await;
}
