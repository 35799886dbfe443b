//! Broadcast fan-out: one message to many connections, each subscriber bounded in bytes.
//!
//! A [`Fanout`] hands every published message to each of its [`Subscriber`]s. The payload is
//! shared, never copied per subscriber: each subscriber queues a [`Message`] whose [`Bytes`]
//! point at the same allocation, and [`Subscriber::write_to`] moves it into the connection's
//! write buffer piece by piece, only while that buffer has room
//! ([`WebSocketWriter::ready`]). A large message goes out as fragments of at most
//! 64 KiB (RFC 6455 §5.4; the peer receives one message), so control frames (an automatic
//! Pong) still get through between them. A server's fragments are queued by reference
//! ([`tether_codec::Protocol::send_fragment_bytes`]) and written from the published
//! allocation itself, so a connection that does not read holds references, not copies: one
//! copy of a message serves every subscriber. A client masks, so it copies at most one chunk
//! beyond its write buffer limit.
//!
//! ```text
//!                   ┌─► queue (Messages sharing one Bytes, in bytes) ─► write_to ─► writer
//! publish(message) ─┼─► queue ─► write_to ─► writer  (takes a chunk only when ready())
//!                   └─► queue ✗ over max_backlog: cut off, queue freed, write_to fails
//!                                with Error::SlowConsumer (close it with 1013)
//! ```
//!
//! Fragments are 64 KiB: a receiver that counts each continuation frame as at least some
//! bytes against its message limit (tether's codec: 64) counts exactly the payload, so a
//! message up to the receivers' limit gets through.
//!
//! **Slow-consumer policy.** A subscriber's backlog is the bytes published to it and not yet
//! taken into its write buffer, each message counting its payload + 64 bytes (so empty
//! messages are bounded too). A message shorter than 4 KiB is copied once when published, so
//! that a backlog holding it does not hold the whole read buffer it arrived in. A message
//! that would take a non-empty backlog above `max_backlog` cuts the subscriber off instead:
//! its queue is dropped at once (so it holds no payload any more), it receives nothing
//! further, and its [`Subscriber::write_to`] returns [`Error::SlowConsumer`], whose
//! [`close_code`](Error::close_code) is 1013 (Try Again Later, IANA "WebSocket Close Code
//! Number Registry": the server "is casting off some of its clients"). An empty backlog always takes the next message, so one message larger than
//! `max_backlog` is still delivered to subscribers that keep up: each one holds at most
//! `max_backlog` bytes or one message, whichever is larger.
//!
//! ```
//! use tether::fanout::Fanout;
//! use tether::{accept, ClientBuilder, Message, StreamExt};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
//! let (client_io, server_io) = tokio::io::duplex(64 << 10);
//! let hub = Fanout::new(1 << 20);
//! let mut subscriber = hub.subscribe();
//! let server = tokio::spawn(async move {
//!     let (_reader, mut writer) = accept(server_io).await?.split();
//!     subscriber.write_to(&mut writer).await // until the hub is dropped
//! });
//! let mut client = ClientBuilder::new().handshake(client_io, "ws://localhost/").await?;
//! assert_eq!(hub.publish(Message::text("to everyone")), 1);
//! assert_eq!(client.next().await.unwrap()?, Message::text("to everyone"));
//! drop(hub);
//! server.await??;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::future::poll_fn;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use futures_core::Stream;
use futures_sink::Sink;
use futures_util::task::AtomicWaker;
use futures_util::FutureExt as _;
use tether_codec::{Message, OpCode};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::error::Error;
use crate::held;
use crate::split::WebSocketWriter;

/// Largest piece of a published payload taken into one connection's write buffer at a time:
/// longer messages go out as fragments of this size.
const CHUNK: usize = 64 << 10;

/// The publishing side of a broadcast: cheap to clone, every clone publishes to the same
/// subscribers. When the last clone is dropped, subscribers end after their backlog.
#[derive(Clone)]
pub struct Fanout {
    hub: Arc<Hub>,
}

/// One receiving connection of a [`Fanout`]: a byte-bounded queue of shared messages.
/// Dropping it unsubscribes.
pub struct Subscriber {
    queue: Arc<Queue>,
    /// Publishing clones alive; `Weak` so subscribers do not keep the hub open.
    hub: Weak<Hub>,
    /// The hub's backlog limit, for the error.
    limit: usize,
    /// The writer was given something since its last completed flush.
    unflushed: bool,
}

struct Hub {
    max_backlog: usize,
    subscribers: Mutex<Vec<Weak<Queue>>>,
}

#[derive(Default)]
struct Queue {
    state: Mutex<Backlog>,
    waker: AtomicWaker,
}

#[derive(Default)]
struct Backlog {
    messages: VecDeque<Message>,
    /// Bytes of the front message already taken into the write buffer.
    sent: usize,
    /// Bytes published and not yet taken: every queued length minus `sent`.
    bytes: usize,
    /// Cut off for falling behind; nothing is queued any more.
    cut_off: bool,
}

impl Fanout {
    /// A fan-out whose subscribers may each fall `max_backlog` bytes behind (payload bytes
    /// published to it and not yet taken into its write buffer) before they are cut off.
    pub fn new(max_backlog: usize) -> Fanout {
        Fanout {
            hub: Arc::new(Hub {
                max_backlog,
                subscribers: Mutex::new(Vec::new()),
            }),
        }
    }

    /// The backlog limit of each subscriber, in bytes.
    pub fn max_backlog(&self) -> usize {
        self.hub.max_backlog
    }

    /// A new subscriber; it receives what is published from now on.
    pub fn subscribe(&self) -> Subscriber {
        let queue = Arc::new(Queue::default());
        self.hub.lock().push(Arc::downgrade(&queue));
        Subscriber {
            queue,
            hub: Arc::downgrade(&self.hub),
            limit: self.hub.max_backlog,
            unflushed: false,
        }
    }

    /// Queues `message` for every subscriber (sharing its payload) and returns how many took
    /// it. A subscriber that it would take past the backlog limit is cut off instead.
    pub fn publish(&self, message: Message) -> usize {
        let limit = self.hub.max_backlog;
        let message = held::own_copy_if_small(message);
        let cost = held::cost(&message);
        let mut taken = 0;
        self.hub.lock().retain(|queue| {
            let Some(queue) = queue.upgrade() else {
                return false;
            };
            let mut backlog = queue.lock();
            let over = !backlog.messages.is_empty() && backlog.bytes.saturating_add(cost) > limit;
            if over {
                tracing::debug!(backlog = backlog.bytes, limit, "slow subscriber cut off");
                *backlog = Backlog {
                    cut_off: true,
                    ..Backlog::default()
                };
            } else {
                backlog.messages.push_back(message.clone());
                backlog.bytes += cost;
                taken += 1;
            }
            drop(backlog);
            queue.waker.wake();
            !over
        });
        taken
    }

    /// Subscribers alive and not cut off.
    pub fn subscribers(&self) -> usize {
        let mut subscribers = self.hub.lock();
        subscribers.retain(|queue| queue.strong_count() > 0);
        subscribers.len()
    }
}

impl Subscriber {
    /// Bytes published to this subscriber and not yet taken into its write buffer, each
    /// message counting its payload + 64.
    pub fn backlog(&self) -> usize {
        self.queue.lock().bytes
    }

    /// Writes what is published to `writer`, each piece only once the write buffer has room,
    /// flushing whenever the queue runs dry. Cancel safe: a piece leaves the queue only when
    /// the write buffer takes it.
    ///
    /// Returns `Ok(())` once every [`Fanout`] clone is dropped and the backlog is written.
    ///
    /// # Errors
    ///
    /// [`Error::SlowConsumer`] once this subscriber was cut off for falling behind (close the
    /// connection with its [`close_code`](Error::close_code), 1013); the writer's errors.
    pub async fn write_to<S>(&mut self, writer: &mut WebSocketWriter<S>) -> Result<(), Error>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        poll_fn(|cx| self.poll_write_to(cx, writer)).await
    }

    fn poll_write_to<S>(
        &mut self,
        cx: &mut Context<'_>,
        writer: &mut WebSocketWriter<S>,
    ) -> Poll<Result<(), Error>>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        loop {
            self.queue.waker.register(cx.waker());
            let (cut_off, empty) = {
                let backlog = self.queue.lock();
                (backlog.cut_off, backlog.messages.is_empty())
            };
            if cut_off {
                return Poll::Ready(Err(Error::SlowConsumer { limit: self.limit }));
            }
            if empty {
                if self.unflushed {
                    ready!(Pin::new(&mut *writer).poll_flush(cx))?;
                    self.unflushed = false;
                }
                // Checked after registering the waker: a publish in between wakes us.
                if self.queue.lock().messages.is_empty() {
                    return match self.hub.strong_count() {
                        0 => Poll::Ready(Ok(())),
                        _ => Poll::Pending,
                    };
                }
                continue;
            }
            ready!(Pin::new(&mut *writer).poll_ready(cx))?;
            let Some(piece) = self.queue.lock().take_piece() else {
                continue;
            };
            self.unflushed = true;
            piece.write(writer)?;
        }
    }
}

/// Whole messages, for a connection that cannot take fragments (a heartbeat
/// [`Supervisor`](tether_heartbeat::Supervisor), say): each leaves the backlog when it is
/// returned, so the consumer's own buffer bounds what it holds beyond the backlog. Ends once
/// every [`Fanout`] clone is dropped and the backlog is read; yields
/// [`Error::SlowConsumer`] once, when this subscriber was cut off, then ends.
impl Stream for Subscriber {
    type Item = Result<Message, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.queue.waker.register(cx.waker());
        let mut backlog = self.queue.lock();
        if backlog.cut_off {
            if backlog.sent == usize::MAX {
                return Poll::Ready(None);
            }
            // Marks the error as reported; a cut-off backlog queues nothing any more.
            backlog.sent = usize::MAX;
            return Poll::Ready(Some(Err(Error::SlowConsumer { limit: self.limit })));
        }
        if let Some(message) = backlog.messages.pop_front() {
            backlog.bytes -= held::cost(&message) - backlog.sent;
            backlog.sent = 0;
            return Poll::Ready(Some(Ok(message)));
        }
        match self.hub.strong_count() {
            0 => Poll::Ready(None),
            _ => Poll::Pending,
        }
    }
}

/// What one step of [`Subscriber::write_to`] hands the writer.
enum Piece {
    Whole(Message),
    Fragment(OpCode, Bytes, bool),
}

impl Piece {
    /// Hands the piece to the writer, whose buffer has room (`poll_ready` said so): it is taken
    /// at once, and the send future is only polled to learn whether that worked.
    fn write<S>(self, writer: &mut WebSocketWriter<S>) -> Result<(), Error>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        match self {
            Piece::Whole(message) => Pin::new(writer).start_send(message),
            Piece::Fragment(opcode, data, fin) => {
                // The fragment enters the write buffer when `send_fragment` is called; a
                // pending flush is the `write_to` loop's business, so the future is dropped.
                match writer.send_fragment(opcode, data, fin).now_or_never() {
                    Some(Err(error)) => Err(error),
                    Some(Ok(())) | None => Ok(()),
                }
            }
        }
    }
}

impl Backlog {
    /// The next piece of the front message, at most [`CHUNK`] bytes of payload.
    fn take_piece(&mut self) -> Option<Piece> {
        let front = self.messages.front()?;
        let len = front.len();
        let (opcode, payload) = match front {
            Message::Text(text) if len > CHUNK => (OpCode::Text, text.as_bytes().clone()),
            Message::Binary(data) if len > CHUNK => (OpCode::Binary, data.clone()),
            _ => {
                let message = self.messages.pop_front()?;
                self.bytes -= held::cost(&message);
                return Some(Piece::Whole(message));
            }
        };
        let end = len.min(self.sent + CHUNK);
        let opcode = if self.sent == 0 {
            opcode
        } else {
            OpCode::Continuation
        };
        let piece = Piece::Fragment(opcode, payload.slice(self.sent..end), end == len);
        self.bytes -= end - self.sent;
        if end == len {
            self.messages.pop_front();
            self.bytes -= held::MESSAGE_OVERHEAD;
            self.sent = 0;
        } else {
            self.sent = end;
        }
        Some(piece)
    }
}

impl Hub {
    fn lock(&self) -> MutexGuard<'_, Vec<Weak<Queue>>> {
        // Every update under this lock is a single push or retain: a panic cannot leave the
        // list half-changed, so a poisoned lock is still usable.
        self.subscribers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// The last [`Fanout`] clone is gone: subscribers waiting for more must see the end.
impl Drop for Hub {
    fn drop(&mut self) {
        let subscribers = self
            .subscribers
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        for queue in subscribers.iter().filter_map(Weak::upgrade) {
            queue.waker.wake();
        }
    }
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, Backlog> {
        // As for `Hub::lock`: each update is complete or not started.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for Fanout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fanout")
            .field("max_backlog", &self.hub.max_backlog)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for Subscriber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscriber")
            .field("backlog", &self.backlog())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::held::MESSAGE_OVERHEAD as OVERHEAD;

    fn pieces(backlog: &mut Backlog) -> Vec<(usize, bool)> {
        std::iter::from_fn(|| backlog.take_piece())
            .map(|piece| match piece {
                Piece::Whole(message) => (message.len(), true),
                Piece::Fragment(_, data, fin) => (data.len(), fin),
            })
            .collect()
    }

    #[test]
    fn a_large_message_is_taken_in_chunks_that_share_its_payload() {
        let hub = Fanout::new(usize::MAX);
        let subscriber = hub.subscribe();
        let payload = Bytes::from(vec![7; 2 * CHUNK + 1]);
        assert_eq!(hub.publish(Message::Binary(payload.clone())), 1);
        assert_eq!(hub.publish(Message::text("small")), 1);
        assert_eq!(subscriber.backlog(), 2 * CHUNK + 1 + 5 + 2 * OVERHEAD);
        let mut backlog = subscriber.queue.lock();
        let Some(Piece::Fragment(OpCode::Binary, first, false)) = backlog.take_piece() else {
            panic!("not a first fragment");
        };
        // Zero-copy: the fragment points into the published allocation.
        assert_eq!(first.as_ptr(), payload.as_ptr());
        assert_eq!(backlog.bytes, CHUNK + 1 + 5 + 2 * OVERHEAD);
        assert_eq!(pieces(&mut backlog), [(CHUNK, false), (1, true), (5, true)]);
        assert_eq!(backlog.bytes, 0);
    }

    #[test]
    fn a_subscriber_is_cut_off_one_byte_past_its_backlog_limit() {
        let hub = Fanout::new(11 + 3 * OVERHEAD);
        let slow = hub.subscribe();
        assert_eq!(hub.publish(Message::binary(vec![0; 4])), 1);
        assert_eq!(hub.publish(Message::binary(vec![0; 6])), 1);
        // At the limit: 4 + 6 + 1 bytes and three messages behind.
        assert_eq!(hub.publish(Message::binary(vec![0; 1])), 1);
        assert_eq!(slow.backlog(), 11 + 3 * OVERHEAD);
        let keeping_up = hub.subscribe();
        // One past: an empty message counts its overhead; the slow one is cut off and its
        // queue freed.
        assert_eq!(hub.publish(Message::binary(vec![])), 1);
        assert_eq!(slow.backlog(), 0);
        assert!(slow.queue.lock().cut_off);
        assert_eq!(keeping_up.backlog(), OVERHEAD);
        assert_eq!(hub.subscribers(), 1);
    }

    /// A short message in a backlog does not keep the publisher's read buffer (held.rs).
    #[test]
    fn a_short_published_message_does_not_keep_the_read_buffer_it_arrived_in() {
        let hub = Fanout::new(1 << 20);
        let subscriber = hub.subscribe();
        let mut read = bytes::BytesMut::with_capacity(8 << 10);
        read.extend_from_slice(b"sixteen bytes..!and more");
        assert_eq!(hub.publish(Message::Binary(read.split_to(16).freeze())), 1);
        read.clear();
        assert!(read.try_reclaim(8 << 10), "the read buffer is alone");
        assert_eq!(subscriber.backlog(), 16 + OVERHEAD);
    }

    #[test]
    fn an_empty_backlog_takes_a_message_larger_than_the_limit() {
        let hub = Fanout::new(10);
        let subscriber = hub.subscribe();
        assert_eq!(hub.publish(Message::binary(vec![0; 100])), 1);
        assert_eq!(subscriber.backlog(), 100 + OVERHEAD);
        assert_eq!(hub.publish(Message::binary(vec![0; 1])), 0);
        drop(subscriber);
        assert_eq!(hub.subscribers(), 0);
    }
}

#[cfg(test)]
mod write_to_tests {
    use futures_util::StreamExt;

    use super::*;
    use crate::{accept, ClientBuilder};

    /// A server connection over `io` that subscribes to `hub` and writes what it publishes.
    fn serve_one<S>(hub: &Fanout, io: S) -> tokio::task::JoinHandle<Result<(), Error>>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let mut subscriber = hub.subscribe();
        tokio::spawn(async move {
            let (_reader, mut writer) = accept(io).await?.split();
            subscriber.write_to(&mut writer).await
        })
    }

    async fn client(io: tokio::io::DuplexStream) -> crate::WebSocket<tokio::io::DuplexStream> {
        ClientBuilder::new()
            .handshake(io, "ws://localhost/")
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn write_to_writes_what_is_published_and_ends_with_the_hub() {
        let (client_io, server_io) = tokio::io::duplex(64 << 10);
        let hub = Fanout::new(1 << 20);
        let server = serve_one(&hub, server_io);
        let mut client = client(client_io).await;
        assert_eq!(hub.publish(Message::text("to everyone")), 1);
        let got = client.next().await.unwrap().unwrap();
        assert_eq!(got, Message::text("to everyone"));
        drop(hub);
        server.await.unwrap().unwrap();
    }

    /// A transport that records the address range of every buffer written to it.
    struct Recording {
        io: tokio::io::DuplexStream,
        writes: Arc<Mutex<Vec<std::ops::Range<usize>>>>,
    }

    impl AsyncRead for Recording {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> Poll<std::io::Result<()>> {
            Pin::new(&mut self.io).poll_read(cx, buf)
        }
    }

    impl AsyncWrite for Recording {
        fn poll_write(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<std::io::Result<usize>> {
            let written = ready!(Pin::new(&mut self.io).poll_write(cx, buf))?;
            let start = buf.as_ptr() as usize;
            self.writes.lock().unwrap().push(start..start + written);
            Poll::Ready(Ok(written))
        }

        fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Pin::new(&mut self.io).poll_flush(cx)
        }

        fn poll_shutdown(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<std::io::Result<()>> {
            Pin::new(&mut self.io).poll_shutdown(cx)
        }
    }

    /// Issue 11: a large published message reaches the socket from the publisher's own
    /// allocation, chunk after chunk; no subscriber copies it into its write buffer.
    #[tokio::test]
    async fn write_to_writes_large_chunks_from_the_published_bytes() {
        let (client_io, server_io) = tokio::io::duplex(64 << 10);
        let writes = Arc::new(Mutex::new(Vec::new()));
        let server_io = Recording {
            io: server_io,
            writes: writes.clone(),
        };
        let hub = Fanout::new(usize::MAX);
        let server = serve_one(&hub, server_io);
        let mut client = client(client_io).await;
        let payload = Bytes::from(vec![7u8; 3 * CHUNK + 5]);
        writes.lock().unwrap().clear();
        assert_eq!(hub.publish(Message::Binary(payload.clone())), 1);
        assert_eq!(
            client.next().await.unwrap().unwrap(),
            Message::Binary(payload.clone())
        );
        drop(hub);
        server.await.unwrap().unwrap();
        let published = payload.as_ptr() as usize..payload.as_ptr() as usize + payload.len();
        let from_published: usize = writes
            .lock()
            .unwrap()
            .iter()
            .filter(|w| published.contains(&w.start) && w.end <= published.end)
            .map(|w| w.len())
            .sum();
        // The last 5 bytes are under the zero-copy threshold and copied with their header.
        assert_eq!(
            from_published,
            3 * CHUNK,
            "chunks written from the published bytes"
        );
    }
}
