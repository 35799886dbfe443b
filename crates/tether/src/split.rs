//! The two halves of a split [`WebSocket`](crate::WebSocket).
//!
//! Both halves share the connection behind a mutex that is held only inside a `poll` call,
//! never across an await. Every transport poll is made with one waker that wakes both halves:
//! a transport keeps one waker per direction, and the reader writes too (pongs, close
//! replies), so a waker registered by one half must not silence the other.

use std::fmt;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{ready, Context, Poll, Waker};

use bytes::Bytes;
use futures_core::Stream;
use futures_sink::Sink;
use futures_util::task::{waker, ArcWake, AtomicWaker};
use tether_codec::{CloseCode, CloseFrame, Message, OpCode, State};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::core::{Core, Outgoing};
use crate::error::Error;

/// The receiving half of a split [`WebSocket`](crate::WebSocket): a [`Stream`] of messages.
///
/// Polling it also writes the automatic pongs and the close echo, so a connection whose
/// writer is idle (or parked in another task) still answers pings. Cancel safety as for
/// `WebSocket::next`.
pub struct WebSocketReader<S> {
    shared: Arc<Shared<S>>,
}

/// The sending half of a split [`WebSocket`](crate::WebSocket): a [`Sink`] of messages, with
/// the same `send`, `flush` and `close` as the whole connection and the same cancel safety.
pub struct WebSocketWriter<S> {
    shared: Arc<Shared<S>>,
}

struct Shared<S> {
    core: Mutex<Core<S>>,
    wakers: Arc<Wakers>,
    /// Wakes both halves; every poll of the connection uses it.
    waker: Waker,
    reader_alive: AtomicBool,
    /// `Core::finish_now`, kept here because `Drop` cannot require the transport bounds.
    finish_now: fn(&mut Core<S>),
}

#[derive(Default)]
struct Wakers {
    reader: AtomicWaker,
    writer: AtomicWaker,
}

impl ArcWake for Wakers {
    fn wake_by_ref(arc_self: &Arc<Self>) {
        arc_self.reader.wake();
        arc_self.writer.wake();
    }
}

pub(crate) fn split<S>(core: Core<S>) -> (WebSocketReader<S>, WebSocketWriter<S>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let wakers = Arc::new(Wakers::default());
    let shared = Arc::new(Shared {
        core: Mutex::new(core),
        waker: waker(wakers.clone()),
        wakers,
        reader_alive: AtomicBool::new(true),
        finish_now: Core::finish_now,
    });
    (
        WebSocketReader {
            shared: shared.clone(),
        },
        WebSocketWriter { shared },
    )
}

impl<S> Shared<S> {
    fn lock(&self) -> MutexGuard<'_, Core<S>> {
        // A panic while the lock was held left the core as it was between two polls; the
        // driver's state stays consistent, so the poison is not propagated.
        self.core.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` on the core with the shared waker, after registering `own` for the half.
    fn poll_with<R>(
        &self,
        own: &AtomicWaker,
        cx: &Context<'_>,
        f: impl FnOnce(&mut Core<S>, &mut Context<'_>) -> R,
    ) -> R {
        own.register(cx.waker());
        let mut core = self.lock();
        let mut shared_cx = Context::from_waker(&self.waker);
        f(&mut core, &mut shared_cx)
    }
}

impl<S> WebSocketReader<S> {
    /// Where the closing handshake stands.
    pub fn state(&self) -> State {
        self.shared.lock().protocol().state()
    }
}

impl<S> Stream for WebSocketReader<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    type Item = Result<Message, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let shared = &self.shared;
        shared.poll_with(&shared.wakers.reader, cx, |core, cx| core.poll_next(cx))
    }
}

impl<S> Drop for WebSocketReader<S> {
    fn drop(&mut self) {
        self.shared.reader_alive.store(false, Ordering::Release);
        let finish_now = self.shared.finish_now;
        finish_now(&mut self.shared.lock());
        // A writer waiting for the reader to finish the close must now drive it itself.
        self.shared.wakers.writer.wake();
    }
}

impl<S> WebSocketWriter<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    /// Where the closing handshake stands.
    pub fn state(&self) -> State {
        self.shared.lock().protocol().state()
    }

    /// Bytes queued and not yet written to the transport.
    pub fn buffered_amount(&self) -> usize {
        self.shared.lock().buffered()
    }

    /// Sends `message`: queues it and flushes, waiting while the write buffer is at its limit.
    /// Same contract and cancel safety as [`WebSocket::send`](crate::WebSocket::send).
    ///
    /// # Errors
    ///
    /// As for [`WebSocket::send`](crate::WebSocket::send).
    pub fn send(&mut self, message: Message) -> impl Future<Output = Result<(), Error>> + '_ {
        self.send_outgoing(message.into())
    }

    /// Sends one fragment of a data message. Same contract and cancel safety as
    /// [`WebSocket::send_fragment`](crate::WebSocket::send_fragment); the reader keeps
    /// answering pings between the fragments.
    ///
    /// # Errors
    ///
    /// As for [`WebSocket::send_fragment`](crate::WebSocket::send_fragment).
    pub fn send_fragment(
        &mut self,
        opcode: OpCode,
        data: impl Into<Bytes>,
        fin: bool,
    ) -> impl Future<Output = Result<(), Error>> + '_ {
        self.send_outgoing(Outgoing::Fragment(opcode, data.into(), fin))
    }

    fn send_outgoing(&mut self, item: Outgoing) -> impl Future<Output = Result<(), Error>> + '_ {
        let offered = self.shared.lock().offer(item);
        async move {
            let mut held = offered?;
            poll_fn(|cx| {
                let shared = &self.shared;
                shared.poll_with(&shared.wakers.writer, cx, |core, cx| {
                    core.poll_send(cx, &mut held)
                })
            })
            .await
        }
    }

    /// Waits until a message can be taken straight into the write buffer. Same contract as
    /// [`WebSocket::ready`](crate::WebSocket::ready): cancel safe and holding no message.
    ///
    /// # Errors
    ///
    /// As for [`WebSocket::ready`](crate::WebSocket::ready).
    pub async fn ready(&mut self) -> Result<(), Error> {
        poll_fn(|cx| self.poll_core(cx, |core, cx| core.poll_ready(cx))).await
    }

    /// Writes everything queued and flushes the transport. Cancel safe.
    pub async fn flush(&mut self) -> Result<(), Error> {
        poll_fn(|cx| self.poll_core(cx, |core, cx| core.poll_flush(cx))).await
    }

    /// Sends a close frame (unless one was sent) and waits until the closing handshake is
    /// over: the reader sees the peer's close and ends. While the reader is alive it must be
    /// polled for that to happen; once it is dropped the writer reads (and drops) whatever
    /// still arrives itself. Bounded by the close timeout.
    ///
    /// # Errors
    ///
    /// As for [`WebSocket::close`](crate::WebSocket::close).
    pub fn close(
        &mut self,
        code: CloseCode,
        reason: &str,
    ) -> impl Future<Output = Result<Option<CloseFrame>, Error>> + '_ {
        let started = self.shared.lock().start_close(code, reason);
        async move {
            started?;
            poll_fn(|cx| self.poll_closed(cx)).await
        }
    }

    fn poll_closed(&self, cx: &mut Context<'_>) -> Poll<Result<Option<CloseFrame>, Error>> {
        if self.shared.reader_alive.load(Ordering::Acquire) {
            self.poll_core(cx, |core, cx| core.poll_ended(cx))
        } else {
            self.poll_core(cx, |core, cx| core.poll_until_closed(cx))
        }
    }

    fn poll_core<R>(
        &self,
        cx: &Context<'_>,
        f: impl FnOnce(&mut Core<S>, &mut Context<'_>) -> R,
    ) -> R {
        self.shared.poll_with(&self.shared.wakers.writer, cx, f)
    }
}

impl<S> Sink<Message> for WebSocketWriter<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.poll_core(cx, |core, cx| core.poll_ready(cx))
    }

    fn start_send(self: Pin<&mut Self>, item: Message) -> Result<(), Error> {
        self.shared.lock().start_send(item)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.poll_core(cx, |core, cx| core.poll_flush(cx))
    }

    /// Sends a normal close (1000) unless a close was sent, then waits like
    /// [`WebSocketWriter::close`].
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.shared.lock().start_close(CloseCode::NORMAL, "")?;
        ready!(self.poll_closed(cx))?;
        Poll::Ready(Ok(()))
    }
}

impl<S> fmt::Debug for WebSocketReader<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebSocketReader").finish_non_exhaustive()
    }
}

impl<S> fmt::Debug for WebSocketWriter<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebSocketWriter").finish_non_exhaustive()
    }
}
