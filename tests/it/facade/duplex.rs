//! The driver over `tokio::io::duplex`: deterministic, no sockets.

use futures::{SinkExt, StreamExt};
use tether::{
    accept_or_plain, Accept, Accepted, ClientBuilder, CloseCode, Config, Message, WebSocket,
};
use tokio::io::DuplexStream;

/// A connected client/server pair over an in-memory pipe of `capacity` bytes each way.
pub(crate) async fn pair(capacity: usize) -> (WebSocket<DuplexStream>, WebSocket<DuplexStream>) {
    pair_with(capacity, &Config::default()).await
}

/// [`pair`] with `config` for the server side.
pub(crate) async fn pair_with(
    capacity: usize,
    config: &Config,
) -> (WebSocket<DuplexStream>, WebSocket<DuplexStream>) {
    let (client_io, server_io) = tokio::io::duplex(capacity);
    let config = config.clone();
    let server =
        tokio::spawn(
            async move { accept_or_plain(server_io, &config, |_| Ok(Accept::new())).await },
        );
    let client = ClientBuilder::new()
        .handshake(client_io, "ws://localhost/test")
        .await
        .expect("client handshake");
    match server.await.expect("join").expect("server handshake") {
        Accepted::WebSocket(server, _) => (client, *server),
        other => panic!("expected a websocket, got {other:?}"),
    }
}

#[tokio::test]
async fn full_duplex_both_sides_send_at_once() {
    let (mut client, mut server) = pair(1 << 16).await;
    // Both write 200 messages before either reads: full duplex over one connection.
    for i in 0..200u32 {
        client.feed(Message::text(format!("c{i}"))).await.unwrap();
        server
            .feed(Message::binary(i.to_be_bytes().to_vec()))
            .await
            .unwrap();
    }
    let (a, b) = tokio::join!(client.flush(), server.flush());
    a.unwrap();
    b.unwrap();
    for i in 0..200u32 {
        assert_eq!(
            server.next().await.unwrap().unwrap(),
            Message::text(format!("c{i}"))
        );
        assert_eq!(
            client.next().await.unwrap().unwrap(),
            Message::binary(i.to_be_bytes().to_vec())
        );
    }
}

#[tokio::test]
async fn rfc6455_5_5_2_ping_is_answered_while_only_reading() {
    let (mut client, mut server) = pair(4096).await;
    client.send(Message::Ping("probe-1".into())).await.unwrap();
    client.send(Message::text("after")).await.unwrap();
    // The server only reads; its pong goes out anyway.
    assert_eq!(
        server.next().await.unwrap().unwrap(),
        Message::Ping("probe-1".into())
    );
    assert_eq!(
        server.next().await.unwrap().unwrap(),
        Message::text("after")
    );
    assert_eq!(
        client.next().await.unwrap().unwrap(),
        Message::Pong("probe-1".into())
    );
}

#[tokio::test]
async fn rfc6455_7_1_closing_handshake_ends_both_streams_for_good() {
    let (mut client, mut server) = pair(4096).await;
    let server_side = tokio::spawn(async move {
        let mut seen = Vec::new();
        while let Some(message) = server.next().await {
            seen.push(message.unwrap());
        }
        // Ended, and stays ended.
        for _ in 0..3 {
            assert!(server.next().await.is_none());
        }
        assert!(matches!(
            server.send(Message::text("late")).await,
            Err(tether::Error::Closed)
        ));
        seen
    });
    client.send(Message::text("last words")).await.unwrap();
    let answer = client.close(CloseCode(4000), "going").await.unwrap();
    assert_eq!(answer.unwrap().code, CloseCode(4000));
    assert!(client.next().await.is_none());
    let seen = server_side.await.unwrap();
    assert_eq!(seen[0], Message::text("last words"));
    assert!(
        matches!(&seen[1], Message::Close(Some(frame)) if frame.code == CloseCode(4000) && frame.reason == "going")
    );
    assert_eq!(seen.len(), 2);
}
