//! Integration and property tests for the heartbeat layer.

mod alloc;
mod backpressure;
mod fake;
mod mass;
mod property;
mod scenarios;
mod sim;
mod sockets;
