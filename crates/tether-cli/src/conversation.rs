//! The stdin/stdout conversation of `tether connect` under a supervisor, with or without a
//! session: one loop for both, over what they have in common ([`Conversation`]).

use std::future::Future;

use tether::heartbeat::Supervisor;
use tether::session::Session;
use tether::Message;
use tokio::io::{AsyncBufReadExt as _, BufReader};

use crate::connect::{line_message, Output};

/// A supervised client as the conversation sees it: errors are already words for stderr.
pub(crate) trait Conversation {
    /// The next message from the server; `Err` when the conversation ended in a way to
    /// report; `None` when it ended.
    fn recv(&mut self) -> impl Future<Output = Option<Result<Message, String>>> + Send;
    /// Waits for room for `message` (cancel safe, borrows nothing).
    fn ready(&self, message: &Message)
        -> impl Future<Output = Result<(), String>> + Send + 'static;
    /// Takes `message` if there is room now.
    fn try_send(&self, message: Message) -> Result<(), String>;
    /// Waits until everything taken was handed to a connection (cancel safe, borrows nothing).
    fn flushed(&self) -> impl Future<Output = Result<(), String>> + Send + 'static;
    /// Nothing more to send: start the ending, then keep receiving.
    fn finish(&mut self) -> impl Future<Output = ()> + Send;
}

impl Conversation for Supervisor<Message> {
    async fn recv(&mut self) -> Option<Result<Message, String>> {
        Supervisor::recv(self).await.map(Ok)
    }

    fn ready(
        &self,
        message: &Message,
    ) -> impl Future<Output = Result<(), String>> + Send + 'static {
        let ready = Supervisor::ready(self, message);
        async move { ready.await.map_err(|err| err.to_string()) }
    }

    fn try_send(&self, message: Message) -> Result<(), String> {
        Supervisor::try_send(self, message).map_err(|err| err.to_string())
    }

    fn flushed(&self) -> impl Future<Output = Result<(), String>> + Send + 'static {
        let flushed = Supervisor::flushed(self);
        async move { flushed.await.map_err(|err| err.to_string()) }
    }

    async fn finish(&mut self) {
        self.start_close().await;
    }
}

impl Conversation for Session {
    async fn recv(&mut self) -> Option<Result<Message, String>> {
        let received = Session::recv(self).await?;
        Some(received.map_err(|lost| lost.to_string()))
    }

    fn ready(
        &self,
        message: &Message,
    ) -> impl Future<Output = Result<(), String>> + Send + 'static {
        let ready = Session::ready(self, message);
        async move { ready.await.map_err(|err| err.to_string()) }
    }

    fn try_send(&self, message: Message) -> Result<(), String> {
        Session::try_send(self, message).map_err(|err| err.to_string())
    }

    fn flushed(&self) -> impl Future<Output = Result<(), String>> + Send + 'static {
        let flushed = Session::flushed(self);
        async move { flushed.await.map_err(|err| err.to_string()) }
    }

    async fn finish(&mut self) {
        // An error means the session is over already: the next `recv` says how.
        if let Err(err) = self.end().await {
            tracing::debug!(%err, "no end sent");
        }
    }
}

/// Stdin lines out (or, with `echo`, every received message back), received messages to
/// stdout, until the supervisor stops. At the end of stdin it waits until every line was
/// handed to the connection, finishes (a close, or a session's `end`), and prints what
/// still arrives before the server's answer.
///
/// Sending waits for room in the outbox (backpressure: a fast pipe goes at the link's
/// pace, through reconnections) while receiving goes on, so neither side can block the
/// other. Returns `Ok` when the supervisor stopped, `Err` on a local failure.
pub(crate) async fn converse<C: Conversation>(client: &mut C, echo: bool) -> Result<(), String> {
    let mut lines = BufReader::new(tokio::io::stdin()).split(b'\n');
    let mut stdout = Output::new();
    let mut stdin_open = !echo;
    let mut closing = false;
    // The message waiting for room in the outbox: one at a time, so order is kept.
    let mut pending: Option<Message> = None;
    loop {
        let waiting = pending.is_some();
        let done_sending = !echo && !stdin_open && !waiting && !closing;
        // Every branch is cancel safe: `ready` and `flushed` hold nothing, `next_segment`
        // keeps a partial line buffered, the supervisor's inbound queue keeps its messages,
        // and stdout's buffer keeps what a cancelled flush did not write. Biased: what arrives
        // is taken first (the peer's answers to what we send must never wait behind stdin),
        // and stdout is flushed only when nothing else is ready.
        // Made before `recv` borrows the supervisor; both are `'static`.
        let ready = pending.as_ref().map(|message| client.ready(message));
        let flushed = done_sending.then(|| client.flushed());
        tokio::select! {
            biased;
            received = client.recv(), if !(echo && waiting) => match received {
                Some(Err(why)) => {
                    stdout.flush().await.map_err(|err| format!("stdout: {err}"))?;
                    return Err(why);
                }
                Some(Ok(message)) if echo => pending = Some(message),
                Some(Ok(message)) => stdout
                    .print(&message)
                    .await
                    .map_err(|err| format!("stdout: {err}"))?,
                None => return stdout.flush().await.map_err(|err| format!("stdout: {err}")),
            },
            ready = when(ready), if waiting => {
                ready?;
                if let Some(message) = pending.take() {
                    // Only this loop sends, so the room `ready` saw is still there.
                    client.try_send(message)?;
                }
            }
            line = lines.next_segment(), if stdin_open && !waiting => match line {
                Ok(Some(line)) => pending = Some(line_message(line)),
                Ok(None) => stdin_open = false,
                Err(err) => return Err(format!("stdin: {err}")),
            },
            flushed = when(flushed), if done_sending => {
                // Closed already: the next `recv` says so.
                if flushed.is_ok() {
                    client.finish().await;
                }
                closing = true;
            }
            flushed = stdout.flush(), if stdout.unflushed() => {
                flushed.map_err(|err| format!("stdout: {err}"))?;
            }
        }
    }
}

/// Runs `future` when there is one, else never (a `select!` branch that waits for nothing).
pub(crate) async fn when<F: Future>(future: Option<F>) -> F::Output {
    match future {
        Some(future) => future.await,
        None => std::future::pending().await,
    }
}
