//! The sans-IO keepalive state machine of one connection.

use std::time::{Duration, Instant};

use crate::close::CloseReason;
use crate::config::{KeepaliveConfig, Verdict, MAX_IN_FLIGHT};
use crate::error::Error;
use crate::rtt::RttStats;
use crate::splitmix::{splitmix64, unit};

#[cfg(test)]
mod tests;

/// How the link looks to the keepalive while it is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Health {
    /// Probes are answered (or the link is busy).
    Healthy,
    /// A probe missed its deadline; an extra probe is out. More misses make it Dead.
    Suspect,
    /// This side stalled, so the peer is not judged until a fresh probe is answered.
    LocalStall(StallCause),
}

/// What stalled on this side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StallCause {
    /// A timer fired later than the stall tolerance (the runtime was blocked).
    TimerLate,
    /// The application is not reading inbound messages, so pongs cannot be read either.
    AppNotReading,
}

/// What a pong meant to the keepalive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PongOutcome {
    /// It echoed a probe in flight, acknowledging it and every earlier one. `rtt` is the
    /// sample it gave, `None` when the probe was written before a local stall (Karn:
    /// such a round trip measures the stall, not the path).
    Acked {
        /// The probe's nonce.
        nonce: u64,
        /// The round-trip sample, if this pong gave one.
        rtt: Option<Duration>,
    },
    /// Its nonce matches no probe in flight (unsolicited, duplicate, forged or from an
    /// earlier connection): inbound activity, never round-trip proof.
    Mismatched,
    /// The link is already Dead: late pongs never resurrect it.
    Ignored,
}

/// Sans-IO keepalive of one connection: decides when to probe and when the peer is dead.
///
/// # The rules, in order
///
/// 1. **When to probe.** The first probe goes out at a random phase within the first
///    interval (no synchronised waves after a mass reconnect). Then, at each tick (every
///    interval, shortened by up to `jitter`), a probe goes out if nothing but pongs arrived
///    for about an interval, or nothing was written for about an interval (middleboxes
///    see a frame), or the last round-trip proof is older than the round-trip deadline.
///    A busy link is left alone otherwise. At most `max_in_flight` probes are out.
/// 2. **The pong clock** of a probe starts when the driver reports it written
///    ([`on_probe_written`](Self::on_probe_written)), not when it was queued.
/// 3. **Two questions.** A probe is answered when a pong echoes its nonce (or a later
///    one's: a pong acknowledges every earlier probe). With [`Verdict::Activity`], any
///    other inbound frame after the probe was written saves it from its pong timeout, but
///    not from the round-trip deadline, so a link that only works one way is still
///    caught. Pongs with unknown nonces are activity, never round-trip proof.
/// 4. **Timeout.** `smoothed + 4 variance` of the measured round trips (RFC 6298 §2),
///    clamped to `[pong_timeout, max_pong_timeout]`.
/// 5. **Verdict.** A probe past its deadline is a miss: the link turns Suspect and an
///    extra probe goes out at once. `misses_to_dead` consecutive misses make it Dead;
///    any acknowledged probe resets the count. Dead is final: late pongs are ignored.
/// 6. **Local stalls are not the peer's fault.** If the timer fires later than
///    `stall_tolerance` (the runtime was blocked), or while the application is not
///    reading (so pongs cannot be read), probes written before are not judged and give no
///    RTT sample; one fresh probe goes out and the verdict waits for it. A probe that
///    waits for the writer (behind a large message) is not judged at all; a probe unwritten
///    for `max_write_stall`, or reading paused for `max_read_stall`, ends the connection
///    with its own reason.
///
/// Time is passed in; nothing here reads a clock, spawns, sleeps or draws randomness
/// (the jitter comes from a seed given to [`new`](Self::new)). The driver calls:
///
/// * inputs: [`on_inbound`](Self::on_inbound) for every inbound frame that is not a pong
///   (a cheap stamp, no timer reset), [`on_pong`](Self::on_pong) for a pong,
///   [`on_outbound`](Self::on_outbound) when any frame was written,
///   [`on_probe_written`](Self::on_probe_written) when a probe left for the transport,
///   [`set_reading_paused`](Self::set_reading_paused) when the application stops or
///   resumes reading;
/// * timers: [`poll_timeout`](Self::poll_timeout) for the next deadline and
///   [`handle_timeout`](Self::handle_timeout) when it is reached;
/// * outputs: [`poll_probe`](Self::poll_probe) after every input or timeout, for the nonce
///   of a probe to send now; [`health`](Self::health) and [`dead`](Self::dead).
///
/// ```
/// use std::time::{Duration, Instant};
/// use tether_heartbeat::sans_io::{Keepalive, PongOutcome};
/// use tether_heartbeat::{Health, KeepaliveConfig};
///
/// let mut config = KeepaliveConfig::default();
/// config.set_interval(Duration::from_secs(20)).set_pong_timeout(Duration::from_secs(5));
/// let start = Instant::now();
/// let mut keepalive = Keepalive::new(&config, start, 7).unwrap();
///
/// // The first probe goes out at a random phase within the first interval.
/// let at = keepalive.poll_timeout().unwrap();
/// assert!(at < start + Duration::from_secs(20));
/// keepalive.handle_timeout(at);
/// let nonce = keepalive.poll_probe(at).unwrap();
/// keepalive.on_probe_written(at, nonce);
///
/// // The pong echoes the nonce 40 ms later.
/// let outcome = keepalive.on_pong(at + Duration::from_millis(40), nonce);
/// assert_eq!(outcome, PongOutcome::Acked { nonce, rtt: Some(Duration::from_millis(40)) });
/// assert_eq!(keepalive.health(), Health::Healthy);
///
/// // The next probe is never answered: Suspect after the 5 s timeout, Dead after two.
/// let at = keepalive.poll_timeout().unwrap();
/// keepalive.handle_timeout(at);
/// let nonce = keepalive.poll_probe(at).unwrap();
/// keepalive.on_probe_written(at, nonce);
/// keepalive.handle_timeout(at + Duration::from_secs(5));
/// assert_eq!(keepalive.health(), Health::Suspect);
/// let extra = keepalive.poll_probe(at + Duration::from_secs(5)).unwrap();
/// keepalive.on_probe_written(at + Duration::from_secs(5), extra);
/// keepalive.handle_timeout(at + Duration::from_secs(10));
/// assert!(keepalive.dead().is_some());
/// ```
#[derive(Debug, Clone)]
pub struct Keepalive {
    /// Every time below is nanoseconds since this instant (half the size of an `Instant`).
    epoch: Instant,
    timing: Timing,
    rng: u64,
    rtt: RttStats,
    slots: [Slot; MAX_IN_FLIGHT],
    /// Nonces in `oldest..next_nonce` are in flight (written or still queued).
    oldest: u64,
    next_nonce: u64,
    /// When the oldest probe handed out by `poll_probe` was queued, while one is unwritten.
    queued_at: Nanos,
    next_tick: Nanos,
    last_data: Nanos,
    last_inbound: Nanos,
    last_outbound: Nanos,
    last_proof: Nanos,
    /// Probes written before this are not judged and give no RTT sample.
    verdict_floor: Nanos,
    reading_paused: Nanos,
    misses: u8,
    want_probe: bool,
    first_tick: bool,
    health: Health,
    dead: Option<Death>,
}

/// Nanoseconds since the epoch; [`NEVER`] stands for "none".
type Nanos = u64;
const NEVER: Nanos = u64::MAX;

/// A validated [`KeepaliveConfig`], in nanoseconds: what a supervisor keeps once its
/// configuration was checked, so starting a connection's keepalive cannot fail.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timing {
    interval: Nanos,
    pong_timeout: Duration,
    max_pong_timeout: Duration,
    round_trip_deadline: Nanos,
    stall_tolerance: Nanos,
    max_write_stall: Nanos,
    max_read_stall: Nanos,
    jitter: f32,
    misses_to_dead: u8,
    max_in_flight: u8,
    verdict: Verdict,
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    written: Nanos,
    judged: bool,
}

impl Default for Slot {
    fn default() -> Self {
        Slot {
            written: NEVER,
            judged: false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Death {
    HeartbeatTimeout,
    WriteStalled,
    AppNotReading,
}

impl From<Death> for CloseReason {
    fn from(death: Death) -> Self {
        match death {
            Death::HeartbeatTimeout => CloseReason::HeartbeatTimeout,
            Death::WriteStalled => CloseReason::WriteStalled,
            Death::AppNotReading => CloseReason::AppNotReading,
        }
    }
}

impl Timing {
    /// Validates `config` and converts it.
    pub(crate) fn checked(config: &KeepaliveConfig) -> Result<Timing, Error> {
        config.validate()?;
        Ok(Timing {
            interval: nanos(config.interval),
            pong_timeout: config.pong_timeout,
            max_pong_timeout: config.max_pong_timeout,
            round_trip_deadline: nanos(config.round_trip_deadline),
            stall_tolerance: nanos(config.stall_tolerance),
            max_write_stall: nanos(config.max_write_stall),
            max_read_stall: nanos(config.max_read_stall),
            jitter: config.jitter as f32,
            misses_to_dead: config.misses_to_dead,
            max_in_flight: config.max_in_flight,
            verdict: config.verdict,
        })
    }
}

fn nanos(duration: Duration) -> Nanos {
    // 584 years of nanoseconds fit in a u64; anything longer is "never".
    u64::try_from(duration.as_nanos()).unwrap_or(NEVER - 1)
}

impl Keepalive {
    /// Starts the keepalive of a connection that opened at `now`. `seed` drives the jitter
    /// and the nonce base (so pongs from an earlier connection do not match).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] when `config` does not [validate](KeepaliveConfig::validate).
    pub fn new(config: &KeepaliveConfig, now: Instant, seed: u64) -> Result<Self, Error> {
        Ok(Keepalive::start(Timing::checked(config)?, now, seed))
    }

    /// [`new`](Self::new) for a configuration checked before.
    pub(crate) fn start(timing: Timing, now: Instant, seed: u64) -> Self {
        let mut rng = seed;
        let nonce_base = splitmix64(&mut rng);
        let phase = unit(splitmix64(&mut rng));
        Keepalive {
            epoch: now,
            timing,
            rng,
            rtt: RttStats::default(),
            slots: [Slot::default(); MAX_IN_FLIGHT],
            oldest: nonce_base,
            next_nonce: nonce_base,
            queued_at: NEVER,
            next_tick: scale(timing.interval, phase),
            last_data: 0,
            last_inbound: 0,
            last_outbound: 0,
            last_proof: 0,
            verdict_floor: 0,
            reading_paused: NEVER,
            misses: 0,
            want_probe: false,
            first_tick: true,
            health: Health::Healthy,
            dead: None,
        }
    }

    // ----- getters -----------------------------------------------------------------

    /// The link's health; meaningless once [`dead`](Self::dead) is `Some`.
    pub fn health(&self) -> Health {
        self.health
    }

    /// `Some(reason)` once the verdict is in; it never goes back.
    pub fn dead(&self) -> Option<CloseReason> {
        self.dead.map(CloseReason::from)
    }

    /// Round-trip statistics so far.
    pub fn rtt(&self) -> &RttStats {
        &self.rtt
    }

    /// The pong timeout in force now (adaptive, within the configured floor and ceiling).
    pub fn timeout(&self) -> Duration {
        self.rtt
            .timeout(self.timing.pong_timeout, self.timing.max_pong_timeout)
    }

    /// Consecutive misses so far.
    pub fn misses(&self) -> u8 {
        self.misses
    }

    /// Probes handed out and neither acknowledged nor abandoned.
    pub fn in_flight(&self) -> usize {
        in_flight(self.oldest, self.next_nonce)
    }

    // ----- inputs ------------------------------------------------------------------

    /// An inbound frame that is not a pong arrived: "something is arriving". Only stamps
    /// the time; deadlines are checked when the timer fires. A time earlier than one
    /// stamped before (activity another task saw, reported late) moves nothing back.
    pub fn on_inbound(&mut self, now: Instant) {
        let now = self.stamp(now);
        self.last_inbound = self.last_inbound.max(now);
        self.last_data = self.last_data.max(now);
    }

    /// A frame (data or probe) was written to the transport.
    pub fn on_outbound(&mut self, now: Instant) {
        self.last_outbound = self.stamp(now);
    }

    /// The probe `nonce` (and every earlier queued one) has been written to the transport:
    /// its pong clock starts now, not when it was queued.
    pub fn on_probe_written(&mut self, now: Instant, nonce: u64) {
        if self.dead.is_some() || !self.is_in_flight(nonce) {
            return;
        }
        let now = self.stamp(now);
        let mut n = self.oldest;
        while n != nonce.wrapping_add(1) {
            let slot = &mut self.slots[slot_index(n)];
            if slot.written == NEVER {
                slot.written = now;
            }
            n = n.wrapping_add(1);
        }
        self.last_outbound = now;
        self.queued_at = if self.has_unwritten() { now } else { NEVER };
    }

    /// A pong echoing `nonce` arrived.
    ///
    /// It acknowledges its probe and every earlier one. A nonce that matches no written
    /// probe in flight is only inbound activity.
    pub fn on_pong(&mut self, now: Instant, nonce: u64) -> PongOutcome {
        if self.dead.is_some() {
            return PongOutcome::Ignored;
        }
        let now = self.stamp(now);
        self.last_inbound = self.last_inbound.max(now);
        if !self.is_in_flight(nonce) {
            return PongOutcome::Mismatched;
        }
        let written = self.slots[slot_index(nonce)].written;
        if written == NEVER {
            // The peer cannot answer a probe that was never written.
            return PongOutcome::Mismatched;
        }
        let rtt = if written >= self.verdict_floor && self.reading_paused == NEVER {
            let sample = Duration::from_nanos(now.saturating_sub(written));
            self.rtt.sample(sample);
            Some(sample)
        } else {
            None
        };
        let mut n = self.oldest;
        while n != nonce.wrapping_add(1) {
            self.slots[slot_index(n)] = Slot::default();
            n = n.wrapping_add(1);
        }
        self.oldest = nonce.wrapping_add(1);
        if !self.has_unwritten() {
            self.queued_at = NEVER;
        }
        self.last_proof = now;
        self.misses = 0;
        if self.reading_paused == NEVER {
            self.health = Health::Healthy;
        }
        PongOutcome::Acked { nonce, rtt }
    }

    /// The application stopped (`true`) or resumed (`false`) reading, so this side stopped
    /// or resumed reading the transport. While paused no probe is judged; after resuming,
    /// a fresh probe goes out before the peer is judged again.
    pub fn set_reading_paused(&mut self, now: Instant, paused: bool) {
        if self.dead.is_some() {
            return;
        }
        let now = self.stamp(now);
        match (paused, self.reading_paused != NEVER) {
            (true, false) => {
                self.reading_paused = now;
                self.health = Health::LocalStall(StallCause::AppNotReading);
            }
            (false, true) => {
                self.reading_paused = NEVER;
                self.stall(now, StallCause::AppNotReading);
            }
            _ => {}
        }
    }

    // ----- timers ------------------------------------------------------------------

    /// The next instant [`handle_timeout`](Self::handle_timeout) must be called at, `None`
    /// once dead.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_due()
            .map(|due| self.epoch + Duration::from_nanos(due))
    }

    /// Processes every deadline reached by `now`: judges probes, decides whether to probe.
    ///
    /// A call later than the stall tolerance past [`poll_timeout`](Self::poll_timeout)
    /// means this side was stalled: nothing is judged, a fresh probe is wanted instead.
    pub fn handle_timeout(&mut self, now: Instant) {
        let Some(due) = self.next_due() else {
            return;
        };
        let now = self.stamp(now);
        if now < due {
            return;
        }
        let reading = self.reading_paused == NEVER;
        if reading && now > due.saturating_add(self.timing.stall_tolerance) {
            self.stall(now, StallCause::TimerLate);
        }
        if !reading
            && now
                >= self
                    .reading_paused
                    .saturating_add(self.timing.max_read_stall)
        {
            self.die(Death::AppNotReading);
            return;
        }
        if now >= self.queued_at.saturating_add(self.timing.max_write_stall) {
            self.die(Death::WriteStalled);
            return;
        }
        if reading && self.judge(now) {
            return;
        }
        if now >= self.next_tick {
            self.tick(now);
        }
    }

    // ----- outputs -----------------------------------------------------------------

    /// The nonce of a probe to send now, if one is wanted and a slot is free. The probe
    /// counts as queued from `now` until [`on_probe_written`](Self::on_probe_written).
    pub fn poll_probe(&mut self, now: Instant) -> Option<u64> {
        if self.dead.is_some() || !self.want_probe {
            return None;
        }
        if self.in_flight() >= usize::from(self.timing.max_in_flight) {
            // Make room only by abandoning a probe that can no longer be judged: one
            // already missed, or one written before a local stall.
            let oldest = self.slots[slot_index(self.oldest)];
            let written = oldest.written != NEVER;
            if !(written && (oldest.judged || oldest.written < self.verdict_floor)) {
                return None;
            }
            self.slots[slot_index(self.oldest)] = Slot::default();
            self.oldest = self.oldest.wrapping_add(1);
        }
        let nonce = self.next_nonce;
        self.next_nonce = nonce.wrapping_add(1);
        self.slots[slot_index(nonce)] = Slot::default();
        self.want_probe = false;
        if self.queued_at == NEVER {
            self.queued_at = self.stamp(now);
        }
        Some(nonce)
    }

    // ----- private -----------------------------------------------------------------

    fn stamp(&self, now: Instant) -> Nanos {
        nanos(now.saturating_duration_since(self.epoch))
    }

    fn next_due(&self) -> Option<Nanos> {
        if self.dead.is_some() {
            return None;
        }
        let mut at = self.next_tick;
        if self.reading_paused != NEVER {
            at = at.min(
                self.reading_paused
                    .saturating_add(self.timing.max_read_stall),
            );
        } else {
            let mut n = self.oldest;
            while n != self.next_nonce {
                if let Some(deadline) = self.deadline_of(&self.slots[slot_index(n)]) {
                    at = at.min(deadline);
                }
                n = n.wrapping_add(1);
            }
        }
        Some(at.min(self.queued_at.saturating_add(self.timing.max_write_stall)))
    }

    fn stall(&mut self, now: Nanos, cause: StallCause) {
        self.verdict_floor = now;
        self.health = Health::LocalStall(cause);
        self.want_probe = true;
    }

    fn die(&mut self, death: Death) {
        self.dead = Some(death);
        self.want_probe = false;
    }

    /// Judges every written, unjudged probe whose deadline passed; returns `true` if dead.
    fn judge(&mut self, now: Nanos) -> bool {
        let mut n = self.oldest;
        while n != self.next_nonce {
            let index = slot_index(n);
            if let Some(deadline) = self.deadline_of(&self.slots[index]) {
                if now >= deadline {
                    self.slots[index].judged = true;
                    self.misses = self.misses.saturating_add(1);
                    if self.misses >= self.timing.misses_to_dead {
                        self.die(Death::HeartbeatTimeout);
                        return true;
                    }
                    self.health = Health::Suspect;
                    self.want_probe = true;
                }
            }
            n = n.wrapping_add(1);
        }
        false
    }

    /// The deadline of a written, unjudged probe that counts for the verdict.
    fn deadline_of(&self, slot: &Slot) -> Option<Nanos> {
        if slot.written == NEVER || slot.judged || slot.written < self.verdict_floor {
            return None;
        }
        let timeout = nanos(self.timeout());
        let saved_by_activity =
            self.timing.verdict == Verdict::Activity && self.last_inbound > slot.written;
        let wait = if saved_by_activity {
            timeout.max(self.timing.round_trip_deadline)
        } else {
            timeout
        };
        Some(slot.written.saturating_add(wait))
    }

    /// One interval shortened by up to `jitter`, at random.
    fn jittered(&mut self) -> Nanos {
        let draw = unit(splitmix64(&mut self.rng));
        scale(
            self.timing.interval,
            1.0 - f64::from(self.timing.jitter) * draw,
        )
    }

    fn tick(&mut self, now: Nanos) {
        if self.queued_at != NEVER {
            // A probe is still waiting for the writer: do not queue another behind it.
            self.next_tick = now + self.jittered();
            return;
        }
        let idle = scale(self.timing.interval, 1.0 - f64::from(self.timing.jitter));
        let idle_in = now.saturating_sub(self.last_data) >= idle;
        let idle_out = now.saturating_sub(self.last_outbound) >= idle;
        let stale_proof = now.saturating_sub(self.last_proof) >= self.timing.round_trip_deadline;
        if self.first_tick || idle_in || idle_out || stale_proof {
            self.first_tick = false;
            self.want_probe = true;
            self.next_tick = now + self.jittered();
        } else {
            // Busy link: come back when it could first have gone idle. Each candidate is
            // later than `now` because none of the conditions above held.
            let data = self.last_data + self.jittered();
            let out = self.last_outbound + self.jittered();
            let proof = self.last_proof + self.timing.round_trip_deadline;
            self.next_tick = data.min(out).min(proof);
        }
    }

    fn is_in_flight(&self, nonce: u64) -> bool {
        nonce.wrapping_sub(self.oldest) < self.next_nonce.wrapping_sub(self.oldest)
    }

    fn has_unwritten(&self) -> bool {
        let mut n = self.oldest;
        while n != self.next_nonce {
            if self.slots[slot_index(n)].written == NEVER {
                return true;
            }
            n = n.wrapping_add(1);
        }
        false
    }
}

/// `nanos * factor`, for factors in `[0, 1]`.
fn scale(nanos: Nanos, factor: f64) -> Nanos {
    // The product is at most `nanos`, so the conversion back cannot overflow.
    (nanos as f64 * factor) as Nanos
}

fn in_flight(oldest: u64, next: u64) -> usize {
    // At most MAX_IN_FLIGHT by construction, so the conversion cannot saturate.
    usize::try_from(next.wrapping_sub(oldest)).unwrap_or(usize::MAX)
}

fn slot_index(nonce: u64) -> usize {
    // The remainder is below MAX_IN_FLIGHT, so it always fits.
    (nonce % MAX_IN_FLIGHT as u64) as usize
}
