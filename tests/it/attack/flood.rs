//! Floods over loopback TCP: pings from a peer that never reads (RFC 6455 §5.5.3 and read-side
//! backpressure), and fragments that carry nothing (per-fragment overhead against the message
//! limit).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use futures::{SinkExt, StreamExt};
use tether::{accept_or_plain, Accept, Accepted, CloseCode, Config, Error, Message, WebSocket};
use tether_codec::{CloseFrame, Frame, OpCode};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

/// Socket buffer size asked for on both ends (Linux doubles it); the bounds below are far
/// above the socket buffers and far below the floods.
const SOCKET_BUFFER: u32 = 16 << 10;
/// A masked ping with 125 bytes of payload: the largest control frame.
const PING_WIRE: usize = 2 + 4 + 125;
/// A pong with 125 bytes of payload, as a server sends it.
const PONG_WIRE: usize = 2 + 125;

/// A listener on loopback whose accepted sockets inherit small buffers.
fn listener() -> TcpListener {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_send_buffer_size(SOCKET_BUFFER).unwrap();
    socket.set_recv_buffer_size(SOCKET_BUFFER).unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    socket.listen(8).unwrap()
}

/// Accepts one connection and runs our server handshake with `config`.
async fn accept_one(listener: &TcpListener, config: &Config) -> WebSocket<TcpStream> {
    let (stream, _) = listener.accept().await.unwrap();
    accept_io(stream, config).await
}

/// A hostile client: small socket buffers, the opening handshake written by hand, then only
/// what the test does with the stream.
async fn hostile_client(addr: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(SOCKET_BUFFER).unwrap();
    socket.set_send_buffer_size(SOCKET_BUFFER).unwrap();
    raw_handshake(socket.connect(addr).await.unwrap()).await
}

/// The client side of the opening handshake, written by hand over `io`; returns `io` with
/// nothing past the 101 read from it.
pub(super) async fn raw_handshake<S: AsyncRead + AsyncWrite + Unpin>(mut io: S) -> S {
    io.write_all(
        b"GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n\
          Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
          Sec-WebSocket-Version: 13\r\n\r\n",
    )
    .await
    .unwrap();
    // The 101 byte by byte up to its blank line, so no frame byte is taken with it.
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(io.read_u8().await.unwrap());
    }
    assert!(head.starts_with(b"HTTP/1.1 101"), "{head:?}");
    io
}

/// Runs our server handshake with `config` over `io`.
pub(super) async fn accept_io<S: AsyncRead + AsyncWrite + Unpin>(
    io: S,
    config: &Config,
) -> WebSocket<S> {
    match accept_or_plain(io, config, |_| Ok(Accept::new()))
        .await
        .unwrap()
    {
        Accepted::WebSocket(ws, _) => *ws,
        _ => panic!("expected an upgrade"),
    }
}

/// `frame` as a client sends it (masked).
pub(super) fn masked(frame: Frame, wire: &mut BytesMut) {
    frame.with_mask(Some([0x37, 0xfa, 0x21, 0x3d])).encode(wire);
}

/// Our server (with `config`) and a hostile client, connected over loopback.
async fn connect(config: &Config) -> (WebSocket<TcpStream>, TcpStream) {
    let listener = listener();
    let addr = listener.local_addr().unwrap();
    tokio::join!(accept_one(&listener, config), hostile_client(addr))
}

/// `count` masked pings of 125 bytes.
fn pings(count: usize) -> BytesMut {
    let mut wire = BytesMut::new();
    for _ in 0..count {
        masked(Frame::new(OpCode::Ping, vec![b'p'; 125]), &mut wire);
    }
    wire
}

/// What the server saw of a flood.
#[derive(Debug, Default)]
struct Seen {
    pings: AtomicUsize,
    max_buffered: AtomicUsize,
}

/// Reads `ws` to its end, counting pings and the largest write buffer met after each event.
async fn count_pings(mut ws: WebSocket<TcpStream>, seen: Arc<Seen>) -> WebSocket<TcpStream> {
    while let Some(message) = ws.next().await {
        seen.max_buffered
            .fetch_max(ws.buffered_amount(), Ordering::Relaxed);
        match message {
            Ok(Message::Ping(_)) => {
                seen.pings.fetch_add(1, Ordering::Relaxed);
            }
            Ok(other) => panic!("unexpected {other:?}"),
            Err(Error::AbnormalClosure) => {}
            Err(err) => panic!("unexpected {err}"),
        }
    }
    ws
}

/// RFC 6455 §5.5.3 over TCP: 32 MiB of 125-byte pings from a client that shrank its receive
/// buffer and never reads. The server answers only the latest ping, so its write buffer holds
/// at most two pongs (one being written, one owed) however long the flood lasts. Before the
/// fix every ping queued a pong: the buffer grew with the flood.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc6455_5_5_3_ping_flood_from_a_peer_that_never_reads_buffers_one_pong() {
    const FLOOD: usize = 32 << 20;
    let (server, mut client) = connect(&Config::default()).await;
    let seen = Arc::new(Seen::default());
    let serving = tokio::spawn(count_pings(server, seen.clone()));
    let batch = pings(500);
    let mut sent = 0;
    while sent < FLOOD {
        client.write_all(&batch).await.unwrap();
        sent += batch.len();
        let buffered = seen.max_buffered.load(Ordering::Relaxed);
        assert!(
            buffered <= 2 * PONG_WIRE,
            "{buffered} bytes buffered after {sent}"
        );
    }
    client.shutdown().await.unwrap();
    let _server = tokio::time::timeout(Duration::from_secs(30), serving)
        .await
        .expect("the server reads the whole flood")
        .unwrap();
    assert_eq!(seen.pings.load(Ordering::Relaxed), sent / PING_WIRE);
    assert!(seen.max_buffered.load(Ordering::Relaxed) <= 2 * PONG_WIRE);
}

/// How the server under a ping flood is driven: one `WebSocket`, or its split halves.
#[derive(Debug, Clone, Copy)]
enum Driver {
    Whole,
    Split,
}

/// Our server with a 1 MiB message queued (the write buffer far past its 64 KiB limit) that
/// the client never reads, counting the pings it reads meanwhile; and the client.
async fn stalled_server_under_flood(driver: Driver) -> (Arc<Seen>, TcpStream) {
    let mut config = Config::default();
    config.set_write_buffer_limit(FLOOD_LIMIT);
    let (mut server, client) = connect(&config).await;
    let seen = Arc::new(Seen::default());
    match driver {
        Driver::Whole => {
            // Below the limit: taken into the buffer without waiting; it never drains.
            server
                .feed(Message::binary(vec![0u8; FLOOD_MESSAGE]))
                .await
                .unwrap();
            tokio::spawn(count_pings(server, seen.clone()));
        }
        Driver::Split => {
            let (mut reader, mut writer) = server.split();
            writer
                .feed(Message::binary(vec![0u8; FLOOD_MESSAGE]))
                .await
                .unwrap();
            let seen = seen.clone();
            tokio::spawn(async move {
                while let Some(Ok(message)) = reader.next().await {
                    assert!(matches!(message, Message::Ping(_)), "{message:?}");
                    seen.pings.fetch_add(1, Ordering::Relaxed);
                    seen.max_buffered
                        .fetch_max(writer.buffered_amount(), Ordering::Relaxed);
                }
            });
        }
    }
    (seen, client)
}

const FLOOD_LIMIT: usize = 64 << 10;
const FLOOD_MESSAGE: usize = 1 << 20;

/// Read-side backpressure over TCP: while the server's write buffer is at its limit (a large
/// message the client does not read), the server reads nothing more, so the client's ping
/// flood is pushed back by TCP after the socket buffers instead of being read and answered.
/// Before the fix the server kept reading: the client wrote all 32 MiB.
async fn full_write_buffer_pushes_the_flood_back(driver: Driver) {
    const FLOOD: usize = 32 << 20;
    let (seen, mut client) = stalled_server_under_flood(driver).await;
    let batch = pings(500);
    let mut sent = 0;
    let mut pushed_back = false;
    while sent < FLOOD {
        // No paused clock over real sockets: a write that makes no progress for half a
        // second is the event "TCP pushes back".
        match tokio::time::timeout(Duration::from_millis(500), client.write_all(&batch)).await {
            Ok(written) => {
                written.unwrap();
                sent += batch.len();
            }
            Err(_) => {
                pushed_back = true;
                break;
            }
        }
    }
    assert!(
        pushed_back,
        "{driver:?}: the server kept reading, {sent} bytes taken"
    );
    assert!(
        sent < 4 << 20,
        "{driver:?}: {sent} bytes taken before the push-back"
    );
    assert!(seen.pings.load(Ordering::Relaxed) * PING_WIRE <= sent + batch.len());
    let max_buffered = seen.max_buffered.load(Ordering::Relaxed);
    assert!(
        max_buffered <= FLOOD_MESSAGE + 10 + 2 * PONG_WIRE,
        "{driver:?}: {max_buffered} bytes buffered"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_write_buffer_stops_reading_and_tcp_pushes_the_flood_back() {
    full_write_buffer_pushes_the_flood_back(Driver::Whole).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_reader_stops_reading_while_the_writers_buffer_is_full() {
    full_write_buffer_pushes_the_flood_back(Driver::Split).await;
}

/// What a fragment flood ended with.
#[derive(Debug)]
struct FragmentOutcome {
    /// What the server's stream yielded first.
    first: Result<Message, Error>,
    /// The close frame the client received, if any.
    close: Option<CloseFrame>,
}

/// A binary message of one `piece`-byte first fragment and `continuations` fragments of
/// `piece` bytes (the last with FIN), then 1000 more empty continuations as if the flood went
/// on, against a server with `limit` as its message size (64 bytes charged per continuation).
async fn fragment_flood(piece: usize, continuations: usize, limit: usize) -> FragmentOutcome {
    let mut config = Config::default();
    config.set_max_message_size(limit);
    let (mut server, mut client) = connect(&config).await;
    let mut wire = BytesMut::new();
    masked(
        Frame::new(OpCode::Binary, vec![1u8; piece]).with_fin(false),
        &mut wire,
    );
    for i in 1..=continuations {
        let frame = Frame::new(OpCode::Continuation, vec![1u8; piece]);
        masked(frame.with_fin(i == continuations), &mut wire);
    }
    for _ in 0..1000 {
        masked(
            Frame::new(OpCode::Continuation, vec![]).with_fin(false),
            &mut wire,
        );
    }
    let flooding = tokio::spawn(async move {
        // The server may stop reading and close: a failed write is the flood being refused.
        let _ = client.write_all(&wire).await;
        let mut received = Vec::new();
        let _ = client.read_to_end(&mut received).await;
        received
    });
    let first = server.next().await.expect("an event");
    let is_error = first.is_err();
    if !is_error {
        // Accepted: end the connection so the client's read ends.
        drop(server.close(CloseCode::NORMAL, "").await);
    } else {
        assert!(server.next().await.is_none(), "ends after the failure");
    }
    let received = tokio::time::timeout(Duration::from_secs(10), flooding)
        .await
        .expect("the flood ends")
        .unwrap();
    drop(server);
    let close = (received.len() >= 4 && received[0] == 0x88).then(|| {
        let len = usize::from(received[1]);
        let payload = bytes::Bytes::copy_from_slice(&received[2..2 + len]);
        CloseFrame::decode(payload).unwrap().unwrap()
    });
    FragmentOutcome { first, close }
}

/// Empty fragments cost 64 bytes each against the message limit: 1024 of them fill 64 KiB
/// exactly and the message arrives; one more fails the connection with 1009 at that fragment,
/// though the flood goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc6455_5_4_empty_fragment_flood_at_and_past_the_message_limit() {
    let at = fragment_flood(0, 1024, 64 << 10).await;
    assert_eq!(at.first.unwrap(), Message::binary(Vec::new()));
    let past = fragment_flood(0, 1025, 64 << 10).await;
    assert!(
        matches!(
            past.first,
            Err(Error::Protocol(tether_codec::Error::MessageTooLarge { size, limit }))
                if size == 1025 * 64 && limit == 64 << 10
        ),
        "{past:?}"
    );
    assert_eq!(past.close.map(|f| f.code), Some(CloseCode::MESSAGE_TOO_BIG));
}

/// One-byte fragments cost 64 bytes each (a continuation counts at least the overhead): 1000
/// continuations after a one-byte first fragment make 64 001 bytes, at a limit of 64 001 the
/// message arrives, one more fails with 1009.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc6455_5_4_one_byte_fragment_flood_at_and_past_the_message_limit() {
    const LIMIT: usize = 1 + 64 * 1000;
    let at = fragment_flood(1, 1000, LIMIT).await;
    assert_eq!(at.first.unwrap(), Message::binary(vec![1u8; 1001]));
    let past = fragment_flood(1, 1001, LIMIT).await;
    assert!(
        matches!(
            past.first,
            Err(Error::Protocol(tether_codec::Error::MessageTooLarge { size, .. }))
                if size == LIMIT as u64 + 64
        ),
        "{past:?}"
    );
    assert_eq!(past.close.map(|f| f.code), Some(CloseCode::MESSAGE_TOO_BIG));
}

/// Memory under an empty-fragment flood at the default 16 MiB message limit: 262 144 empty
/// continuations are allowed (64 bytes charged each), and while they stream in the process
/// holds no more than its socket and read buffers; the one past the limit ends it with 1009.
#[test]
fn rfc6455_5_4_empty_fragment_flood_holds_constant_memory() {
    crate::facade::support::measure_in_child(
        "attack::flood::child_empty_fragment_flood_memory",
        Duration::from_secs(120),
    );
}

#[test]
#[ignore = "run by rfc6455_5_4_empty_fragment_flood_holds_constant_memory in a child process"]
fn child_empty_fragment_flood_memory() {
    crate::facade::support::as_measuring_child_async(empty_fragment_flood_memory);
}

async fn empty_fragment_flood_memory() {
    const ALLOWED: usize = (16 << 20) / 64;
    let (mut server, mut client) = connect(&Config::default()).await;
    let serving =
        tokio::spawn(async move { server.next().await.map(|r| r.map_err(|e| e.to_string())) });
    let mut batch = BytesMut::new();
    for _ in 0..4096 {
        masked(
            Frame::new(OpCode::Continuation, vec![]).with_fin(false),
            &mut batch,
        );
    }
    let mut first = BytesMut::new();
    masked(
        Frame::new(OpCode::Binary, vec![]).with_fin(false),
        &mut first,
    );
    client.write_all(&first).await.unwrap();
    let baseline = crate::facade::support::live_bytes();
    let mut peak = baseline;
    let mut sent = 0;
    while sent <= ALLOWED {
        if client.write_all(&batch).await.is_err() {
            break;
        }
        sent += 4096;
        peak = peak.max(crate::facade::support::live_bytes());
    }
    let outcome = tokio::time::timeout(Duration::from_secs(30), serving)
        .await
        .expect("the flood ends")
        .unwrap();
    assert!(
        matches!(&outcome, Some(Err(text)) if text.contains("exceeds the limit")),
        "{outcome:?}"
    );
    // Far below the 1.5 MiB of fragments read: nothing is kept per fragment.
    assert!(
        peak - baseline < 256 << 10,
        "grew by {} bytes",
        peak - baseline
    );
}
