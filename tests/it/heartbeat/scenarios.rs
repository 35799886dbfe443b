//! The supervisor against a scripted peer on tokio's paused clock: every rule of the
//! keepalive, the reconnecting client and the server side, deterministically.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tether_heartbeat::{
    CloseReason, Event, Failure, Farewell, Health, Inbound, KeepaliveConfig, LinkState,
    OutboxConfig, Probe, ReconnectConfig, ResponderConfig, StallCause, StringProbe, Supervisor,
    SupervisorConfig,
};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::fake::{factory, pair, Fake, Script};

pub(super) const SEC: Duration = Duration::from_secs(1);
pub(super) const MS: Duration = Duration::from_millis(1);

fn keepalive(interval: Duration, timeout: Duration) -> KeepaliveConfig {
    let mut keepalive = KeepaliveConfig::default();
    keepalive.set_interval(interval).set_pong_timeout(timeout);
    keepalive
}

pub(super) fn config(keepalive: KeepaliveConfig) -> SupervisorConfig {
    let mut reconnect = ReconnectConfig::default();
    reconnect
        .set_initial_delay(SEC)
        .set_max_delay(64 * SEC)
        .set_min_uptime(10 * SEC);
    let mut config = SupervisorConfig::default();
    config
        .set_keepalive(Some(keepalive))
        .set_reconnect(reconnect)
        .set_seed(Some(7));
    config
}

/// Waits for the first event matching `pred`; returns it with the virtual time it came.
pub(super) async fn wait_for(
    events: &mut mpsc::Receiver<Event>,
    mut pred: impl FnMut(&Event) -> bool,
) -> (Instant, Event) {
    let limit = Instant::now() + 100_000 * SEC;
    loop {
        let event = tokio::time::timeout_at(limit, events.recv())
            .await
            .expect("the awaited event never came")
            .expect("the event channel closed");
        if pred(&event) {
            return (Instant::now(), event);
        }
    }
}

/// Collects every event until `until` (virtual time).
async fn events_until(events: &mut mpsc::Receiver<Event>, until: Instant) -> Vec<Event> {
    let mut seen = Vec::new();
    while let Ok(Some(event)) = tokio::time::timeout_at(until, events.recv()).await {
        seen.push(event);
    }
    seen
}

/// Spawns a reconnecting client over the prepared connect results; takes its events.
pub(super) fn start(
    config: &SupervisorConfig,
    results: Vec<Result<Fake, Failure>>,
) -> (Supervisor<String>, mpsc::Receiver<Event>) {
    let mut client = Supervisor::connect(config, StringProbe::default(), factory(results)).unwrap();
    let events = client.events().unwrap();
    (client, events)
}

/// Waits until the supervisor stopped; returns why.
async fn closed(client: &Supervisor<String>) -> CloseReason {
    let mut state = client.state();
    let state = state
        .wait_for(|s| matches!(s, LinkState::Closed(_)))
        .await
        .unwrap();
    match &*state {
        LinkState::Closed(reason) => reason.clone(),
        _ => unreachable!(),
    }
}

pub(super) fn connected(peer_script: &Arc<Script>) -> Fake {
    let (fake, peer) = pair(None);
    peer_script.spawn(peer);
    fake
}

#[tokio::test(start_paused = true)]
async fn healthy_peer_for_a_virtual_day_has_no_deaths() {
    let script = Script::new(50 * MS);
    let config = config(KeepaliveConfig::default());
    let (client, mut events) = start(&config, vec![Ok(connected(&script))]);
    let end = Instant::now() + 86_400 * SEC;
    let mut acked = 0;
    while let Ok(Some(event)) = tokio::time::timeout_at(end, events.recv()).await {
        match event {
            Event::ProbeAcked { rtt, .. } => {
                assert_eq!(rtt, Some(50 * MS));
                acked += 1;
            }
            Event::ProbeSent { .. } | Event::Connected => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    // One probe per 20 s interval shortened by up to 10 %.
    assert!((4320..=4800).contains(&acked), "{acked}");
    assert_eq!(*client.state().borrow(), LinkState::Open(Health::Healthy));
    assert_eq!(client.events_dropped(), 0);
}

#[tokio::test(start_paused = true)]
async fn silent_peer_keeping_the_transport_open_is_dead_within_interval_plus_timeouts() {
    let script = Script::new(50 * MS);
    let (first, first_peer) = pair(None);
    let gate = Arc::clone(&first_peer.gate);
    script.spawn(first_peer);
    let second = connected(&Script::new(50 * MS));
    let config = config(KeepaliveConfig::default());
    let (_client, mut events) = start(&config, vec![Ok(first), Ok(second)]);
    wait_for(&mut events, |e| matches!(e, Event::ProbeAcked { .. })).await;
    script.answer.store(false, Ordering::SeqCst);
    let last_pong = Instant::now();

    let (sent_at, _) = wait_for(&mut events, |e| matches!(e, Event::ProbeSent { .. })).await;
    let (suspect_at, _) = wait_for(&mut events, |e| matches!(e, Event::Suspect { .. })).await;
    // Never before the timeout: exactly one pong timeout (10 s) after the write.
    assert_eq!(suspect_at - sent_at, 10 * SEC);
    let (dead_at, dead) = wait_for(&mut events, |e| matches!(e, Event::Dead(_))).await;
    assert_eq!(dead, Event::Dead(CloseReason::HeartbeatTimeout));
    assert_eq!(dead_at - suspect_at, 10 * SEC);
    assert!(dead_at - last_pong <= 20 * SEC + 2 * 10 * SEC);

    let (_, disconnected) = wait_for(&mut events, |e| matches!(e, Event::Disconnected(_))).await;
    assert_eq!(
        disconnected,
        Event::Disconnected(Failure::Local(CloseReason::HeartbeatTimeout))
    );
    let dropped = gate.dropped_at().expect("transport dropped");
    assert!(dropped - dead_at <= SEC, "close bounded by the grace");
    let (_, reconnected) = wait_for(&mut events, |e| matches!(e, Event::Reconnected { .. })).await;
    let Event::Reconnected { downtime, attempts } = reconnected else {
        unreachable!()
    };
    assert_eq!(attempts, 1);
    assert!(downtime <= 2 * SEC, "{downtime:?}");
}

#[tokio::test(start_paused = true)]
async fn peer_streaming_data_without_pongs_is_dead_by_the_round_trip_deadline() {
    let script = Script::new(50 * MS);
    script.answer.store(false, Ordering::SeqCst);
    let (fake, peer) = pair(None);
    let data = peer.tx.clone();
    script.spawn(peer);
    tokio::spawn(async move {
        for i in 0.. {
            tokio::time::sleep(SEC).await;
            if data.send(format!("tick {i}")).is_err() {
                return;
            }
        }
    });
    let config = config(KeepaliveConfig::default());
    let (mut client, mut events) = start(&config, vec![Ok(fake)]);
    let (first_probe, _) = wait_for(&mut events, |e| matches!(e, Event::ProbeSent { .. })).await;
    let (dead_at, dead) = wait_for(&mut events, |e| matches!(e, Event::Dead(_))).await;
    assert_eq!(dead, Event::Dead(CloseReason::HeartbeatTimeout));
    // Activity saves each probe from its 10 s timeout, not from the 40 s round trip.
    assert!(dead_at - first_probe >= 40 * SEC);
    assert!(dead_at - first_probe <= 40 * SEC + 20 * SEC + 40 * SEC);
    assert_eq!(client.recv().await.as_deref(), Some("tick 0"));
}

#[tokio::test(start_paused = true)]
async fn blackholed_transport_is_closed_within_the_grace() {
    let script = Script::new(50 * MS);
    let (fake, peer) = pair(None);
    let gate = Arc::clone(&peer.gate);
    script.spawn(peer);
    let config = config(keepalive(5 * SEC, 2 * SEC));
    let (_client, mut events) = start(&config, vec![Ok(fake)]);
    wait_for(&mut events, |e| matches!(e, Event::ProbeAcked { .. })).await;
    // Nothing comes back and nothing more can be written.
    script.answer.store(false, Ordering::SeqCst);
    gate.block(true);
    let blackholed = Instant::now();
    let (dead_at, dead) = wait_for(&mut events, |e| matches!(e, Event::Dead(_))).await;
    assert!(
        dead == Event::Dead(CloseReason::WriteStalled)
            || dead == Event::Dead(CloseReason::HeartbeatTimeout),
        "{dead:?}"
    );
    assert!(dead_at - blackholed <= 5 * SEC + 30 * SEC);
    wait_for(&mut events, |e| matches!(e, Event::Disconnected(_))).await;
    let dropped = gate.dropped_at().expect("transport dropped");
    assert!(dropped - dead_at <= SEC, "{:?}", dropped - dead_at);
}

#[tokio::test(start_paused = true)]
async fn large_message_draining_on_a_slow_transport_is_no_death() {
    let script = Script::new(50 * MS);
    // 1 kB/s: a 25 kB message takes 25 s, five intervals and twelve pong timeouts.
    let (fake, peer) = pair(Some(1000));
    script.spawn(peer);
    let config = config(keepalive(5 * SEC, 2 * SEC));
    let (client, mut events) = start(&config, vec![Ok(fake)]);
    wait_for(&mut events, |e| matches!(e, Event::ProbeAcked { .. })).await;
    client.try_send("x".repeat(25_000)).unwrap();
    client.try_send("after".to_string()).unwrap();
    let seen = events_until(&mut events, Instant::now() + 60 * SEC).await;
    assert!(
        seen.iter()
            .all(|e| !matches!(e, Event::Suspect { .. } | Event::Dead(_))),
        "{seen:?}"
    );
    assert!(seen.iter().any(|e| matches!(e, Event::ProbeAcked { .. })));
    let received = script.received.lock().unwrap().clone();
    assert_eq!(received.len(), 2);
    assert_eq!(received[0].len(), 25_000);
    assert_eq!(received[1], "after");
}

#[tokio::test(start_paused = true)]
async fn app_not_reading_is_no_heartbeat_death_but_a_backpressure_close() {
    let script = Script::new(50 * MS);
    let (fake, peer) = pair(None);
    for i in 0..100 {
        peer.tx.send(format!("data {i}")).unwrap();
    }
    script.spawn(peer);
    let mut config = config(keepalive(5 * SEC, 2 * SEC));
    config.set_inbound_capacity(4);
    let (mut client, mut events) = start(&config, vec![Ok(fake)]);
    let (stalled_at, _) = wait_for(&mut events, |e| {
        *e == Event::LocalStall(StallCause::AppNotReading)
    })
    .await;
    let (dead_at, dead) = wait_for(&mut events, |e| matches!(e, Event::Dead(_))).await;
    assert_eq!(dead, Event::Dead(CloseReason::AppNotReading));
    assert_eq!(dead_at - stalled_at, 30 * SEC);
    // What was buffered before the stall is still there, in order (the handle is also a
    // stream of inbound messages).
    let buffered: Vec<String> = (&mut client).take(4).collect().await;
    let expected: Vec<String> = (0..4).map(|i| format!("data {i}")).collect();
    assert_eq!(buffered, expected);
}

#[tokio::test(start_paused = true)]
async fn runtime_stalled_for_three_timeouts_with_pongs_queued_is_no_death_and_one_probe() {
    let (fake, mut peer) = pair(None);
    let config = config(keepalive(5 * SEC, 2 * SEC));
    let (client, mut events) = start(&config, vec![Ok(fake)]);
    let mut probe = StringProbe::default();
    wait_for(&mut events, |e| matches!(e, Event::ProbeSent { .. })).await;
    let ping = peer.rx.recv().await.unwrap();
    // The pong is queued, then the runtime is blocked past three pong timeouts.
    peer.tx.send(probe.answer(&ping).unwrap()).unwrap();
    tokio::time::advance(3 * 2 * SEC).await;
    let woke = Instant::now();
    let seen = events_until(&mut events, woke + 100 * MS).await;
    assert!(
        seen.contains(&Event::LocalStall(StallCause::TimerLate)),
        "{seen:?}"
    );
    assert!(seen
        .iter()
        .all(|e| !matches!(e, Event::Suspect { .. } | Event::Dead(_))));
    let sent = seen.iter().filter(|e| matches!(e, Event::ProbeSent { .. }));
    assert_eq!(sent.count(), 1, "one fresh probe, no burst: {seen:?}");
    let fresh = peer.rx.recv().await.unwrap();
    assert!(peer.rx.try_recv().is_err());
    peer.tx.send(probe.answer(&fresh).unwrap()).unwrap();
    let (_, acked) = wait_for(&mut events, |e| matches!(e, Event::ProbeAcked { .. })).await;
    assert!(matches!(acked, Event::ProbeAcked { rtt: Some(_), .. }));
    assert_eq!(*client.state().borrow(), LinkState::Open(Health::Healthy));
}

#[tokio::test(start_paused = true)]
async fn late_pong_after_death_does_not_resurrect() {
    let script = Script::new(7 * SEC);
    let mut config = config(keepalive(5 * SEC, 2 * SEC));
    config.set_close_grace(20 * SEC);
    let (_client, mut events) = start(&config, vec![Ok(connected(&script))]);
    wait_for(&mut events, |e| matches!(e, Event::Dead(_))).await;
    // The pongs arrive during the (long) grace: they are ignored.
    let seen = events_until(&mut events, Instant::now() + 15 * SEC).await;
    assert!(
        seen.iter()
            .all(|e| !matches!(e, Event::Recovered | Event::ProbeAcked { .. })),
        "{seen:?}"
    );
    assert!(seen.contains(&Event::Disconnected(Failure::Local(
        CloseReason::HeartbeatTimeout
    ))));
}

#[tokio::test(start_paused = true)]
async fn mismatched_pongs_never_count_as_proof() {
    let script = Script::new(50 * MS);
    script.wrong_nonce.store(true, Ordering::SeqCst);
    let config = config(keepalive(5 * SEC, 2 * SEC));
    let (_client, mut events) = start(&config, vec![Ok(connected(&script))]);
    let mut mismatched = 0;
    let (_, dead) = wait_for(&mut events, |e| {
        assert!(!matches!(e, Event::ProbeAcked { .. }));
        mismatched += usize::from(*e == Event::MismatchedPong);
        matches!(e, Event::Dead(_))
    })
    .await;
    assert_eq!(dead, Event::Dead(CloseReason::HeartbeatTimeout));
    assert!(mismatched >= 2);
}

#[tokio::test(start_paused = true)]
async fn timeout_adapts_as_rtt_grows() {
    let script = Script::new(100 * MS);
    let mut keepalive = keepalive(5 * SEC, SEC);
    keepalive
        .set_max_pong_timeout(20 * SEC)
        .set_round_trip_deadline(20 * SEC);
    let config = config(keepalive);
    let (_client, mut events) = start(&config, vec![Ok(connected(&script))]);
    let mut timeouts = Vec::new();
    for step in 1..=30u64 {
        // RTT grows by 100 ms a probe, up to 3 s: three times the initial timeout.
        script.rtt_ms.store(100 * step, Ordering::SeqCst);
        let (_, acked) = wait_for(&mut events, |e| {
            assert!(
                !matches!(e, Event::Suspect { .. } | Event::Dead(_)),
                "{e:?}"
            );
            matches!(e, Event::ProbeAcked { .. })
        })
        .await;
        let Event::ProbeAcked { timeout, .. } = acked else {
            unreachable!()
        };
        timeouts.push(timeout);
    }
    assert_eq!(timeouts[0], SEC);
    assert!(timeouts[29] > 3 * SEC, "{timeouts:?}");
}

#[tokio::test(start_paused = true)]
async fn flapping_server_keeps_the_backoff_growing() {
    // Every connection is accepted and closed at once.
    let flaps: Vec<_> = (0..8)
        .map(|_| {
            let (fake, peer) = pair(None);
            drop(peer);
            Ok(fake)
        })
        .collect();
    let config = config(KeepaliveConfig::default());
    let (_client, mut events) = start(&config, flaps);
    let mut attempts = Vec::new();
    while attempts.len() < 8 {
        let (_, event) = wait_for(&mut events, |e| matches!(e, Event::Reconnecting { .. })).await;
        let Event::Reconnecting { attempt, delay } = event else {
            unreachable!()
        };
        let window = (SEC * 2u32.pow(attempt - 1)).min(64 * SEC);
        assert!(delay <= window, "attempt {attempt}: {delay:?} > {window:?}");
        attempts.push(attempt);
    }
    assert_eq!(attempts, (1..=8).collect::<Vec<_>>());
}

/// Classifies `close <code>` as the peer's close message, on top of the text probe.
struct ClosingProbe(StringProbe);

impl Probe<String> for ClosingProbe {
    fn probe(&mut self, nonce: u64) -> String {
        self.0.probe(nonce)
    }
    fn classify(&mut self, message: &String) -> Inbound {
        match message.strip_prefix("close ") {
            Some(code) => Inbound::Close(code.parse().ok()),
            None => self.0.classify(message),
        }
    }
    fn answer(&mut self, probe: &String) -> Option<String> {
        self.0.answer(probe)
    }
    fn close(&mut self, farewell: Farewell, _reason: &str) -> Option<String> {
        // The RFC 6455 codes the facade sends for these farewells.
        let code = match farewell {
            Farewell::Normal => 1000,
            Farewell::GoingAway => 1001,
            Farewell::Policy => 1008,
            Farewell::TryAgainLater => 1013,
            _ => 1011,
        };
        Some(format!("close {code}"))
    }
    fn len(message: &String) -> usize {
        message.len()
    }
}

fn closing_peer(code: u16) -> Fake {
    let (fake, peer) = pair(None);
    peer.tx.send(format!("close {code}")).unwrap();
    drop(peer);
    fake
}

#[tokio::test(start_paused = true)]
async fn fatal_versus_retryable_causes() {
    let results = vec![
        Err(Failure::Http {
            status: 503,
            retry_after: Some(30 * SEC),
        }),
        Err(Failure::Io(std::io::ErrorKind::ConnectionReset)),
        Ok(closing_peer(1001)),
        Ok(closing_peer(1013)),
        Ok(closing_peer(1008)),
    ];
    let config = config(KeepaliveConfig::default());
    let mut client = Supervisor::connect(
        &config,
        ClosingProbe(StringProbe::default()),
        factory(results),
    )
    .unwrap();
    let mut events = client.events().unwrap();
    let mut delays = Vec::new();
    loop {
        match events.recv().await.unwrap() {
            Event::Reconnecting { delay, .. } => delays.push(delay),
            Event::Disconnected(Failure::Closed { code: Some(1008) }) => break,
            _ => {}
        }
    }
    assert_eq!(
        closed(&client).await,
        CloseReason::Fatal(Box::new(Failure::Closed { code: Some(1008) }))
    );
    assert_eq!(delays.len(), 4, "503, reset, 1001 and 1013 retried");
    assert!(delays[0] >= 30 * SEC, "Retry-After is a floor");
    assert!(delays[3] >= 5 * SEC, "1013 sets the restart floor");

    let forbidden = vec![Err(Failure::Http {
        status: 403,
        retry_after: None,
    })];
    let (client, _events) = start(&config, forbidden);
    assert!(matches!(closed(&client).await, CloseReason::Fatal(_)));
    assert!(matches!(
        client.try_send("x".into()),
        Err(tether_heartbeat::Error::Closed { .. })
    ));
}

#[tokio::test(start_paused = true)]
async fn max_retries_gives_up_with_the_last_failure() {
    let mut config = config(KeepaliveConfig::default());
    let mut reconnect = ReconnectConfig::default();
    reconnect.set_max_retries(Some(3));
    config.set_reconnect(reconnect);
    let (client, _events) = start(&config, vec![]);
    assert_eq!(
        closed(&client).await,
        CloseReason::RetriesExhausted(Box::new(Failure::Io(std::io::ErrorKind::ConnectionRefused)))
    );
}

#[tokio::test(start_paused = true)]
async fn outbox_bounds_order_and_the_on_connected_hook() {
    let script = Script::new(50 * MS);
    let mut outbox = OutboxConfig::default();
    outbox.set_max_messages(5);
    let mut config = config(KeepaliveConfig::default());
    config.set_outbox(outbox);
    let results = vec![
        Err(Failure::Timeout),
        Err(Failure::Timeout),
        Ok(connected(&script)),
    ];
    let mut client = Supervisor::connect_with(
        &config,
        StringProbe::default(),
        factory(results),
        |mut transport: Fake| async move {
            transport
                .send("subscribe".to_string())
                .await
                .map_err(|e| Failure::from_error(&e))?;
            Ok(transport)
        },
        tether_heartbeat::DefaultRetryPolicy::new(5 * SEC),
    )
    .unwrap();
    let mut events = client.events().unwrap();
    for i in 0..5 {
        client.try_send(format!("m{i}")).unwrap();
    }
    // At the count limit: the sixth is refused, loudly.
    assert_eq!(
        client.try_send("m5".into()),
        Err(tether_heartbeat::Error::OutboxFull {
            limit: tether_heartbeat::OutboxLimit::Messages
        })
    );
    // The first connection of the client: `Connected`, not `Reconnected`.
    wait_for(&mut events, |e| *e == Event::Connected).await;
    tokio::time::sleep(SEC).await;
    let received = script.received.lock().unwrap().clone();
    assert_eq!(received, ["subscribe", "m0", "m1", "m2", "m3", "m4"]);
    assert_eq!(client.outbox_len(), 0);
}

#[tokio::test(start_paused = true)]
async fn outbox_messages_older_than_the_age_limit_are_dropped_and_reported() {
    let script = Script::new(50 * MS);
    let mut outbox = OutboxConfig::default();
    outbox.set_max_age(Some(10 * SEC));
    let mut config = config(KeepaliveConfig::default());
    config.set_outbox(outbox);
    let results = vec![
        Err(Failure::Http {
            status: 503,
            retry_after: Some(20 * SEC),
        }),
        Ok(connected(&script)),
    ];
    let (client, mut events) = start(&config, results);
    client.try_send("stale".into()).unwrap();
    tokio::time::sleep(15 * SEC).await;
    client.try_send("fresh".into()).unwrap();
    wait_for(&mut events, |e| *e == Event::OutboxExpired { messages: 1 }).await;
    tokio::time::sleep(SEC).await;
    assert_eq!(*script.received.lock().unwrap(), ["fresh"]);
}

#[tokio::test(start_paused = true)]
async fn server_answers_probes_at_once_and_strikes_a_ping_flood() {
    let (fake, mut peer) = pair(None);
    let mut responder = ResponderConfig::default();
    responder
        .set_min_probe_spacing(Some(SEC))
        .set_max_strikes(2);
    let mut config = SupervisorConfig::default();
    config
        .set_keepalive(None)
        .set_responder(responder)
        .set_seed(Some(3));
    let mut server =
        Supervisor::accept(&config, ClosingProbe(StringProbe::default()), fake).unwrap();
    let mut events = server.events().unwrap();
    let asked = Instant::now();
    peer.tx.send("ping 1".into()).unwrap();
    assert_eq!(peer.rx.recv().await.as_deref(), Some("pong 1"));
    assert_eq!(Instant::now(), asked, "answered at once");
    for n in 2..=4 {
        peer.tx.send(format!("ping {n}")).unwrap();
    }
    assert_eq!(
        wait_for(&mut events, |e| matches!(e, Event::Strike { .. }))
            .await
            .1,
        Event::Strike { strikes: 1 }
    );
    assert_eq!(
        wait_for(&mut events, |e| matches!(e, Event::Strike { .. }))
            .await
            .1,
        Event::Strike { strikes: 2 }
    );
    assert_eq!(closed(&server).await, CloseReason::ProbeFlood);
    assert!(peer.gate.is_dropped());
    assert_eq!(server.recv().await, None);
    // The last thing on the wire is the policy-violation close (RFC 6455 §7.4.1: 1008).
    let mut last = None;
    while let Some(message) = peer.rx.recv().await {
        last = Some(message);
    }
    assert_eq!(last.as_deref(), Some("close 1008"));
}

#[tokio::test(start_paused = true)]
async fn rfc6455_7_4_1_dead_link_sends_close_1011_when_the_writer_is_free() {
    let script = Script::new(50 * MS);
    let config = config(keepalive(5 * SEC, 2 * SEC));
    let mut client = Supervisor::connect(
        &config,
        ClosingProbe(StringProbe::default()),
        factory(vec![Ok(connected(&script))]),
    )
    .unwrap();
    let mut events = client.events().unwrap();
    wait_for(&mut events, |e| matches!(e, Event::ProbeAcked { .. })).await;
    script.answer.store(false, Ordering::SeqCst);
    let (dead_at, _) = wait_for(&mut events, |e| matches!(e, Event::Dead(_))).await;
    wait_for(&mut events, |e| matches!(e, Event::Disconnected(_))).await;
    // The peer never closes back: the transport is dropped after the 1 s grace.
    assert_eq!(Instant::now() - dead_at, SEC);
    assert_eq!(*script.received.lock().unwrap(), ["close 1011"]);
}

#[tokio::test(start_paused = true)]
async fn max_elapsed_gives_up_once_the_outage_is_old_enough() {
    let mut config = config(KeepaliveConfig::default());
    let mut reconnect = ReconnectConfig::default();
    reconnect
        .set_initial_delay(SEC)
        .set_max_delay(4 * SEC)
        .set_max_elapsed(Some(30 * SEC));
    config.set_reconnect(reconnect);
    let started = Instant::now();
    let (client, _events) = start(&config, vec![]);
    assert!(matches!(
        closed(&client).await,
        CloseReason::RetriesExhausted(_)
    ));
    let elapsed = Instant::now() - started;
    assert!(elapsed >= 30 * SEC && elapsed <= 34 * SEC, "{elapsed:?}");
}

#[tokio::test(start_paused = true)]
async fn drop_oldest_overflow_is_reported_not_silent() {
    let script = Script::new(50 * MS);
    let mut outbox = OutboxConfig::default();
    outbox
        .set_max_messages(2)
        .set_overflow(tether_heartbeat::Overflow::DropOldest);
    let mut config = config(KeepaliveConfig::default());
    config.set_outbox(outbox);
    let (client, mut events) = start(&config, vec![Err(Failure::Timeout), Ok(connected(&script))]);
    for i in 0..3 {
        client.try_send(format!("m{i}")).unwrap();
    }
    wait_for(&mut events, |e| *e == Event::OutboxOverflow { messages: 1 }).await;
    wait_for(&mut events, |e| *e == Event::Connected).await;
    tokio::time::sleep(SEC).await;
    assert_eq!(*script.received.lock().unwrap(), ["m1", "m2"]);
}

#[tokio::test(start_paused = true)]
async fn server_reaps_an_idle_peer_that_fails_its_probes_within_the_bound() {
    let (fake, peer) = pair(None);
    let mut config = SupervisorConfig::default();
    config
        .set_keepalive(Some(keepalive(20 * SEC, 10 * SEC)))
        .set_seed(Some(5));
    let opened = Instant::now();
    let server = Supervisor::accept(&config, StringProbe::default(), fake).unwrap();
    assert_eq!(closed(&server).await, CloseReason::HeartbeatTimeout);
    // First probe within one interval, two pong timeouts, one grace.
    assert!(Instant::now() - opened <= 20 * SEC + 2 * 10 * SEC + SEC);
    assert!(peer.gate.is_dropped());
}

#[tokio::test(start_paused = true)]
async fn dropping_the_supervisor_mid_probe_leaves_no_task_behind() {
    let metrics = tokio::runtime::Handle::current().metrics();
    let baseline = metrics.num_alive_tasks();
    let (fake, mut peer) = pair(None);
    let config = config(keepalive(5 * SEC, 2 * SEC));
    let (client, mut events) = start(&config, vec![Ok(fake)]);
    wait_for(&mut events, |e| matches!(e, Event::ProbeSent { .. })).await;
    assert!(peer.rx.recv().await.is_some(), "a probe is in flight");
    assert_eq!(metrics.num_alive_tasks(), baseline + 1);
    drop(client);
    tokio::task::yield_now().await;
    assert_eq!(metrics.num_alive_tasks(), baseline);
    assert!(peer.gate.is_dropped());
    assert!(peer.rx.recv().await.is_none(), "the transport is gone");
}

#[tokio::test(start_paused = true)]
async fn dropping_the_supervisor_mid_backoff_leaves_no_task_behind() {
    let metrics = tokio::runtime::Handle::current().metrics();
    let baseline = metrics.num_alive_tasks();
    let config = config(KeepaliveConfig::default());
    let (client, mut events) = start(&config, vec![]);
    wait_for(&mut events, |e| matches!(e, Event::Reconnecting { .. })).await;
    assert_eq!(metrics.num_alive_tasks(), baseline + 1);
    drop(client);
    tokio::task::yield_now().await;
    assert_eq!(metrics.num_alive_tasks(), baseline);
}

#[tokio::test(start_paused = true)]
async fn reconnect_now_pause_and_resume() {
    let script = Script::new(50 * MS);
    let results = vec![
        Ok(connected(&script)),
        Ok(connected(&script)),
        Ok(connected(&script)),
    ];
    let config = config(KeepaliveConfig::default());
    let (client, mut events) = start(&config, results);
    let mut state = client.state();
    state
        .wait_for(|s| matches!(s, LinkState::Open(_)))
        .await
        .unwrap();
    client.pause().await.unwrap();
    state.wait_for(|s| *s == LinkState::Paused).await.unwrap();
    client.try_send("queued while paused".into()).unwrap();
    // Paused for longer than backoff would wait, shorter than the outbox age limit.
    tokio::time::sleep(50 * SEC).await;
    assert_eq!(*state.borrow(), LinkState::Paused);
    client.resume().await.unwrap();
    let (_, event) = wait_for(&mut events, |e| matches!(e, Event::Reconnected { .. })).await;
    assert!(matches!(event, Event::Reconnected { downtime, .. } if downtime >= 50 * SEC));
    tokio::time::sleep(SEC).await;
    assert_eq!(*script.received.lock().unwrap(), ["queued while paused"]);
    let before = Instant::now();
    client.reconnect_now().await.unwrap();
    let (_, event) = wait_for(&mut events, |e| matches!(e, Event::Reconnected { .. })).await;
    assert!(
        matches!(event, Event::Reconnected { attempts: 0, .. }),
        "{event:?}"
    );
    assert!(Instant::now() - before <= SEC, "no backoff wait");
    assert_eq!(client.close().await, CloseReason::Local);
}

#[tokio::test(start_paused = true)]
async fn events_the_application_does_not_drain_are_dropped_and_counted() {
    let script = Script::new(50 * MS);
    let mut config = config(keepalive(5 * SEC, 2 * SEC));
    config.set_event_capacity(1);
    let (client, _events) = start(&config, vec![Ok(connected(&script))]);
    tokio::time::sleep(60 * SEC).await;
    // Connected fills the only slot; probes sent and acked since were dropped, and the
    // heartbeat went on regardless.
    assert!(client.events_dropped() >= 20, "{}", client.events_dropped());
    assert_eq!(*client.state().borrow(), LinkState::Open(Health::Healthy));
    assert!(script.probes.load(Ordering::SeqCst) >= 10);
}

/// When a client that was refused with `retry_after` connects again, and the delay it announced.
async fn reconnection_after_retry_after(retry_after: Duration) -> (Duration, Duration) {
    let script = Script::new(50 * MS);
    let mut config = config(KeepaliveConfig::default());
    let mut reconnect = ReconnectConfig::default();
    reconnect.set_max_retry_after(300 * SEC);
    config.set_reconnect(reconnect);
    let results = vec![
        Err(Failure::Http {
            status: 503,
            retry_after: Some(retry_after),
        }),
        Ok(connected(&script)),
    ];
    let started = Instant::now();
    let (_client, mut events) = start(&config, results);
    let (_, reconnecting) =
        wait_for(&mut events, |e| matches!(e, Event::Reconnecting { .. })).await;
    let Event::Reconnecting { delay, .. } = reconnecting else {
        unreachable!("matched above");
    };
    let (at, _) = wait_for(&mut events, |e| *e == Event::Connected).await;
    (at - started, delay)
}

#[tokio::test(start_paused = true)]
async fn rfc9110_10_2_3_retry_after_at_the_cap_is_honoured() {
    let cap = 300 * SEC;
    assert_eq!(reconnection_after_retry_after(cap).await, (cap, cap));
}

#[tokio::test(start_paused = true)]
async fn rfc9110_10_2_3_retry_after_past_the_cap_waits_the_cap_only() {
    let cap = 300 * SEC;
    assert_eq!(reconnection_after_retry_after(cap + SEC).await, (cap, cap));
    let a_year = 365 * 24 * 3600 * SEC;
    assert_eq!(reconnection_after_retry_after(a_year).await, (cap, cap));
}
