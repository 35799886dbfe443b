//! A loopback port for a child process (a proxy, redis, `openssl s_server`) to listen on,
//! shared by the test files that start one (included with `#[path]`).
//!
//! A port the kernel hands out for `bind(0)` is ephemeral: between reading it and the child
//! binding it, any test's outgoing connection or listener may take it, and the child then
//! fails to bind while a readiness check connects to somebody else. Ports below Linux's
//! ephemeral range (32768 and up by default) are never handed out that way, so one that is
//! free now stays free unless another child picks the same one.

use std::net::{Ipv4Addr, TcpListener};
use std::sync::atomic::{AtomicU32, Ordering};

/// The ports tried: below the ephemeral range, above the well-known and registered ones
/// that local services tend to use.
const RANGE: std::ops::Range<u32> = 20_000..32_000;

/// A free 127.0.0.1 port below the ephemeral range, different for each call in a
/// process and spread across processes by the pid.
pub(crate) fn unused_port() -> u16 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let span = RANGE.end - RANGE.start;
    let seed = std::process::id().wrapping_mul(2_654_435_761);
    for _ in 0..span {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        // A stride coprime with the span walks every port once.
        let port = RANGE.start + seed.wrapping_add(n.wrapping_mul(7_919)) % span;
        let port = u16::try_from(port).expect("the range fits in u16");
        if TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port in {RANGE:?}");
}
