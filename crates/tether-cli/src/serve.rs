//! `tether serve`: an echo server, or with `--broadcast` a relay to every client.
//!
//! ```text
//!  client ─┐                     echo:       each message back to its sender
//!  client ─┼─► tether::Server ─► broadcast:  each message to every client (sender included)
//!  browser ┘        │
//!                   └─ plain HTTP GET (no Upgrade) ─► a small HTML page saying how to connect
//! ```
//!
//! Broadcast shares each message among the clients (no copy per client) and writes it to a
//! client only while that client's write buffer has room, in fragments of at most 64 KiB.
//! A client that falls more than `--max-backlog` bytes behind (default 32 MiB: published to
//! it and not yet taken into its write buffer) is closed with 1013, try again later: a
//! client that never reads costs the server its write buffer limit plus one fragment, not a
//! copy of every message (see [`tether::fanout::Fanout`]). With `--heartbeat`, messages go to the
//! supervisor whole, bounded by its outbox.
//!
//! With `--heartbeat 20s` (and optionally `--heartbeat-timeout`) each connection runs under
//! the heartbeat supervisor: clients are probed with Ping frames, the agreed text message
//! `ping <n>` is answered `pong <n>` at once, a client that stops answering is closed with
//! 1011, and every round trip and change of state is logged.
//!
//! The bound address is printed on stdout as `listening on ws://ADDR/` before anything is
//! accepted, so a script can start it on port 0 and read the port. Connections and closes are
//! logged on stderr; `-v` adds a line per message and one per frame received or queued (FIN,
//! opcode, mask, payload length, from `tether-codec`). Ctrl-C (or SIGTERM) stops accepting, closes
//! every connection with 1001 and exits 0.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, Result};
use futures_util::stream::{SplitSink, SplitStream};
use tether::fanout::{Fanout, Subscriber};
use tether::heartbeat::{CloseReason, Farewell, LinkState, Supervisor, SupervisorConfig};
use tether::http::{header, HeaderValue, Method, StatusCode};
use tether::{
    CloseCode, ConnectionInfo, MaybeTls, Message, PlainRequest, Rejection, Server, ServerSocket,
    SinkExt as _, StreamExt as _, WebSocketReader, WebSocketWriter,
};
use tokio::net::TcpStream;

use crate::annotate::describe;
use crate::heartbeat::{log_until_stopped, parse_duration, HeartbeatArgs};

/// Default of `--max-backlog`: twice the largest message a client may send (16 MiB), so a
/// client that keeps up is never cut off by one large message arriving behind another.
const DEFAULT_MAX_BACKLOG: usize = 32 << 20;
/// How long a shutdown waits for connections to finish their closing handshakes.
const GRACE_PERIOD: Duration = Duration::from_secs(5);

/// Options of `tether serve`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct Args {
    /// Address to listen on; port 0 picks a free port (the address is printed on stdout).
    #[arg(long, default_value = "127.0.0.1:9001")]
    addr: String,
    /// Relay every message to every connected client instead of echoing it to its sender.
    #[arg(long)]
    broadcast: bool,
    /// With --broadcast: bytes a client may fall behind (published to it, not yet taken
    /// into its write buffer) before it is closed with 1013 (try again later).
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_BACKLOG)]
    max_backlog: usize,
    /// PEM certificate chain: serve wss:// with rustls (needs --tls-key).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of the certificate (needs --tls-cert).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Most connections served at once; more are answered 503 with Retry-After
    /// (default: the library's, 900).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    max_connections: Option<u32>,
    /// Accept WebSocket requests only from this browser origin (repeatable); others get 403.
    /// Without it every origin is accepted: set it when browsers authenticate by cookie.
    #[arg(long = "allow-origin", value_name = "ORIGIN")]
    allow_origins: Vec<String>,
    /// Close a connection that received nothing for this long, with 1001 (e.g. 5m).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    idle_timeout: Option<Duration>,
    /// Accept permessage-deflate (RFC 7692) when a client offers it: messages of 64 bytes or
    /// more are compressed; each connection then holds up to ~400 KiB of (de)compressor state.
    #[arg(long)]
    deflate: bool,
    #[command(flatten)]
    heartbeat: HeartbeatArgs,
    /// Stop answering each connection's heartbeat probes (`ping <n>`) after N answers, keeping
    /// the connection open: shows a client's dead-peer detection and reconnection (needs
    /// --heartbeat).
    #[arg(long, value_name = "N", requires = "heartbeat")]
    pause_heartbeat_after: Option<u64>,
    #[command(flatten)]
    topics: crate::topics::TopicsArgs,
    #[command(flatten)]
    sessions: crate::serve_sessions::SessionArgs,
}

/// Runs the server until Ctrl-C or SIGTERM.
pub(crate) async fn run(args: Args) -> Result<ExitCode> {
    let mut server = Server::bind(&args.addr)
        .await
        .with_context(|| format!("cannot listen on {}", args.addr))?;
    let addr = server.local_addr()?;
    let scheme = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => {
            server.tls(crate::pem::server_config(cert, key)?);
            "wss"
        }
        _ => "ws",
    };
    let mode_name = match (args.broadcast, args.topics.topics) {
        (true, _) => "broadcast",
        (_, true) => "topics",
        _ => "echo",
    };
    if args.topics.topics && args.heartbeat.keepalive().is_some() {
        anyhow::bail!("--topics does not run under --heartbeat yet");
    }
    configure(&mut server, &args, scheme, addr, mode_name);
    let sessions = args.sessions.sessions()?;
    if sessions.is_some() {
        server.decide(|request| Ok(tether::session::select(request)));
    }

    // Watched before anyone can know the address: a signal from then on is a shutdown.
    let shutdown = shutdown_signal();
    let mut stdout = std::io::stdout();
    writeln!(stdout, "listening on {scheme}://{addr}/")?;
    stdout.flush()?;
    tracing::info!(%addr, scheme, mode = mode_name, "listening");

    let mode = Mode::from_args(&args)?;
    let pause_after = args.pause_heartbeat_after;
    let bus = match &mode {
        Mode::Topics(bus) => Some(bus.clone()),
        _ => None,
    };
    let supervision = args.heartbeat.keepalive().map(|keepalive| {
        let mut config = SupervisorConfig::default();
        config.set_keepalive(Some(keepalive));
        config
    });
    server
        .serve_until(
            move |ws, conn| {
                let mode = mode.clone();
                let supervision = supervision.clone();
                let sessions = sessions.clone();
                async move {
                    match sessions {
                        Some(sessions) if crate::serve_sessions::wants_session(&ws) => {
                            let peer = conn.peer_addr();
                            tracing::info!(%peer, "session connection opened");
                            sessions.attach(ws).await;
                            tracing::info!(%peer, "session connection closed");
                        }
                        _ => handle(ws, conn, mode, supervision, pause_after).await,
                    }
                }
            },
            shutdown,
        )
        .await?;
    if let Some(bus) = bus {
        crate::topics::log_counters(&bus);
    }
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// The server's options from the command line: the landing page, limits, origins and the
/// connections' [`tether::Config`].
fn configure(
    server: &mut Server,
    args: &Args,
    scheme: &'static str,
    addr: SocketAddr,
    mode: &'static str,
) {
    let page_addr = addr.to_string();
    server
        .grace_period(GRACE_PERIOD)
        .plain_http(move |request| landing_page(request, scheme, &page_addr, mode));
    if let Some(limit) = args.max_connections {
        server.max_connections(limit as usize);
    }
    if !args.allow_origins.is_empty() {
        server.allow_origins(args.allow_origins.iter().cloned());
    }
    if args.idle_timeout.is_some() || args.deflate || args.topics.topics {
        let mut config = tether::Config::default();
        if args.topics.topics {
            // A request larger than this is refused before it is buffered (1009).
            config.set_max_message_size(args.topics.max_request as usize);
        }
        config.set_idle_timeout(args.idle_timeout);
        if args.deflate {
            config.set_deflate(Some(tether::deflate::DeflateConfig::default()));
        }
        server.config(config);
    }
}

/// What a connection does with the text and binary messages it receives.
#[derive(Debug, Clone)]
enum Mode {
    /// Send each back to its sender, unchanged.
    Echo,
    /// Publish each to every connection, the sender included.
    Broadcast(Fanout),
    /// Requests of the topics protocol (`--topics`).
    Topics(tether_pubsub::Bus<crate::topics::Frame>),
}

impl Mode {
    fn from_args(args: &Args) -> Result<Mode> {
        Ok(if args.broadcast {
            Mode::Broadcast(Fanout::new(args.max_backlog))
        } else if args.topics.topics {
            Mode::Topics(crate::topics::bus(&args.topics, args.max_backlog)?)
        } else {
            Mode::Echo
        })
    }
}

/// One connection, from the Upgrade to its close, bare or under a heartbeat supervisor
/// (`--heartbeat`): then it probes the client with Ping frames (browsers answer those by
/// themselves), answers the agreed text message `ping <n>` with `pong <n>` at once (for
/// scripts that cannot send Ping frames), closes the connection with 1011 when the client
/// stops answering, and logs round trips and state changes.
///
/// Replies are fed, not sent one by one: everything decoded from one read is answered with
/// one write, flushed when no more input is ready (DESIGN: one flush per batch). Broadcast
/// messages come through the connection's [`Subscriber`], written only while there is room;
/// a client too far behind is closed with 1013.
async fn handle(
    ws: ServerSocket,
    conn: ConnectionInfo,
    mode: Mode,
    supervision: Option<SupervisorConfig>,
    pause_after: Option<u64>,
) {
    let mode = match mode {
        Mode::Topics(bus) => return crate::topics::serve(ws, conn, bus).await,
        mode => mode,
    };
    let peer = conn.peer_addr();
    let path = conn.request().uri().path().to_owned();
    let (mut link, logging) = match Link::open(ws, peer, supervision.as_ref(), pause_after) {
        Ok(opened) => opened,
        Err(err) => {
            tracing::warn!(%peer, error = %err, "cannot supervise the connection");
            return;
        }
    };
    let heartbeat = if logging.is_some() {
        ", heartbeat on"
    } else {
        ""
    };
    tracing::info!(%peer, path, "connection opened{heartbeat}");
    let ended = pump(&mut link, &conn, &mode, peer).await;
    let outcome = link.finish(peer, ended).await;
    if let Some(logging) = logging {
        // The logger ends with the supervisor; an error means it was cancelled.
        let _ = logging.await;
    }
    outcome.log(peer);
}

/// Answers (echo) or publishes (broadcast) what the client sends, and writes what the
/// broadcast brings, until the client, the server or a failure ends it.
async fn pump(link: &mut Link, conn: &ConnectionInfo, mode: &Mode, peer: SocketAddr) -> Ended {
    let mut subscriber = match mode {
        Mode::Broadcast(hub) => Some(hub.subscribe()),
        Mode::Echo | Mode::Topics(_) => None,
    };
    let mut unflushed = false;
    loop {
        let (input, output) = link.halves();
        // Writing: broadcast messages (written as room appears) or the flush of replies.
        let writing = async {
            match subscriber.as_mut() {
                Some(subscriber) => output.drain(subscriber).await,
                None if unflushed => output.flush().await,
                None => std::future::pending().await,
            }
        };
        // Every branch is cancel safe: the reader (or the supervisor's inbound queue) keeps
        // what it read until a message is returned, a subscriber keeps what was not taken, a
        // flush keeps what is unwritten. Input first, writing last.
        tokio::select! {
            biased;
            () = conn.shutdown() => return Ended::Shutdown,
            received = input.next() => match received {
                Some(Ok(message)) => {
                    tracing::debug!(%peer, "received {}", describe(&message));
                    match (mode, message) {
                        (_, Message::Close(frame)) => link.peer_close = frame,
                        (Mode::Echo, message) if message.is_data() => {
                            tracing::debug!(%peer, "sent {}", describe(&message));
                            if let Err(err) = link.feed(message).await {
                                return Ended::Failed(err);
                            }
                            unflushed = true;
                        }
                        (Mode::Broadcast(hub), message) if message.is_data() => {
                            hub.publish(message);
                        }
                        _ => {}
                    }
                }
                Some(Err(err)) => return Ended::Failed(err),
                None => return Ended::Done,
            },
            written = writing => match written {
                Ok(()) if subscriber.is_some() => return Ended::Done,
                Ok(()) => unflushed = false,
                Err(err @ tether::Error::SlowConsumer { .. }) => return Ended::Evicted(err),
                Err(err) => return Ended::Failed(err),
            },
        }
    }
}

/// Why [`pump`] ended.
enum Ended {
    /// The peer's stream ended (after its close), or the broadcast did.
    Done,
    /// The server is shutting down.
    Shutdown,
    /// The client fell more than `--max-backlog` bytes behind the broadcast.
    Evicted(tether::Error),
    Failed(tether::Error),
}

/// How a connection ended, for the log.
enum Outcome {
    /// The closing handshake ran; the client's close frame, if it had one.
    Closed(Option<tether::CloseFrame>),
    /// The supervisor stopped, for this reason.
    Supervised(CloseReason),
    Failed(tether::Error),
}

impl Outcome {
    fn log(self, peer: SocketAddr) {
        match self {
            Outcome::Closed(Some(frame)) => {
                tracing::info!(%peer, code = %frame.code, reason = %frame.reason, "connection closed");
            }
            Outcome::Closed(None) => tracing::info!(%peer, "connection closed"),
            Outcome::Supervised(reason) => tracing::info!(%peer, "connection closed: {reason}"),
            Outcome::Failed(err) => tracing::info!(%peer, error = %err, "connection failed"),
        }
    }
}

/// A connection as [`handle`] drives it: the halves of a bare one, or a supervisor.
struct Link {
    input: Input,
    output: Output,
    /// The client's close frame, once it arrived.
    peer_close: Option<tether::CloseFrame>,
}

enum Input {
    Plain(WebSocketReader<MaybeTls<TcpStream>>),
    Supervised(SplitStream<Supervisor<Message>>),
}

enum Output {
    Plain(WebSocketWriter<MaybeTls<TcpStream>>),
    Supervised(SplitSink<Supervisor<Message>, Message>),
}

impl Link {
    /// Splits `ws`, or hands it to a supervisor first (and spawns the logger of its events).
    fn open(
        ws: ServerSocket,
        peer: SocketAddr,
        supervision: Option<&SupervisorConfig>,
        pause_after: Option<u64>,
    ) -> Result<(Link, Option<tokio::task::JoinHandle<()>>), tether::Error> {
        let (input, output, logging) = match supervision {
            None => {
                let (reader, writer) = ws.split();
                (Input::Plain(reader), Output::Plain(writer), None)
            }
            Some(config) => {
                let probe = crate::pause::PausingProbe::new(pause_after);
                let mut supervised = ws.supervise(config, probe)?;
                let logging = supervised.events().map(|events| {
                    tokio::spawn(log_until_stopped(
                        peer.to_string(),
                        events,
                        supervised.state(),
                    ))
                });
                let (sink, stream) = supervised.split();
                (Input::Supervised(stream), Output::Supervised(sink), logging)
            }
        };
        let link = Link {
            input,
            output,
            peer_close: None,
        };
        Ok((link, logging))
    }

    fn halves(&mut self) -> (&mut Input, &mut Output) {
        (&mut self.input, &mut self.output)
    }

    /// Queues `message` without flushing; waits only while the write buffer is full.
    async fn feed(&mut self, message: Message) -> Result<(), tether::Error> {
        match &mut self.output {
            Output::Plain(writer) => writer.feed(message).await,
            // Into the outbox at once: the supervisor's task writes it.
            Output::Supervised(sink) => Ok(sink.send(message).await?),
        }
    }

    /// Closes the connection as `ended` says: 1001 on shutdown, 1013 for a slow client.
    async fn finish(self, peer: SocketAddr, ended: Ended) -> Outcome {
        let close = match ended {
            Ended::Done => None,
            Ended::Failed(err) => return Outcome::Failed(err),
            // The server is stopping: 1001, "going away" (RFC 6455 §7.4.1).
            Ended::Shutdown => Some((
                CloseCode::GOING_AWAY,
                Farewell::GoingAway,
                "server shutting down",
            )),
            Ended::Evicted(err) => {
                tracing::warn!(%peer, error = %err, "closing a slow client");
                let code = err.close_code().unwrap_or(CloseCode::TRY_AGAIN_LATER);
                Some((code, Farewell::TryAgainLater, "too slow for the broadcast"))
            }
        };
        match (self.input, self.output) {
            (Input::Plain(reader), Output::Plain(mut writer)) => {
                // With the reader gone, the writer reads the peer's answer itself.
                drop(reader);
                let closed = match close {
                    Some((code, _, reason)) => writer.close(code, reason).await,
                    None => Ok(self.peer_close),
                };
                closed.map_or_else(Outcome::Failed, Outcome::Closed)
            }
            (Input::Supervised(stream), Output::Supervised(sink)) => {
                let Ok(supervised) = stream.reunite(sink) else {
                    unreachable!("the halves of one supervisor");
                };
                Outcome::Supervised(match close {
                    Some((_, farewell, reason)) => supervised.close_with(farewell, reason).await,
                    None => {
                        let state = supervised.state().borrow().clone();
                        drop(supervised);
                        match state {
                            LinkState::Closed(reason) => reason,
                            _ => CloseReason::Local,
                        }
                    }
                })
            }
            _ => unreachable!("Link::open pairs the halves"),
        }
    }
}

impl Input {
    async fn next(&mut self) -> Option<Result<Message, tether::Error>> {
        match self {
            Input::Plain(reader) => reader.next().await,
            Input::Supervised(stream) => stream.next().await.map(Ok),
        }
    }
}

impl Output {
    async fn flush(&mut self) -> Result<(), tether::Error> {
        match self {
            Output::Plain(writer) => writer.flush().await,
            Output::Supervised(sink) => Ok(sink.flush().await?),
        }
    }

    /// Writes what `subscriber` queues: as fragments while the write buffer has room, or
    /// whole into the supervisor's outbox, which bounds them by its own byte budget.
    async fn drain(&mut self, subscriber: &mut Subscriber) -> Result<(), tether::Error> {
        match self {
            Output::Plain(writer) => subscriber.write_to(writer).await,
            Output::Supervised(sink) => {
                while let Some(message) = subscriber.next().await {
                    sink.send(message?).await?;
                }
                Ok(())
            }
        }
    }
}

/// What a browser (or curl) gets for a request without an Upgrade: the page at `/`, the
/// browser client at `/tether.js` and the session module it imports at `/session.js`
/// ([`crate::web`]), 404 elsewhere.
///
/// GET gets the page, HEAD its head only (RFC 9110 §9.3.2); other methods get 405 with the
/// `Allow` field naming those two.
fn landing_page(request: &PlainRequest, scheme: &str, addr: &str, mode: &str) -> Rejection {
    let method = request.request.method();
    if method != Method::GET && method != Method::HEAD {
        return Rejection::new(StatusCode::METHOD_NOT_ALLOWED)
            .with_header(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
    }
    // The Host header is the peer's text: use it only if it is a plain host[:port].
    let host = request
        .request
        .headers()
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .filter(|host| {
            !host.is_empty()
                && host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
        })
        .unwrap_or(addr);
    let url = format!("{scheme}://{host}/");
    let (body, content_type) = match request.request.uri().path() {
        "/" | "/index.html" => (crate::web::page(&url, mode), "text/html; charset=utf-8"),
        "/tether.js" => (
            crate::web::CLIENT.to_owned(),
            "text/javascript; charset=utf-8",
        ),
        "/session.js" => (
            crate::web::SESSION.to_owned(),
            "text/javascript; charset=utf-8",
        ),
        _ => return Rejection::new(StatusCode::NOT_FOUND),
    };
    Rejection::new(StatusCode::OK)
        .with_header(header::CONTENT_TYPE, HeaderValue::from_static(content_type))
        .with_body(if method == Method::HEAD {
            String::new()
        } else {
            body
        })
}

/// Watches Ctrl-C and SIGTERM from the moment it is called, so that a signal sent as soon
/// as "listening" is printed stops the server gracefully instead of killing it; the future
/// completes on the first of them. If signals cannot be watched, it never completes.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let (mut terminate, mut interrupt) = {
        use tokio::signal::unix::{signal, SignalKind};
        let watch = |kind, name: &str| {
            signal(kind)
                .inspect_err(|err| tracing::warn!(error = %err, "cannot watch {name}"))
                .ok()
        };
        (
            watch(SignalKind::terminate(), "SIGTERM"),
            watch(SignalKind::interrupt(), "Ctrl-C"),
        )
    };
    async move {
        #[cfg(unix)]
        tokio::select! {
            Some(()) = async { terminate.as_mut()?.recv().await } => {
                tracing::info!("SIGTERM: shutting down");
            }
            Some(()) = async { interrupt.as_mut()?.recv().await } => {
                tracing::info!("interrupted: shutting down");
            }
            else => std::future::pending().await,
        }
        #[cfg(not(unix))]
        match tokio::signal::ctrl_c().await {
            Ok(()) => tracing::info!("interrupted: shutting down"),
            Err(err) => {
                tracing::warn!(error = %err, "cannot watch Ctrl-C");
                std::future::pending::<()>().await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use tether::handshake::{Config, Incoming, ServerHandshake};

    use super::*;

    fn plain(head: &str) -> PlainRequest {
        let mut handshake = ServerHandshake::new(&Config::default());
        match handshake.receive(head.as_bytes()) {
            Ok(Some(Incoming::Plain(request))) => request,
            other => panic!("not a plain request: {other:?}"),
        }
    }

    fn page(request: &PlainRequest) -> String {
        let mut out = BytesMut::new();
        landing_page(request, "ws", "127.0.0.1:9001", "echo").encode(&mut out);
        String::from_utf8(out.to_vec()).unwrap()
    }

    #[test]
    fn plain_get_gets_a_page_naming_the_url_from_the_host_header() {
        let text = page(&plain("GET / HTTP/1.1\r\nHost: example.test:8080\r\n\r\n"));
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        assert!(
            text.contains("content-type: text/html; charset=utf-8\r\n"),
            "{text}"
        );
        assert!(
            text.contains("tether connect ws://example.test:8080/"),
            "{text}"
        );
        assert!(text.contains("WebSocket echo server"), "{text}");
    }

    #[test]
    fn the_browser_client_and_its_session_module_are_served_as_javascript_and_other_paths_are_404()
    {
        let text = page(&plain("GET /tether.js HTTP/1.1\r\nHost: a.test\r\n\r\n"));
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        assert!(
            text.contains("content-type: text/javascript; charset=utf-8\r\n"),
            "{text}"
        );
        assert!(text.contains("export class TetherSocket"), "{text}");
        let text = page(&plain("GET /session.js HTTP/1.1\r\nHost: a.test\r\n\r\n"));
        assert!(
            text.contains("content-type: text/javascript; charset=utf-8\r\n"),
            "{text}"
        );
        assert!(text.contains("export class SessionCore"), "{text}");
        let text = page(&plain("GET /index.html HTTP/1.1\r\nHost: a.test\r\n\r\n"));
        assert!(
            text.contains("import { TetherSocket } from \"/tether.js\""),
            "{text}"
        );
        let text = page(&plain("GET /secret HTTP/1.1\r\nHost: a.test\r\n\r\n"));
        assert!(text.starts_with("HTTP/1.1 404 Not Found\r\n"), "{text}");
    }

    #[test]
    fn head_gets_no_body_and_other_methods_get_405() {
        let text = page(&plain("HEAD / HTTP/1.1\r\nHost: a.test\r\n\r\n"));
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        assert!(
            text.ends_with("content-length: 0\r\nconnection: close\r\n\r\n"),
            "{text}"
        );
        let text = page(&plain("POST / HTTP/1.1\r\nHost: a.test\r\n\r\n"));
        assert!(
            text.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"),
            "{text}"
        );
        assert!(text.contains("allow: GET, HEAD\r\n"), "{text}");
    }

    #[test]
    fn a_host_header_with_markup_is_not_echoed_into_the_page() {
        let text = page(&plain(
            "GET / HTTP/1.1\r\nHost: <script>alert(1)</script>\r\n\r\n",
        ));
        assert!(!text.contains("<script>"), "{text}");
        assert!(
            text.contains("tether connect ws://127.0.0.1:9001/"),
            "{text}"
        );
    }
}
