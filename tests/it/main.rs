//! Cross-crate integration tests, compiled as one binary so the workspace links once.
//!
//! Each module covers one area; an area's helpers and proptest strategies live in its own
//! `support` module (`codec::support`, `facade::support`, ...), which other areas import.

mod attack;
mod codec;
mod cutting_proxy;
mod facade;
mod facade_heartbeat;
mod fit;
mod handshake;
mod heartbeat;
mod interop;
mod proxy;
mod session_client;
mod session_handler;
mod session_reading;
mod session_server;
mod tls;
mod web;
