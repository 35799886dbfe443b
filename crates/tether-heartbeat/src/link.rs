//! The tokio driver of one connection: timers, reads and writes around the sans-IO
//! keepalive. One poll loop, no per-frame timer resets, nothing spawned.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant as StdInstant};

use futures_core::Stream;
use futures_sink::Sink;
use tokio::sync::futures::Notified;
use tokio::sync::{mpsc, watch, Notify};
use tokio::time::{Instant, Sleep};

use crate::close::{CloseReason, Failure, Farewell};
use crate::inbox::InboxSender;
use crate::keepalive::{Health, Keepalive, PongOutcome, Timing};
use crate::outbox::Outbox;
use crate::probe::{Inbound, Probe};
use crate::responder::{ProbeRateLimit, RateVerdict, ResponderConfig};
use crate::splitmix::splitmix64;
use crate::state::{Event, LinkState};
use crate::transport::Transport;

/// Poll-loop rounds before yielding to the runtime, so one busy link cannot starve others.
const ROUNDS: usize = 32;
/// Inbound messages handled per round.
const READ_BUDGET: usize = 64;
/// Outbound messages fed per round before a flush.
const WRITE_BUDGET: usize = 64;

/// State shared by the handle and the supervisor task.
pub(crate) struct Shared<M> {
    outbox: Mutex<Outbox<M>>,
    events: mpsc::Sender<Event>,
    events_dropped: AtomicU64,
    state: watch::Sender<LinkState>,
    /// Senders waiting for room in the outbox (or for it to empty): woken whenever the
    /// link takes messages out of it, and when the supervisor stops.
    outbox_room: Notify,
}

impl<M> Shared<M> {
    pub(crate) fn new(
        outbox: Outbox<M>,
        events: mpsc::Sender<Event>,
        state: watch::Sender<LinkState>,
    ) -> Self {
        Shared {
            outbox: Mutex::new(outbox),
            events,
            events_dropped: AtomicU64::new(0),
            state,
            outbox_room: Notify::new(),
        }
    }

    pub(crate) fn outbox(&self) -> MutexGuard<'_, Outbox<M>> {
        // A panic while holding the lock cannot leave the queue half-updated (each
        // operation is a single push or pop), so a poisoned lock is still usable.
        self.outbox
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The outbox lost messages (taken, expired) or the link stopped: senders waiting for
    /// room look again.
    pub(crate) fn outbox_changed(&self) {
        self.outbox_room.notify_waiters();
    }

    /// Completes at the next [`outbox_changed`](Self::outbox_changed) after it is
    /// enabled (`Notified::enable`), so a check made after enabling misses no change.
    pub(crate) fn outbox_room(&self) -> Notified<'_> {
        self.outbox_room.notified()
    }

    /// Sends an event without ever blocking; counts it when the channel is full.
    pub(crate) fn emit(&self, event: Event) {
        if self.events.try_send(event).is_err() {
            self.events_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn events_dropped(&self) -> u64 {
        self.events_dropped.load(Ordering::Relaxed)
    }

    pub(crate) fn set_state(&self, state: LinkState) {
        let closed = matches!(state, LinkState::Closed(_));
        self.state.send_if_modified(|current| {
            if *current == state {
                false
            } else {
                *current = state;
                true
            }
        });
        if closed {
            self.outbox_changed();
        }
    }
}

/// What the handle asks of the task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Command {
    /// The outbox has something new.
    Wake,
    /// Close, with this farewell and text instead of those of [`CloseReason::Local`].
    Close(Option<(Farewell, Box<str>)>),
    ReconnectNow,
    Pause,
    Resume,
}

/// Why a link ended.
#[derive(Debug)]
pub(crate) enum End {
    Failed(Failure),
    Close,
    ReconnectNow,
    Pause,
    HandleDropped,
}

/// Everything a link needs that outlives it (one per supervisor task).
pub(crate) struct Ctx<M, P> {
    pub(crate) probe: P,
    pub(crate) shared: Arc<Shared<M>>,
    pub(crate) commands: mpsc::Receiver<Command>,
    /// The application's inbound messages, bounded by count and bytes.
    pub(crate) inbound: InboxSender<M>,
    /// Checked when the supervisor was built.
    pub(crate) keepalive: Option<Timing>,
    pub(crate) responder: ResponderConfig,
    pub(crate) close_grace: Duration,
    pub(crate) rng: u64,
}

/// Supervises one open transport until it ends, dies or is closed on request.
pub(crate) async fn run_link<T, M, E, P>(ctx: &mut Ctx<M, P>, transport: T) -> End
where
    T: Transport<M, E>,
    M: Send + 'static,
    E: std::error::Error + 'static,
    P: Probe<M>,
{
    let now = Instant::now();
    let seed = splitmix64(&mut ctx.rng);
    let core = ctx
        .keepalive
        .map(|timing| Keepalive::start(timing, now.into_std(), seed));
    let rate = ProbeRateLimit::new(&ctx.responder);
    ctx.shared.set_state(LinkState::Open(Health::Healthy));
    let mut link = Link {
        ctx,
        transport,
        core,
        rate,
        sleep: Box::pin(tokio::time::sleep_until(now)),
        pending_out: None,
        unflushed: false,
        batch_probe: None,
        reply: None,
        peer_close: None,
        reading_paused: false,
        read_all: false,
        closing: None,
        health: Health::Healthy,
        stream_done: false,
        commands_armed: false,
    };
    poll_fn(|cx| link.poll(cx)).await
}

struct Link<'c, T, M, P> {
    ctx: &'c mut Ctx<M, P>,
    transport: T,
    core: Option<Keepalive>,
    rate: ProbeRateLimit,
    sleep: Pin<Box<Sleep>>,
    /// Taken for writing, waiting for the sink to be ready.
    pending_out: Option<Outgoing<M>>,
    /// Something was fed since the last completed flush.
    unflushed: bool,
    /// The newest probe fed since the last completed flush.
    batch_probe: Option<u64>,
    /// The answer to the peer's latest probe (a newer one replaces it: a pong
    /// acknowledges every earlier probe).
    reply: Option<M>,
    peer_close: Option<u16>,
    reading_paused: bool,
    /// The last read pass stopped because the transport had nothing more (not at its
    /// budget, not paused).
    read_all: bool,
    closing: Option<Closing<M>>,
    health: Health,
    stream_done: bool,
    /// The command receiver was polled to Pending on this link: it holds the task's
    /// waker.
    commands_armed: bool,
}

struct Closing<M> {
    end: End,
    deadline: Instant,
    message: Option<M>,
    /// A close message was built, so the peer's end of the stream is worth waiting for.
    await_peer: bool,
}

enum Outgoing<M> {
    Reply(M),
    Probe(u64, M),
    Queued {
        at: StdInstant,
        len: usize,
        message: M,
    },
    Close(M),
}

impl<T, M, E, P> Link<'_, T, M, P>
where
    T: Stream<Item = Result<M, E>> + Sink<M, Error = E> + Unpin,
    M: Send + 'static,
    E: std::error::Error + 'static,
    P: Probe<M>,
{
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<End> {
        for round in 0..ROUNDS {
            let now = Instant::now();
            let std_now = now.into_std();
            // Once per call: a command that comes later wakes the task (the receiver is
            // registered), and each look registers again (a cost on every message).
            if round == 0 && self.closing.is_none() && !self.commands_idle() {
                self.poll_commands(cx);
            }
            if self.closing.is_none() {
                if let Some(core) = &mut self.core {
                    if let Some(at) = self.ctx.probe.seen_elsewhere() {
                        core.on_inbound(at);
                    }
                    if core.poll_timeout().is_some_and(|at| at <= std_now) {
                        core.handle_timeout(std_now);
                    }
                }
                self.sync_health();
            }
            let wrote = match self.poll_write(cx, std_now) {
                Ok(progress) => progress,
                Err(failure) => return Poll::Ready(self.finish(Some(failure))),
            };
            let read = match self.poll_read(cx, std_now) {
                Ok(progress) => progress,
                Err(failure) => return Poll::Ready(self.finish(Some(failure))),
            };
            if self.closing.is_none() {
                self.sync_health();
            }
            if let Some(closing) = &self.closing {
                let flushed = !self.unflushed && closing.message.is_none();
                let peer_done = self.stream_done || !closing.await_peer;
                if (flushed && peer_done) || now >= closing.deadline {
                    return Poll::Ready(self.finish(None));
                }
            }
            // Another round only if it can do something: a read that emptied the
            // transport and left nothing to answer needs none (a pass per message less).
            let answer = self.reply.is_some() || self.closing.is_some();
            if wrote || (read && (!self.read_all || answer)) {
                continue;
            }
            if let Some(at) = self.next_deadline() {
                if self.sleep.deadline() != at {
                    self.sleep.as_mut().reset(at);
                }
                if self.sleep.as_mut().poll(cx).is_ready() {
                    continue;
                }
            }
            return Poll::Pending;
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// Whether the command receiver holds this task's waker and nothing came since: a
    /// command, or the handle going, wakes the task and makes the channel non-empty or
    /// closed. (Registering again on every poll was a cost on every message.)
    fn commands_idle(&self) -> bool {
        let commands = &self.ctx.commands;
        self.commands_armed && commands.is_empty() && !commands.is_closed()
    }

    fn poll_commands(&mut self, cx: &mut Context<'_>) {
        let mut custom = None;
        let end = loop {
            // Outside the task's budget: a Pending for a spent budget would not register
            // the waker, and `commands_idle` would then trust a registration never made.
            let commands = &mut self.ctx.commands;
            let mut next = tokio::task::unconstrained(poll_fn(|cx| commands.poll_recv(cx)));
            match Pin::new(&mut next).poll(cx) {
                Poll::Pending => {
                    self.commands_armed = true;
                    return;
                }
                Poll::Ready(None) => break End::HandleDropped,
                Poll::Ready(Some(Command::Wake | Command::Resume)) => {}
                Poll::Ready(Some(Command::Close(with))) => {
                    custom = with;
                    break End::Close;
                }
                Poll::Ready(Some(Command::ReconnectNow)) => break End::ReconnectNow,
                Poll::Ready(Some(Command::Pause)) => break End::Pause,
            }
        };
        let close = match &custom {
            Some((farewell, text)) => Some((*farewell, &**text)),
            None => CloseReason::Local.close_message(),
        };
        self.begin_close(close, end);
    }

    /// Starts closing: `close` is the farewell and text of the close message to send, if
    /// any (the probe may still have no message for them).
    fn begin_close(&mut self, close: Option<(Farewell, &str)>, end: End) {
        if self.closing.is_some() {
            return;
        }
        let message = close.and_then(|(farewell, text)| self.ctx.probe.close(farewell, text));
        self.restore_pending();
        self.closing = Some(Closing {
            end,
            deadline: Instant::now() + self.ctx.close_grace,
            await_peer: message.is_some(),
            message,
        });
    }

    /// A queued message taken for writing but never fed goes back to the outbox front.
    fn restore_pending(&mut self) {
        if let Some(Outgoing::Queued { at, len, message }) = self.pending_out.take() {
            self.ctx.shared.outbox().restore(at, len, message);
        }
    }

    fn finish(&mut self, failure: Option<Failure>) -> End {
        self.restore_pending();
        match (self.closing.take(), failure) {
            (Some(closing), _) => closing.end,
            (None, Some(failure)) => End::Failed(failure),
            (None, None) => End::Failed(Failure::Closed {
                code: self.peer_close,
            }),
        }
    }

    fn sync_health(&mut self) {
        let Some(core) = &self.core else {
            return;
        };
        if let Some(reason) = core.dead() {
            tracing::warn!(%reason, misses = core.misses(), "peer declared dead, closing");
            self.ctx.shared.emit(Event::Dead(reason.clone()));
            self.begin_close(reason.close_message(), End::Failed(Failure::Local(reason)));
            return;
        }
        let health = core.health();
        if health == self.health {
            return;
        }
        let event = match health {
            Health::Suspect => Event::Suspect {
                misses: core.misses(),
            },
            Health::LocalStall(cause) => Event::LocalStall(cause),
            _ => Event::Recovered,
        };
        tracing::debug!(?health, timeout = ?core.timeout(), "keepalive health changed");
        self.health = health;
        self.ctx.shared.emit(event);
        self.ctx.shared.set_state(LinkState::Open(health));
    }

    fn next_deadline(&self) -> Option<Instant> {
        let core = if self.closing.is_none() {
            self.core
                .as_ref()
                .and_then(Keepalive::poll_timeout)
                .map(Instant::from_std)
        } else {
            None
        };
        let closing = self.closing.as_ref().map(|c| c.deadline);
        match (core, closing) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn take_outgoing(&mut self, now: StdInstant) -> Option<Outgoing<M>> {
        if let Some(closing) = &mut self.closing {
            return closing.message.take().map(Outgoing::Close);
        }
        if let Some(reply) = self.reply.take() {
            return Some(Outgoing::Reply(reply));
        }
        if let Some(core) = &mut self.core {
            if let Some(nonce) = core.poll_probe(now) {
                return Some(Outgoing::Probe(nonce, self.ctx.probe.probe(nonce)));
            }
        }
        let (entry, expired) = {
            let mut outbox = self.ctx.shared.outbox();
            (outbox.pop_entry(now), outbox.take_expired())
        };
        if entry.is_some() || expired > 0 {
            self.ctx.shared.outbox_changed();
        }
        if expired > 0 {
            self.ctx
                .shared
                .emit(Event::OutboxExpired { messages: expired });
        }
        entry.map(|(at, len, message)| Outgoing::Queued { at, len, message })
    }

    fn poll_write(&mut self, cx: &mut Context<'_>, now: StdInstant) -> Result<bool, Failure> {
        let mut progress = false;
        let mut fed = 0;
        loop {
            if self.pending_out.is_none() && fed < WRITE_BUDGET {
                self.pending_out = self.take_outgoing(now);
            }
            if let Some(outgoing) = self.pending_out.take() {
                match Pin::new(&mut self.transport).poll_ready(cx) {
                    Poll::Ready(Ok(())) => {
                        let message = match outgoing {
                            Outgoing::Probe(nonce, message) => {
                                self.batch_probe = Some(nonce);
                                message
                            }
                            Outgoing::Reply(message)
                            | Outgoing::Close(message)
                            | Outgoing::Queued { message, .. } => message,
                        };
                        Pin::new(&mut self.transport)
                            .start_send(message)
                            .map_err(|e| Failure::from_error(&e))?;
                        self.unflushed = true;
                        fed += 1;
                        progress = true;
                        continue;
                    }
                    Poll::Ready(Err(e)) => {
                        self.pending_out = Some(outgoing);
                        return Err(Failure::from_error(&e));
                    }
                    Poll::Pending => self.pending_out = Some(outgoing),
                }
            }
            if !self.unflushed {
                return Ok(progress);
            }
            match Pin::new(&mut self.transport).poll_flush(cx) {
                Poll::Ready(Ok(())) => {
                    self.unflushed = false;
                    progress = true;
                    if let Some(core) = &mut self.core {
                        core.on_outbound(now);
                        if let Some(nonce) = self.batch_probe.take() {
                            core.on_probe_written(now, nonce);
                            self.ctx.shared.emit(Event::ProbeSent { nonce });
                        }
                    }
                    if fed >= WRITE_BUDGET {
                        return Ok(progress);
                    }
                }
                Poll::Ready(Err(e)) => return Err(Failure::from_error(&e)),
                Poll::Pending => return Ok(progress),
            }
        }
    }

    fn poll_read(&mut self, cx: &mut Context<'_>, now: StdInstant) -> Result<bool, Failure> {
        self.read_all = false;
        if self.stream_done {
            return Ok(false);
        }
        let mut progress = false;
        for _ in 0..READ_BUDGET {
            // Backpressure: the inbound queue is bounded by count and by
            // bytes; when either is full, reading pauses and TCP pushes back. While
            // closing too: data that arrives before the peer's close still reaches an
            // application that keeps receiving (`Supervisor::start_close`); the close
            // grace bounds the wait. One that stopped receiving has closed the queue, and
            // what arrives is dropped.
            let deliver = match self.ctx.inbound.poll_room(cx) {
                Poll::Ready(Ok(())) => {
                    self.set_reading_paused(now, false);
                    true
                }
                Poll::Ready(Err(_)) if self.closing.is_some() => false,
                Poll::Ready(Err(_)) => {
                    // The application dropped its receiver: the handle is gone.
                    self.begin_close(CloseReason::Local.close_message(), End::HandleDropped);
                    return Ok(true);
                }
                Poll::Pending => {
                    self.set_reading_paused(now, true);
                    self.poll_own_writes(cx)?;
                    return Ok(progress);
                }
            };
            match Pin::new(&mut self.transport).poll_next(cx) {
                Poll::Ready(Some(Ok(message))) => {
                    progress = true;
                    if self.closing.is_none() {
                        self.on_message(now, message);
                    } else if deliver {
                        self.on_message_while_closing(message);
                    }
                }
                Poll::Ready(Some(Err(e))) => {
                    if self.closing.is_some() {
                        self.stream_done = true;
                        return Ok(true);
                    }
                    return Err(Failure::from_error(&e));
                }
                Poll::Ready(None) => {
                    if self.closing.is_some() {
                        self.stream_done = true;
                        return Ok(true);
                    }
                    return Err(Failure::Closed {
                        code: self.peer_close,
                    });
                }
                Poll::Pending => {
                    self.read_all = true;
                    return Ok(progress);
                }
            }
        }
        Ok(progress)
    }

    /// While reading waits for the application, the transport's flush is still polled, so
    /// a transport with writes of its own (a session's data and acknowledgements, which do
    /// not cross the outbox) goes on writing them; it is polled on every read anyway.
    fn poll_own_writes(&mut self, cx: &mut Context<'_>) -> Result<(), Failure> {
        if self.unflushed {
            // `poll_write` flushes (and is woken when the flush can go on).
            return Ok(());
        }
        match Pin::new(&mut self.transport).poll_flush(cx) {
            Poll::Ready(Err(e)) => Err(Failure::from_error(&e)),
            Poll::Ready(Ok(())) | Poll::Pending => Ok(()),
        }
    }

    fn set_reading_paused(&mut self, now: StdInstant, paused: bool) {
        if self.reading_paused != paused {
            self.reading_paused = paused;
            if let Some(core) = &mut self.core {
                core.set_reading_paused(now, paused);
            }
        }
    }

    /// After our close went out, only data still matters: no probes, no answers.
    fn on_message_while_closing(&mut self, message: M) {
        match self.ctx.probe.classify(&message) {
            Inbound::Data => self.deliver(message),
            Inbound::Close(code) => self.peer_close = code,
            _ => {}
        }
    }

    /// Hands a data message to the application; room was checked before reading. A
    /// receiver that closed in between drops it (the next check reports the close).
    fn deliver(&mut self, message: M) {
        let len = P::len(&message);
        let _ = self.ctx.inbound.push(message, len);
    }

    fn on_message(&mut self, now: StdInstant, message: M) {
        let kind = self.ctx.probe.classify(&message);
        if let (Inbound::Pong(nonce), Some(core)) = (kind, &mut self.core) {
            match core.on_pong(now, nonce) {
                PongOutcome::Acked { nonce, rtt } => self.ctx.shared.emit(Event::ProbeAcked {
                    nonce,
                    rtt,
                    timeout: core.timeout(),
                }),
                PongOutcome::Mismatched => self.ctx.shared.emit(Event::MismatchedPong),
                _ => {}
            }
            return;
        }
        if let Some(core) = &mut self.core {
            if !matches!(kind, Inbound::Pong(_)) {
                core.on_inbound(now);
            }
        }
        match kind {
            Inbound::Data => self.deliver(message),
            Inbound::Ping => {
                let verdict = self.rate.on_probe(now);
                if let RateVerdict::Strike(strikes) = verdict {
                    tracing::debug!(strikes, "peer probed too soon");
                    self.ctx.shared.emit(Event::Strike { strikes });
                }
                if verdict == RateVerdict::Close {
                    let reason = CloseReason::ProbeFlood;
                    self.begin_close(reason.close_message(), End::Failed(Failure::Local(reason)));
                } else if let Some(answer) = self.ctx.probe.answer(&message) {
                    self.reply = Some(answer);
                }
            }
            Inbound::Close(code) => self.peer_close = code,
            _ => {}
        }
    }
}
