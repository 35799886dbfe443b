//! `tether connect URL`: a command-line WebSocket client.
//!
//! - Default: every stdin line is sent as a text message (binary if it is not UTF-8), every
//!   received message goes to stdout (text as a line, binary as its raw bytes). End of stdin
//!   sends a normal close (1000) and the command exits when the closing handshake is done.
//! - `--echo`: stdin is not read; every received message is sent back unchanged (text stays
//!   text, binary stays binary) until the server closes.
//!
//! - `--heartbeat 5s [--heartbeat-timeout 2s]`: the connection runs under the heartbeat
//!   supervisor, which probes the server with Ping frames, logs every round trip and change
//!   of state on stderr, and closes the connection (1011) when the answers stop. The
//!   timeout floor defaults to the interval.
//! - `--reconnect`: connect again with backoff after every loss or heartbeat death.
//!
//! Exit status 0 after a normal close (the server's close code is 1000, or it answered our
//! close without a code). Otherwise 1, with the close code and reason (or the error) on stderr.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, Result};
use tether::heartbeat::{CloseReason, Failure, ReconnectConfig, SupervisorConfig};
use tether::http::{HeaderName, HeaderValue};
use tether::{
    ClientBuilder, CloseCode, CloseFrame, MaybeTls, Message, PingProbe, SinkExt as _,
    StreamExt as _, WebSocket,
};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpStream;

use crate::annotate::describe;
use crate::heartbeat::{log_until_stopped, HeartbeatArgs};

/// How long, after our close frame, the server may take to answer it.
const CLOSE_WAIT: Duration = Duration::from_secs(10);

type Socket = WebSocket<MaybeTls<TcpStream>>;

/// Options of `tether connect`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct Args {
    /// The server, as ws://HOST:PORT/PATH or wss://HOST:PORT/PATH (the port is optional).
    url: String,
    /// Send every received message back unchanged until the server closes; stdin is not read.
    #[arg(long)]
    echo: bool,
    /// Extra header field for the Upgrade request, as 'Name: value'; repeatable.
    #[arg(long = "header", short = 'H', value_name = "K: V", value_parser = parse_header)]
    headers: Vec<(HeaderName, HeaderValue)>,
    /// Subprotocol to offer (Sec-WebSocket-Protocol); repeatable, in order of preference.
    #[arg(long = "subprotocol", value_name = "P")]
    subprotocols: Vec<String>,
    /// PEM file of the certificate authorities to trust for wss:// instead of --roots.
    #[arg(long, value_name = "FILE")]
    ca: Option<PathBuf>,
    #[command(flatten)]
    heartbeat: HeartbeatArgs,
    #[command(flatten)]
    route: crate::route::RouteArgs,
    /// Connect again, with backoff, whenever the connection is lost or the server stops
    /// answering the heartbeat (default heartbeat 20s unless --heartbeat is given); lines
    /// typed while disconnected are kept and sent, in order, once connected.
    #[arg(long)]
    reconnect: bool,
    /// Carry the conversation on a session (tether.session.v1; `tether serve --sessions`):
    /// reconnects resume it, so every line arrives exactly once and in order, and every
    /// reply is printed once. Implies --reconnect. Resumes and their counts are logged on
    /// stderr; a lost session exits 1 with its reason and counts.
    #[arg(long)]
    session: bool,
    /// Longest wait before a reconnection attempt (default 30s): the wait doubles from 1s
    /// (or this, if shorter) after each failure, drawn at random below it (full jitter).
    #[arg(long, value_name = "DURATION", value_parser = crate::heartbeat::parse_duration)]
    max_backoff: Option<Duration>,
    /// Offer permessage-deflate (RFC 7692); the default, kept for symmetry with `serve`.
    #[arg(long, overrides_with = "no_deflate")]
    deflate: bool,
    /// Do not offer permessage-deflate: every message goes uncompressed.
    #[arg(long, overrides_with = "deflate")]
    no_deflate: bool,
}

/// Connects, talks until the connection ends, and turns how it ended into the exit status.
pub(crate) async fn run(args: Args) -> Result<ExitCode> {
    let mut builder = ClientBuilder::new();
    for (name, value) in &args.headers {
        builder.header(name.clone(), value.clone());
    }
    for subprotocol in &args.subprotocols {
        builder.subprotocol(subprotocol.clone());
    }
    args.route.apply(&mut builder)?;
    if let Some(ca) = &args.ca {
        builder.root_store(crate::pem::root_store(ca)?)?;
    }
    if args.no_deflate {
        let mut config = tether::Config::default();
        config.set_deflate(None);
        builder.config(config);
    }
    if args.session {
        let config = supervisor_config(&args);
        return crate::connect_session::run(&args.url, args.echo, &config, &builder).await;
    }
    if args.reconnect || args.heartbeat.heartbeat.is_some() {
        return supervised(&args, &builder).await;
    }
    let mut ws = builder
        .connect(&args.url)
        .await
        .with_context(|| format!("cannot connect to {}", args.url))?;
    tracing::info!(
        url = %args.url,
        subprotocol = ws.subprotocol().unwrap_or("none"),
        deflate = ws.deflate().is_some(),
        "connected"
    );

    let ending = if args.echo {
        echo(ws).await
    } else {
        chat(&mut ws).await
    };
    Ok(
        match verdict(ending.we_closed, ending.result, ending.peer_close.as_ref()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(why) => crate::logging::fail(&anyhow::Error::msg(why)),
        },
    )
}

/// The conversation under a heartbeat supervisor (`--heartbeat`, `--reconnect`): the same
/// stdin and stdout (or `--echo`), with round trips, state changes, deaths and
/// reconnections logged on stderr.
///
/// Exit status 0 when stdin ends (we close) or the server closes with 1000 and no
/// reconnection was asked for; otherwise 1 with the reason the supervisor stopped.
async fn supervised(args: &Args, builder: &ClientBuilder) -> Result<ExitCode> {
    let config = supervisor_config(args);
    let mut client = builder
        .connect_supervised(&args.url, &config, PingProbe::new())
        .with_context(|| format!("cannot connect to {}", args.url))?;
    let logging = client
        .events()
        .map(|events| tokio::spawn(log_until_stopped(args.url.clone(), events, client.state())));
    let talked = crate::conversation::converse(&mut client, args.echo).await;
    // Whatever ended the conversation, stop the supervisor: that also ends the logger,
    // which runs until the supervisor's events stop.
    let stopped = client.close().await;
    if let Some(logging) = logging {
        // An error means the logger was cancelled.
        let _ = logging.await;
    }
    let reason = talked.map(|()| stopped);
    Ok(
        match reason.and_then(|reason| supervised_verdict(&reason)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(why) => crate::logging::fail(&anyhow::Error::msg(why)),
        },
    )
}

/// The heartbeat (`--heartbeat`, default 20 s) and reconnection (`--reconnect` or
/// `--session`) of a supervised conversation.
fn supervisor_config(args: &Args) -> SupervisorConfig {
    let mut config = SupervisorConfig::default();
    config.set_keepalive(Some(args.heartbeat.keepalive().unwrap_or_default()));
    let mut reconnect = ReconnectConfig::default();
    if !args.reconnect && !args.session {
        reconnect.set_max_retries(Some(0));
    }
    if let Some(max) = args.max_backoff {
        let initial = reconnect.initial_delay().min(max);
        reconnect.set_initial_delay(initial).set_max_delay(max);
    }
    config.set_reconnect(reconnect);
    config
}

/// Whether a supervised conversation ended normally: closed by us, or by the server with
/// 1000 when no reconnection was asked for.
fn supervised_verdict(reason: &CloseReason) -> Result<(), String> {
    match reason {
        CloseReason::Local => Ok(()),
        CloseReason::RetriesExhausted(failure) | CloseReason::Fatal(failure)
            if **failure
                == Failure::Closed {
                    code: Some(CloseCode::NORMAL.0),
                } =>
        {
            Ok(())
        }
        other => Err(format!("connection ended: {other}")),
    }
}

/// How a conversation ended.
struct Ending {
    /// Whether we sent the first close frame.
    we_closed: bool,
    /// How the stream ended: `Ok` after a closing handshake.
    result: Result<(), tether::Error>,
    /// The peer's close frame, if it had a code.
    peer_close: Option<CloseFrame>,
}

/// Sends back every data message until the stream ends. Replies are fed and flushed when
/// no more input is ready, so a burst goes back in one write.
async fn echo(ws: Socket) -> Ending {
    let (mut reader, mut writer) = ws.split();
    let mut unflushed = false;
    let mut peer_close = None;
    let result = loop {
        // Both branches are cancel safe; the flush runs only when no message is ready.
        tokio::select! {
            biased;
            received = reader.next() => match received {
                Some(Ok(Message::Close(frame))) => peer_close = frame,
                Some(Ok(message)) => {
                    tracing::debug!("received {}", describe(&message));
                    if message.is_data() {
                        if let Err(err) = writer.feed(message).await {
                            break Err(err);
                        }
                        unflushed = true;
                    }
                }
                Some(Err(err)) => break Err(err),
                None => break Ok(()),
            },
            flushed = writer.flush(), if unflushed => match flushed {
                Ok(()) => unflushed = false,
                Err(err) => break Err(err),
            },
        }
    };
    Ending {
        we_closed: false,
        result,
        peer_close,
    }
}

/// Stdin lines out, messages to stdout, until the stream ends.
async fn chat(ws: &mut Socket) -> Ending {
    let mut lines = BufReader::new(tokio::io::stdin()).split(b'\n');
    let mut stdout = Output::new();
    let mut stdin_open = true;
    let mut close_deadline = None;
    let ended = loop {
        let wait_close = async {
            match close_deadline {
                Some(deadline) => tokio::time::sleep_until(deadline).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            // Every branch is cancel safe: `next_segment` keeps a partial line buffered, the
            // WebSocket keeps bytes it read until a message is returned, and stdout's buffer
            // keeps what a cancelled flush did not write. Biased: what arrives is taken first
            // (the peer's answers to what we send must never wait behind stdin), and stdout is
            // flushed only when nothing else is ready.
            biased;
            received = ws.next() => match received {
                Some(Ok(message)) => {
                    if let Err(err) = stdout.print(&message).await {
                        break Err(err.into());
                    }
                }
                Some(Err(err)) => break Err(err),
                None => break Ok(()),
            },
            line = lines.next_segment(), if stdin_open => match line {
                Ok(Some(line)) => {
                    if let Err(err) = ws.send(line_message(line)).await {
                        break Err(err);
                    }
                }
                Ok(None) => {
                    stdin_open = false;
                    // A close frame, then keep reading: replies still in flight are printed.
                    let close = CloseFrame::new(CloseCode::NORMAL, "").map(|f| Message::Close(Some(f)));
                    match close {
                        Ok(close) => {
                            if let Err(err) = ws.send(close).await {
                                break Err(err);
                            }
                        }
                        Err(err) => break Err(err.into()),
                    }
                    close_deadline = Some(tokio::time::Instant::now() + CLOSE_WAIT);
                }
                Err(err) => break Err(err.into()),
            },
            () = wait_close => break Err(tether::Error::CloseTimeout(CLOSE_WAIT)),
            flushed = stdout.flush(), if stdout.unflushed() => {
                if let Err(err) = flushed {
                    break Err(err.into());
                }
            }
        }
    };
    let ended = match (ended, stdout.flush().await) {
        (Ok(()), Err(err)) => Err(err.into()),
        (ended, _) => ended,
    };
    Ending {
        we_closed: !stdin_open,
        result: ended,
        peer_close: ws.peer_close().cloned(),
    }
}

/// A stdin line (without its `\n` or `\r\n`) as a text message, or as a binary message when
/// it is not UTF-8.
pub(crate) fn line_message(mut line: Vec<u8>) -> Message {
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    match String::from_utf8(line) {
        Ok(text) => Message::text(text),
        Err(not_text) => Message::binary(not_text.into_bytes()),
    }
}

/// Stdout, buffered: a burst of messages costs one write, not one per message (200 000
/// lines took 11 s of system time written one by one). The loops flush when nothing else is
/// ready, so an interactive user still sees each message at once.
pub(crate) struct Output {
    out: tokio::io::BufWriter<tokio::io::Stdout>,
}

impl Output {
    pub(crate) fn new() -> Output {
        Output {
            out: tokio::io::BufWriter::with_capacity(64 << 10, tokio::io::stdout()),
        }
    }

    /// Buffers a data message: text as a line, binary as it is.
    pub(crate) async fn print(&mut self, message: &Message) -> std::io::Result<()> {
        match message {
            Message::Text(text) => {
                self.out.write_all(text.as_bytes()).await?;
                self.out.write_all(b"\n").await
            }
            Message::Binary(data) => self.out.write_all(data).await,
            other => {
                tracing::debug!("received {}", describe(other));
                Ok(())
            }
        }
    }

    /// Whether printed bytes wait in the buffer.
    pub(crate) fn unflushed(&self) -> bool {
        !self.out.buffer().is_empty()
    }

    /// Writes what waits in the buffer (cancel safe: a cancelled flush loses nothing).
    pub(crate) async fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush().await
    }
}

/// Whether the connection ended normally; if not, why, for stderr.
fn verdict(
    we_closed: bool,
    ended: Result<(), tether::Error>,
    peer_close: Option<&CloseFrame>,
) -> Result<(), String> {
    if let Err(err) = ended {
        return Err(match err.close_code() {
            Some(code) => format!("connection failed with close code {code}: {err}"),
            None => format!("connection failed: {err}"),
        });
    }
    match peer_close {
        Some(frame) if frame.code == CloseCode::NORMAL => Ok(()),
        Some(frame) => Err(format!(
            "closed by the server with code {} reason {:?}",
            frame.code,
            frame.reason.as_str()
        )),
        // RFC 6455 §7.1.5: no code in the close frame is reported as 1005.
        None if we_closed => Ok(()),
        None => Err(format!(
            "closed by the server without a status code ({})",
            CloseCode::NO_STATUS_RECEIVED
        )),
    }
}

/// `'Name: value'` into a header field.
fn parse_header(text: &str) -> Result<(HeaderName, HeaderValue), String> {
    let (name, value) = text
        .split_once(':')
        .ok_or_else(|| format!("{text:?} is not 'Name: value'"))?;
    let name = HeaderName::from_bytes(name.trim().as_bytes())
        .map_err(|_| format!("{:?} is not a header name", name.trim()))?;
    let value = HeaderValue::from_str(value.trim())
        .map_err(|_| format!("{:?} is not a header value", value.trim()))?;
    Ok((name, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(code: u16, reason: &str) -> CloseFrame {
        CloseFrame::new(CloseCode(code), reason).unwrap()
    }

    #[test]
    fn rfc6455_7_4_1_only_a_normal_close_is_success() {
        assert_eq!(verdict(false, Ok(()), Some(&frame(1000, ""))), Ok(()));
        assert_eq!(verdict(true, Ok(()), Some(&frame(1000, "bye"))), Ok(()));
        let err = verdict(false, Ok(()), Some(&frame(1001, "restart"))).unwrap_err();
        assert!(err.contains("1001") && err.contains("restart"), "{err}");
        let err = verdict(true, Ok(()), Some(&frame(4000, "app"))).unwrap_err();
        assert!(err.contains("4000"), "{err}");
    }

    #[test]
    fn rfc6455_7_1_5_a_close_without_code_is_normal_only_as_an_answer() {
        assert_eq!(verdict(true, Ok(()), None), Ok(()));
        let err = verdict(false, Ok(()), None).unwrap_err();
        assert!(err.contains("1005"), "{err}");
    }

    #[test]
    fn rfc6455_7_1_5_an_abnormal_closure_reports_1006() {
        let err = verdict(false, Err(tether::Error::AbnormalClosure), None).unwrap_err();
        assert!(err.contains("1006"), "{err}");
        let err = verdict(true, Err(tether::Error::CloseTimeout(CLOSE_WAIT)), None).unwrap_err();
        assert!(err.contains("connection failed"), "{err}");
    }

    #[test]
    fn stdin_lines_are_text_unless_they_are_not_utf8() {
        assert_eq!(line_message(b"hello".to_vec()), Message::text("hello"));
        assert_eq!(line_message(b"crlf\r".to_vec()), Message::text("crlf"));
        assert_eq!(line_message(Vec::new()), Message::text(""));
        assert_eq!(
            line_message(vec![0xff, 0x00]),
            Message::binary(vec![0xffu8, 0x00])
        );
    }

    #[test]
    fn headers_parse_as_name_colon_value() {
        let (name, value) = parse_header("X-Token:  abc def ").unwrap();
        assert_eq!(name, HeaderName::from_static("x-token"));
        assert_eq!(value, "abc def");
        let (_, value) = parse_header("Origin: http://a.test:8080").unwrap();
        assert_eq!(value, "http://a.test:8080");
        assert!(parse_header("no colon").is_err());
        assert!(parse_header("bad name: x").is_err());
        assert!(parse_header("X: line\nbreak").is_err());
    }
}
