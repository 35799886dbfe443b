//! A client session's application task reading the connection itself while it waits in
//! `recv` (one task poll per message instead of two): order against what the link's task
//! read, wake-ups it cannot use passed on, and the heartbeat still told of everything it
//! reads, against a server scripted over loopback.

use std::time::Duration;

use futures::FutureExt;
use tether::heartbeat::{Event, KeepaliveConfig, LinkState};
use tether::session::{EndpointConfig, Session};
use tether::{CloseCode, Message, ServerSocket, SinkExt, StreamExt};

use crate::session_client::{
    attached, attached_with, config, expect_close, expect_text, say, Connections, BOUND,
};

/// A session whose heartbeat probes every 500 ms (pong timeout 500 ms, round-trip deadline
/// 1 s), attached as in `session_client.rs`.
async fn probed() -> (Session, ServerSocket, Connections) {
    let mut supervisor = config();
    supervisor.set_keepalive(Some(KeepaliveConfig::with_interval(
        Duration::from_millis(500),
        Some(Duration::from_millis(500)),
    )));
    attached_with(&supervisor, EndpointConfig::default()).await
}

/// On two worker threads the link's task and the application's task both read: the
/// application pauses now and then, so the link's task reads ahead into the supervisor's
/// inbox, and the application reads the connection itself again once it took all of it.
/// 20 000 messages arrive exactly once and in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_the_link_and_the_application_read_arrive_once_in_order_on_two_threads() {
    const MESSAGES: usize = 20_000;
    let (mut session, mut ws, _connections) = attached(EndpointConfig::default()).await;
    let server = tokio::spawn(async move {
        for i in 0..MESSAGES {
            ws.feed(Message::text(format!("s{i}"))).await.expect("feed");
            if i % 64 == 63 {
                ws.flush().await.expect("flush");
            }
        }
        ws.flush().await.expect("flush");
        // Open until the client has everything.
        ws
    });
    for i in 0..MESSAGES {
        let message = tokio::time::timeout(BOUND, session.recv())
            .await
            .expect("within the bound")
            .expect("open")
            .expect("not lost");
        assert_eq!(message, Message::text(format!("s{i}")), "message {i}");
        if i % 7 == 0 {
            tokio::task::yield_now().await;
        }
    }
    drop(server.await.expect("server"));
}

/// The application's task reads the server's data and `end` itself, leaves the end's
/// answer and then the close handshake to the link's task, and its last `recv` ends as
/// soon as that handshake is done, not at a timer. Paused clock: it moves only when every
/// task waits, so a `recv` left for a timer (the close grace, 1 s) would end with the
/// clock moved. (The unit tests in `session/link.rs` hold the hand-over of a wake-up.)
#[tokio::test(start_paused = true)]
async fn a_recv_waiting_when_the_session_finishes_ends_with_the_close_not_a_timer() {
    let (mut session, mut ws, _connections) = attached(EndpointConfig::default()).await;
    session.end().await.expect("end");
    let start = tokio::time::Instant::now();
    let server = async move {
        expect_text(&mut ws, "\0end 0").await;
        say(&mut ws, "bye").await;
        say(&mut ws, "\0end 0").await;
        // docs/sessions.md §8: the peer's end is acknowledged at once, then, finished, the
        // client closes with 1000.
        expect_text(&mut ws, "\0ack 1").await;
        expect_close(&mut ws, CloseCode::NORMAL).await;
    };
    let client = async {
        assert_eq!(session.recv().await, Some(Ok(Message::text("bye"))));
        assert_eq!(session.recv().await, None);
    };
    tokio::time::timeout(BOUND, async { tokio::join!(server, client) })
        .await
        .expect("within the bound");
    assert!(session.is_finished());
    assert!(
        start.elapsed() < Duration::from_millis(100),
        "the last recv waited for a timer: {:?}",
        start.elapsed()
    );
}

/// The heartbeat counts what the application's task reads as inbound activity. With the
/// default verdict (`Activity`), data arriving after a probe stretches that probe's wait
/// for its pong from the pong timeout (500 ms here) to the round-trip deadline (1 s): a
/// server that sends data every 300 ms but answers probes only every 900 ms (it reads its
/// socket that seldom) is never judged dead while the application reads every message
/// itself. Paused clock.
#[tokio::test(start_paused = true)]
async fn data_the_application_reads_itself_stretches_the_wait_for_late_pongs() {
    let (mut session, mut ws, mut connections) = probed().await;
    let state = session.state();
    let mut events = session.events().expect("events");
    let server = async move {
        for i in 0..30 {
            say(&mut ws, &format!("s{i}")).await;
            tokio::time::sleep(Duration::from_millis(300)).await;
            if i % 3 == 2 {
                // Reading answers the probes that arrived meanwhile.
                while let Some(Some(_)) = ws.next().now_or_never() {}
            }
        }
        ws
    };
    let client = async {
        for i in 0..30 {
            assert_eq!(
                session.recv().await,
                Some(Ok(Message::text(format!("s{i}"))))
            );
        }
    };
    let (ws, ()) = tokio::time::timeout(BOUND, async { tokio::join!(server, client) })
        .await
        .expect("within the bound");
    assert!(
        connections.try_recv().is_err(),
        "judged dead and reconnected"
    );
    assert!(
        matches!(*state.borrow(), LinkState::Open(_)),
        "{:?}",
        *state.borrow()
    );
    let mut answered = 0;
    while let Ok(event) = events.try_recv() {
        assert!(!matches!(event, Event::Suspect { .. }), "{event:?}");
        answered += usize::from(matches!(event, Event::ProbeAcked { .. }));
    }
    assert!(answered >= 5, "only {answered} probes answered");
    drop(ws);
}

/// A Pong the application's task reads (it waits in `recv`; the server sends nothing but
/// the answers to probes) reaches the heartbeat, which counts its probe answered.
#[tokio::test(start_paused = true)]
async fn a_pong_the_application_reads_answers_the_heartbeats_probe() {
    let (mut session, mut ws, _connections) = probed().await;
    let mut events = session.events().expect("events");
    // Reading answers each Ping with a Pong.
    let server = async move { while let Some(Ok(_)) = ws.next().await {} };
    let acked = async {
        while let Some(event) = events.recv().await {
            if matches!(event, Event::ProbeAcked { .. }) {
                return;
            }
        }
        panic!("the events ended");
    };
    let outcome = tokio::time::timeout(BOUND, async {
        tokio::select! {
            () = server => panic!("the connection ended"),
            got = session.recv() => panic!("the server sent nothing, yet: {got:?}"),
            () = acked => {}
        }
    })
    .await;
    outcome.expect("a probe answered within the bound");
}

/// `recv` is cancel safe: dropped while it waits (reading the connection itself), it took
/// nothing, and what arrives meanwhile reaches the link's task, then the next `recv`. A
/// `select!` that gives up on `recv` every millisecond still gets all 200 messages once, in
/// order. Paused clock.
#[tokio::test(start_paused = true)]
async fn a_recv_dropped_while_it_waits_takes_nothing_and_loses_nothing() {
    let (mut session, mut ws, _connections) = attached(EndpointConfig::default()).await;
    let server = async move {
        for i in 0..200 {
            say(&mut ws, &format!("s{i}")).await;
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
        ws
    };
    let client = async {
        let mut got = Vec::new();
        let mut gave_up = 0;
        while got.len() < 200 {
            tokio::select! {
                message = session.recv() => got.push(message),
                () = tokio::time::sleep(Duration::from_millis(1)) => gave_up += 1,
            }
        }
        (got, gave_up)
    };
    let (ws, (got, gave_up)) = tokio::time::timeout(BOUND, async { tokio::join!(server, client) })
        .await
        .expect("within the bound");
    let expected: Vec<_> = (0..200)
        .map(|i| Some(Ok(Message::text(format!("s{i}")))))
        .collect();
    assert_eq!(got, expected);
    assert!(gave_up >= 200, "recv was dropped only {gave_up} times");
    drop(ws);
}

/// A `recv` dropped while it waits hands the connection back to the link's task: an
/// application that then stops receiving for seconds still has its heartbeat's pongs read
/// as they arrive (by the link's task, woken by the connection; not at its next timer),
/// and the link is not judged dead. Paused clock: loopback takes no time on it, so every
/// round trip measures zero unless a pong waited to be read. Probes every 500 ms.
#[tokio::test(start_paused = true)]
async fn a_recv_dropped_while_it_waits_gives_the_connection_back_to_the_link() {
    let (mut session, mut ws, mut connections) = probed().await;
    let mut events = session.events().expect("events");
    // Reading answers each Ping with a Pong.
    let server = tokio::spawn(async move { while let Some(Ok(_)) = ws.next().await {} });
    let waited = tokio::time::timeout(Duration::from_millis(1), session.recv()).await;
    assert!(waited.is_err(), "the server sent nothing");
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(
        connections.try_recv().is_err(),
        "judged dead and reconnected"
    );
    let mut answered = 0;
    while let Ok(event) = events.try_recv() {
        if let Event::ProbeAcked { rtt, .. } = event {
            assert_eq!(rtt, Some(Duration::ZERO), "a pong waited to be read");
            answered += 1;
        }
    }
    assert!(answered >= 5, "only {answered} probes answered");
    server.abort();
}
