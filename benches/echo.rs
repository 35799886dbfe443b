//! Echo throughput and server CPU per message: raw TCP, fastwebsockets, tokio-tungstenite,
//! Tether's plain loop, Tether's batch idiom (split + `forward`) and Tether's sessions
//! (`tether::session`: numbering, replay buffer, acks on both sides), side by side.
//!
//! Each server runs on its own thread (a current-thread tokio runtime) pinned to CPU 0; the
//! load generator (tether clients, or raw TCP clients for the raw echo) runs on one thread
//! pinned to CPU 1. The server thread's CPU time (`/proc/<pid>/task/<tid>/schedstat`) over a
//! cell, divided by the messages echoed, is the server's cost per message: syscalls,
//! wake-ups, parsing, masking, buffering. Cells are `connections x payload x in-flight`; each
//! cell runs the servers in interleaved rounds and prints the best round of each, with ratios
//! to the raw echo and to fastwebsockets, then (from three rounds) the median and range of
//! each server's msgs/s over the raw echo's and fastwebsockets' in the same round. Nothing is
//! asserted: timings never gate.
//!
//! Every client of a cell sends the same payload (one buffer, shared), as a client sends a
//! message it has just made, still in cache. With a payload per connection, 64 connections
//! of 1 MiB hold twice this machine's L3 cache, and every WebSocket client's masked copy read
//! its payload from memory: the 1 MiB cell then measured the client's memory bandwidth, not
//! the servers (benches/RESULTS.md, session 12).
//!
//! Select the matrix with environment variables (defaults in brackets; in test mode, without
//! `--bench`, two tiny cells run once):
//! - `TETHER_ECHO_CELLS` [`64x16x1,64x65536x1,64x1048576x1,512x65536x1,64x16x16,64x1024x16`]
//! - `TETHER_ECHO_BYTES`: bytes echoed per server per cell and round [256 MiB; at most
//!   400 000 and at least 100 messages per connection: fewer made the large cells move by
//!   15 % between runs]
//! - `TETHER_ECHO_ROUNDS` [3]
//! - `TETHER_ECHO_SERVERS`: a comma list among
//!   `raw,fastwebsockets,tungstenite,tether,batch,session`
//!
//! fastwebsockets has no HTTP Upgrade without hyper; tether's handshake does it, then
//! `fastwebsockets::WebSocket::after_handshake` takes over the stream.
#![allow(clippy::print_stdout)] // a bench reports on standard output

mod cpu;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use futures::{FutureExt, SinkExt, StreamExt};
use tether::heartbeat::SupervisorConfig;
use tether::session::{select, EndpointConfig, SessionServerConfig, Sessions};
use tether::{ClientBuilder, CloseCode, Message};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Messages per server per cell and round, whatever the payload size.
const MAX_MESSAGES: usize = 400_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Raw,
    Fastwebsockets,
    Tungstenite,
    Tether,
    Batch,
    Session,
}

impl Kind {
    const ALL: [Kind; 6] = [
        Kind::Raw,
        Kind::Fastwebsockets,
        Kind::Tungstenite,
        Kind::Tether,
        Kind::Batch,
        Kind::Session,
    ];

    fn name(self) -> &'static str {
        match self {
            Kind::Raw => "raw",
            Kind::Fastwebsockets => "fastwebsockets",
            Kind::Tungstenite => "tungstenite",
            Kind::Tether => "tether",
            Kind::Batch => "batch",
            Kind::Session => "session",
        }
    }
}

/// One cell of the matrix.
#[derive(Debug, Clone, Copy)]
struct Cell {
    conns: usize,
    size: usize,
    inflight: usize,
}

impl Cell {
    fn parse(text: &str) -> Cell {
        let parts: Vec<usize> = text
            .split('x')
            .map(|n| n.trim().parse().expect("a cell is CONNSxBYTESxINFLIGHT"))
            .collect();
        assert_eq!(parts.len(), 3, "a cell is CONNSxBYTESxINFLIGHT: {text}");
        Cell {
            conns: parts[0],
            size: parts[1],
            inflight: parts[2],
        }
    }
}

/// Pins the calling thread to one CPU (best effort: a machine with one CPU runs anyway).
fn pin_to(cpu: usize) {
    // SAFETY-free: `sched_setaffinity` through libc needs unsafe, which the workspace forbids;
    // `taskset` on the thread id does the same from outside.
    let tid = thread_path();
    if let Some(tid) = tid.file_name().and_then(|t| t.to_str()) {
        let _ = std::process::Command::new("taskset")
            .args(["-p", "-c", &cpu.to_string(), tid])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// `/proc/<pid>/task/<tid>` of the calling thread.
fn thread_path() -> PathBuf {
    let link = std::fs::read_link("/proc/thread-self").expect("/proc/thread-self");
    PathBuf::from("/proc").join(link)
}

/// CPU time of the thread at `path` (from any thread).
fn thread_cpu(path: &std::path::Path) -> Duration {
    cpu::schedstat_cpu(path.join("schedstat"))
}

/// An echo server on its own pinned thread.
struct EchoServer {
    kind: Kind,
    addr: SocketAddr,
    thread: PathBuf,
}

impl EchoServer {
    fn start(kind: Kind) -> EchoServer {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            pin_to(0);
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("server runtime");
            runtime.block_on(async move {
                let sessions = (kind == Kind::Session).then(echo_sessions);
                let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
                tx.send((listener.local_addr().expect("addr"), thread_path()))
                    .expect("report addr");
                loop {
                    let Ok((tcp, _)) = listener.accept().await else {
                        continue;
                    };
                    tcp.set_nodelay(true).expect("nodelay");
                    tokio::spawn(serve(kind, tcp, sessions.clone()));
                }
            });
        });
        let (addr, thread) = rx.recv().expect("server address");
        EchoServer { kind, addr, thread }
    }
}

async fn serve(kind: Kind, tcp: TcpStream, sessions: Option<Sessions>) {
    match kind {
        Kind::Session => {
            let ws = tether::accept_with(tcp, |request| Ok(select(request)))
                .await
                .expect("tether handshake");
            sessions.expect("sessions").attach(ws).await;
        }
        Kind::Raw => serve_raw(tcp).await,
        Kind::Fastwebsockets => serve_fastwebsockets(tcp).await,
        Kind::Tungstenite => serve_tungstenite(tcp).await,
        Kind::Tether => serve_tether(tcp).await,
        Kind::Batch => serve_batch(tcp).await,
    }
}

/// The ceiling: bytes back as they come. The buffer starts at 64 KiB and doubles, up to
/// 1 MiB, whenever a read fills it, so large messages take few reads while many connections
/// with small ones keep small buffers.
async fn serve_raw(mut tcp: TcpStream) {
    let mut buf = vec![0; 64 << 10];
    loop {
        match tcp.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if tcp.write_all(&buf[..n]).await.is_err() {
                    return;
                }
                if n == buf.len() && n < 1 << 20 {
                    buf.resize(2 * n, 0);
                }
            }
        }
    }
}

/// The plain loop of the issue: next message, send it.
async fn serve_tether(tcp: TcpStream) {
    let mut ws = tether::accept(tcp).await.expect("tether handshake");
    while let Some(Ok(message)) = ws.next().await {
        if message.is_data() && ws.send(message).await.is_err() {
            return;
        }
    }
}

/// The documented batch idiom: split, forward the data messages, flush once per batch.
async fn serve_batch(tcp: TcpStream) {
    let ws = tether::accept(tcp).await.expect("tether handshake");
    let (reader, mut writer) = ws.split();
    let echo = reader.filter_map(|m| async move {
        match m {
            Ok(m) if m.is_data() => Some(Ok(m)),
            _ => None,
        }
    });
    let _ = echo.forward(&mut writer).await;
}

/// The session echo: the handler runs once per session, each message back on it.
fn echo_sessions() -> Sessions {
    Sessions::new(SessionServerConfig::default(), |mut session| async move {
        while let Some(Ok(message)) = session.recv().await {
            if session.send(message).await.is_err() {
                return;
            }
        }
        session.end();
    })
    .expect("sessions")
}

async fn serve_tungstenite(tcp: TcpStream) {
    let mut config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default();
    config.max_message_size = Some(64 << 20);
    config.max_frame_size = Some(64 << 20);
    let Ok(mut ws) = tokio_tungstenite::accept_async_with_config(tcp, Some(config)).await else {
        return;
    };
    while let Some(Ok(message)) = ws.next().await {
        if (message.is_text() || message.is_binary()) && ws.send(message).await.is_err() {
            return;
        }
    }
}

async fn serve_fastwebsockets(tcp: TcpStream) {
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
    ws.set_max_message_size(64 << 20);
    loop {
        let Ok(frame) = ws.read_frame().await else {
            return;
        };
        match frame.opcode {
            fastwebsockets::OpCode::Text | fastwebsockets::OpCode::Binary => {
                // A new frame: the received one still carries the client's mask key, and a
                // server must not mask (RFC 6455 §5.1).
                let echo = fastwebsockets::Frame::new(true, frame.opcode, None, frame.payload);
                if ws.write_frame(echo).await.is_err() {
                    return;
                }
            }
            // The close reply went out in read_frame (auto close).
            fastwebsockets::OpCode::Close => return,
            _ => {}
        }
    }
}

/// A tether client: keeps `inflight` messages outstanding until `messages` came back.
async fn client_ws(addr: SocketAddr, messages: u64, cell: Cell, payload: bytes::Bytes) {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    tcp.set_nodelay(true).expect("nodelay");
    let mut ws = ClientBuilder::new()
        .handshake(tcp, &format!("ws://{addr}/"))
        .await
        .expect("client handshake");
    let payload = Message::binary(payload.slice(..cell.size));
    let mut sent = 0u64;
    while sent < messages && sent < cell.inflight as u64 {
        ws.feed(payload.clone()).await.expect("feed");
        sent += 1;
    }
    ws.flush().await.expect("flush");
    let mut flushed = sent;
    let mut received = 0u64;
    while received < messages {
        // Everything already read is answered in one flush, as a pipelining client does. It
        // looks for another echo only while one of a flushed message is still due, as the
        // raw client reads only what arrived: at one in flight it never looks in vain.
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
            next = if received < flushed {
                ws.next().now_or_never()
            } else {
                None
            };
        }
        ws.flush().await.expect("flush");
        flushed = sent;
    }
    let _ = ws.close(CloseCode::NORMAL, "").await;
}

/// A session client (the facade's, over its supervisor): keeps `inflight` messages
/// outstanding until `messages` came back, then ends the session.
async fn client_session(addr: SocketAddr, messages: u64, cell: Cell, payload: bytes::Bytes) {
    let mut session = ClientBuilder::new()
        .session(
            &format!("ws://{addr}/"),
            &SupervisorConfig::default(),
            EndpointConfig::default(),
        )
        .expect("session");
    let payload = Message::binary(payload.slice(..cell.size));
    let mut sent = 0u64;
    while sent < messages && sent < cell.inflight as u64 {
        session.send(payload.clone()).await.expect("send");
        sent += 1;
    }
    let mut received = 0u64;
    while received < messages {
        let echo = session.recv().await.expect("open").expect("not lost");
        if echo.is_data() {
            received += 1;
            if sent < messages {
                session.send(payload.clone()).await.expect("send");
                sent += 1;
            }
        }
    }
    session.end().await.expect("end");
    while session.recv().await.is_some() {}
}

/// A raw TCP client: the same bytes per message, no framing.
async fn client_raw(addr: SocketAddr, messages: u64, cell: Cell, payload: bytes::Bytes) {
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    tcp.set_nodelay(true).expect("nodelay");
    let mut buf = vec![0; cell.size.max(64 << 10)];
    let mut sent = (cell.inflight as u64).min(messages);
    tcp.write_all(&payload[..cell.size * sent as usize])
        .await
        .expect("write");
    let mut received_bytes = 0usize;
    let mut received = 0u64;
    while received < messages {
        let n = tcp.read(&mut buf).await.expect("read");
        assert!(n > 0, "the raw server closed early");
        received_bytes += n;
        let done = (received_bytes / cell.size) as u64;
        let more = done - received;
        received = done;
        let send = more.min(messages - sent);
        if send > 0 {
            tcp.write_all(&payload[..cell.size * send as usize])
                .await
                .expect("write");
            sent += send;
        }
    }
}

/// One measurement: messages per second and server CPU per message.
#[derive(Debug, Clone, Copy)]
struct Sample {
    rate: f64,
    cpu_us: f64,
}

fn run_cell(
    runtime: &tokio::runtime::Runtime,
    server: &EchoServer,
    cell: Cell,
    per_conn: u64,
) -> Sample {
    let addr = server.addr;
    let kind = server.kind;
    let payload = bytes::Bytes::from(vec![0x42; cell.size * cell.inflight]);
    let cpu_before = thread_cpu(&server.thread);
    let start = Instant::now();
    runtime.block_on(async move {
        let tasks: Vec<_> = (0..cell.conns)
            .map(|_| {
                let payload = payload.clone();
                tokio::spawn(async move {
                    if kind == Kind::Raw {
                        client_raw(addr, per_conn, cell, payload).await;
                    } else if kind == Kind::Session {
                        client_session(addr, per_conn, cell, payload).await;
                    } else {
                        client_ws(addr, per_conn, cell, payload).await;
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("client");
        }
    });
    let wall = start.elapsed();
    // Let the server finish the closing handshakes before reading its CPU.
    std::thread::sleep(Duration::from_millis(20));
    let cpu = thread_cpu(&server.thread) - cpu_before;
    let messages = per_conn as f64 * cell.conns as f64;
    Sample {
        rate: messages / wall.as_secs_f64(),
        cpu_us: cpu.as_secs_f64() * 1e6 / messages,
    }
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

fn main() {
    let benching = std::env::args().any(|arg| arg == "--bench");
    let (cells, bytes, rounds) = if benching {
        (
            env_or(
                "TETHER_ECHO_CELLS",
                "64x16x1,64x65536x1,64x1048576x1,512x65536x1,64x16x16,64x1024x16",
            ),
            env_or("TETHER_ECHO_BYTES", &(256usize << 20).to_string()),
            env_or("TETHER_ECHO_ROUNDS", "3"),
        )
    } else {
        (
            "2x16x1,2x65536x16".to_string(),
            "1".to_string(),
            "1".to_string(),
        )
    };
    let cells: Vec<Cell> = cells.split(',').map(Cell::parse).collect();
    let bytes: usize = bytes.parse().expect("TETHER_ECHO_BYTES");
    let rounds: usize = rounds.parse().expect("TETHER_ECHO_ROUNDS");
    let kinds: Vec<Kind> = match std::env::var("TETHER_ECHO_SERVERS") {
        Ok(list) => Kind::ALL
            .into_iter()
            .filter(|k| list.split(',').any(|n| n.trim() == k.name()))
            .collect(),
        Err(_) => Kind::ALL.to_vec(),
    };

    let servers: Vec<EchoServer> = kinds.iter().map(|&k| EchoServer::start(k)).collect();
    pin_to(1);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("client runtime");

    println!("echo: server pinned to CPU 0, clients on CPU 1; best of {rounds} interleaved rounds");
    println!("cell = connections x payload bytes x messages in flight per connection");
    for cell in cells {
        let total = (bytes / cell.size.max(1)).min(MAX_MESSAGES);
        let per_conn = ((total / cell.conns.max(1)) as u64).max(if benching { 100 } else { 5 });
        let mut best: Vec<Option<Sample>> = vec![None; servers.len()];
        let mut all: Vec<Vec<Sample>> = vec![Vec::new(); servers.len()];
        for _ in 0..rounds {
            for (i, server) in servers.iter().enumerate() {
                let s = run_cell(&runtime, server, cell, per_conn);
                all[i].push(s);
                best[i] = Some(match best[i] {
                    Some(b) => Sample {
                        rate: b.rate.max(s.rate),
                        cpu_us: b.cpu_us.min(s.cpu_us),
                    },
                    None => s,
                });
            }
        }
        let find = |kind: Kind| {
            servers
                .iter()
                .position(|s| s.kind == kind)
                .and_then(|i| best[i])
        };
        let raw = find(Kind::Raw);
        let fast = find(Kind::Fastwebsockets);
        let plain = find(Kind::Tether);
        println!(
            "\n{}x{}x{} ({per_conn} messages per connection)",
            cell.conns, cell.size, cell.inflight
        );
        println!(
            "  {:<15} {:>12} {:>9} {:>9} {:>9} {:>12} {:>9} {:>9}",
            "server",
            "msgs/s",
            "x raw",
            "x fastws",
            "x tether",
            "server µs",
            "x fastws",
            "x tether"
        );
        for (server, sample) in servers.iter().zip(&best) {
            let Some(s) = *sample else { continue };
            let ratio = |other: Option<Sample>, f: fn(Sample) -> f64| {
                other.map_or("-".to_string(), |o| format!("{:.2}", f(s) / f(o)))
            };
            println!(
                "  {:<15} {:>12.0} {:>9} {:>9} {:>9} {:>12.2} {:>9} {:>9}",
                server.kind.name(),
                s.rate,
                ratio(raw, |s| s.rate),
                ratio(fast, |s| s.rate),
                ratio(plain, |s| s.rate),
                s.cpu_us,
                ratio(fast, |s| s.cpu_us),
                ratio(plain, |s| s.cpu_us),
            );
        }
        print_round_ratios(&servers, &all);
    }
}

/// Each server's msgs/s over the raw echo's and fastwebsockets' in the same round, as the
/// median and range over the rounds: a round's servers run back to back, so a drift of the
/// machine slower than a round (a VM's neighbours) weighs on both sides of each ratio, where
/// it can pick the best rounds above. A stall within one server's run does not cancel.
fn print_round_ratios(servers: &[EchoServer], all: &[Vec<Sample>]) {
    let rounds = |kind: Kind| servers.iter().position(|s| s.kind == kind).map(|i| &all[i]);
    let bases: Vec<(&str, &Vec<Sample>)> =
        [("x raw", Kind::Raw), ("x fastws", Kind::Fastwebsockets)]
            .into_iter()
            .filter_map(|(name, kind)| rounds(kind).map(|r| (name, r)))
            .collect();
    if bases.is_empty() || all.first().is_none_or(|r| r.len() < 3) {
        return;
    }
    println!("  msgs/s over the same round's, median (range) of the rounds:");
    for (server, samples) in servers.iter().zip(all) {
        if matches!(server.kind, Kind::Raw | Kind::Fastwebsockets) {
            continue;
        }
        let mut line = format!("  {:<15}", server.kind.name());
        for (name, base) in &bases {
            let mut ratios: Vec<f64> = samples
                .iter()
                .zip(base.iter())
                .map(|(s, b)| s.rate / b.rate)
                .collect();
            ratios.sort_by(f64::total_cmp);
            line += &format!(
                "   {name} {:.2} ({:.2}-{:.2})",
                ratios[ratios.len() / 2],
                ratios[0],
                ratios[ratios.len() - 1]
            );
        }
        println!("{line}");
    }
}
