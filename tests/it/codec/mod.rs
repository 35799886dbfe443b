//! Integration and property tests for the codec layer.
