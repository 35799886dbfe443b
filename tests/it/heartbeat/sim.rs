//! A virtual-time simulation of one sans-IO keepalive against a link that goes up and
//! down and a driver that stalls: fast enough for property tests and 10 000 clients.

use std::time::{Duration, Instant};

use tether_heartbeat::sans_io::Keepalive;
use tether_heartbeat::KeepaliveConfig;

/// One stretch of the schedule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Phase {
    /// The link carries traffic: pongs come back after `rtt`, data every `data_every`.
    Up {
        len: Duration,
        rtt: Duration,
        data_every: Option<Duration>,
    },
    /// The link holds everything back (TCP still open): nothing arrives, nothing is
    /// lost; it is delivered when the link is up again.
    Down { len: Duration },
    /// The link is up but this side's runtime is blocked: nothing is processed until the
    /// stall ends; then the timer is handled first, and queued arrivals after it.
    Stall { len: Duration, rtt: Duration },
}

impl Phase {
    fn len(&self) -> Duration {
        match *self {
            Phase::Up { len, .. } | Phase::Down { len } | Phase::Stall { len, .. } => len,
        }
    }
}

/// What happened in one run.
#[derive(Debug, Default)]
pub(super) struct Outcome {
    /// Offsets from the start at which something was handed to the keepalive.
    pub(super) arrivals: Vec<Duration>,
    /// Offset of the death, if any.
    pub(super) dead_at: Option<Duration>,
    /// Probes written.
    pub(super) probes: usize,
}

/// The schedule laid out on the time line, offsets from the start.
pub(super) struct Schedule {
    phases: Vec<(Duration, Phase)>,
    end: Duration,
}

impl Schedule {
    pub(super) fn new(phases: &[Phase]) -> Self {
        let mut at = Duration::ZERO;
        let mut laid = Vec::new();
        for phase in phases {
            laid.push((at, *phase));
            at += phase.len();
        }
        Schedule {
            phases: laid,
            end: at,
        }
    }

    pub(super) fn end(&self) -> Duration {
        self.end
    }

    fn phase_at(&self, t: Duration) -> Option<(Duration, Phase)> {
        self.phases
            .iter()
            .rev()
            .find(|(start, _)| *start <= t)
            .copied()
            .filter(|(start, phase)| t < *start + phase.len())
    }

    /// The first instant at or after `t` when the link is up, with the RTT then.
    fn up_after(&self, t: Duration) -> Option<(Duration, Duration)> {
        let mut t = t;
        loop {
            match self.phase_at(t)? {
                (_, Phase::Up { rtt, .. } | Phase::Stall { rtt, .. }) => return Some((t, rtt)),
                (start, Phase::Down { len }) => t = start + len,
            }
        }
    }

    /// Whether `t` falls in a stall; returns its end.
    fn stall_end(&self, t: Duration) -> Option<Duration> {
        match self.phase_at(t)? {
            (start, Phase::Stall { len, .. }) => Some(start + len),
            _ => None,
        }
    }

    /// Stretches of the schedule that are down, as (start, end) offsets.
    pub(super) fn downs(&self) -> impl Iterator<Item = (Duration, Duration)> + '_ {
        self.phases.iter().filter_map(|(start, phase)| match phase {
            Phase::Down { len } => Some((*start, *start + *len)),
            _ => None,
        })
    }

    /// Stretches of the schedule that are stalls, as (start, end) offsets.
    pub(super) fn stalls(&self) -> impl Iterator<Item = (Duration, Duration)> + '_ {
        self.phases.iter().filter_map(|(start, phase)| match phase {
            Phase::Stall { len, .. } => Some((*start, *start + *len)),
            _ => None,
        })
    }

    /// Data the peer sends, as arrival offsets (delayed while down).
    fn data(&self) -> Vec<Duration> {
        let mut out = Vec::new();
        for (start, phase) in &self.phases {
            if let Phase::Up {
                len,
                data_every: Some(every),
                ..
            } = phase
            {
                let mut t = *start + *every;
                while t < *start + *len {
                    out.push(t);
                    t += *every;
                }
            }
        }
        out
    }
}

#[derive(Clone, Copy)]
enum Arrival {
    Pong(u64),
    Data,
}

/// Runs one keepalive through `schedule` until its end or the keepalive's death.
pub(super) fn run(config: &KeepaliveConfig, seed: u64, schedule: &Schedule) -> Outcome {
    let epoch = Instant::now();
    let mut k = Keepalive::new(config, epoch, seed).unwrap();
    let mut pending: Vec<(Duration, Arrival)> = schedule
        .data()
        .into_iter()
        .map(|t| (t, Arrival::Data))
        .collect();
    let mut out = Outcome::default();
    let mut now = Duration::ZERO;
    loop {
        if k.dead().is_some() {
            out.dead_at = Some(now);
            return out;
        }
        let timer = k.poll_timeout().unwrap() - epoch;
        let arrival = pending.iter().map(|p| p.0).min();
        let next = arrival.map_or(timer, |a| a.min(timer));
        if next >= schedule.end() {
            return out;
        }
        now = next;
        if let Some(end) = schedule.stall_end(next) {
            // Blocked: at the end, the late timer first, then everything queued.
            now = end;
            if k.poll_timeout().unwrap() - epoch <= end {
                k.handle_timeout(epoch + end);
            }
            pending.sort_by_key(|p| p.0);
            while pending.first().is_some_and(|p| p.0 <= end) {
                let (_, arrival) = pending.remove(0);
                deliver(&mut k, epoch + end, arrival);
                out.arrivals.push(end);
            }
        } else if arrival == Some(next) {
            let i = pending.iter().position(|p| p.0 == next).unwrap();
            let (_, arrival) = pending.remove(i);
            deliver(&mut k, epoch + next, arrival);
            out.arrivals.push(next);
        } else {
            k.handle_timeout(epoch + next);
        }
        while let Some(nonce) = k.poll_probe(epoch + now) {
            k.on_probe_written(epoch + now, nonce);
            out.probes += 1;
            // The probe reaches the peer when the link is up; its pong comes back after
            // the RTT, or when the link is up again.
            let Some((reached, rtt)) = schedule.up_after(now) else {
                continue;
            };
            if let Some((back, _)) = schedule.up_after(reached + rtt) {
                pending.push((back, Arrival::Pong(nonce)));
            }
        }
    }
}

fn deliver(k: &mut Keepalive, at: Instant, arrival: Arrival) {
    match arrival {
        Arrival::Pong(nonce) => {
            k.on_pong(at, nonce);
        }
        Arrival::Data => k.on_inbound(at),
    }
}
