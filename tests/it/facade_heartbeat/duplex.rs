//! Supervised tether clients and servers over in-memory pipes, on a paused clock.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tether::heartbeat::{
    CloseReason, Event, Failure, LinkState, Probe, ReconnectConfig, SupervisorConfig,
};
use tether::{accept, Accept, ClientBuilder, CloseCode, Message, PingProbe, TextProbe};
use tokio::io::{AsyncWriteExt as _, DuplexStream};
use tokio::time::Instant;

use super::support::{
    answering, client_config, closed_state, drain_until_close, echo_supervised, next_event, Frozen,
    LIMIT,
};

const URL: &str = "ws://heartbeat.test/";

/// Opens a pipe whose server end is accepted by tether and supervised with `probe`, the
/// connection echoing what it receives.
fn healthy<P>(probe: P) -> impl FnMut() -> std::future::Ready<std::io::Result<DuplexStream>>
where
    P: Probe<Message> + Clone,
{
    move || {
        let (client_io, server_io) = tokio::io::duplex(64 << 10);
        let probe = probe.clone();
        tokio::spawn(async move {
            let ws = accept(server_io).await.expect("server handshake");
            let conn = ws.supervise(&answering(), probe).expect("supervise");
            echo_supervised(conn).await;
        });
        std::future::ready(Ok(client_io))
    }
}

async fn round_trip_and_echo<P>(probe: P)
where
    P: Probe<Message> + Clone,
{
    let config = client_config(Duration::from_secs(5), Duration::from_secs(2));
    let mut client = ClientBuilder::new()
        .supervise_with(URL, &config, probe.clone(), healthy(probe))
        .expect("supervised client");
    let mut events = client.events().expect("events");
    client.try_send(Message::text("hello")).expect("outbox");
    let echoed = tokio::time::timeout(LIMIT, client.recv()).await;
    assert_eq!(echoed.expect("echo in time"), Some(Message::text("hello")));
    for _ in 0..3 {
        let acked = next_event(&mut events, |e| matches!(e, Event::ProbeAcked { .. })).await;
        let Event::ProbeAcked { rtt, timeout, .. } = acked else {
            unreachable!()
        };
        assert!(rtt.is_some(), "a fresh probe gives an rtt sample");
        assert!(timeout >= Duration::from_secs(2), "floor kept: {timeout:?}");
    }
    assert!(matches!(
        *client.state().borrow(),
        LinkState::Open(tether::heartbeat::Health::Healthy)
    ));
    assert_eq!(client.close().await, CloseReason::Local);
}

#[tokio::test(start_paused = true)]
async fn rfc6455_5_5_2_ping_probe_round_trips_through_the_peers_auto_pong() {
    round_trip_and_echo(PingProbe::new()).await;
}

#[tokio::test(start_paused = true)]
async fn agreed_text_probe_is_answered_by_the_supervised_server_and_not_delivered() {
    // The server's application sees only "hello": its supervisor answered "ping <n>"
    // itself, and the client's supervisor consumed the "pong <n>" answers.
    round_trip_and_echo(TextProbe::default()).await;
}

#[tokio::test(start_paused = true)]
async fn ping_probe_server_answers_text_pings_of_a_browser_like_client() {
    // A server probing with Ping frames that also answers the agreed text message.
    let config = client_config(Duration::from_secs(5), Duration::from_secs(2));
    let mut client = ClientBuilder::new()
        .supervise_with(
            URL,
            &config,
            TextProbe::default(),
            healthy(PingProbe::new().answer_text("ping", "pong")),
        )
        .expect("supervised client");
    let mut events = client.events().expect("events");
    let acked = next_event(&mut events, |e| matches!(e, Event::ProbeAcked { .. })).await;
    assert!(matches!(acked, Event::ProbeAcked { rtt: Some(_), .. }));
    // Text that looks like a pong is application data on that server, echoed back; on
    // this client it is an unsolicited pong, consumed (never delivered, never proof).
    client.try_send(Message::text("pong 1")).expect("outbox");
    client.try_send(Message::text("after")).expect("outbox");
    let echoed = tokio::time::timeout(LIMIT, client.recv()).await;
    assert_eq!(echoed.expect("echo in time"), Some(Message::text("after")));
    next_event(&mut events, |e| *e == Event::MismatchedPong).await;
}

#[tokio::test(start_paused = true)]
async fn a_server_that_stops_answering_is_dead_within_the_bound_then_the_client_reconnects() {
    let interval = Duration::from_secs(4);
    let timeout = Duration::from_secs(1);
    let frozen: Frozen<DuplexStream> = Frozen::default();
    let opened = Arc::new(AtomicUsize::new(0));
    let open = {
        let frozen = Arc::clone(&frozen);
        let opened = Arc::clone(&opened);
        let mut healthy = healthy(PingProbe::new());
        move || {
            if opened.fetch_add(1, Ordering::SeqCst) > 0 {
                return healthy();
            }
            // The first server completes the Upgrade, then never reads again: no pong, no
            // close answer, the pipe stays open.
            let (client_io, server_io) = tokio::io::duplex(64 << 10);
            let frozen = Arc::clone(&frozen);
            tokio::spawn(async move {
                let ws = accept(server_io).await.expect("server handshake");
                frozen.lock().unwrap().push(ws);
            });
            std::future::ready(Ok(client_io))
        }
    };
    let config = client_config(interval, timeout);
    let mut client = ClientBuilder::new()
        .supervise_with(URL, &config, PingProbe::new(), open)
        .expect("supervised client");
    let mut events = client.events().expect("events");
    next_event(&mut events, |e| *e == Event::Connected).await;
    let connected = Instant::now();

    let dead = next_event(&mut events, |e| matches!(e, Event::Dead(_))).await;
    let detected = connected.elapsed();
    assert_eq!(dead, Event::Dead(CloseReason::HeartbeatTimeout));
    // Two consecutive misses of the 1 s floor after the first probe, which goes out within
    // one interval: never before two timeouts, never after interval + two timeouts.
    assert!(detected >= 2 * timeout, "dead too early: {detected:?}");
    assert!(
        detected <= interval + 2 * timeout,
        "dead too late: {detected:?}"
    );

    let Event::Reconnected { downtime, .. } =
        next_event(&mut events, |e| matches!(e, Event::Reconnected { .. })).await
    else {
        unreachable!()
    };
    // The grace for the close (200 ms) plus at most one backoff window (100 ms).
    assert!(downtime <= Duration::from_millis(300), "{downtime:?}");
    client.try_send(Message::text("after")).expect("outbox");
    let echoed = tokio::time::timeout(LIMIT, client.recv()).await;
    assert_eq!(echoed.expect("echo in time"), Some(Message::text("after")));
    assert_eq!(opened.load(Ordering::SeqCst), 2);

    // The frozen server, read at last: the probes it never answered, then 1011.
    let mut ws = frozen.lock().unwrap().pop().expect("frozen server");
    let (code, pings) = drain_until_close(&mut ws).await;
    assert_eq!(code, Some(1011));
    assert_eq!(pings, 2, "one probe, one extra probe when suspect");
}

#[tokio::test(start_paused = true)]
async fn the_server_side_keepalive_reaps_a_silent_client_within_its_bound() {
    let interval = Duration::from_secs(4);
    let timeout = Duration::from_secs(1);
    let grace = Duration::from_millis(500);
    let (client_io, server_io) = tokio::io::duplex(64 << 10);
    let mut config: SupervisorConfig = client_config(interval, timeout);
    config.set_close_grace(grace);
    let server = tokio::spawn(async move {
        let ws = accept(server_io).await.expect("server handshake");
        ws.supervise(&config, PingProbe::new()).expect("supervise")
    });
    // The client completes the Upgrade, then never reads: it answers nothing.
    let mut client = ClientBuilder::new()
        .handshake(client_io, URL)
        .await
        .expect("client handshake");
    let conn = server.await.expect("server task");
    let opened = Instant::now();
    let closed = closed_state(conn.state()).await;
    let reaped = opened.elapsed();
    assert_eq!(closed, LinkState::Closed(CloseReason::HeartbeatTimeout));
    assert!(reaped >= 2 * timeout, "reaped too early: {reaped:?}");
    assert!(
        reaped <= interval + 2 * timeout + grace,
        "reaped too late: {reaped:?}"
    );
    let (code, pings) = drain_until_close(&mut client).await;
    assert_eq!(code, Some(1011));
    assert_eq!(pings, 2);
}

/// Opens pipes whose server end runs `serve` on the raw stream after the Upgrade.
fn raw_after_upgrade<F, Fut>(
    serve: F,
) -> impl FnMut() -> std::future::Ready<std::io::Result<DuplexStream>>
where
    F: Fn(DuplexStream) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    move || {
        let (client_io, server_io) = tokio::io::duplex(4096);
        let serve = serve.clone();
        tokio::spawn(async move {
            let config = tether::handshake::Config::default();
            let timeout = Some(tether::handshake::DEFAULT_HANDSHAKE_TIMEOUT);
            let served =
                tether::handshake::server(server_io, &config, timeout, |_| Ok(Accept::new())).await;
            if let Ok(tether::handshake::Served::WebSocket(io, _)) = served {
                serve(io).await;
            }
        });
        std::future::ready(Ok(client_io))
    }
}

#[tokio::test(start_paused = true)]
async fn rfc6455_5_1_a_server_that_masks_its_frames_is_a_fatal_failure_not_a_retry() {
    // RFC 6455 §5.1: "A client MUST close a connection if it detects a masked frame."
    // Reconnecting would meet the same server: the supervisor stops instead.
    let open = raw_after_upgrade(|mut io: DuplexStream| async move {
        let masked_hi = [0x81, 0x82, 1, 2, 3, 4, b'h' ^ 1, b'i' ^ 2];
        io.write_all(&masked_hi).await.expect("frame written");
        // The pipe stays open: the client's verdict, not an end of stream, stops it.
        std::future::pending::<()>().await;
    });
    let config = client_config(Duration::from_secs(5), Duration::from_secs(2));
    let client = ClientBuilder::new()
        .supervise_with(URL, &config, PingProbe::new(), open)
        .expect("supervised client");
    let closed = closed_state(client.state()).await;
    assert!(
        matches!(
            &closed,
            LinkState::Closed(CloseReason::Fatal(failure))
                if matches!(**failure, Failure::Other { retryable: false, .. })
        ),
        "{closed:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn rfc6455_7_4_1_a_policy_close_is_fatal_and_a_try_again_later_close_waits_its_floor() {
    for (code, fatal) in [
        (CloseCode::POLICY_VIOLATION, true),
        (CloseCode::TRY_AGAIN_LATER, false),
    ] {
        let open = move || {
            let (client_io, server_io) = tokio::io::duplex(4096);
            tokio::spawn(async move {
                let mut ws = accept(server_io).await.expect("server handshake");
                let _ = ws.close(code, "go away").await;
            });
            std::future::ready(Ok(client_io))
        };
        let mut config = client_config(Duration::from_secs(5), Duration::from_secs(2));
        let mut reconnect = ReconnectConfig::default();
        reconnect
            .set_initial_delay(Duration::from_millis(100))
            .set_restart_floor(Duration::from_secs(3));
        config.set_reconnect(reconnect);
        let mut client = ClientBuilder::new()
            .supervise_with(URL, &config, PingProbe::new(), open)
            .expect("supervised client");
        let mut events = client.events().expect("events");
        let closed_by_peer = Failure::Closed { code: Some(code.0) };
        if fatal {
            let closed = closed_state(client.state()).await;
            assert_eq!(
                closed,
                LinkState::Closed(CloseReason::Fatal(Box::new(closed_by_peer)))
            );
        } else {
            next_event(&mut events, |e| {
                *e == Event::Disconnected(closed_by_peer.clone())
            })
            .await;
            let Event::Reconnecting { delay, .. } =
                next_event(&mut events, |e| matches!(e, Event::Reconnecting { .. })).await
            else {
                unreachable!()
            };
            assert!(delay >= Duration::from_secs(3), "{delay:?}");
        }
    }
}
