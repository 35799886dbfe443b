//! One connection's view of the bus: its topics and its queue.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use crate::bus::Bus;
use crate::delivery::Delivery;
use crate::error::Error;
use crate::inbox::{Inbox, Popped};
use crate::metrics::Counters;
use crate::payload::Payload;
use crate::topic::Topic;

/// A subscriber: the topics one connection follows and the byte-bounded queue of what was
/// published to them. Dropping it unsubscribes from every topic.
pub struct Subscriber<P: Payload = bytes::Bytes> {
    bus: Bus<P>,
    inbox: Arc<Inbox<P>>,
    topics: HashSet<Topic>,
}

impl<P: Payload> Subscriber<P> {
    pub(crate) fn new(bus: Bus<P>, inbox: Arc<Inbox<P>>) -> Self {
        Subscriber {
            bus,
            inbox,
            topics: HashSet::new(),
        }
    }

    /// Subscribes to `topic`; `Ok(false)` if already subscribed. Messages published from now
    /// on are queued for this subscriber.
    ///
    /// # Errors
    ///
    /// [`Error::EmptyTopic`], [`Error::TopicTooLong`], [`Error::TooManyTopics`].
    pub fn subscribe(&mut self, topic: &str) -> Result<bool, Error> {
        let config = &self.bus.shared.config;
        let topic = Topic::new(topic, config)?;
        if self.topics.contains(&topic) {
            return Ok(false);
        }
        if self.topics.len() >= config.max_topics_per_subscriber() {
            return Err(Error::TooManyTopics {
                limit: config.max_topics_per_subscriber(),
            });
        }
        self.bus.shared.join(&topic, &self.inbox);
        self.topics.insert(topic);
        Ok(true)
    }

    /// Unsubscribes from `topic`; `false` if not subscribed. Messages of it already queued
    /// are still received.
    pub fn unsubscribe(&mut self, topic: &str) -> bool {
        if !self.topics.remove(topic) {
            return false;
        }
        self.bus.shared.leave(topic, self.inbox.id);
        true
    }

    /// The topics subscribed to.
    pub fn topics(&self) -> impl Iterator<Item = &Topic> {
        self.topics.iter()
    }

    /// Publishes `payload` to every subscriber of `topic` but this one, here and on the
    /// other nodes; returns how many subscribers on this node took it.
    ///
    /// # Errors
    ///
    /// [`Error::EmptyTopic`], [`Error::TopicTooLong`].
    pub fn publish(&self, topic: &str, payload: P) -> Result<usize, Error> {
        self.bus.shared.publish(topic, payload, Some(self.inbox.id))
    }

    /// The next delivery, waiting for one. Cancel safe: a delivery leaves the queue only
    /// when it is returned.
    ///
    /// # Errors
    ///
    /// [`Error::SlowConsumer`], from then on, once this subscriber was cut off.
    pub async fn recv(&mut self) -> Result<Delivery<P>, Error> {
        loop {
            if let Some(next) = self.try_recv() {
                return next;
            }
            // `notify_one` leaves a permit when nobody waits: a push between `try_recv` and
            // here is not missed.
            self.inbox.notify.notified().await;
        }
    }

    /// The next delivery if one is queued, without waiting.
    pub fn try_recv(&mut self) -> Option<Result<Delivery<P>, Error>> {
        match self.inbox.pop() {
            Popped::Delivery(delivery) => {
                if let Delivery::Message { payload, .. } = &delivery {
                    let counters = &self.bus.shared.counters;
                    Counters::add(&counters.delivered, 1);
                    Counters::add(&counters.delivered_bytes, payload.size() as u64);
                }
                Some(Ok(delivery))
            }
            Popped::CutOff => Some(Err(Error::SlowConsumer {
                limit: self.bus.shared.config.max_queued_bytes(),
            })),
            Popped::Empty => None,
        }
    }

    /// Bytes queued and not yet received, as counted against
    /// [`Config::max_queued_bytes`](crate::Config::max_queued_bytes).
    pub fn queued_bytes(&self) -> usize {
        self.inbox.bytes()
    }

    /// Whether this subscriber was cut off for falling behind.
    pub fn is_cut_off(&self) -> bool {
        self.inbox.is_cut_off()
    }

    /// The bus this subscriber belongs to.
    pub fn bus(&self) -> &Bus<P> {
        &self.bus
    }
}

impl<P: Payload> Drop for Subscriber<P> {
    fn drop(&mut self) {
        for topic in self.topics.drain() {
            self.bus.shared.leave(&topic, self.inbox.id);
        }
    }
}

impl<P: Payload> fmt::Debug for Subscriber<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscriber")
            .field("topics", &self.topics)
            .field("queued_bytes", &self.queued_bytes())
            .finish_non_exhaustive()
    }
}
