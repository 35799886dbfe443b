//! Keepalive supervisor and reconnecting client: dead-peer detection over any Stream + Sink.
#![forbid(unsafe_code)]
