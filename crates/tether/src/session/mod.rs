//! Sessions that survive reconnects (`tether.session.v1`, docs/sessions.md): every data
//! message arrives exactly once and in order across any number of reconnects within the
//! server's resume window, or the session ends with a typed [`SessionLost`] carrying the
//! counts of both sides. Never a silent gap.
//!
//! The client is [`Session`] ([`ClientBuilder::session`](crate::ClientBuilder::session)),
//! built on the heartbeat supervisor. The protocol's sans-IO core is [`core`]
//! (the `tether-session` crate).

mod client;
mod link;
mod wire;

pub use client::{Counts, Session};
pub use tether_session as core;
pub use tether_session::{EndpointConfig, LostReason, Origin, SessionId, SessionLost, SUBPROTOCOL};
