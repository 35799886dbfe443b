//! WebSockets in an axum 0.8 router (feature `axum`): the [`WebSocketUpgrade`] extractor,
//! built on [`crate::hyper`]'s upgrade, so the handshake rules, limits, deflate and heartbeat
//! are those of [`Server`](crate::Server). Rejections ([`Rejected`]) are axum responses.

mod extract;

pub use crate::hyper::{HyperWebSocket, Rejected};
pub use extract::WebSocketUpgrade;
