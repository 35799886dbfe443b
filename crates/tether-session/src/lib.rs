//! Sessions that survive reconnects, sans-IO: the `tether.session.v1` protocol's counts,
//! bounded replay buffer, acknowledgements, resume handshake and the server's registry.
//!
//! A session is a stream of messages in each direction that survives any number of
//! reconnects within a resume window: delivered exactly once and in order, or ended with a
//! typed [`SessionLost`] carrying the counts. The wire protocol is `docs/sessions.md`.
//!
//! This crate does no I/O and reads no clock or random generator: messages come in as
//! bytes, time as `now`, session ids as 16 bytes the caller drew. The facade (`tether`)
//! drives it over WebSockets with tokio and the heartbeat supervisor.
//!
//! ```text
//!  application ── push ──► Endpoint ── poll_transmit ──► data (stuffed) / "\0ack n" ─► link
//!                           │ ReplayBuffer (count, bytes)      numbered 1, 2, 3 ...
//!                           │ AckClock (32 messages / 200 ms)
//!  application ◄─ data ─── handle(text, bytes) ◄──────────── link
//!
//!  per connection:  Client::hello ─► "\0new" | "\0resume <id> <received>"
//!                   server: parse_hello ─► Registry::open / resume ─► "\0session <id> <received>"
//!                   Client::handle_answer ─► Endpoint::attach(peer's count): replay the rest
//! ```
//!
//! # Getting started
//!
//! A client and a server endpoint, a cut, and a resume that loses nothing:
//!
//! ```
//! use std::time::Instant;
//! use tether_session::{Client, Control, Endpoint, EndpointConfig, Incoming, SessionId, Transmit};
//!
//! let now = Instant::now();
//! let mut client = Client::<String>::new(EndpointConfig::default()).unwrap();
//! let mut server = Endpoint::<String>::new(EndpointConfig::default()).unwrap();
//! assert_eq!(client.hello(), Control::New);
//! server.attach(0).unwrap();
//! let id = SessionId::from_bytes([7; 16]);
//! let answer = Control::Session { id, received: 0 }.encode();
//! client.handle_answer(true, answer.as_bytes()).unwrap();
//!
//! for text in ["a", "b"] {
//!     client.endpoint_mut().push(text.to_string(), 1).unwrap();
//! }
//! // "a" arrives; "b" is written but lost with the connection.
//! let Some(Transmit::Data { message, .. }) = client.endpoint_mut().poll_transmit(now) else { panic!() };
//! assert_eq!(server.handle(now, true, message.as_bytes()), Ok(Incoming::Data { skip: 0 }));
//! assert!(client.endpoint_mut().poll_transmit(now).is_some());
//! client.link_lost();
//! server.detach();
//!
//! // The resume: the server has 1, so the client writes "b" again, and only "b".
//! assert_eq!(client.hello(), Control::Resume { id, received: 0 });
//! server.attach(0).unwrap();
//! let answer = Control::Session { id, received: server.received() }.encode();
//! client.handle_answer(true, answer.as_bytes()).unwrap();
//! let Some(Transmit::Data { number: 2, message }) = client.endpoint_mut().poll_transmit(now) else { panic!() };
//! assert_eq!(message, "b");
//! ```
//!
//! # Features
//!
//! None. Depends on `base64` (ids) and `thiserror`.
#![forbid(unsafe_code)]

mod ack;
mod client;
mod config;
mod control;
mod endpoint;
mod error;
mod id;
mod reason;
mod registry;
mod replay;

pub use client::{parse_hello, Attached, Client, ClientPhase, Hello};
pub use config::{EndpointConfig, RegistryConfig, MAX_ACK_BYTES};
pub use control::{
    classify, needs_stuffing, Control, Incoming, MARK, MAX_CONTROL_LEN, MAX_COUNT, MAX_NONCE_DIGITS,
};
pub use endpoint::{Endpoint, Transmit};
pub use error::{Error, Origin, ProtocolError, SessionLost};
pub use id::{SessionId, ID_LEN};
pub use reason::LostReason;
pub use registry::{Attachment, Dropped, Registry, Resumed};
pub use replay::ReplayBuffer;

/// The subprotocol that negotiates sessions (`Sec-WebSocket-Protocol`, RFC 6455 §1.9).
pub const SUBPROTOCOL: &str = "tether.session.v1";
