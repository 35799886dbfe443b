//! Property: over random arrival schedules, RTTs and stalls, the keepalive is Dead exactly
//! when nothing arrived for longer than its bound, outside any local stall.
//!
//! "Exactly" within the gap every timing rule has: a stall-free silence longer than the
//! detection bound always ends in death within that bound (liveness), and a death never
//! happens unless the link was down within the same bound before it (safety: a link that
//! answers every probe within the pong timeout floor is never declared dead, however the
//! local runtime stalls).

use std::time::Duration;

use proptest::prelude::*;
use tether_heartbeat::KeepaliveConfig;

use super::sim::{run, Phase, Schedule};

const MS: Duration = Duration::from_millis(1);

fn config() -> KeepaliveConfig {
    let mut config = KeepaliveConfig::default();
    config
        .set_interval(Duration::from_secs(10))
        .set_jitter(0.1)
        .set_pong_timeout(Duration::from_secs(2))
        .set_max_pong_timeout(Duration::from_secs(4))
        .set_round_trip_deadline(Duration::from_secs(10))
        .set_misses_to_dead(2)
        .set_stall_tolerance(Duration::from_secs(1));
    config
}

/// Detection bound: one interval to the next probe (or a round-trip deadline for a probe
/// saved by activity), then one pong timeout ceiling per miss.
fn bound() -> Duration {
    Duration::from_secs(10 + 10 + 2 * 4)
}

fn phase() -> impl Strategy<Value = Phase> {
    // RTTs stay below the 2 s timeout floor: an up link always answers in time.
    let rtt = (10u32..1500).prop_map(|ms| ms * MS);
    prop_oneof![
        4 => (5_000u32..120_000, rtt.clone(), proptest::option::of(200u32..15_000)).prop_map(
            |(len, rtt, every)| Phase::Up {
                len: len * MS,
                rtt,
                data_every: every.map(|e| e * MS),
            }
        ),
        2 => (500u32..60_000).prop_map(|len| Phase::Down { len: len * MS }),
        1 => (100u32..20_000, rtt).prop_map(|(len, rtt)| Phase::Stall { len: len * MS, rtt }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn dead_exactly_when_silent_past_the_bound_outside_stalls(
        phases in proptest::collection::vec(phase(), 1..12),
        seed in any::<u64>(),
    ) {
        let schedule = Schedule::new(&phases);
        let outcome = run(&config(), seed, &schedule);
        let end = outcome.dead_at.unwrap_or(schedule.end());

        // Liveness: every stall-free silence longer than the bound ends in death.
        let mut last = Duration::ZERO;
        for &arrival in outcome.arrivals.iter().chain(std::iter::once(&end)) {
            let mut start = last;
            for (_, stall_end) in schedule.stalls() {
                if stall_end > start && stall_end <= arrival {
                    start = stall_end;
                }
            }
            if arrival > start && arrival - start > bound() {
                let dead_at = outcome.dead_at;
                prop_assert!(
                    dead_at.is_some_and(|d| d <= start + bound()),
                    "silent from {start:?} to {arrival:?}, dead at {dead_at:?}"
                );
            }
            last = last.max(arrival);
        }

        // Safety: a death needs the link down within the bound before it.
        if let Some(dead_at) = outcome.dead_at {
            let window = dead_at.saturating_sub(bound());
            prop_assert!(
                schedule.downs().any(|(s, e)| s <= dead_at && e > window),
                "dead at {dead_at:?} with the link up since {window:?}"
            );
        }
    }
}

#[test]
fn a_link_that_is_never_down_never_dies_even_with_stalls() {
    let rtt = 1400 * MS;
    let mut phases = Vec::new();
    for i in 0..200u64 {
        phases.push(Phase::Up {
            len: Duration::from_secs(30 + i % 7),
            rtt,
            data_every: (i % 3 == 0).then_some(Duration::from_secs(4)),
        });
        phases.push(Phase::Stall {
            len: Duration::from_millis(500 + 997 * (i % 23)),
            rtt,
        });
    }
    let schedule = Schedule::new(&phases);
    for seed in 0..20 {
        let outcome = run(&config(), seed, &schedule);
        assert_eq!(outcome.dead_at, None, "seed {seed}");
        assert!(outcome.probes > 400);
    }
}
