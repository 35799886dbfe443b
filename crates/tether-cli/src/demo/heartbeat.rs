//! The demo's heartbeat step (心跳检测): a supervised client measures round trips, then the
//! server goes silent behind a loopback proxy that stops forwarding while keeping TCP
//! open; the client declares it dead within its bound, closes, and reconnects with backoff.
//!
//! ```text
//!   client (supervised) ──TCP── proxy ──TCP── tether::Server (echo; its WebSocket
//!        Ping nonce ─────────────►  │  ─────────►  answers each Ping with a Pong)
//!        ◄──────────── Pong nonce   │  ◄─────────
//!                          freeze:  ╳  nothing forwarded, both connections stay open
//! ```
//!
//! Unlike the other steps it runs on the facade (`tether::connect_supervised`,
//! `tether::Server`): the heartbeat is a property of a whole connection's life, not of
//! its bytes. Intervals are short so the step takes about a second.

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use tether::heartbeat::{Event, KeepaliveConfig, ReconnectConfig, Supervisor, SupervisorConfig};
use tether::{connect_supervised, Message, PingProbe, Server};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::Narrator;

/// The probe interval: short, so the step is quick.
const INTERVAL: Duration = Duration::from_millis(200);
/// The pong timeout floor; on loopback the adaptive timeout stays at it.
const TIMEOUT: Duration = Duration::from_millis(150);
/// Consecutive misses that make the server dead (the heartbeat crate's default).
const MISSES: u32 = 2;
/// How long the client waits for its close frame to get out before dropping TCP.
const GRACE: Duration = Duration::from_millis(200);
/// Round trips shown before the server goes silent.
const PROBES_SHOWN: usize = 3;
/// How late the runtime may run before the heartbeat counts a local stall and waits.
const STALL_TOLERANCE: Duration = Duration::from_secs(1);
/// No single event of the step may take longer than this.
const EVENT_LIMIT: Duration = Duration::from_secs(10);

/// Step: the heartbeat, a silent server, detection and reconnection.
pub(super) async fn step_heartbeat<W: Write>(say: &mut Narrator<W>) -> Result<()> {
    say.step("Heartbeat: a silent server is detected and replaced (心跳检测)")?;
    say.text(
        "The client sends an agreed probe when the link has been quiet for an interval: a\n\
         Ping frame carrying an 8-byte nonce. The server's WebSocket answers at once with a\n\
         Pong echoing it. No answer within the timeout: the link is suspect and a second\n\
         probe goes out; a second miss and the server is dead. The client closes (1011\n\
         heartbeat timeout) and connects again, after a random backoff.",
    )?;
    let mut tasks = JoinSet::new();
    let server_addr = echo_server(&mut tasks).await?;
    let (proxy_addr, mut valves) = proxy(&mut tasks, server_addr).await?;
    let bound = INTERVAL + TIMEOUT * MISSES;
    say.fact(
        "setup",
        &format!(
            "server ws://{server_addr}, client through a proxy at {proxy_addr} that can stop forwarding"
        ),
    )?;
    say.fact(
        "heartbeat",
        &format!(
            "interval {INTERVAL:?}, timeout {TIMEOUT:?}, dead after {MISSES} misses: \
             a verdict within {bound:?} of silence (give or take a timer tick)"
        ),
    )?;

    let mut client = connect_supervised(&format!("ws://{proxy_addr}/"), &client_config())?;
    let mut events = client.events().context("the event receiver")?;
    next_event(&mut events, |e| *e == Event::Connected).await?;
    let valve = tokio::time::timeout(EVENT_LIMIT, valves.recv())
        .await
        .ok()
        .flatten()
        .context("the proxy saw no connection")?;
    let rtts = show_probes(say, &mut events).await?;

    // The server goes silent: its pongs (and everything else) are held in the proxy.
    valve.send_replace(false);
    say.fact(
        "proxy",
        "stops forwarding both ways; both TCP connections stay open",
    )?;
    let (detected, reconnected) = watch_silence(say, &mut events).await?;
    // Timed from here, on a busy machine the verdict may seem early (a probe was already
    // in flight when the proxy froze) or late (this task ran late): said, not fatal.
    if detected > bound + STALL_TOLERANCE {
        say.fact(
            "note",
            &format!(
                "{detected:.0?} is past the bound: this machine was busy (the events arrived late)"
            ),
        )?;
    }
    echo_again(say, &mut client).await?;
    client.close().await;
    tasks.shutdown().await;

    let rtts: Vec<String> = rtts.iter().map(|rtt| format!("{rtt:.2?}")).collect();
    say.remember(
        "heartbeat",
        &format!(
            "rtt {}; silent server dead after {detected:.0?} (bound {bound:?}), \
             connected again {reconnected:.0?} after the verdict",
            rtts.join(" / "),
        ),
    );
    Ok(())
}

/// The first round trips, while the server still answers.
async fn show_probes<W: Write>(
    say: &mut Narrator<W>,
    events: &mut mpsc::Receiver<Event>,
) -> Result<Vec<Duration>> {
    let mut rtts = Vec::new();
    while rtts.len() < PROBES_SHOWN {
        if let Event::ProbeAcked {
            nonce,
            rtt: Some(rtt),
            timeout,
        } = next_event(events, |e| matches!(e, Event::ProbeAcked { .. })).await?
        {
            say.fact(
                "probe",
                &format!("nonce {nonce:016x} answered in {rtt:.2?} (timeout now {timeout:.0?})"),
            )?;
            rtts.push(rtt);
        }
    }
    Ok(rtts)
}

/// From the moment the server goes silent until the client is connected again: returns how
/// long the verdict took, and how long after it the client was back.
async fn watch_silence<W: Write>(
    say: &mut Narrator<W>,
    events: &mut mpsc::Receiver<Event>,
) -> Result<(Duration, Duration)> {
    let silent = Instant::now();
    let mut detected = None;
    loop {
        let event = next_event(events, |e| {
            matches!(
                e,
                Event::Suspect { .. }
                    | Event::Dead(_)
                    | Event::Disconnected(_)
                    | Event::Reconnecting { .. }
                    | Event::Reconnected { .. }
            )
        })
        .await?;
        let at = silent.elapsed();
        if matches!(event, Event::Dead(_)) {
            detected = Some(at);
        }
        let since_verdict = at.saturating_sub(detected.unwrap_or(at));
        say.fact(
            "client",
            &format!("+{at:.0?}  {}", silence_line(&event, since_verdict)),
        )?;
        if matches!(event, Event::Reconnected { .. }) {
            let Some(detected) = detected else {
                bail!("the client reconnected without declaring the server dead");
            };
            return Ok((detected, since_verdict));
        }
    }
}

/// What the client did, for one of the events [`watch_silence`] waits for.
fn silence_line(event: &Event, since_verdict: Duration) -> String {
    match event {
        Event::Suspect { misses } => {
            format!("probe unanswered ({misses} miss): suspect, probing again")
        }
        Event::Dead(reason) => format!("server declared dead: close 1011 \"{reason}\""),
        Event::Disconnected(_) => {
            format!("TCP dropped: the close grace ({GRACE:?}) passed unanswered")
        }
        Event::Reconnecting { delay, attempt } => {
            format!("reconnecting in {delay:.0?} (attempt {attempt}, full jitter)")
        }
        Event::Reconnected { downtime, .. } => format!(
            "connected again: {since_verdict:.0?} after the verdict, \
             {downtime:.0?} after the old TCP was dropped"
        ),
        other => format!("{other:?}"),
    }
}

/// A message echoed over the new connection: the client is really back.
async fn echo_again<W: Write>(
    say: &mut Narrator<W>,
    client: &mut Supervisor<Message>,
) -> Result<()> {
    client.send(Message::text("still here?")).await?;
    let echo = tokio::time::timeout(EVENT_LIMIT, client.recv())
        .await
        .ok()
        .flatten()
        .context("no echo on the new connection")?;
    say.fact(
        "client",
        &format!(
            "echo on the new connection: {}",
            crate::annotate::describe(&echo)
        ),
    )
}

/// The client's supervisor: the step's short heartbeat, a small backoff, a short grace.
pub(super) fn client_config() -> SupervisorConfig {
    let mut keepalive = KeepaliveConfig::with_interval(INTERVAL, Some(TIMEOUT));
    keepalive.set_stall_tolerance(STALL_TOLERANCE);
    let mut reconnect = ReconnectConfig::default();
    reconnect
        .set_initial_delay(Duration::from_millis(100))
        .set_max_delay(Duration::from_millis(400));
    let mut config = SupervisorConfig::default();
    config
        .set_keepalive(Some(keepalive))
        .set_reconnect(reconnect)
        .set_close_grace(GRACE);
    config
}

/// The next event `want` accepts; an error after [`EVENT_LIMIT`].
async fn next_event(
    events: &mut mpsc::Receiver<Event>,
    want: impl Fn(&Event) -> bool,
) -> Result<Event> {
    let found = tokio::time::timeout(EVENT_LIMIT, async {
        while let Some(event) = events.recv().await {
            if want(&event) {
                return Some(event);
            }
        }
        None
    })
    .await;
    match found {
        Ok(Some(event)) => Ok(event),
        Ok(None) => bail!("the supervisor stopped"),
        Err(_) => bail!("no heartbeat event within {EVENT_LIMIT:?}"),
    }
}

/// A tether echo server whose connections answer probes (the WebSocket answers Pings).
async fn echo_server(tasks: &mut JoinSet<()>) -> Result<SocketAddr> {
    let server = Server::bind("127.0.0.1:0").await?;
    let addr = server.local_addr()?;
    tasks.spawn(async move {
        let served = server
            .serve(|ws, _conn| async move {
                let mut config = SupervisorConfig::default();
                config.set_keepalive(None);
                if let Ok(conn) = ws.supervise(&config, PingProbe::new()) {
                    echo(conn).await;
                }
            })
            .await;
        if let Err(err) = served {
            tracing::warn!(error = %err, "demo server stopped");
        }
    });
    Ok(addr)
}

async fn echo(mut conn: Supervisor<Message>) {
    while let Some(message) = conn.recv().await {
        if conn.send(message).await.is_err() {
            return;
        }
    }
}

/// A loopback TCP proxy to `server`. Each connection it forwards comes with a valve:
/// `false` stops forwarding both ways while both connections stay open.
pub(super) async fn proxy(
    tasks: &mut JoinSet<()>,
    server: SocketAddr,
) -> Result<(SocketAddr, mpsc::UnboundedReceiver<watch::Sender<bool>>)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (valves, valves_rx) = mpsc::unbounded_channel();
    tasks.spawn(async move {
        let mut pumps = JoinSet::new();
        while let Ok((client, _)) = listener.accept().await {
            let Ok(upstream) = TcpStream::connect(server).await else {
                continue;
            };
            let (valve, open) = watch::channel(true);
            let (client_read, client_write) = client.into_split();
            let (server_read, server_write) = upstream.into_split();
            pumps.spawn(pump(client_read, server_write, open.clone()));
            pumps.spawn(pump(server_read, client_write, open));
            // Nobody listening for valves just means nobody will freeze this one.
            let _ = valves.send(valve);
        }
    });
    Ok((addr, valves_rx))
}

/// Copies bytes while the valve is open; while it is shut, reads nothing, so the bytes
/// stay in flight and the connection stays open.
async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, mut open: watch::Receiver<bool>) {
    let mut buf = vec![0u8; 16 << 10];
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
                if changed.is_err() {
                    return;
                }
                continue;
            }
        };
        // Bytes read just as the valve shut are held until it opens again.
        if open.wait_for(|open| *open).await.is_err() {
            return;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_silent_server_is_declared_dead_within_the_bound_and_replaced() {
        let mut out = Vec::new();
        let mut say = Narrator::new(&mut out);
        step_heartbeat(&mut say).await.expect("the step runs");
        let notes = std::mem::take(&mut say.notes);
        let text = String::from_utf8(out).expect("UTF-8");
        let mut from = 0;
        for line in [
            "Step 1  Heartbeat",
            "answered in",
            "stops forwarding",
            "suspect, probing again",
            "server declared dead: close 1011 \"heartbeat timeout\"",
            "TCP dropped",
            "reconnecting in",
            "connected again",
            "echo on the new connection: text \"still here?\"",
        ] {
            let at = text[from..]
                .find(line)
                .unwrap_or_else(|| panic!("{line:?} missing or out of order:\n{text}"));
            from += at + line.len();
        }
        assert_eq!(text.matches("answered in").count(), PROBES_SHOWN, "{text}");
        assert!(
            matches!(&notes[..], [(label, value)] if label == "heartbeat" && value.contains("dead after")),
            "{notes:?}"
        );
    }
}
