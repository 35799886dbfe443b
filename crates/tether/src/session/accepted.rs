//! One server connection's part of a session: the session handshake (docs/sessions.md §4),
//! then carrying the session (carry.rs) until the connection or the session ends, then
//! parking or forgetting it.

use std::sync::Arc;

use futures_util::StreamExt;
use rand::RngCore;
use tether_codec::{CloseCode, Message};
use tether_session::{
    parse_hello, Attachment, Control, Endpoint, Hello, LostReason, SessionId, SUBPROTOCOL,
};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

use crate::session::carry::{carry, drain, Ended};
use crate::session::handler::{Handler, Lease};
use crate::session::outgoing::{self, Goodbye};
use crate::session::sessions::Inner;
use crate::session::state::Shared;
use crate::session::wire;
use crate::websocket::WebSocket;

/// The whole life of one connection with sessions.
pub(crate) async fn serve<S>(inner: &Inner, mut ws: WebSocket<S>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    if ws.subprotocol() != Some(SUBPROTOCOL) {
        let _ = ws
            .close(CloseCode::POLICY_VIOLATION, "tether.session.v1 expected")
            .await;
        return;
    }
    let Some((shared, attachment, lease)) = handshake(inner, &mut ws).await else {
        return;
    };
    let ended = carry(&mut ws, &shared, attachment, lease).await;
    let peer = ws.peer_close().map(|frame| frame.code.0);
    finish(inner, &shared, attachment, ended, peer);
}

/// Waits for `\0new` or `\0resume` (at most the handshake timeout), answers, and attaches
/// the session to this connection, with its hold on the handler. `None` when the
/// connection was closed instead.
async fn handshake<S>(
    inner: &Inner,
    ws: &mut WebSocket<S>,
) -> Option<(Arc<Shared>, Attachment, Lease)>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let timeout = inner.config.handshake_timeout();
    let Ok(first) = tokio::time::timeout(timeout, first_data(ws)).await else {
        // §7: "session handshake timeout ... close 1008".
        let _ = ws
            .close(CloseCode::POLICY_VIOLATION, "no session hello")
            .await;
        return None;
    };
    let (text, payload) = first.as_ref().and_then(wire::payload)?;
    let hello = match parse_hello(text, payload) {
        Ok(hello) => hello,
        Err(error) => {
            tracing::debug!(%error, "session handshake refused");
            say_lost(ws, LostReason::Protocol).await;
            return None;
        }
    };
    let attached = match hello {
        Hello::New => open(inner).map(|(shared, attachment, handler)| {
            let lease = Lease::new_session(Arc::clone(&shared), handler);
            (shared, attachment, lease)
        }),
        Hello::Resume { id, received } => {
            resume(inner, id, received).map(|(shared, attachment)| {
                let lease = Lease::resumed(Arc::clone(&shared));
                (shared, attachment, lease)
            })
        }
        // A later version's hello: v1 knows only these two (§3).
        _ => Err(LostReason::Protocol),
    };
    let (shared, attachment, lease) = match attached {
        Ok(attached) => attached,
        Err(reason) => {
            say_lost(ws, reason).await;
            return None;
        }
    };
    let answer = {
        let mut state = shared.lock();
        state.attach(attachment);
        Control::Session {
            id: shared.id,
            received: state.endpoint.received(),
        }
    };
    inner.changed();
    if ws.send(Message::text(answer.encode())).await.is_err() {
        // The session is attached to this connection: park it like any connection that
        // ended, or it would stay attached to nothing, beyond every bound. (The lease,
        // dropped, hands the handler to a task of its own.)
        finish(inner, &shared, attachment, Ended::Gone, None);
        return None;
    }
    Some((shared, attachment, lease))
}

/// A new session: a fresh id (128 bits from the OS), registered, and its handler, for this
/// connection to run.
fn open(inner: &Inner) -> Result<(Arc<Shared>, Attachment, Handler), LostReason> {
    let endpoint = Endpoint::new(*inner.config.endpoint()).map_err(|_| LostReason::Limit)?;
    loop {
        let mut bytes = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let id = SessionId::from_bytes(bytes);
        let shared = Shared::new(id, endpoint.clone());
        // `None` only for an id in use or remembered: draw again.
        if let Some(attachment) = inner.registry().open(id, Arc::clone(&shared)) {
            shared
                .lock()
                .endpoint
                .attach(0)
                .map_err(|lost| lost.reason)?;
            let handler = inner.handler(Arc::clone(&shared));
            tracing::debug!("session opened");
            return Ok((shared, attachment, handler));
        }
    }
}

/// An existing session on this connection; the connection that carried it (if any) is
/// replaced (§7: "the new connection wins").
fn resume(
    inner: &Inner,
    id: SessionId,
    received: u64,
) -> Result<(Arc<Shared>, Attachment), LostReason> {
    let (shared, attachment) = {
        let mut registry = inner.registry();
        // A window that passed is passed, whether or not the expiry task woke up yet.
        let expired = registry.handle_timeout(Instant::now().into_std());
        let resumed = registry.resume(id);
        let resumed = resumed.map(|r| (Arc::clone(r.session), r.attachment));
        drop(registry);
        inner.drop_sessions(expired);
        resumed?
    };
    let mut state = shared.lock();
    let attached = state.endpoint.attach(received);
    // Lost, or the client's count acknowledged what it has: room in the replay buffer for
    // an application waiting to send.
    shared.wake_app(&mut state);
    drop(state);
    if let Err(lost) = attached {
        inner.registry().remove(id);
        return Err(lost.reason);
    }
    tracing::debug!(received, "session resumed");
    Ok((shared, attachment))
}

/// The first text, binary or close message (`None`: the connection ended first).
async fn first_data<S>(ws: &mut WebSocket<S>) -> Option<Message>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    loop {
        match ws.next().await? {
            Ok(message) if message.is_data() => return Some(message),
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => continue,
        }
    }
}

/// `\0lost <reason>` and the close with its code, then the end of the closing handshake.
async fn say_lost<S>(ws: &mut WebSocket<S>, reason: LostReason)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut goodbye = Goodbye::None;
    while let Some(message) = outgoing::lost_goodbye(reason, &mut goodbye) {
        if ws.send(message).await.is_err() {
            return;
        }
    }
    drain(ws).await;
}

/// After the connection: park the session, or forget it when it is over.
fn finish(inner: &Inner, shared: &Shared, attachment: Attachment, ended: Ended, peer: Option<u16>) {
    let (over, bytes) = {
        let mut state = shared.lock();
        if !state.detach(attachment) {
            // Replaced: the session lives on another connection.
            return;
        }
        let endpoint = &state.endpoint;
        let over = endpoint.is_finished() || endpoint.lost().is_some();
        (over, endpoint.replay_bytes())
    };
    let id = shared.id;
    if over || matches!(ended, Ended::Over) {
        inner.registry().remove(id);
        tracing::debug!(?peer, "session over");
    } else {
        let dropped = inner
            .registry()
            .park(id, attachment, Instant::now().into_std(), bytes);
        inner.drop_sessions(dropped);
        tracing::debug!(?peer, "session parked");
    }
    inner.changed();
    shared.wake_app(&mut shared.lock());
}
