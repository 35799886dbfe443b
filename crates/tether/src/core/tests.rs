//! The driver against a pipe: idle buffers, the write buffer's bounds, reads sized from the
//! frame header, backpressure.

use std::future::poll_fn;
use std::task::Context;

use tether_codec::State;
use tokio::io::AsyncWriteExt;

use super::*;
use crate::buffer_stock;
use crate::read_room::READ_CHUNK;

fn server(io: tokio::io::DuplexStream) -> Core<tokio::io::DuplexStream> {
    Core::new(io, Role::Server, &Config::default(), BytesMut::new())
}

#[tokio::test]
async fn leftover_bytes_are_decoded_before_reading() {
    let (_peer, io) = tokio::io::duplex(64);
    // RFC 6455 §5.7: a masked "Hello", as if read together with the handshake.
    let leftover = BytesMut::from(
        &[
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ][..],
    );
    let mut core = Core::new(io, Role::Server, &Config::default(), leftover);
    let message = poll_fn(|cx| core.poll_next(cx)).await;
    assert_eq!(message.unwrap().unwrap(), Message::text("Hello"));
}

#[tokio::test]
async fn idle_connection_holds_no_buffer_memory() {
    let (mut peer, io) = tokio::io::duplex(64);
    let mut core = server(io);
    peer.write_all(&[
        0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ])
    .await
    .unwrap();
    let message = poll_fn(|cx| core.poll_next(cx)).await;
    assert_eq!(message.unwrap().unwrap(), Message::text("Hello"));
    // The next poll finds nothing to read and goes idle.
    let mut cx = Context::from_waker(futures_util::task::noop_waker_ref());
    assert!(core.poll_next(&mut cx).is_pending());
    assert_eq!(core.protocol.read_buffer().capacity(), 0);
    assert_eq!(core.protocol.write_buffer().capacity(), 0);
}

/// A read buffer that a message the application holds still shares, but with room left,
/// becomes a spare at an idle moment: handed to the stock, only its own room would have been
/// measured, and the stock would have kept the whole allocation once the message was gone.
/// Here the allocation held a large message first, so it is past the stock's small bound.
#[tokio::test]
async fn an_idle_read_buffer_a_held_message_shares_is_a_spare_not_the_stocks() {
    let (mut peer, io) = tokio::io::duplex(1 << 20);
    let mut core = server(io);
    let mut cx = Context::from_waker(futures_util::task::noop_waker_ref());
    let large = vec![7u8; 300 << 10];
    let mut wire = BytesMut::new();
    tether_codec::Frame::new(OpCode::Binary, large)
        .with_mask(Some([1, 2, 3, 4]))
        .encode(&mut wire);
    tether_codec::Frame::new(OpCode::Binary, vec![8u8; 100])
        .with_mask(Some([1, 2, 3, 4]))
        .encode(&mut wire);
    peer.write_all(&wire).await.unwrap();
    let first = poll_fn(|cx| core.poll_next(cx)).await.unwrap().unwrap();
    assert_eq!(first.len(), 300 << 10);
    drop(first);
    let held = poll_fn(|cx| core.poll_next(cx)).await.unwrap().unwrap();
    assert_eq!(held.len(), 100);
    assert!(core.poll_next(&mut cx).is_pending(), "idle");
    assert_eq!(core.protocol.read_buffer().capacity(), 0);
    assert!(buffer_stock::take_fitting(buffer_stock::MAX_CAPACITY + 1).is_none());
    // What the small tier holds (the first read buffer, replaced by a larger one) holds
    // nothing of the large allocation, also once the message is gone.
    let small: Vec<_> = std::iter::from_fn(buffer_stock::take).collect();
    drop(held);
    for mut buf in small {
        assert!(!buf.try_reclaim(buffer_stock::MAX_CAPACITY + 1));
    }
    // The next idle moment hands the allocation to the stock, measured: the large tier's.
    assert!(core.poll_next(&mut cx).is_pending());
    assert!(buffer_stock::take_fitting(buffer_stock::MAX_CAPACITY + 1).is_some());
}

/// A busy connection keeps a written write buffer of up to the stock's MAX_CAPACITY (one
/// that held a 64 KiB message serves the next without an allocation); one that grew past
/// it, holding many messages queued at once, is freed.
#[tokio::test]
async fn a_written_write_buffer_is_kept_up_to_the_idle_capacity_and_freed_past_it() {
    let (_peer, io) = tokio::io::duplex(1 << 20);
    let mut core = server(io);
    // Provided before the send, as the buffer stock does.
    core.protocol
        .write_buffer()
        .reserve(buffer_stock::MAX_CAPACITY);
    core.start_send(Message::binary(Vec::new()))
        .expect("queued");
    poll_fn(|cx| core.poll_flush(cx)).await.expect("written");
    assert!(
        core.protocol
            .write_buffer()
            .try_reclaim(buffer_stock::MAX_CAPACITY),
        "kept"
    );
    // Copied messages (below the size queued by reference) fill it past the stock's size.
    let message = Message::binary(vec![7u8; 1 << 10]);
    for _ in 0..=(buffer_stock::MAX_CAPACITY >> 10) {
        core.start_send(message.clone()).expect("queued");
    }
    assert!(core.protocol.write_buffer().capacity() > buffer_stock::MAX_CAPACITY);
    poll_fn(|cx| core.poll_flush(cx)).await.expect("written");
    assert_eq!(core.protocol.write_buffer().capacity(), 0, "freed");
}

/// A client's masked copy of a 1 MiB message fills its write buffer to the end; written,
/// the allocation leaves the connection (for the thread's stock), though no room is left
/// after the write position, and the next large message is copied into it again.
#[tokio::test]
async fn a_client_write_buffer_that_held_a_large_message_leaves_once_written_and_serves_the_next() {
    let (_peer, io) = tokio::io::duplex(4 << 20);
    let mut core = Core::new(io, Role::Client, &Config::default(), BytesMut::new());
    let message = Message::binary(vec![7u8; 1 << 20]);
    core.start_send(message.clone()).expect("queued");
    let first = core.protocol.write_buffer().as_ptr();
    poll_fn(|cx| core.poll_flush(cx)).await.expect("written");
    let buf = core.protocol.write_buffer();
    assert!(
        !buf.try_reclaim(buffer_stock::MAX_CAPACITY + 1),
        "{}",
        buf.capacity()
    );
    core.start_send(message).expect("queued");
    assert_eq!(core.protocol.write_buffer().as_ptr(), first, "taken back");
}

/// A binary frame header announcing `len` bytes, masked, as a client sends it.
fn announce(len: u64) -> Vec<u8> {
    let mut wire = vec![0x82, 0xff];
    wire.extend_from_slice(&len.to_be_bytes());
    wire.extend_from_slice(&[1, 2, 3, 4]);
    wire
}

/// Reads are sized from the announced payload, but a peer that announces much and sends
/// little makes the read buffer hold at most READ_AHEAD beyond what arrived (rounded up to
/// the buffer stock's grain for large allocations).
#[tokio::test]
async fn announced_payload_sizes_the_read_within_read_ahead() {
    for (len, most) in [
        (64 << 10, (64 << 10) + READ_CHUNK),
        (8 << 20, READ_AHEAD + buffer_stock::LARGE_GRAIN),
    ] {
        let (mut peer, io) = tokio::io::duplex(64);
        let mut core = server(io);
        peer.write_all(&announce(len as u64)).await.unwrap();
        peer.write_all(b"abc").await.unwrap();
        let mut cx = Context::from_waker(futures_util::task::noop_waker_ref());
        assert!(core.poll_next(&mut cx).is_pending());
        let capacity = core.protocol.read_buffer().capacity();
        // The room for the announced rest was made before the last read.
        assert!(capacity >= len.min(READ_AHEAD), "{len}: {capacity}");
        assert!(capacity <= most, "{len}: {capacity}");
    }
}

/// `count` masked pings of `len` bytes each, as a client sends them.
fn pings(count: usize, len: usize) -> BytesMut {
    let mut wire = BytesMut::new();
    for _ in 0..count {
        tether_codec::Frame::new(OpCode::Ping, vec![b'p'; len])
            .with_mask(Some([1, 2, 3, 4]))
            .encode(&mut wire);
    }
    wire
}

/// DESIGN.md, "What a peer controls is bounded": while the write buffer is at its limit
/// the driver reads nothing, so a peer that does not read is pushed back by the transport.
#[tokio::test(start_paused = true)]
async fn full_write_buffer_stops_reading_until_it_drains() {
    let (peer, io) = tokio::io::duplex(1024);
    let (mut peer_rd, mut peer_wr) = tokio::io::split(peer);
    let mut config = Config::default();
    config.set_write_buffer_limit(4096);
    let mut core = Core::new(io, Role::Server, &config, BytesMut::new());
    assert!(core
        .offer(Message::binary(vec![0u8; 8192]))
        .unwrap()
        .is_none());
    let flood = pings(1000, 125);
    let wait = Duration::from_secs(1);
    let (next, written) = tokio::join!(
        tokio::time::timeout(wait, poll_fn(|cx| core.poll_next(cx))),
        tokio::time::timeout(wait, peer_wr.write_all(&flood)),
    );
    assert!(next.is_err(), "nothing delivered while the writes wait");
    assert!(written.is_err(), "the peer was pushed back");
    assert!(core.protocol.read_buffer().is_empty(), "nothing read");
    assert!(core.buffered() <= 8192 + 4);
    // The peer reads: the buffer drains and reading resumes.
    let draining = tokio::spawn(async move {
        let mut sink = vec![0u8; 1 << 16];
        while tokio::io::AsyncReadExt::read(&mut peer_rd, &mut sink)
            .await
            .unwrap()
            > 0
        {}
    });
    let next = poll_fn(|cx| core.poll_next(cx)).await;
    assert!(matches!(next, Some(Ok(Message::Ping(_)))));
    draining.abort();
}

/// `Config::set_idle_timeout`: nothing received for the timeout closes with 1001; every
/// byte received restarts it (here a ping at 20 s moves the end from 30 s to 50 s).
#[tokio::test(start_paused = true)]
async fn idle_timeout_closes_with_1001_and_reads_restart_it() {
    let (mut peer, io) = tokio::io::duplex(1024);
    let mut config = Config::default();
    let timeout = Duration::from_secs(30);
    config.set_idle_timeout(Some(timeout));
    let mut core = Core::new(io, Role::Server, &config, BytesMut::new());
    let start = tokio::time::Instant::now();
    let quiet = tokio::time::timeout(Duration::from_secs(20), poll_fn(|cx| core.poll_next(cx)));
    assert!(quiet.await.is_err(), "not idle before the timeout");
    peer.write_all(&pings(1, 0)).await.unwrap();
    let ping = poll_fn(|cx| core.poll_next(cx)).await;
    assert!(matches!(ping, Some(Ok(Message::Ping(_)))));
    let idle = poll_fn(|cx| core.poll_next(cx)).await;
    assert!(matches!(idle, Some(Err(Error::IdleTimeout(d))) if d == timeout));
    assert_eq!(start.elapsed(), Duration::from_secs(50));
    assert_eq!(core.protocol.state(), State::Closing);
    let mut wire = [0u8; 2 + 2 + 2 + 12];
    tokio::io::AsyncReadExt::read_exact(&mut peer, &mut wire)
        .await
        .unwrap();
    assert_eq!(&wire[..4], [0x8a, 0x00, 0x88, 14], "the pong, then a close");
    assert_eq!(&wire[4..6], 1001u16.to_be_bytes());
    assert_eq!(&wire[6..], b"idle timeout");
}

#[tokio::test]
async fn parked_message_goes_out_before_later_ones() {
    let (mut peer, io) = tokio::io::duplex(1);
    let mut config = Config::default();
    config.set_write_buffer_limit(10);
    let mut core = Core::new(io, Role::Server, &config, BytesMut::new());
    assert!(core
        .offer(Message::binary(vec![1u8; 20]))
        .unwrap()
        .is_none());
    assert!(
        core.offer(Message::binary(vec![2u8; 20]))
            .unwrap()
            .is_none(),
        "parked"
    );
    let third = core.offer(Message::binary(vec![3u8; 1])).unwrap();
    assert_eq!(
        third,
        Some(Message::binary(vec![3u8; 1]).into()),
        "the slot is taken"
    );
    let reading = tokio::spawn(async move {
        let mut all = vec![0u8; 44];
        tokio::io::AsyncReadExt::read_exact(&mut peer, &mut all)
            .await
            .unwrap();
        all
    });
    poll_fn(|cx| core.poll_flush(cx)).await.unwrap();
    let all = reading.await.unwrap();
    assert_eq!(&all[..2], [0x82, 20]);
    assert!(all[2..22].iter().all(|&b| b == 1));
    assert_eq!(&all[22..24], [0x82, 20]);
    assert!(all[24..].iter().all(|&b| b == 2));
}
