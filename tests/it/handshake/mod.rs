//! Integration and property tests for the handshake layer.
