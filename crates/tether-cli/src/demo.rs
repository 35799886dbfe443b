//! `tether demo`: the tutorial, live on loopback, one step after another.
//!
//! A server task listens on `127.0.0.1:0`, a client connects, and the demo drives both ends
//! through the layers under the facade directly (`tether::handshake` for the Upgrade,
//! `tether::codec`'s [`Protocol`] for frames), so it can show every byte: the HTTP Upgrade
//! request and its 101 answer verbatim, each frame with its header fields named, and how TCP
//! reads line up (or do not) with messages. The bytes really cross the kernel's TCP stack;
//! both ends are driven from one place only so the narration comes out in order.
//!
//! ```text
//!   step 1  listen, connect              one TCP connection (WebSocket 介绍)
//!   step 2  GET + Upgrade  ->  101       websocket 和 http 区别
//!   step 3  frames both ways, annotated  全双工 full duplex (fragments, ping/pong too)
//!   step 4  N messages -> 1 TCP read     粘包 stuck packets
//!   step 5  1 message  -> many reads     拆包 split packets
//!   step 6  close 1000 <-> close 1000    closing handshake
//!           summary
//! ```
//!
//! Adding a step: a step is an async function that starts with [`Narrator::step`] (steps are
//! numbered as they run) and leaves a line for the summary with [`Narrator::remember`].
//! Steps before the Upgrade work on the two raw streams: [`walk`] calls [`step_connect`] and
//! then [`step_upgrade`], which runs over any `AsyncRead + AsyncWrite`, so a step that wraps
//! both ends (TLS) fits between them. Steps after the Upgrade are methods of [`Demo`], called
//! from [`Demo::walk`].

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context as _, Result};
use bytes::{Bytes, BytesMut};
use rand::{Rng as _, SeedableRng as _};
use tether::codec::{
    CloseCode, Config as CodecConfig, Frame, FrameHeader, Message, OpCode, Protocol, State,
};
use tether::handshake::{
    Accept, ClientHandshake, ClientRequest, Config as HandshakeConfig, Incoming, Key,
    ServerHandshake,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::annotate::{self, describe, thousands, FrameView};

/// Bytes asked for per socket read: the reads of the 拆包 step are at most this large.
const READ_CHUNK: usize = 64 << 10;
/// The subprotocol the client offers and the server selects.
const SUBPROTOCOL: &str = "tether-demo";
/// The GUID of RFC 6455 §1.3 that the accept key is computed with.
const WEBSOCKET_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
/// The whole walk takes well under a second on loopback; past this something is stuck.
const TIME_LIMIT: Duration = Duration::from_secs(30);
/// Width of the label column.
const LABEL: usize = 11;

/// Messages in the 粘包 burst: enough to see, few enough to list.
const DEFAULT_BURST: u16 = 10;
/// Size of the 拆包 message: 1 MiB, many times a socket read.
const DEFAULT_LARGE: u32 = 1 << 20;

/// Options of `tether demo`; the defaults are what the tutorial needs.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct Args {
    /// How many small messages the client writes at once in the 粘包 (stuck packets) step.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_BURST, value_parser = clap::value_parser!(u16).range(2..=1000))]
    burst: u16,
    /// Size in bytes of the message of the 拆包 (split packets) step: 128 KiB to 16 MiB.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_LARGE,
          value_parser = clap::value_parser!(u32).range(128 << 10..=16 << 20))]
    large: u32,
}

impl Default for Args {
    fn default() -> Self {
        Args {
            burst: DEFAULT_BURST,
            large: DEFAULT_LARGE,
        }
    }
}

/// Runs the demo, printing to stdout.
pub(crate) async fn run(args: Args) -> Result<ExitCode> {
    tokio::time::timeout(TIME_LIMIT, walk(&args, std::io::stdout()))
        .await
        .with_context(|| format!("the demo did not finish within {TIME_LIMIT:?}"))??;
    Ok(ExitCode::SUCCESS)
}

/// Runs every step, writing the narration to `out`.
pub(crate) async fn walk<W: Write>(args: &Args, out: W) -> Result<()> {
    let mut say = Narrator::new(out);
    say.title("Tether demo: the WebSocket tutorial, live on loopback")?;
    let started = Instant::now();
    let (client_io, server_io, addr) = step_connect(&mut say).await?;
    // A step that wraps both streams (TLS) goes here: the Upgrade runs over any stream.
    let mut demo = step_upgrade(say, args, &addr.to_string(), client_io, server_io).await?;
    demo.walk().await?;
    demo.summary(started)
}

/// Step 1: a server task listens on loopback, a client connects. Returns the client's and
/// the server's end of the one TCP connection, and the server's address.
async fn step_connect<W: Write>(
    say: &mut Narrator<W>,
) -> Result<(TcpStream, TcpStream, SocketAddr)> {
    say.step("A server starts, a client connects (WebSocket 介绍)")?;
    say.text(
        "WebSocket: full-duplex messages over a single TCP connection. Everything below\n\
         travels over the one connection opened here.",
    )?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    say.fact("server", &format!("listening on {addr} (a tokio task)"))?;
    let server_task = tokio::spawn(async move { listener.accept().await });
    let client_io = TcpStream::connect(addr).await?;
    let (server_io, client_addr) = server_task.await.context("the server task failed")??;
    // Small frames go out at once (no Nagle delay), so reads show what each write sent.
    client_io.set_nodelay(true)?;
    server_io.set_nodelay(true)?;
    say.fact("client", &format!("connected from {client_addr}"))?;
    say.remember(
        "connection",
        &format!("one TCP connection {client_addr} <-> {addr}"),
    );
    Ok((client_io, server_io, addr))
}

/// Step 2: the HTTP Upgrade over the connection, both messages shown verbatim. The server
/// side runs in its own task; `host` is what the client asks for.
async fn step_upgrade<W, C, S>(
    mut say: Narrator<W>,
    args: &Args,
    host: &str,
    client_io: C,
    server_io: S,
) -> Result<Demo<W, C, S>>
where
    W: Write,
    C: AsyncRead + AsyncWrite + Unpin,
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    say.step("The Upgrade: an HTTP request becomes a WebSocket (websocket 和 http 区别)")?;
    say.text(
        "HTTP goes one way: the client asks, the server answers, and the server cannot\n\
         speak first. A WebSocket starts as one HTTP request asking to switch protocols;\n\
         after the 101 answer both sides may send at any time.",
    )?;
    let server_task = tokio::spawn(upgrade_server(server_io));
    let mut request = ClientRequest::new(format!("ws://{host}/tutorial").parse()?)?;
    request.subprotocol(SUBPROTOCOL);
    let key = Key::random()?;
    let (client_io, response_len, client_leftover, subprotocol) =
        upgrade_client(client_io, &request, &key).await?;
    let upgraded = server_task.await.context("the server task failed")??;
    ensure!(
        upgraded.response.len() == response_len,
        "the client read a different response than the server wrote"
    );
    say.fact(
        "client",
        &format!(
            "-> server  {} bytes, an HTTP/1.1 request",
            upgraded.request.len()
        ),
    )?;
    say.http(">", &upgraded.request)?;
    say.fact(
        "server",
        &format!(
            "-> client  {} bytes, 101: from here on the bytes are frames",
            upgraded.response.len()
        ),
    )?;
    say.http("<", &upgraded.response)?;
    say.fact(
        "accept",
        &format!(
            "base64(SHA-1(key + \"{WEBSOCKET_GUID}\")) = {}",
            key.accept()
        ),
    )?;
    say.fact(
        "",
        "the client checked it: only a server that read this key can answer it (RFC 6455 §4.1)",
    )?;
    say.fact(
        "agreed",
        &format!(
            "subprotocol {}",
            subprotocol
                .as_deref()
                .map_or("none".to_owned(), annotate::quote)
        ),
    )?;
    say.remember(
        "upgrade",
        &format!(
            "GET /tutorial ({} B) -> 101 Switching Protocols ({} B)",
            upgraded.request.len(),
            upgraded.response.len()
        ),
    );

    let mut rng = rand::rngs::StdRng::from_entropy();
    let client = Peer::new(
        "client",
        client_io,
        Protocol::client(CodecConfig::default(), move || rng.gen()),
        &client_leftover,
    );
    let server = Peer::new(
        "server",
        upgraded.io,
        Protocol::server(CodecConfig::default()),
        &upgraded.leftover,
    );
    Ok(Demo {
        say,
        client,
        server,
        burst: usize::from(args.burst),
        large: args.large as usize,
    })
}

/// Prints the narration: numbered steps, indented lines, an aligned label column.
pub(crate) struct Narrator<W> {
    out: W,
    steps: usize,
    /// One line per finished step, for the summary.
    notes: Vec<(String, String)>,
}

impl<W: Write> Narrator<W> {
    fn new(out: W) -> Self {
        Narrator {
            out,
            steps: 0,
            notes: Vec::new(),
        }
    }

    fn title(&mut self, title: &str) -> Result<()> {
        writeln!(self.out, "{title}\n{}", "=".repeat(title.chars().count()))?;
        Ok(())
    }

    /// Keeps a line for the summary.
    fn remember(&mut self, label: &str, value: &str) {
        self.notes.push((label.to_owned(), value.to_owned()));
    }

    /// Starts the next numbered step.
    fn step(&mut self, title: &str) -> Result<()> {
        self.steps += 1;
        writeln!(self.out, "\nStep {}  {title}", self.steps)?;
        Ok(())
    }

    /// An explanation, indented.
    fn text(&mut self, text: &str) -> Result<()> {
        for line in text.lines() {
            writeln!(self.out, "  {line}")?;
        }
        Ok(())
    }

    /// `label` in the label column, then `value`.
    fn fact(&mut self, label: &str, value: &str) -> Result<()> {
        let pad = LABEL.saturating_sub(display_width(label));
        writeln!(self.out, "  {label}{:pad$}  {value}", "")?;
        Ok(())
    }

    /// A line indented under a fact.
    fn detail(&mut self, label: &str, value: &str) -> Result<()> {
        writeln!(self.out, "    {label:<9}  {value}")?;
        Ok(())
    }

    /// Verbatim HTTP head lines, each prefixed with `marker`.
    fn http(&mut self, marker: &str, head: &[u8]) -> Result<()> {
        let text = String::from_utf8_lossy(head);
        for line in text.split("\r\n").filter(|line| !line.is_empty()) {
            writeln!(self.out, "    {marker} {line}")?;
        }
        Ok(())
    }

    /// Every frame in `wire`, fully annotated.
    fn frames(&mut self, direction: &str, wire: &[u8]) -> Result<()> {
        let (found, _) = annotate::frames(wire)?;
        for frame in &found {
            let bytes = &wire[frame.offset..frame.offset + frame.wire_len()];
            self.fact(
                direction,
                &format!(
                    "{} frame, {} bytes on the wire",
                    annotate::opcode_name(frame.header.opcode),
                    frame.wire_len()
                ),
            )?;
            self.detail("bytes", &annotate::hex(bytes, 16))?;
            self.detail("header", &frame.header_line())?;
            let payload = frame.payload_line();
            if frame.header.mask.is_some() && !frame.payload.is_empty() {
                self.detail(
                    "payload",
                    &format!("{payload}  (unmasked: byte i ^ key[i % 4])"),
                )?;
            } else {
                self.detail("payload", &payload)?;
            }
        }
        Ok(())
    }
}

/// One end of the connection: its socket and its protocol state machine.
struct Peer<T> {
    /// "client" or "server", as the narration names it.
    name: &'static str,
    io: T,
    protocol: Protocol,
    chunk: Vec<u8>,
    frames_sent: usize,
    bytes_sent: usize,
}

impl<T: AsyncRead + AsyncWrite + Unpin> Peer<T> {
    fn new(name: &'static str, io: T, protocol: Protocol, leftover: &[u8]) -> Self {
        let mut peer = Peer {
            name,
            io,
            protocol,
            chunk: vec![0; READ_CHUNK],
            frames_sent: 0,
            bytes_sent: 0,
        };
        // Bytes that came in the same read as the handshake are the first frames: keep them.
        peer.protocol.receive_data(leftover);
        peer
    }

    /// Queues `message` and writes it.
    async fn send(&mut self, message: Message) -> Result<Bytes> {
        self.protocol.send(message)?;
        Ok(self.flush().await?.0)
    }

    /// Writes everything the protocol queued; returns the bytes and how many write calls the
    /// kernel needed to take them.
    async fn flush(&mut self) -> Result<(Bytes, usize)> {
        let wire = self.protocol.write_buffer().split().freeze();
        let mut writes = 0;
        let mut written = 0;
        while written < wire.len() {
            let n = self.io.write(&wire[written..]).await?;
            ensure!(n > 0, "the socket accepted no bytes");
            written += n;
            writes += 1;
        }
        self.io.flush().await?;
        let (found, _) = annotate::frames(&wire)?;
        self.frames_sent += found.len();
        self.bytes_sent += wire.len();
        Ok((wire, writes))
    }

    /// Reads until `count` messages are decoded; returns them and the size of each read.
    async fn receive(&mut self, count: usize) -> Result<(Vec<Message>, Vec<usize>)> {
        let mut messages = Vec::with_capacity(count);
        let mut reads = Vec::new();
        loop {
            while messages.len() < count {
                match self.protocol.poll_message()? {
                    Some(message) => messages.push(message),
                    None => break,
                }
            }
            if messages.len() == count {
                return Ok((messages, reads));
            }
            let n = self.read_once().await?;
            ensure!(
                n > 0,
                "the connection ended before {count} messages arrived"
            );
            reads.push(n);
        }
    }

    /// One socket read into the protocol's read buffer; 0 means end of stream.
    async fn read_once(&mut self) -> Result<usize> {
        let n = self.io.read(&mut self.chunk).await?;
        self.protocol.receive_data(&self.chunk[..n]);
        Ok(n)
    }
}

/// The connected demo: the narration, both ends, and what the steps found.
pub(crate) struct Demo<W, C, S> {
    say: Narrator<W>,
    client: Peer<C>,
    server: Peer<S>,
    burst: usize,
    large: usize,
}

/// What the server task hands back after the Upgrade.
struct Upgraded<S> {
    io: S,
    request: Bytes,
    response: Bytes,
    leftover: BytesMut,
}

impl<W, C, S> Demo<W, C, S>
where
    W: Write,
    C: AsyncRead + AsyncWrite + Unpin,
    S: AsyncRead + AsyncWrite + Unpin,
{
    /// The steps after the Upgrade, in order. Add new steps here.
    async fn walk(&mut self) -> Result<()> {
        self.step_messages().await?;
        self.step_stuck_packets().await?;
        self.step_split_packets().await?;
        self.step_close().await
    }

    /// Full duplex: messages each way, every frame annotated, a ping, both sides at once.
    async fn step_messages(&mut self) -> Result<()> {
        self.say
            .step("Messages both ways, every frame annotated (全双工 full duplex)")?;
        self.say.text(
            "Each message is a frame: a 2 to 14 byte header, then the payload. The client masks\n\
             what it sends with a fresh 4-byte key (RFC 6455 §5.3); the server does not.",
        )?;
        self.client_to_server(Message::text("Hello, server!"))
            .await?;
        self.server_to_client(Message::text("Hello, client! 你好"))
            .await?;
        self.client_to_server(Message::binary(pattern(300))).await?;

        self.say.text(
            "A message may also travel in fragments: FIN=0 says more follows, opcode 0x0\n\
             continues the message (RFC 6455 §5.4). The receiver joins them into one message:",
        )?;
        let queue = self.client.protocol.write_buffer();
        Frame::new(OpCode::Text, "Hello in ")
            .with_fin(false)
            .with_mask(Some(rand::random()))
            .encode(queue);
        Frame::new(OpCode::Continuation, "two fragments")
            .with_mask(Some(rand::random()))
            .encode(queue);
        let (wire, _) = self.client.flush().await?;
        self.say.frames("client ->", &wire)?;
        let (joined, _) = self.server.receive(1).await?;
        ensure!(
            joined[0] == Message::text("Hello in two fragments"),
            "the server joined {joined:?}"
        );
        self.say
            .fact("server", &format!("joined {}", describe(&joined[0])))?;

        self.say
            .text("A ping is answered by the peer at once with a pong (RFC 6455 §5.5.2):")?;
        let ping = self
            .client_to_server(Message::Ping(Bytes::from_static(b"are you there?")))
            .await?;
        ensure!(
            matches!(ping, Message::Ping(_)),
            "the server decoded {ping:?}"
        );
        let (pong, _) = self.server.flush().await?;
        self.say.frames("server ->", &pong)?;
        let (answer, _) = self.client.receive(1).await?;
        self.say
            .fact("client", &format!("decoded {}", describe(&answer[0])))?;

        self.say.text(
            "Both sides now write before either reads: the server speaks unasked, which\n\
             HTTP/1.1 cannot do.",
        )?;
        self.client
            .protocol
            .send(Message::text("client: anything new?"))?;
        self.server
            .protocol
            .send(Message::text("server: news, unasked"))?;
        let ((client_wire, _), (server_wire, _)) =
            tokio::try_join!(self.client.flush(), self.server.flush())?;
        self.say.frames("client ->", &client_wire)?;
        self.say.frames("server ->", &server_wire)?;
        let ((at_server, _), (at_client, _)) =
            tokio::try_join!(self.server.receive(1), self.client.receive(1))?;
        self.say
            .fact("server", &format!("decoded {}", describe(&at_server[0])))?;
        self.say
            .fact("client", &format!("decoded {}", describe(&at_client[0])))?;

        let line = format!(
            "client -> server {} frames, server -> client {} frames, both at once too",
            self.client.frames_sent, self.server.frames_sent
        );
        self.say.remember("full duplex", &line);
        Ok(())
    }

    /// 粘包: a burst of small messages in one write, read by the server in one read.
    async fn step_stuck_packets(&mut self) -> Result<()> {
        let count = self.burst;
        self.say
            .step("Stuck packets (粘包): many messages, one TCP read")?;
        self.say.text(
            "TCP carries a byte stream, not messages. Small writes are merged on the way, so\n\
             one read may hold many messages. The length in each frame header says where each\n\
             one ends, so the decoder cuts them apart again.",
        )?;
        for i in 1..=count {
            self.client
                .protocol
                .send(Message::text(format!("message {i:02}")))?;
        }
        let (wire, writes) = self.client.flush().await?;
        self.say.fact(
            "client",
            &format!(
                "{count} messages queued, {} bytes written in {} write call{}",
                wire.len(),
                writes,
                plural(writes)
            ),
        )?;
        let (messages, reads) = self.server.receive(count).await?;
        let summary = format!(
            "{} read{} -> {} messages",
            reads.len(),
            plural(reads.len()),
            messages.len()
        );
        self.say.fact(
            "server",
            &format!(
                "{summary} (read sizes: {})",
                reads
                    .iter()
                    .map(|n| format!("{} B", thousands(*n)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )?;
        let (found, _) = annotate::frames(&wire)?;
        for (frame, message) in found.iter().zip(&messages) {
            self.say.detail(
                "bytes",
                &frame_span(frame, &format!("-> {}", describe(message))),
            )?;
        }
        ensure!(
            messages
                .iter()
                .enumerate()
                .all(|(i, m)| m.as_text() == Some(&format!("message {:02}", i + 1))),
            "the burst was decoded out of order or changed"
        );
        self.say.fact(
            "result",
            &format!("all {count} decoded, in order, unchanged"),
        )?;
        self.say.remember("粘包 stuck", &summary);
        Ok(())
    }

    /// 拆包: one large message that arrives in many reads and is decoded intact.
    async fn step_split_packets(&mut self) -> Result<()> {
        let size = self.large;
        self.say
            .step("Split packets (拆包): one large message, many TCP reads")?;
        self.say.text(
            "Data larger than the free space of the TCP send buffer is split (要发送的数据大于TCP\n\
             发送缓冲区剩余空间大小,会发生拆包). The decoder keeps what it has and waits until\n\
             the header's length is complete.",
        )?;
        let payload = Bytes::from(pattern(size));
        self.client
            .protocol
            .send(Message::Binary(payload.clone()))?;
        if let Some((header, header_len)) = FrameHeader::parse(self.client.protocol.write_buffer())?
        {
            self.say.fact(
                "client",
                &format!(
                    "1 binary message of {} bytes, {header_len}-byte header",
                    thousands(size)
                ),
            )?;
            let view = FrameView {
                offset: 0,
                header,
                header_len,
                payload: Vec::new(),
            };
            self.say.detail("header", &view.header_line())?;
        }
        let ((wire, writes), (messages, reads)) =
            tokio::try_join!(self.client.flush(), self.server.receive(1))?;
        self.say.fact(
            "client",
            &format!(
                "{} bytes written in {} write call{} ({})",
                thousands(wire.len()),
                writes,
                plural(writes),
                if writes == 1 {
                    "the send buffer had room for all of it; TCP still cuts it into segments"
                } else {
                    "each call, the send buffer took what fitted"
                }
            ),
        )?;
        let summary = format!(
            "1 message of {} bytes in {} reads",
            thousands(size),
            reads.len()
        );
        self.say
            .fact("server", &format!("{} reads -> 1 message", reads.len()))?;
        let min = reads.iter().copied().min().unwrap_or(0);
        let max = reads.iter().copied().max().unwrap_or(0);
        let mean = reads.iter().sum::<usize>() / reads.len().max(1);
        self.say.detail(
            "sizes",
            &format!(
                "smallest {} B, largest {} B, mean {} B (at most {} B asked per read)",
                thousands(min),
                thousands(max),
                thousands(mean),
                thousands(READ_CHUNK)
            ),
        )?;
        if let Some(first) = reads.first() {
            self.say.detail(
                "first",
                &format!(
                    "{} B: the header and the first {} payload bytes; the decoder waited for the rest",
                    thousands(*first),
                    thousands(first.saturating_sub(wire.len() - size))
                ),
            )?;
        }
        let intact = matches!(&messages[..], [Message::Binary(got)] if *got == payload);
        ensure!(intact, "the large message was not decoded intact");
        self.say.fact(
            "result",
            &format!(
                "decoded intact: {} bytes, identical to what was sent",
                thousands(size)
            ),
        )?;
        self.say.remember("拆包 split", &summary);
        Ok(())
    }

    /// The closing handshake, and the server closing TCP first.
    async fn step_close(&mut self) -> Result<()> {
        self.say.step("Closing handshake (RFC 6455 §7)")?;
        self.say.text(
            "Each side sends a close frame once; the server then closes TCP first (§7.1.1),\n\
             so the client sees a clean end of stream.",
        )?;
        self.client.protocol.close(CloseCode::NORMAL, "demo done")?;
        let (wire, _) = self.client.flush().await?;
        self.say.frames("client ->", &wire)?;
        let (at_server, _) = self.server.receive(1).await?;
        ensure!(
            matches!(&at_server[..], [Message::Close(Some(frame))] if frame.code == CloseCode::NORMAL),
            "the server decoded {at_server:?}"
        );
        // The protocol echoed the close into the server's write buffer when it decoded it.
        let (echo, _) = self.server.flush().await?;
        self.say.frames("server ->", &echo)?;
        self.server.io.shutdown().await?;
        self.say.fact("server", "closed TCP")?;
        let (at_client, _) = self.client.receive(1).await?;
        ensure!(
            matches!(&at_client[..], [Message::Close(Some(_))]),
            "the client decoded {at_client:?}"
        );
        let end = self.client.read_once().await?;
        ensure!(end == 0, "the client read {end} bytes after the close");
        ensure!(
            self.client.protocol.state() == State::Closed
                && self.server.protocol.state() == State::Closed,
            "a side is not closed"
        );
        self.say.fact(
            "client",
            "read end of stream: both sides Closed, nothing lost",
        )?;
        self.say.remember(
            "closing",
            "client close 1000 \"demo done\", server echoed 1000, server closed TCP first",
        );
        Ok(())
    }

    /// What the walk showed, aligned.
    fn summary(&mut self, started: Instant) -> Result<()> {
        self.say.remember(
            "traffic",
            &format!(
                "client -> server {} frames / {} B, server -> client {} frames / {} B",
                self.client.frames_sent,
                thousands(self.client.bytes_sent),
                self.server.frames_sent,
                thousands(self.server.bytes_sent)
            ),
        );
        self.say
            .remember("time", &format!("{:.2} s", started.elapsed().as_secs_f64()));
        writeln!(self.say.out, "\nSummary")?;
        for (label, value) in std::mem::take(&mut self.say.notes) {
            self.say.fact(&label, &value)?;
        }
        Ok(())
    }

    async fn client_to_server(&mut self, message: Message) -> Result<Message> {
        relay(&mut self.say, &mut self.client, &mut self.server, message).await
    }

    async fn server_to_client(&mut self, message: Message) -> Result<Message> {
        relay(&mut self.say, &mut self.server, &mut self.client, message).await
    }
}

/// Sends `message` from one end, shows its frames, and returns what the other end decoded.
async fn relay<W, A, B>(
    say: &mut Narrator<W>,
    from: &mut Peer<A>,
    to: &mut Peer<B>,
    message: Message,
) -> Result<Message>
where
    W: Write,
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    let wire = from.send(message).await?;
    say.frames(&format!("{} ->", from.name), &wire)?;
    let (mut decoded, _) = to.receive(1).await?;
    let message = decoded.remove(0);
    say.fact(to.name, &format!("decoded {}", describe(&message)))?;
    Ok(message)
}

/// The server task: reads the Upgrade request and answers it with a 101.
async fn upgrade_server<S>(mut io: S) -> Result<Upgraded<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut handshake = ServerHandshake::new(&HandshakeConfig::default());
    let mut received = BytesMut::new();
    let mut chunk = [0u8; 4096];
    let upgrade = loop {
        let n = io.read(&mut chunk).await?;
        ensure!(n > 0, "the client left during the handshake");
        received.extend_from_slice(&chunk[..n]);
        match handshake.receive(&chunk[..n])? {
            None => {}
            Some(Incoming::Upgrade(upgrade)) => break upgrade,
            Some(Incoming::Plain(_)) => bail!("the client sent plain HTTP"),
        }
    };
    let mut response = BytesMut::new();
    let outcome = upgrade.accept(&Accept::new().with_subprotocol(SUBPROTOCOL), &mut response)?;
    io.write_all(&response).await?;
    io.flush().await?;
    received.truncate(received.len() - outcome.leftover.len());
    Ok(Upgraded {
        io,
        request: received.freeze(),
        response: response.freeze(),
        leftover: outcome.leftover,
    })
}

/// The client side of the Upgrade: returns the stream, the response length, the bytes read
/// past the response, and the agreed subprotocol.
async fn upgrade_client<C>(
    mut io: C,
    request: &ClientRequest,
    key: &Key,
) -> Result<(C, usize, BytesMut, Option<String>)>
where
    C: AsyncRead + AsyncWrite + Unpin,
{
    let mut wire = BytesMut::new();
    let mut handshake =
        ClientHandshake::start(request, key, &HandshakeConfig::default(), &mut wire)?;
    io.write_all(&wire).await?;
    io.flush().await?;
    let mut chunk = [0u8; 4096];
    let mut received = 0;
    loop {
        let n = io.read(&mut chunk).await?;
        if n == 0 {
            return Err(handshake.receive_eof().into());
        }
        received += n;
        if let Some(outcome) = handshake.receive(&chunk[..n])? {
            let response_len = received - outcome.leftover.len();
            return Ok((io, response_len, outcome.leftover, outcome.subprotocol));
        }
    }
}

/// `[  0.. 16) 6 + 10 B  note`: where a frame sits in a buffer.
fn frame_span(frame: &FrameView, note: &str) -> String {
    format!(
        "[{:>4}..{:>4})  {} B header + {} B payload  {note}",
        frame.offset,
        frame.offset + frame.wire_len(),
        frame.header_len,
        frame.payload.len()
    )
}

/// `len` bytes of a recognisable, non-repeating-at-4 pattern (so masking visibly changes it).
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// Terminal columns `text` takes: CJK characters take two.
fn display_width(text: &str) -> usize {
    text.chars()
        .map(|c| match u32::from(c) {
            0x1100..=0x115F
            | 0x2E80..=0xA4CF
            | 0xAC00..=0xD7A3
            | 0xF900..=0xFAFF
            | 0xFE30..=0xFE4F
            | 0xFF00..=0xFF60
            | 0xFFE0..=0xFFE6 => 2,
            _ => 1,
        })
        .sum()
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn narration(args: &Args) -> String {
        let mut out = Vec::new();
        walk(args, &mut out).await.expect("the demo runs");
        String::from_utf8(out).expect("the narration is UTF-8")
    }

    #[tokio::test]
    async fn rfc6455_5_2_frames_are_annotated_with_every_length_encoding() {
        let text = narration(&Args::default()).await;
        assert!(text.contains("opcode=0x1 text   MASK=1 key="), "{text}");
        assert!(text.contains("opcode=0x1 text   MASK=0  len="), "{text}");
        assert!(text.contains("len=300 (16-bit: 126 + 2 bytes)"), "{text}");
        assert!(
            text.contains("len=1048576 (64-bit: 127 + 8 bytes)"),
            "{text}"
        );
        assert!(text.contains("opcode=0xa pong"), "{text}");
        assert!(text.contains("opcode=0x8 close"), "{text}");
        // RFC 6455 §5.4: a fragmented message, FIN=0 then a continuation with FIN=1.
        assert!(text.contains("FIN=0 RSV=000 opcode=0x1 text"), "{text}");
        assert!(text.contains("FIN=1 RSV=000 opcode=0x0 cont"), "{text}");
        assert!(
            text.contains("joined text \"Hello in two fragments\""),
            "{text}"
        );
    }

    #[tokio::test]
    async fn burst_is_one_read_and_large_message_many_reads() {
        let args = Args {
            burst: 1000,
            large: 128 << 10,
        };
        let text = narration(&args).await;
        // 1000 frames of 21 bytes fit in one loopback segment of the client's single write.
        assert!(text.contains("1 read -> 1000 messages"), "{text}");
        assert!(text.contains("all 1000 decoded, in order"), "{text}");
        // At most 64 KiB per read: 128 KiB plus a header needs at least 3 reads.
        assert!(text.contains("decoded intact: 131,072 bytes"), "{text}");
        let reads: usize = text
            .lines()
            .find_map(|line| {
                line.trim()
                    .strip_prefix("server")?
                    .trim()
                    .strip_suffix(" reads -> 1 message")
            })
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no read count:\n{text}"));
        assert!(reads >= 3, "{reads} reads");
    }

    #[test]
    fn cjk_labels_are_aligned_by_columns() {
        assert_eq!(display_width("client"), 6);
        assert_eq!(display_width("粘包 stuck"), 10);
        let mut say = Narrator::new(Vec::new());
        say.fact("粘包 stuck", "x").unwrap();
        say.fact("client", "x").unwrap();
        let text = String::from_utf8(say.out).unwrap();
        let columns: Vec<usize> = text
            .lines()
            .map(|l| display_width(&l[..l.len() - 1]))
            .collect();
        assert_eq!(columns[0], columns[1]);
    }

    #[test]
    fn pattern_does_not_repeat_with_the_mask_period() {
        let bytes = pattern(300);
        assert_eq!(bytes.len(), 300);
        assert_ne!(bytes[..4], bytes[4..8]);
        assert_eq!(bytes[251], 0);
    }
}
