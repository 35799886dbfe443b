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
//! copy of every message (see [`tether::Fanout`]). With `--heartbeat`, messages go to the
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
use tether::heartbeat::{CloseReason, LinkState, SupervisorConfig};
use tether::http::{header, HeaderValue, Method, StatusCode};
use tether::{
    CloseCode, Connection, Fanout, MaybeTls, Message, PingProbe, PlainRequest, Rejection, Server,
    ServerSocket, SinkExt as _, StreamExt as _, WebSocketWriter,
};
use tokio::net::TcpStream;

use crate::annotate::describe;
use crate::heartbeat::{log_until_stopped, HeartbeatArgs};

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
    #[command(flatten)]
    heartbeat: HeartbeatArgs,
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
    let mode_name = if args.broadcast { "broadcast" } else { "echo" };
    let page_addr = addr.to_string();
    server
        .grace_period(GRACE_PERIOD)
        .plain_http(move |request| landing_page(request, scheme, &page_addr, mode_name));

    let mut stdout = std::io::stdout();
    writeln!(stdout, "listening on {scheme}://{addr}/")?;
    stdout.flush()?;
    tracing::info!(%addr, scheme, mode = mode_name, "listening");

    let mode = if args.broadcast {
        Mode::Broadcast(Fanout::new(args.max_backlog))
    } else {
        Mode::Echo
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
                async move {
                    match supervision {
                        Some(config) => handle_supervised(ws, conn, mode, config).await,
                        None => handle(ws, conn, mode).await,
                    }
                }
            },
            shutdown_signal(),
        )
        .await?;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// What a connection does with the text and binary messages it receives.
#[derive(Debug, Clone)]
enum Mode {
    /// Send each back to its sender, unchanged.
    Echo,
    /// Publish each to every connection, the sender included.
    Broadcast(Fanout),
}

/// One connection, from the Upgrade to its close.
///
/// Replies are fed, not sent one by one: everything decoded from one read is answered with
/// one write, flushed when no more input is ready (DESIGN: one flush per batch). Broadcast
/// messages come through the connection's [`Subscriber`], which writes them only while the
/// write buffer has room and cuts the connection off (1013) when it falls too far behind.
async fn handle(ws: ServerSocket, conn: Connection, mode: Mode) {
    let peer = conn.peer_addr();
    tracing::info!(%peer, path = conn.request().uri().path(), "connection opened");
    let (mut reader, mut writer) = ws.split();
    let mut subscriber = match &mode {
        Mode::Broadcast(hub) => Some(hub.subscribe()),
        Mode::Echo => None,
    };
    let mut unflushed = false;
    let mut peer_close = None;
    let ended = loop {
        // Writing: broadcast messages (the subscriber flushes them itself) or the flush of
        // echoed replies.
        let writing = async {
            match subscriber.as_mut() {
                Some(subscriber) => subscriber.write_to(&mut writer).await,
                None if unflushed => writer.flush().await,
                None => std::future::pending().await,
            }
        };
        // Every branch is cancel safe: the reader keeps what it read until a message is
        // returned, a subscriber keeps what the write buffer did not take, a flush keeps what
        // is unwritten. Input first, writing last.
        tokio::select! {
            biased;
            () = conn.shutdown() => break Ended::Shutdown,
            received = reader.next() => match received {
                Some(Ok(message)) => {
                    tracing::debug!(%peer, "received {}", describe(&message));
                    match (&mode, message) {
                        (_, Message::Close(frame)) => peer_close = frame,
                        (Mode::Echo, message) if message.is_data() => {
                            if let Err(err) = feed(&mut writer, peer, message).await {
                                break Ended::Failed(err);
                            }
                            unflushed = true;
                        }
                        (Mode::Broadcast(hub), message) if message.is_data() => {
                            hub.publish(message);
                        }
                        _ => {}
                    }
                }
                Some(Err(err)) => break Ended::Failed(err),
                None => break Ended::Done,
            },
            written = writing => match written {
                Ok(()) if subscriber.is_some() => break Ended::Done,
                Ok(()) => unflushed = false,
                Err(err @ tether::Error::SlowConsumer { .. }) => break Ended::Evicted(err),
                Err(err) => break Ended::Failed(err),
            },
        }
    };
    // Whatever is closed now is closed with the reader gone: the writer reads the peer's
    // answer itself.
    drop(reader);
    let ended = match ended {
        Ended::Done => Ok(()),
        Ended::Failed(err) => Err(err),
        // The server is stopping: 1001, "going away" (RFC 6455 §7.4.1).
        Ended::Shutdown => writer
            .close(CloseCode::GOING_AWAY, "server shutting down")
            .await
            .map(|answer| peer_close = answer),
        Ended::Evicted(err) => {
            tracing::warn!(%peer, error = %err, "closing a slow client");
            let code = err.close_code().unwrap_or(CloseCode::TRY_AGAIN_LATER);
            writer
                .close(code, "too slow for the broadcast")
                .await
                .map(|answer| peer_close = answer)
        }
    };
    match (ended, peer_close) {
        (Ok(()), Some(frame)) => {
            tracing::info!(%peer, code = %frame.code, reason = %frame.reason, "connection closed");
        }
        (Ok(()), None) => tracing::info!(%peer, "connection closed"),
        (Err(err), _) => tracing::info!(%peer, error = %err, "connection failed"),
    }
}

/// Why [`handle`]'s loop ended.
enum Ended {
    /// The peer's stream ended (after its close), or the broadcast did.
    Done,
    /// The server is shutting down.
    Shutdown,
    /// The client fell more than `--max-backlog` bytes behind the broadcast.
    Evicted(tether::Error),
    Failed(tether::Error),
}

/// One connection under a heartbeat supervisor (`--heartbeat`): it probes the client with
/// Ping frames (browsers answer those by themselves), answers the agreed text message
/// `ping <n>` with `pong <n>` at once (for scripts that cannot send Ping frames), and closes
/// the connection with 1011 when the client stops answering. Round trips and state changes
/// are logged.
async fn handle_supervised(
    ws: ServerSocket,
    conn: Connection,
    mode: Mode,
    config: SupervisorConfig,
) {
    let peer = conn.peer_addr();
    tracing::info!(%peer, path = conn.request().uri().path(), "connection opened, heartbeat on");
    let probe = PingProbe::new().answer_text("ping", "pong");
    let mut supervised = match ws.supervise(&config, probe) {
        Ok(supervised) => supervised,
        Err(err) => {
            tracing::warn!(%peer, error = %err, "cannot supervise the connection");
            return;
        }
    };
    let logging = supervised.events().map(|events| {
        tokio::spawn(log_until_stopped(
            peer.to_string(),
            events,
            supervised.state(),
        ))
    });
    let mut subscriber = match &mode {
        Mode::Broadcast(hub) => Some(hub.subscribe()),
        Mode::Echo => None,
    };
    let shutting_down = loop {
        let published = async {
            match subscriber.as_mut() {
                Some(subscriber) => subscriber.next().await,
                None => std::future::pending().await,
            }
        };
        // Both branches are cancel safe: the supervisor's inbound queue and a broadcast
        // receiver keep their place.
        let outgoing = tokio::select! {
            biased;
            () = conn.shutdown() => break true,
            received = supervised.recv() => match received {
                Some(message) => {
                    tracing::debug!(%peer, "received {}", describe(&message));
                    match &mode {
                        Mode::Echo => message,
                        Mode::Broadcast(hub) => {
                            hub.publish(message);
                            continue;
                        }
                    }
                }
                None => break false,
            },
            published = published => match published {
                Some(Ok(message)) => message,
                Some(Err(err)) => {
                    tracing::warn!(%peer, error = %err, "closing a slow client");
                    break false;
                }
                None => break false,
            },
        };
        tracing::debug!(%peer, "sent {}", describe(&outgoing));
        if let Err(err) = supervised.send(outgoing) {
            tracing::warn!(%peer, error = %err, "closing: the client does not keep up");
            break false;
        }
    };
    let reason = if shutting_down {
        // As in `handle`: 1001, going away (RFC 6455 §7.4.1).
        supervised
            .close_with(CloseCode::GOING_AWAY.0, "server shutting down")
            .await
    } else {
        let state = supervised.state().borrow().clone();
        drop(supervised);
        match state {
            LinkState::Closed(reason) => reason,
            _ => CloseReason::Local,
        }
    };
    if let Some(logging) = logging {
        // The logger ends with the supervisor; an error means it was cancelled.
        let _ = logging.await;
    }
    tracing::info!(%peer, "connection closed: {reason}");
}

/// Queues `message` without flushing; waits only while the write buffer is full.
async fn feed(
    writer: &mut WebSocketWriter<MaybeTls<TcpStream>>,
    peer: SocketAddr,
    message: Message,
) -> Result<(), tether::Error> {
    tracing::debug!(%peer, "sent {}", describe(&message));
    writer.feed(message).await
}

/// The page a browser (or curl) gets for a request without an Upgrade.
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
    let body = format!(
        "<!doctype html>\n\
         <html lang=\"en\"><head><meta charset=\"utf-8\"><title>tether serve</title></head>\n\
         <body>\n\
         <h1>Tether WebSocket {mode} server</h1>\n\
         <p>This address speaks WebSocket (RFC 6455). A WebSocket starts as an HTTP request \
         with <code>Upgrade: websocket</code>; this request had none, so you get this page.</p>\n\
         <p>Connect with <code>tether connect {url}</code>, or from a browser console with \
         <code>new WebSocket(\"{url}\")</code>.</p>\n\
         </body></html>\n"
    );
    Rejection::new(StatusCode::OK)
        .with_header(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        )
        .with_body(if method == Method::HEAD {
            String::new()
        } else {
            body
        })
}

/// Completes on Ctrl-C or SIGTERM. If signals cannot be watched, it never completes.
async fn shutdown_signal() {
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot watch SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    let interrupt = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %err, "cannot watch Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        () = terminate => tracing::info!("SIGTERM: shutting down"),
        () = interrupt => tracing::info!("interrupted: shutting down"),
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
