//! The bus: a topic table of subscriber queues, and the backplane to other nodes.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard, Weak};

use bytes::Bytes;

use crate::backplane::{Backplane, Origin};
use crate::config::Config;
use crate::delivery::Delivery;
use crate::error::Error;
use crate::inbox::{Inbox, Pushed};
use crate::metrics::{Counters, Metrics};
use crate::payload::Payload;
use crate::subscriber::Subscriber;
use crate::topic::{self, Topic};

/// Topics and their subscribers, on this node and (through a [`Backplane`]) on others.
/// Cheap to clone; every clone is the same bus.
///
/// ```
/// use tether_pubsub::{Bus, Bytes, Config, Delivery};
///
/// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
/// let bus: Bus = Bus::new(Config::default());
/// let mut alice = bus.subscriber();
/// let mut bob = bus.subscriber();
/// alice.subscribe("room")?;
/// bob.subscribe("room")?;
/// // Bob publishes to everyone but himself: Alice gets it, Bob does not.
/// assert_eq!(bob.publish("room", Bytes::from_static(b"hi"))?, 1);
/// let Delivery::Message { topic, payload } = alice.recv().await? else { panic!() };
/// assert_eq!((topic.as_str(), &payload[..]), ("room", &b"hi"[..]));
/// assert_eq!(bob.queued_bytes(), 0);
/// assert_eq!(bus.subscribers("room"), 2);
/// # Ok::<(), tether_pubsub::Error>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Bus<P: Payload = Bytes> {
    pub(crate) shared: Arc<Shared<P>>,
}

/// The handle a [`Backplane`] delivers through: messages from other nodes, gaps, losses.
/// It does not keep the bus alive; once the bus is gone its methods do nothing.
pub struct Inbound<P: Payload = Bytes> {
    shared: Weak<Shared<P>>,
    origin: Origin,
}

pub(crate) struct Shared<P: Payload> {
    pub(crate) config: Config,
    origin: Origin,
    topics: RwLock<HashMap<Topic, Vec<Arc<Inbox<P>>>>>,
    backplane: Option<Box<dyn Backplane>>,
    pub(crate) counters: Counters,
    next_id: AtomicU64,
}

impl<P: Payload> Bus<P> {
    /// A bus for this process alone.
    pub fn new(config: Config) -> Self {
        Bus {
            shared: Shared::build(config, |_| None),
        }
    }

    /// A bus joined to other nodes by the backplane `connect` makes from the bus's
    /// [`Inbound`] handle.
    pub fn with_backplane<B, F>(config: Config, connect: F) -> Self
    where
        B: Backplane,
        F: FnOnce(Inbound<P>) -> B,
    {
        let shared = Shared::build(config, |inbound| {
            Some(Box::new(connect(inbound)) as Box<dyn Backplane>)
        });
        Bus { shared }
    }

    /// The bus's limits.
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// This node's tag on what it publishes through the backplane.
    pub fn origin(&self) -> Origin {
        self.shared.origin
    }

    /// A new subscriber (one per connection), subscribed to nothing yet.
    pub fn subscriber(&self) -> Subscriber<P> {
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        Subscriber::new(self.clone(), Arc::new(Inbox::new(id)))
    }

    /// Publishes `payload` to every subscriber of `topic`, here and on the other nodes, and
    /// returns how many subscribers on this node took it.
    ///
    /// # Errors
    ///
    /// [`Error::EmptyTopic`], [`Error::TopicTooLong`].
    pub fn publish(&self, topic: &str, payload: P) -> Result<usize, Error> {
        self.shared.publish(topic, payload, None)
    }

    /// Subscribers of `topic` on this node.
    pub fn subscribers(&self, topic: &str) -> usize {
        self.shared.read().get(topic).map_or(0, Vec::len)
    }

    /// Every topic with subscribers on this node, and how many.
    pub fn topics(&self) -> Vec<(Topic, usize)> {
        let topics = self.shared.read();
        topics
            .iter()
            .map(|(t, subs)| (t.clone(), subs.len()))
            .collect()
    }

    /// The counters so far.
    pub fn metrics(&self) -> Metrics {
        self.shared.counters.snapshot()
    }
}

impl<P: Payload> Shared<P> {
    /// The backplane gets a weak handle to the bus it serves, so it is made in the same step.
    fn build(
        config: Config,
        backplane: impl FnOnce(Inbound<P>) -> Option<Box<dyn Backplane>>,
    ) -> Arc<Self> {
        let origin = Origin::random();
        Arc::new_cyclic(|shared| Shared {
            config,
            origin,
            topics: RwLock::new(HashMap::new()),
            backplane: backplane(Inbound {
                shared: shared.clone(),
                origin,
            }),
            counters: Counters::default(),
            next_id: AtomicU64::new(0),
        })
    }

    /// Publishes to the local subscribers but `except`, then to the backplane.
    pub(crate) fn publish(
        &self,
        topic: &str,
        payload: P,
        except: Option<u64>,
    ) -> Result<usize, Error> {
        topic::check(topic, &self.config)?;
        let size = payload.size() as u64;
        Counters::add(&self.counters.published, 1);
        Counters::add(&self.counters.published_bytes, size);
        let taken = self.fan_out(topic, except, |topic| Delivery::Message {
            topic,
            payload: payload.clone(),
        });
        if let Some(backplane) = &self.backplane {
            if !backplane.publish(topic, self.origin, payload.to_bytes()) {
                Counters::add(&self.counters.backplane_lost, 1);
            }
        }
        Ok(taken)
    }

    /// Queues what `make` builds for every subscriber of `topic` but `except`; returns how
    /// many took it. Never waits for a subscriber.
    fn fan_out(
        &self,
        topic: &str,
        except: Option<u64>,
        make: impl Fn(Topic) -> Delivery<P>,
    ) -> usize {
        let topics = self.read();
        let Some((name, inboxes)) = topics.get_key_value(topic) else {
            return 0;
        };
        let (limit, policy) = (self.config.max_queued_bytes(), self.config.slow_consumer());
        let (mut taken, mut dropped, mut cut) = (0, 0, 0);
        for inbox in inboxes.iter().filter(|inbox| Some(inbox.id) != except) {
            match inbox.push(make(name.clone()), limit, policy) {
                Pushed::Queued { dropped: n } => {
                    taken += 1;
                    dropped += n;
                }
                Pushed::CutOff => cut += 1,
                Pushed::Refused => {}
            }
        }
        drop(topics);
        if cut > 0 {
            tracing::debug!(%topic, subscribers = cut, "slow subscribers cut off");
            Counters::add(&self.counters.slow_consumer_closes, cut);
        }
        Counters::add(&self.counters.dropped, dropped);
        taken
    }

    /// Adds `inbox` to `topic`'s subscribers; the first one subscribes the backplane.
    pub(crate) fn join(&self, topic: &Topic, inbox: &Arc<Inbox<P>>) {
        let mut topics = self.write();
        let subscribers = topics.entry(topic.clone()).or_default();
        subscribers.push(inbox.clone());
        // Under the table's lock, so the backplane sees joins and leaves in their order.
        if subscribers.len() == 1 {
            if let Some(backplane) = &self.backplane {
                backplane.subscribe(topic);
            }
        }
    }

    /// Removes the inbox `id` from `topic`'s subscribers; the last one unsubscribes.
    pub(crate) fn leave(&self, topic: &str, id: u64) {
        let mut topics = self.write();
        let Some(subscribers) = topics.get_mut(topic) else {
            return;
        };
        if let Some(at) = subscribers.iter().position(|inbox| inbox.id == id) {
            subscribers.swap_remove(at);
        }
        if subscribers.is_empty() {
            if let Some((name, _)) = topics.remove_entry(topic) {
                if let Some(backplane) = &self.backplane {
                    backplane.unsubscribe(&name);
                }
            }
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, HashMap<Topic, Vec<Arc<Inbox<P>>>>> {
        // Each update of the table is a whole push, swap_remove or remove: a panic elsewhere
        // cannot leave it half-changed.
        self.topics.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, HashMap<Topic, Vec<Arc<Inbox<P>>>>> {
        // As for `read`.
        self.topics.write().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<P: Payload> Inbound<P> {
    /// The tag of the bus this handle delivers to: a backplane message carrying it is this
    /// node's own, echoed back.
    pub fn origin(&self) -> Origin {
        self.origin
    }

    /// Whether the bus still exists; a backplane's tasks end when it does not.
    pub fn is_open(&self) -> bool {
        self.shared.strong_count() > 0
    }

    /// Delivers a message that `origin` published to `topic` to this node's subscribers, and
    /// returns how many took it. This node's own messages are dropped here (they were
    /// delivered locally when published): each subscriber gets each message once.
    pub fn deliver(&self, topic: &str, origin: Origin, payload: Bytes) -> usize {
        let Some(shared) = self.shared.upgrade() else {
            return 0;
        };
        if origin == self.origin {
            Counters::add(&shared.counters.echoes_suppressed, 1);
            return 0;
        }
        let Some(payload) = P::from_bytes(payload) else {
            Counters::add(&shared.counters.rejected, 1);
            return 0;
        };
        Counters::add(&shared.counters.remote, 1);
        shared.fan_out(topic, None, |topic| Delivery::Message {
            topic,
            payload: payload.clone(),
        })
    }

    /// Tells every subscriber of `topic` on this node that messages may have been lost
    /// ([`Delivery::Gap`]).
    pub fn gap(&self, topic: &str) {
        let Some(shared) = self.shared.upgrade() else {
            return;
        };
        if shared.fan_out(topic, None, |topic| Delivery::Gap { topic }) > 0 {
            Counters::add(&shared.counters.gaps, 1);
        }
    }

    /// Counts `messages` of this node that the backplane could not carry.
    pub fn lost(&self, messages: u64) {
        if let Some(shared) = self.shared.upgrade() {
            Counters::add(&shared.counters.backplane_lost, messages);
        }
    }
}

impl<P: Payload> Clone for Bus<P> {
    fn clone(&self) -> Self {
        Bus {
            shared: self.shared.clone(),
        }
    }
}

impl<P: Payload> Clone for Inbound<P> {
    fn clone(&self) -> Self {
        Inbound {
            shared: self.shared.clone(),
            origin: self.origin,
        }
    }
}

impl<P: Payload> fmt::Debug for Bus<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bus")
            .field("origin", &self.shared.origin)
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

impl<P: Payload> fmt::Debug for Inbound<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inbound")
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{InProcess, SlowConsumer};

    fn bus() -> Bus {
        Bus::new(Config::default())
    }

    fn payload(message: Delivery<Bytes>) -> Bytes {
        match message {
            Delivery::Message { payload, .. } => payload,
            other => panic!("not a message: {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_message_reaches_the_subscribers_of_its_topic_only() {
        let bus = bus();
        let (mut a, mut b) = (bus.subscriber(), bus.subscriber());
        a.subscribe("room").unwrap();
        b.subscribe("other").unwrap();
        assert_eq!(bus.publish("room", Bytes::from_static(b"x")).unwrap(), 1);
        assert_eq!(bus.publish("nobody", Bytes::from_static(b"y")).unwrap(), 0);
        let Delivery::Message { topic, payload } = a.recv().await.unwrap() else {
            panic!()
        };
        assert_eq!((topic.as_str(), &payload[..]), ("room", &b"x"[..]));
        assert!(b.try_recv().is_none());
        assert_eq!(bus.topics().len(), 2);
    }

    #[tokio::test]
    async fn after_unsubscribe_nothing_more_arrives_and_the_topic_is_forgotten() {
        let bus = bus();
        let mut a = bus.subscriber();
        assert!(a.subscribe("room").unwrap());
        assert!(!a.subscribe("room").unwrap());
        bus.publish("room", Bytes::from_static(b"1")).unwrap();
        assert!(a.unsubscribe("room"));
        assert!(!a.unsubscribe("room"));
        assert_eq!(bus.publish("room", Bytes::from_static(b"2")).unwrap(), 0);
        // Queued before the unsubscribe: still received.
        assert_eq!(payload(a.recv().await.unwrap()), "1");
        assert!(a.try_recv().is_none());
        assert_eq!(bus.subscribers("room"), 0);
        assert!(bus.topics().is_empty());
    }

    #[test]
    fn a_subscriber_that_publishes_is_left_out_and_bus_publish_is_not() {
        let bus = bus();
        let (mut a, mut b) = (bus.subscriber(), bus.subscriber());
        a.subscribe("room").unwrap();
        b.subscribe("room").unwrap();
        assert_eq!(a.publish("room", Bytes::from_static(b"from a")).unwrap(), 1);
        assert!(a.try_recv().is_none());
        assert!(b.try_recv().is_some());
        assert_eq!(bus.publish("room", Bytes::from_static(b"all")).unwrap(), 2);
    }

    #[test]
    fn each_publishers_messages_arrive_in_order_across_threads() {
        let bus = bus();
        let mut reader = bus.subscriber();
        reader.subscribe("t").unwrap();
        let mut config = Config::default();
        config.set_max_queued_bytes(usize::MAX);
        let publishers: Vec<_> = (0u8..4)
            .map(|id| {
                let bus = bus.clone();
                std::thread::spawn(move || {
                    for n in 0u32..1000 {
                        let mut message = vec![id];
                        message.extend_from_slice(&n.to_be_bytes());
                        bus.publish("t", Bytes::from(message)).unwrap();
                    }
                })
            })
            .collect();
        publishers.into_iter().for_each(|p| p.join().unwrap());
        let mut next = [0u32; 4];
        while let Some(delivery) = reader.try_recv() {
            let message = payload(delivery.unwrap());
            let id = message[0] as usize;
            let n = u32::from_be_bytes(message[1..5].try_into().unwrap());
            assert_eq!(n, next[id], "publisher {id} out of order");
            next[id] += 1;
        }
        assert_eq!(next, [1000; 4]);
    }

    #[test]
    fn one_publish_shares_one_payload_among_ten_thousand_subscribers() {
        let bus = bus();
        let mut subscribers: Vec<_> = (0..10_000).map(|_| bus.subscriber()).collect();
        for subscriber in &mut subscribers {
            subscriber.subscribe("all").unwrap();
        }
        assert_eq!(bus.subscribers("all"), 10_000);
        let published = Bytes::from(vec![7u8; 1024]);
        assert_eq!(bus.publish("all", published.clone()).unwrap(), 10_000);
        for subscriber in &mut subscribers {
            let got = payload(subscriber.try_recv().unwrap().unwrap());
            // Pointer identity: every delivery is the published allocation, not a copy.
            assert_eq!(got.as_ptr(), published.as_ptr());
            assert_eq!(got.len(), 1024);
        }
        let metrics = bus.metrics();
        assert_eq!((metrics.published, metrics.delivered), (1, 10_000));
        assert_eq!(metrics.delivered_bytes, 10_000 * 1024);
        drop(subscribers);
        assert!(bus.topics().is_empty());
    }

    #[test]
    fn a_subscriber_that_never_reads_is_cut_off_and_the_others_keep_everything() {
        let mut config = Config::default();
        config.set_max_queued_bytes(10 * (100 + 64));
        let bus: Bus = Bus::new(config);
        let (mut stalled, mut reader) = (bus.subscriber(), bus.subscriber());
        stalled.subscribe("t").unwrap();
        reader.subscribe("t").unwrap();
        for n in 0..1000u32 {
            bus.publish("t", Bytes::from(vec![0; 100])).unwrap();
            assert!(stalled.queued_bytes() <= 10 * (100 + 64), "after {n}");
            assert_eq!(payload(reader.try_recv().unwrap().unwrap()).len(), 100);
        }
        // Cut off at the eleventh message: queue freed, nothing queued since.
        assert_eq!(stalled.queued_bytes(), 0);
        assert_eq!(
            stalled.try_recv(),
            Some(Err(Error::SlowConsumer { limit: 1640 }))
        );
        let metrics = bus.metrics();
        assert_eq!((metrics.slow_consumer_closes, metrics.delivered), (1, 1000));
    }

    #[test]
    fn drop_oldest_keeps_a_stalled_subscriber_bounded_and_counts_the_drops() {
        let mut config = Config::default();
        config
            .set_max_queued_bytes(10 * (100 + 64))
            .set_slow_consumer(SlowConsumer::DropOldest);
        let bus: Bus = Bus::new(config);
        let mut stalled = bus.subscriber();
        stalled.subscribe("t").unwrap();
        for n in 0..1000u32 {
            bus.publish("t", Bytes::from(n.to_be_bytes().repeat(25)))
                .unwrap();
        }
        assert_eq!(stalled.queued_bytes(), 10 * (100 + 64));
        assert_eq!(
            stalled.try_recv(),
            Some(Ok(Delivery::Dropped { count: 990 }))
        );
        // The newest ten remain, in order.
        for n in 990..1000u32 {
            assert_eq!(
                payload(stalled.try_recv().unwrap().unwrap())[..4],
                n.to_be_bytes()
            );
        }
        assert_eq!(bus.metrics().dropped, 990);
    }

    #[test]
    fn topic_and_topic_count_limits_hold_at_the_limit_and_one_past_it() {
        let mut config = Config::default();
        config.set_max_topics_per_subscriber(2).set_max_topic_len(3);
        let bus: Bus = Bus::new(config);
        let mut a = bus.subscriber();
        assert!(a.subscribe("abc").unwrap());
        assert_eq!(
            a.subscribe("abcd"),
            Err(Error::TopicTooLong { len: 4, limit: 3 })
        );
        assert!(a.subscribe("b").unwrap());
        assert_eq!(a.subscribe("c"), Err(Error::TooManyTopics { limit: 2 }));
        assert_eq!(bus.publish("", Bytes::new()), Err(Error::EmptyTopic));
    }

    #[test]
    fn across_in_process_nodes_each_subscriber_gets_each_message_once() {
        let cluster = InProcess::new();
        let nodes: Vec<Bus> = (0..3)
            .map(|_| Bus::with_backplane(Config::default(), |inbound| cluster.join(inbound)))
            .collect();
        let mut subscribers: Vec<_> = nodes
            .iter()
            .map(|node| {
                let mut subscriber = node.subscriber();
                subscriber.subscribe("room").unwrap();
                subscriber
            })
            .collect();
        let publisher = nodes[0].subscriber();
        for n in 0..10u8 {
            publisher.publish("room", Bytes::from(vec![n])).unwrap();
        }
        for subscriber in &mut subscribers {
            for n in 0..10u8 {
                assert_eq!(payload(subscriber.try_recv().unwrap().unwrap())[..], [n]);
            }
            assert!(subscriber.try_recv().is_none(), "a message arrived twice");
        }
        // Node 0 saw its own ten messages come back and dropped them.
        assert_eq!(nodes[0].metrics().echoes_suppressed, 10);
        assert_eq!(nodes[1].metrics().remote, 10);
    }
}
