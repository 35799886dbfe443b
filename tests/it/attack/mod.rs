//! Hostile peers over real loopback sockets, each test asserting a bound (bytes, events,
//! reads), not merely the absence of a crash. One file per area.

mod tls;
