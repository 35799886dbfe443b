//! Integration and property tests for the handshake layer.
//!
//! - `deflate`: permessage-deflate offer, choice and answer checks (RFC 7692 §5, §7).
//! - `split`: a request or response split at any points parses to the same result, and the
//!   leftover is exactly what followed the head (proptest).
//! - `session`: client against server over `tokio::io::duplex` and loopback TCP, every
//!   rejection as the client sees it on the wire, limits and timeouts.
//! - `cve_2023_43669`: a trickled huge header costs linear, not quadratic, work.

mod cve_2023_43669;
mod deflate;
mod session;
mod split;
mod support;
