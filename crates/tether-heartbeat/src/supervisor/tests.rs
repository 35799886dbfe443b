//! The supervisor's task and handle against in-memory transports.

use std::time::Duration;

use futures::StreamExt;
use tokio_util::codec::{Framed, LinesCodec};

use super::*;
use crate::close::code;
use crate::probe::{Inbound, StringProbe};

/// The text probe with a close message: `close <code> <text>`, with the RFC 6455 code
/// the facade sends for each farewell.
struct Lines(StringProbe);

impl Probe<String> for Lines {
    fn probe(&mut self, nonce: u64) -> String {
        self.0.probe(nonce)
    }
    fn classify(&mut self, message: &String) -> Inbound {
        self.0.classify(message)
    }
    fn answer(&mut self, probe: &String) -> Option<String> {
        self.0.answer(probe)
    }
    fn close(&mut self, farewell: Farewell, text: &str) -> Option<String> {
        let code = match farewell {
            Farewell::Normal => code::NORMAL,
            Farewell::GoingAway => code::GOING_AWAY,
            Farewell::Policy => code::POLICY_VIOLATION,
            Farewell::Unresponsive => code::INTERNAL_ERROR,
            Farewell::TryAgainLater => code::TRY_AGAIN_LATER,
        };
        Some(format!("close {code} {text}"))
    }
    fn len(message: &String) -> usize {
        message.len()
    }
}

/// A server-side supervisor closed by `close`, and the first line its peer reads.
async fn closed_by<F>(close: impl FnOnce(Supervisor<String>) -> F) -> (CloseReason, String)
where
    F: Future<Output = CloseReason>,
{
    let (server_io, client_io) = tokio::io::duplex(1024);
    let mut config = SupervisorConfig::default();
    config.set_seed(Some(3));
    let server_io = Framed::new(server_io, LinesCodec::new());
    let server = Supervisor::accept(&config, Lines(StringProbe::default()), server_io).unwrap();
    let mut peer = Framed::new(client_io, LinesCodec::new());
    let reason = close(server).await;
    let line = peer.next().await.unwrap().unwrap();
    (reason, line)
}

#[tokio::test(start_paused = true)]
async fn rfc6455_7_4_1_close_with_sends_the_given_code_and_text() {
    let (reason, line) = closed_by(|s| async move {
        s.close_with(Farewell::GoingAway, "server shutting down")
            .await
    })
    .await;
    assert_eq!(reason, CloseReason::Local);
    assert_eq!(line, "close 1001 server shutting down");
}

#[tokio::test(start_paused = true)]
async fn close_sends_normal_closure() {
    let (reason, line) = closed_by(Supervisor::close).await;
    assert_eq!(reason, CloseReason::Local);
    assert_eq!(line, "close 1000 closing");
}

/// A server-side supervisor with `inbound_bytes` set to 10 whose peer sent `lines`
/// (unread so far), and the peer.
async fn unread(
    lines: &[&str],
) -> (
    Supervisor<String>,
    Framed<tokio::io::DuplexStream, LinesCodec>,
) {
    let (server_io, client_io) = tokio::io::duplex(1024);
    let mut config = SupervisorConfig::default();
    config
        .set_keepalive(None)
        .set_inbound_bytes(10)
        .set_seed(Some(3));
    let server_io = Framed::new(server_io, LinesCodec::new());
    let server = Supervisor::accept(&config, StringProbe::default(), server_io).unwrap();
    let mut peer = Framed::new(client_io, LinesCodec::new());
    for line in lines {
        futures::SinkExt::send(&mut peer, line.to_string())
            .await
            .unwrap();
    }
    // The paused clock advances only once every task waits: the link read what it may.
    tokio::time::sleep(Duration::from_millis(1)).await;
    (server, peer)
}

#[tokio::test(start_paused = true)]
async fn inbound_bytes_at_the_limit_pause_reading() {
    let (mut server, _peer) = unread(&["aaaaa", "bbbbb", "ccccc"]).await;
    // Two lines make 10 bytes, the limit: the third is left to the transport.
    assert_eq!(server.inbound_bytes(), 10);
    assert_eq!(server.recv().await.as_deref(), Some("aaaaa"));
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(server.inbound_bytes(), 10);
    assert_eq!(server.recv().await.as_deref(), Some("bbbbb"));
    assert_eq!(server.recv().await.as_deref(), Some("ccccc"));
    assert_eq!(server.inbound_bytes(), 0);
}

#[tokio::test(start_paused = true)]
async fn inbound_bytes_one_message_past_the_limit_pause_reading() {
    let (mut server, _peer) = unread(&["aaaa", "bbbb", "cccc", "dddd"]).await;
    // 8 bytes are below the limit, so a third line is read: 12, one message past it.
    assert_eq!(server.inbound_bytes(), 12);
    assert_eq!(server.recv().await.as_deref(), Some("aaaa"));
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(server.inbound_bytes(), 12);
    for line in ["bbbb", "cccc", "dddd"] {
        assert_eq!(server.recv().await.as_deref(), Some(line));
    }
}

#[tokio::test(start_paused = true)]
async fn as_a_sink_it_sends_through_the_outbox() {
    let (mut server, mut peer) = unread(&[]).await;
    futures::SinkExt::send(&mut server, "hello".to_string())
        .await
        .unwrap();
    assert_eq!(peer.next().await.unwrap().unwrap(), "hello");
    let reason = server.close().await;
    assert_eq!(reason, CloseReason::Local);
    let mut closed = Supervisor::<String>::accept(
        &SupervisorConfig::default(),
        StringProbe::default(),
        Framed::new(tokio::io::duplex(64).0, LinesCodec::new()),
    )
    .unwrap();
    closed
        .state()
        .wait_for(|s| matches!(s, LinkState::Closed(_)))
        .await
        .unwrap();
    assert!(matches!(
        futures::SinkExt::send(&mut closed, "late".to_string()).await,
        Err(Error::Closed { .. })
    ));
}

#[tokio::test(start_paused = true)]
async fn close_with_while_reconnecting_stops_at_once() {
    let mut config = SupervisorConfig::default();
    config.set_seed(Some(5));
    let client = Supervisor::<String>::connect(&config, Lines(StringProbe::default()), || async {
        Err::<Framed<tokio::io::DuplexStream, LinesCodec>, _>(Failure::Timeout)
    })
    .unwrap();
    let mut state = client.state();
    state
        .wait_for(|s| matches!(s, LinkState::Reconnecting { .. }))
        .await
        .unwrap();
    let started = Instant::now();
    let reason = client.close_with(Farewell::GoingAway, "bye").await;
    assert_eq!(reason, CloseReason::Local);
    assert_eq!(started.elapsed(), Duration::ZERO);
}
