//! Codec throughput benches (filled in with tether-codec).
fn main() {}
