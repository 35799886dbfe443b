//! Where a server session's handler runs (crates/tether/src/session/handler.rs): in the
//! task of the connection carrying the session, in a task of its own while none does, and
//! handed to the connection that resumes it, even from a connection stuck writing. A
//! handler that panics ends its session, not the server.

use std::sync::Arc;

use tether::session::{select, ServerSession, SessionServerConfig, Sessions, SUBPROTOCOL};
use tether::{ClientBuilder, Message, StreamExt};
use tokio::sync::{mpsc, Notify};

use crate::session_server::{bounded, heard, open, raw, say, serve};

/// An echo handler that panics on "boom".
async fn echo_or_panic(mut session: ServerSession) {
    while let Some(Ok(message)) = session.next().await {
        assert!(
            message != Message::text("boom"),
            "the handler was told to panic"
        );
        if session.send(message).await.is_err() {
            return;
        }
    }
    session.end();
}

/// The next text message that is not an acknowledgement.
async fn heard_past_acks<S>(ws: &mut tether::WebSocket<S>) -> String
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    loop {
        let text = heard(ws).await;
        if !text.starts_with("\0ack ") {
            return text;
        }
    }
}

/// A connection of `sessions` over an in-memory pipe of `capacity` bytes, attached in a
/// task the test can wait for; the client's end of it.
async fn piped(
    sessions: &Sessions,
    capacity: usize,
) -> (
    tether::WebSocket<tokio::io::DuplexStream>,
    tokio::task::JoinHandle<()>,
) {
    let (client_io, server_io) = tokio::io::duplex(capacity);
    let sessions = sessions.clone();
    let attached = tokio::spawn(async move {
        let ws = tether::accept_with(server_io, |request| Ok(select(request)))
            .await
            .expect("upgraded");
        sessions.attach(ws).await;
    });
    let client = ClientBuilder::new()
        .subprotocol(SUBPROTOCOL)
        .handshake(client_io, "ws://127.0.0.1/")
        .await
        .expect("handshake");
    (client, attached)
}

/// The handler runs in the connection's task: a panic there must not take the connection
/// (or the server) with it. The session ends as if the handler returned: `end` with the
/// count of what it took; other sessions are served on.
#[tokio::test]
async fn a_handler_that_panics_ends_its_session_and_the_server_serves_on() {
    let sessions = Sessions::new(SessionServerConfig::default(), echo_or_panic).expect("config");
    let url = serve(&sessions).await;
    let mut ws = raw(&url).await;
    open(&mut ws).await;
    say(&mut ws, "a").await;
    assert_eq!(heard(&mut ws).await, "a");
    say(&mut ws, "boom").await;
    assert_eq!(heard_past_acks(&mut ws).await, "\0end 2");

    let mut other = raw(&url).await;
    open(&mut other).await;
    say(&mut other, "c").await;
    assert_eq!(heard(&mut other).await, "c");
}

/// While no connection carries the session its handler still runs: what it sends then is
/// kept and arrives after the resume, and the handler then runs in the new connection.
#[tokio::test]
async fn a_parked_sessions_handler_runs_on_and_what_it_sent_follows_the_resume() {
    let go = Arc::new(Notify::new());
    let (sent, mut was_sent) = mpsc::channel(1);
    let handler_go = Arc::clone(&go);
    let sessions = Sessions::new(SessionServerConfig::default(), move |mut session| {
        let (go, sent) = (Arc::clone(&handler_go), sent.clone());
        async move {
            let Some(Ok(first)) = session.next().await else {
                return;
            };
            go.notified().await;
            session.send(first).await.expect("kept for the resume");
            sent.send(()).await.expect("reported");
            echo_or_panic(session).await;
        }
    })
    .expect("config");
    let (mut first, attached) = piped(&sessions, 64 << 10).await;
    let id = open(&mut first).await;
    say(&mut first, "later").await;
    drop(first);
    bounded(attached).await.expect("the connection ended");
    assert_eq!(sessions.parked(), 1);

    // No connection: only a task of the handler's own can run it now.
    go.notify_one();
    bounded(was_sent.recv()).await.expect("sent while parked");

    let url = serve(&sessions).await;
    let mut second = raw(&url).await;
    say(&mut second, &format!("\0resume {id} 0")).await;
    assert_eq!(heard(&mut second).await, format!("\0session {id} 1"));
    assert_eq!(heard_past_acks(&mut second).await, "later");
    say(&mut second, "again").await;
    assert_eq!(heard_past_acks(&mut second).await, "again");
}

/// A connection that cannot write (its client reads nothing) is replaced by a resume: the
/// handler it runs must move to the new connection at once, not when the stuck write ends
/// (it may never). The new connection replays what the old one could not deliver, then
/// the handler answers on it.
#[tokio::test]
async fn a_resume_takes_the_handler_from_a_connection_stuck_writing() {
    const FLOOD: usize = 64;
    const SIZE: usize = 4 << 10;
    let sessions = Sessions::new(SessionServerConfig::default(), |mut session| async move {
        while let Some(Ok(message)) = session.next().await {
            let copies = if message == Message::text("flood") {
                FLOOD
            } else {
                1
            };
            for _ in 0..copies {
                let reply = if copies == 1 {
                    message.clone()
                } else {
                    Message::binary(vec![7u8; SIZE])
                };
                if session.send(reply).await.is_err() {
                    return;
                }
            }
        }
    })
    .expect("config");
    // 16 KiB of pipe: the 256 KiB flood leaves the server's connection waiting to write.
    let (mut first, _attached) = piped(&sessions, 16 << 10).await;
    let id = open(&mut first).await;
    say(&mut first, "flood").await;

    let url = serve(&sessions).await;
    let mut second = raw(&url).await;
    say(&mut second, &format!("\0resume {id} 0")).await;
    assert_eq!(heard(&mut second).await, format!("\0session {id} 1"));
    say(&mut second, "ping").await;
    let mut replayed = 0;
    loop {
        match bounded(second.next()).await {
            Some(Ok(Message::Binary(data))) => {
                assert_eq!(data.len(), SIZE);
                replayed += 1;
            }
            Some(Ok(Message::Text(text))) if text.starts_with("\0ack ") => {}
            Some(Ok(Message::Text(text))) => {
                assert_eq!(text, "ping");
                break;
            }
            other => panic!("unexpected: {other:?}"),
        }
    }
    assert_eq!(replayed, FLOOD);
    drop(first);
}
