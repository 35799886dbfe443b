//! Keepalive supervisor and reconnecting client: dead-peer detection over any Stream + Sink.
//!
//! The tutorial's heartbeat, done properly: the client sends an agreed probe at an
//! interval, the peer answers at once, and when no answer comes in time the connection is
//! declared dead, closed, and opened again with backoff. This crate does that for any
//! transport that is a `Stream<Item = Result<M, E>> + Sink<M>` of messages `M`, through a
//! small [`Probe`] trait that builds probes carrying a nonce and recognises answers.
//!
//! It does **not** know WebSocket: the facade crate supplies a probe for Ping/Pong frames
//! and one for an agreed text message, and maps close codes. It does not open
//! connections either: the reconnecting client calls a connect factory you give it.
//!
//! ```text
//!             application
//!   send() ─► Outbox ──┐          ▲ recv()   ▲ state (watch)   ▲ events (bounded mpsc)
//!   (bounded: count,   │          │          │                 │
//!    bytes, age)       ▼          │          │                 │
//!             ┌────────────────── supervisor task ──────────────────────┐
//!             │  link driver (tokio timers, reads, writes)              │
//!             │     │ now, inbound stamps, pongs, "probe written"        │
//!             │     ▼                                                    │
//!             │  Keepalive (sans-IO): poll_timeout / handle_timeout      │
//!             │     poll_probe ─► Probe::probe(nonce) ─► Sink            │
//!             │     Stream ─► Probe::classify ─► Data | Pong | Ping ...  │
//!             │  Backoff + RetryPolicy (sans-IO) ◄─ Failure ◄─ link end  │
//!             └───────────────────────────▲──────────────────────────────┘
//!                                         │ connect() (your factory)
//!                                     transport
//! ```
//!
//! The crate's root holds what a user of the [`Supervisor`] needs: its configuration, its
//! states and events, the [`Probe`] trait, the retry policy and the errors. The parts it is
//! built from are in [`sans_io`], each usable alone (your own driver, or another transport's
//! reconnection):
//!
//! * [`Keepalive`]: the sans-IO state machine of one connection (time passed in, like
//!   quinn-proto). It keeps two questions apart: "is anything arriving?" (any inbound
//!   frame) and "does the round trip work?" (a pong echoing our nonce), measures RTT
//!   ([`RttStats`]) and adapts the pong timeout (RFC 6298), turns Suspect after one
//!   miss and Dead after consecutive misses, and never blames the peer for a local stall.
//! * [`Backoff`] and [`RetryPolicy`]: exponential backoff with full jitter, a cap and a
//!   minimum uptime; retryable versus fatal failures.
//! * [`Outbox`]: bounded by count, bytes and age; overflow is an error, never silent.
//! * [`ProbeRateLimit`]: strikes for peers that probe too often.
//! * [`Supervisor`]: the tokio driver around them: [`Supervisor::connect`] for a
//!   reconnecting client, [`Supervisor::accept`] for a server-side connection.
//!
//! [`Keepalive`]: sans_io::Keepalive
//! [`RttStats`]: sans_io::RttStats
//! [`Backoff`]: sans_io::Backoff
//! [`Outbox`]: sans_io::Outbox
//! [`ProbeRateLimit`]: sans_io::ProbeRateLimit
//!
//! # Getting started
//!
//! A client and a server over an in-memory line transport, with the [`StringProbe`]:
//!
//! ```
//! use std::time::Duration;
//! use tether_heartbeat::{Event, KeepaliveConfig, Supervisor, SupervisorConfig, StringProbe};
//! use tokio_util::codec::{Framed, LinesCodec};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! let (client_io, server_io) = tokio::io::duplex(4096);
//! let mut keepalive = KeepaliveConfig::default();
//! keepalive.set_interval(Duration::from_secs(5)).set_pong_timeout(Duration::from_secs(2));
//! let mut config = SupervisorConfig::default();
//! config.set_keepalive(Some(keepalive)).set_seed(Some(1));
//!
//! // Server side: answers `ping <n>` with `pong <n>` at once.
//! let mut server_config = SupervisorConfig::default();
//! server_config.set_keepalive(None);
//! let server_io = Framed::new(server_io, LinesCodec::new());
//! let mut server = Supervisor::accept(&server_config, StringProbe::default(), server_io).unwrap();
//!
//! // Client side: one connection here; a real client reconnects through its factory.
//! let mut client_io = Some(Framed::new(client_io, LinesCodec::new()));
//! let mut client = Supervisor::connect(&config, StringProbe::default(), move || {
//!     let io = client_io.take();
//!     async move { io.ok_or(tether_heartbeat::Failure::Timeout) }
//! })
//! .unwrap();
//! let mut events = client.events().unwrap();
//!
//! client.send("hello".to_string()).await.unwrap();
//! assert_eq!(server.recv().await.as_deref(), Some("hello"));
//!
//! // Within one interval a probe goes out and its pong comes back.
//! let rtt = loop {
//!     if let Some(Event::ProbeAcked { rtt, .. }) = events.recv().await {
//!         break rtt;
//!     }
//! };
//! assert!(rtt.is_some());
//! # }
//! ```
//!
//! # Features
//!
//! No cargo features. Uses tokio (`time`, `sync`, `rt`) for the driver; the sans-IO
//! parts do not touch the runtime.
#![forbid(unsafe_code)]

mod backoff;
mod close;
mod config;
mod error;
mod inbox;
mod keepalive;
mod link;
mod outbox;
mod probe;
mod responder;
mod retry;
mod rtt;
mod splitmix;
mod state;
mod supervisor;
mod transport;

pub use backoff::ReconnectConfig;
pub use close::{CloseReason, Failure, Farewell};
pub use config::{KeepaliveConfig, Verdict, MAX_IN_FLIGHT};
pub use error::{Error, OutboxLimit};
pub use keepalive::{Health, StallCause};
pub use outbox::{OutboxConfig, Overflow};
pub use probe::{Inbound, Probe, StringProbe};
pub use responder::ResponderConfig;
pub use retry::{Decision, DefaultRetryPolicy, RetryPolicy};
pub use state::{Event, LinkState};
pub use supervisor::{Supervisor, SupervisorConfig};
pub use transport::Transport;

/// The sans-IO parts the [`Supervisor`] drives, for drivers of your own: time and events go
/// in, decisions come out; none of them touches the runtime.
pub mod sans_io {
    pub use crate::backoff::Backoff;
    pub use crate::keepalive::{Keepalive, PongOutcome};
    pub use crate::outbox::Outbox;
    pub use crate::responder::{ProbeRateLimit, RateVerdict};
    pub use crate::rtt::RttStats;
}
