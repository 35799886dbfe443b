//! RFC 6455 opening handshake: HTTP/1.1 Upgrade for clients and servers, sans-IO with async helpers.
#![forbid(unsafe_code)]
