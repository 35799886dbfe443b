//! The closing handshake and the timers: the close deadline, the idle timeout, and finishing
//! the transport once both close frames are through.

use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tether_codec::{CloseCode, CloseFrame, Role, State};

use super::{Core, Phase, Transport};
use crate::error::Error;

impl<S: Transport> Core<S> {
    /// The close deadline ([`Core::deadline_failure`]) and the idle timeout
    /// ([`Core::poll_idle`]), when either is armed.
    #[inline]
    pub(super) fn poll_timers(&mut self, cx: &mut Context<'_>) -> Option<Error> {
        // Neither armed (most connections, most of the time): decided inline.
        if let Phase::Open { idle: None } = self.phase {
            return None;
        }
        self.poll_armed_timers(cx)
    }

    /// [`Core::poll_timers`] once one may be armed.
    pub(super) fn poll_armed_timers(&mut self, cx: &mut Context<'_>) -> Option<Error> {
        self.deadline_failure(cx).or_else(|| self.poll_idle(cx))
    }

    /// [`Core::poll_deadline`], ending the stream when the close deadline has passed.
    pub(super) fn deadline_failure(&mut self, cx: &mut Context<'_>) -> Option<Error> {
        let err = self.poll_deadline(cx)?;
        self.end();
        Some(err)
    }

    /// Queues a close frame unless one was sent already.
    pub(crate) fn start_close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        if self.ended() || self.protocol.state() != State::Open {
            return Ok(());
        }
        self.protocol.close(code, reason)?;
        self.arm_deadline();
        Ok(())
    }

    /// Drives the connection to its end, dropping messages that still arrive; returns the
    /// peer's close frame. The first error met is returned instead.
    pub(crate) fn poll_until_closed(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Option<CloseFrame>, Error>> {
        // Get the close frame out first, but never wait on the write alone: a peer that does
        // not read would hold us forever. `poll_next` waits on the write and the read together
        // and polls the close deadline whenever it waits.
        if let Poll::Ready(Err(err)) = self.poll_write_out(cx) {
            self.close_error.get_or_insert(err);
        }
        loop {
            match ready!(self.poll_next(cx)) {
                Some(Ok(message)) => {
                    tracing::trace!(len = message.len(), "message dropped while closing");
                }
                Some(Err(err)) => {
                    self.close_error.get_or_insert(err);
                }
                None => {
                    return Poll::Ready(match self.close_error.take() {
                        Some(err) => Err(err),
                        None => Ok(self.peer_close.clone().flatten()),
                    })
                }
            }
        }
    }

    /// Ready once the closing handshake is over: the stream has ended, or the reader has been
    /// handed the peer's close (or the failure), after which this call finishes the transport
    /// itself, so a reader that stops at the close does not hold the writer up.
    pub(crate) fn poll_ended(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Option<CloseFrame>, Error>> {
        match (&self.phase, self.protocol.state()) {
            (Phase::Ended, _) => return Poll::Ready(Ok(self.peer_close.clone().flatten())),
            (_, State::Closed) if self.close_seen() => {
                let finished = ready!(self.poll_finish(cx));
                self.end();
                return Poll::Ready(finished.map(|()| self.peer_close.clone().flatten()));
            }
            _ => {}
        }
        if let Poll::Ready(Err(err)) = self.poll_write_out(cx) {
            return Poll::Ready(Err(err));
        }
        if let Some(err) = self.deadline_failure(cx) {
            return Poll::Ready(Err(err));
        }
        self.end_waiter = Some(cx.waker().clone());
        Poll::Pending
    }

    /// Without waiting: writes what the transport takes now and shuts it down, once the
    /// closing handshake is over and nobody is left to drive it (a split reader dropped after
    /// the close). The transport would otherwise stay open until the writer is dropped too.
    pub(crate) fn finish_now(&mut self) {
        if self.ended() || self.protocol.state() != State::Closed {
            return;
        }
        let mut cx = Context::from_waker(futures_util::task::noop_waker_ref());
        let _ = self.poll_write_out(&mut cx);
        if !self.shutdown {
            let _ = Pin::new(&mut self.io).poll_shutdown(&mut cx);
            self.shutdown = true;
        }
        self.end();
    }

    /// After both close frames (or a failure): write what is left, let the server close the
    /// TCP connection first (RFC 6455 §7.1.1), shut the transport down.
    pub(super) fn poll_finish(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        match self.poll_write_out(cx) {
            Poll::Ready(_) => {}
            Poll::Pending => return self.pending_unless_deadline(cx),
        }
        // RFC 6455 §7.1.1: "the server ... SHOULD close the underlying TCP connection first";
        // the client waits for it, then closes its side.
        if self.protocol.role() == Role::Client && !self.eof {
            loop {
                self.protocol.read_buffer().clear();
                match self.poll_read(cx) {
                    Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => {
                        self.eof = true;
                        break;
                    }
                    Poll::Ready(Ok(_)) => continue,
                    // Both close frames were exchanged: a server that keeps the TCP
                    // connection open past the deadline does not make the close a failure.
                    Poll::Pending if self.deadline_elapsed(cx) => break,
                    Poll::Pending => return Poll::Pending,
                }
            }
        }
        if !self.shutdown {
            if Pin::new(&mut self.io).poll_shutdown(cx).is_pending() {
                return self.pending_unless_deadline(cx);
            }
            self.shutdown = true;
        }
        Poll::Ready(Ok(()))
    }

    pub(super) fn pending_unless_deadline(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), Error>> {
        match self.poll_deadline(cx) {
            Some(err) => Poll::Ready(Err(err)),
            None => Poll::Pending,
        }
    }

    pub(super) fn deadline_elapsed(&mut self, cx: &mut Context<'_>) -> bool {
        match &mut self.phase {
            Phase::Closing {
                deadline: Some(deadline),
            } => deadline.as_mut().poll(cx).is_ready(),
            _ => false,
        }
    }

    /// `Some(CloseTimeout)` once the close deadline passed; the transport is shut down then.
    pub(super) fn poll_deadline(&mut self, cx: &mut Context<'_>) -> Option<Error> {
        self.deadline_elapsed(cx).then(|| {
            tracing::debug!("closing handshake timed out; shutting the transport down");
            if !self.shutdown {
                // One attempt, without waiting: the peer is not cooperating.
                let _ = Pin::new(&mut self.io).poll_shutdown(cx);
                self.shutdown = true;
            }
            Error::CloseTimeout(self.close_timeout.unwrap_or_default())
        })
    }

    /// `Some(IdleTimeout)` once nothing was received for the idle timeout; the close frame
    /// with 1001 is queued then (see `Config::set_idle_timeout`).
    pub(super) fn poll_idle(&mut self, cx: &mut Context<'_>) -> Option<Error> {
        let Phase::Open { idle: Some(idle) } = &mut self.phase else {
            return None;
        };
        if idle.as_mut().poll(cx).is_pending() {
            return None;
        }
        let timeout = self.idle_timeout.unwrap_or_default();
        tracing::debug!(
            ?timeout,
            "nothing received for the idle timeout; closing with 1001"
        );
        let closed = self.start_close(CloseCode::GOING_AWAY, "idle timeout");
        // Out of the open phase even if the close could not be queued: it fires once.
        self.arm_deadline();
        if let Err(err) = closed {
            return Some(err);
        }
        let _ = self.poll_write_out(cx);
        Some(Error::IdleTimeout(timeout))
    }

    pub(super) fn restart_idle(&mut self) {
        if let (Phase::Open { idle: Some(idle) }, Some(timeout)) =
            (&mut self.phase, self.idle_timeout)
        {
            idle.as_mut().reset(tokio::time::Instant::now() + timeout);
        }
    }

    /// Open → Closing: from here the close deadline bounds what is left, and idleness no
    /// longer matters.
    pub(super) fn arm_deadline(&mut self) {
        if let Phase::Open { .. } = self.phase {
            self.phase = Phase::Closing {
                deadline: self
                    .close_timeout
                    .map(|timeout| Box::pin(tokio::time::sleep(timeout))),
            };
        }
    }
}
