//! A client that stays connected: `tether::connect_supervised` probes the server, declares it
//! dead when the answers stop, and reconnects with backoff; messages sent meanwhile wait in
//! its outbox.
//!
//! ```text
//! cargo run --example axum_chat                        # a server to talk to
//! cargo run --example reconnecting_client              # ws://127.0.0.1:3000/chat/lobby
//! cargo run --example reconnecting_client -- ws://127.0.0.1:3001/ws
//! ```
//!
//! Stop and restart the server: the client reports the loss and reconnects by itself.
#![allow(clippy::print_stdout)]

use std::time::Duration;

use tether::heartbeat::{KeepaliveConfig, SupervisorConfig};
use tether::{connect_supervised, Message};

#[tokio::main]
async fn main() -> Result<(), tether::Error> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "ws://127.0.0.1:3000/chat/lobby".to_owned());
    // Probe every 5 s; an unanswered probe past its timeout makes the link dead.
    let mut config = SupervisorConfig::default();
    config.set_keepalive(Some(KeepaliveConfig::with_interval(
        Duration::from_secs(5),
        None,
    )));
    let mut client = connect_supervised(&url, &config)?;

    // What happens to the link: connected, probes answered, dead, reconnecting...
    if let Some(mut events) = client.events() {
        tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                println!("event: {event:?}");
            }
        });
    }
    let mut tick = tokio::time::interval(Duration::from_secs(3));
    let mut n = 0;
    loop {
        tokio::select! {
            _ = tick.tick() => {
                n += 1;
                // Queued while the link is down, sent in order once it is back.
                client.send(Message::text(format!("hello {n}"))).await?;
            }
            received = client.recv() => match received {
                Some(message) => println!("received: {message:?}"),
                None => break, // the supervisor stopped for good
            },
        }
    }
    Ok(())
}
