//! A chat server in an axum router: one topic per room, Tether WebSockets with the
//! heartbeat, and ordinary HTTP routes in the same service.
//!
//! ```text
//! cargo run --example axum_chat            # listens on 127.0.0.1:3000
//! # then, in other terminals:
//! cargo run -p tether-cli -- connect ws://127.0.0.1:3000/chat/lobby
//! cargo run --example reconnecting_client  # joins the lobby too
//! curl http://127.0.0.1:3000/rooms         # rooms and their members
//! ```
//!
//! Every text message a member sends goes to everyone in the room, sender included, through
//! `tether::pubsub`: the payload is shared, not copied per member, and a member that stops
//! reading is cut off when its queue passes its byte bound instead of slowing the others.
#![allow(clippy::print_stdout)]

use std::time::Duration;

use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use tether::axum::{HyperWebSocket, WebSocketUpgrade};
use tether::heartbeat::{KeepaliveConfig, SupervisorConfig};
use tether::pubsub::{self, Bus, Delivery};
use tether::{Message, PingProbe, Utf8Bytes};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let bus: Bus = Bus::new(pubsub::Config::default());
    let app = Router::new()
        .route("/chat/{room}", get(join))
        .route("/rooms", get(rooms))
        .with_state(bus);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("chat on ws://{}/chat/<room>", listener.local_addr()?);
    axum::serve(listener, app).await
}

/// `GET /chat/{room}`: the Upgrade. A bad request never reaches this body: the extractor
/// answers it (400, 426, ...) as `tether serve` would.
async fn join(ws: WebSocketUpgrade, Path(room): Path<String>, State(bus): State<Bus>) -> Response {
    ws.max_message_size(16 << 10)
        .on_upgrade(move |ws| chat(ws, room, bus))
}

/// One member: room messages out, the member's messages into the room.
async fn chat(ws: HyperWebSocket, room: String, bus: Bus) {
    let mut member = bus.subscriber();
    if member.subscribe(&room).is_err() {
        return; // not a valid topic name
    }
    // The heartbeat: probe every 15 s, close a member that stops answering (1011).
    let mut heartbeat = SupervisorConfig::default();
    heartbeat.set_keepalive(Some(KeepaliveConfig::with_interval(
        Duration::from_secs(15),
        None,
    )));
    let Ok(mut link) = ws.supervise(&heartbeat, PingProbe::new()) else {
        return;
    };
    loop {
        tokio::select! {
            said = link.recv() => match said {
                Some(Message::Text(text)) => {
                    let _ = bus.publish(&room, text.into_bytes());
                }
                Some(_) => {}
                None => break, // closed, or dead by the heartbeat
            },
            heard = member.recv() => match heard {
                Ok(Delivery::Message { payload, .. }) => {
                    let Ok(text) = Utf8Bytes::try_from(payload) else { continue };
                    if link.send(Message::text(text)).await.is_err() {
                        break;
                    }
                }
                Ok(_) => {}     // a gap or dropped messages: nothing to show in this demo
                Err(_) => break, // cut off: this member fell too far behind
            },
        }
    }
    link.close().await;
}

/// `GET /rooms`: plain HTTP next to the WebSocket route.
async fn rooms(State(bus): State<Bus>) -> String {
    let mut out = String::new();
    for (room, members) in bus.topics() {
        out.push_str(&format!("{} {members}\n", room.as_str()));
    }
    out
}
