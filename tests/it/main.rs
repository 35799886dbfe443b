//! Cross-crate integration tests, compiled as one binary so the workspace links once.
//!
//! Each module covers one area; shared helpers and proptest strategies live in `support`.

mod attack;
mod codec;
mod facade;
mod facade_heartbeat;
mod handshake;
mod heartbeat;
mod interop;
mod tls;
