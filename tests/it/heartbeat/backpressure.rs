//! The supervisor's waiting send on tokio's paused clock: a producer goes at the link's
//! pace, waits through a reconnection, and a cancelled or refused wait accepts nothing.

use tether_heartbeat::{
    Error, Event, Failure, LinkState, OutboxConfig, ReconnectConfig, SupervisorConfig,
};
use tokio::time::Instant;

use super::fake::Script;
use super::scenarios::{config, connected, start, wait_for, MS, SEC};

/// The default scenario configuration with an outbox of `messages`.
fn with_outbox(messages: usize) -> SupervisorConfig {
    let mut outbox = OutboxConfig::default();
    outbox.set_max_messages(messages);
    let mut config = config(Default::default());
    config.set_outbox(outbox);
    config
}

#[tokio::test(start_paused = true)]
async fn send_waits_for_room_through_a_reconnection_and_loses_nothing() {
    let script = Script::new(50 * MS);
    let results = vec![
        Err(Failure::Timeout),
        Err(Failure::Timeout),
        Ok(connected(&script)),
    ];
    let (client, mut events) = start(&with_outbox(2), results);
    let producer = async {
        for i in 0..50 {
            client.send(format!("m{i}")).await.expect("accepted");
            assert!(client.outbox_len() <= 2, "the outbox bound holds");
        }
        Instant::now()
    };
    let connected_at = async { wait_for(&mut events, |e| *e == Event::Connected).await.0 };
    let (done_at, connected_at) = tokio::join!(producer, connected_at);
    assert!(
        done_at >= connected_at,
        "50 messages cannot fit in an outbox of 2 before the link is up"
    );
    client.flushed().await.expect("flushed");
    tokio::time::sleep(SEC).await;
    let expected: Vec<String> = (0..50).map(|i| format!("m{i}")).collect();
    assert_eq!(*script.received.lock().unwrap(), expected);
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_send_accepted_nothing_and_the_next_one_goes_after_the_first() {
    let script = Script::new(50 * MS);
    let results = vec![
        Err(Failure::Http {
            status: 503,
            retry_after: Some(20 * SEC),
        }),
        Ok(connected(&script)),
    ];
    let (client, _events) = start(&with_outbox(1), results);
    client.try_send("a".into()).expect("room for one");
    let cancelled = tokio::time::timeout(SEC, client.send("b".into())).await;
    assert!(
        cancelled.is_err(),
        "the outbox is full while the link is down"
    );
    assert_eq!(
        client.outbox_len(),
        1,
        "the cancelled message was not accepted"
    );
    // `ready` holds nothing either; once the link is up there is room again.
    assert!(tokio::time::timeout(SEC, client.ready(&"c".into()))
        .await
        .is_err());
    client
        .send("c".into())
        .await
        .expect("accepted once the link took `a`");
    client.flushed().await.expect("flushed");
    tokio::time::sleep(SEC).await;
    assert_eq!(*script.received.lock().unwrap(), ["a", "c"]);
}

#[tokio::test(start_paused = true)]
async fn a_send_waiting_when_the_supervisor_stops_is_refused_with_the_reason() {
    let mut config = with_outbox(1);
    let mut reconnect = ReconnectConfig::default();
    reconnect.set_max_retries(Some(0));
    config.set_reconnect(reconnect);
    let (client, _events) = start(&config, vec![Err(Failure::Timeout)]);
    client.try_send("a".into()).expect("room for one");
    let refused = client.send("b".into()).await;
    assert!(matches!(refused, Err(Error::Closed { .. })), "{refused:?}");
    assert!(matches!(client.flushed().await, Err(Error::Closed { .. })));
    assert!(matches!(*client.state().borrow(), LinkState::Closed(_)));
}

#[tokio::test(start_paused = true)]
async fn a_message_over_the_outbox_bytes_is_refused_at_once_not_awaited_forever() {
    let mut outbox = OutboxConfig::default();
    outbox.set_max_bytes(10);
    let mut config = config(Default::default());
    config.set_outbox(outbox);
    let script = Script::new(50 * MS);
    let (client, _events) = start(&config, vec![Ok(connected(&script))]);
    assert_eq!(
        client.send("x".repeat(11)).await,
        Err(Error::MessageTooLarge { len: 11, max: 10 })
    );
    assert_eq!(client.send("x".repeat(10)).await, Ok(()), "at the limit");
}
