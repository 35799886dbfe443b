//! Tests of the `tether` facade: the async driver over in-memory pipes and loopback TCP.

pub(crate) mod support;

mod backpressure;
mod cancel;
mod close;
mod duplex;
mod limits;
mod load;
mod raw;
mod server;
mod split;
mod tls;
