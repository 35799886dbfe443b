//! The Redis backplane: Redis pub/sub between nodes, surviving the loss of Redis.
//!
//! ```text
//!  Bus::publish ─► outbox (bounded in bytes) ─► publishing task ─► PUBLISH prefix+topic  ─┐
//!                                                 (one connection, pipelined, in order)  │
//!                                                                                Redis ◄─┘
//!  Inbound::deliver ◄─ origin check ◄─ subscribing task ◄─ SUBSCRIBE prefix+topic ◄─┘
//!                                        (one connection; the topics to follow come from
//!                                         the bus: first subscriber in, last one out)
//! ```
//!
//! Each message crosses Redis as an envelope: a version byte (`0x01`), the publishing node's
//! [`Origin`] (8 bytes, big-endian), then the payload. A node drops its own messages when
//! they come back, so each subscriber receives each message once; Redis delivers the
//! messages of one connection in order, so each publisher's messages arrive in order.
//!
//! When a connection to Redis fails, its task reconnects with exponential backoff and
//! jitter (tether-heartbeat's [`Backoff`]); the subscribing task then subscribes to every
//! topic again and reports a [`Delivery::Gap`](crate::Delivery::Gap) to the local subscribers
//! of each, since what other nodes published meanwhile is gone. Publishes that cannot be
//! sent are counted as [`Metrics::backplane_lost`](crate::Metrics::backplane_lost). Nothing
//! here panics or ends the server.

use std::collections::{HashSet, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use futures_util::StreamExt as _;
use tether_heartbeat::sans_io::Backoff;
use tether_heartbeat::ReconnectConfig;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::backplane::{Backplane, Origin};
use crate::bus::Inbound;
use crate::error::Error;
use crate::payload::Payload;
use crate::topic::Topic;

/// The envelope's version byte.
const VERSION: u8 = 0x01;
/// Version byte and origin.
const HEADER: usize = 9;
/// Longest wait for a connection to Redis, or for the answer to a batch of publishes: a
/// Redis that accepts but does not answer counts as lost.
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// A publishing connection idle this long is checked with a PING before it is written to.
const QUIET: Duration = Duration::from_secs(1);

/// Settings of a [`RedisBackplane`].
#[derive(Debug, Clone)]
pub struct RedisConfig {
    url: String,
    channel_prefix: String,
    max_pending_bytes: usize,
    reconnect: ReconnectConfig,
}

impl RedisConfig {
    /// Settings for the Redis server at `url` (`redis://127.0.0.1:6379`).
    pub fn new(url: impl Into<String>) -> Self {
        let mut reconnect = ReconnectConfig::default();
        reconnect
            .set_initial_delay(Duration::from_millis(100))
            .set_max_delay(Duration::from_secs(5))
            .set_min_uptime(Duration::from_secs(1));
        RedisConfig {
            url: url.into(),
            channel_prefix: "tether:".into(),
            max_pending_bytes: 8 << 20,
            reconnect,
        }
    }

    /// Prefix of the Redis channel of each topic. Default `tether:`; nodes of one cluster
    /// must agree on it.
    pub fn set_channel_prefix(&mut self, prefix: impl Into<String>) -> &mut Self {
        self.channel_prefix = prefix.into();
        self
    }

    /// The value set with [`set_channel_prefix`](Self::set_channel_prefix).
    pub fn channel_prefix(&self) -> &str {
        &self.channel_prefix
    }

    /// Bytes of published messages waiting for Redis (while it is slow or away) before more
    /// are dropped and counted, besides the one batch being sent (itself at most this
    /// much). Default 8 MiB.
    pub fn set_max_pending_bytes(&mut self, bytes: usize) -> &mut Self {
        self.max_pending_bytes = bytes;
        self
    }

    /// The value set with [`set_max_pending_bytes`](Self::set_max_pending_bytes).
    pub fn max_pending_bytes(&self) -> usize {
        self.max_pending_bytes
    }

    /// Reconnection backoff. Default: 100 ms initial window, 5 s cap, reset after 1 s up.
    pub fn set_reconnect(&mut self, reconnect: ReconnectConfig) -> &mut Self {
        self.reconnect = reconnect;
        self
    }

    /// The value set with [`set_reconnect`](Self::set_reconnect).
    pub fn reconnect(&self) -> &ReconnectConfig {
        &self.reconnect
    }
}

/// Redis pub/sub as a [`Backplane`]. Made inside
/// [`Bus::with_backplane`](crate::Bus::with_backplane); its two tasks run on the current
/// tokio runtime and stop when the bus is dropped.
///
/// ```no_run
/// use tether_pubsub::{Bus, Config, RedisBackplane, RedisConfig};
///
/// # #[tokio::main] async fn main() -> Result<(), tether_pubsub::Error> {
/// let redis = RedisConfig::new("redis://127.0.0.1:6379");
/// let client = RedisBackplane::client(&redis)?;
/// let bus: Bus = Bus::with_backplane(Config::default(), |inbound| {
///     RedisBackplane::start(client, &redis, inbound)
/// });
/// # Ok(()) }
/// ```
pub struct RedisBackplane {
    topics: Arc<Wanted>,
    outbox: Arc<Outbox>,
    prefix: String,
    tasks: [JoinHandle<()>; 2],
}

/// What the subscribing task reports to: the bus, and the publishing task (a count of the
/// times Redis went away).
struct Link<P: Payload> {
    inbound: Inbound<P>,
    epoch: Arc<AtomicU64>,
}

/// The topics this node wants from Redis; the subscribing task follows it.
#[derive(Default)]
struct Wanted {
    topics: Mutex<HashSet<Topic>>,
    changed: Notify,
}

/// Envelopes waiting for the publishing task.
struct Outbox {
    queue: Mutex<(VecDeque<(String, Bytes)>, usize)>,
    limit: usize,
    ready: Notify,
}

impl RedisBackplane {
    /// A client for the URL in `config`; it connects later, in the tasks.
    ///
    /// # Errors
    ///
    /// [`Error::Backplane`] when the URL does not parse.
    pub fn client(config: &RedisConfig) -> Result<redis::Client, Error> {
        redis::Client::open(config.url.as_str()).map_err(|err| Error::Backplane(err.to_string()))
    }

    /// Starts the publishing and subscribing tasks for the bus behind `inbound`.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    pub fn start<P: Payload>(
        client: redis::Client,
        config: &RedisConfig,
        inbound: Inbound<P>,
    ) -> RedisBackplane {
        let topics = Arc::new(Wanted::default());
        let outbox = Arc::new(Outbox {
            queue: Mutex::new((VecDeque::new(), 0)),
            limit: config.max_pending_bytes,
            ready: Notify::new(),
        });
        let seed = inbound.origin().0;
        let epoch = Arc::new(AtomicU64::new(0));
        let publishing = tokio::spawn(publishing(
            client.clone(),
            outbox.clone(),
            inbound.clone(),
            epoch.clone(),
            Backoff::new(&config.reconnect, seed),
        ));
        let subscribing = tokio::spawn(subscribing(
            client,
            topics.clone(),
            config.channel_prefix.clone(),
            Link { inbound, epoch },
            Backoff::new(&config.reconnect, seed ^ 1),
        ));
        RedisBackplane {
            topics,
            outbox,
            prefix: config.channel_prefix.clone(),
            tasks: [publishing, subscribing],
        }
    }
}

impl Backplane for RedisBackplane {
    fn publish(&self, topic: &str, origin: Origin, payload: Bytes) -> bool {
        let channel = format!("{}{topic}", self.prefix);
        let envelope = encode(origin, &payload);
        let mut queue = self.outbox.lock();
        let size = channel.len() + envelope.len();
        if queue.1.saturating_add(size) > self.outbox.limit && !queue.0.is_empty() {
            return false;
        }
        queue.0.push_back((channel, envelope));
        queue.1 += size;
        drop(queue);
        self.outbox.ready.notify_one();
        true
    }

    fn subscribe(&self, topic: &Topic) {
        self.topics.lock().insert(topic.clone());
        self.topics.changed.notify_one();
    }

    fn unsubscribe(&self, topic: &Topic) {
        self.topics.lock().remove(topic);
        self.topics.changed.notify_one();
    }
}

impl Drop for RedisBackplane {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl fmt::Debug for RedisBackplane {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisBackplane")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// The envelope of `payload`: version, origin, payload.
fn encode(origin: Origin, payload: &[u8]) -> Bytes {
    let mut envelope = BytesMut::with_capacity(HEADER + payload.len());
    envelope.put_u8(VERSION);
    envelope.put_u64(origin.0);
    envelope.put_slice(payload);
    envelope.freeze()
}

/// The origin and payload of an envelope; `None` for anything else.
fn decode(mut envelope: Bytes) -> Option<(Origin, Bytes)> {
    if envelope.len() < HEADER || envelope[0] != VERSION {
        return None;
    }
    envelope.advance(1);
    let origin = Origin(envelope.get_u64());
    Some((origin, envelope))
}

/// Sends what the outbox holds, a pipeline per batch, over one connection (so in order).
///
/// A publishing connection learns that Redis went away only when it writes, and the batch
/// it writes then is lost. So before writing, it checks that the connection is still
/// worth trusting: the subscribing connection has not seen Redis go since (`epoch`), and
/// after a quiet second a PING answers. When either fails, the batch waits (not sent, so
/// neither lost nor sent twice) for a new connection. A write that fails counts its batch
/// as lost (at most once: it may have reached Redis).
async fn publishing<P: Payload>(
    client: redis::Client,
    outbox: Arc<Outbox>,
    inbound: Inbound<P>,
    epoch: Arc<AtomicU64>,
    mut backoff: Backoff,
) {
    let mut batch = Vec::new();
    // No check of `inbound.is_open()` here: the bus is still being built when this task
    // may first run; the task is aborted when the bus (and its backplane) is dropped.
    loop {
        let connected_in = epoch.load(Ordering::Acquire);
        let connecting = client.get_multiplexed_async_connection();
        let mut connection = match timed(connecting).await {
            Ok(connection) => connection,
            Err(err) => {
                tracing::warn!(error = %err, "redis: cannot connect to publish");
                tokio::time::sleep(backoff.next_delay(None)).await;
                continue;
            }
        };
        backoff.on_connected(std::time::Instant::now());
        tracing::info!("redis: publishing connection up");
        let mut used = tokio::time::Instant::now();
        loop {
            if batch.is_empty() {
                batch = outbox.take().await;
            }
            if epoch.load(Ordering::Acquire) != connected_in {
                tracing::info!("redis: went away since this connection opened; reconnecting");
                break;
            }
            if used.elapsed() >= QUIET {
                let ping = redis::cmd("PING");
                if let Err(err) = timed(ping.exec_async(&mut connection)).await {
                    tracing::warn!(error = %err, "redis: publishing connection lost");
                    break;
                }
            }
            let mut pipeline = redis::pipe();
            for (channel, envelope) in &batch {
                pipeline.publish(channel, envelope.as_ref()).ignore();
            }
            let sent = timed(pipeline.exec_async(&mut connection)).await;
            used = tokio::time::Instant::now();
            if let Err(err) = sent {
                tracing::warn!(error = %err, lost = batch.len(), "redis: publish failed");
                inbound.lost(batch.len() as u64);
                batch.clear();
                break;
            }
            batch.clear();
        }
        backoff.on_disconnected(std::time::Instant::now());
        tokio::time::sleep(backoff.next_delay(None)).await;
    }
}

/// Follows the wanted topics on one pub/sub connection and delivers what arrives; after a
/// reconnection, resubscribes and reports a gap on every topic.
async fn subscribing<P: Payload>(
    client: redis::Client,
    wanted: Arc<Wanted>,
    prefix: String,
    link: Link<P>,
    mut backoff: Backoff,
) {
    let Link { inbound, epoch } = link;
    let mut reconnected = false;
    // No check of `inbound.is_open()` here: the bus is still being built when this task
    // may first run; the task is aborted when the bus (and its backplane) is dropped.
    loop {
        let (mut sink, mut stream) = match timed(client.get_async_pubsub()).await {
            Ok(pubsub) => pubsub.split(),
            Err(err) => {
                tracing::warn!(error = %err, "redis: cannot connect to subscribe");
                tokio::time::sleep(backoff.next_delay(None)).await;
                continue;
            }
        };
        backoff.on_connected(std::time::Instant::now());
        tracing::info!("redis: subscribing connection up");
        let mut active = HashSet::new();
        let ended = loop {
            if let Err(err) = follow(&mut sink, &wanted, &mut active, &prefix).await {
                break err;
            }
            if std::mem::take(&mut reconnected) {
                tracing::warn!(topics = active.len(), "redis: resubscribed; reporting gaps");
                for topic in &active {
                    inbound.gap(topic);
                }
            }
            tokio::select! {
                message = stream.next() => match message {
                    Some(message) => deliver(&message, &prefix, &inbound),
                    None => break "connection closed".to_owned(),
                },
                () = wanted.changed.notified() => {}
            }
        };
        tracing::warn!(error = %ended, "redis: subscribing connection lost");
        epoch.fetch_add(1, Ordering::AcqRel);
        reconnected = true;
        backoff.on_disconnected(std::time::Instant::now());
        tokio::time::sleep(backoff.next_delay(None)).await;
    }
}

/// Subscribes to the wanted topics not yet active and unsubscribes from the others.
async fn follow(
    sink: &mut redis::aio::PubSubSink,
    wanted: &Wanted,
    active: &mut HashSet<Topic>,
    prefix: &str,
) -> Result<(), String> {
    let (join, leave): (Vec<Topic>, Vec<Topic>) = {
        let wanted = wanted.lock();
        (
            wanted.difference(active).cloned().collect(),
            active.difference(&wanted).cloned().collect(),
        )
    };
    let channels = |topics: &[Topic]| -> Vec<String> {
        topics
            .iter()
            .map(|topic| format!("{prefix}{topic}"))
            .collect()
    };
    if !join.is_empty() {
        sink.subscribe(channels(&join))
            .await
            .map_err(|err| err.to_string())?;
        active.extend(join);
    }
    if !leave.is_empty() {
        sink.unsubscribe(channels(&leave))
            .await
            .map_err(|err| err.to_string())?;
        for topic in &leave {
            active.remove(topic);
        }
    }
    Ok(())
}

/// `io` within [`IO_TIMEOUT`], its error as text.
async fn timed<T>(
    io: impl std::future::Future<Output = redis::RedisResult<T>>,
) -> Result<T, String> {
    match tokio::time::timeout(IO_TIMEOUT, io).await {
        Ok(result) => result.map_err(|err| err.to_string()),
        Err(_) => Err(format!("no answer from redis within {IO_TIMEOUT:?}")),
    }
}

/// Hands a message from Redis to the bus, unless it is not one of ours.
fn deliver<P: Payload>(message: &redis::Msg, prefix: &str, inbound: &Inbound<P>) {
    let Some(topic) = message.get_channel_name().strip_prefix(prefix) else {
        return;
    };
    // The one copy per message and node: out of the client's reply into a shared buffer.
    let envelope = Bytes::copy_from_slice(message.get_payload_bytes());
    match decode(envelope) {
        Some((origin, payload)) => {
            inbound.deliver(topic, origin, payload);
        }
        None => tracing::debug!(topic, "redis: not a tether envelope; ignored"),
    }
}

impl Wanted {
    fn lock(&self) -> MutexGuard<'_, HashSet<Topic>> {
        // Single inserts and removes: a poisoned set is still whole.
        self.topics.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Outbox {
    fn lock(&self) -> MutexGuard<'_, (VecDeque<(String, Bytes)>, usize)> {
        // Whole pushes and drains: a poisoned queue is still whole.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Everything queued, waiting until there is something.
    async fn take(&self) -> Vec<(String, Bytes)> {
        loop {
            {
                let mut queue = self.lock();
                if !queue.0.is_empty() {
                    queue.1 = 0;
                    return queue.0.drain(..).collect();
                }
            }
            self.ready.notified().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_envelope_carries_origin_and_payload_and_refuses_anything_else() {
        let envelope = encode(Origin(0x0102_0304_0506_0708), b"data");
        assert_eq!(&envelope[..HEADER], &[1, 1, 2, 3, 4, 5, 6, 7, 8]);
        let (origin, payload) = decode(envelope).unwrap();
        assert_eq!(
            (origin, &payload[..]),
            (Origin(0x0102_0304_0506_0708), &b"data"[..])
        );
        assert_eq!(decode(Bytes::from_static(&[1; HEADER - 1])), None);
        assert_eq!(decode(Bytes::from_static(&[2; HEADER])), None);
    }
}
