//! Integration and property tests for the tls layer.
