//! Cancel safety: dropping a pending `next()` or `send()` loses no bytes and no message.

use futures::{FutureExt, StreamExt};
use tether::{Config, Message};
use tether_codec::OpCode;
use tokio::io::AsyncWriteExt;

use super::duplex::pair;
use super::raw::{masked, raw_client};

#[tokio::test]
async fn dropped_next_mid_message_loses_no_bytes() {
    let (mut raw, mut server) = raw_client(&Config::default(), 1 << 20).await;
    let payload: Vec<u8> = (0..70_000u32).map(|i| i as u8).collect();
    let wire = masked(OpCode::Binary, &payload);
    // Deliver the frame in pieces; after each, a next() is polled once and dropped, as a
    // select! with another branch ready would.
    for piece in wire.chunks(9_999) {
        assert!(
            server.next().now_or_never().is_none(),
            "no message before the last piece"
        );
        raw.write_all(piece).await.unwrap();
    }
    assert_eq!(
        server.next().await.unwrap().unwrap(),
        Message::binary(payload)
    );
}

#[tokio::test]
async fn dropped_send_futures_still_deliver_their_messages() {
    let (mut client, mut server) = pair(64).await;
    // A send future dropped before it was ever polled: the message was taken when send was
    // called.
    drop(client.send(Message::text("never polled")));
    // A send future polled once (the 64-byte pipe fills) and dropped.
    let big = Message::binary(vec![7u8; 10_000]);
    assert!(client.send(big.clone()).now_or_never().is_none());
    // A select! in which the other branch wins.
    tokio::select! {
        biased;
        () = std::future::ready(()) => {}
        _ = client.send(Message::text("lost the race")) => panic!("the ready branch wins"),
    }
    let reading = tokio::spawn(async move {
        let mut got = Vec::new();
        for _ in 0..3 {
            got.push(server.next().await.unwrap().unwrap());
        }
        got
    });
    client.flush().await.unwrap();
    let got = reading.await.unwrap();
    assert_eq!(
        got,
        vec![
            Message::text("never polled"),
            big,
            Message::text("lost the race")
        ]
    );
}
