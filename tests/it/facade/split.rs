//! `split()`: a reader and a writer in different tasks.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tether::{CloseCode, Message};

use super::duplex::pair;

#[tokio::test]
async fn rfc6455_5_5_2_reader_alone_answers_pings() {
    let (mut client, server) = pair(4096).await;
    let (mut reader, _writer) = server.split();
    // Only the reader is polled, in its own task; the writer sits idle here.
    let reading = tokio::spawn(async move {
        let mut got = Vec::new();
        while let Some(Ok(message)) = reader.next().await {
            let done = matches!(message, Message::Close(_));
            got.push(message);
            if done {
                break;
            }
        }
        got
    });
    for i in 0..3u8 {
        client.send(Message::Ping(vec![i; 4].into())).await.unwrap();
        let pong = tokio::time::timeout(Duration::from_secs(5), client.next())
            .await
            .expect("a pong within 5 s");
        assert_eq!(pong.unwrap().unwrap(), Message::Pong(vec![i; 4].into()));
    }
    client.close(CloseCode::NORMAL, "").await.unwrap();
    assert_eq!(reading.await.unwrap().len(), 4);
}

#[tokio::test]
async fn halves_in_two_tasks_send_and_receive_at_once() {
    let (client, server) = pair(1024).await;
    let (mut server_reader, mut server_writer) = server.split();
    let (mut client_reader, mut client_writer) = client.split();
    let server_sends = tokio::spawn(async move {
        for i in 0..500u32 {
            server_writer
                .feed(Message::text(format!("s{i}")))
                .await
                .unwrap();
        }
        server_writer.flush().await.unwrap();
        server_writer
    });
    let client_sends = tokio::spawn(async move {
        for i in 0..500u32 {
            client_writer
                .send(Message::text(format!("c{i}")))
                .await
                .unwrap();
        }
        client_writer
    });
    let server_reads = tokio::spawn(async move {
        for i in 0..500u32 {
            let got = server_reader.next().await.unwrap().unwrap();
            assert_eq!(got, Message::text(format!("c{i}")));
        }
        server_reader
    });
    for i in 0..500u32 {
        let got = client_reader.next().await.unwrap().unwrap();
        assert_eq!(got, Message::text(format!("s{i}")));
    }
    let mut client_writer = client_sends.await.unwrap();
    let mut server_reader = server_reads.await.unwrap();
    let _server_writer = server_sends.await.unwrap();
    // The writer's close completes when the reader sees the peer's answer.
    let server_sees_close = tokio::spawn(async move {
        let last = server_reader.next().await.unwrap().unwrap();
        assert!(server_reader.next().await.is_none());
        last
    });
    let client_reads_to_end = tokio::spawn(async move {
        let mut last = None;
        while let Some(message) = client_reader.next().await {
            last = Some(message.unwrap());
        }
        last
    });
    let answer = client_writer.close(CloseCode(4100), "split").await.unwrap();
    assert_eq!(answer.unwrap().code, CloseCode(4100));
    assert!(matches!(
        server_sees_close.await.unwrap(),
        Message::Close(Some(frame)) if frame.code == CloseCode(4100)
    ));
    assert!(matches!(
        client_reads_to_end.await.unwrap(),
        Some(Message::Close(Some(_)))
    ));
}

#[tokio::test]
async fn writer_closes_alone_once_the_reader_is_dropped() {
    let (client, mut server) = pair(4096).await;
    let (reader, mut writer) = client.split();
    drop(reader);
    let server_side = tokio::spawn(async move {
        server.send(Message::text("unread")).await.unwrap();
        while let Some(message) = server.next().await {
            message.unwrap();
        }
    });
    let answer = writer.close(CloseCode::GOING_AWAY, "").await.unwrap();
    assert_eq!(answer.unwrap().code, CloseCode::GOING_AWAY);
    server_side.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn writer_close_completes_when_the_reader_stops_at_the_close() {
    let (mut client, server) = pair(4096).await;
    let (mut reader, mut writer) = server.split();
    let reading = tokio::spawn(async move {
        // A common loop: stop at the close message, never poll to the end.
        while let Some(Ok(message)) = reader.next().await {
            if matches!(message, Message::Close(_)) {
                break;
            }
        }
        reader
    });
    let client_side = tokio::spawn(async move {
        while let Some(message) = client.next().await {
            message.unwrap();
        }
    });
    let start = tokio::time::Instant::now();
    let answer = writer.close(CloseCode::NORMAL, "").await.unwrap();
    assert_eq!(answer.unwrap().code, CloseCode::NORMAL);
    assert_eq!(
        start.elapsed(),
        Duration::ZERO,
        "no wait for the close timeout"
    );
    let _reader = reading.await.unwrap();
    client_side.await.unwrap();
}
