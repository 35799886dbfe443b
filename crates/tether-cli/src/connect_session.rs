//! `tether connect URL --session`: the conversation on a session that survives reconnects
//! (docs/sessions.md). Stdin lines go out on the session, every message that arrives is
//! printed once; at the end of stdin the session is ended (`\0end`) and the command waits
//! for the server's end. Resumes and their counts are logged on stderr by the facade.

use std::process::ExitCode;

use anyhow::{Context as _, Result};
use tether::heartbeat::SupervisorConfig;
use tether::session::EndpointConfig;
use tether::ClientBuilder;

use crate::heartbeat::log_until_stopped;

/// Runs the session until it ends: exit 0 when it finished normally (both `end`s, all
/// acknowledged), 1 with the reason and counts otherwise.
pub(crate) async fn run(
    url: &str,
    echo: bool,
    config: &SupervisorConfig,
    builder: &ClientBuilder,
) -> Result<ExitCode> {
    let mut session = builder
        .session(url, config, EndpointConfig::default())
        .with_context(|| format!("cannot open a session to {url}"))?;
    let logging = session
        .events()
        .map(|events| tokio::spawn(log_until_stopped(url.to_owned(), events, session.state())));
    let talked = crate::conversation::converse(&mut session, echo).await;
    let finished = session.is_finished();
    let counts = session.counts();
    let state = session.state();
    session.close().await;
    if let Some(logging) = logging {
        // An error means the logger was cancelled.
        let _ = logging.await;
    }
    tracing::info!(
        sent = counts.sent,
        acknowledged = counts.acked,
        received = counts.received,
        "session {}",
        if finished { "finished" } else { "over" }
    );
    let verdict = match talked {
        Err(why) => Err(why),
        Ok(()) if finished => Ok(()),
        Ok(()) => Err(format!("session ended: {:?}", *state.borrow())),
    };
    Ok(match verdict {
        Ok(()) => ExitCode::SUCCESS,
        Err(why) => crate::logging::fail(&anyhow::Error::msg(why)),
    })
}
