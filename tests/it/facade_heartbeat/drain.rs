//! A supervised client that has said all it had to say: it sends as fast as the link takes
//! (waiting for room, never refused), waits until its outbox is empty, starts the close and
//! still receives every reply that arrives before the server's answer. Loopback TCP.

use std::time::Duration;

use tether::heartbeat::{CloseReason, LinkState, OutboxConfig, Supervisor};
use tether::{Message, PingProbe};

use super::support::{client_config, closed_state, LIMIT};
use crate::facade::support::EchoServer;

/// Messages sent through an outbox of [`OUTBOX`]: far more than it holds.
const MESSAGES: usize = 5_000;
const OUTBOX: usize = 8;

#[tokio::test]
async fn every_reply_sent_before_the_close_arrives_in_order_and_nothing_is_refused() {
    let server = EchoServer::start(|_| {}).await;
    let mut config = client_config(Duration::from_secs(1), Duration::from_secs(1));
    let mut outbox = OutboxConfig::default();
    outbox.set_max_messages(OUTBOX);
    config.set_outbox(outbox);
    let mut client = tether::ClientBuilder::new()
        .connect_supervised(&server.url("ws", "127.0.0.1"), &config, PingProbe::new())
        .expect("supervised client");

    let received = tokio::time::timeout(LIMIT * 2, converse(&mut client))
        .await
        .expect("the conversation ends within the limit");
    let expected: Vec<Message> = (0..MESSAGES)
        .map(|i| Message::text(i.to_string()))
        .collect();
    assert_eq!(received.len(), MESSAGES, "every reply arrived");
    assert!(received == expected, "in the order sent");
    assert_eq!(
        closed_state(client.state()).await,
        LinkState::Closed(CloseReason::Local)
    );
    assert_eq!(client.close().await, CloseReason::Local);
}

/// Sends [`MESSAGES`] while receiving, then `flushed`, `start_close`, and reads to the end.
async fn converse(client: &mut Supervisor<Message>) -> Vec<Message> {
    let mut received = Vec::new();
    let mut next = 0;
    let mut closing = false;
    loop {
        let message = Message::text(next.to_string());
        let ready = client.ready(&message);
        let flushed = client.flushed();
        tokio::select! {
            ready = ready, if next < MESSAGES => {
                ready.expect("room");
                client.try_send(message).expect("room was there");
                assert!(client.outbox_len() <= OUTBOX);
                next += 1;
            }
            flushed = flushed, if next == MESSAGES && !closing => {
                flushed.expect("flushed");
                client.start_close().await;
                closing = true;
            }
            message = client.recv() => match message {
                Some(message) => received.push(message),
                None => return received,
            },
        }
    }
}
