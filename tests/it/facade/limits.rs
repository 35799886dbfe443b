//! Configured limits through the facade, at the limit and one past it.

use futures::StreamExt;
use tether::{CloseCode, Config, Error, Message};

use super::duplex::pair_with;

#[tokio::test]
async fn max_message_size_at_and_one_past_the_limit() {
    let mut config = Config::default();
    config
        .set_max_message_size(1000)
        .set_max_frame_payload(1000);
    let (mut client, mut server) = pair_with(1 << 16, &config).await;
    client.send(Message::binary(vec![1u8; 1000])).await.unwrap();
    assert_eq!(server.next().await.unwrap().unwrap().len(), 1000);
    client.send(Message::binary(vec![1u8; 1001])).await.unwrap();
    let err = server.next().await.unwrap().unwrap_err();
    assert!(matches!(
        err,
        Error::Protocol(tether::codec::Error::FrameTooLarge {
            len: 1001,
            limit: 1000
        })
    ));
    // RFC 6455 §7.4.1: the peer is told 1009.
    match client.next().await.unwrap().unwrap() {
        Message::Close(Some(frame)) => assert_eq!(frame.code, CloseCode::MESSAGE_TOO_BIG),
        other => panic!("expected a close, got {other:?}"),
    }
    assert!(server.next().await.is_none());
}

#[tokio::test]
async fn rfc6455_5_5_control_payload_of_125_sends_126_refused() {
    let (mut client, mut server) = pair_with(4096, &Config::default()).await;
    client
        .send(Message::Ping(vec![0u8; 125].into()))
        .await
        .unwrap();
    assert_eq!(
        server.next().await.unwrap().unwrap(),
        Message::Ping(vec![0u8; 125].into())
    );
    let err = client
        .send(Message::Ping(vec![0u8; 126].into()))
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        Error::Protocol(tether::codec::Error::ControlPayloadTooLong { len: 126 })
    ));
    // The connection is still usable.
    client.send(Message::text("still open")).await.unwrap();
    assert_eq!(
        server.next().await.unwrap().unwrap(),
        Message::text("still open")
    );
}
