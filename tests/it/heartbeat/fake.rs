//! A scripted in-memory transport and peer on tokio's virtual clock.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use futures::{Sink, Stream};
use tether_heartbeat::{Failure, Inbound, Probe, StringProbe};
use tokio::sync::mpsc;
use tokio::time::{Instant, Sleep};

/// What the test controls about one transport, shared with its [`Fake`] end.
#[derive(Default)]
pub(super) struct Gate {
    /// While set, the transport accepts no writes (a blackhole with a full send buffer).
    blocked: AtomicBool,
    waker: Mutex<Option<Waker>>,
    /// Set when the supervisor dropped the transport; the instant is recorded too.
    dropped: AtomicBool,
    dropped_at: Mutex<Option<Instant>>,
}

impl Gate {
    pub(super) fn block(&self, blocked: bool) {
        self.blocked.store(blocked, Ordering::SeqCst);
        if let Some(waker) = self.waker.lock().unwrap().take() {
            waker.wake();
        }
    }

    pub(super) fn dropped_at(&self) -> Option<Instant> {
        *self.dropped_at.lock().unwrap()
    }

    pub(super) fn is_dropped(&self) -> bool {
        self.dropped.load(Ordering::SeqCst)
    }
}

/// The supervisor's end: a `Stream + Sink` of lines.
pub(super) struct Fake {
    from_peer: mpsc::UnboundedReceiver<String>,
    to_peer: mpsc::UnboundedSender<String>,
    gate: Arc<Gate>,
    /// Bytes per second the sink drains at; `None` = instantly.
    rate: Option<u64>,
    draining: Vec<String>,
    drain: Option<Pin<Box<Sleep>>>,
}

impl Drop for Fake {
    fn drop(&mut self) {
        *self.gate.dropped_at.lock().unwrap() = Some(Instant::now());
        self.gate.dropped.store(true, Ordering::SeqCst);
    }
}

/// The peer's end, driven by the test or by [`Script::spawn`].
pub(super) struct PeerEnd {
    pub(super) rx: mpsc::UnboundedReceiver<String>,
    pub(super) tx: mpsc::UnboundedSender<String>,
    pub(super) gate: Arc<Gate>,
}

/// A transport pair; `rate` bytes per second limits how fast our writes drain.
pub(super) fn pair(rate: Option<u64>) -> (Fake, PeerEnd) {
    let (to_peer, rx) = mpsc::unbounded_channel();
    let (tx, from_peer) = mpsc::unbounded_channel();
    let gate = Arc::new(Gate::default());
    let fake = Fake {
        from_peer,
        to_peer,
        gate: Arc::clone(&gate),
        rate,
        draining: Vec::new(),
        drain: None,
    };
    (fake, PeerEnd { rx, tx, gate })
}

impl Fake {
    fn poll_drained(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.gate.blocked.load(Ordering::SeqCst) {
            *self.gate.waker.lock().unwrap() = Some(cx.waker().clone());
            return Poll::Pending;
        }
        if let Some(drain) = &mut self.drain {
            if drain.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            self.drain = None;
            for message in self.draining.drain(..) {
                // A peer that went away is a blackhole: writes vanish.
                let _ = self.to_peer.send(message);
            }
        }
        Poll::Ready(())
    }
}

use std::future::Future;

impl Stream for Fake {
    type Item = Result<String, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.from_peer.poll_recv(cx).map(|m| m.map(Ok))
    }
}

impl Sink<String> for Fake {
    type Error = std::io::Error;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.poll_drained(cx).map(Ok)
    }

    fn start_send(mut self: Pin<&mut Self>, item: String) -> Result<(), Self::Error> {
        match self.rate {
            None => {
                let _ = self.to_peer.send(item);
            }
            Some(rate) => {
                let time = Duration::from_secs_f64(item.len() as f64 / rate as f64);
                self.draining.push(item);
                self.drain = Some(Box::pin(tokio::time::sleep(time)));
            }
        }
        Ok(())
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.poll_drained(cx).map(Ok)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.poll_drained(cx).map(Ok)
    }
}

/// How a scripted peer behaves; change it while the test runs.
pub(super) struct Script {
    /// Delay before each pong, in milliseconds.
    pub(super) rtt_ms: AtomicU64,
    /// Whether probes are answered at all.
    pub(super) answer: AtomicBool,
    /// Answer with a nonce that matches nothing.
    pub(super) wrong_nonce: AtomicBool,
    /// Application messages the peer received, in order.
    pub(super) received: Mutex<Vec<String>>,
    /// Probes the peer received.
    pub(super) probes: AtomicU64,
}

impl Script {
    pub(super) fn new(rtt: Duration) -> Arc<Self> {
        Arc::new(Script {
            rtt_ms: AtomicU64::new(rtt.as_millis() as u64),
            answer: AtomicBool::new(true),
            wrong_nonce: AtomicBool::new(false),
            received: Mutex::new(Vec::new()),
            probes: AtomicU64::new(0),
        })
    }

    /// Runs the peer: answers `ping n` with `pong n` after the RTT (in order), records
    /// everything else. Ends when the supervisor drops the transport.
    pub(super) fn spawn(self: &Arc<Self>, mut peer: PeerEnd) -> tokio::task::JoinHandle<()> {
        let script = Arc::clone(self);
        tokio::spawn(async move {
            let mut probe = StringProbe::default();
            let mut pending: VecDeque<(Instant, String)> = VecDeque::new();
            loop {
                let next_pong = pending.front().map(|p| p.0);
                tokio::select! {
                    message = peer.rx.recv() => {
                        let Some(message) = message else { return };
                        if probe.classify(&message) != Inbound::Ping {
                            script.received.lock().unwrap().push(message);
                            continue;
                        }
                        script.probes.fetch_add(1, Ordering::SeqCst);
                        if !script.answer.load(Ordering::SeqCst) {
                            continue;
                        }
                        let mut pong = probe.answer(&message).unwrap();
                        if script.wrong_nonce.load(Ordering::SeqCst) {
                            pong = "pong 12345".to_string();
                        }
                        let rtt = Duration::from_millis(script.rtt_ms.load(Ordering::SeqCst));
                        pending.push_back((Instant::now() + rtt, pong));
                    }
                    () = tokio::time::sleep_until(next_pong.unwrap_or_else(Instant::now)),
                        if next_pong.is_some() =>
                    {
                        let (_, pong) = pending.pop_front().unwrap();
                        if peer.tx.send(pong).is_err() {
                            return;
                        }
                    }
                }
            }
        })
    }
}

/// A connect factory handing out prepared results in order, then refusing.
pub(super) fn factory(
    results: Vec<Result<Fake, Failure>>,
) -> impl FnMut() -> std::future::Ready<Result<Fake, Failure>> + Send + 'static {
    let queue = Arc::new(Mutex::new(VecDeque::from(results)));
    move || {
        let next = queue.lock().unwrap().pop_front();
        std::future::ready(next.unwrap_or(Err(Failure::Io(std::io::ErrorKind::ConnectionRefused))))
    }
}
