//! The closing handshake (RFC 6455 §7): who closes TCP first, timeouts, failures.

use std::time::Duration;

use futures::StreamExt;
use tether::{CloseCode, Config, Error, Message};
use tether_codec::OpCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use super::raw::{masked, raw_client, raw_server, read_to_end, unmasked};

fn close_timeout(secs: u64) -> Config {
    let mut config = Config::default();
    config.set_close_timeout(Some(Duration::from_secs(secs)));
    config
}

#[tokio::test(start_paused = true)]
async fn rfc6455_7_1_1_server_closes_tcp_first() {
    let (mut raw, mut server) = raw_client(&Config::default(), 4096).await;
    raw.write_all(&masked(OpCode::Close, b"\x03\xe8bye"))
        .await
        .unwrap();
    let start = Instant::now();
    assert!(matches!(
        server.next().await,
        Some(Ok(Message::Close(Some(frame)))) if frame.code == CloseCode::NORMAL && frame.reason == "bye"
    ));
    assert!(server.next().await.is_none());
    // The echo, then end of input at once: the server closed its side without waiting.
    let got = read_to_end(&mut raw).await;
    assert_eq!(got, &unmasked(OpCode::Close, b"\x03\xe8bye")[..]);
    assert_eq!(start.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn rfc6455_7_1_1_client_waits_for_the_server_to_close_tcp() {
    let (mut client, mut raw) = raw_server(&close_timeout(3), 4096).await;
    let start = Instant::now();
    let closing = tokio::spawn(async move {
        let answer = client.close(CloseCode(4000), "done").await;
        (client, answer)
    });
    // The raw server answers the close but keeps TCP open.
    let mut head = [0u8; 2];
    raw.read_exact(&mut head).await.unwrap();
    assert_eq!(head, [0x88, 0x86], "a masked close with 6 bytes of payload");
    let mut rest = [0u8; 10];
    raw.read_exact(&mut rest).await.unwrap();
    raw.write_all(&unmasked(OpCode::Close, b"\x0f\xa0done"))
        .await
        .unwrap();
    let (mut client, answer) = closing.await.unwrap();
    // The handshake itself succeeded; the client waited the close timeout for the server's
    // TCP close, then closed its side.
    assert_eq!(answer.unwrap().unwrap().code, CloseCode(4000));
    assert_eq!(start.elapsed(), Duration::from_secs(3));
    assert!(client.next().await.is_none());
    assert!(read_to_end(&mut raw).await.is_empty());
}

#[tokio::test(start_paused = true)]
async fn close_timeout_when_the_peer_never_answers() {
    let (mut client, _raw) = raw_server(&close_timeout(2), 4096).await;
    let start = Instant::now();
    let result = client.close(CloseCode::NORMAL, "").await;
    assert!(matches!(result, Err(Error::CloseTimeout(d)) if d == Duration::from_secs(2)));
    assert_eq!(start.elapsed(), Duration::from_secs(2));
    // Ended, and stays ended: no spinning, no endless errors.
    for _ in 0..3 {
        assert!(client.next().await.is_none());
    }
}

#[tokio::test(start_paused = true)]
async fn rfc6455_7_1_7_protocol_error_sends_1002_then_ends() {
    let (mut raw, mut server) = raw_client(&Config::default(), 4096).await;
    // RFC 6455 §5.1: a client frame without a mask.
    raw.write_all(&unmasked(OpCode::Text, b"hi")).await.unwrap();
    let err = server.next().await.unwrap().unwrap_err();
    assert!(matches!(
        err,
        Error::Protocol(tether::codec::Error::UnmaskedFrame)
    ));
    assert_eq!(err.close_code(), Some(CloseCode::PROTOCOL_ERROR));
    assert!(server.next().await.is_none());
    assert!(server.next().await.is_none());
    let got = read_to_end(&mut raw).await;
    assert_eq!(&got[..4], [0x88, got[1], 0x03, 0xea], "close 1002 first");
}

/// A whole single-frame text is taken in one step by the driver: when it is not UTF-8, that
/// step fails the connection and the failure still reaches the reader once, with 1007 sent.
/// The bad text is chosen so that unmasking it a second time would read "ab": a frame left
/// to be decoded again after the step unmasked it would show.
#[tokio::test(start_paused = true)]
async fn rfc6455_8_1_invalid_utf8_in_a_whole_text_sends_1007_then_ends() {
    let (mut raw, mut server) = raw_client(&Config::default(), 4096).await;
    let mut frames = masked(OpCode::Text, "café".as_bytes());
    // "ab" masked with the raw client's key (37 fa ...): 0x98 cannot start a character.
    frames.extend_from_slice(&masked(OpCode::Text, &[b'a' ^ 0x37, b'b' ^ 0xfa]));
    frames.extend_from_slice(&masked(OpCode::Text, b"never read"));
    raw.write_all(&frames).await.unwrap();
    assert_eq!(server.next().await.unwrap().unwrap(), Message::text("café"));
    let err = server.next().await.unwrap().unwrap_err();
    assert!(matches!(
        err,
        Error::Protocol(tether::codec::Error::InvalidUtf8)
    ));
    assert_eq!(err.close_code(), Some(CloseCode::INVALID_PAYLOAD));
    assert!(server.next().await.is_none());
    let got = read_to_end(&mut raw).await;
    assert_eq!(&got[..4], [0x88, got[1], 0x03, 0xef], "close 1007");
}

#[tokio::test]
async fn rfc6455_7_1_5_dropped_transport_is_abnormal_once() {
    let (raw, mut server) = raw_client(&Config::default(), 4096).await;
    drop(raw);
    let err = server.next().await.unwrap().unwrap_err();
    assert!(matches!(err, Error::AbnormalClosure));
    assert_eq!(err.close_code(), Some(CloseCode::ABNORMAL));
    assert!(server.next().await.is_none());
    assert!(server.next().await.is_none());
}

#[tokio::test]
async fn close_with_an_unsendable_code_sends_nothing() {
    let (mut client, _raw) = raw_server(&Config::default(), 4096).await;
    let err = client.close(CloseCode::ABNORMAL, "").await.unwrap_err();
    assert!(matches!(
        err,
        Error::Protocol(tether::codec::Error::UnsendableCloseCode(1006))
    ));
    assert_eq!(client.state(), tether::State::Open);
    assert_eq!(client.buffered_amount(), 0);
}

#[tokio::test(start_paused = true)]
async fn close_timeout_holds_against_a_peer_that_keeps_sending() {
    let (mut client, mut raw) = raw_server(&close_timeout(2), 1 << 16).await;
    // The raw server ignores our close and sends a text frame every 100 ms.
    let chatter = tokio::spawn(async move {
        let frame = unmasked(OpCode::Text, b"still talking");
        while raw.write_all(&frame).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let start = Instant::now();
    let result = client.close(CloseCode::NORMAL, "").await;
    assert!(matches!(result, Err(Error::CloseTimeout(_))), "{result:?}");
    assert_eq!(start.elapsed(), Duration::from_secs(2));
    assert!(client.next().await.is_none());
    chatter.abort();
}
