//! Integration and property tests for the heartbeat layer.
