//! Supervised tether clients against tether servers on loopback TCP.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tether::heartbeat::{CloseReason, Event, Failure, LinkState};
use tether::http::{header, HeaderValue, StatusCode};
use tether::{connect_supervised, Message, PingProbe, Rejection, Server, TextProbe};
use tokio::time::Instant;

use super::support::{
    answering, client_config, closed_state, echo_supervised, next_event, Frozen, LIMIT,
};

/// A tether server on loopback whose first `freeze` connections stop answering after the
/// Upgrade (kept open, never read) and whose others are supervised echo connections.
async fn server(freeze: usize) -> (String, Frozen) {
    let server = Server::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("ws://{}/", server.local_addr().expect("addr"));
    let frozen = Frozen::default();
    let seen = Arc::new(AtomicUsize::new(0));
    let held = Arc::clone(&frozen);
    tokio::spawn(server.serve(move |ws, _conn| {
        let frozen = Arc::clone(&held);
        let nth = seen.fetch_add(1, Ordering::SeqCst);
        async move {
            if nth < freeze {
                frozen.lock().unwrap().push(ws);
                return;
            }
            let conn = ws
                .supervise(&answering(), PingProbe::new())
                .expect("supervise");
            echo_supervised(conn).await;
        }
    }));
    (url, frozen)
}

#[tokio::test]
async fn tcp_client_detects_a_frozen_server_closes_and_reconnects() {
    let (url, frozen) = server(1).await;
    let interval = Duration::from_millis(200);
    let timeout = Duration::from_millis(150);
    let mut client =
        connect_supervised(&url, &client_config(interval, timeout)).expect("supervised client");
    let mut events = client.events().expect("events");
    next_event(&mut events, |e| *e == Event::Connected).await;
    let connected = Instant::now();
    next_event(&mut events, |e| {
        *e == Event::Dead(CloseReason::HeartbeatTimeout)
    })
    .await;
    let detected = connected.elapsed();
    // Real time: allow the scheduler some slack past interval + two timeouts.
    assert!(detected >= 2 * timeout, "dead too early: {detected:?}");
    assert!(
        detected < interval + 2 * timeout + Duration::from_secs(1),
        "{detected:?}"
    );
    next_event(&mut events, |e| matches!(e, Event::Reconnected { .. })).await;
    client.try_send(Message::text("after")).expect("outbox");
    let echoed = tokio::time::timeout(LIMIT, client.recv()).await;
    assert_eq!(echoed.expect("echo in time"), Some(Message::text("after")));
    assert_eq!(frozen.lock().unwrap().len(), 1);
    assert_eq!(client.close().await, CloseReason::Local);
}

/// A server that refuses every Upgrade with `status` (and `Retry-After`, if given).
async fn refusing(status: StatusCode, retry_after: Option<&'static str>) -> String {
    let mut server = Server::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("ws://{}/", server.local_addr().expect("addr"));
    server.decide(move |_| {
        let rejection = Rejection::new(status);
        Err(match retry_after {
            Some(after) => {
                rejection.with_header(header::RETRY_AFTER, HeaderValue::from_static(after))
            }
            None => rejection,
        })
    });
    tokio::spawn(server.serve(|_ws, _conn| async {}));
    url
}

#[tokio::test]
async fn a_503_with_retry_after_is_retried_no_sooner_than_the_server_asked() {
    let url = refusing(StatusCode::SERVICE_UNAVAILABLE, Some("2")).await;
    let config = client_config(Duration::from_secs(1), Duration::from_secs(1));
    let mut client = connect_supervised(&url, &config).expect("supervised client");
    let mut events = client.events().expect("events");
    let failure = next_event(&mut events, |e| matches!(e, Event::Disconnected(_))).await;
    assert_eq!(
        failure,
        Event::Disconnected(Failure::Http {
            status: 503,
            retry_after: Some(Duration::from_secs(2))
        })
    );
    let Event::Reconnecting { delay, .. } =
        next_event(&mut events, |e| matches!(e, Event::Reconnecting { .. })).await
    else {
        unreachable!()
    };
    assert!(delay >= Duration::from_secs(2), "{delay:?}");
    drop(client);
}

#[tokio::test]
async fn a_403_refusal_is_fatal_and_stops_the_client() {
    let url = refusing(StatusCode::FORBIDDEN, None).await;
    let config = client_config(Duration::from_secs(1), Duration::from_secs(1));
    let client = connect_supervised(&url, &config).expect("supervised client");
    let closed = closed_state(client.state()).await;
    assert_eq!(
        closed,
        LinkState::Closed(CloseReason::Fatal(Box::new(Failure::Http {
            status: 403,
            retry_after: None
        })))
    );
    assert!(matches!(
        client.try_send(Message::text("late")),
        Err(tether::heartbeat::Error::Closed { .. })
    ));
}

#[tokio::test]
async fn an_invalid_url_is_refused_before_anything_is_spawned() {
    let config = client_config(Duration::from_secs(1), Duration::from_secs(1));
    assert!(matches!(
        connect_supervised("http://example.test/", &config),
        Err(tether::Error::InvalidUrl { .. })
    ));
    let mut invalid = config.clone();
    invalid.set_inbound_capacity(0);
    assert!(matches!(
        connect_supervised("ws://127.0.0.1:1/", &invalid),
        Err(tether::Error::Heartbeat(_))
    ));
}

#[tokio::test]
async fn agreed_text_probe_over_tcp_measures_round_trips_and_keeps_pongs_from_the_app() {
    let server = Server::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("ws://{}/", server.local_addr().expect("addr"));
    tokio::spawn(server.serve(|ws, _conn| async move {
        let conn = ws
            .supervise(&answering(), TextProbe::default())
            .expect("supervise");
        echo_supervised(conn).await;
    }));
    let config = client_config(Duration::from_millis(100), Duration::from_millis(500));
    let mut client = tether::ClientBuilder::new()
        .connect_supervised(&url, &config, TextProbe::default())
        .expect("supervised client");
    let mut events = client.events().expect("events");
    for _ in 0..3 {
        next_event(&mut events, |e| {
            matches!(e, Event::ProbeAcked { rtt: Some(_), .. })
        })
        .await;
    }
    client.try_send(Message::text("hello")).expect("outbox");
    // Only the application's message comes back: no "ping"/"pong" text reached either app.
    let echoed = tokio::time::timeout(LIMIT, client.recv()).await;
    assert_eq!(echoed.expect("echo in time"), Some(Message::text("hello")));
    assert_eq!(client.close().await, CloseReason::Local);
}
