//! `WebSocket<S>`: a `Stream` of received messages and a `Sink` of messages to send.

use std::fmt;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::BytesMut;
use futures_core::Stream;
use futures_sink::Sink;
use tether_codec::{CloseCode, CloseFrame, Message, Role, State};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::config::Config;
use crate::core::Core;
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
///   (or `start_send`) appends, `flush` writes. [`WebSocket::send`] appends and flushes.
/// - **Backpressure**: while the buffer holds [`Config::set_write_buffer_limit`] bytes or
///   more, `send` and `Sink::poll_ready` write first and wait until the peer took enough.
/// - **Closing**: [`WebSocket::close`] sends a close frame and waits for the peer's, bounded
///   by [`Config::set_close_timeout`]; then the transport is shut down (a server first, a
///   client after the server, RFC 6455 §7.1.1). The stream then ends and stays ended.
///
/// # Cancel safety
///
/// - `next()` (`poll_next`): cancel safe. Bytes read stay in the connection's buffer; a
///   message is only taken out when it is returned.
/// - [`WebSocket::send`]: cancel safe. The message is taken when `send` is called, before the
///   future is polled: into the write buffer, or (when the buffer is full) into a one-message
///   slot that is written before anything else. Dropping the future leaves it queued; it goes
///   out with the next flush, send or read. Only when a previous cancelled send still
///   occupies the slot does the new future hold its message until the slot is free.
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
        let offered = self.core.offer(message);
        async move {
            let mut held = offered?;
            poll_fn(|cx| {
                if held.is_some() {
                    ready!(self.core.poll_ready(cx))?;
                    if let Some(message) = held.take() {
                        self.core.start_send(message)?;
                    }
                }
                self.core.poll_flush(cx)
            })
            .await
        }
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
