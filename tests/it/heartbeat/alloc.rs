//! The per-connection heartbeat state allocates nothing per probe (issue 5, server side).
//!
//! The sans-IO core ([`Keepalive`]) and the ping-rate limiter ([`ProbeRateLimit`]) are driven
//! through thousands of probe cycles (probe due, written, acknowledged; missed, Suspect,
//! extra probe, recovered; mismatched pongs; inbound activity; the peer's own probes) after a
//! warm-up, and the counting global allocator must see no allocation in that window. As in
//! `facade::load`, the measurement runs alone in a child process of this test binary, so
//! other tests' allocations stay out of the count.

use std::time::{Duration, Instant};

use tether_heartbeat::sans_io::{Keepalive, PongOutcome, ProbeRateLimit, RateVerdict};
use tether_heartbeat::{Health, KeepaliveConfig, ResponderConfig};

use crate::facade::support::{allocator_stats, as_measuring_child, measure_in_child};

const WARM_UP: u64 = 32;
const CYCLES: u64 = 3000;
const RTT: Duration = Duration::from_millis(40);

#[test]
fn keepalive_and_rate_limit_allocate_nothing_per_probe() {
    measure_in_child(
        "heartbeat::alloc::child_probe_cycles",
        Duration::from_secs(60),
    );
}

#[test]
#[ignore = "run by keepalive_and_rate_limit_allocate_nothing_per_probe in a child process"]
fn child_probe_cycles() {
    as_measuring_child(measure);
}

/// Allocations and reallocations counted so far, process-wide.
fn allocations() -> usize {
    let stats = allocator_stats();
    stats.allocations + stats.reallocations
}

fn measure() {
    // The count sees heap allocations at all: one per box in a control window.
    let before = allocations();
    for i in 0..10u64 {
        std::hint::black_box(Box::new(i));
    }
    assert_eq!(
        allocations() - before,
        10,
        "the counting allocator is not installed"
    );

    let mut keepalive_config = KeepaliveConfig::default();
    keepalive_config
        .set_interval(Duration::from_secs(20))
        .set_pong_timeout(Duration::from_secs(5));
    let start = Instant::now();
    let mut keepalive = Keepalive::new(&keepalive_config, start, 11).expect("valid config");
    let mut rate = ProbeRateLimit::new(&ResponderConfig::default());

    for i in 0..WARM_UP {
        cycle(&mut keepalive, &mut rate, i);
    }
    let before = allocations();
    for i in WARM_UP..WARM_UP + CYCLES {
        cycle(&mut keepalive, &mut rate, i);
    }
    let allocated = allocations() - before;
    assert_eq!(
        allocated, 0,
        "{allocated} allocations in {CYCLES} probe cycles"
    );
    assert_eq!(keepalive.rtt().last(), Some(RTT));
    assert!(keepalive.dead().is_none());
}

/// One probe cycle. Every third probe goes unanswered: the link turns Suspect, the extra
/// probe goes out at once and its pong makes the link Healthy again. The others are
/// answered after a mismatched pong, some inbound data and a probe of the peer's own.
fn cycle(keepalive: &mut Keepalive, rate: &mut ProbeRateLimit, i: u64) {
    let (nonce, written) = next_probe(keepalive);
    if i % 3 == 2 {
        // Nothing arrives: the probe's deadline passes.
        let mut at = written;
        for _ in 0..8 {
            if keepalive.health() == Health::Suspect {
                break;
            }
            at = keepalive.poll_timeout().expect("alive");
            keepalive.handle_timeout(at);
        }
        assert_eq!(keepalive.health(), Health::Suspect, "cycle {i}");
        let extra = keepalive.poll_probe(at).expect("an extra probe at once");
        keepalive.on_outbound(at);
        keepalive.on_probe_written(at, extra);
        assert_eq!(
            keepalive.on_pong(at + RTT, extra),
            PongOutcome::Acked {
                nonce: extra,
                rtt: Some(RTT)
            },
            "cycle {i}"
        );
    } else {
        let mismatched = keepalive.on_pong(written + RTT / 4, nonce.wrapping_add(1000));
        assert_eq!(mismatched, PongOutcome::Mismatched, "cycle {i}");
        keepalive.on_inbound(written + RTT / 2);
        assert_eq!(rate.on_probe(written + RTT / 2), RateVerdict::Answer);
        assert_eq!(
            keepalive.on_pong(written + RTT, nonce),
            PongOutcome::Acked {
                nonce,
                rtt: Some(RTT)
            },
            "cycle {i}"
        );
    }
    assert_eq!(keepalive.health(), Health::Healthy, "cycle {i}");
}

/// Runs the timers until a probe is due, and writes it: its nonce and when.
fn next_probe(keepalive: &mut Keepalive) -> (u64, Instant) {
    for _ in 0..8 {
        let at = keepalive.poll_timeout().expect("alive");
        keepalive.handle_timeout(at);
        if let Some(nonce) = keepalive.poll_probe(at) {
            keepalive.on_outbound(at);
            keepalive.on_probe_written(at, nonce);
            return (nonce, at);
        }
    }
    panic!("no probe came due");
}
