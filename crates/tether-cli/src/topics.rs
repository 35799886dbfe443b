//! `tether serve --topics`: publish/subscribe over one small JSON protocol, on one node or a
//! cluster of nodes joined by Redis (`--redis`).
//!
//! ```text
//!  client → server   {"subscribe":"room"}               answered {"subscribed":"room"}
//!                    {"unsubscribe":"room"}             answered {"unsubscribed":"room"}
//!                    {"publish":"room","data":"text"}   to every subscriber of room
//!                    (add "exclude_self":true to leave the sender out)
//!  server → client   {"topic":"room","data":"text"}     a message published to room
//!                    {"gap":"room"}                      messages of room may have been lost
//!                                                        (the Redis link came back)
//!                    {"dropped":N}                       N messages dropped (drop-oldest)
//!                    {"error":"..."}                     a request was invalid; the
//!                                                        connection stays open
//! ```
//!
//! Every message is a text message. A published message is encoded once, as the text its
//! subscribers receive, and that one buffer is shared by all of them on this node (through
//! Redis: once per node). Bounds: a request is at most `--max-request` bytes (a larger
//! message is refused by the codec before it is buffered: closed with 1009), a topic name at
//! most `--max-topic-len` bytes, a connection subscribes to at most `--max-topics` topics,
//! and each connection may fall `--max-backlog` bytes behind; then `--slow-consumer`
//! decides: `close` (1013, try again later) or `drop-oldest` (reported as `{"dropped":N}`).
//! The bus's counters are logged every 10 s when they changed, and at shutdown.

use std::convert::Infallible;
use std::pin::Pin;
use std::time::Duration;

use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};
use tether::MaybeTls;
use tether::{
    CloseCode, ConnectionInfo, Message, ServerSocket, Sink as _, SinkExt as _, StreamExt as _,
    Utf8Bytes, WebSocketWriter,
};
use tether_pubsub::{
    Bus, Bytes, Config, Delivery, Error as BusError, Payload, RedisBackplane, RedisConfig,
    SlowConsumer, Subscriber,
};
use tokio::net::TcpStream;

/// How often the bus's counters are logged (when they changed).
const METRICS_EVERY: Duration = Duration::from_secs(10);

/// The `serve` flags of topics mode.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct TopicsArgs {
    /// Publish/subscribe by topic over a small JSON protocol (see the README).
    #[arg(long, conflicts_with = "broadcast")]
    pub(crate) topics: bool,
    /// With --topics: join the cluster of nodes sharing this Redis server
    /// (redis://127.0.0.1:6379).
    #[arg(long, value_name = "URL", requires = "topics")]
    redis: Option<String>,
    /// With --topics: what happens to a client more than --max-backlog bytes behind.
    #[arg(long, value_enum, default_value_t = Policy::Close, requires = "topics")]
    slow_consumer: Policy,
    /// With --topics: most topics one connection may subscribe to.
    #[arg(long, value_name = "N", default_value_t = 64, requires = "topics")]
    max_topics: usize,
    /// With --topics: longest topic name, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 128, requires = "topics")]
    max_topic_len: usize,
    /// With --topics: largest request (a text message), in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 64 << 10, requires = "topics",
          value_parser = clap::value_parser!(u32).range(64..=(16 << 20)))]
    pub(crate) max_request: u32,
}

/// `--slow-consumer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Policy {
    /// Close the connection with 1013 (try again later).
    Close,
    /// Drop the oldest queued messages and tell the client how many.
    DropOldest,
}

/// A published message as its subscribers receive it: text, shared, checked as UTF-8 once
/// (when it comes from Redis).
#[derive(Debug, Clone)]
pub(crate) struct Frame(Utf8Bytes);

impl Payload for Frame {
    fn size(&self) -> usize {
        self.0.len()
    }

    fn to_bytes(&self) -> Bytes {
        self.0.as_bytes().clone()
    }

    fn from_bytes(bytes: Bytes) -> Option<Self> {
        Utf8Bytes::try_from(bytes).ok().map(Frame)
    }
}

/// The bus of this node, made from the flags. With `--redis`, its tasks start now.
pub(crate) fn bus(args: &TopicsArgs, max_backlog: usize) -> Result<Bus<Frame>> {
    let mut config = Config::default();
    config
        .set_max_queued_bytes(max_backlog)
        .set_max_topics_per_subscriber(args.max_topics)
        .set_max_topic_len(args.max_topic_len)
        .set_slow_consumer(match args.slow_consumer {
            Policy::Close => SlowConsumer::Close,
            Policy::DropOldest => SlowConsumer::DropOldest,
        });
    let bus = match &args.redis {
        None => Bus::new(config),
        Some(url) => {
            let redis = RedisConfig::new(url.as_str());
            let client =
                RedisBackplane::client(&redis).with_context(|| format!("bad --redis URL {url}"))?;
            tracing::info!(url, "joining the cluster through redis");
            Bus::with_backplane(config, |inbound| {
                RedisBackplane::start(client, &redis, inbound)
            })
        }
    };
    tokio::spawn(log_metrics(bus.clone()));
    Ok(bus)
}

/// One connection in topics mode, from the Upgrade to its close.
pub(crate) async fn serve(ws: ServerSocket, conn: ConnectionInfo, bus: Bus<Frame>) {
    let peer = conn.peer_addr();
    tracing::info!(%peer, "connection opened (topics)");
    let (mut reader, mut writer) = ws.split();
    let mut subscriber = bus.subscriber();
    let mut held = None;
    let mut unflushed = false;
    let ended = loop {
        // Both branches are cancel safe: the reader keeps what it read, a delivery taken
        // from the queue waits in `held` until the write buffer has room.
        tokio::select! {
            biased;
            () = conn.shutdown() => break Ended::Shutdown,
            received = reader.next() => match received {
                Some(Ok(message)) => {
                    let Some(reply) = answer(&mut subscriber, &message) else { continue };
                    if let Err(err) = writer.feed(Message::text(reply)).await {
                        break Ended::Failed(err);
                    }
                    unflushed = true;
                }
                Some(Err(err)) => break Ended::Failed(err),
                None => break Ended::Done,
            },
            forwarded = forward(&mut subscriber, &mut writer, &mut held, &mut unflushed) => {
                break match forwarded {
                    Err(Forward::Bus(err)) => Ended::Evicted(err),
                    Err(Forward::Socket(err)) => Ended::Failed(err),
                };
            }
        }
    };
    drop(reader);
    let closed = match ended {
        Ended::Done => Ok(None),
        Ended::Failed(err) => Err(err),
        Ended::Shutdown => {
            writer
                .close(CloseCode::GOING_AWAY, "server shutting down")
                .await
        }
        Ended::Evicted(err) => {
            tracing::warn!(%peer, error = %err, "closing a slow client");
            writer
                .close(CloseCode::TRY_AGAIN_LATER, "too slow for its topics")
                .await
        }
    };
    match closed {
        Ok(_) => tracing::info!(%peer, "connection closed"),
        Err(err) => tracing::info!(%peer, error = %err, "connection failed"),
    }
}

/// Why [`serve`]'s loop ended.
enum Ended {
    Done,
    Shutdown,
    Evicted(BusError),
    Failed(tether::Error),
}

enum Forward {
    Bus(BusError),
    Socket(tether::Error),
}

/// Writes what the subscriber receives, flushing whenever its queue runs dry. Ends only
/// with an error.
async fn forward(
    subscriber: &mut Subscriber<Frame>,
    writer: &mut WebSocketWriter<MaybeTls<TcpStream>>,
    held: &mut Option<Message>,
    unflushed: &mut bool,
) -> Result<Infallible, Forward> {
    loop {
        if held.is_none() {
            let delivery = match subscriber.try_recv() {
                Some(delivery) => delivery,
                None if *unflushed => {
                    writer.flush().await.map_err(Forward::Socket)?;
                    *unflushed = false;
                    continue;
                }
                None => subscriber.recv().await,
            };
            *held = Some(to_message(delivery.map_err(Forward::Bus)?));
        }
        writer.ready().await.map_err(Forward::Socket)?;
        if let Some(message) = held.take() {
            Pin::new(&mut *writer)
                .start_send(message)
                .map_err(Forward::Socket)?;
            *unflushed = true;
        }
    }
}

/// The text a client receives for `delivery`.
fn to_message(delivery: Delivery<Frame>) -> Message {
    match delivery {
        // The encoded frame, shared with every other subscriber.
        Delivery::Message { payload, .. } => Message::Text(payload.0),
        Delivery::Gap { topic } => Message::text(json(&Gap { gap: &topic })),
        Delivery::Dropped { count } => Message::text(json(&Dropped { dropped: count })),
        other => Message::text(json(&ErrorReply {
            error: &format!("unknown event {other:?}"),
        })),
    }
}

/// A client's request, as JSON. Exactly one of the verbs is present.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Request {
    subscribe: Option<String>,
    unsubscribe: Option<String>,
    publish: Option<String>,
    data: Option<String>,
    #[serde(default)]
    exclude_self: bool,
}

#[derive(Serialize)]
struct Published<'a> {
    topic: &'a str,
    data: &'a str,
}

#[derive(Serialize)]
struct Gap<'a> {
    gap: &'a str,
}

#[derive(Serialize)]
struct Dropped {
    dropped: u64,
}

#[derive(Serialize)]
struct ErrorReply<'a> {
    error: &'a str,
}

#[derive(Serialize)]
struct Ack<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    subscribed: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    unsubscribed: Option<&'a str>,
}

/// Carries out one request; the reply to send, if any (publish has none).
fn answer(subscriber: &mut Subscriber<Frame>, message: &Message) -> Option<String> {
    let text = match message {
        Message::Text(text) => text.as_str(),
        Message::Binary(_) => return Some(error("requests are text messages (JSON)")),
        _ => return None,
    };
    let request: Request = match serde_json::from_str(text) {
        Ok(request) => request,
        Err(err) => return Some(error(&format!("not a request: {err}"))),
    };
    match request {
        Request {
            subscribe: Some(topic),
            unsubscribe: None,
            publish: None,
            data: None,
            ..
        } => Some(match subscriber.subscribe(&topic) {
            Ok(_) => json(&Ack {
                subscribed: Some(&topic),
                unsubscribed: None,
            }),
            Err(err) => error(&err.to_string()),
        }),
        Request {
            unsubscribe: Some(topic),
            subscribe: None,
            publish: None,
            data: None,
            ..
        } => {
            subscriber.unsubscribe(&topic);
            Some(json(&Ack {
                subscribed: None,
                unsubscribed: Some(&topic),
            }))
        }
        Request {
            publish: Some(topic),
            data: Some(data),
            subscribe: None,
            unsubscribe: None,
            exclude_self,
        } => {
            // Encoded once: every subscriber receives this one buffer.
            let frame = Frame(Utf8Bytes::from(json(&Published {
                topic: &topic,
                data: &data,
            })));
            let published = if exclude_self {
                subscriber.publish(&topic, frame)
            } else {
                subscriber.bus().publish(&topic, frame)
            };
            published.err().map(|err| error(&err.to_string()))
        }
        Request {
            publish: Some(_),
            data: None,
            subscribe: None,
            unsubscribe: None,
            ..
        } => Some(error("publish needs \"data\"")),
        _ => Some(error(
            "expected one of {\"subscribe\":T}, {\"unsubscribe\":T}, {\"publish\":T,\"data\":D}",
        )),
    }
}

fn error(text: &str) -> String {
    json(&ErrorReply { error: text })
}

fn json(value: &impl Serialize) -> String {
    // Plain structs of strings and numbers: serialising them cannot fail.
    serde_json::to_string(value).unwrap_or_default()
}

/// Logs the bus's counters every [`METRICS_EVERY`] when they changed.
async fn log_metrics(bus: Bus<Frame>) {
    let mut last = bus.metrics();
    let mut ticks = tokio::time::interval(METRICS_EVERY);
    loop {
        ticks.tick().await;
        let now = bus.metrics();
        if now != last {
            log_counters(&bus);
            last = now;
        }
    }
}

/// One log line with the bus's counters and its busiest topics.
pub(crate) fn log_counters(bus: &Bus<Frame>) {
    let m = bus.metrics();
    let mut topics = bus.topics();
    topics.sort_by_key(|(_, subscribers)| std::cmp::Reverse(*subscribers));
    let busiest: Vec<String> = topics
        .iter()
        .take(5)
        .map(|(t, n)| format!("{t}={n}"))
        .collect();
    tracing::info!(
        published = m.published,
        published_bytes = m.published_bytes,
        delivered = m.delivered,
        delivered_bytes = m.delivered_bytes,
        dropped = m.dropped,
        slow_consumer_closes = m.slow_consumer_closes,
        remote = m.remote,
        echoes_suppressed = m.echoes_suppressed,
        backplane_lost = m.backplane_lost,
        gaps = m.gaps,
        topics = topics.len(),
        subscribers = %busiest.join(" "),
        "topics"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subscriber() -> Subscriber<Frame> {
        Bus::new(Config::default()).subscriber()
    }

    fn text(s: &str) -> Message {
        Message::text(s.to_owned())
    }

    #[test]
    fn subscribe_publish_and_unsubscribe_answer_as_the_protocol_says() {
        let mut alice = subscriber();
        let mut bob = alice.bus().subscriber();
        let reply = answer(&mut alice, &text(r#"{"subscribe":"room"}"#));
        assert_eq!(reply.as_deref(), Some(r#"{"subscribed":"room"}"#));
        assert_eq!(
            answer(&mut bob, &text(r#"{"publish":"room","data":"hi \"x\""}"#)),
            None
        );
        let Some(Ok(delivery)) = alice.try_recv() else {
            panic!("nothing delivered")
        };
        assert_eq!(
            to_message(delivery),
            text(r#"{"topic":"room","data":"hi \"x\""}"#)
        );
        let reply = answer(&mut alice, &text(r#"{"unsubscribe":"room"}"#));
        assert_eq!(reply.as_deref(), Some(r#"{"unsubscribed":"room"}"#));
        assert_eq!(alice.bus().subscribers("room"), 0);
    }

    #[test]
    fn exclude_self_leaves_the_sender_out() {
        let mut alice = subscriber();
        answer(&mut alice, &text(r#"{"subscribe":"room"}"#));
        answer(
            &mut alice,
            &text(r#"{"publish":"room","data":"a","exclude_self":true}"#),
        );
        assert!(alice.try_recv().is_none());
        answer(&mut alice, &text(r#"{"publish":"room","data":"b"}"#));
        assert!(alice.try_recv().is_some());
    }

    #[test]
    fn invalid_requests_get_an_error_naming_the_problem() {
        let mut alice = subscriber();
        for (request, expected) in [
            ("not json", "not a request"),
            (r#"{"subscribe":"a","publish":"b"}"#, "expected one of"),
            (r#"{"publish":"room"}"#, "publish needs"),
            (r#"{"subscribe":""}"#, "topic name is empty"),
            (r#"{"subscribe":7}"#, "not a request"),
            (r#"{"shout":"x"}"#, "not a request"),
        ] {
            let reply = answer(&mut alice, &text(request)).unwrap();
            assert!(reply.starts_with(r#"{"error":""#), "{request}: {reply}");
            assert!(reply.contains(expected), "{request}: {reply}");
        }
        let reply = answer(&mut alice, &Message::binary(vec![1])).unwrap();
        assert!(reply.contains("text messages"), "{reply}");
    }
}
