//! Tether: RFC 6455 WebSockets for tokio with heartbeat, reconnection and a teaching TLS handshake.
//!
//! This is the crate applications depend on. It drives the sans-IO layers over real
//! transports: [`WebSocket<S>`] is a `Stream` of received messages and a `Sink` of messages to
//! send over any `AsyncRead + AsyncWrite`; [`connect`] and [`ClientBuilder`] open `ws://` and
//! `wss://` connections (rustls with the ring provider, the system's roots by default
//! ([`Roots`])), directly or through an HTTP or SOCKS5 [`Proxy`] (from the environment as
//! curl reads it: [`proxy_for`]); [`accept`], [`accept_with`] and
//! [`Server`] run the server side. One [`Config`] holds the limits and timeouts of both roles.
//!
//! **It does**: the async driver (batched reads and writes, automatic pongs, the closing
//! handshake with a timeout, the server closing TCP first), backpressure with a bounded write
//! buffer, [`WebSocket::split`] into halves for two tasks, TLS through rustls. The heartbeat
//! ([`heartbeat`]) wired to WebSockets: [`connect_supervised`] gives a client that probes the
//! server ([`PingProbe`], or the agreed text message of [`TextProbe`]), declares it dead
//! when the answers stop and reconnects with backoff; [`WebSocket::supervise`] turns the
//! keepalive on for one server connection. [`fanout::Fanout`] broadcasts to many connections with
//! shared payloads, each subscriber bounded in bytes, slow ones cut off with 1013; [`pubsub`]
//! adds topics, and nodes joined over Redis.
//! permessage-deflate (RFC 7692, [`deflate`]) is negotiated and applied per connection
//! ([`Config::set_deflate`]: offered by clients, accepted by servers only when configured).
//!
//! **It does not**: parse frames or HTTP itself (that is [`codec`] and [`handshake`], both
//! re-exported), or run an HTTP server beyond a fixed answer to plain requests.
//!
//! ```text
//!  TcpStream ─► [rustls] ─► handshake::server / client ─► WebSocket<S>
//!                              (leftover bytes kept)        │  read: one read, every frame in it
//!                                                           │        ─► codec::Protocol ─► Stream<Message>
//!                                                           │  write: Sink<Message> ─► one buffer
//!                                                           │        ─► one write per flush (bounded)
//!                                                           ▼
//!                                      pong / close echo written even when the app only reads
//! ```
//!
//! # Getting started
//!
//! A server and a client on loopback:
//!
//! ```
//! use tether::{connect, CloseCode, Message, Server, SinkExt, StreamExt};
//!
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(async {
//! let server = Server::bind("127.0.0.1:0").await?;
//! let url = format!("ws://{}/chat", server.local_addr()?);
//! tokio::spawn(server.serve(|ws, _conn| async move {
//!     // Echo: forward everything received back, flushing once per batch.
//!     let (reader, mut writer) = ws.split();
//!     let echo = reader.filter_map(|m| async move {
//!         match m {
//!             Ok(m) if m.is_data() => Some(Ok(m)),
//!             _ => None,
//!         }
//!     });
//!     let _ = echo.forward(&mut writer).await;
//! }));
//!
//! let mut ws = connect(&url).await?;
//! ws.send(Message::text("hello")).await?;
//! assert_eq!(ws.next().await.unwrap()?, Message::text("hello"));
//! let answer = ws.close(CloseCode::NORMAL, "bye").await?;
//! assert_eq!(answer.map(|frame| frame.code), Some(CloseCode::NORMAL));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Features
//!
//! `redis`: the Redis backplane of [`pubsub`]. `hyper`: WebSockets in a hyper 1.x server
//! (`tether::hyper`: upgrade a request, get a [`WebSocket`] over the upgraded connection).
//! `axum`: the `tether::axum::WebSocketUpgrade` extractor (enables `hyper`). TLS (rustls, ring
//! provider, webpki-roots) is always built in.
#![forbid(unsafe_code)]

mod accept;
pub mod accept_error;
#[cfg(feature = "axum")]
pub mod axum;
mod buffer_stock;
mod client;
mod config;
mod core;
mod deadline;
mod error;
pub mod fanout;
mod held;
mod http_connect;
#[cfg(feature = "hyper")]
pub mod hyper;
mod load;
pub mod mask;
mod no_proxy;
mod origin;
mod probe;
mod proxy;
mod proxy_connect;
mod proxy_env;
mod proxy_error;
mod read_room;
mod roots;
mod server;
pub mod session;
mod socks;
mod split;
mod supervise;
mod supervised;
mod transport;
mod websocket;

pub use accept::{accept, accept_or_plain, accept_with, Accepted};
pub use client::{connect, ClientBuilder};
pub use config::Config;
pub use error::Error;
pub use http_connect::MAX_CONNECT_RESPONSE;
pub use load::ServerStats;
pub use no_proxy::NoProxy;
pub use probe::{PingProbe, TextProbe};
pub use proxy::{Proxy, ProxyKind};
pub use proxy_env::proxy_for;
pub use proxy_error::ProxyError;
pub use roots::Roots;
pub use server::{ConnectionInfo, Server, ServerSocket};
pub use split::{WebSocketReader, WebSocketWriter};
pub use supervise::connect_supervised;
pub use transport::MaybeTls;
pub use websocket::WebSocket;

pub use tether_codec::{CloseCode, CloseFrame, Message, OpCode, Role, State, Utf8Bytes};
pub use tether_handshake::{Accept, PlainRequest, Rejection, UpgradeRequest};

pub use bytes::Bytes;
pub use futures_util::{Sink, SinkExt, Stream, StreamExt};

/// HTTP types used in the handshake API (header names and values, status codes).
pub use http;
/// rustls, for building TLS configurations for [`ClientBuilder::tls_config`] and
/// [`Server::tls`].
pub use rustls;
/// The framing layer: frames, masking, close codes, the sans-IO protocol state machine.
pub use tether_codec as codec;
/// permessage-deflate (RFC 7692): configuration, negotiation and the (de)compressor.
pub use tether_deflate as deflate;
/// The opening handshake layer: HTTP/1.1 Upgrade for both roles, sans-IO.
pub use tether_handshake as handshake;
/// The keepalive supervisor and reconnecting client.
pub use tether_heartbeat as heartbeat;
/// Topics and byte-bounded fan-out across connections and, through a backplane, across
/// nodes (Redis with the `redis` feature).
pub use tether_pubsub as pubsub;
/// The teaching TLS 1.2 handshake.
pub use tether_teaching_tls as teaching_tls;
