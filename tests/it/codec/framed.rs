//! The tokio-util codecs under `Framed`, over an in-memory duplex pipe.

use bytes::BytesMut;
use futures::{SinkExt, StreamExt};
use tether_codec::{
    CloseCode, CloseFrame, Config, Frame, FrameCodec, Message, MessageCodec, OpCode, Role,
};
use tokio_util::codec::{Framed, FramedParts};

use super::support::test_keys;

#[tokio::test]
async fn message_codec_echo_and_closing_handshake() {
    let (a, b) = tokio::io::duplex(64 * 1024);
    let mut client = Framed::new(a, MessageCodec::client(Config::default(), test_keys()));
    let mut server = Framed::new(b, MessageCodec::server(Config::default()));

    let server_task = tokio::spawn(async move {
        while let Some(message) = server.next().await {
            match message.unwrap() {
                Message::Close(frame) => {
                    // Flushes the echo the protocol queued while decoding.
                    server.send(Message::Close(frame)).await.unwrap();
                    break;
                }
                data @ (Message::Text(_) | Message::Binary(_)) => server.send(data).await.unwrap(),
                Message::Ping(_) | Message::Pong(_) => {}
            }
        }
        server.codec().protocol().state()
    });

    let sent = vec![
        Message::text("hello"),
        Message::binary(vec![7u8; 70_000]),
        Message::text("✓ done"),
    ];
    // Feed all, flush once: the three messages leave in one batch.
    for message in &sent {
        client.feed(message.clone()).await.unwrap();
    }
    client.flush().await.unwrap();
    for expected in &sent {
        assert_eq!(client.next().await.unwrap().unwrap(), *expected);
    }
    client
        .send(Message::Close(Some(
            CloseFrame::new(CloseCode::NORMAL, "bye").unwrap(),
        )))
        .await
        .unwrap();
    let reply = client.next().await.unwrap().unwrap();
    assert!(matches!(reply, Message::Close(Some(f)) if f.code == CloseCode::NORMAL));
    assert_eq!(
        client.codec().protocol().state(),
        tether_codec::State::Closed
    );
    assert_eq!(server_task.await.unwrap(), tether_codec::State::Closed);
}

#[tokio::test]
async fn handshake_leftover_bytes_are_decoded_before_the_first_read() {
    // The first frame arrived in the same read as the HTTP request; the handshake hands it over.
    let mut leftover = BytesMut::new();
    Frame::new(OpCode::Text, "early")
        .with_mask(Some([1, 2, 3, 4]))
        .encode(&mut leftover);
    let (a, _peer) = tokio::io::duplex(1024);
    let mut parts = FramedParts::new::<Message>(a, MessageCodec::server(Config::default()));
    parts.read_buf = leftover;
    let mut server = Framed::from_parts(parts);
    assert_eq!(
        server.next().await.unwrap().unwrap(),
        Message::text("early")
    );
}

#[tokio::test]
async fn protocol_seeded_before_wrapping_decodes_first() {
    let mut protocol = tether_codec::Protocol::server(Config::default());
    let mut early = BytesMut::new();
    Frame::new(OpCode::Binary, vec![1, 2])
        .with_mask(Some([5, 6, 7, 8]))
        .encode(&mut early);
    protocol.receive_data(&early);
    let (a, mut peer) = tokio::io::duplex(1024);
    let mut server = Framed::new(a, MessageCodec::from(protocol));
    let mut next = BytesMut::new();
    Frame::new(OpCode::Binary, vec![3])
        .with_mask(Some([5, 6, 7, 8]))
        .encode(&mut next);
    tokio::io::AsyncWriteExt::write_all(&mut peer, &next)
        .await
        .unwrap();
    assert_eq!(
        server.next().await.unwrap().unwrap(),
        Message::binary(vec![1, 2])
    );
    assert_eq!(
        server.next().await.unwrap().unwrap(),
        Message::binary(vec![3])
    );
}

#[tokio::test]
async fn pong_goes_out_with_the_next_message() {
    let (a, b) = tokio::io::duplex(1024);
    let mut client = Framed::new(a, FrameCodec::new(Role::Client, Config::default()));
    let mut server = Framed::new(b, MessageCodec::server(Config::default()));
    client
        .send(Frame::new(OpCode::Ping, "p").with_mask(Some([1, 1, 1, 1])))
        .await
        .unwrap();
    assert_eq!(
        server.next().await.unwrap().unwrap(),
        Message::Ping("p".into())
    );
    server.send(Message::text("after")).await.unwrap();
    let pong = client.next().await.unwrap().unwrap();
    assert_eq!(
        (pong.opcode(), &pong.payload()[..]),
        (OpCode::Pong, &b"p"[..])
    );
    let text = client.next().await.unwrap().unwrap();
    assert_eq!(
        (text.opcode(), &text.payload()[..]),
        (OpCode::Text, &b"after"[..])
    );
}
