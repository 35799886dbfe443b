//! Configurations and waits shared by the facade heartbeat tests.

use std::time::Duration;

use tether::heartbeat::{Event, KeepaliveConfig, LinkState, ReconnectConfig, SupervisorConfig};
use tether::{MaybeTls, Message, WebSocket};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};

/// Every wait on an event is bounded (in virtual time under a paused clock).
pub(super) const LIMIT: Duration = Duration::from_secs(30);

/// A client configuration probing every `interval` with the pong timeout floor `timeout`,
/// reconnecting after at most 100 ms, with a fixed seed.
pub(super) fn client_config(interval: Duration, timeout: Duration) -> SupervisorConfig {
    let mut reconnect = ReconnectConfig::default();
    reconnect
        .set_initial_delay(Duration::from_millis(100))
        .set_max_delay(Duration::from_millis(400));
    let mut config = SupervisorConfig::default();
    config
        .set_keepalive(Some(KeepaliveConfig::with_interval(
            interval,
            Some(timeout),
        )))
        .set_reconnect(reconnect)
        .set_close_grace(Duration::from_millis(200))
        .set_seed(Some(7));
    config
}

/// A server configuration that only answers probes.
pub(super) fn answering() -> SupervisorConfig {
    let mut config = SupervisorConfig::default();
    config.set_keepalive(None);
    config
}

/// The next event `want` accepts, skipping others; panics after [`LIMIT`].
pub(super) async fn next_event(
    events: &mut mpsc::Receiver<Event>,
    want: impl Fn(&Event) -> bool,
) -> Event {
    tokio::time::timeout(LIMIT, async {
        loop {
            let event = events.recv().await.expect("events end");
            if want(&event) {
                return event;
            }
        }
    })
    .await
    .expect("event within the limit")
}

/// The state a supervisor stops in; panics after [`LIMIT`].
pub(super) async fn closed_state(mut state: watch::Receiver<LinkState>) -> LinkState {
    tokio::time::timeout(LIMIT, state.wait_for(|s| matches!(s, LinkState::Closed(_))))
        .await
        .expect("stopped within the limit")
        .expect("state")
        .clone()
}

/// Echoes the application messages of a supervised server connection until it ends.
pub(super) async fn echo_supervised(mut conn: tether::heartbeat::Supervisor<Message>) {
    while let Some(message) = conn.recv().await {
        if conn.send(message).await.is_err() {
            return;
        }
    }
}

/// Reads what a WebSocket that was left unread has received, until its close frame: the
/// close code, and how many pings came before it.
pub(super) async fn drain_until_close<S>(ws: &mut WebSocket<S>) -> (Option<u16>, usize)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    use futures::StreamExt;
    let mut pings = 0;
    while let Some(Ok(message)) = ws.next().await {
        match message {
            Message::Ping(_) => pings += 1,
            Message::Close(frame) => return (frame.map(|f| f.code.0), pings),
            _ => {}
        }
    }
    (None, pings)
}

/// Server sockets kept open and never read: a server that stopped answering (its pongs
/// and everything else held back) while the connection stays up.
pub(super) type Frozen<S = MaybeTls<TcpStream>> =
    std::sync::Arc<std::sync::Mutex<Vec<WebSocket<S>>>>;
