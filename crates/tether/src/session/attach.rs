//! A client session on each new connection (docs/sessions.md §1, §4, §6): the hello, the
//! server's answer within the handshake timeout, and the retry rule that never reconnects a
//! session that is over.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tether_codec::{CloseCode, Message};
use tether_heartbeat::{Decision, DefaultRetryPolicy, Failure, RetryPolicy};
use tether_session::{Control, Origin, SUBPROTOCOL};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::error::Error;
use crate::session::link::SessionLink;
use crate::session::shared::Shared;
use crate::session::wire;
use crate::supervised::Supervised;
use crate::websocket::WebSocket;

/// The session handshake on a new connection (docs/sessions.md §4): `\0new` or
/// `\0resume <id> <received>`, then the server's answer.
pub(super) async fn attach<S>(
    mut ws: WebSocket<S>,
    shared: Arc<Shared>,
    timeout: Option<Duration>,
) -> Result<SessionLink<S>, Failure>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    if ws.subprotocol() != Some(SUBPROTOCOL) {
        // §1: "it closes with 1000 and reports locally that the server does not support
        // sessions".
        let _ = ws.close(CloseCode::NORMAL, "").await;
        shared.lock().refuse();
        return Err(fatal(Error::NoSessions.to_string()));
    }
    let hello = shared.lock().client.hello();
    let answer = async {
        ws.send(Message::text(hello.encode())).await?;
        first_message(&mut ws).await
    };
    let answer = match timeout {
        Some(limit) => tokio::time::timeout(limit, answer)
            .await
            .map_err(|_| Failure::Timeout)?,
        None => answer.await,
    };
    let answer = answer.map_err(|error| error.failure())?;
    let Some((text, payload)) = wire::payload(&answer) else {
        // A close frame came first: a lost reason's code ends the session (§6).
        let code = match &answer {
            Message::Close(Some(frame)) => Some(frame.code.0),
            _ => None,
        };
        if let Some(code) = code {
            shared.lock().client.endpoint_mut().closed_with(code);
        }
        return Err(Failure::Closed { code });
    };
    let attached = shared.lock().client.handle_answer(text, payload);
    match attached {
        Ok(attached) => {
            let state = shared.lock();
            let endpoint = state.client.endpoint();
            tracing::info!(
                id = %attached.id,
                resumed = attached.resumed,
                server_has = attached.peer_received,
                resending = endpoint.sent() - attached.peer_received,
                received = endpoint.received(),
                "session {}",
                if attached.resumed { "resumed" } else { "opened" }
            );
            drop(state);
            Ok(SessionLink::new(Supervised(ws), shared))
        }
        Err(lost) => {
            tracing::warn!(%lost, "session lost");
            if lost.origin == Origin::Local {
                // §6: send `\0lost <reason>`, then close with its code.
                let _ = ws
                    .send(Message::text(Control::Lost(lost.reason).encode()))
                    .await;
                let _ = ws
                    .close(CloseCode(lost.reason.close_code()), "session lost")
                    .await;
            }
            Err(fatal(lost.to_string()))
        }
    }
}

/// The first text, binary or close message on the connection.
async fn first_message<S>(ws: &mut WebSocket<S>) -> Result<Message, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    loop {
        match ws.next().await {
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(message)) => return Ok(message),
            Some(Err(error)) => return Err(error),
            None => return Err(Error::Closed),
        }
    }
}

fn fatal(message: String) -> Failure {
    Failure::Other {
        message,
        retryable: false,
    }
}

/// The default retry rules, and no retry once the session is over.
pub(super) struct SessionPolicy {
    pub(super) inner: DefaultRetryPolicy,
    pub(super) shared: Arc<Shared>,
}

impl RetryPolicy for SessionPolicy {
    fn decide(&mut self, failure: &Failure, attempt: u32) -> Decision {
        if self.shared.lock().is_over() {
            return Decision::Fatal;
        }
        self.inner.decide(failure, attempt)
    }
}
