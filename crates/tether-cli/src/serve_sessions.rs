//! `tether serve --sessions`: the echo server with sessions that survive reconnects
//! (docs/sessions.md). A client that offers `tether.session.v1` gets it: every message it
//! sends on its session comes back on the same session, exactly once and in order, across
//! any number of reconnects within the resume window. Other clients get the plain echo.

use std::time::Duration;

use anyhow::Result;
use tether::session::{ServerSession, SessionServerConfig, Sessions, SUBPROTOCOL};
use tether::ServerSocket;

use crate::heartbeat::parse_duration;

/// Options of `tether serve` for sessions.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct SessionArgs {
    /// Offer sessions (subprotocol tether.session.v1): messages on a session survive
    /// reconnects, each echoed exactly once and in order (`tether connect --session`,
    /// `/session.js` in a browser).
    #[arg(long)]
    pub(crate) sessions: bool,
    /// With --sessions: how long a session whose connection ended waits for its client
    /// to resume it (e.g. 30s); later resumes get `lost expired` (4001).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, requires = "sessions")]
    resume_window: Option<Duration>,
}

impl SessionArgs {
    /// The echo sessions, if asked for. Must be called within the runtime.
    pub(crate) fn sessions(&self) -> Result<Option<Sessions>> {
        if !self.sessions {
            return Ok(None);
        }
        let mut config = SessionServerConfig::default();
        if let Some(window) = self.resume_window {
            config.registry_mut().set_resume_window(window);
        }
        Ok(Some(Sessions::new(config, echo)?))
    }
}

/// Whether this connection carries a session (the client offered the subprotocol).
pub(crate) fn wants_session(ws: &ServerSocket) -> bool {
    ws.subprotocol() == Some(SUBPROTOCOL)
}

/// One session's echo: each message back on the session; when the client ends its side,
/// this side ends too. (`tether serve --sessions`, and the demo's server.)
pub(crate) async fn echo(mut session: ServerSession) {
    let counts = loop {
        match session.recv().await {
            Some(Ok(message)) => {
                if let Err(err) = session.send(message).await {
                    tracing::info!(%err, "session echo stopped");
                    break session.counts();
                }
            }
            Some(Err(lost)) => {
                tracing::info!(%lost, "session lost");
                return;
            }
            None => {
                session.end();
                break session.counts();
            }
        }
    };
    tracing::info!(
        sent = counts.sent,
        received = counts.received,
        "session input ended"
    );
}
