//! The client half of sessions (`tether::session::Session`) against a server scripted
//! message by message over loopback: every byte the client must send at each step of
//! docs/sessions.md §1-§6 is checked, and every answer a server may give is tried.

use std::time::Duration;

use tether::heartbeat::{KeepaliveConfig, ReconnectConfig, SupervisorConfig};
use tether::session::{EndpointConfig, LostReason, Origin, Session, SessionId, SUBPROTOCOL};
use tether::{Accept, ClientBuilder, CloseCode, Error, Message, Server, ServerSocket, StreamExt};
use tokio::sync::mpsc;

/// Every wait of these tests is bounded by this (an event, not a timing: a hang fails).
pub(crate) const BOUND: Duration = Duration::from_secs(10);

pub(crate) const ID: &str = "Vt2kQ0o1l9aC3x8dYh5S1w";

/// A server that hands every accepted connection to the test, selecting the session
/// subprotocol when `sessions` (and the client offered it).
pub(crate) async fn scripted(sessions: bool) -> (String, mpsc::Receiver<ServerSocket>) {
    let mut server = Server::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("ws://{}/", server.local_addr().expect("addr"));
    server.decide(move |request| {
        let offered = request.subprotocols().iter().any(|p| p == SUBPROTOCOL);
        Ok(if sessions && offered {
            Accept::new().with_subprotocol(SUBPROTOCOL)
        } else {
            Accept::new()
        })
    });
    let (tx, rx) = mpsc::channel(8);
    tokio::spawn(server.serve(move |ws, _| {
        let tx = tx.clone();
        async move {
            let _ = tx.send(ws).await;
        }
    }));
    (url, rx)
}

pub(crate) fn config() -> SupervisorConfig {
    let mut config = SupervisorConfig::default();
    let mut reconnect = ReconnectConfig::default();
    reconnect
        .set_initial_delay(Duration::from_millis(10))
        .set_max_delay(Duration::from_millis(50));
    config.set_reconnect(reconnect).set_seed(Some(7));
    config
}

/// A session whose first connection got `\0new` answered with [`ID`]: the client, the
/// server's end of that connection, and the connections to come.
pub(crate) async fn attached(endpoint: EndpointConfig) -> (Session, ServerSocket, Connections) {
    attached_with(&config(), endpoint).await
}

pub(crate) async fn attached_with(
    supervisor: &SupervisorConfig,
    endpoint: EndpointConfig,
) -> (Session, ServerSocket, Connections) {
    let (url, mut connections) = scripted(true).await;
    let session = ClientBuilder::new()
        .session(&url, supervisor, endpoint)
        .expect("session");
    let mut ws = next_connection(&mut connections).await;
    assert_eq!(ws.subprotocol(), Some(SUBPROTOCOL));
    // §4: the first message is `new`, and nothing else goes out before the answer.
    expect_text(&mut ws, "\0new").await;
    say(&mut ws, &format!("\0session {ID} 0")).await;
    (session, ws, connections)
}

pub(crate) type Connections = mpsc::Receiver<ServerSocket>;

pub(crate) async fn next_connection(rx: &mut mpsc::Receiver<ServerSocket>) -> ServerSocket {
    tokio::time::timeout(BOUND, rx.recv())
        .await
        .expect("a connection within the bound")
        .expect("server running")
}

/// The next text or binary message the scripted server receives.
pub(crate) async fn next_data(ws: &mut ServerSocket) -> Message {
    // One bound for the whole wait: probes arriving meanwhile do not extend it.
    let deadline = tokio::time::Instant::now() + BOUND;
    loop {
        let message = tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("a message within the bound")
            .expect("connection open")
            .expect("no error");
        if message.is_data() || matches!(message, Message::Close(_)) {
            return message;
        }
    }
}

/// Reads on after the peer's close, so the close echo is written and the stream ends.
pub(crate) async fn finish_close(ws: &mut ServerSocket) {
    let rest = tokio::time::timeout(BOUND, ws.next())
        .await
        .expect("the stream ends");
    assert!(
        matches!(rest, None | Some(Err(_))),
        "after the close: {rest:?}"
    );
}

/// The client's close frame, with `code`; then reads on until the stream ends.
pub(crate) async fn expect_close(ws: &mut ServerSocket, code: CloseCode) {
    match next_data(ws).await {
        Message::Close(Some(frame)) => assert_eq!(frame.code, code),
        other => panic!("expected close {}, got {other:?}", u16::from(code)),
    }
    finish_close(ws).await;
}

pub(crate) async fn expect_text(ws: &mut ServerSocket, want: &str) {
    assert_eq!(next_data(ws).await, Message::text(want.to_owned()));
}

pub(crate) async fn say(ws: &mut ServerSocket, text: &str) {
    ws.send(Message::text(text.to_owned())).await.expect("send");
}

#[tokio::test]
async fn sessions_md_1_a_server_that_does_not_select_the_subprotocol_ends_it_at_once_untried_again()
{
    let (url, mut connections) = scripted(false).await;
    let mut session = ClientBuilder::new()
        .session(&url, &config(), EndpointConfig::default())
        .expect("session");
    let mut ws = next_connection(&mut connections).await;
    assert_eq!(ws.subprotocol(), None);
    // §1: "it closes with 1000 ... and must not send session messages".
    expect_close(&mut ws, CloseCode::NORMAL).await;
    assert!(tokio::time::timeout(BOUND, session.recv())
        .await
        .expect("ends")
        .is_none());
    assert!(matches!(
        session.send(Message::text("x")).await,
        Err(Error::NoSessions)
    ));
    assert!(connections.try_recv().is_err(), "it connected again");
}

#[tokio::test]
async fn sessions_md_4_new_then_data_both_ways_with_the_server_given_id() {
    let (mut session, mut ws, _connections) = attached(EndpointConfig::default()).await;
    session.send(Message::text("hello")).await.expect("send");
    session
        .send(Message::binary(vec![0u8, 1]))
        .await
        .expect("send");
    expect_text(&mut ws, "hello").await;
    // §2: a payload starting with 0x00 is stuffed, and keeps its type.
    assert_eq!(next_data(&mut ws).await, Message::binary(vec![0u8, 0, 1]));
    say(&mut ws, "\0\0zero first").await;
    let received = tokio::time::timeout(BOUND, session.recv())
        .await
        .expect("reply");
    assert_eq!(received, Some(Ok(Message::text("\0zero first"))));
    assert_eq!(session.id(), SessionId::parse(ID));
    // §5: acks are due 200 ms after the first unreported message at the latest.
    expect_text(&mut ws, "\0ack 1").await;
    say(&mut ws, "\0ack 2").await;
    // §9: a ping is answered at once with our count.
    say(&mut ws, "\0ping 99 2").await;
    expect_text(&mut ws, "\0pong 99 1").await;
    assert_eq!(session.counts().acked, 2);
}

#[tokio::test]
async fn sessions_md_4_1_a_resume_resends_exactly_what_the_server_lacks_before_anything_new() {
    let (session, mut ws, mut connections) = attached(EndpointConfig::default()).await;
    for text in ["a1", "a2", "a3"] {
        session.send(Message::text(text)).await.expect("send");
    }
    say(&mut ws, "b1").await;
    for text in ["a1", "a2", "a3"] {
        expect_text(&mut ws, text).await;
    }
    // The connection dies with a1..a3 unacknowledged.
    drop(ws);
    let mut ws = next_connection(&mut connections).await;
    // "I have 1 of yours" (b1 arrived before the cut).
    expect_text(&mut ws, &format!("\0resume {ID} 1")).await;
    say(&mut ws, &format!("\0session {ID} 1")).await;
    session.send(Message::text("a4")).await.expect("send");
    // The server had a1: a2 and a3 again, then the new a4, nothing twice.
    for text in ["a2", "a3", "a4"] {
        expect_text(&mut ws, text).await;
    }
    assert_eq!(session.counts().sent, 4);
}

#[tokio::test]
async fn sessions_md_5_a_full_replay_buffer_holds_new_messages_back_until_acknowledged() {
    let mut endpoint = EndpointConfig::default();
    endpoint.set_max_replay_messages(4);
    let (session, mut ws, _connections) = attached(endpoint).await;
    for i in 1..=6 {
        session
            .send(Message::text(format!("m{i}")))
            .await
            .expect("send");
    }
    for i in 1..=4 {
        expect_text(&mut ws, &format!("m{i}")).await;
    }
    // The window is full: what the client writes next must be the pong, not m5.
    say(&mut ws, "\0ping 1 0").await;
    expect_text(&mut ws, "\0pong 1 0").await;
    say(&mut ws, "\0ack 2").await;
    expect_text(&mut ws, "m5").await;
    expect_text(&mut ws, "m6").await;
}

#[tokio::test]
async fn sessions_md_5_a_server_frozen_with_the_replay_buffer_full_is_still_probed_judged_dead_and_resumed(
) {
    let mut supervisor = config();
    supervisor.set_keepalive(Some(KeepaliveConfig::with_interval(
        Duration::from_millis(100),
        Some(Duration::from_millis(100)),
    )));
    let mut endpoint = EndpointConfig::default();
    endpoint.set_max_replay_messages(4);
    let (session, frozen, mut connections) = attached_with(&supervisor, endpoint).await;
    // The server reads nothing from here on: no acknowledgement, no pong. m1..m4 fill the
    // replay buffer, m5..m10 wait behind it, and the heartbeat's Pings must still get out.
    for i in 1..=10 {
        tokio::time::timeout(BOUND, session.send(Message::text(format!("m{i}"))))
            .await
            .expect("room for ten")
            .expect("send");
    }
    let mut ws = next_connection(&mut connections).await;
    expect_text(&mut ws, &format!("\0resume {ID} 0")).await;
    say(&mut ws, &format!("\0session {ID} 0")).await;
    for i in 1..=4 {
        expect_text(&mut ws, &format!("m{i}")).await;
    }
    // Each acknowledgement of four makes room for the next four.
    for i in 5..=10 {
        if i % 4 == 1 {
            say(&mut ws, &format!("\0ack {}", i - 1)).await;
        }
        expect_text(&mut ws, &format!("m{i}")).await;
    }
    drop(frozen);
}

#[tokio::test]
async fn sessions_md_5_try_send_refuses_past_the_window_with_full_and_flushed_waits_for_numbering()
{
    let mut supervisor = config();
    let mut outbox = tether::heartbeat::OutboxConfig::default();
    outbox.set_max_messages(3);
    supervisor.set_outbox(outbox);
    let mut endpoint = EndpointConfig::default();
    endpoint.set_max_replay_messages(2);
    let (session, mut ws, _connections) = attached_with(&supervisor, endpoint).await;
    for i in 1..=2 {
        session
            .try_send(Message::text(format!("m{i}")))
            .expect("room in the replay buffer");
    }
    for i in 1..=2 {
        expect_text(&mut ws, &format!("m{i}")).await;
    }
    // The replay buffer is full: three more wait for it (the outbox's limit), the next
    // one is refused.
    let mut accepted = 2;
    let refused = loop {
        match session.try_send(Message::text(format!("m{}", accepted + 1))) {
            Ok(()) => accepted += 1,
            Err(error) => break error,
        }
        assert!(accepted <= 2 + 3, "more than the outbox's limit waits");
        tokio::task::yield_now().await;
    };
    assert_eq!(accepted, 2 + 3);
    assert!(
        matches!(
            refused,
            Error::Session(tether::session::core::Error::Full {
                messages: 3,
                bytes: 6
            })
        ),
        "{refused:?}"
    );
    let flushed = session.flushed();
    tokio::pin!(flushed);
    assert!(
        tokio::time::timeout(Duration::from_millis(50), flushed.as_mut())
            .await
            .is_err(),
        "flushed before the pending messages were numbered"
    );
    // Each acknowledgement makes room for two more.
    for i in 3..=accepted {
        if i % 2 == 1 {
            say(&mut ws, &format!("\0ack {}", i - 1)).await;
        }
        expect_text(&mut ws, &format!("m{i}")).await;
    }
    tokio::time::timeout(BOUND, flushed)
        .await
        .expect("flushed once numbered")
        .expect("flushed");
}

/// docs/sessions.md §5: an ack due by count may wait for the application's next write,
/// but not for the ack timer: with nothing else to write, the link writes it on its next
/// pass. (The clock is paused: it moves only when every task waits, so an ack that waited
/// for its timer would arrive with the clock at the ack delay.)
#[tokio::test(start_paused = true)]
async fn sessions_md_5_an_ack_due_by_count_goes_out_without_a_write_and_before_its_timer() {
    let endpoint = EndpointConfig::default();
    let (mut session, mut ws, _connections) = attached(endpoint).await;
    let start = tokio::time::Instant::now();
    for i in 1..=endpoint.ack_every() {
        say(&mut ws, &format!("s{i}")).await;
    }
    expect_text(&mut ws, &format!("\0ack {}", endpoint.ack_every())).await;
    assert!(
        start.elapsed() < endpoint.ack_delay(),
        "the ack waited for its timer"
    );
    for i in 1..=endpoint.ack_every() {
        assert_eq!(
            session.recv().await,
            Some(Ok(Message::text(format!("s{i}"))))
        );
    }
}

/// docs/sessions.md §5: a lone message is acknowledged `ack_delay` after it arrived, with
/// nothing else happening: the link's timer, not a read or a write, brings the ack (the
/// link pumps before a read only when something is due). Paused clock: the ack arrives
/// with the clock at the delay, not before.
#[tokio::test(start_paused = true)]
async fn sessions_md_5_a_lone_message_is_acknowledged_by_the_ack_timer() {
    let endpoint = EndpointConfig::default();
    let (mut session, mut ws, _connections) = attached(endpoint).await;
    let start = tokio::time::Instant::now();
    say(&mut ws, "alone").await;
    assert_eq!(session.recv().await, Some(Ok(Message::text("alone"))));
    expect_text(&mut ws, "\0ack 1").await;
    assert!(
        start.elapsed() >= endpoint.ack_delay(),
        "acknowledged before the ack delay: {:?}",
        start.elapsed()
    );
}

/// The application's data does not cross the supervisor's outbox: the link writes it
/// itself, and must go on doing so (acks too) while the application reads nothing and the
/// supervisor has stopped reading for it.
#[tokio::test]
async fn sessions_md_5_a_client_whose_application_reads_nothing_still_acknowledges_and_sends() {
    let mut supervisor = config();
    supervisor.set_inbound_capacity(1);
    let (session, mut ws, _connections) =
        attached_with(&supervisor, EndpointConfig::default()).await;
    // s1 fills the application's queue (never read); s2 waits in the socket.
    say(&mut ws, "s1").await;
    say(&mut ws, "s2").await;
    // §5: s1 is acknowledged after the ack delay, though nothing else is written.
    expect_text(&mut ws, "\0ack 1").await;
    for i in 1..=3 {
        session
            .send(Message::text(format!("m{i}")))
            .await
            .expect("send");
    }
    for i in 1..=3 {
        expect_text(&mut ws, &format!("m{i}")).await;
    }
}

/// docs/sessions.md §8: `end` is numbered after every message sent before it, also those
/// still waiting for room in the replay buffer when the application ended.
#[tokio::test]
async fn sessions_md_8_end_goes_out_after_the_messages_waiting_for_the_replay_buffer() {
    let mut endpoint = EndpointConfig::default();
    endpoint.set_max_replay_messages(2);
    let (session, mut ws, _connections) = attached(endpoint).await;
    for i in 1..=4 {
        session
            .send(Message::text(format!("m{i}")))
            .await
            .expect("send");
    }
    session.end().await.expect("end");
    for i in 1..=2 {
        expect_text(&mut ws, &format!("m{i}")).await;
    }
    say(&mut ws, "\0ack 2").await;
    expect_text(&mut ws, "m3").await;
    expect_text(&mut ws, "m4").await;
    expect_text(&mut ws, "\0end 0").await;
}

#[tokio::test]
async fn an_outbox_that_drops_old_messages_never_drops_a_sessions_own() {
    let mut supervisor = config();
    let mut outbox = tether::heartbeat::OutboxConfig::default();
    outbox
        .set_max_age(Some(Duration::from_millis(20)))
        .set_overflow(tether::heartbeat::Overflow::DropOldest);
    supervisor.set_outbox(outbox);
    let (url, mut connections) = scripted(true).await;
    let session = ClientBuilder::new()
        .session(&url, &supervisor, EndpointConfig::default())
        .expect("session");
    let mut ws = next_connection(&mut connections).await;
    expect_text(&mut ws, "\0new").await;
    // Sent before the session is attached, they wait in the outbox past its maximum age.
    for text in ["a1", "a2"] {
        session.send(Message::text(text)).await.expect("send");
    }
    tokio::time::sleep(Duration::from_millis(60)).await;
    say(&mut ws, &format!("\0session {ID} 0")).await;
    for text in ["a1", "a2"] {
        expect_text(&mut ws, text).await;
    }
}

#[tokio::test]
async fn sessions_md_6_lost_in_the_answer_ends_the_session_typed_with_counts_and_no_reconnect() {
    let (mut session, mut ws, mut connections) = attached(EndpointConfig::default()).await;
    say(&mut ws, "one").await;
    let first = tokio::time::timeout(BOUND, session.recv())
        .await
        .expect("data");
    assert_eq!(first, Some(Ok(Message::text("one"))));
    drop(ws);
    let mut ws = next_connection(&mut connections).await;
    expect_text(&mut ws, &format!("\0resume {ID} 1")).await;
    say(&mut ws, "\0lost expired").await;
    let _ = ws.close(CloseCode(4001), "expired").await;
    let lost = tokio::time::timeout(BOUND, session.recv())
        .await
        .expect("the outcome")
        .expect("an outcome")
        .expect_err("lost");
    assert_eq!(lost.reason, LostReason::Expired);
    assert_eq!(lost.origin, Origin::Peer);
    assert_eq!(lost.received, 1);
    assert!(session.recv().await.is_none());
    assert!(matches!(
        session.send(Message::text("x")).await,
        Err(Error::Session(_))
    ));
    assert!(connections.try_recv().is_err(), "it resumed a lost session");
}

#[tokio::test]
async fn sessions_md_4_an_answer_with_another_id_is_lost_protocol_and_close_1002() {
    let (mut session, ws, mut connections) = attached(EndpointConfig::default()).await;
    drop(ws);
    let mut ws = next_connection(&mut connections).await;
    expect_text(&mut ws, &format!("\0resume {ID} 0")).await;
    say(&mut ws, "\0session AAAAAAAAAAAAAAAAAAAAAA 0").await;
    // §6: the side that found the fault says `lost protocol`, then closes with 1002.
    expect_text(&mut ws, "\0lost protocol").await;
    expect_close(&mut ws, CloseCode::PROTOCOL_ERROR).await;
    let lost = session.recv().await.expect("outcome").expect_err("lost");
    assert_eq!(
        (lost.reason, lost.origin),
        (LostReason::Protocol, Origin::Local)
    );
}

#[tokio::test]
async fn sessions_md_8_end_waits_for_the_last_message_then_both_ends_finish_with_1000() {
    let (mut session, mut ws, mut connections) = attached(EndpointConfig::default()).await;
    session.send(Message::text("last")).await.expect("send");
    // `end` waits until "last" is on a connection, then `end` goes out after it.
    session.end().await.expect("end");
    assert!(matches!(
        session.send(Message::text("late")).await,
        Err(Error::Session(tether::session::core::Error::Ended))
    ));
    expect_text(&mut ws, "last").await;
    expect_text(&mut ws, "\0end 0").await;
    say(&mut ws, "bye").await;
    say(&mut ws, "\0end 1").await;
    // Our end and data acknowledged: the client has everything and is finished.
    expect_text(&mut ws, "\0ack 1").await;
    say(&mut ws, "\0ack 1").await;
    expect_close(&mut ws, CloseCode::NORMAL).await;
    assert_eq!(session.recv().await, Some(Ok(Message::text("bye"))));
    assert_eq!(
        tokio::time::timeout(BOUND, session.recv())
            .await
            .expect("end"),
        None
    );
    assert!(session.is_finished());
    assert!(
        connections.try_recv().is_err(),
        "it reconnected after the end"
    );
}
