//! `WebSocket<S>`: a `Stream` of received messages and a `Sink` of messages to send.

use std::fmt;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Bytes, BytesMut};
use futures_core::Stream;
use futures_sink::Sink;
use tether_codec::{CloseCode, CloseFrame, DeflateParams, Message, OpCode, Role, State};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::config::Config;
use crate::core::{Core, Outgoing};
use crate::error::Error;
use crate::split::{split, WebSocketReader, WebSocketWriter};

/// A WebSocket connection over any transport `S` (TCP, TLS, an in-memory pipe), after the
/// opening handshake.
///
/// It is a [`Stream`] of received [`Message`]s and a [`Sink`] of messages to send, built on
/// the codec's [`Protocol`](tether_codec::Protocol) state machine:
///
/// - **Reading**: one read takes as many bytes as are there and every complete frame in them
///   is handed out, one message per `poll_next`, without another syscall. Pings are answered
///   and a peer's close is echoed automatically; both replies are written even if the
///   application only reads. Received `Ping`, `Pong` and `Close` are shown to the application
///   as messages too (a heartbeat watches pongs that way).
/// - **Writing**: messages are appended to one write buffer and written in batches: `feed`
///   (or `start_send`) appends, `flush` writes. [`WebSocket::send`] appends and flushes,
///   even when more messages have already arrived: its message is on the wire before
///   whatever the application does next. To answer a burst with one write, `feed` each
///   answer and `flush` once `next()` has nothing more ready, as
///   [`StreamExt::forward`](crate::StreamExt::forward) does over [`WebSocket::split`]'s
///   halves.
///   [`WebSocket::send_fragment`] sends a data message in pieces (RFC 6455 §5.4), and
///   [`Config::set_send_fragment_size`] cuts every long message automatically.
/// - **Backpressure**: while the buffer holds [`Config::set_write_buffer_limit`] bytes or
///   more, `send` and `Sink::poll_ready` write first and wait until the peer took enough,
///   and the stream reads nothing more from the peer (TCP pushes back on it). Only the
///   latest ping is answered (RFC 6455 §5.5.3), so a peer that pings without reading costs
///   one pending pong.
/// - **Closing**: [`WebSocket::close`] sends a close frame and waits for the peer's, bounded
///   by [`Config::set_close_timeout`]; then the transport is shut down (a server first, a
///   client after the server, RFC 6455 §7.1.1). The stream then ends and stays ended.
///
/// # Cancel safety
///
/// - `next()` (`poll_next`): cancel safe. Bytes read stay in the connection's buffer; a
///   message is only taken out when it is returned.
/// - [`WebSocket::send`] and [`WebSocket::send_fragment`]: cancel safe. The message is taken
///   when `send` is called, before the future is polled: into the write buffer, or (when the
///   buffer is full) into a one-message slot that is written before anything else. Dropping the future leaves it queued; it goes
///   out with the next flush, send or read. Only when a previous cancelled send still
///   occupies the slot does the new future hold its message until the slot is free; dropping
///   that future drops its message unsent (never a partial frame). That is the price of a
///   bound: a peer that stops reading, met by a `select!` loop that keeps cancelling sends,
///   costs at most the write buffer limit plus one message, not one message per attempt.
///   Await [`WebSocket::ready`] in the `select!` instead, then `send`: nothing is lost.
/// - [`WebSocket::flush`]: cancel safe; bytes written stay written, the rest stays queued.
/// - `Sink` (`SinkExt::feed`, `SinkExt::send` from futures): `start_send` appends the whole
///   frame or nothing, so no cancellation tears a frame. The futures-util `Feed`/`Send`
///   futures own their message until `poll_ready` lets it in; dropping them before that
///   drops the message unsent. Prefer [`WebSocket::send`] in a `select!`.
/// - [`WebSocket::close`]: cancel safe in that the close frame is queued when `close` is
///   called; the handshake continues with the next read or close.
///
/// ```
/// use futures_util::{SinkExt, StreamExt};
/// use tether::{accept, ClientBuilder, Message};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
/// let (client_io, server_io) = tokio::io::duplex(64 << 10);
/// let server = tokio::spawn(async move {
///     let mut ws = accept(server_io).await?;
///     while let Some(message) = ws.next().await {
///         let message = message?;
///         if message.is_data() {
///             ws.send(message).await?;
///         }
///     }
///     Ok::<_, tether::Error>(())
/// });
/// let mut ws = ClientBuilder::new().handshake(client_io, "ws://localhost/echo").await?;
/// // Three messages, one write.
/// for text in ["one", "two", "three"] {
///     ws.feed(Message::text(text)).await?;
/// }
/// ws.flush().await?;
/// for text in ["one", "two", "three"] {
///     assert_eq!(ws.next().await.unwrap()?, Message::text(text));
/// }
/// let answer = ws.close(tether::CloseCode::NORMAL, "done").await?;
/// assert_eq!(answer.unwrap().code, tether::CloseCode::NORMAL);
/// assert!(ws.next().await.is_none());
/// server.await??;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct WebSocket<S> {
    core: Core<S>,
    subprotocol: Option<String>,
}

impl<S> WebSocket<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    /// Wraps a transport whose opening handshake is already done (by
    /// [`tether_handshake`] or by other means).
    ///
    /// `leftover` holds bytes read past the handshake: the peer's first frames, decoded
    /// before anything is read from `io`. Clients mask with keys from a CSPRNG seeded from
    /// the operating system.
    pub fn from_raw(
        io: S,
        role: Role,
        config: &Config,
        leftover: BytesMut,
        subprotocol: Option<String>,
    ) -> WebSocket<S> {
        WebSocket {
            core: Core::new(io, role, config, leftover),
            subprotocol,
        }
    }

    /// Switches on permessage-deflate as the handshake agreed (`params`), with the level and
    /// threshold of `config`'s deflate configuration for this role.
    pub(crate) fn with_deflate(mut self, params: Option<DeflateParams>, config: &Config) -> Self {
        if let Some(params) = params {
            let role = self.role();
            let deflate = config.deflate(role).unwrap_or_default();
            self.core.set_deflate(params, &deflate);
        }
        self
    }

    /// The permessage-deflate parameters agreed in the handshake, if compression is on.
    pub fn deflate(&self) -> Option<&DeflateParams> {
        self.core.protocol().deflate()
    }

    /// Which side of the connection this is.
    pub fn role(&self) -> Role {
        self.core.protocol().role()
    }

    /// Where the closing handshake stands.
    pub fn state(&self) -> State {
        self.core.protocol().state()
    }

    /// The subprotocol agreed in the handshake, if any.
    pub fn subprotocol(&self) -> Option<&str> {
        self.subprotocol.as_deref()
    }

    /// The peer's close frame, once it arrived with a code.
    pub fn peer_close(&self) -> Option<&CloseFrame> {
        self.core.peer_close()
    }

    /// Bytes queued and not yet written to the transport (a message parked by a `send` that
    /// met a full buffer counts with its payload).
    pub fn buffered_amount(&self) -> usize {
        self.core.buffered()
    }

    /// The transport.
    pub fn get_ref(&self) -> &S {
        self.core.get_ref()
    }

    /// Sends `message`: queues it and flushes. Waits first while the write buffer is at its
    /// limit (backpressure). A `Message::Close` starts the closing handshake; keep reading to
    /// see the peer's answer. See the type's doc for cancel safety.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] after a close was sent or the connection ended; a protocol error for
    /// an oversized control payload or an unsendable close code; I/O errors.
    pub fn send(&mut self, message: Message) -> impl Future<Output = Result<(), Error>> + '_ {
        self.send_outgoing(message.into())
    }

    /// Sends one fragment of a data message (RFC 6455 §5.4): for a message whose size is not
    /// known in advance, or to keep frames small so control frames go out between them.
    ///
    /// The first fragment has [`OpCode::Text`] or [`OpCode::Binary`], the following ones
    /// [`OpCode::Continuation`]; `fin` marks the last. Between the first and the last, pings,
    /// pongs (the automatic ones too) and a close may be sent, but no other data message. Text
    /// fragments may cut code points; the text as a whole must be UTF-8, and a fragment after
    /// which it cannot be is refused. The peer receives one message.
    ///
    /// Backpressure, flushing and cancel safety as for [`WebSocket::send`]: the fragment is
    /// taken when this is called. As for a whole message, a server's fragment of 16 KiB or
    /// more is written from the given [`Bytes`] without a copy, so slices of one shared
    /// payload can go to many connections.
    ///
    /// ```
    /// use tether::{accept, ClientBuilder, Message, OpCode, StreamExt};
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
    /// let (client_io, server_io) = tokio::io::duplex(64 << 10);
    /// let server = tokio::spawn(async move {
    ///     let mut ws = accept(server_io).await?;
    ///     while let Some(message) = ws.next().await {
    ///         let message = message?; // the ping between the fragments comes first
    ///         if message.is_data() {
    ///             ws.send(message).await?;
    ///         }
    ///     }
    ///     Ok::<_, tether::Error>(())
    /// });
    /// let mut ws = ClientBuilder::new().handshake(client_io, "ws://localhost/").await?;
    /// // A stream of unknown length, sent as it comes; "é" is cut between two fragments.
    /// let euro = "é".as_bytes();
    /// ws.send_fragment(OpCode::Text, &b"caf"[..], false).await?;
    /// ws.send_fragment(OpCode::Continuation, &euro[..1], false).await?;
    /// ws.send(Message::Ping("between".into())).await?;
    /// ws.send_fragment(OpCode::Continuation, &euro[1..], false).await?;
    /// ws.send_fragment(OpCode::Continuation, &b""[..], true).await?;
    /// assert_eq!(ws.next().await.unwrap()?, Message::Pong("between".into()));
    /// assert_eq!(ws.next().await.unwrap()?, Message::text("café"));
    /// ws.close(tether::CloseCode::NORMAL, "").await?;
    /// server.await??;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As for [`WebSocket::send`], and [`Error::Protocol`] with a local usage error of the
    /// codec (no close frame is sent for those): `MessageInProgress` for a new text or binary
    /// fragment or message while one is open, `NoMessageInProgress` for a continuation
    /// without one, `NotADataOpcode`, `InvalidTextFragment`.
    pub fn send_fragment(
        &mut self,
        opcode: OpCode,
        data: impl Into<Bytes>,
        fin: bool,
    ) -> impl Future<Output = Result<(), Error>> + '_ {
        self.send_outgoing(Outgoing::Fragment(opcode, data.into(), fin))
    }

    fn send_outgoing(&mut self, item: Outgoing) -> impl Future<Output = Result<(), Error>> + '_ {
        let offered = self.core.offer(item);
        Sending {
            core: &mut self.core,
            offered,
        }
    }

    /// Waits until a message can be taken straight into the write buffer: nothing parked and
    /// the buffer below its limit (writing to make room meanwhile). Cancel safe, and it holds
    /// no message, so it is the lossless way to wait for room in a `select!` loop: once it
    /// returns `Ok`, a [`WebSocket::send`] called before anything else takes its message into
    /// the buffer at once, and dropping that send future loses nothing.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tether::{accept, ClientBuilder, Message};
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
    /// let (client_io, server_io) = tokio::io::duplex(64 << 10);
    /// let server = tokio::spawn(async move { accept(server_io).await });
    /// let mut ws = ClientBuilder::new().handshake(client_io, "ws://localhost/").await?;
    /// let _server = server.await??;
    /// tokio::select! {
    ///     ready = ws.ready() => {
    ///         ready?;
    ///         // Taken into the write buffer now: even dropped unpolled, it goes out.
    ///         drop(ws.send(Message::text("queued")));
    ///     }
    ///     () = tokio::time::sleep(Duration::from_secs(5)) => unreachable!("the buffer is empty"),
    /// }
    /// assert!(ws.buffered_amount() > 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] once a close was sent or the connection ended; I/O errors.
    pub async fn ready(&mut self) -> Result<(), Error> {
        poll_fn(|cx| self.core.poll_ready(cx)).await
    }

    /// Writes everything queued and flushes the transport. Cancel safe.
    pub async fn flush(&mut self) -> Result<(), Error> {
        poll_fn(|cx| self.core.poll_flush(cx)).await
    }

    /// Runs the closing handshake: sends a close frame with `code` and `reason` (unless a
    /// close was sent already), waits for the peer's close within the close timeout, shuts the
    /// transport down. Messages that still arrive meanwhile are dropped; to read them, send
    /// `Message::Close` and keep reading the stream instead.
    ///
    /// Returns the peer's close frame (`None` if it carried no code).
    ///
    /// # Errors
    ///
    /// A protocol error for an unsendable code or a reason over 123 bytes (nothing is sent
    /// then); [`Error::CloseTimeout`]; [`Error::AbnormalClosure`] if the peer dropped the
    /// connection; I/O errors.
    pub fn close(
        &mut self,
        code: CloseCode,
        reason: &str,
    ) -> impl Future<Output = Result<Option<CloseFrame>, Error>> + '_ {
        let started = self.core.start_close(code, reason);
        async move {
            started?;
            poll_fn(|cx| self.core.poll_until_closed(cx)).await
        }
    }

    /// Splits the connection into a reader and a writer that can live in different tasks.
    /// The reader keeps answering pings while the writer is idle.
    pub fn split(self) -> (WebSocketReader<S>, WebSocketWriter<S>) {
        split(self.core)
    }
}

impl<S> Stream for WebSocket<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    type Item = Result<Message, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().core.poll_next(cx)
    }
}

/// The future of [`WebSocket::send`], written out rather than an `async` block: it is moved
/// into the caller's future on every send, and this is the smallest form of its state.
struct Sending<'a, S> {
    core: &'a mut Core<S>,
    /// What [`Core::offer`] made of the message: taken (`Ok(None)`), held until there is
    /// room (`Ok(Some)`), or refused.
    offered: Result<Option<Outgoing>, Error>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Future for Sending<'_, S> {
    type Output = Result<(), Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let this = self.get_mut();
        match &mut this.offered {
            Ok(held) => this.core.poll_send(cx, held),
            Err(_) => Poll::Ready(std::mem::replace(&mut this.offered, Ok(None)).map(drop)),
        }
    }
}

impl<S> Sink<Message> for WebSocket<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().core.poll_ready(cx)
    }

    fn start_send(self: Pin<&mut Self>, item: Message) -> Result<(), Error> {
        self.get_mut().core.start_send(item)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().core.poll_flush(cx)
    }

    /// Sends a normal close (1000) unless a close was sent, then runs the closing handshake
    /// to its end like [`WebSocket::close`].
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let core = &mut self.get_mut().core;
        core.start_close(CloseCode::NORMAL, "")?;
        ready!(core.poll_until_closed(cx))?;
        Poll::Ready(Ok(()))
    }
}

impl<S> fmt::Debug for WebSocket<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebSocket")
            .field("protocol", self.core.protocol())
            .field("subprotocol", &self.subprotocol)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use futures_util::StreamExt;
    use tokio::io::DuplexStream;
    use tokio::time::timeout;

    use super::*;

    fn pair(
        pipe: usize,
        client_config: &Config,
    ) -> (WebSocket<DuplexStream>, WebSocket<DuplexStream>) {
        let (a, b) = tokio::io::duplex(pipe);
        (
            WebSocket::from_raw(a, Role::Client, client_config, BytesMut::new(), None),
            WebSocket::from_raw(b, Role::Server, &Config::default(), BytesMut::new(), None),
        )
    }

    /// RFC 6455 §5.4 under backpressure: fragments wait for a peer that does not read, and a
    /// cancelled `send_fragment` leaves its fragment queued in order.
    #[tokio::test(start_paused = true)]
    async fn send_fragment_waits_for_the_peer_and_is_cancel_safe() {
        let mut config = Config::default();
        config.set_write_buffer_limit(4096);
        let (mut client, mut server) = pair(1024, &config);
        let piece = Bytes::from(vec![7u8; 8192]);
        let wait = Duration::from_secs(1);
        let first = timeout(
            wait,
            client.send_fragment(OpCode::Binary, piece.clone(), false),
        );
        assert!(first.await.is_err(), "waits while the peer does not read");
        let second = timeout(
            wait,
            client.send_fragment(OpCode::Continuation, piece.clone(), false),
        );
        assert!(second.await.is_err(), "the buffer is full: parked");
        assert!(
            client.buffered_amount() > 8192 + 4096,
            "both cancelled fragments queued"
        );
        let reader = tokio::spawn(async move { server.next().await });
        client
            .send_fragment(OpCode::Continuation, piece.clone(), true)
            .await
            .unwrap();
        let message = reader.await.unwrap().unwrap().unwrap();
        assert_eq!(message, Message::binary(vec![7u8; 3 * 8192]));
    }

    /// RFC 6455 §8.1 under backpressure: a parked text fragment that would make the message
    /// invalid is refused to the `send_fragment` that parked it; the message stays open.
    #[tokio::test(start_paused = true)]
    async fn parked_invalid_text_fragment_fails_its_own_send() {
        let mut config = Config::default();
        config.set_write_buffer_limit(4096);
        let (mut client, mut server) = pair(1024, &config);
        let first = timeout(
            Duration::from_secs(1),
            client.send_fragment(OpCode::Text, vec![b'a'; 8192], false),
        );
        assert!(first.await.is_err(), "waits while the peer does not read");
        let reader = tokio::spawn(async move { server.next().await });
        let refused = client
            .send_fragment(OpCode::Continuation, &b"\xff"[..], false)
            .await;
        assert!(matches!(
            refused,
            Err(Error::Protocol(tether_codec::Error::InvalidTextFragment))
        ));
        client
            .send_fragment(OpCode::Continuation, &b"b"[..], true)
            .await
            .unwrap();
        let message = reader.await.unwrap().unwrap().unwrap();
        assert_eq!(message, Message::text("a".repeat(8192) + "b"));
    }

    /// RFC 6455 §5.5.2: a split reader answers pings while the writer is between fragments.
    #[tokio::test]
    async fn split_reader_pongs_between_the_writers_fragments() {
        let (mut client, server) = pair(64 << 10, &Config::default());
        let (mut reader, mut writer) = server.split();
        writer
            .send_fragment(OpCode::Text, &b"first half, "[..], false)
            .await
            .unwrap();
        client.send(Message::Ping("mid".into())).await.unwrap();
        assert_eq!(
            reader.next().await.unwrap().unwrap(),
            Message::Ping("mid".into())
        );
        writer
            .send_fragment(OpCode::Continuation, &b"second half"[..], true)
            .await
            .unwrap();
        assert_eq!(
            client.next().await.unwrap().unwrap(),
            Message::Pong("mid".into())
        );
        assert_eq!(
            client.next().await.unwrap().unwrap(),
            Message::text("first half, second half")
        );
        // Misuse is reported to the caller and fails nothing.
        assert!(matches!(
            writer
                .send_fragment(OpCode::Continuation, &b"x"[..], true)
                .await,
            Err(Error::Protocol(tether_codec::Error::NoMessageInProgress))
        ));
        writer.send(Message::text("still open")).await.unwrap();
        assert_eq!(
            client.next().await.unwrap().unwrap(),
            Message::text("still open")
        );
    }

    /// With a send fragment size, a long text message (cut through code points; the codec tests
    /// check the frames) arrives whole.
    #[tokio::test]
    async fn send_fragment_size_cuts_long_messages() {
        let mut config = Config::default();
        config.set_send_fragment_size(std::num::NonZeroUsize::new(1000));
        let (mut client, mut server) = pair(64 << 10, &config);
        let text = "ü".repeat(2500);
        client.send(Message::text(text.clone())).await.unwrap();
        assert_eq!(server.next().await.unwrap().unwrap(), Message::text(text));
    }
}
