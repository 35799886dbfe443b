//! Tether: RFC 6455 WebSockets for tokio with heartbeat, reconnection and a teaching TLS handshake.
#![forbid(unsafe_code)]
