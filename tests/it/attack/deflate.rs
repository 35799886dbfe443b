//! A zip bomb over permessage-deflate (RFC 7692): a peer sends a message that is small on the
//! wire and huge inflated. The server inflates at most its message size limit and closes with
//! 1009; the compressed frame is far below every header-checked limit, so only the bound while
//! inflating stops it. (The bound on the bytes held while inflating is asserted on the
//! protocol in `tether-codec`'s `deflate::tests`.)

use futures::StreamExt;
use tether::deflate::DeflateConfig;
use tether::{ClientBuilder, CloseCode, Config, Message};

use crate::facade::support::EchoServer;

const LIMIT: usize = 64 << 10;

#[tokio::test]
async fn rfc7692_zip_bomb_over_loopback_is_closed_with_1009() {
    let server = EchoServer::start(|server| {
        let mut config = Config::default();
        config
            .set_max_message_size(LIMIT)
            .set_deflate(Some(DeflateConfig::default()));
        server.config(config);
    })
    .await;
    let mut ws = ClientBuilder::new()
        .connect(&server.url("ws", "127.0.0.1"))
        .await
        .unwrap();
    assert!(ws.deflate().is_some(), "compression agreed");
    // At the limit: delivered.
    let fits = Message::binary(vec![0u8; LIMIT]);
    ws.send(fits.clone()).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap(), fits);
    // 8 MiB of zeros, a few KiB on the wire.
    ws.send(Message::binary(vec![0u8; 8 << 20])).await.unwrap();
    match ws.next().await.unwrap().unwrap() {
        Message::Close(Some(frame)) => assert_eq!(frame.code, CloseCode::MESSAGE_TOO_BIG),
        other => panic!("expected close 1009, got {other:?}"),
    }
    assert!(ws.next().await.is_none());
    drop(ws);
    server.stop().await;
}

#[tokio::test]
async fn rfc7692_defaults_client_offers_and_server_declines() {
    let server = EchoServer::start(|_| {}).await;
    let mut ws = ClientBuilder::new()
        .connect(&server.url("ws", "127.0.0.1"))
        .await
        .unwrap();
    assert_eq!(ws.deflate(), None, "a default server declines");
    let message = Message::text("x".repeat(1000));
    ws.send(message.clone()).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap(), message);
    ws.close(CloseCode::NORMAL, "").await.unwrap();
    server.stop().await;
}
