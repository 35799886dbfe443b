//! `tether demo`: the tutorial, live on loopback, one step after another.
//!
//! A server task listens on `127.0.0.1:0`, a client connects, and the demo drives both ends
//! through the layers under the facade directly (the teaching TLS, `tether::handshake` for
//! the Upgrade, `tether::codec`'s [`Protocol`] for frames), so it can show every byte: the
//! five steps of the TLS handshake, the HTTP Upgrade request and its 101 answer verbatim, each
//! frame with its header fields named, and how reads line up (or do not) with messages. The
//! bytes really cross the kernel's TCP stack; both ends are driven from one place only so the
//! narration comes out in order.
//!
//! ```text
//!   step 1  listen, connect              one TCP connection (WebSocket 介绍)
//!   step 2  TLS 1.2 handshake, 5 steps   https原理 (skipped with --no-tls)
//!   step 3  GET + Upgrade  ->  101       websocket 和 http 区别
//!   step 4  frames both ways, annotated  全双工 full duplex (fragments, ping/pong too)
//!   step 5  N messages -> 1 read         粘包 stuck packets
//!   step 6  1 message  -> many reads     拆包 split packets
//!   step 7  close 1000 <-> close 1000    closing handshake
//!   step 8  offer, answer, RSV1 frame    permessage-deflate (in memory; see `deflate`)
//!   step 9  probes, silence, reconnect   心跳检测 heartbeat (facade; see `heartbeat`)
//!           summary
//! ```
//!
//! Over TLS a TCP read no longer lines up with WebSocket bytes (records add a header, a nonce
//! and a tag, and the TLS layer reads whole records). So the reads the 粘包/拆包 steps count
//! are those of the decrypted stream, the reads the codec sees; a wiretap under TLS counts
//! the TCP reads and bytes, and the steps print both.
//!
//! Adding a step: a step is an async function that starts with [`Narrator::step`] (steps are
//! numbered as they run) and leaves a line for the summary with [`Narrator::remember`].
//! Steps before the Upgrade work on the two raw streams: [`walk`] calls [`step_connect`],
//! [`step_tls`] (which wraps both ends) and then [`step_upgrade`], which runs over any
//! `AsyncRead + AsyncWrite`. Steps after the Upgrade are methods of [`Demo`], called
//! from [`Demo::walk`].

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context as _, Result};
use bytes::{Bytes, BytesMut};
use rand::{Rng as _, SeedableRng as _};
use rustls_pki_types::ServerName;
use tether::codec::{
    CloseCode, Config as CodecConfig, Frame, FrameHeader, Message, OpCode, Protocol, State,
};
use tether::handshake::{
    Accept, ClientHandshake, ClientRequest, Config as HandshakeConfig, Incoming, Key,
    ServerHandshake,
};
use tether_teaching_tls::{
    CipherSuite, Connection, Event, Step as TlsStep, TeachingTlsStream, Transcript,
    MAX_FRAGMENT_LEN,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

mod deflate;
mod heartbeat;

use crate::annotate::{self, describe, thousands, FrameView};
use crate::pki::DemoPki;
use crate::tap::{Seen, Tap, Wiretap};

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

/// The name the demo server's certificate is for, and the host of the `wss://` URL. The
/// client connects to loopback and asks for this name, as a browser asks for the name it
/// resolved.
const DEMO_NAME: &str = "demo.tether.test";
/// The server's preference: the tutorial's flow (RSA key transport) first.
const SERVER_SUITES: [CipherSuite; 3] = [
    CipherSuite::RSA_WITH_AES_128_GCM_SHA256,
    CipherSuite::ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    CipherSuite::ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
];

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
    /// Skip the TLS step: the WebSocket runs over plain TCP (ws:// instead of wss://).
    #[arg(long, conflicts_with = "cipher")]
    no_tls: bool,
    /// Offer only this TLS suite: RSA (the tutorial's flow, the default choice), ECDHE or
    /// CHACHA. By default the client offers all three and the server picks RSA.
    #[arg(long, value_name = "SUITE", value_parser = parse_suite)]
    cipher: Option<CipherSuite>,
}

impl Default for Args {
    fn default() -> Self {
        Args {
            burst: DEFAULT_BURST,
            large: DEFAULT_LARGE,
            no_tls: false,
            cipher: None,
        }
    }
}

fn parse_suite(name: &str) -> Result<CipherSuite, String> {
    CipherSuite::from_name(name).ok_or_else(|| {
        format!(
            "unknown cipher suite {name:?}: the teaching TLS speaks {}",
            CipherSuite::SUPPORTED
                .map(|s| s.name().unwrap_or("?"))
                .join(", ")
        )
    })
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
    if args.no_tls {
        let url = format!("ws://{addr}/tutorial");
        let mut demo = step_upgrade(say, args, &url, client_io, server_io, None).await?;
        demo.walk().await?;
        return demo.summary(started);
    }
    let (client_io, server_io, taps) = step_tls(&mut say, args, client_io, server_io).await?;
    let url = format!("wss://{DEMO_NAME}:{}/tutorial", addr.port());
    let mut demo = step_upgrade(say, args, &url, client_io, server_io, Some(taps)).await?;
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

/// A TCP stream under the teaching TLS, with a wiretap counting its reads and bytes.
type TlsOverTcp = TeachingTlsStream<Tap<TcpStream>>;

/// The wiretaps on the TCP streams under TLS: what the kernel carried, as opposed to what
/// the codec read from the decrypted stream.
struct Taps {
    client: Arc<Wiretap>,
    server: Arc<Wiretap>,
}

/// The TLS step: both ends of the TCP connection are wrapped in the teaching TLS, the
/// handshake runs for real (a certificate made now, the client trusting its CA and checking
/// it), and the tutorial's five steps are listed as the two transcripts recorded them.
async fn step_tls<W: Write>(
    say: &mut Narrator<W>,
    args: &Args,
    client_tcp: TcpStream,
    server_tcp: TcpStream,
) -> Result<(TlsOverTcp, TlsOverTcp, Taps)> {
    say.step("HTTPS first: the TLS 1.2 handshake in five steps (https原理)")?;
    say.text(
        "wss:// is WebSocket inside TLS. Before the first WebSocket byte, client and server\n\
         agree on keys, as the tutorial's fifth part describes; the teaching TLS runs that\n\
         handshake here for real (`tether tls-demo` shows every byte of it).",
    )?;
    let pki = DemoPki::generate(DEMO_NAME)?;
    say.fact(
        "keys",
        &format!(
            "made now: a demo CA, and a certificate for {DEMO_NAME} it signed (RSA-2048);\n\
             {:w$}the client trusts that CA and nothing else",
            "",
            w = LABEL + 4
        ),
    )?;
    let mut server_config = pki.server_config()?;
    server_config.set_cipher_suites(SERVER_SUITES.to_vec());
    let offer = args
        .cipher
        .map_or_else(|| CipherSuite::SUPPORTED.to_vec(), |suite| vec![suite]);
    let client_config = pki.client_config(offer)?;
    let taps = Taps {
        client: Wiretap::counting(),
        server: Wiretap::counting(),
    };
    let name = ServerName::try_from(DEMO_NAME)?.to_owned();
    let mut client = TeachingTlsStream::new(
        Connection::client(Arc::new(client_config), name)?,
        Tap::new(client_tcp, taps.client.clone()),
    );
    let mut server = TeachingTlsStream::new(
        Connection::server(Arc::new(server_config)),
        Tap::new(server_tcp, taps.server.clone()),
    );
    let (client_done, server_done) = tokio::join!(client.handshake(), server.handshake());
    client_done.context("the client's TLS handshake failed")?;
    server_done.context("the server's TLS handshake failed")?;
    for (label, line) in handshake_lines(client.transcript(), server.transcript())? {
        say.fact(label, &line)?;
    }
    let seen = taps.client.seen();
    say.fact(
        "wire",
        &format!(
            "handshake: {} B client -> server, {} B server -> client; from here on every\n\
             {:w$}byte below travels inside encrypted TLS records",
            thousands(seen.sent_len),
            thousands(seen.received_len),
            "",
            w = LABEL + 4
        ),
    )?;
    let suite = client
        .connection()
        .cipher_suite()
        .context("no suite after the handshake")?;
    say.remember(
        "tls",
        &format!("{suite}, certificate for {DEMO_NAME} checked, Finished verified both ways"),
    );
    say.tls = true;
    Ok((client, server, taps))
}

/// The tutorial's five steps as they happened, read from the client's and the server's
/// transcripts: a line per step, continued on unlabelled lines. Fails if an event is
/// missing, so nothing is listed that did not happen.
fn handshake_lines(
    client: &Transcript,
    server: &Transcript,
) -> Result<Vec<(&'static str, String)>> {
    let hello = event(client, TlsStep::OfferCiphers, "ClientHello")?;
    let chosen = event(server, TlsStep::ChooseCipher, "ServerHello")?;
    let certificate = event(client, TlsStep::ChooseCipher, "Certificate")?;
    let checked = event(client, TlsStep::CheckCertificate, "certificate accepted")?;
    let premaster = event(client, TlsStep::Premaster, "ClientKeyExchange")?;
    let recovered = event(server, TlsStep::Premaster, "ClientKeyExchange")?;
    let client_finished = event(client, TlsStep::ClientFinished, "Finished (encrypted)")?;
    let server_checks = event(server, TlsStep::ServerFinished, "Finished (decrypted)")?;
    event(server, TlsStep::ServerFinished, "Finished (encrypted)")?;
    let client_checks = event(client, TlsStep::ClientVerifies, "Finished (decrypted)")?;
    let complete = event(client, TlsStep::ClientVerifies, "handshake complete")?;

    let ephemeral = premaster.title.ends_with("(ECDHE)");
    let (sent, computed) = if ephemeral {
        let share = event(client, TlsStep::ChooseCipher, "ServerKeyExchange")?;
        (
            format!(
                "server's X25519 key share: signature {}\n\
                 {:w$}premaster: X25519 key agreement, {}",
                field(share, "signature")?,
                "",
                field(premaster, "note")?,
                w = LABEL + 4
            ),
            "premaster: X25519(server secret, client public), the same value".to_owned(),
        )
    } else {
        (
            format!(
                "premaster: 48 random bytes, sent as {}",
                field(premaster, "EncryptedPreMasterSecret")?
            ),
            format!("premaster {}", field(recovered, "decryption")?),
        )
    };
    Ok(vec![
        (
            "1 offer",
            format!("client offered {}", field(hello, "cipher_suites")?),
        ),
        (
            "2 choose",
            format!("server chose {}", field(chosen, "cipher_suite")?),
        ),
        (
            "",
            format!(
                "and sent its certificate: {} for {}",
                field(certificate, "leaf size")?,
                field(certificate, "leaf DNS names")?
            ),
        ),
        (
            "3 client",
            format!(
                "certificate {}: its chain {}",
                field(checked, "name")?,
                field(checked, "chain")?
            ),
        ),
        ("", sent),
        (
            "",
            format!(
                "sent Finished, encrypted: {}",
                field(client_finished, "verify_data")?
            ),
        ),
        ("4 server", computed),
        (
            "",
            format!("client's Finished {}", field(server_checks, "check")?),
        ),
        ("", "sent its own Finished, encrypted".to_owned()),
        (
            "5 client",
            format!("server's Finished {}", field(client_checks, "check")?),
        ),
        ("records", field(complete, "from now on")?.to_owned()),
    ])
}

/// The first event of `step` whose title starts with `title`.
fn event<'a>(transcript: &'a Transcript, step: TlsStep, title: &str) -> Result<&'a Event> {
    transcript
        .events()
        .iter()
        .find(|e| e.step == step && e.title.starts_with(title))
        .with_context(|| {
            format!(
                "the TLS transcript has no {title:?} in step {}",
                step.number()
            )
        })
}

/// The value of the field `name` of `event`.
fn field<'a>(event: &'a Event, name: &str) -> Result<&'a str> {
    event
        .fields
        .iter()
        .find(|f| f.name == name)
        .map(|f| f.value.as_str())
        .with_context(|| format!("{} has no field {name:?}", event.title))
}

/// Step 2 (3 over TLS): the HTTP Upgrade over the connection, both messages shown
/// verbatim. The server side runs in its own task; `url` is what the client asks for.
async fn step_upgrade<W, C, S>(
    mut say: Narrator<W>,
    args: &Args,
    url: &str,
    client_io: C,
    server_io: S,
    taps: Option<Taps>,
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
    if say.tls {
        say.text("Over TLS the bytes below are what each side encrypts and decrypts.")?;
    }
    let mut request = ClientRequest::new(url.parse()?)?;
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
        taps,
    })
}

/// Prints the narration: numbered steps, indented lines, an aligned label column.
pub(crate) struct Narrator<W> {
    out: W,
    steps: usize,
    /// One line per finished step, for the summary.
    notes: Vec<(String, String)>,
    /// Whether the WebSocket runs inside TLS: frames are then not on the wire as shown.
    tls: bool,
}

impl<W: Write> Narrator<W> {
    fn new(out: W) -> Self {
        Narrator {
            out,
            steps: 0,
            notes: Vec::new(),
            tls: false,
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
                    "{} frame, {} bytes {}",
                    annotate::opcode_name(frame.header.opcode),
                    frame.wire_len(),
                    if self.tls {
                        "inside TLS"
                    } else {
                        "on the wire"
                    }
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
    /// The TCP under TLS, when the demo runs over TLS.
    taps: Option<Taps>,
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
        self.step_close().await?;
        deflate::step_deflate(&mut self.say)?;
        heartbeat::step_heartbeat(&mut self.say).await
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
        if self.taps.is_some() {
            self.say
                .step("Stuck packets (粘包): many messages, one read")?;
            self.say.text(
                "TCP carries a byte stream, not messages, and TLS on top keeps it a stream:\n\
                 small writes are merged (here into one TLS record), so one read may hold many\n\
                 messages. The codec reads the decrypted stream; the length in each frame\n\
                 header says where each message ends, so the decoder cuts them apart again.",
            )?;
        } else {
            self.say
                .step("Stuck packets (粘包): many messages, one TCP read")?;
            self.say.text(
                "TCP carries a byte stream, not messages. Small writes are merged on the way, so\n\
                 one read may hold many messages. The length in each frame header says where each\n\
                 one ends, so the decoder cuts them apart again.",
            )?;
        }
        let mark = self.tcp_mark();
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
        self.say_tcp_under_tls(mark, wire.len(), writes)?;
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
        let reads = if self.taps.is_some() {
            "reads"
        } else {
            "TCP reads"
        };
        self.say.step(&format!(
            "Split packets (拆包): one large message, many {reads}"
        ))?;
        self.say.text(
            "Data larger than the free space of the TCP send buffer is split (要发送的数据大于TCP\n\
             发送缓冲区剩余空间大小,会发生拆包). The decoder keeps what it has and waits until\n\
             the header's length is complete.",
        )?;
        if self.taps.is_some() {
            self.say.text(
                "Over TLS the message is cut twice: into records of at most 16 KiB, and by TCP.\n\
                 The codec sees neither cut, only the decrypted stream, in pieces.",
            )?;
        }
        let payload = Bytes::from(pattern(size));
        let mark = self.tcp_mark();
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
                match (&self.taps, writes) {
                    (Some(_), _) => format!(
                        "TLS takes at most {} B per call, one record each (RFC 5246 §6.2.1)",
                        thousands(MAX_FRAGMENT_LEN)
                    ),
                    (None, 1) => "the send buffer had room for all of it; TCP still cuts it into \
                                  segments"
                        .to_owned(),
                    (None, _) => "each call, the send buffer took what fitted".to_owned(),
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
        self.say_tcp_under_tls(mark, wire.len(), writes)?;
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
        let closed = if self.taps.is_some() {
            // TeachingTlsStream's shutdown sends close_notify (RFC 5246 §7.2.1), then the FIN.
            "closed TLS (close_notify) and TCP"
        } else {
            "closed TCP"
        };
        self.say.fact("server", closed)?;
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

    /// What the TCP under TLS carried so far: the client's and the server's wiretap.
    fn tcp_mark(&self) -> Option<(Seen, Seen)> {
        self.taps
            .as_ref()
            .map(|taps| (taps.client.seen(), taps.server.seen()))
    }

    /// Over TLS, what TCP carried since `mark` for `frames` bytes of WebSocket frames that
    /// the client wrote in `writes` calls: the reads the step counted are of the decrypted
    /// stream, and these are the TCP reads under it.
    fn say_tcp_under_tls(
        &mut self,
        mark: Option<(Seen, Seen)>,
        frames: usize,
        writes: usize,
    ) -> Result<()> {
        let (Some((client_before, server_before)), Some((client, server))) =
            (mark, self.tcp_mark())
        else {
            return Ok(());
        };
        let sent = client.sent_len - client_before.sent_len;
        let reads = server.reads - server_before.reads;
        let received = server.received_len - server_before.received_len;
        self.say.fact(
            "under TLS",
            &format!(
                "client: {writes} write{} into TLS -> {} B on TCP ({} B of frames + {} B of\n\
                 {:w$}record headers, explicit nonces and tags)",
                plural(writes),
                thousands(sent),
                thousands(frames),
                thousands(sent.saturating_sub(frames)),
                "",
                w = LABEL + 4
            ),
        )?;
        self.say.fact(
            "",
            &format!(
                "server: {reads} TCP read{} of {} B; the reads above are of the decrypted stream",
                plural(reads),
                thousands(received)
            ),
        )
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

    /// The number between the first `before` and the next `after`, commas removed.
    fn number(text: &str, before: &str, after: &str) -> usize {
        let start = text
            .find(before)
            .unwrap_or_else(|| panic!("no {before:?} in:\n{text}"))
            + before.len();
        let len = text[start..]
            .find(after)
            .unwrap_or_else(|| panic!("no {after:?} after {before:?} in:\n{text}"));
        text[start..start + len]
            .trim()
            .replace(',', "")
            .parse()
            .unwrap_or_else(|_| panic!("not a number between {before:?} and {after:?}:\n{text}"))
    }

    fn assert_in_order(text: &str, parts: &[&str]) {
        let mut from = 0;
        for part in parts {
            let at = text[from..]
                .find(part)
                .unwrap_or_else(|| panic!("{part:?} missing or out of order:\n{text}"));
            from += at + part.len();
        }
    }

    #[tokio::test]
    async fn rfc5246_the_five_tls_steps_are_listed_before_the_upgrade() {
        let args = Args {
            large: 128 << 10,
            ..Args::default()
        };
        let text = narration(&args).await;
        assert_in_order(
            &text,
            &[
                "Step 2  HTTPS first: the TLS 1.2 handshake in five steps",
                "certificate for demo.tether.test",
                "1 offer      client offered [",
                "TLS_RSA_WITH_AES_128_GCM_SHA256 (0x009c)]",
                "2 choose     server chose TLS_RSA_WITH_AES_128_GCM_SHA256 (0x009c)",
                "3 client     certificate valid for demo.tether.test: its chain leads to a configured trust anchor",
                "premaster: 48 random bytes, sent as 256 bytes, RSA PKCS#1 v1.5",
                "sent Finished, encrypted: ",
                "4 server     premaster decrypted with the server's private key",
                "client's Finished matches PRF(master, \"client finished\"",
                "5 client     server's Finished matches PRF(master, \"server finished\"",
                "records      application data is encrypted with AES-128-GCM",
                "Step 3  The Upgrade",
                "> host: demo.tether.test:",
                "text frame, 20 bytes inside TLS",
                "tls          TLS_RSA_WITH_AES_128_GCM_SHA256 (0x009c), certificate for demo.tether.test checked",
            ],
        );
        assert!(!text.contains("on the wire"), "{text}");
    }

    #[tokio::test]
    async fn rfc5246_ecdhe_is_listed_as_a_signed_key_agreement() {
        let args = Args {
            large: 128 << 10,
            cipher: Some(CipherSuite::ECDHE_RSA_WITH_AES_128_GCM_SHA256),
            ..Args::default()
        };
        let text = narration(&args).await;
        assert_in_order(
            &text,
            &[
                "server chose TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
                "server's X25519 key share: signature verified with the certificate's RSA key",
                "premaster: X25519 key agreement, the premaster never travels",
                "4 server     premaster: X25519(server secret, client public)",
                "records      application data is encrypted with AES-128-GCM",
            ],
        );
        assert!(!text.contains("PKCS#1"), "{text}");
    }

    #[test]
    fn a_missing_tls_event_is_an_error_not_a_line() {
        let empty = Transcript::default();
        assert!(handshake_lines(&empty, &empty).is_err());
    }

    /// Over TLS the reads the 粘包/拆包 steps count are reads of the decrypted stream: their
    /// sizes add up to the WebSocket bytes, while TCP carried those bytes plus 29 bytes per
    /// AES-128-GCM record (RFC 5246 §6.2.3.3, RFC 5288 §3: 5 header, 8 nonce, 16 tag).
    #[tokio::test]
    async fn over_tls_the_counted_reads_are_of_the_decrypted_stream() {
        let args = Args {
            large: 128 << 10,
            ..Args::default()
        };
        let text = narration(&args).await;
        // 粘包: one write of ten frames is one record, and one record is one decrypted read.
        let frames = number(
            &text,
            "10 messages queued, ",
            " bytes written in 1 write call",
        );
        assert_eq!(frames, 160);
        assert!(
            text.contains(&format!("1 read -> 10 messages (read sizes: {frames} B)")),
            "{text}"
        );
        let tcp = number(&text, "client: 1 write into TLS -> ", " B on TCP");
        assert_eq!(tcp, frames + 29);
        assert_eq!(number(&text, "server: 1 TCP read of ", " B;"), tcp);

        // 拆包: 131,072 B + a 14-byte header (64-bit length, mask key), in records of at most 16,384 B.
        let split = &text[text.find("Split packets").expect("the 拆包 step")..];
        let writes = number(split, "131,086 bytes written in ", " write calls");
        assert_eq!(writes, (131_086usize).div_ceil(MAX_FRAGMENT_LEN));
        let tcp = number(split, "writes into TLS -> ", " B on TCP");
        assert_eq!(tcp, 131_086 + 29 * writes);
        assert_eq!(number(split, "TCP reads of ", " B;"), tcp);
        // At most 64 KiB asked per read: at least 3 reads, whatever TCP did.
        assert!(
            number(split, "server       ", " reads -> 1 message") >= 3,
            "{split}"
        );
        assert!(text.contains("decoded intact: 131,072 bytes"), "{text}");
    }

    #[tokio::test]
    async fn burst_is_one_read_and_large_message_many_reads() {
        // Plain TCP: here the counted reads are the socket's.
        let args = Args {
            burst: 1000,
            large: 128 << 10,
            no_tls: true,
            cipher: None,
        };
        let text = narration(&args).await;
        assert!(!text.contains("TLS"), "{text}");
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
