//! Fan-out of large messages with `tether::fanout::Fanout`: one node, 100 WebSocket
//! subscribers over loopback TCP, messages of 1 MiB (sent as 64 KiB fragments).
//!
//! The node runs alone on its own thread (a current-thread runtime): each accepted connection
//! subscribes to one `Fanout` and runs `Subscriber::write_to`. That thread's CPU time (its
//! `schedstat`) per published message, until every client has it, is what criterion reports; the
//! throughput is in delivered bytes, so its rate is bytes delivered per second of one core.
//! The clients read on another thread. A fan-out that copies each fragment into every
//! subscriber's write buffer spends one memcpy of the message per subscriber more than one
//! that writes the published bytes themselves.
//!
//! A second case, `sinks`, takes the kernel out: the same 100 subscribers write into in-memory
//! sinks that discard what they are given (`is_write_vectored`, as a TCP socket), all on the
//! bench thread, so the time per message is the fan-out's own user-space work. Nothing is
//! asserted: timings never gate.

mod clients;
mod cpu;

use std::io::IoSlice;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use clients::clients;
use cpu::schedstat_cpu;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tether::fanout::Fanout;
use tether::{Bytes, Message};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;

const SUBSCRIBERS: u64 = 100;
const MESSAGE: usize = 1 << 20;

/// What the node thread is asked: publish `n` messages, answer when queued.
type Publish = (u64, mpsc::Sender<()>);

/// The node: its address, its command channel and its thread's `schedstat` file.
struct Node {
    addr: SocketAddr,
    commands: tokio::sync::mpsc::UnboundedSender<Publish>,
    schedstat: std::path::PathBuf,
}

/// Starts the node thread.
fn node() -> Node {
    let (addr_tx, addr_rx) = mpsc::channel();
    let (commands, mut inbox) = tokio::sync::mpsc::unbounded_channel::<Publish>();
    std::thread::spawn(move || {
        let me = std::fs::read_link("/proc/thread-self").expect("/proc/thread-self");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("node runtime");
        runtime.block_on(async move {
            let hub = Fanout::new(64 << 20);
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            addr_tx
                .send((listener.local_addr().expect("addr"), me))
                .expect("addr sent");
            let accepting = hub.clone();
            tokio::spawn(async move {
                while let Ok((tcp, _)) = listener.accept().await {
                    let mut subscriber = accepting.subscribe();
                    tokio::spawn(async move {
                        let Ok(ws) = tether::accept(tcp).await else {
                            return;
                        };
                        let (_reader, mut writer) = ws.split();
                        let _ = subscriber.write_to(&mut writer).await;
                    });
                }
            });
            let payload = Bytes::from(vec![b'x'; MESSAGE]);
            while let Some((n, done)) = inbox.recv().await {
                for _ in 0..n {
                    hub.publish(Message::Binary(payload.clone()));
                    // Let the writers drain between messages.
                    tokio::task::yield_now().await;
                }
                let _ = done.send(());
            }
        });
    });
    let (addr, me) = addr_rx.recv().expect("node address");
    Node {
        addr,
        commands,
        schedstat: std::path::Path::new("/proc").join(me).join("schedstat"),
    }
}

/// Publishes `n` messages, waits until every client has them, returns the node's CPU.
fn run(node: &Node, received: &AtomicU64, n: u64) -> Duration {
    let target = received.load(Ordering::Relaxed) + n * SUBSCRIBERS;
    let cpu = schedstat_cpu(&node.schedstat);
    let (done, queued) = mpsc::channel();
    node.commands.send((n, done)).expect("node alive");
    queued.recv().expect("published");
    let start = Instant::now();
    while received.load(Ordering::Relaxed) < target {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "deliveries missing"
        );
        std::thread::sleep(Duration::from_micros(200));
    }
    schedstat_cpu(&node.schedstat) - cpu
}

fn fanout_large(c: &mut Criterion) {
    let node = node();
    let mut config = tether::Config::default();
    config.set_max_message_size(MESSAGE);
    let received = clients(node.addr, SUBSCRIBERS, config);
    // Every connection has subscribed once one message reaches every client.
    run(&node, &received, 1);
    let mut group = c.benchmark_group("fanout_large");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(SUBSCRIBERS * MESSAGE as u64));
    group.bench_function("tcp: node cpu per 1 MiB message to 100 subscribers", |b| {
        b.iter_custom(|iters| run(&node, &received, iters));
    });
    group.finish();
}

/// A client's upgrade request, then nothing: what a sink reads.
const UPGRADE: &[u8] = b"GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Sec-WebSocket-Version: 13\r\n\r\n";

/// A connection whose peer sent [`UPGRADE`] and then reads everything at once, counting it.
struct Sink {
    request: &'static [u8],
    written: Arc<AtomicU64>,
}

impl AsyncRead for Sink {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.request.is_empty() {
            return Poll::Pending; // the peer never sends again (and never needs a wake-up)
        }
        let n = self.request.len().min(buf.remaining());
        buf.put_slice(&self.request[..n]);
        self.request = &self.request[n..];
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Sink {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.written.fetch_add(buf.len() as u64, Ordering::Relaxed);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let n: usize = bufs.iter().map(|b| b.len()).sum();
        self.written.fetch_add(n as u64, Ordering::Relaxed);
        Poll::Ready(Ok(n))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

fn fanout_sinks(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let hub = Fanout::new(64 << 20);
    let written = Arc::new(AtomicU64::new(0));
    for _ in 0..SUBSCRIBERS {
        let mut subscriber = hub.subscribe();
        let sink = Sink {
            request: UPGRADE,
            written: written.clone(),
        };
        runtime.spawn(async move {
            let (_reader, mut writer) = tether::accept(sink).await.expect("handshake").split();
            let _ = subscriber.write_to(&mut writer).await;
        });
    }
    let payload = Bytes::from(vec![b'x'; MESSAGE]);
    // One message, then wait until every subscriber wrote its payload out.
    let deliver = || {
        let target = written.load(Ordering::Relaxed) + SUBSCRIBERS * MESSAGE as u64;
        runtime.block_on(async {
            hub.publish(Message::Binary(payload.clone()));
            while written.load(Ordering::Relaxed) < target {
                tokio::task::yield_now().await;
            }
        });
    };
    deliver();
    let mut group = c.benchmark_group("fanout_large");
    group.throughput(Throughput::Bytes(SUBSCRIBERS * MESSAGE as u64));
    group.bench_function("sinks: 1 MiB message to 100 subscribers", |b| {
        b.iter(deliver)
    });
    group.finish();
}

criterion_group!(benches, fanout_sinks, fanout_large);
criterion_main!(benches);
