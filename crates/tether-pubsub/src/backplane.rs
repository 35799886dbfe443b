//! The link between nodes: a trait, and the in-process implementation.

use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, PoisonError, RwLock};

use bytes::Bytes;

use crate::bus::Inbound;
use crate::payload::Payload;
use crate::topic::Topic;

/// A node's tag on the messages it publishes. A backplane carries it with each message, so a
/// node recognises its own messages when they come back and does not deliver them twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Origin(pub u64);

impl Origin {
    /// A random tag, distinct across processes and buses with overwhelming probability.
    pub fn random() -> Origin {
        // `RandomState` is seeded from the OS once per process and varied per instance.
        Origin(RandomState::new().hash_one(std::time::SystemTime::now()))
    }
}

/// Carries messages between the nodes of a cluster. A [`Bus`](crate::Bus) calls it when it
/// publishes and when its first subscriber of a topic joins or its last one leaves; the
/// backplane delivers other nodes' messages through the [`Inbound`] handle it was made with.
///
/// Every method returns at once: a backplane queues and does its I/O elsewhere, so a
/// publisher never waits for the network. Messages of one publisher must arrive on every
/// other node in the order they were published.
pub trait Backplane: Send + Sync + 'static {
    /// Sends `payload`, published to `topic` by the node `origin`, to every node subscribed to
    /// `topic` (this one included or not: the bus drops its own). `false` if it was dropped
    /// (counted in [`Metrics::backplane_lost`](crate::Metrics::backplane_lost)).
    fn publish(&self, topic: &str, origin: Origin, payload: Bytes) -> bool;
    /// This node has its first subscriber of `topic`.
    fn subscribe(&self, topic: &Topic);
    /// This node's last subscriber of `topic` left.
    fn unsubscribe(&self, topic: &Topic);
}

/// The in-process backplane: joins several [`Bus`](crate::Bus)es in one process as if they
/// were nodes, with no copy of the payload. For tests of a cluster's behaviour without a
/// network, and for applications that shard one process into several buses.
///
/// ```
/// use tether_pubsub::{Bus, Bytes, Config, InProcess};
///
/// let cluster = InProcess::new();
/// let a: Bus = Bus::with_backplane(Config::default(), |inbound| cluster.join(inbound));
/// let b: Bus = Bus::with_backplane(Config::default(), |inbound| cluster.join(inbound));
/// let mut on_b = b.subscriber();
/// on_b.subscribe("room")?;
/// a.publish("room", Bytes::from_static(b"from a"))?;
/// assert!(on_b.try_recv().is_some());
/// assert_eq!(b.metrics().remote, 1);
/// # Ok::<(), tether_pubsub::Error>(())
/// ```
pub struct InProcess<P: Payload = Bytes> {
    nodes: Arc<RwLock<Vec<Inbound<P>>>>,
}

impl<P: Payload> InProcess<P> {
    /// A cluster with no node yet.
    pub fn new() -> Self {
        InProcess {
            nodes: Arc::new(RwLock::new(Vec::new())),
        }
    }

    /// Adds the bus behind `inbound` to the cluster: pass this to
    /// [`Bus::with_backplane`](crate::Bus::with_backplane).
    pub fn join(&self, inbound: Inbound<P>) -> InProcess<P> {
        let mut nodes = self.nodes.write().unwrap_or_else(PoisonError::into_inner);
        nodes.retain(Inbound::is_open);
        nodes.push(inbound);
        InProcess {
            nodes: self.nodes.clone(),
        }
    }
}

impl<P: Payload> Backplane for InProcess<P> {
    fn publish(&self, topic: &str, origin: Origin, payload: Bytes) -> bool {
        // Every node's bus looks the topic up itself: one without subscribers takes nothing.
        // The list is only pushed to or filtered, so a poisoned lock is still whole.
        let nodes = self.nodes.read().unwrap_or_else(PoisonError::into_inner);
        for node in nodes.iter() {
            node.deliver(topic, origin, payload.clone());
        }
        true
    }

    fn subscribe(&self, _topic: &Topic) {}

    fn unsubscribe(&self, _topic: &Topic) {}
}

impl<P: Payload> Default for InProcess<P> {
    fn default() -> Self {
        InProcess::new()
    }
}

impl<P: Payload> fmt::Debug for InProcess<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InProcess").finish_non_exhaustive()
    }
}
