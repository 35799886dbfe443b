//! 10 000 clients cut off by one outage come back spread out, not in a wave.

use std::time::Duration;

use tether_heartbeat::sans_io::Backoff;
use tether_heartbeat::{KeepaliveConfig, ReconnectConfig};

use super::sim::{run, Phase, Schedule};

#[test]
fn ten_thousand_clients_reconnect_spread_out_after_one_outage() {
    let keepalive = KeepaliveConfig::default();
    let reconnect = ReconnectConfig::default();
    // Healthy for 10 minutes, then the server stops answering (TCP still open).
    let schedule = Schedule::new(&[
        Phase::Up {
            len: Duration::from_secs(600),
            rtt: Duration::from_millis(30),
            data_every: None,
        },
        Phase::Down {
            len: Duration::from_secs(600),
        },
    ]);
    let outage = Duration::from_secs(600);
    let mut returns = Vec::with_capacity(10_000);
    for client in 0..10_000u64 {
        let outcome = run(&keepalive, client, &schedule);
        let dead_at = outcome.dead_at.expect("every client detects the outage");
        // Dead within one interval plus two pong timeouts of the outage.
        assert!(dead_at > outage && dead_at <= outage + Duration::from_secs(20 + 2 * 10));
        let mut backoff = Backoff::new(&reconnect, client.wrapping_mul(0x9E37_79B9));
        returns.push(dead_at + backoff.next_delay(None));
    }
    let first = *returns.iter().min().unwrap();
    let last = *returns.iter().max().unwrap();
    let bucket = Duration::from_millis(100);
    let buckets = ((last - first).as_millis() / bucket.as_millis() + 1) as usize;
    let mut counts = vec![0u32; buckets];
    for at in &returns {
        counts[((*at - first).as_millis() / bucket.as_millis()) as usize] += 1;
    }
    let mean = 10_000.0 / buckets as f64;
    let max = *counts.iter().max().unwrap();
    assert!(
        f64::from(max) <= 2.0 * mean,
        "busiest 100 ms bucket holds {max}, mean {mean:.1} over {buckets} buckets"
    );
    // Spread over at least the probe interval, not bunched into a few seconds.
    assert!(
        last - first >= Duration::from_secs(18),
        "{:?}",
        last - first
    );
}
