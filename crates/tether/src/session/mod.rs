//! Sessions that survive reconnects (`tether.session.v1`, docs/sessions.md): every data
//! message arrives exactly once and in order across any number of reconnects within the
//! server's resume window, or the session ends with a typed [`SessionLost`] carrying the
//! counts of both sides. Never a silent gap.
//!
//! - The client is [`Session`] ([`ClientBuilder::session`](crate::ClientBuilder::session)),
//!   built on the heartbeat supervisor: each new connection resumes the session.
//! - The server is [`Sessions`]: the handler runs once per session with a
//!   [`ServerSession`] that outlives the connections; [`select`] picks the subprotocol in
//!   [`Server::decide`](crate::Server::decide), and [`Sessions::attach`] serves a connection.
//! - The protocol's sans-IO core is [`core`] (the `tether-session` crate).

mod accepted;
mod attach;
mod carry;
mod client;
mod handler;
mod link;
mod outgoing;
mod reading;
mod server_session;
mod sessions;
mod shared;
mod state;
mod wire;

pub use client::{Counts, Session};
pub use server_session::ServerSession;
pub use sessions::{select, SessionServerConfig, Sessions, DEFAULT_SESSION_HANDSHAKE_TIMEOUT};
pub use tether_session as core;
pub use tether_session::{
    EndpointConfig, LostReason, Origin, RegistryConfig, SessionId, SessionLost, SUBPROTOCOL,
};
