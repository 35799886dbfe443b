//! The server half of sessions (`tether::session::Sessions`) over loopback: the facade's
//! client against it end to end, and a client that speaks the protocol by hand for every
//! answer and bound of docs/sessions.md §4-§7 (expired, unknown, limit, replaced, protocol,
//! handshake timeout).

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tether::session::{
    select, EndpointConfig, LostReason, Origin, ServerSession, SessionServerConfig, Sessions,
    SUBPROTOCOL,
};
use tether::{ClientBuilder, CloseCode, Message, Server, StreamExt};
use tokio::sync::mpsc;

use crate::cutting_proxy::support::{CutSchedule, CuttingProxy};

/// Every wait is bounded by this (an event, not a timing: a hang fails).
pub(crate) const BOUND: Duration = Duration::from_secs(10);

pub(crate) type RawSocket = tether::WebSocket<tether::MaybeTls<tokio::net::TcpStream>>;

/// How a server session ended, as its handler saw it.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// The client ended; the handler ended too.
    Ended,
    /// Lost, for this reason.
    Lost(LostReason),
}

/// An echo server with sessions; each session's outcome is reported on the channel.
async fn echo_server(config: SessionServerConfig) -> (String, Sessions, mpsc::Receiver<Outcome>) {
    let (tx, rx) = mpsc::channel(256);
    let sessions = Sessions::new(config, move |session| echo(session, tx.clone())).expect("config");
    (serve(&sessions).await, sessions, rx)
}

/// A server for `sessions`; its URL.
pub(crate) async fn serve(sessions: &Sessions) -> String {
    let mut server = Server::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("ws://{}/", server.local_addr().expect("addr"));
    server.decide(|request| Ok(select(request)));
    let serving = sessions.clone();
    tokio::spawn(server.serve(move |ws, _| serving.clone().attach(ws)));
    url
}

async fn echo(mut session: ServerSession, outcomes: mpsc::Sender<Outcome>) {
    let outcome = loop {
        match session.next().await {
            Some(Ok(message)) => {
                if session.send(message).await.is_err() {
                    break Outcome::Lost(session.lost().map_or(LostReason::Protocol, |l| l.reason));
                }
            }
            Some(Err(lost)) => break Outcome::Lost(lost.reason),
            None => {
                session.end();
                break Outcome::Ended;
            }
        }
    };
    let _ = outcomes.send(outcome).await;
}

pub(crate) async fn bounded<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(BOUND, future)
        .await
        .expect("within the bound")
}

/// A WebSocket offering the subprotocol, to speak the protocol by hand.
pub(crate) async fn raw(url: &str) -> RawSocket {
    let ws = ClientBuilder::new()
        .subprotocol(SUBPROTOCOL)
        .connect(url)
        .await
        .expect("connect");
    assert_eq!(ws.subprotocol(), Some(SUBPROTOCOL));
    ws
}

pub(crate) async fn say<S>(ws: &mut tether::WebSocket<S>, text: &str)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    ws.send(Message::text(text.to_owned())).await.expect("send");
}

/// The next text message, or the close (as `close <code>`).
pub(crate) async fn heard<S>(ws: &mut tether::WebSocket<S>) -> String
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    loop {
        match bounded(ws.next()).await {
            Some(Ok(Message::Text(text))) => return text.to_string(),
            Some(Ok(Message::Close(frame))) => {
                return format!("close {}", frame.map_or(1005, |f| f.code.0))
            }
            Some(Ok(_)) => continue,
            Some(Err(err)) => return format!("error {err}"),
            None => return "end".to_owned(),
        }
    }
}

/// `\0new`, and the id of the server's `\0session <id> 0`.
pub(crate) async fn open<S>(ws: &mut tether::WebSocket<S>) -> String
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    say(ws, "\0new").await;
    let answer = heard(ws).await;
    let id = answer
        .strip_prefix("\0session ")
        .and_then(|rest| rest.strip_suffix(" 0"))
        .unwrap_or_else(|| panic!("not a session answer: {answer:?}"));
    id.to_owned()
}

#[tokio::test]
async fn sessions_md_8_the_facade_client_and_server_echo_both_ways_and_finish() {
    let (url, sessions, mut outcomes) = echo_server(SessionServerConfig::default()).await;
    let mut session = ClientBuilder::new()
        .session(&url, &Default::default(), EndpointConfig::default())
        .expect("session");
    for i in 0..200 {
        session
            .send(Message::text(format!("m{i}")))
            .await
            .expect("send");
    }
    session
        .send(Message::binary(vec![0u8, 7]))
        .await
        .expect("send");
    session.end().await.expect("end");
    let mut echoed = Vec::new();
    while let Some(message) = bounded(session.recv()).await {
        echoed.push(message.expect("not lost"));
    }
    let mut expected: Vec<Message> = (0..200).map(|i| Message::text(format!("m{i}"))).collect();
    expected.push(Message::binary(vec![0u8, 7]));
    assert_eq!(echoed, expected);
    assert!(session.is_finished());
    assert_eq!(bounded(outcomes.recv()).await, Some(Outcome::Ended));
    // §8: a finished session is forgotten by both sides.
    assert!(sessions.is_empty());
}

/// docs/sessions.md §5: "at most `ack_delay` after the first unreported message", also
/// when the application takes the message after the connection last looked (the server
/// counts data as its application takes it) and nothing else arrives to wake it.
#[tokio::test]
async fn sessions_md_5_a_message_the_application_takes_later_is_acknowledged_within_the_delay() {
    let (taken_tx, mut taken) = mpsc::channel(1);
    let sessions = Sessions::new(SessionServerConfig::default(), move |mut session| {
        let taken_tx = taken_tx.clone();
        async move {
            // Takes the message only once the connection is idle, then only listens.
            while let Some(Ok(message)) = session.next().await {
                let _ = taken_tx.send(message).await;
            }
        }
    })
    .expect("config");
    let url = serve(&sessions).await;
    let mut ws = raw(&url).await;
    open(&mut ws).await;
    say(&mut ws, "one").await;
    assert_eq!(bounded(taken.recv()).await, Some(Message::text("one")));
    // Nothing else is sent: the ack must come from the delay alone.
    assert_eq!(heard(&mut ws).await, "\0ack 1");
}

#[tokio::test]
async fn sessions_md_6_a_forged_id_gets_lost_unknown_and_4002() {
    let (url, _sessions, _outcomes) = echo_server(SessionServerConfig::default()).await;
    let mut ws = raw(&url).await;
    say(&mut ws, "\0resume AAAAAAAAAAAAAAAAAAAAAA 0").await;
    assert_eq!(heard(&mut ws).await, "\0lost unknown");
    assert_eq!(heard(&mut ws).await, "close 4002");
}

#[tokio::test]
async fn sessions_md_7_a_resume_after_the_window_gets_lost_expired_4001_on_both_sides() {
    let mut config = SessionServerConfig::default();
    config
        .registry_mut()
        .set_resume_window(Duration::from_millis(300));
    // The dropped id is remembered for one more window: the resume below comes well within.
    let (url, sessions, mut outcomes) = echo_server(config).await;
    let mut ws = raw(&url).await;
    let id = open(&mut ws).await;
    say(&mut ws, "one").await;
    assert_eq!(heard(&mut ws).await, "one");
    drop(ws);
    // The server's side learns it first: its handler's session ends, lost, expired.
    assert_eq!(
        bounded(outcomes.recv()).await,
        Some(Outcome::Lost(LostReason::Expired))
    );
    assert!(sessions.is_empty());
    let mut ws = raw(&url).await;
    say(&mut ws, &format!("\0resume {id} 1")).await;
    assert_eq!(heard(&mut ws).await, "\0lost expired");
    assert_eq!(heard(&mut ws).await, "close 4001");
}

#[tokio::test]
async fn sessions_md_7_parked_sessions_at_the_limit_resume_and_one_past_it_drops_the_oldest_4004() {
    const LIMIT: usize = 3;
    let mut config = SessionServerConfig::default();
    config.registry_mut().set_max_parked(LIMIT);
    let (url, sessions, mut outcomes) = echo_server(config).await;
    let mut ids = Vec::new();
    for _ in 0..=LIMIT {
        let mut ws = raw(&url).await;
        ids.push(open(&mut ws).await);
        // A round trip, so the session is attached before the connection goes.
        say(&mut ws, "x").await;
        assert_eq!(heard(&mut ws).await, "x");
        ws.close(CloseCode::GOING_AWAY, "").await.expect("close");
    }
    // LIMIT + 1 parked: the oldest was dropped, its handler told so.
    assert_eq!(
        bounded(outcomes.recv()).await,
        Some(Outcome::Lost(LostReason::Limit))
    );
    assert_eq!(sessions.parked(), LIMIT);
    let mut ws = raw(&url).await;
    say(&mut ws, &format!("\0resume {} 1", ids[0])).await;
    assert_eq!(heard(&mut ws).await, "\0lost limit");
    assert_eq!(heard(&mut ws).await, "close 4004");
    // The ones within the limit are all still there.
    for id in &ids[1..] {
        let mut ws = raw(&url).await;
        say(&mut ws, &format!("\0resume {id} 1")).await;
        assert_eq!(heard(&mut ws).await, format!("\0session {id} 1"));
    }
}

#[tokio::test]
async fn sessions_md_7_parked_bytes_at_the_bound_are_kept_and_one_past_drops_the_oldest_4004() {
    const BOUND_BYTES: usize = 1000;
    let mut config = SessionServerConfig::default();
    config.registry_mut().set_max_parked_bytes(BOUND_BYTES);
    let (url, sessions, mut outcomes) = echo_server(config).await;
    // Each session leaves its echo unacknowledged in the server's replay buffer, then its
    // connection goes: 600 + 400 bytes parked is the bound, one byte more is past it.
    let mut ids = Vec::new();
    for len in [600, 400, 1] {
        let mut ws = raw(&url).await;
        ids.push(open(&mut ws).await);
        let text = "y".repeat(len);
        say(&mut ws, &text).await;
        assert_eq!(heard(&mut ws).await, text);
        ws.close(CloseCode::GOING_AWAY, "").await.expect("close");
        if len == 400 {
            // At the bound: nothing dropped yet.
            bounded(async {
                while sessions.parked() < 2 {
                    tokio::task::yield_now().await;
                }
            })
            .await;
            assert!(outcomes.try_recv().is_err(), "dropped at the bound");
        }
    }
    assert_eq!(
        bounded(outcomes.recv()).await,
        Some(Outcome::Lost(LostReason::Limit))
    );
    assert_eq!(sessions.parked(), 2);
    let mut ws = raw(&url).await;
    say(&mut ws, &format!("\0resume {} 1", ids[0])).await;
    assert_eq!(heard(&mut ws).await, "\0lost limit");
    assert_eq!(heard(&mut ws).await, "close 4004");
    for (id, len) in ids[1..].iter().zip([400, 1]) {
        let mut ws = raw(&url).await;
        say(&mut ws, &format!("\0resume {id} 0")).await;
        assert_eq!(heard(&mut ws).await, format!("\0session {id} 1"));
        // Its unacknowledged echo comes again.
        assert_eq!(heard(&mut ws).await, "y".repeat(len));
    }
}

#[tokio::test]
async fn sessions_md_7_a_resume_of_an_attached_session_replaces_its_connection_with_4006() {
    let (url, _sessions, _outcomes) = echo_server(SessionServerConfig::default()).await;
    let mut first = raw(&url).await;
    let id = open(&mut first).await;
    say(&mut first, "a").await;
    assert_eq!(heard(&mut first).await, "a");
    let mut second = raw(&url).await;
    say(&mut second, &format!("\0resume {id} 1")).await;
    assert_eq!(heard(&mut second).await, format!("\0session {id} 1"));
    assert_eq!(heard(&mut first).await, "\0lost replaced");
    assert_eq!(heard(&mut first).await, "close 4006");
    // The session goes on on the new connection, counting on.
    say(&mut second, "b").await;
    assert_eq!(heard(&mut second).await, "b");
}

#[tokio::test]
async fn sessions_md_3_a_control_message_over_64_bytes_is_lost_protocol_1002() {
    let (url, _sessions, mut outcomes) = echo_server(SessionServerConfig::default()).await;
    let mut ws = raw(&url).await;
    open(&mut ws).await;
    // Checked before parsing (the 64/65-byte edge itself is tether-session's unit test).
    let over = format!("\0ping {} 0", "1".repeat(65 - 8));
    assert_eq!(over.len(), 65);
    say(&mut ws, &over).await;
    assert_eq!(heard(&mut ws).await, "\0lost protocol");
    assert_eq!(heard(&mut ws).await, "close 1002");
    assert_eq!(
        bounded(outcomes.recv()).await,
        Some(Outcome::Lost(LostReason::Protocol))
    );
    // A nonce of the largest size is answered: the limit leaves room for every valid
    // message.
    let mut ws = raw(&url).await;
    open(&mut ws).await;
    let nonce = u64::MAX.to_string();
    assert_eq!(nonce.len(), 20);
    say(&mut ws, &format!("\0ping {nonce} 0")).await;
    assert_eq!(heard(&mut ws).await, format!("\0pong {nonce} 0"));
}

#[tokio::test]
async fn sessions_md_4_data_before_the_hello_is_lost_protocol_1002() {
    let (url, sessions, _outcomes) = echo_server(SessionServerConfig::default()).await;
    let mut ws = raw(&url).await;
    say(&mut ws, "hello").await;
    assert_eq!(heard(&mut ws).await, "\0lost protocol");
    assert_eq!(heard(&mut ws).await, "close 1002");
    assert!(sessions.is_empty());
}

#[tokio::test]
async fn sessions_md_7_no_hello_within_the_handshake_timeout_is_closed_1008() {
    let mut config = SessionServerConfig::default();
    config.set_handshake_timeout(Duration::from_millis(100));
    let (url, sessions, _outcomes) = echo_server(config).await;
    let mut ws = raw(&url).await;
    assert_eq!(heard(&mut ws).await, "close 1008");
    assert!(sessions.is_empty());
}

#[tokio::test]
async fn sessions_md_1_a_client_without_the_subprotocol_is_closed_1008() {
    let (url, sessions, _outcomes) = echo_server(SessionServerConfig::default()).await;
    let mut ws = ClientBuilder::new().connect(&url).await.expect("connect");
    assert_eq!(ws.subprotocol(), None);
    assert_eq!(heard(&mut ws).await, "close 1008");
    assert!(sessions.is_empty());
}

#[tokio::test]
async fn sessions_md_7_clients_that_open_sessions_and_vanish_cost_at_most_the_parked_bound() {
    const PARKED: usize = 8;
    const CLIENTS: usize = 40;
    let mut config = SessionServerConfig::default();
    config.registry_mut().set_max_parked(PARKED);
    let (url, sessions, mut outcomes) = echo_server(config).await;
    for _ in 0..CLIENTS {
        let mut ws = raw(&url).await;
        open(&mut ws).await;
        say(&mut ws, &"x".repeat(1000)).await;
        assert_eq!(heard(&mut ws).await.len(), 1000);
        drop(ws); // vanishes without a close
    }
    // Every session past the bound was dropped and its handler told: an event each.
    for _ in 0..CLIENTS - PARKED {
        assert_eq!(
            bounded(outcomes.recv()).await,
            Some(Outcome::Lost(LostReason::Limit))
        );
    }
    assert_eq!(sessions.len(), PARKED);
}

#[tokio::test]
async fn sessions_md_5_a_resume_count_frees_the_full_replay_buffer_and_the_application_sends_on() {
    const WINDOW: usize = 4;
    let mut config = SessionServerConfig::default();
    config.endpoint_mut().set_max_replay_messages(WINDOW);
    // The application sends twice the window at once: it waits for room after 4.
    let sessions = Sessions::new(config, |session| async move {
        for i in 1..=2 * WINDOW {
            if session.send(Message::text(format!("s{i}"))).await.is_err() {
                return;
            }
        }
        std::future::pending::<()>().await;
    })
    .expect("config");
    let url = serve(&sessions).await;
    let mut ws = raw(&url).await;
    let id = open(&mut ws).await;
    for i in 1..=WINDOW {
        assert_eq!(heard(&mut ws).await, format!("s{i}"));
    }
    // Gone before any ack went out (acks wait 200 ms or 32 messages).
    drop(ws);
    let mut ws = raw(&url).await;
    say(&mut ws, &format!("\0resume {id} {WINDOW}")).await;
    assert_eq!(heard(&mut ws).await, format!("\0session {id} 0"));
    // The resume acknowledged 4: the application's waiting sends go on.
    for i in WINDOW + 1..=2 * WINDOW {
        assert_eq!(heard(&mut ws).await, format!("s{i}"));
    }
}

#[tokio::test]
async fn sessions_md_6_a_resume_after_the_window_ends_the_facade_session_on_both_sides_with_counts()
{
    let mut config = SessionServerConfig::default();
    // Passed by the time any client can come back.
    config
        .registry_mut()
        .set_resume_window(Duration::from_nanos(1));
    let (url, sessions, mut outcomes) = echo_server(config).await;
    let upstream = url
        .trim_start_matches("ws://")
        .trim_end_matches('/')
        .parse()
        .expect("address");
    let mut schedule = CutSchedule::new(5, 1);
    schedule.freeze_percent = 0;
    let proxy = CuttingProxy::start(upstream, schedule)
        .await
        .expect("proxy");
    let mut session = ClientBuilder::new()
        .session(
            &format!("ws://{}/", proxy.addr()),
            &Default::default(),
            EndpointConfig::default(),
        )
        .expect("session");
    let mut echoed = 0u64;
    let lost = loop {
        // Enough traffic to reach the proxy's cut (at most 64 KiB).
        if echoed < 10_000 {
            session
                .send(Message::text(format!("{echoed:0>32}")))
                .await
                .expect("send");
        }
        match bounded(session.recv()).await {
            Some(Ok(_)) => echoed += 1,
            Some(Err(lost)) => break lost,
            None => panic!("ended without a lost outcome"),
        }
    };
    assert_eq!(proxy.cuts(), 1);
    // The client's side: typed, with its counts. The server remembers a dropped id for one
    // resume window (§7), here 1 ns, so it no longer knows this one: `unknown` (4002). With
    // a window that is still remembered the answer is `expired` (4001, the test above).
    assert_eq!(
        (lost.reason, lost.origin),
        (LostReason::Unknown, Origin::Peer)
    );
    assert_eq!(lost.received, echoed);
    assert!(lost.sent >= echoed, "{lost}");
    // The server's side: its handler was told, and the session is forgotten.
    assert_eq!(
        bounded(outcomes.recv()).await,
        Some(Outcome::Lost(LostReason::Expired))
    );
    assert!(sessions.is_empty());
}

#[tokio::test]
async fn sessions_md_5_messages_larger_than_a_window_over_32_flow_both_ways_without_stalling() {
    // 64 KiB: a 1 MiB window holds 16 of them, fewer than the 32 messages that make an ack
    // due; 4 MiB each way is 4 windows. Before acks were also due by bytes, and before the
    // server counted data as its application took it, this stalled (200 ms per window, or
    // for good: the client's acks stuck behind its own data while the server waited for
    // them to send).
    const COUNT: usize = 64;
    let (url, _sessions, mut outcomes) = echo_server(SessionServerConfig::default()).await;
    let mut session = ClientBuilder::new()
        .session(&url, &Default::default(), EndpointConfig::default())
        .expect("session");
    let payload = |i: usize| Message::binary(vec![i as u8; 64 << 10]);
    let (mut sent, mut echoed) = (0, 0);
    while echoed < COUNT {
        let next = (sent < COUNT).then(|| payload(sent));
        let ready = next.as_ref().map(|m| session.ready(m));
        tokio::select! {
            received = bounded(session.recv()) => {
                assert_eq!(received.expect("open").expect("not lost"), payload(echoed));
                echoed += 1;
            }
            room = async { match ready { Some(r) => r.await, None => std::future::pending().await } } => {
                room.expect("room");
                session.try_send(next.expect("a message")).expect("taken");
                sent += 1;
            }
        }
    }
    session.end().await.expect("end");
    assert_eq!(bounded(session.recv()).await, None);
    assert!(session.is_finished());
    assert_eq!(bounded(outcomes.recv()).await, Some(Outcome::Ended));
}

/// A server-side stream whose writes fail once `broken` is set, as if the client's TCP
/// connection died: what the server then writes gets an error.
struct Breakable {
    io: tokio::io::DuplexStream,
    broken: Arc<AtomicBool>,
}

impl tokio::io::AsyncRead for Breakable {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for Breakable {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if self.broken.load(Ordering::SeqCst) {
            return Poll::Ready(Err(std::io::ErrorKind::BrokenPipe.into()));
        }
        Pin::new(&mut self.io).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[tokio::test]
async fn sessions_md_7_a_connection_that_dies_while_the_answer_is_written_parks_its_session() {
    let (_url, sessions, _outcomes) = echo_server(SessionServerConfig::default()).await;
    let (client_io, server_io) = tokio::io::duplex(64 << 10);
    let broken = Arc::new(AtomicBool::new(false));
    let serving = {
        let (sessions, broken) = (sessions.clone(), broken.clone());
        tokio::spawn(async move {
            let io = Breakable {
                io: server_io,
                broken,
            };
            let ws = tether::accept_with(io, |request| Ok(select(request)))
                .await
                .expect("upgraded");
            sessions.attach(ws).await;
        })
    };
    let mut client = ClientBuilder::new()
        .subprotocol(SUBPROTOCOL)
        .handshake(client_io, "ws://127.0.0.1/")
        .await
        .expect("handshake");
    // The connection dies before the server answers `\0new`: its answer fails to go out.
    broken.store(true, Ordering::SeqCst);
    client.send(Message::text("\0new")).await.expect("sent");
    bounded(serving).await.expect("attach returned");
    // The session is not left attached to nothing: it is parked, within the bounds and
    // the resume window like any other.
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions.parked(), 1);
}

/// state.rs, MAX_INBOUND_BYTES: a connection stops reading while its application holds
/// 2 MiB it has not taken (TCP pushes back on the client), and reads on once the
/// application takes them. A raw client ignores the window and pushes 8 MiB; the
/// application starts reading only once the client is stuck; every message arrives.
#[tokio::test]
async fn sessions_md_5_a_connection_stopped_at_the_read_ahead_bound_reads_on_when_the_application_takes(
) {
    const MESSAGES: usize = 128;
    const SIZE: usize = 64 << 10;
    let go = std::sync::Arc::new(tokio::sync::Notify::new());
    let (counted, mut count) = mpsc::channel(1);
    let start = std::sync::Arc::clone(&go);
    let sessions = Sessions::new(SessionServerConfig::default(), move |mut session| {
        let (start, counted) = (std::sync::Arc::clone(&start), counted.clone());
        async move {
            start.notified().await;
            let mut taken = 0;
            while taken < MESSAGES {
                match session.next().await {
                    Some(Ok(message)) if message.len() == SIZE => taken += 1,
                    _ => break,
                }
            }
            let _ = counted.send(taken).await;
            std::future::pending::<()>().await;
        }
    })
    .expect("config");
    let url = serve(&sessions).await;
    let mut ws = raw(&url).await;
    open(&mut ws).await;
    let fed = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let progress = std::sync::Arc::clone(&fed);
    let writer = tokio::spawn(async move {
        for _ in 0..MESSAGES {
            ws.send(Message::binary(vec![7u8; SIZE]))
                .await
                .expect("send");
            progress.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        ws
    });
    // Stuck: no progress over a few looks (the server holds 2 MiB, the sockets the rest).
    let mut last = usize::MAX;
    let mut still = 0;
    while still < 3 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = fed.load(std::sync::atomic::Ordering::Relaxed);
        assert!(
            now < MESSAGES,
            "8 MiB went through while the application read nothing"
        );
        still = if now == last { still + 1 } else { 0 };
        last = now;
    }
    go.notify_one();
    assert_eq!(bounded(count.recv()).await, Some(MESSAGES));
    bounded(writer).await.expect("writer");
}

/// docs/sessions.md §7: a server that stops forgets its sessions. Once the server and every
/// handle on its `Sessions` are gone, a parked session's handler hears `unknown` (what the
/// client would hear from a restarted server) instead of waiting for a resume forever.
#[tokio::test]
async fn sessions_md_7_a_stopped_server_ends_its_parked_sessions_with_unknown() {
    let (tx, mut outcomes) = mpsc::channel(4);
    let sessions = Sessions::new(SessionServerConfig::default(), move |session| {
        echo(session, tx.clone())
    })
    .expect("config");
    let mut server = Server::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("ws://{}/", server.local_addr().expect("addr"));
    server.decide(|request| Ok(select(request)));
    let serving = sessions.clone();
    let serve = tokio::spawn(server.serve(move |ws, _| serving.clone().attach(ws)));
    let mut ws = raw(&url).await;
    open(&mut ws).await;
    say(&mut ws, "hello").await;
    assert_eq!(heard(&mut ws).await, "hello");
    drop(ws);
    serve.abort();
    drop(sessions);
    assert_eq!(
        bounded(outcomes.recv()).await,
        Some(Outcome::Lost(LostReason::Unknown))
    );
}
