//! WebSockets in a hyper 1.x server (feature `hyper`): upgrade a `Request<Incoming>` with
//! Tether's handshake rules, return the 101, and get a [`WebSocket`](crate::WebSocket) over
//! the connection hyper hands back.
//!
//! ```text
//!  hyper service ── upgrade(&mut request, &config, decide) ──► Err(Rejected) ─► into_response (400/426/431/403...)
//!                                 │
//!                                 ▼
//!                  Ok((101 response, Upgrading)) ── return the response to hyper
//!                                 │
//!                      Upgrading::websocket().await (in a spawned task)
//!                                 ▼
//!                  HyperWebSocket = WebSocket<TokioIo<Upgraded>> (limits, deflate, supervise)
//! ```
//!
//! The request is validated by the same code as [`Server`](crate::Server)'s
//! ([`handshake::Incoming::from_head`](crate::handshake::Incoming::from_head)), so the answers
//! are the same. The connection must be served with `with_upgrades()`. HTTP/1.1 only: a
//! WebSocket over HTTP/2 (RFC 8441's extended CONNECT) is answered 400 like any request that is
//! not a GET. The axum extractor (feature `axum`) is built on [`Upgrade`].

mod rejected;
mod upgrade;

pub use rejected::Rejected;
pub use upgrade::{upgrade, HyperWebSocket, Upgrade, Upgrading};
