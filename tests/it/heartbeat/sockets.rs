//! Real sockets: a client supervised over loopback TCP, through a proxy that can stop
//! forwarding in either direction while keeping both connections open.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tether_heartbeat::{
    CloseReason, Event, Failure, KeepaliveConfig, LinkState, ReconnectConfig, StringProbe,
    Supervisor, SupervisorConfig,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_util::codec::{Framed, LinesCodec};

/// Which directions one proxied connection forwards.
struct Valves {
    up: watch::Sender<bool>,
    down: watch::Sender<bool>,
}

/// Accepts on a loopback port and forwards every connection to `server`; hands out the
/// valves of each new connection.
async fn proxy(server: SocketAddr) -> (SocketAddr, mpsc::UnboundedReceiver<Valves>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(upstream) = TcpStream::connect(server).await else {
                continue;
            };
            let (up, up_rx) = watch::channel(true);
            let (down, down_rx) = watch::channel(true);
            let (client_read, client_write) = client.into_split();
            let (server_read, server_write) = upstream.into_split();
            tokio::spawn(pump(client_read, server_write, up_rx));
            tokio::spawn(pump(server_read, client_write, down_rx));
            if tx.send(Valves { up, down }).is_err() {
                return;
            }
        }
    });
    (addr, rx)
}

/// Copies bytes while the valve is open; while it is shut, reads nothing and holds what
/// it has, so the connection stays open and the bytes stay in flight.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut open: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if open.wait_for(|open| *open).await.is_err() {
            return;
        }
        let n = tokio::select! {
            read = from.read(&mut buf) => match read {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            },
            changed = open.changed() => {
                if changed.is_err() { return; }
                continue;
            }
        };
        if open.wait_for(|open| *open).await.is_err() {
            return;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// A line server whose connections are supervised (answering and probing); records the
/// application lines it receives, in order, across connections.
async fn server(received: Arc<Mutex<Vec<String>>>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut keepalive = KeepaliveConfig::default();
    keepalive
        .set_interval(Duration::from_secs(1))
        .set_pong_timeout(Duration::from_millis(500))
        .set_max_pong_timeout(Duration::from_secs(1))
        .set_round_trip_deadline(Duration::from_secs(2));
    let mut config = SupervisorConfig::default();
    config.set_keepalive(Some(keepalive));
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let framed = Framed::new(stream, LinesCodec::new_with_max_length(1024));
            let mut conn = Supervisor::accept(&config, StringProbe::default(), framed).unwrap();
            let received = Arc::clone(&received);
            tokio::spawn(async move {
                while let Some(line) = conn.recv().await {
                    received.lock().unwrap().push(line);
                }
            });
        }
    });
    addr
}

fn client_config() -> SupervisorConfig {
    let mut keepalive = KeepaliveConfig::default();
    keepalive
        .set_interval(Duration::from_millis(300))
        .set_pong_timeout(Duration::from_millis(300))
        .set_max_pong_timeout(Duration::from_secs(1))
        .set_round_trip_deadline(Duration::from_secs(1))
        .set_stall_tolerance(Duration::from_millis(200));
    let mut reconnect = ReconnectConfig::default();
    reconnect
        .set_initial_delay(Duration::from_millis(100))
        .set_max_delay(Duration::from_secs(1));
    let mut config = SupervisorConfig::default();
    config
        .set_keepalive(Some(keepalive))
        .set_reconnect(reconnect)
        .set_close_grace(Duration::from_millis(200))
        .set_seed(Some(11));
    config
}

async fn until_received(received: &Arc<Mutex<Vec<String>>>, count: usize) {
    while received.lock().unwrap().len() < count {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn next_event(events: &mut mpsc::Receiver<Event>, want: fn(&Event) -> bool) -> Event {
    loop {
        let event = events.recv().await.expect("events end");
        if want(&event) {
            return event;
        }
    }
}

#[tokio::test]
async fn proxy_blackholes_are_detected_and_the_outbox_survives_in_order() {
    tokio::time::timeout(Duration::from_secs(60), scenario())
        .await
        .expect("the scenario finished within a minute");
}

async fn scenario() {
    let received = Arc::new(Mutex::new(Vec::new()));
    let server = server(Arc::clone(&received)).await;
    let (proxy, mut valves) = proxy(server).await;
    let mut client = Supervisor::connect(&client_config(), StringProbe::default(), move || {
        let connect = TcpStream::connect(proxy);
        async move {
            let stream = connect.await.map_err(|e| Failure::Io(e.kind()))?;
            Ok(Framed::new(stream, LinesCodec::new_with_max_length(1024)))
        }
    })
    .unwrap();
    let mut events = client.events().unwrap();
    let mut sent = 0;
    let mut send_batch = |client: &Supervisor<String>| {
        for _ in 0..10 {
            client.try_send(format!("m{sent}")).unwrap();
            sent += 1;
        }
    };

    // Healthy: a round trip is measured and ten messages get through.
    next_event(&mut events, |e| {
        matches!(e, Event::ProbeAcked { rtt: Some(_), .. })
    })
    .await;
    send_batch(&client);
    until_received(&received, 10).await;

    // The server's answers stop (server -> client held back, both TCP connections open).
    let first = valves.recv().await.unwrap();
    first.down.send(false).unwrap();
    let dead = next_event(&mut events, |e| matches!(e, Event::Dead(_))).await;
    assert_eq!(dead, Event::Dead(CloseReason::HeartbeatTimeout));
    // Accepted while the link is down: held in the outbox.
    send_batch(&client);
    let reconnected = next_event(&mut events, |e| matches!(e, Event::Reconnected { .. })).await;
    assert!(matches!(
        reconnected,
        Event::Reconnected { attempts: 1.., .. }
    ));
    until_received(&received, 20).await;

    // Now both directions of the second connection stop.
    let second = valves.recv().await.unwrap();
    second.up.send(false).unwrap();
    second.down.send(false).unwrap();
    next_event(&mut events, |e| matches!(e, Event::Dead(_))).await;
    send_batch(&client);
    next_event(&mut events, |e| matches!(e, Event::Reconnected { .. })).await;
    until_received(&received, 30).await;

    let expected: Vec<String> = (0..30).map(|i| format!("m{i}")).collect();
    assert_eq!(
        *received.lock().unwrap(),
        expected,
        "nothing lost, nothing reordered"
    );
    assert!(matches!(*client.state().borrow(), LinkState::Open(_)));
    drop((first, second));
    assert_eq!(client.close().await, CloseReason::Local);
}
