//! Tests of the `tether` facade: the async driver over in-memory pipes and loopback TCP.

pub(crate) mod support;

mod duplex;
mod tls;
