//! Server CPU per echoed message: tether against tokio-tungstenite and fastwebsockets.
//!
//! Each server runs alone on its own thread (a current-thread tokio runtime), so that
//! thread's CPU time (`/proc/thread-self/schedstat`) is the server's whole cost: syscalls,
//! wake-ups, parsing, masking, buffering. The same tether client drives every server over
//! loopback TCP with 1 and with 16 messages of 64 bytes in flight. Criterion reports the
//! server CPU per message (`iter_custom`); a summary at the end prints the ratios from one
//! run. Nothing is asserted: timings never gate.
//!
//! fastwebsockets has no HTTP Upgrade without hyper; tether's handshake does it, then
//! `fastwebsockets::WebSocket::after_handshake` takes over the stream.
#![allow(clippy::print_stdout)] // a bench reports on standard output

use std::net::SocketAddr;
use std::sync::mpsc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use futures::{FutureExt, Sink, SinkExt, Stream, StreamExt};
use tether::{ClientBuilder, CloseCode, Message};
use tokio::net::{TcpListener, TcpStream};

/// Payload of every echoed message.
const PAYLOAD: usize = 64;

#[derive(Debug, Clone, Copy)]
enum Kind {
    Tether,
    Tungstenite,
    Fastwebsockets,
}

impl Kind {
    const ALL: [Kind; 3] = [Kind::Tether, Kind::Tungstenite, Kind::Fastwebsockets];

    fn name(self) -> &'static str {
        match self {
            Kind::Tether => "tether",
            Kind::Tungstenite => "tokio-tungstenite",
            Kind::Fastwebsockets => "fastwebsockets",
        }
    }
}

/// An echo server on its own thread; reports the CPU each connection cost.
struct EchoServer {
    addr: SocketAddr,
    costs: mpsc::Receiver<Duration>,
}

impl EchoServer {
    fn start(kind: Kind) -> EchoServer {
        let (addr_tx, addr_rx) = mpsc::channel();
        let (cost_tx, costs) = mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("server runtime");
            runtime.block_on(async move {
                let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
                addr_tx
                    .send(listener.local_addr().expect("addr"))
                    .expect("report addr");
                loop {
                    let Ok((tcp, _)) = listener.accept().await else {
                        continue;
                    };
                    tcp.set_nodelay(true).expect("nodelay");
                    let cost = match kind {
                        Kind::Tether => serve_tether(tcp).await,
                        Kind::Tungstenite => serve_tungstenite(tcp).await,
                        Kind::Fastwebsockets => serve_fastwebsockets(tcp).await,
                    };
                    if cost_tx.send(cost).is_err() {
                        return;
                    }
                }
            });
        });
        EchoServer {
            addr: addr_rx.recv().expect("server address"),
            costs,
        }
    }

    /// Echoes `messages` with `inflight` in flight; the server CPU it took.
    fn measure(
        &self,
        runtime: &tokio::runtime::Runtime,
        messages: u64,
        inflight: usize,
    ) -> Duration {
        runtime.block_on(exchange(self.addr, messages, inflight));
        self.costs
            .recv_timeout(Duration::from_secs(60))
            .expect("the server reports its cost")
    }
}

/// CPU time of the calling thread.
fn thread_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    let nanos = stat
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    Duration::from_nanos(nanos)
}

async fn serve_tether(tcp: TcpStream) -> Duration {
    let ws = tether::accept(tcp).await.expect("tether handshake");
    let start = thread_cpu();
    echo_batched(ws, Message::is_data).await;
    thread_cpu() - start
}

async fn serve_tungstenite(tcp: TcpStream) -> Duration {
    let ws = tokio_tungstenite::accept_async(tcp)
        .await
        .expect("tungstenite handshake");
    let start = thread_cpu();
    echo_batched(ws, |m: &tokio_tungstenite::tungstenite::Message| {
        m.is_text() || m.is_binary()
    })
    .await;
    thread_cpu() - start
}

async fn serve_fastwebsockets(tcp: TcpStream) -> Duration {
    let served = tether::handshake::server(
        tcp,
        &Default::default(),
        Some(tether::handshake::DEFAULT_HANDSHAKE_TIMEOUT),
        |_| Ok(tether::Accept::new()),
    )
    .await
    .expect("handshake for fastwebsockets");
    let tether::handshake::Served::WebSocket(tcp, outcome) = served else {
        panic!("expected an upgrade");
    };
    // The client waits for the 101 before it sends, so nothing was read past it.
    assert!(outcome.leftover.is_empty());
    let mut ws = fastwebsockets::WebSocket::after_handshake(tcp, fastwebsockets::Role::Server);
    let start = thread_cpu();
    loop {
        let Ok(frame) = ws.read_frame().await else {
            break;
        };
        match frame.opcode {
            fastwebsockets::OpCode::Text | fastwebsockets::OpCode::Binary => {
                // A new frame: the received one still carries the client's mask key, and a
                // server must not mask (RFC 6455 §5.1).
                let echo = fastwebsockets::Frame::new(true, frame.opcode, None, frame.payload);
                if ws.write_frame(echo).await.is_err() {
                    break;
                }
            }
            // The close reply went out in read_frame (auto close).
            fastwebsockets::OpCode::Close => break,
            _ => {}
        }
    }
    thread_cpu() - start
}

/// Echo through `Stream + Sink`: everything already read goes back in one flush.
async fn echo_batched<W, M, E>(mut ws: W, is_data: fn(&M) -> bool)
where
    W: Stream<Item = Result<M, E>> + Sink<M> + Unpin,
{
    while let Some(Ok(first)) = ws.next().await {
        if is_data(&first) && ws.feed(first).await.is_err() {
            return;
        }
        while let Some(Some(Ok(message))) = ws.next().now_or_never() {
            if is_data(&message) && ws.feed(message).await.is_err() {
                return;
            }
        }
        if ws.flush().await.is_err() {
            return;
        }
    }
}

/// The client: keeps `inflight` messages outstanding until `messages` came back, then closes.
async fn exchange(addr: SocketAddr, messages: u64, inflight: usize) {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    tcp.set_nodelay(true).expect("nodelay");
    let mut ws = ClientBuilder::new()
        .handshake(tcp, &format!("ws://{addr}/"))
        .await
        .expect("client handshake");
    let payload = Message::binary(vec![0x42; PAYLOAD]);
    let mut sent = 0u64;
    while sent < messages && sent < inflight as u64 {
        ws.feed(payload.clone()).await.expect("feed");
        sent += 1;
    }
    ws.flush().await.expect("flush");
    let mut received = 0u64;
    while received < messages {
        let mut next = Some(ws.next().await);
        while let Some(message) = next {
            let message = message
                .expect("the server keeps the connection open")
                .expect("a valid echo");
            if message.is_data() {
                received += 1;
                if sent < messages {
                    ws.feed(payload.clone()).await.expect("feed");
                    sent += 1;
                }
            }
            next = ws.next().now_or_never();
        }
        ws.flush().await.expect("flush");
    }
    ws.close(CloseCode::NORMAL, "").await.expect("close");
}

fn echo(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("client runtime");
    let servers: Vec<(Kind, EchoServer)> = Kind::ALL
        .iter()
        .map(|&kind| (kind, EchoServer::start(kind)))
        .collect();

    let mut group = c.benchmark_group("echo server cpu per message");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(3));
    for inflight in [1, 16] {
        for (kind, server) in &servers {
            group.bench_function(BenchmarkId::new(kind.name(), inflight), |b| {
                b.iter_custom(|iters| server.measure(&runtime, iters, inflight));
            });
        }
    }
    group.finish();

    // One run per server and depth, with ratios against tether side by side.
    let benching = std::env::args().any(|arg| arg == "--bench");
    let messages = if benching { 50_000 } else { 200 };
    println!("\nserver CPU per echoed {PAYLOAD}-byte message, {messages} messages, loopback TCP");
    for inflight in [1, 16] {
        let costs: Vec<(Kind, f64)> = servers
            .iter()
            .map(|(kind, server)| {
                let cost = server.measure(&runtime, messages, inflight);
                (*kind, cost.as_nanos() as f64 / messages as f64)
            })
            .collect();
        let ours = costs[0].1;
        for (kind, ns) in &costs {
            println!(
                "  {inflight:>2} in flight  {:<18} {:>8.0} ns/msg  {:>5.2}x tether",
                kind.name(),
                ns,
                ns / ours
            );
        }
    }
}

criterion_group!(benches, echo);
criterion_main!(benches);
