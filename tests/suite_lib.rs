//! Placeholder library target of the `tether-suite` package.
//!
//! The package exists to own the workspace's cross-crate integration tests (`tests/it`) and
//! its criterion benches (`benches/`); it exports nothing.
