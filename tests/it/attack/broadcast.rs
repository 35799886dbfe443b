//! Broadcast fan-out against clients that never read (issue 9, point 4).
//!
//! 50 clients connect to a broadcast server (a [`tether::fanout::Fanout`], as `tether serve
//! --broadcast` runs it) with a 4 KiB receive window and never read; a publisher sends 16 MiB
//! messages; one healthy client reads every one. A fan-out that copied each message into every
//! client's write buffer would hold 50 × 16 MiB = 800 MiB per message. The bound proven here:
//! live heap stays under a few messages' worth (the publisher's, the server's read buffer, the
//! healthy reader's, and the few in flight) whatever the number of stalled clients, every
//! stalled client is cut off once it is `max_backlog` bytes behind and then receives the close
//! code 1013, and the healthy client receives every message intact.
//!
//! Memory is counted by the suite's counting allocator, in a child process that runs only
//! this test (see `facade::support::measure_in_child`).
//!
//! Empty messages count too: a publisher of nothing but empty messages gets a client that
//! never reads cut off as well.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tether::fanout::Fanout;
use tether::{Bytes, ClientBuilder, CloseCode, Error, Message, Server, ServerSocket};
use tokio::net::TcpSocket;

use crate::facade::support::{as_measuring_child_async, live_bytes, measure_in_child};

const STALLED: usize = 50;
const MESSAGE: usize = 16 << 20;
const MESSAGES: usize = 4;
/// Two messages: the third one published cuts a stalled client off.
const MAX_BACKLOG: usize = 2 * MESSAGE;
/// Live heap allowed above the baseline, independent of the number of stalled clients but
/// for their write buffers: the messages the hub's subscribers may hold
/// (`MAX_BACKLOG / MESSAGE + 1`), the publisher's write buffer and the server's and the healthy
/// reader's read buffers (each possibly twice a message while it grows), the stalled clients'
/// write buffers (128 KiB limit + one 64 KiB fragment each) and 8 MiB of slack. A fan-out that
/// copied each message into every write buffer would need `STALLED * MESSAGE` (800 MiB).
const BOUND: i64 = (3 * MESSAGE + 3 * 2 * MESSAGE + STALLED * (192 << 10) + (8 << 20)) as i64;

#[test]
fn broadcast_to_50_stalled_clients_stays_bounded_and_closes_them_with_1013() {
    measure_in_child(
        "attack::broadcast::child_stalled_subscribers",
        Duration::from_secs(120),
    );
}

#[test]
#[ignore = "run by broadcast_to_50_stalled_clients_stays_bounded_and_closes_them_with_1013 in a child process"]
fn child_stalled_subscribers() {
    as_measuring_child_async(|| async {
        tokio::time::timeout(Duration::from_secs(100), attack())
            .await
            .expect("the attack did not finish in time");
    });
}

/// One relay connection, the loop of `tether serve --broadcast`: read and publish, forward
/// what is published; a subscriber that falls behind is closed with its error's code.
async fn relay(ws: ServerSocket, hub: Fanout, publisher: bool, evicted: Arc<AtomicUsize>) {
    let (mut reader, mut writer) = ws.split();
    let mut subscriber = (!publisher).then(|| hub.subscribe());
    let ended = loop {
        let forwarding = async {
            match subscriber.as_mut() {
                Some(subscriber) => subscriber.write_to(&mut writer).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            received = reader.next() => match received {
                Some(Ok(message)) if message.is_data() => {
                    hub.publish(message);
                }
                Some(Ok(_)) => {}
                Some(Err(err)) => break Some(err),
                None => break None,
            },
            forwarded = forwarding => break forwarded.err(),
        }
    };
    drop(reader);
    if let Some(err @ Error::SlowConsumer { .. }) = ended {
        evicted.fetch_add(1, Ordering::SeqCst);
        let code = err.close_code().expect("a slow consumer has a close code");
        let _ = writer.close(code, "too slow").await;
    }
}

/// `server` running [`relay`] for every connection (`/publish` is the publisher) over a hub
/// whose subscribers may fall `max_backlog` behind: the hub, the count of subscribers cut
/// off, and the serving task.
fn serve_relays(
    server: Server,
    max_backlog: usize,
) -> (
    Fanout,
    Arc<AtomicUsize>,
    tokio::task::JoinHandle<Result<(), Error>>,
) {
    let hub = Fanout::new(max_backlog);
    let evicted = Arc::new(AtomicUsize::new(0));
    let serving = {
        let (hub, evicted) = (hub.clone(), evicted.clone());
        tokio::spawn(server.serve(move |ws, conn| {
            let publisher = conn.request().uri().path() == "/publish";
            relay(ws, hub.clone(), publisher, evicted.clone())
        }))
    };
    (hub, evicted, serving)
}

/// A client whose receive window is 4 KiB: it never reads until told to.
async fn stalled_client(
    url: &str,
    addr: std::net::SocketAddr,
) -> tether::WebSocket<tokio::net::TcpStream> {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let tcp = socket.connect(addr).await.unwrap();
    ClientBuilder::new().handshake(tcp, url).await.unwrap()
}

#[allow(clippy::print_stdout)] // the figures go to the parent's failure message
async fn attack() {
    let mut server = Server::bind("127.0.0.1:0").await.unwrap();
    let addr = server.local_addr().unwrap();
    let mut config = tether::Config::default();
    config.set_close_timeout(Some(Duration::from_secs(30)));
    server.config(config);
    let (hub, evicted, serving) = serve_relays(server, MAX_BACKLOG);
    let url = format!("ws://{addr}/");

    let mut stalled = Vec::new();
    for _ in 0..STALLED {
        stalled.push(stalled_client(&url, addr).await);
    }
    // The relay sends a 16 MiB message as 64 KiB fragments: a reader with the default
    // limits (16 MiB a message) takes it, each continuation counting its payload.
    let mut healthy = ClientBuilder::new().connect(&url).await.unwrap();
    let mut publisher = ClientBuilder::new()
        .connect(&format!("ws://{addr}/publish"))
        .await
        .unwrap();
    // Every relay has subscribed once the hub counts them all.
    while hub.subscribers() < STALLED + 1 {
        tokio::task::yield_now().await;
    }
    let payloads: Vec<Bytes> = (0..MESSAGES)
        .map(|i| Bytes::from(vec![i as u8 + 1; MESSAGE]))
        .collect();

    // The peak of live heap, sampled every millisecond while the messages flow.
    let baseline = live_bytes();
    let peak = Arc::new(AtomicI64::new(baseline));
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let (peak, sampling) = (peak.clone(), sampling.clone());
        std::thread::spawn(move || {
            while sampling.load(Ordering::Relaxed) {
                peak.fetch_max(live_bytes(), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };

    for payload in &payloads {
        publisher
            .send(Message::Binary(payload.clone()))
            .await
            .unwrap();
        // The healthy client reads each message whole before the next is published.
        let received = healthy.next().await.unwrap().unwrap();
        assert!(
            matches!(&received, Message::Binary(data) if data == payload),
            "the healthy client got a different message ({} bytes)",
            received.len()
        );
    }
    while evicted.load(Ordering::SeqCst) < STALLED {
        tokio::task::yield_now().await;
    }
    sampling.store(false, Ordering::Relaxed);
    sampler.join().unwrap();
    let peak = peak.load(Ordering::Relaxed) - baseline;
    println!("peak live heap above baseline: {peak} B for {STALLED} stalled clients");
    assert!(
        peak < BOUND,
        "live heap grew by {peak} B (bound {BOUND} B) for {STALLED} stalled clients"
    );
    assert_eq!(hub.subscribers(), 1, "only the healthy subscriber is left");

    // The stalled clients read now: what was written before the cut, then the close, 1013.
    for mut ws in stalled {
        let code = loop {
            match ws.next().await {
                Some(Ok(Message::Close(frame))) => break frame.map(|frame| frame.code),
                Some(Ok(_)) => {}
                other => panic!("a stalled client saw {other:?} instead of a close"),
            }
        };
        assert_eq!(code, Some(CloseCode::TRY_AGAIN_LATER));
    }
    publisher.close(CloseCode::NORMAL, "").await.unwrap();
    healthy.close(CloseCode::NORMAL, "").await.unwrap();
    serving.abort();
}

/// A publisher of empty messages: each counts 64 bytes against a subscriber's backlog
/// (held.rs), so a client that never reads is cut off with 1013 instead of queuing them
/// without bound (a backlog that counted payload bytes alone never reached its limit). The
/// stalled client reads after the publisher is done: what was written before the cut, then
/// the close; without the cut it would find the publisher's last message, `end`, instead.
#[tokio::test]
async fn empty_messages_cut_a_stalled_subscriber_off_with_1013() {
    /// The stalled client's socket and the relay's write buffer take some 200 KiB of 2-byte
    /// frames before its backlog grows; 400 000 is past that and 16 MiB of backlog.
    const EMPTY: usize = 400_000;
    let server = Server::bind("127.0.0.1:0").await.unwrap();
    let addr = server.local_addr().unwrap();
    let (hub, evicted, serving) = serve_relays(server, 1 << 20);
    let url = format!("ws://{addr}/");
    let mut stalled = stalled_client(&url, addr).await;
    let mut publisher = ClientBuilder::new()
        .connect(&format!("ws://{addr}/publish"))
        .await
        .unwrap();
    while hub.subscribers() < 1 {
        tokio::task::yield_now().await;
    }
    for _ in 0..EMPTY {
        publisher.feed(Message::binary(Bytes::new())).await.unwrap();
    }
    publisher.send(Message::text("end")).await.unwrap();
    let code = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match stalled.next().await {
                Some(Ok(Message::Close(frame))) => break frame.map(|frame| frame.code),
                Some(Ok(Message::Text(text))) if text.as_str() == "end" => {
                    panic!("every empty message was queued: no cut-off")
                }
                Some(Ok(_)) => {}
                other => panic!("the stalled client saw {other:?} instead of a close"),
            }
        }
    })
    .await
    .expect("the stalled client reads to its end");
    assert_eq!(code, Some(CloseCode::TRY_AGAIN_LATER));
    assert_eq!(evicted.load(Ordering::SeqCst), 1);
    publisher.close(CloseCode::NORMAL, "").await.unwrap();
    serving.abort();
}
