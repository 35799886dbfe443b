//! Topics and byte-bounded fan-out, in one process or across many through a backplane.
//!
//! A [`Bus`] holds topics; each connection gets a [`Subscriber`], subscribes to topics,
//! publishes to them ([`Subscriber::publish`] leaves itself out, [`Bus::publish`] does not)
//! and receives [`Delivery`]s from a queue bounded in bytes. A published payload is shared,
//! never copied per subscriber: each queue holds a clone of the same [`Bytes`] (or any
//! [`Payload`] that shares like it), so a message costs one allocation however many
//! subscribers take it.
//!
//! ```text
//!                 ┌─► queue (bounded in bytes) ─► Subscriber::recv ─► connection
//!  publish(topic) ┼─► queue ─► ...                 (one slow queue never blocks the others:
//!     │           └─► queue ✗ full: SlowConsumer    a publish only pushes, never waits)
//!     └─► Backplane ─► other nodes ─► Inbound::deliver ─► their queues
//!            (in-process: InProcess; across machines: RedisBackplane, feature `redis`)
//! ```
//!
//! **Slow consumers.** A subscriber's queue counts each delivery's payload plus 64 bytes.
//! A delivery that would take a non-empty queue past [`Config::max_queued_bytes`] is
//! handled by the [`SlowConsumer`] policy: [`SlowConsumer::Close`] (the default) frees the
//! queue and cuts the subscriber off ([`Error::SlowConsumer`]; a WebSocket server closes it
//! with 1013), [`SlowConsumer::DropOldest`] drops from the front and reports the count
//! ([`Delivery::Dropped`]). Either way a subscriber that never reads holds at most its limit
//! (or one message larger than it) and publishers never wait for it.
//!
//! **Across nodes.** A [`Backplane`] carries each message, tagged with its node's
//! [`Origin`], to the other nodes; a node drops its own messages when they come back, so a
//! subscriber gets each message exactly once, and in the order each publisher published.
//! When the backplane loses its link and comes back, subscribers get a [`Delivery::Gap`].
//! [`Metrics`] count what was published, delivered, dropped and cut off.
//!
//! It knows nothing of WebSocket: the `tether` CLI's `serve --topics` puts a JSON protocol
//! on top.
//!
//! ```
//! use tether_pubsub::{Bus, Bytes, Config, Delivery};
//!
//! # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
//! let bus: Bus = Bus::new(Config::default());
//! let mut reader = bus.subscriber();
//! reader.subscribe("prices")?;
//! let payload = Bytes::from(vec![42; 1024]);
//! assert_eq!(bus.publish("prices", payload.clone())?, 1);
//! let Delivery::Message { payload: got, .. } = reader.recv().await? else { panic!() };
//! assert_eq!(got.as_ptr(), payload.as_ptr()); // the same bytes, not a copy
//! assert_eq!(bus.metrics().delivered, 1);
//! # Ok::<(), tether_pubsub::Error>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Features: `redis` adds [`RedisBackplane`] (the `redis` crate, tokio).
#![forbid(unsafe_code)]

mod backplane;
mod bus;
mod config;
mod delivery;
mod error;
mod inbox;
mod metrics;
mod payload;
#[cfg(feature = "redis")]
mod redis_backplane;
mod subscriber;
mod topic;

pub use backplane::{Backplane, InProcess, Origin};
pub use bus::{Bus, Inbound};
pub use bytes::Bytes;
pub use config::{Config, SlowConsumer};
pub use delivery::Delivery;
pub use error::Error;
pub use metrics::Metrics;
pub use payload::Payload;
#[cfg(feature = "redis")]
pub use redis_backplane::{RedisBackplane, RedisConfig};
pub use subscriber::Subscriber;
pub use topic::Topic;
