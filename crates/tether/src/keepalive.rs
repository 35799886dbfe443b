//! The heartbeat, wired to WebSockets: the two probes, supervised clients and servers, and
//! what each facade error means to the reconnecting client.
//!
//! [`tether_heartbeat`] supervises any stream and sink of messages and does not know
//! WebSocket. This module teaches it:
//!
//! 1. **Probes.** [`PingProbe`] sends Ping frames carrying the 8-byte nonce and recognises
//!    the Pong that echoes it (RFC 6455 §5.5.3: "A Pong frame sent in response to a Ping
//!    frame must have identical Application data"); the peer's WebSocket answers by itself.
//!    [`TextPingProbe`] sends the tutorial's agreed text message (`ping 7`, answered
//!    `pong 7`), for peers such as browser scripts that cannot send Ping frames.
//! 2. **Failures.** [`Error::failure`] says what an error means for reconnecting: HTTP
//!    statuses with their `Retry-After`, timeouts, I/O errors, closes. The supervised
//!    transport hands that [`Failure`] to the supervisor with every error, so its retry
//!    policy decides on the facts.
//! 3. **Entry points.** [`connect_supervised`] and [`ClientBuilder::connect_supervised`] for
//!    a reconnecting client over TCP (and TLS); [`ClientBuilder::supervise_with`] over any
//!    byte stream; [`WebSocket::supervise`] for one accepted connection (the server turns
//!    keepalive on per connection).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_core::Stream;
use futures_sink::Sink;
use tether_codec::{CloseCode, CloseFrame, Message};
use tether_heartbeat::{Failure, Inbound, Probe, Supervisor, SupervisorConfig, TextProbe};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::client::ClientBuilder;
use crate::error::Error;
use crate::websocket::WebSocket;

/// The heartbeat over WebSocket Ping and Pong frames, the nonce as the Ping's 8-byte payload
/// (big-endian).
///
/// The peer's WebSocket answers each Ping with a Pong carrying the same payload (RFC 6455
/// §5.5.2), so any RFC-conformant peer, browsers included, answers without code of its own.
/// A Pong whose payload is not 8 bytes counts as activity only; one with a nonce never
/// sent counts as a mismatch, never as proof of a round trip.
///
/// [`answer_text`](Self::answer_text) makes it answer the agreed text message as well: a
/// server that probes its clients with Ping frames and answers browser scripts that send
/// `ping 7` with `pong 7` at once.
///
/// ```
/// use tether::heartbeat::{Inbound, Probe};
/// use tether::{Message, PingProbe};
///
/// let mut probe = PingProbe::new();
/// let ping = probe.probe(7);
/// assert_eq!(ping, Message::Ping(7u64.to_be_bytes().to_vec().into()));
/// let pong = Message::Pong(7u64.to_be_bytes().to_vec().into());
/// assert_eq!(probe.classify(&pong), Inbound::Pong(7));
/// assert_eq!(probe.classify(&Message::Pong("hi".into())), Inbound::Control);
/// assert_eq!(probe.classify(&Message::text("ping 7")), Inbound::Data);
///
/// let mut server = PingProbe::new().answer_text("ping", "pong");
/// assert_eq!(server.classify(&Message::text("ping 7")), Inbound::Ping);
/// assert_eq!(server.answer(&Message::text("ping 7")), Some(Message::text("pong 7")));
/// ```
#[derive(Debug, Clone, Default)]
pub struct PingProbe {
    text: Option<Words>,
}

impl PingProbe {
    /// Probes with Ping frames; answers nothing itself (the WebSocket answers Pings).
    pub fn new() -> PingProbe {
        PingProbe::default()
    }

    /// Also answers the agreed text message: a text message `"<ping>"` or `"<ping> <rest>"`
    /// is answered at once with `"<pong>"` or `"<pong> <rest>"` and not delivered to the
    /// application. Default: off, every text message is application data.
    pub fn answer_text(mut self, ping: impl Into<String>, pong: impl Into<String>) -> PingProbe {
        self.text = Some(Words::new(ping.into(), pong.into()));
        self
    }
}

impl Probe<Message> for PingProbe {
    fn probe(&mut self, nonce: u64) -> Message {
        Message::Ping(Bytes::copy_from_slice(&nonce.to_be_bytes()))
    }

    fn classify(&mut self, message: &Message) -> Inbound {
        match message {
            Message::Pong(payload) => match <[u8; 8]>::try_from(payload.as_ref()) {
                Ok(nonce) => Inbound::Pong(u64::from_be_bytes(nonce)),
                Err(_) => Inbound::Control,
            },
            Message::Text(text) => {
                // Only the peer's text pings matter; its text pongs answer nobody here.
                let is_ping = self
                    .text
                    .as_mut()
                    .is_some_and(|words| words.is_ping(text.as_str()));
                if is_ping {
                    Inbound::Ping
                } else {
                    Inbound::Data
                }
            }
            other => classify_common(other),
        }
    }

    fn answer(&mut self, probe: &Message) -> Option<Message> {
        answer_common(self.text.as_mut(), probe)
    }

    fn close(&mut self, code: u16, reason: &str) -> Option<Message> {
        close_message(code, reason)
    }

    fn len(message: &Message) -> usize {
        message.len()
    }
}

/// The heartbeat as the tutorial describes it: an agreed text message sent at an interval
/// (`"ping <nonce>"`) and answered at once (`"pong <nonce>"`), with configurable words.
///
/// For peers that cannot send Ping frames (a browser's `WebSocket` API has no `ping()`):
/// both sides agree on the words. The supervisor on the answering side (see
/// [`WebSocket::supervise`]) answers the agreed ping at once with this probe; a peer that
/// answers a bare `pong` shows activity but gives no round-trip proof. Protocol Ping frames
/// from the peer are still answered by the WebSocket and rate-limited like text pings.
///
/// ```
/// use tether::heartbeat::{Inbound, Probe};
/// use tether::{Message, TextPingProbe};
///
/// let mut probe = TextPingProbe::new("hb?", "hb!");
/// let ping = probe.probe(3);
/// assert_eq!(ping, Message::text("hb? 3"));
/// assert_eq!(probe.classify(&ping), Inbound::Ping);
/// assert_eq!(probe.answer(&ping), Some(Message::text("hb! 3")));
/// assert_eq!(probe.classify(&Message::text("hb! 3")), Inbound::Pong(3));
/// assert_eq!(probe.classify(&Message::text("hello")), Inbound::Data);
/// ```
#[derive(Debug, Clone)]
pub struct TextPingProbe {
    words: Words,
}

impl TextPingProbe {
    /// A probe whose ping and pong messages start with these words.
    pub fn new(ping: impl Into<String>, pong: impl Into<String>) -> TextPingProbe {
        TextPingProbe {
            words: Words::new(ping.into(), pong.into()),
        }
    }
}

impl Default for TextPingProbe {
    /// `ping <nonce>` / `pong <nonce>`.
    fn default() -> Self {
        TextPingProbe::new("ping", "pong")
    }
}

impl Probe<Message> for TextPingProbe {
    fn probe(&mut self, nonce: u64) -> Message {
        Message::from(self.words.text.probe(nonce))
    }

    fn classify(&mut self, message: &Message) -> Inbound {
        match message {
            Message::Text(text) => self.words.classify(text.as_str()),
            Message::Pong(_) => Inbound::Control,
            other => classify_common(other),
        }
    }

    fn answer(&mut self, probe: &Message) -> Option<Message> {
        answer_common(Some(&mut self.words), probe)
    }

    fn close(&mut self, code: u16, reason: &str) -> Option<Message> {
        close_message(code, reason)
    }

    fn len(message: &Message) -> usize {
        message.len()
    }
}

/// The agreed words, with a cheap test before the heartbeat crate's text probe parses.
#[derive(Debug, Clone)]
struct Words {
    ping: String,
    pong: String,
    text: TextProbe,
}

impl Words {
    fn new(ping: String, pong: String) -> Words {
        let text = TextProbe::new(ping.clone(), pong.clone());
        Words { ping, pong, text }
    }

    fn is_ping(&mut self, text: &str) -> bool {
        text.starts_with(self.ping.as_str()) && self.classify(text) == Inbound::Ping
    }

    fn classify(&mut self, text: &str) -> Inbound {
        // Data messages rarely start with a heartbeat word: only those are copied to be
        // parsed, so ordinary traffic costs a prefix comparison.
        if text.starts_with(self.ping.as_str()) || text.starts_with(self.pong.as_str()) {
            self.text.classify(&text.to_owned())
        } else {
            Inbound::Data
        }
    }
}

/// What Ping (answered by the WebSocket itself), Close and data frames are to either probe.
fn classify_common(message: &Message) -> Inbound {
    match message {
        Message::Ping(_) => Inbound::Ping,
        Message::Close(frame) => Inbound::Close(frame.as_ref().map(|frame| frame.code.0)),
        Message::Pong(_) => Inbound::Control,
        Message::Text(_) | Message::Binary(_) => Inbound::Data,
    }
}

/// The answer to an agreed text ping; `None` for a Ping frame, which the WebSocket answers.
fn answer_common(words: Option<&mut Words>, probe: &Message) -> Option<Message> {
    match (words, probe) {
        (Some(words), Message::Text(text)) => words
            .text
            .answer(&text.as_str().to_owned())
            .map(Message::from),
        _ => None,
    }
}

/// The close frame the supervisor sends before dropping a connection it gave up on.
fn close_message(code: u16, reason: &str) -> Option<Message> {
    // The supervisor's codes (1000, 1008, 1011) and short reasons are always sendable.
    CloseFrame::new(CloseCode(code), reason)
        .ok()
        .map(|frame| Message::Close(Some(frame)))
}

/// Opens a supervised client to `url` with the default [`ClientBuilder`] and the
/// [`PingProbe`]: it probes the server, measures round trips, declares it dead when the
/// answers stop, and reconnects with backoff, all as `config` says.
///
/// The first connection is opened by the supervisor's task, so this returns at once; watch
/// [`Supervisor::state`] or the [`events`](Supervisor::events) to see it open. Messages
/// sent before are kept in the outbox and go out, in order, once it is.
///
/// Must be called within a tokio runtime.
///
/// ```
/// use std::time::Duration;
/// use tether::heartbeat::{Event, KeepaliveConfig, SupervisorConfig};
/// use tether::{connect_supervised, Message, Server, SinkExt, StreamExt};
///
/// # tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(async {
/// let server = Server::bind("127.0.0.1:0").await?;
/// let url = format!("ws://{}/", server.local_addr()?);
/// tokio::spawn(server.serve(|mut ws, _conn| async move {
///     while let Some(Ok(message)) = ws.next().await {
///         if message.is_data() && ws.send(message).await.is_err() {
///             break;
///         }
///     }
/// }));
///
/// let mut config = SupervisorConfig::default();
/// config.set_keepalive(Some(KeepaliveConfig::with_interval(Duration::from_millis(50), None)));
/// let mut client = connect_supervised(&url, &config)?;
/// let mut events = client.events().unwrap();
/// client.send(Message::text("hello"))?;
/// assert_eq!(client.recv().await, Some(Message::text("hello")));
/// // The server's WebSocket answers the probes by itself: round trips are measured.
/// loop {
///     if let Some(Event::ProbeAcked { rtt: Some(rtt), .. }) = events.recv().await {
///         assert!(rtt < Duration::from_secs(1));
///         break;
///     }
/// }
/// client.close().await;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
///
/// [`Error::InvalidUrl`] for a URL that cannot open a WebSocket, [`Error::Heartbeat`] for
/// an invalid `config`. Failures to connect are the supervisor's business: it retries
/// those its policy calls retryable and otherwise ends in
/// [`LinkState::Closed`](tether_heartbeat::LinkState::Closed) with the reason.
pub fn connect_supervised(
    url: &str,
    config: &SupervisorConfig,
) -> Result<Supervisor<Message>, Error> {
    ClientBuilder::new().connect_supervised(url, config, PingProbe::new())
}

impl ClientBuilder {
    /// Like [`connect_supervised`], with this builder's headers, subprotocols, limits and
    /// TLS roots for every connection, and the probe of your choice.
    ///
    /// # Errors
    ///
    /// As for [`connect_supervised`].
    pub fn connect_supervised<P: Probe<Message>>(
        &self,
        url: &str,
        config: &SupervisorConfig,
        probe: P,
    ) -> Result<Supervisor<Message>, Error> {
        self.request(url)?;
        let builder = self.clone();
        let url = url.to_owned();
        let connect = move || {
            let builder = builder.clone();
            let url = url.clone();
            async move {
                match builder.connect(&url).await {
                    Ok(ws) => Ok(Supervised(ws)),
                    Err(error) => Err(logged_failure(&url, &error)),
                }
            }
        };
        Ok(Supervisor::connect(config, probe, connect)?)
    }

    /// A supervised client over byte streams that `open` provides (a TCP connection through
    /// a proxy, an in-memory pipe, a TLS stream set up elsewhere): each connection runs the
    /// Upgrade for `url` over a fresh stream from `open`. No TLS is added.
    ///
    /// # Errors
    ///
    /// As for [`connect_supervised`].
    pub fn supervise_with<S, P, F, Fut>(
        &self,
        url: &str,
        config: &SupervisorConfig,
        probe: P,
        mut open: F,
    ) -> Result<Supervisor<Message>, Error>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
        P: Probe<Message>,
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = std::io::Result<S>> + Send + 'static,
    {
        self.request(url)?;
        let builder = self.clone();
        let url = url.to_owned();
        let connect = move || {
            let opening = open();
            let builder = builder.clone();
            let url = url.clone();
            async move {
                let upgraded = match opening.await {
                    Ok(io) => builder.handshake(io, &url).await,
                    Err(error) => Err(Error::Io(error)),
                };
                upgraded
                    .map(Supervised)
                    .map_err(|error| logged_failure(&url, &error))
            }
        };
        Ok(Supervisor::connect(config, probe, connect)?)
    }
}

impl<S> WebSocket<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    /// Hands this connection to a supervisor that never reconnects: the server side of the
    /// heartbeat. It answers the peer's probes at once (agreed text pings through `probe`;
    /// Ping frames are answered by the WebSocket), strikes a peer that probes too often
    /// and closes it with 1008, and, when `config` has a keepalive, probes the peer and
    /// closes it with 1011 when it stops answering, so a silent client is reaped within
    /// a bound.
    ///
    /// ```
    /// use tether::heartbeat::SupervisorConfig;
    /// use tether::{accept, ClientBuilder, Message, SinkExt, StreamExt, TextPingProbe};
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
    /// let (client_io, server_io) = tokio::io::duplex(4096);
    /// let server = tokio::spawn(async move {
    ///     let mut config = SupervisorConfig::default();
    ///     config.set_keepalive(None); // answer probes, send none
    ///     let ws = accept(server_io).await?;
    ///     let mut supervised = ws.supervise(&config, TextPingProbe::default())?;
    ///     let first = supervised.recv().await;
    ///     Ok::<_, tether::Error>(first)
    /// });
    /// let mut ws = ClientBuilder::new().handshake(client_io, "ws://localhost/").await?;
    /// ws.send(Message::text("ping 42")).await?;
    /// assert_eq!(ws.next().await.unwrap()?, Message::text("pong 42"));
    /// ws.send(Message::text("hello")).await?;
    /// assert_eq!(server.await??, Some(Message::text("hello")));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// Must be called within a tokio runtime.
    ///
    /// # Errors
    ///
    /// [`Error::Heartbeat`] for an invalid `config`.
    pub fn supervise<P: Probe<Message>>(
        self,
        config: &SupervisorConfig,
        probe: P,
    ) -> Result<Supervisor<Message>, Error> {
        Ok(Supervisor::accept(config, probe, Supervised(self))?)
    }
}

/// A client connection that failed or could not open, logged once where it happened.
fn logged_failure(url: &str, error: &Error) -> Failure {
    let failure = error.failure();
    tracing::debug!(%url, %error, %failure, "supervised connection failed");
    failure
}

impl Error {
    /// What this error means to a reconnecting client: the [`Failure`] its retry policy
    /// decides on.
    ///
    /// Refused upgrades keep their HTTP status and `Retry-After` (in seconds); timeouts
    /// and I/O errors keep their kind; a connection that ended without a closing handshake
    /// is a close without code (1006). Errors that another attempt would meet again are not
    /// retryable: an invalid URL or TLS configuration, a certificate the TLS handshake
    /// refused, a server that is not a WebSocket server, a peer that violated the protocol.
    ///
    /// ```
    /// use tether::heartbeat::Failure;
    /// use tether::Error;
    ///
    /// assert_eq!(Error::AbnormalClosure.failure(), Failure::Closed { code: None });
    /// let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
    /// assert_eq!(Error::Io(refused).failure(), Failure::Io(std::io::ErrorKind::ConnectionRefused));
    /// assert!(matches!(
    ///     Error::from(tether::codec::Error::InvalidUtf8).failure(),
    ///     Failure::Other { retryable: false, .. }
    /// ));
    /// ```
    pub fn failure(&self) -> Failure {
        let fatal = || Failure::Other {
            message: self.to_string(),
            retryable: false,
        };
        match self {
            Error::Io(io) => io_failure(io).unwrap_or_else(fatal),
            Error::Handshake(handshake) => handshake_failure(handshake).unwrap_or_else(fatal),
            Error::ConnectTimeout(_) | Error::TlsTimeout(_) | Error::CloseTimeout(_) => {
                Failure::Timeout
            }
            Error::AbnormalClosure | Error::Closed => Failure::Closed { code: None },
            // A server cut this side off for reading too slowly: 1013, try again later.
            Error::SlowConsumer { .. } => Failure::Closed {
                code: Some(tether_codec::CloseCode::TRY_AGAIN_LATER.0),
            },
            Error::Protocol(_)
            | Error::Tls(_)
            | Error::InvalidUrl { .. }
            | Error::InvalidServerName(_)
            | Error::NotWebSocket
            | Error::Heartbeat(_) => fatal(),
        }
    }
}

/// An I/O error's failure; `None` (fatal) when it wraps a TLS error: a certificate that was
/// refused once is refused again.
fn io_failure(io: &std::io::Error) -> Option<Failure> {
    let tls = io
        .get_ref()
        .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some());
    (!tls).then(|| Failure::Io(io.kind()))
}

/// A handshake error's failure; `None` (fatal) for answers that will not change.
fn handshake_failure(error: &tether_handshake::Error) -> Option<Failure> {
    use tether_handshake::Error as Handshake;
    match error {
        Handshake::UnexpectedStatus(response) => Some(Failure::Http {
            status: response.status.as_u16(),
            retry_after: retry_after(&response.headers),
        }),
        Handshake::Timeout(_) => Some(Failure::Timeout),
        Handshake::Io(io) => io_failure(io),
        Handshake::ConnectionClosed => Some(Failure::Closed { code: None }),
        Handshake::Random => Some(Failure::Other {
            message: error.to_string(),
            retryable: true,
        }),
        _ => None,
    }
}

/// `Retry-After` as delay-seconds (RFC 9110 §10.2.3); the HTTP-date form is ignored (the
/// backoff applies alone then).
fn retry_after(headers: &http::HeaderMap) -> Option<Duration> {
    let value = headers.get(http::header::RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// A WebSocket as the supervisor's transport: every error carries its [`Failure`].
struct Supervised<S>(WebSocket<S>);

/// A facade error with the failure it means; the supervisor finds the failure as its
/// `source`.
#[derive(Debug)]
struct SupervisedError {
    error: Error,
    failure: Failure,
}

impl From<Error> for SupervisedError {
    fn from(error: Error) -> Self {
        let failure = error.failure();
        SupervisedError { error, failure }
    }
}

impl std::fmt::Display for SupervisedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

impl std::error::Error for SupervisedError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.failure)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Stream for Supervised<S> {
    type Item = Result<Message, SupervisedError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.get_mut().0)
            .poll_next(cx)
            .map(|item| item.map(|result| result.map_err(SupervisedError::from)))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Sink<Message> for Supervised<S> {
    type Error = SupervisedError;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut self.get_mut().0)
            .poll_ready(cx)
            .map_err(SupervisedError::from)
    }

    fn start_send(self: Pin<&mut Self>, item: Message) -> Result<(), Self::Error> {
        Pin::new(&mut self.get_mut().0)
            .start_send(item)
            .map_err(SupervisedError::from)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut self.get_mut().0)
            .poll_flush(cx)
            .map_err(SupervisedError::from)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut self.get_mut().0)
            .poll_close(cx)
            .map_err(SupervisedError::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tether_heartbeat::{Decision, DefaultRetryPolicy, RetryPolicy};

    fn decide(error: &Error) -> Decision {
        DefaultRetryPolicy::new(Duration::from_secs(5)).decide(&error.failure(), 1)
    }

    fn retry_after_of(value: &str) -> Option<Duration> {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::RETRY_AFTER,
            http::HeaderValue::from_str(value).unwrap(),
        );
        retry_after(&headers)
    }

    #[test]
    fn rfc9110_10_2_3_retry_after_is_read_as_delay_seconds_only() {
        assert_eq!(retry_after_of(" 9 "), Some(Duration::from_secs(9)));
        assert_eq!(retry_after_of("0"), Some(Duration::ZERO));
        // The HTTP-date form is not read: the backoff alone decides.
        assert_eq!(retry_after_of("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(retry_after_of("-1"), None);
        assert_eq!(retry_after(&http::HeaderMap::new()), None);
    }

    #[test]
    fn transient_errors_retry_and_lasting_ones_do_not() {
        let retry = Decision::Retry { floor: None };
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(decide(&Error::Io(refused)), retry);
        assert_eq!(
            decide(&Error::ConnectTimeout(Duration::from_secs(1))),
            retry
        );
        assert_eq!(
            decide(&Error::Handshake(tether_handshake::Error::Timeout(
                Duration::from_secs(1)
            ))),
            retry
        );
        assert_eq!(
            decide(&Error::Handshake(tether_handshake::Error::ConnectionClosed)),
            retry
        );
        assert_eq!(decide(&Error::AbnormalClosure), retry);
        let bad_cert = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        );
        assert_eq!(decide(&Error::Io(bad_cert)), Decision::Fatal);
        assert_eq!(
            decide(&Error::from(tether_codec::Error::MaskedFrame)),
            Decision::Fatal
        );
        assert_eq!(decide(&Error::NotWebSocket), Decision::Fatal);
        assert_eq!(
            decide(&Error::InvalidServerName("a b".into())),
            Decision::Fatal
        );
    }

    #[test]
    fn the_supervisor_reads_the_failure_from_the_error_source() {
        let error = SupervisedError::from(Error::AbnormalClosure);
        assert_eq!(Failure::from_error(&error), Failure::Closed { code: None });
        let error = SupervisedError::from(Error::from(tether_codec::Error::InvalidUtf8));
        assert!(matches!(
            Failure::from_error(&error),
            Failure::Other {
                retryable: false,
                ..
            }
        ));
        assert_eq!(
            error.to_string(),
            Error::from(tether_codec::Error::InvalidUtf8).to_string()
        );
    }

    #[test]
    fn rfc6455_5_5_3_only_an_eight_byte_pong_carries_a_nonce() {
        let mut probe = PingProbe::new();
        for nonce in [0, 1, u64::MAX] {
            let ping = probe.probe(nonce);
            let Message::Ping(payload) = &ping else {
                panic!("not a ping: {ping:?}");
            };
            assert_eq!(
                probe.classify(&Message::Pong(payload.clone())),
                Inbound::Pong(nonce)
            );
        }
        assert_eq!(
            probe.classify(&Message::Pong(Bytes::from_static(&[0; 7]))),
            Inbound::Control
        );
        assert_eq!(
            probe.classify(&Message::Pong(Bytes::from_static(&[0; 9]))),
            Inbound::Control
        );
        assert_eq!(probe.classify(&Message::Ping(Bytes::new())), Inbound::Ping);
        assert_eq!(probe.answer(&Message::Ping(Bytes::new())), None);
        assert_eq!(probe.classify(&Message::binary(vec![1])), Inbound::Data);
        assert_eq!(probe.classify(&Message::text("pong 1")), Inbound::Data);
        assert_eq!(PingProbe::len(&Message::text("abc")), 3);
    }

    #[test]
    fn rfc6455_7_4_1_close_codes_reach_the_supervisor() {
        let mut probe = TextPingProbe::default();
        let close = probe.close(1011, "heartbeat timeout").unwrap();
        assert_eq!(probe.classify(&close), Inbound::Close(Some(1011)));
        assert_eq!(
            PingProbe::new().classify(&Message::Close(None)),
            Inbound::Close(None)
        );
        // A code that may not be sent gives no close message rather than an error.
        assert_eq!(probe.close(1006, ""), None);
    }

    #[test]
    fn text_probe_answers_its_words_and_leaves_other_text_alone() {
        let mut probe = TextPingProbe::default();
        assert_eq!(probe.classify(&Message::text("pong")), Inbound::Control);
        assert_eq!(probe.classify(&Message::text("pongo")), Inbound::Data);
        assert_eq!(probe.classify(&Message::text("ping")), Inbound::Ping);
        assert_eq!(
            probe.answer(&Message::text("ping")),
            Some(Message::text("pong"))
        );
        assert_eq!(
            probe.classify(&Message::Pong(Bytes::new())),
            Inbound::Control
        );
        assert_eq!(probe.classify(&Message::Ping(Bytes::new())), Inbound::Ping);
        assert_eq!(probe.answer(&Message::Ping(Bytes::new())), None);
        let mut server = PingProbe::new().answer_text("ping", "pong");
        assert_eq!(server.classify(&Message::text("pong 3")), Inbound::Data);
        assert_eq!(server.classify(&Message::text("pings")), Inbound::Data);
    }
}
