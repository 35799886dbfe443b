//! A close to a peer that never reads: the close timeout bounds `WebSocket::close`,
//! `Sink::poll_close` and `WebSocketWriter::close` in every state (DESIGN.md, "What a peer
//! controls is bounded"). Before the fix, `close` waited on the write before it ever looked at
//! the deadline, and waited forever.
//!
//! A pipe of 64 bytes and a paused clock: the peer's stalled reading is exact, and the timeout
//! is measured on the virtual clock, to the millisecond.

use std::fmt::Debug;
use std::future::Future;
use std::time::Duration;

use bytes::BytesMut;
use futures::{SinkExt, StreamExt};
use tether::{CloseCode, Config, Error, Message, WebSocket};
use tether_codec::{Frame, OpCode};
use tokio::io::{AsyncWriteExt, DuplexStream};
use tokio::time::Instant;

use super::flood::{accept_io, masked, raw_handshake};

const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Our server over a 64-byte pipe whose client end is raw and never reads, with 4 KiB queued
/// and unwritten: the write buffer cannot drain.
async fn stalled_server() -> (WebSocket<DuplexStream>, DuplexStream) {
    stalled_server_with_limit(1024).await
}

/// [`stalled_server`] with a write buffer limit of `limit` bytes.
async fn stalled_server_with_limit(limit: usize) -> (WebSocket<DuplexStream>, DuplexStream) {
    let mut config = Config::default();
    config
        .set_close_timeout(Some(CLOSE_TIMEOUT))
        .set_write_buffer_limit(limit);
    let (client_io, server_io) = tokio::io::duplex(64);
    let (mut ws, raw) = tokio::join!(accept_io(server_io, &config), raw_handshake(client_io));
    ws.feed(Message::binary(vec![0u8; 4096])).await.unwrap();
    (ws, raw)
}

/// `closing` ends with [`Error::CloseTimeout`] exactly when the close timeout passes.
async fn ends_at_the_close_timeout<T: Debug>(closing: impl Future<Output = Result<T, Error>>) {
    let start = Instant::now();
    let result = tokio::time::timeout(10 * CLOSE_TIMEOUT, closing)
        .await
        .expect("the close outlived its timeout");
    assert!(
        matches!(result, Err(Error::CloseTimeout(d)) if d == CLOSE_TIMEOUT),
        "{result:?}"
    );
    assert_eq!(start.elapsed(), CLOSE_TIMEOUT);
}

#[tokio::test(start_paused = true)]
async fn websocket_close_to_a_peer_that_never_reads_ends_at_the_timeout() {
    let (mut ws, _raw) = stalled_server().await;
    ends_at_the_close_timeout(ws.close(CloseCode::NORMAL, "")).await;
    assert!(ws.next().await.is_none(), "ended for good");
}

#[tokio::test(start_paused = true)]
async fn sink_close_to_a_peer_that_never_reads_ends_at_the_timeout() {
    let (mut ws, _raw) = stalled_server().await;
    ends_at_the_close_timeout(SinkExt::close(&mut ws)).await;
    assert!(ws.next().await.is_none(), "ended for good");
}

#[tokio::test(start_paused = true)]
async fn writer_close_with_the_reader_dropped_ends_at_the_timeout() {
    let (ws, _raw) = stalled_server().await;
    let (reader, mut writer) = ws.split();
    drop(reader);
    ends_at_the_close_timeout(writer.close(CloseCode::NORMAL, "")).await;
}

#[tokio::test(start_paused = true)]
async fn writer_close_with_an_idle_reader_ends_at_the_timeout() {
    let (ws, _raw) = stalled_server().await;
    let (_reader, mut writer) = ws.split();
    ends_at_the_close_timeout(writer.close(CloseCode::NORMAL, "")).await;
}

#[tokio::test(start_paused = true)]
async fn writer_sink_close_ends_at_the_timeout() {
    let (ws, _raw) = stalled_server().await;
    let (reader, mut writer) = ws.split();
    drop(reader);
    ends_at_the_close_timeout(SinkExt::close(&mut writer)).await;
}

/// A send parked behind the full buffer (and cancelled) does not hold the close up.
#[tokio::test(start_paused = true)]
async fn close_with_a_parked_message_ends_at_the_timeout() {
    let (mut ws, _raw) = stalled_server().await;
    let parked = tokio::time::timeout(
        Duration::from_secs(1),
        ws.send(Message::binary(vec![1u8; 100])),
    );
    assert!(parked.await.is_err(), "parked behind the full buffer");
    ends_at_the_close_timeout(ws.close(CloseCode::NORMAL, "")).await;
}

/// The peer's close arrived but the echo cannot be written: the deadline armed when the
/// close arrived still bounds the end. (The limit is above what is queued, so the server
/// still reads and sees the close.)
#[tokio::test(start_paused = true)]
async fn close_after_the_peers_close_ends_at_the_timeout() {
    let (mut ws, mut raw) = stalled_server_with_limit(64 << 10).await;
    let mut wire = BytesMut::new();
    masked(Frame::new(OpCode::Close, &b"\x03\xe8"[..]), &mut wire);
    raw.write_all(&wire).await.unwrap();
    let next = tokio::time::timeout(CLOSE_TIMEOUT / 2, ws.next()).await;
    assert!(
        matches!(next, Ok(Some(Ok(Message::Close(Some(_)))))),
        "{next:?}"
    );
    ends_at_the_close_timeout(ws.close(CloseCode::NORMAL, "")).await;
}
