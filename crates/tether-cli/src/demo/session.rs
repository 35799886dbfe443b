//! The demo's session step: the heartbeat finds a dead link and reconnects, and a session
//! (docs/sessions.md) makes the messages that were in flight on the dead link arrive anyway,
//! each exactly once and in order, with the counts that prove it.
//!
//! ```text
//!   client Session ──TCP── proxy ──TCP── Sessions (echo, one handler per session)
//!     1..1000 ──────────────► ╳ freeze: in flight, unacknowledged, kept for replay
//!     heartbeat: dead ─► reconnect ─► "\0resume <id> <received>" ─► resend what is missing
//! ```

use std::io::Write;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use tether::session::{select, Counts, EndpointConfig, Session, SessionServerConfig, Sessions};
use tether::{ClientBuilder, Message, Server};
use tokio::task::JoinSet;

use super::heartbeat::{client_config, proxy};
use super::Narrator;

/// The proxy's valves, one per connection it forwards.
type Valves = tokio::sync::mpsc::UnboundedReceiver<tokio::sync::watch::Sender<bool>>;

/// Messages the client sends on the session.
const MESSAGES: u32 = 2000;
/// Echoes received when the link freezes: the session is mid-flight.
const FREEZE_AT: usize = 300;
/// No wait of the step may take longer than this.
const LIMIT: Duration = Duration::from_secs(20);

/// Step: a session carries messages across a dead link.
pub(super) async fn step_session<W: Write>(say: &mut Narrator<W>) -> Result<()> {
    say.step("Sessions: nothing lost, nothing doubled across a reconnect")?;
    say.text(
        "Reconnecting alone loses what was written to a link that later proves dead. A session\n\
         numbers every message, keeps it until the peer acknowledges it, and on reconnect\n\
         each side says how many it has: the other resends exactly the rest.",
    )?;
    let mut tasks = JoinSet::new();
    let server = Server::bind("127.0.0.1:0").await?;
    let server_addr = server.local_addr()?;
    let sessions = Sessions::new(SessionServerConfig::default(), crate::serve_sessions::echo)?;
    let mut server = server;
    server.decide(|request| Ok(select(request)));
    let serving = sessions.clone();
    tasks.spawn(async move {
        let _ = server.serve(move |ws, _| serving.clone().attach(ws)).await;
    });
    let (proxy_addr, mut valves) = proxy(&mut tasks, server_addr).await?;
    let url = format!("ws://{proxy_addr}/");
    let mut session =
        ClientBuilder::new().session(&url, &client_config(), EndpointConfig::default())?;
    let sent: Vec<String> = (1..=MESSAGES).map(|i| i.to_string()).collect();
    let (echoed, at_freeze) = converse(say, &mut session, &sent, &mut valves).await?;
    if echoed != sent {
        bail!("the echoes differ from what was sent");
    }
    session.end().await?;
    if tokio::time::timeout(LIMIT, session.recv()).await?.is_some() {
        bail!("a message after the server's end");
    }
    let counts = session.counts();
    say.fact(
        "resume",
        &format!(
            "session {} resumed; {} echoes, each once and in order (checked)",
            session.id().map(|id| id.to_string()).unwrap_or_default(),
            echoed.len()
        ),
    )?;
    say.fact(
        "counts",
        &format!(
            "sent {}, acknowledged {}, received {}: finished with close 1000",
            counts.sent, counts.acked, counts.received
        ),
    )?;
    say.remember(
        "session",
        &format!(
            "{} messages across a frozen link, {} unacknowledged at the freeze, all echoed once",
            sent.len(),
            at_freeze.sent - at_freeze.acked
        ),
    );
    tasks.shutdown().await;
    Ok(())
}

/// Sends every message while taking the echoes (a client that stops reading is not one
/// the heartbeat may judge), and freezes the link after [`FREEZE_AT`] echoes. Returns the
/// echoes and the counts at the freeze.
async fn converse<W: Write>(
    say: &mut Narrator<W>,
    session: &mut Session,
    sent: &[String],
    valves: &mut Valves,
) -> Result<(Vec<String>, Counts)> {
    let mut echoed = Vec::with_capacity(sent.len());
    let mut next = 0;
    let mut at_freeze = None;
    // Kept to the end: a dropped valve ends its connection instead of freezing it.
    let mut frozen = None;
    while echoed.len() < sent.len() {
        if echoed.len() == FREEZE_AT && frozen.is_none() {
            let (valve, counts) = freeze(say, session, valves).await?;
            frozen = Some(valve);
            at_freeze = Some(counts);
        }
        let message = sent.get(next).map(|text| Message::text(text.clone()));
        // `ready` borrows nothing, so it can wait next to `recv`.
        let ready = message.as_ref().map(|m| session.ready(m));
        tokio::select! {
            biased;
            received = tokio::time::timeout(LIMIT, session.recv()) => match received {
                Ok(Some(Ok(Message::Text(text)))) => echoed.push(text.to_string()),
                Ok(Some(Ok(other))) => bail!("unexpected {other:?}"),
                Ok(Some(Err(lost))) => bail!("{lost}"),
                Ok(None) => bail!("the session ended after {} echoes", echoed.len()),
                Err(_) => bail!("no echo within {LIMIT:?} after {}", echoed.len()),
            },
            room = crate::conversation::when(ready) => {
                room?;
                session.try_send(message.context("a message to send")?)?;
                next += 1;
            }
        }
    }
    Ok((echoed, at_freeze.context("the link never froze")?))
}

/// Stops the proxy forwarding: what is on the link now is in flight, and lost with it.
async fn freeze<W: Write>(
    say: &mut Narrator<W>,
    session: &Session,
    valves: &mut Valves,
) -> Result<(tokio::sync::watch::Sender<bool>, Counts)> {
    let valve = tokio::time::timeout(LIMIT, valves.recv())
        .await
        .ok()
        .flatten()
        .context("the proxy saw no connection")?;
    valve.send_replace(false);
    let counts = session.counts();
    say.fact(
        "freeze",
        &format!(
            "the proxy stops forwarding: {} messages numbered, {} acknowledged, {} echoes \
             back; the rest are in flight, the heartbeat finds the link dead, the session resumes",
            counts.sent, counts.acked, counts.received
        ),
    )?;
    Ok((valve, counts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn messages_in_flight_at_the_freeze_arrive_once_and_in_order() {
        let mut out = Vec::new();
        let mut say = Narrator::new(&mut out);
        step_session(&mut say).await.expect("the step runs");
        let notes = std::mem::take(&mut say.notes);
        let text = String::from_utf8(out).expect("UTF-8");
        for line in [
            "stops forwarding",
            "resumed; 2000 echoes",
            "sent 2000, acknowledged 2000, received 2000",
        ] {
            assert!(text.contains(line), "{line:?} missing:\n{text}");
        }
        assert!(
            matches!(&notes[..], [(label, _)] if label == "session"),
            "{notes:?}"
        );
    }
}
