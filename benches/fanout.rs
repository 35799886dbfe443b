//! Fan-out throughput: one publisher, 1 000 WebSocket subscribers on one node, 64 B and
//! 1 KiB messages, in-process and through Redis.
//!
//! The subscribing node runs alone on its own thread (a current-thread tokio runtime), so
//! that thread's CPU time (`/proc/thread-self/schedstat`) is the node's whole cost per
//! delivery: queueing into 1 000 byte-bounded queues, wake-ups, framing into each write
//! buffer, the writes. Through Redis, the subscribing node's Redis task runs on that thread
//! too; a second node publishes, and redis-server's own CPU (its threads' `schedstat`, in ns) is reported
//! per message: the Redis hop's cost. The 1 000 clients read on another thread.
//!
//! Criterion reports the subscribing node's CPU per published message (`iter_custom`;
//! throughput in deliveries, so its rate is deliveries per second of one core); a summary at
//! the end prints wall-clock deliveries per second, CPU per delivery, and Redis CPU per
//! message from one run. Nothing is asserted: timings never gate. Needs `redis-server` (on
//! PATH or `$TETHER_REDIS_SERVER`; `scripts/install-pubsub.sh`).
#![allow(clippy::print_stdout)] // a bench reports on standard output

mod clients;
mod cpu;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use clients::clients;
use cpu::schedstat_cpu;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use futures::SinkExt;
use tether::Message;
use tether_pubsub::{Bus, Bytes, Config, Delivery, RedisBackplane, RedisConfig};
use tokio::net::TcpListener;

const SUBSCRIBERS: u64 = 1_000;
const TOPIC: &str = "bench";

/// What a node thread is asked to do.
enum NodeCommand {
    /// Publish this many messages of this size; answer when queued.
    Publish(u64, usize, mpsc::Sender<()>),
    /// Answer with the thread's CPU time so far.
    Cpu(mpsc::Sender<Duration>),
}

/// A node on its own thread: a bus (alone or on Redis) and a WebSocket listener whose every
/// connection subscribes to [`TOPIC`] and is written what arrives.
struct Node {
    addr: SocketAddr,
    commands: tokio::sync::mpsc::UnboundedSender<NodeCommand>,
}

impl Node {
    fn start(redis: Option<String>) -> Node {
        let (addr_tx, addr_rx) = mpsc::channel();
        let (commands, mut inbox) = tokio::sync::mpsc::unbounded_channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("node runtime");
            runtime.block_on(async move {
                let mut config = Config::default();
                config.set_max_queued_bytes(16 << 20);
                let bus: Bus = match redis {
                    None => Bus::new(config),
                    Some(url) => {
                        let redis = RedisConfig::new(url);
                        let client = RedisBackplane::client(&redis).expect("redis url");
                        Bus::with_backplane(config, |inbound| {
                            RedisBackplane::start(client, &redis, inbound)
                        })
                    }
                };
                let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
                addr_tx
                    .send(listener.local_addr().expect("addr"))
                    .expect("addr sent");
                let accepting = bus.clone();
                tokio::spawn(async move {
                    while let Ok((tcp, _)) = listener.accept().await {
                        tokio::spawn(relay(tcp, accepting.clone()));
                    }
                });
                while let Some(command) = inbox.recv().await {
                    match command {
                        NodeCommand::Publish(n, size, done) => {
                            let payload = Bytes::from(vec![b'x'; size]);
                            for i in 0..n {
                                bus.publish(TOPIC, payload.clone()).expect("published");
                                // Let the writers drain between batches.
                                if i % 16 == 15 {
                                    tokio::task::yield_now().await;
                                }
                            }
                            let _ = done.send(());
                        }
                        NodeCommand::Cpu(reply) => {
                            let _ = reply.send(thread_cpu());
                        }
                    }
                }
            });
        });
        Node {
            addr: addr_rx.recv().expect("node address"),
            commands,
        }
    }

    fn publish(&self, n: u64, size: usize) {
        let (done, wait) = mpsc::channel();
        self.commands
            .send(NodeCommand::Publish(n, size, done))
            .expect("node alive");
        wait.recv().expect("published");
    }

    fn cpu(&self) -> Duration {
        let (reply, answer) = mpsc::channel();
        self.commands
            .send(NodeCommand::Cpu(reply))
            .expect("node alive");
        answer.recv().expect("cpu")
    }
}

/// One subscriber connection: what the bus delivers goes into the write buffer, flushed
/// whenever the queue runs dry.
async fn relay(tcp: tokio::net::TcpStream, bus: Bus) {
    let Ok(ws) = tether::accept(tcp).await else {
        return;
    };
    let (_reader, mut writer) = ws.split();
    let mut subscriber = bus.subscriber();
    subscriber.subscribe(TOPIC).expect("subscribed");
    loop {
        let delivery = match subscriber.try_recv() {
            Some(delivery) => delivery,
            None => {
                if writer.flush().await.is_err() {
                    return;
                }
                subscriber.recv().await
            }
        };
        let Ok(Delivery::Message { payload, .. }) = delivery else {
            continue;
        };
        if writer.feed(Message::Binary(payload)).await.is_err() {
            return;
        }
    }
}

/// Waits until `counter` reaches `target`; false after `limit`.
fn wait_for(counter: &AtomicU64, target: u64, limit: Duration) -> bool {
    let start = Instant::now();
    while counter.load(Ordering::Relaxed) < target {
        if start.elapsed() > limit {
            return false;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    true
}

/// One setup: the node the subscribers are on, the one that publishes (the same in
/// process), the clients' counter, and redis-server's pid when there is one.
struct Setup {
    name: &'static str,
    subscribed: Node,
    publisher: Option<Node>,
    received: Arc<AtomicU64>,
    redis: Option<Child>,
}

/// What one run measured.
struct Run {
    wall: Duration,
    node_cpu: Duration,
    redis_cpu: Duration,
}

impl Setup {
    fn in_process() -> Setup {
        let subscribed = Node::start(None);
        let received = clients(subscribed.addr, SUBSCRIBERS, tether::Config::default());
        wait_subscribed(&subscribed, &received, None);
        Setup {
            name: "in-process",
            subscribed,
            publisher: None,
            received,
            redis: None,
        }
    }

    fn redis() -> Setup {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let redis = Command::new(redis_server())
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server started");
        let url = format!("redis://127.0.0.1:{port}");
        let subscribed = Node::start(Some(url.clone()));
        let publisher = Node::start(Some(url));
        let received = clients(subscribed.addr, SUBSCRIBERS, tether::Config::default());
        wait_subscribed(&subscribed, &received, Some(&publisher));
        Setup {
            name: "redis",
            subscribed,
            publisher: Some(publisher),
            received,
            redis: Some(redis),
        }
    }

    /// Publishes `n` messages of `size` bytes and waits until every client has them.
    fn run(&self, n: u64, size: usize) -> Run {
        let target = self.received.load(Ordering::Relaxed) + n * SUBSCRIBERS;
        let cpu = self.subscribed.cpu();
        let redis = self
            .redis
            .as_ref()
            .map_or(Duration::ZERO, |r| process_cpu(r.id()));
        let start = Instant::now();
        self.publisher
            .as_ref()
            .unwrap_or(&self.subscribed)
            .publish(n, size);
        assert!(
            wait_for(&self.received, target, Duration::from_secs(120)),
            "{}: deliveries missing",
            self.name
        );
        Run {
            wall: start.elapsed(),
            node_cpu: self.subscribed.cpu() - cpu,
            redis_cpu: self
                .redis
                .as_ref()
                .map_or(Duration::ZERO, |r| process_cpu(r.id()))
                - redis,
        }
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        if let Some(redis) = &mut self.redis {
            let _ = redis.kill();
            let _ = redis.wait();
        }
    }
}

/// Waits until every client is subscribed (and, through Redis, until a message crosses).
fn wait_subscribed(node: &Node, received: &AtomicU64, publisher: Option<&Node>) {
    let from = publisher.unwrap_or(node);
    for _ in 0..100 {
        let before = received.load(Ordering::Relaxed);
        from.publish(1, 8);
        if wait_for(received, before + SUBSCRIBERS, Duration::from_millis(200)) {
            // Any straggler of an earlier probe arrives before measuring starts.
            std::thread::sleep(Duration::from_millis(50));
            return;
        }
    }
    panic!("the subscribers never received a probe");
}

/// CPU time of the calling thread.
fn thread_cpu() -> Duration {
    schedstat_cpu("/proc/thread-self/schedstat")
}

/// CPU time of process `pid`, in nanoseconds: the sum of its threads' `schedstat` (its
/// `/proc/PID/stat` counts 10 ms ticks, too coarse for a few thousand messages). A thread that
/// ended between two readings drops out of the sum; redis-server's threads live as long as it.
fn process_cpu(pid: u32) -> Duration {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Duration::ZERO;
    };
    tasks
        .filter_map(Result::ok)
        .map(|task| schedstat_cpu(task.path().join("schedstat")))
        .sum()
}

fn redis_server() -> std::path::PathBuf {
    std::env::var_os("TETHER_REDIS_SERVER").map_or_else(|| "redis-server".into(), Into::into)
}

fn fanout(c: &mut Criterion) {
    let setups = [Setup::in_process(), Setup::redis()];
    let mut group = c.benchmark_group("fanout node cpu per message to 1000 subscribers");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::Elements(SUBSCRIBERS));
    for size in [64, 1024] {
        for setup in &setups {
            group.bench_function(BenchmarkId::new(setup.name, size), |b| {
                b.iter_custom(|iters| setup.run(iters, size).node_cpu);
            });
        }
    }
    group.finish();

    let benching = std::env::args().any(|arg| arg == "--bench");
    let messages = if benching { 2_000 } else { 20 };
    println!(
        "\none publisher, {SUBSCRIBERS} WebSocket subscribers on one node, {messages} messages"
    );
    for size in [64, 1024] {
        for setup in &setups {
            let run = setup.run(messages, size);
            let deliveries = (messages * SUBSCRIBERS) as f64;
            println!(
                "  {:<10} {size:>5} B  {:>9.0} deliveries/s  node {:>5.0} ns/delivery  \
                 redis-server {:>6.1} µs/message",
                setup.name,
                deliveries / run.wall.as_secs_f64(),
                run.node_cpu.as_nanos() as f64 / deliveries,
                run.redis_cpu.as_nanos() as f64 / 1e3 / messages as f64,
            );
        }
    }
}

criterion_group!(benches, fanout);
criterion_main!(benches);
