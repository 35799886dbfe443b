//! A zip bomb over permessage-deflate (RFC 7692): a peer sends a message that is small on the
//! wire and huge inflated. The server inflates at most its message size limit and closes with
//! 1009; the compressed frame is far below every header-checked limit, so only the bound while
//! inflating stops it. The bytes allocated while inflating are counted (a child process with
//! the counting allocator); the peak the message buffer holds is asserted on the protocol in
//! `tether-codec`'s `deflate::tests`.

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

/// A 64 MiB zip bomb (64 KiB on the wire) against a server `Protocol` limited to 64 KiB
/// messages: the counting allocator sees the inflated bytes stop near the limit. Without the
/// bound while inflating, the heap would take the whole 64 MiB before any size check.
#[test]
fn rfc7692_zip_bomb_allocates_about_the_limit_not_the_bomb() {
    crate::facade::support::measure_in_child(
        "attack::deflate::child_zip_bomb_allocations",
        std::time::Duration::from_secs(60),
    );
}

#[test]
#[ignore = "run by rfc7692_zip_bomb_allocates_about_the_limit_not_the_bomb in a child process"]
fn child_zip_bomb_allocations() {
    crate::facade::support::as_measuring_child(measure_zip_bomb);
}

fn measure_zip_bomb() {
    use bytes::BytesMut;
    use tether_codec::{Error, Frame, OpCode, Protocol};

    let deflate = DeflateConfig::default();
    let params = deflate.accept_response([Vec::new()]).unwrap().unwrap();
    let mut compressed = BytesMut::new();
    params
        .compressor(tether::deflate::Role::Client, &deflate)
        .compress(&vec![0u8; 64 << 20], &mut compressed)
        .unwrap();
    let mut wire = BytesMut::new();
    Frame::new(OpCode::Binary, compressed.freeze())
        .with_rsv1(true)
        .with_mask(Some([7, 7, 7, 7]))
        .encode(&mut wire);
    let mut codec = tether_codec::Config::default();
    codec.set_max_message_size(LIMIT);
    let mut server = Protocol::server(codec);
    server.set_deflate(params, &deflate);
    let wire_len = wire.len();
    assert!(
        wire_len < 128 << 10,
        "the bomb is small on the wire: {wire_len}"
    );
    *server.read_buffer() = wire;

    let before = crate::facade::support::allocator_stats();
    let result = server.poll_message();
    let after = crate::facade::support::allocator_stats();
    assert!(
        matches!(result, Err(Error::MessageTooLarge { limit: LIMIT, .. })),
        "{result:?}"
    );
    // Fresh allocations plus what reallocations grew by.
    let grown = (after.bytes_reallocated - before.bytes_reallocated).max(0) as usize;
    let allocated = after.bytes_allocated - before.bytes_allocated + grown;
    // The limit, the buffer's growth slack and the inflater's state (window and tables):
    // measured 146 098 bytes, against 64 MiB unbounded.
    assert!(
        allocated < 3 * LIMIT,
        "{allocated} bytes allocated for a {wire_len}-byte bomb"
    );
}
