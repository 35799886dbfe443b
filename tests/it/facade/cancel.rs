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

/// The lossless select! pattern: `ready()` is the branch that may be cancelled, and the send
/// that follows takes its message at once, so even a send future dropped unpolled loses
/// nothing, however often the wait for room is cancelled.
#[tokio::test]
async fn cancelled_ready_then_dropped_send_loses_no_message() {
    const MESSAGES: u8 = 40;
    let (mut client, mut server) = pair(64).await;
    // Reads until the client goes away, so a lost message shows as a short list, not a hang.
    let reading = tokio::spawn(async move {
        let mut got = Vec::new();
        while let Some(Ok(message)) = server.next().await {
            got.push(message);
        }
        got
    });
    let mut cancelled = 0u32;
    for i in 0..MESSAGES {
        loop {
            tokio::select! {
                biased;
                ready = client.ready() => {
                    ready.unwrap();
                    drop(client.send(Message::binary(vec![i; 10_000])));
                    break;
                }
                () = tokio::task::yield_now() => cancelled += 1,
            }
        }
    }
    client.flush().await.unwrap();
    drop(client);
    let got = reading.await.unwrap();
    // Each message as the byte it repeats, so a loss shows as a short, readable list.
    let got: Vec<u8> = got
        .iter()
        .map(|message| match message {
            Message::Binary(data) if data.len() == 10_000 && data.iter().all(|b| *b == data[0]) => {
                data[0]
            }
            other => panic!("unexpected message of {} bytes", other.len()),
        })
        .collect();
    let expected: Vec<u8> = (0..MESSAGES).collect();
    assert_eq!(got, expected, "every message arrives, in order");
    assert!(
        cancelled > 0,
        "the buffer filled up, so some waits for room were cancelled"
    );
}
