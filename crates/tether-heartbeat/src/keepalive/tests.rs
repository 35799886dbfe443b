//! The keepalive against a scripted peer on a virtual clock.

use super::*;
use crate::responder::ProbeRateLimit;

const SEC: Duration = Duration::from_secs(1);
const MS: Duration = Duration::from_millis(1);

/// Drives one keepalive against a scripted peer on a virtual clock.
struct Harness {
    k: Keepalive,
    now: Instant,
    /// Every probe written: (nonce, when).
    written: Vec<(u64, Instant)>,
    /// Pongs in flight to us: (arrival, nonce).
    pongs: Vec<(Instant, u64)>,
    /// Round trip of the peer's answers; `None` = the peer does not answer.
    rtt: Option<Duration>,
    /// Inbound data every this often, if set.
    data_every: Option<Duration>,
    next_data: Instant,
}

impl Harness {
    fn new(config: &KeepaliveConfig) -> Self {
        let now = Instant::now();
        Harness {
            k: Keepalive::new(config, now, 1).unwrap(),
            now,
            written: Vec::new(),
            pongs: Vec::new(),
            rtt: Some(50 * MS),
            data_every: None,
            next_data: now,
        }
    }

    fn flush_probes(&mut self) {
        while let Some(nonce) = self.k.poll_probe(self.now) {
            self.k.on_probe_written(self.now, nonce);
            self.written.push((nonce, self.now));
            if let Some(rtt) = self.rtt {
                self.pongs.push((self.now + rtt, nonce));
            }
        }
    }

    /// Runs until `until` or death; returns the time of death.
    fn run(&mut self, until: Instant) -> Option<Instant> {
        loop {
            if self.k.dead().is_some() {
                return Some(self.now);
            }
            let timer = self.k.poll_timeout().unwrap();
            let pong = self.pongs.iter().map(|p| p.0).min();
            let data = self.data_every.map(|_| self.next_data);
            let next = [Some(timer), pong, data]
                .into_iter()
                .flatten()
                .min()
                .unwrap();
            if next > until {
                self.now = until;
                return None;
            }
            self.now = next;
            if pong == Some(next) {
                let i = self.pongs.iter().position(|p| p.0 == next).unwrap();
                let (_, nonce) = self.pongs.remove(i);
                self.k.on_pong(next, nonce);
            } else if data == Some(next) {
                self.k.on_inbound(next);
                self.next_data = next + self.data_every.unwrap();
            } else {
                self.k.handle_timeout(next);
            }
            self.flush_probes();
        }
    }
}

fn config() -> KeepaliveConfig {
    KeepaliveConfig::default()
}

#[test]
fn healthy_peer_for_a_virtual_day_never_dies() {
    let mut h = Harness::new(&config());
    let day = h.now + 86_400 * SEC;
    assert_eq!(h.run(day), None);
    assert_eq!(h.k.health(), Health::Healthy);
    // One probe per interval shortened by up to 10 %: between 4320 and 4800 a day.
    assert!(
        (4320..=4800).contains(&h.written.len()),
        "{}",
        h.written.len()
    );
    assert_eq!(h.k.rtt().smoothed(), Some(50 * MS));
}

#[test]
fn silent_peer_is_dead_within_interval_plus_timeouts_and_never_before_the_timeout() {
    let mut h = Harness::new(&config());
    assert_eq!(h.run(h.now + 100 * SEC), None);
    h.rtt = None;
    let last_pong = h.written.last().unwrap().1 + 50 * MS;
    let dead_at = h.run(h.now + 3600 * SEC).unwrap();
    assert_eq!(h.k.dead(), Some(CloseReason::HeartbeatTimeout));
    let timeout = h.k.timeout();
    assert_eq!(timeout, 10 * SEC);
    // interval (20 s) + two pong timeouts (10 s each).
    assert!(dead_at - last_pong <= 40 * SEC, "{:?}", dead_at - last_pong);
    // Two misses, each a whole timeout after its probe was written.
    let unanswered: Vec<_> = h.written.iter().filter(|w| w.1 > last_pong).collect();
    assert!(unanswered.len() >= 2);
    assert_eq!(unanswered[1].1, unanswered[0].1 + timeout);
    assert_eq!(dead_at, unanswered[1].1 + timeout);
}

#[test]
fn first_miss_exactly_at_the_timeout_not_one_tick_before() {
    let mut h = Harness::new(&config());
    h.rtt = None;
    let first = h.k.poll_timeout().unwrap();
    h.run(first);
    let (_, written) = h.written[0];
    h.run(written + 10 * SEC - Duration::from_nanos(1));
    assert_eq!(h.k.health(), Health::Healthy);
    h.run(written + 10 * SEC);
    assert_eq!(h.k.health(), Health::Suspect);
    assert_eq!(h.k.misses(), 1);
    // The extra probe went out at once.
    assert_eq!(h.written.len(), 2);
    assert_eq!(h.written[1].1, written + 10 * SEC);
}

/// Activity another task saw is reported when the supervisor next looks, possibly
/// after a later time was stamped: the earlier time moves nothing back, and the later
/// activity still saves the probe from its pong timeout.
#[test]
fn activity_reported_late_with_an_earlier_time_moves_nothing_back() {
    let mut h = Harness::new(&config());
    assert_eq!(h.run(h.now + 100 * SEC), None);
    h.rtt = None;
    let probes = h.written.len();
    let next = h.k.poll_timeout().unwrap();
    h.run(next);
    assert_eq!(h.written.len(), probes + 1, "a probe at the next tick");
    let (_, written) = h.written[probes];
    h.k.on_inbound(written + SEC);
    h.k.on_inbound(written - SEC);
    h.run(written + 10 * SEC);
    assert_eq!(h.k.health(), Health::Healthy);
    assert_eq!(h.k.misses(), 0);
}

#[test]
fn peer_streaming_data_without_pongs_dies_by_the_round_trip_deadline() {
    let mut h = Harness::new(&config());
    h.rtt = None;
    h.data_every = Some(SEC);
    let dead_at = h.run(h.now + 3600 * SEC).unwrap();
    let first = h.written[0].1;
    // Activity saves each probe from its 10 s timeout, but not from the 40 s
    // round-trip deadline. The outbound side is idle, so a probe goes out every
    // interval: the second miss is the second probe's deadline.
    assert_eq!(dead_at, h.written[1].1 + 40 * SEC);
    assert!(dead_at >= first + 40 * SEC && dead_at <= first + 80 * SEC);
    assert_eq!(h.k.dead(), Some(CloseReason::HeartbeatTimeout));

    let mut strict = config();
    strict.set_verdict(Verdict::RoundTrip);
    let mut h = Harness::new(&strict);
    h.rtt = None;
    h.data_every = Some(SEC);
    let dead_at = h.run(h.now + 3600 * SEC).unwrap();
    assert_eq!(dead_at, h.written[0].1 + 20 * SEC);
}

#[test]
fn mismatched_and_unsolicited_pongs_never_count_as_round_trip_proof() {
    let mut strict = config();
    strict.set_verdict(Verdict::RoundTrip);
    let mut h = Harness::new(&strict);
    h.rtt = None;
    let first = h.k.poll_timeout().unwrap();
    h.run(first);
    let (nonce, written) = h.written[0];
    // A nonce never sent, one far ahead, and one from before this connection.
    for (i, bogus) in [nonce + 1, nonce + 1000, nonce.wrapping_sub(1)]
        .iter()
        .enumerate()
    {
        let at = written + SEC * (i as u32 + 1);
        assert_eq!(h.k.on_pong(at, *bogus), PongOutcome::Mismatched);
    }
    let dead_at = h.run(written + 3600 * SEC).unwrap();
    assert_eq!(dead_at, written + 20 * SEC);
}

#[test]
fn pong_for_a_queued_but_unwritten_probe_is_mismatched() {
    let mut k = Keepalive::new(&config(), Instant::now(), 3).unwrap();
    let at = k.poll_timeout().unwrap();
    k.handle_timeout(at);
    let nonce = k.poll_probe(at).unwrap();
    assert_eq!(k.on_pong(at + MS, nonce), PongOutcome::Mismatched);
    assert_eq!(k.in_flight(), 1);
}

#[test]
fn late_pong_after_death_never_resurrects() {
    let mut h = Harness::new(&config());
    h.rtt = None;
    let dead_at = h.run(h.now + 3600 * SEC).unwrap();
    for (nonce, _) in h.written.clone() {
        assert_eq!(h.k.on_pong(dead_at + SEC, nonce), PongOutcome::Ignored);
    }
    assert_eq!(h.k.dead(), Some(CloseReason::HeartbeatTimeout));
    assert_eq!(h.k.poll_timeout(), None);
    assert_eq!(h.k.poll_probe(dead_at + SEC), None);
}

#[test]
fn late_pong_before_death_recovers_and_is_sampled() {
    let mut h = Harness::new(&config());
    h.rtt = Some(12 * SEC);
    let first = h.k.poll_timeout().unwrap();
    h.run(first + 10 * SEC);
    assert_eq!(h.k.health(), Health::Suspect);
    h.run(first + 12 * SEC);
    assert_eq!(h.k.health(), Health::Healthy);
    assert_eq!(h.k.rtt().last(), Some(12 * SEC));
    // 12 s + 4 * 6 s = 36 s, capped at the 30 s ceiling.
    assert_eq!(h.k.timeout(), 30 * SEC);
}

#[test]
fn a_pong_acknowledges_its_probe_and_all_earlier_ones() {
    let mut cfg = config();
    cfg.set_max_in_flight(3);
    let t0 = Instant::now();
    let mut k = Keepalive::new(&cfg, t0, 5).unwrap();
    let mut nonces = Vec::new();
    for i in 0..3 {
        k.want_probe = true;
        let at = t0 + SEC * i;
        let nonce = k.poll_probe(at).unwrap();
        k.on_probe_written(at, nonce);
        nonces.push(nonce);
    }
    k.want_probe = true;
    assert_eq!(k.poll_probe(t0 + 3 * SEC), None, "at most 3 in flight");
    assert_eq!(k.in_flight(), 3);
    let outcome = k.on_pong(t0 + 4 * SEC, nonces[1]);
    assert_eq!(
        outcome,
        PongOutcome::Acked {
            nonce: nonces[1],
            rtt: Some(3 * SEC)
        }
    );
    assert_eq!(k.in_flight(), 1);
    assert_eq!(k.on_pong(t0 + 4 * SEC, nonces[0]), PongOutcome::Mismatched);
}

#[test]
fn adaptive_timeout_follows_a_growing_rtt_without_false_deaths() {
    let mut cfg = config();
    cfg.set_interval(5 * SEC)
        .set_pong_timeout(SEC)
        .set_max_pong_timeout(30 * SEC)
        .set_round_trip_deadline(30 * SEC);
    let mut h = Harness::new(&cfg);
    let mut timeouts = Vec::new();
    for step in 1..=40u32 {
        // RTT grows by 100 ms per minute, up to 4 s.
        h.rtt = Some(100 * MS * step);
        assert_eq!(h.run(h.now + 60 * SEC), None, "died at rtt {:?}", h.rtt);
        timeouts.push(h.k.timeout());
    }
    assert_eq!(timeouts[0], SEC);
    assert!(timeouts.windows(2).all(|w| w[1] >= w[0]));
    assert!(timeouts[39] > 4 * SEC, "{:?}", timeouts[39]);
    assert_eq!(h.k.rtt().min(), Some(100 * MS));
}

#[test]
fn late_timer_is_a_local_stall_no_death_and_one_fresh_probe() {
    let mut cfg = config();
    cfg.set_max_in_flight(1);
    let mut k = Keepalive::new(&cfg, Instant::now(), 9).unwrap();
    let at = k.poll_timeout().unwrap();
    k.handle_timeout(at);
    let old = k.poll_probe(at).unwrap();
    k.on_probe_written(at, old);
    // The runtime was blocked for three timeouts; the pong sits unread meanwhile.
    let woke = at + 30 * SEC;
    k.handle_timeout(woke);
    assert_eq!(k.health(), Health::LocalStall(StallCause::TimerLate));
    assert_eq!(k.dead(), None);
    assert_eq!(k.misses(), 0);
    let fresh = k.poll_probe(woke).expect("a fresh probe first");
    assert_eq!(k.poll_probe(woke), None, "no burst after a stall");
    k.on_probe_written(woke, fresh);
    // The queued pong of the old probe was abandoned to make room: mismatched.
    assert_eq!(k.on_pong(woke, old), PongOutcome::Mismatched);
    assert_eq!(
        k.on_pong(woke + 40 * MS, fresh),
        PongOutcome::Acked {
            nonce: fresh,
            rtt: Some(40 * MS)
        }
    );
    assert_eq!(k.health(), Health::Healthy);
}

#[test]
fn queued_pong_after_stall_acks_without_an_rtt_sample() {
    let mut k = Keepalive::new(&config(), Instant::now(), 9).unwrap();
    let at = k.poll_timeout().unwrap();
    k.handle_timeout(at);
    let old = k.poll_probe(at).unwrap();
    k.on_probe_written(at, old);
    let woke = at + 30 * SEC;
    k.handle_timeout(woke);
    assert_eq!(
        k.on_pong(woke, old),
        PongOutcome::Acked {
            nonce: old,
            rtt: None
        }
    );
    assert_eq!(k.rtt().last(), None);
    assert_eq!(k.health(), Health::Healthy);
}

#[test]
fn probe_waiting_for_the_writer_is_not_judged_until_the_write_stall_limit() {
    let mut k = Keepalive::new(&config(), Instant::now(), 2).unwrap();
    let at = k.poll_timeout().unwrap();
    k.handle_timeout(at);
    assert!(k.poll_probe(at).is_some());
    // Never written: its pong clock never starts, so no miss...
    let mut now = at;
    while now < at + 30 * SEC - MS {
        now = k.poll_timeout().unwrap().min(at + 30 * SEC - MS);
        k.handle_timeout(now);
        assert_eq!(k.poll_probe(now), None, "no probe queued behind it");
    }
    assert_eq!(k.dead(), None);
    assert_eq!(k.health(), Health::Healthy);
    // ...until the write-stall limit, exactly.
    assert_eq!(k.poll_timeout(), Some(at + 30 * SEC));
    k.handle_timeout(at + 30 * SEC);
    assert_eq!(k.dead(), Some(CloseReason::WriteStalled));
}

#[test]
fn app_not_reading_is_no_heartbeat_death_but_closes_at_its_own_limit() {
    let mut h = Harness::new(&config());
    h.run(h.now + 60 * SEC);
    h.rtt = None;
    let paused = h.now;
    h.k.set_reading_paused(paused, true);
    assert_eq!(h.k.health(), Health::LocalStall(StallCause::AppNotReading));
    assert_eq!(h.run(paused + 30 * SEC - MS), None);
    assert_eq!(h.k.misses(), 0);
    assert_eq!(h.run(paused + 30 * SEC), Some(paused + 30 * SEC));
    assert_eq!(h.k.dead(), Some(CloseReason::AppNotReading));
}

#[test]
fn resumed_reading_sends_a_fresh_probe_before_judging() {
    let mut h = Harness::new(&config());
    h.run(h.now + 60 * SEC);
    let paused = h.now;
    h.k.set_reading_paused(paused, true);
    h.run(paused + 20 * SEC);
    let before = h.written.len();
    h.k.set_reading_paused(paused + 20 * SEC, false);
    h.flush_probes();
    assert_eq!(h.written.len(), before + 1);
    h.run(paused + 21 * SEC);
    assert_eq!(h.k.health(), Health::Healthy);
}

#[test]
fn never_more_probes_in_flight_than_allowed() {
    let mut cfg = config();
    cfg.set_max_in_flight(1).set_misses_to_dead(4);
    let mut h = Harness::new(&cfg);
    h.rtt = None;
    let dead_at = h.run(h.now + 3600 * SEC).unwrap();
    assert_eq!(h.written.len(), 4);
    assert!(h.k.in_flight() <= 1);
    assert_eq!(dead_at, h.written[0].1 + 40 * SEC);
}

#[test]
fn busy_link_probes_only_to_prove_the_round_trip() {
    let mut h = Harness::new(&config());
    h.data_every = Some(SEC);
    let start = h.now;
    let mut now = start;
    // The application writes every second too.
    while now < start + 1000 * SEC {
        now += SEC;
        h.run(now);
        h.k.on_outbound(now);
    }
    // One probe per 40 s round-trip deadline (plus the first), not one per 20 s.
    assert!((25..=27).contains(&h.written.len()), "{}", h.written.len());
}

#[test]
fn inbound_busy_outbound_idle_still_writes_once_per_interval() {
    let mut h = Harness::new(&config());
    h.data_every = Some(SEC);
    h.run(h.now + 1000 * SEC);
    assert!((50..=56).contains(&h.written.len()), "{}", h.written.len());
    let gaps = h.written.windows(2).map(|w| w[1].1 - w[0].1);
    assert!(gaps.into_iter().all(|g| g <= 20 * SEC));
}

#[test]
fn first_probe_phase_is_spread_over_the_interval() {
    let t0 = Instant::now();
    let mut buckets = [0u32; 10];
    for seed in 0..1000 {
        let k = Keepalive::new(&config(), t0, seed).unwrap();
        let phase = k.poll_timeout().unwrap() - t0;
        assert!(phase < 20 * SEC);
        buckets[(phase.as_secs() / 2) as usize] += 1;
    }
    assert!(
        buckets.iter().all(|&b| (60..=140).contains(&b)),
        "{buckets:?}"
    );
}

#[test]
fn per_connection_state_is_small() {
    // Pinned: times are nanosecond offsets from one epoch and the four probe slots
    // are inline, so nothing is allocated per connection or per probe. Growing this
    // should be a decision, not an accident.
    let size = std::mem::size_of::<Keepalive>();
    assert!(size <= 320, "Keepalive grew to {size} bytes");
    assert!(std::mem::size_of::<ProbeRateLimit>() <= 40);
}
