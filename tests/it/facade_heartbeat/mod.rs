//! The heartbeat wired into the facade: real tether servers and supervised tether clients,
//! with the Ping/Pong probe and the agreed text probe.
//!
//! `duplex` runs on in-memory pipes with the tokio clock paused (deterministic, virtual
//! time); `sockets` runs on loopback TCP with short intervals, every wait bounded.

mod drain;
mod duplex;
mod sockets;
mod support;
